//! Rooms (topics): named groups of connections, kept in the registry.

use std::collections::{BTreeSet, HashMap};

use crate::ConnectionId;

/// Which connections are in which room, both ways round, so that joining, leaving,
/// publishing and cleaning up after a closed connection are all cheap.
#[derive(Debug, Default)]
pub(crate) struct Rooms {
    members: HashMap<String, BTreeSet<ConnectionId>>,
    joined: HashMap<ConnectionId, BTreeSet<String>>,
}

impl Rooms {
    /// Adds `conn` to `room`; returns whether it was not a member yet.
    pub(crate) fn join(&mut self, conn: ConnectionId, room: &str) -> bool {
        let added = self.members.entry(room.to_owned()).or_default().insert(conn);
        if added {
            self.joined.entry(conn).or_default().insert(room.to_owned());
        }
        added
    }

    /// Removes `conn` from `room`; an empty room disappears.
    pub(crate) fn leave(&mut self, conn: ConnectionId, room: &str) -> bool {
        let removed = self.members.get_mut(room).is_some_and(|m| m.remove(&conn));
        if removed {
            if self.members.get(room).is_some_and(BTreeSet::is_empty) {
                self.members.remove(room);
            }
            if let Some(rooms) = self.joined.get_mut(&conn) {
                rooms.remove(room);
                if rooms.is_empty() {
                    self.joined.remove(&conn);
                }
            }
        }
        removed
    }

    /// Removes a closed connection from every room it was in.
    pub(crate) fn remove_connection(&mut self, conn: ConnectionId) {
        for room in self.joined.remove(&conn).unwrap_or_default() {
            if let Some(members) = self.members.get_mut(&room) {
                members.remove(&conn);
                if members.is_empty() {
                    self.members.remove(&room);
                }
            }
        }
    }

    /// The members of `room`, in id order.
    pub(crate) fn members(&self, room: &str) -> impl Iterator<Item = ConnectionId> + '_ {
        self.members.get(room).into_iter().flatten().copied()
    }

    /// How many members `room` has.
    pub(crate) fn size(&self, room: &str) -> usize {
        self.members.get(room).map_or(0, BTreeSet::len)
    }

    /// Every room with its number of members.
    pub(crate) fn sizes(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.members.iter().map(|(room, members)| (room.as_str(), members.len()))
    }

    /// How many rooms exist (have at least one member).
    pub(crate) fn count(&self) -> usize {
        self.members.len()
    }

    /// How many memberships there are in all rooms together.
    pub(crate) fn memberships(&self) -> usize {
        self.joined.values().map(BTreeSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ConnectionId = ConnectionId(1);
    const B: ConnectionId = ConnectionId(2);

    #[test]
    fn join_leave_and_cleanup() {
        let mut rooms = Rooms::default();
        assert!(rooms.join(A, "lobby"));
        assert!(!rooms.join(A, "lobby"), "joining twice is one membership");
        assert!(rooms.join(B, "lobby"));
        assert!(rooms.join(A, "games"));
        assert_eq!(rooms.members("lobby").collect::<Vec<_>>(), [A, B]);
        assert_eq!((rooms.size("lobby"), rooms.size("games"), rooms.size("none")), (2, 1, 0));
        assert_eq!(rooms.sizes().collect::<HashMap<_, _>>(), HashMap::from([("lobby", 2), ("games", 1)]));
        assert_eq!((rooms.count(), rooms.memberships()), (2, 3));
        assert!(rooms.leave(B, "lobby"));
        assert!(!rooms.leave(B, "lobby"));
        rooms.remove_connection(A);
        assert_eq!((rooms.count(), rooms.memberships()), (0, 0));
        assert_eq!(rooms.members("lobby").count(), 0);
    }
}
