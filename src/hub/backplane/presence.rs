//! Presence: which servers are alive and how many members each has in each room, as
//! this server has heard. Pure bookkeeping, no I/O: the subscriber feeds it the other
//! nodes' envelopes, the publisher computes what to tell them about this one.
//!
//! Each node sends its room sizes as versioned changes (only the rooms that changed; a
//! whole replacement when asked), and in every heartbeat the version it has reached. A
//! receiver that misses a version (Redis pub/sub delivers at most once: a reconnect
//! loses what was sent meanwhile) notices the gap and asks everyone for their whole
//! presence again (a hello), so counts heal by themselves within a heartbeat.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A node is gone after this many of its heartbeat intervals without a word.
pub(crate) const MISSED_HEARTBEATS: u32 = 3;

/// The most other nodes tracked; envelopes from more are skipped (a bound on what
/// anyone who can publish to Redis can make this server hold).
pub(crate) const MAX_NODES: usize = 256;

/// The most rooms tracked per node; the rest of a larger presence is left out.
pub(crate) const MAX_ROOMS_PER_NODE: usize = 100_000;

/// The most memory the other nodes' rooms may take here, counted as each room's name
/// plus [`ENTRY_COST`]; rooms past it are left out.
pub(crate) const MAX_PRESENCE_BYTES: usize = 16 << 20;

/// What a room entry costs besides its name (map slot, string header, count).
const ENTRY_COST: usize = 64;

/// The other nodes, as heard.
#[derive(Debug, Default)]
pub(crate) struct RemoteNodes {
    nodes: HashMap<String, RemoteNode>,
    /// What their rooms take, as [`MAX_PRESENCE_BYTES`] counts it.
    bytes: usize,
}

#[derive(Debug)]
struct RemoteNode {
    /// When it counts as gone unless heard from again.
    expires: Instant,
    interval: Duration,
    /// The presence version applied; `None` when a gap was seen (until it replaces all).
    version: Option<u64>,
    rooms: HashMap<String, u32>,
    /// What `rooms` takes, as [`MAX_PRESENCE_BYTES`] counts it.
    bytes: usize,
}

/// What the caller must do after an envelope was applied.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Nothing more.
    Fine,
    /// This server's view of that node is incomplete: ask for everyone's presence.
    Gap,
    /// A node that is not tracked (too many nodes already).
    Ignored,
    /// Applied, but some rooms were left out (too many, or too many bytes).
    Truncated,
}

impl RemoteNodes {
    /// A heartbeat: the node is alive for three more of its intervals.
    pub(crate) fn heartbeat(&mut self, node: &str, version: u64, interval: Duration, now: Instant) -> Heard {
        let Some(entry) = self.entry(node, interval, now) else { return Heard::Ignored };
        entry.interval = interval;
        entry.expires = now + interval * MISSED_HEARTBEATS;
        if entry.version == Some(version) {
            Heard::Fine
        } else {
            Heard::Gap
        }
    }

    /// A presence envelope: the rooms that changed, or all of them (`replace`).
    pub(crate) fn presence(
        &mut self,
        node: &str,
        version: u64,
        replace: bool,
        rooms: &[(&str, u32)],
        default_interval: Duration,
        now: Instant,
    ) -> Heard {
        if self.entry(node, default_interval, now).is_none() {
            return Heard::Ignored;
        }
        let (total, Some(entry)) = (&mut self.bytes, self.nodes.get_mut(node)) else { return Heard::Ignored };
        entry.expires = now + entry.interval * MISSED_HEARTBEATS;
        if replace {
            *total -= std::mem::take(&mut entry.bytes);
            entry.rooms.clear();
        } else if entry.version.is_none_or(|seen| seen.wrapping_add(1) != version) {
            entry.version = None;
            return Heard::Gap;
        }
        let mut heard = Heard::Fine;
        for &(room, members) in rooms {
            let cost = room.len() + ENTRY_COST;
            if members == 0 {
                if entry.rooms.remove(room).is_some() {
                    entry.bytes -= cost;
                    *total -= cost;
                }
            } else if let Some(count) = entry.rooms.get_mut(room) {
                *count = members;
            } else if entry.rooms.len() < MAX_ROOMS_PER_NODE && *total + cost <= MAX_PRESENCE_BYTES {
                entry.rooms.insert(room.to_owned(), members);
                entry.bytes += cost;
                *total += cost;
            } else {
                heard = Heard::Truncated;
            }
        }
        entry.version = Some(version);
        heard
    }

    /// Whether `node` is tracked.
    pub(crate) fn knows(&self, node: &str) -> bool {
        self.nodes.contains_key(node)
    }

    /// The node shut down.
    pub(crate) fn goodbye(&mut self, node: &str) -> bool {
        let gone = self.nodes.remove(node);
        self.bytes -= gone.as_ref().map_or(0, |node| node.bytes);
        gone.is_some()
    }

    /// Forgets the nodes not heard from in time; returns whether any were.
    pub(crate) fn expire(&mut self, now: Instant) -> bool {
        let before = self.nodes.len();
        let total = &mut self.bytes;
        self.nodes.retain(|_, node| {
            let alive = node.expires > now;
            if !alive {
                *total -= node.bytes;
            }
            alive
        });
        self.nodes.len() != before
    }

    /// The nodes gone before `now` (that `expire` will forget).
    pub(crate) fn expired(&self, now: Instant) -> Vec<String> {
        self.nodes.iter().filter(|(_, node)| node.expires <= now).map(|(name, _)| name.clone()).collect()
    }

    /// Members of `room` on the nodes alive at `now`.
    pub(crate) fn members(&self, room: &str, now: Instant) -> usize {
        self.alive(now).filter_map(|(_, node)| node.rooms.get(room)).map(|&n| n as usize).sum()
    }

    /// The names of the nodes alive at `now`, sorted.
    pub(crate) fn names(&self, now: Instant) -> Vec<String> {
        let mut names: Vec<String> = self.alive(now).map(|(name, _)| name.clone()).collect();
        names.sort();
        names
    }

    /// How many nodes are alive at `now`.
    pub(crate) fn count(&self, now: Instant) -> usize {
        self.alive(now).count()
    }

    /// When the next node expires, if one is tracked.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.nodes.values().map(|node| node.expires).min()
    }

    fn alive(&self, now: Instant) -> impl Iterator<Item = (&String, &RemoteNode)> {
        self.nodes.iter().filter(move |(_, node)| node.expires > now)
    }

    /// The node's entry, made on first word from it (unless too many are tracked).
    fn entry(&mut self, node: &str, interval: Duration, now: Instant) -> Option<&mut RemoteNode> {
        if !self.nodes.contains_key(node) {
            if self.nodes.len() >= MAX_NODES {
                return None;
            }
            let fresh = RemoteNode {
                expires: now + interval * MISSED_HEARTBEATS,
                interval,
                version: None,
                rooms: HashMap::new(),
                bytes: 0,
            };
            self.nodes.insert(node.to_owned(), fresh);
        }
        self.nodes.get_mut(node)
    }
}

/// What this node has told the others about its rooms.
#[derive(Debug, Default)]
pub(crate) struct LocalPresence {
    /// The version of the last presence envelope sent.
    pub(crate) version: u64,
    sent: HashMap<String, usize>,
}

impl LocalPresence {
    /// What to send for the rooms as they are now (`current`): every room with
    /// `replace`, or those that changed (0 for a room gone).
    pub(crate) fn changes(&self, current: &HashMap<String, usize>, replace: bool) -> Vec<(String, u32)> {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        if replace {
            return current.iter().map(|(room, &n)| (room.clone(), count(n))).collect();
        }
        let changed = current.iter().filter(|(room, n)| self.sent.get(*room) != Some(n));
        let gone = self.sent.keys().filter(|room| !current.contains_key(*room));
        changed.map(|(room, &n)| (room.clone(), count(n))).chain(gone.map(|room| (room.clone(), 0))).collect()
    }

    /// The envelopes `versions` long were sent: `current` is what the others know.
    pub(crate) fn sent(&mut self, current: HashMap<String, usize>, versions: u64) {
        self.sent = current;
        self.version += versions;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn presence_changes_apply_in_order_and_a_gap_asks_for_everything() {
        let (mut nodes, now) = (RemoteNodes::default(), Instant::now());
        assert_eq!(nodes.presence("b", 1, true, &[("lobby", 2), ("games", 1)], SECOND, now), Heard::Fine);
        assert_eq!(nodes.heartbeat("b", 1, SECOND, now), Heard::Fine);
        assert_eq!(nodes.presence("b", 2, false, &[("lobby", 3), ("games", 0)], SECOND, now), Heard::Fine);
        assert_eq!((nodes.members("lobby", now), nodes.members("games", now)), (3, 0));
        // Version 3 was lost: 4 is a gap, and so is the next heartbeat, until a replace.
        assert_eq!(nodes.presence("b", 4, false, &[("lobby", 1)], SECOND, now), Heard::Gap);
        assert_eq!(nodes.heartbeat("b", 4, SECOND, now), Heard::Gap);
        assert_eq!(nodes.members("lobby", now), 3, "a change after a gap is not applied");
        assert_eq!(nodes.presence("b", 5, true, &[("lobby", 1)], SECOND, now), Heard::Fine);
        assert_eq!(nodes.heartbeat("b", 5, SECOND, now), Heard::Fine);
        assert_eq!(nodes.members("lobby", now), 1);
    }

    #[test]
    fn a_silent_node_leaves_after_three_of_its_heartbeats() {
        let (mut nodes, now) = (RemoteNodes::default(), Instant::now());
        nodes.presence("b", 1, true, &[("lobby", 2)], SECOND, now);
        nodes.heartbeat("b", 1, 2 * SECOND, now);
        nodes.presence("c", 1, true, &[("lobby", 1)], SECOND, now);
        nodes.heartbeat("c", 1, SECOND, now);
        let later = now + 3 * SECOND;
        assert_eq!((nodes.members("lobby", later), nodes.names(later)), (2, vec!["b".to_string()]));
        assert_eq!(nodes.expired(later), ["c"]);
        assert!(nodes.expire(later));
        assert_eq!(nodes.next_expiry(), Some(now + 6 * SECOND));
        assert!(nodes.goodbye("b"));
        assert_eq!(nodes.count(later), 0);
    }

    #[test]
    fn room_names_kept_for_other_nodes_are_bounded_in_bytes() {
        let (mut nodes, now) = (RemoteNodes::default(), Instant::now());
        let long = |i: usize| format!("{i:0>1000}");
        let names: Vec<String> = (0..MAX_PRESENCE_BYTES / 1000 + 10).map(long).collect();
        let rooms: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), 1)).collect();
        for chunk in rooms.chunks(1000).enumerate() {
            nodes.presence(&format!("n{}", chunk.0), 1, true, chunk.1, SECOND, now);
        }
        assert!(nodes.bytes <= MAX_PRESENCE_BYTES, "{} bytes kept", nodes.bytes);
        let kept: usize = names.iter().map(|n| nodes.members(n, now)).sum();
        assert!(kept < names.len(), "all {kept} rooms kept");
        // Forgetting a node gives its bytes back.
        assert!(nodes.goodbye("n0"));
        assert_eq!(nodes.presence("late", 1, true, &[("a room", 1)], SECOND, now), Heard::Fine);
        assert_eq!(nodes.members("a room", now), 1);
    }

    #[test]
    fn nodes_and_rooms_are_bounded() {
        let (mut nodes, now) = (RemoteNodes::default(), Instant::now());
        for i in 0..MAX_NODES {
            assert_eq!(nodes.heartbeat(&format!("n{i}"), 0, SECOND, now), Heard::Gap);
        }
        assert_eq!(nodes.heartbeat("one too many", 0, SECOND, now), Heard::Ignored);
        let names: Vec<String> = (0..MAX_ROOMS_PER_NODE + 10).map(|i| format!("r{i}")).collect();
        let rooms: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), 1)).collect();
        nodes.presence("n0", 1, true, &rooms, SECOND, now);
        assert_eq!(nodes.members("r0", now) + nodes.members(&names[MAX_ROOMS_PER_NODE + 5], now), 1);
    }

    #[test]
    fn local_changes_are_what_the_others_do_not_know_yet() {
        let mut local = LocalPresence::default();
        let now = HashMap::from([("lobby".to_string(), 2), ("games".to_string(), 1)]);
        assert_eq!(local.changes(&now, false).len(), 2);
        local.sent(now, 1);
        let later = HashMap::from([("lobby".to_string(), 3)]);
        let mut changes = local.changes(&later, false);
        changes.sort();
        assert_eq!(changes, [("games".to_string(), 0), ("lobby".to_string(), 3)]);
        assert_eq!(local.changes(&later, true), [("lobby".to_string(), 3)]);
        local.sent(later.clone(), 2);
        assert_eq!((local.version, local.changes(&later, false).len()), (3, 0));
    }
}
