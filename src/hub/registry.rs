//! The routing table: which connections exist, which are open, which rooms they are in,
//! and how a message gets into one connection's outbound queue.
//!
//! It is shared, behind one read-write lock, by the handles, the acceptor and the
//! connection threads. A [`Handle::send`](crate::Handle::send) runs entirely in the
//! caller's thread: look the connection up under the read lock, put the message on its
//! outbound queue, ring its waker. No thread sits in between, so an echoed message
//! crosses two threads (connection → application → connection), not three. When the
//! connection's thread is asleep and nothing is queued for it, the caller writes the
//! message to the client itself (`Control::write_through`, `connection/shared.rs`),
//! and the connection's thread is not woken at all.
//!
//! An earlier version had a dispatcher thread own this table and receive every send as
//! a command. Measured on two cores (see `bench/NOTES.md`), that hop cost three context
//! switches per echoed message instead of one, a third of the ping-pong rate, and the
//! pipelined rate ÷ 2.5. What the thread gave, one owner and one order, the lock gives
//! too: every operation on a connection is done under it, so messages and closes sent to
//! one connection arrive in the order the calls returned, from any mix of threads.
//!
//! Nothing here waits for a client: a full queue is a slow consumer, closed (1013) or
//! dropped according to the policy, and counted. A connection that is closing takes no
//! more messages: they are dropped and counted at once, and its thread is not woken.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use tungstenite::Message as WsMessage;

use super::outbox::{Bounds, Control, OutboxSender, Pushed};
use super::relay::Relay;
use super::rooms::Rooms;
use crate::config::{Limits, SlowConsumerPolicy};
use crate::event::IdMap;
use crate::log_limit::{more, Throttle};
use crate::stats::{add, bump, Counters};
use crate::{ConnectionId, Error};

/// The routing table and the queue bounds it enforces.
pub(crate) struct Registry {
    state: RwLock<State>,
    stats: Arc<Counters>,
    bounds: Bounds,
    policy: SlowConsumerPolicy,
    /// Keeps a storm of slow clients from flooding the log.
    slow_log: Throttle,
    /// The other servers of a cluster (the Redis backplane), once attached.
    relay: OnceLock<Arc<dyn Relay>>,
}

#[derive(Default)]
struct State {
    conns: IdMap<Entry>,
    rooms: Rooms,
    /// Set by shutdown: from then on the handles get [`Error::Closed`].
    shut_down: bool,
}

struct Entry {
    outbox: OutboxSender,
    /// Whether its WebSocket handshake succeeded (messages are for open connections only).
    open: bool,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub(crate) fn new(stats: Arc<Counters>, limits: &Limits) -> Registry {
        Registry {
            state: RwLock::default(),
            stats,
            bounds: Bounds { max_bytes: limits.outbound_queue_bytes, max_messages: limits.outbound_queue },
            policy: limits.slow_consumer,
            slow_log: Throttle::default(),
            relay: OnceLock::new(),
        }
    }

    /// Publishes and broadcasts go to the other servers through `relay` from now on.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn attach_relay(&self, relay: Arc<dyn Relay>) {
        let _ = self.relay.set(relay);
    }

    // A panic while holding the lock cannot leave the table half-changed in a way that
    // matters (every change is one insert or remove), so a poisoned lock is used as is.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A connection thread is about to start (the acceptor registers it first, so its
    /// unregistering can never come before).
    pub(crate) fn register(&self, id: ConnectionId, outbox: OutboxSender) {
        self.write().conns.insert(id, Entry { outbox, open: false });
    }

    /// Its WebSocket handshake succeeded: it may receive messages and join rooms.
    pub(crate) fn opened(&self, id: ConnectionId) {
        if let Some(entry) = self.write().conns.get_mut(&id) {
            entry.open = true;
        }
    }

    /// It is closed: forget it and its rooms. Messages sent to it from now on are
    /// dropped and counted.
    pub(crate) fn unregister(&self, id: ConnectionId) {
        let mut state = self.write();
        if state.conns.remove(&id).is_some() {
            state.rooms.remove_connection(id);
            self.update_room_stats(&state);
        }
    }

    pub(crate) fn send(&self, id: ConnectionId, message: WsMessage) -> Result<(), Error> {
        let control = match self.open_state()?.conns.get(&id) {
            Some(entry) if entry.open => Arc::clone(entry.outbox.control()),
            _ => {
                bump(&self.stats.dropped);
                log::debug!("{id}: not open; message dropped");
                return Ok(());
            }
        };
        // As `deliver_all` does for many, without cloning the message.
        let Err(message) = control.write_through(message) else { return Ok(()) };
        let state = self.open_state().inspect_err(|_| bump(&self.stats.dropped))?;
        if let Some(control) = self.queue(&state, id, message) {
            control.waker.wake();
        }
        Ok(())
    }

    pub(crate) fn broadcast(&self, message: WsMessage) -> Result<(), Error> {
        self.broadcast_here(&message)?;
        if let Some(relay) = self.relay.get() {
            relay.publish(None, &message, None);
        }
        Ok(())
    }

    /// Broadcasts to this server's connections only.
    pub(crate) fn broadcast_here(&self, message: &WsMessage) -> Result<(), Error> {
        let recipients = {
            let state = self.open_state()?;
            let open = state.conns.iter().filter(|(_, entry)| entry.open);
            open.map(|(id, entry)| (*id, Arc::clone(entry.outbox.control()))).collect()
        };
        self.deliver_all(recipients, message)
    }

    pub(crate) fn publish(&self, room: &str, message: WsMessage, except: Option<ConnectionId>) -> Result<(), Error> {
        self.publish_here(room, &message, except)?;
        if let Some(relay) = self.relay.get() {
            relay.publish(Some(room), &message, except);
        }
        Ok(())
    }

    /// Publishes to the members of `room` on this server only.
    pub(crate) fn publish_here(
        &self,
        room: &str,
        message: &WsMessage,
        except: Option<ConnectionId>,
    ) -> Result<(), Error> {
        let recipients = {
            let state = self.open_state()?;
            let members = state.rooms.members(room).filter(|id| Some(*id) != except);
            members
                .filter_map(|id| state.conns.get(&id).map(|entry| (id, Arc::clone(entry.outbox.control()))))
                .collect()
        };
        self.deliver_all(recipients, message)
    }

    pub(crate) fn close(&self, id: ConnectionId, code: u16, reason: &str) -> Result<(), Error> {
        match self.open_state()?.conns.get(&id) {
            Some(entry) => {
                entry.outbox.control().request_close(code, reason);
            }
            None => log::debug!("{id}: close requested, but it is already gone"),
        }
        Ok(())
    }

    pub(crate) fn join(&self, id: ConnectionId, room: &str) -> Result<(), Error> {
        let mut state = self.open_state_mut()?;
        if state.conns.get(&id).is_some_and(|entry| entry.open) {
            state.rooms.join(id, room);
            self.update_room_stats(&state);
        } else {
            log::debug!("{id}: not open; cannot join {room:?}");
        }
        Ok(())
    }

    pub(crate) fn leave(&self, id: ConnectionId, room: &str) -> Result<(), Error> {
        let mut state = self.open_state_mut()?;
        state.rooms.leave(id, room);
        self.update_room_stats(&state);
        Ok(())
    }

    /// How many members `room` has, on every server of the cluster.
    pub(crate) fn room_size(&self, room: &str) -> usize {
        let here = self.read().rooms.size(room);
        here + self.relay.get().map_or(0, |relay| relay.remote_members(room))
    }

    /// Every room of this server with its number of members.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn room_sizes(&self) -> HashMap<String, usize> {
        self.read().rooms.sizes().map(|(room, n)| (room.to_owned(), n)).collect()
    }

    /// The relay to the other servers, if this server has one.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn relay(&self) -> Option<&Arc<dyn Relay>> {
        self.relay.get()
    }

    /// Asks every connection, open or still in its handshake, to close with 1001; the
    /// handles' operations fail with [`Error::Closed`] from now on.
    pub(crate) fn shutdown(&self) {
        let mut state = self.write();
        state.shut_down = true;
        for entry in state.conns.values() {
            entry.outbox.control().request_close(1001, "server shutting down");
        }
        log::debug!("shutdown: asked {} connections to close", state.conns.len());
    }

    /// This server leaves the cluster: the relay says goodbye to the other servers and
    /// its threads end (waiting until `deadline` at most). Messages from then on stay here.
    pub(crate) fn leave_cluster(&self, deadline: Instant) {
        if let Some(relay) = self.relay.get() {
            relay.stop();
            relay.join(deadline);
        }
    }

    /// The table for reading, unless the server has shut down.
    fn open_state(&self) -> Result<RwLockReadGuard<'_, State>, Error> {
        let state = self.read();
        if state.shut_down {
            return Err(Error::Closed);
        }
        Ok(state)
    }

    /// The table for changing, unless the server has shut down.
    fn open_state_mut(&self) -> Result<RwLockWriteGuard<'_, State>, Error> {
        let state = self.write();
        if state.shut_down {
            return Err(Error::Closed);
        }
        Ok(state)
    }

    /// Delivers a clone of `message` (the payload is shared, not copied) to each
    /// recipient: written to the client on this thread where its connection allows it,
    /// queued otherwise. The writes are made outside the table's lock (to a thousand
    /// clients they take milliseconds, and connections coming and going need not wait);
    /// the rest is queued under it, so that a connection that ended meanwhile has its
    /// message counted as dropped. A shutdown between the two leaves the messages not
    /// yet queued counted as dropped, and the call fails with [`Error::Closed`] though
    /// some clients got theirs.
    fn deliver_all(&self, recipients: Vec<(ConnectionId, Arc<Control>)>, message: &WsMessage) -> Result<(), Error> {
        let to_queue: Vec<ConnectionId> = recipients
            .into_iter()
            .filter_map(|(id, control)| control.write_through(message.clone()).err().map(|_| id))
            .collect();
        if to_queue.is_empty() {
            return Ok(());
        }
        let to_wake = {
            let state = self.open_state().inspect_err(|_| add(&self.stats.dropped, to_queue.len()))?;
            to_queue.into_iter().filter_map(|id| self.queue(&state, id, message.clone()).cloned()).collect()
        };
        wake_all(to_wake);
        Ok(())
    }

    /// Queues `message` for `id`, looked up again in `state` (the table, locked): a
    /// connection that ended since the caller first looked has it counted as dropped.
    /// Returns the connection's signals when it must be woken.
    fn queue<'s>(&self, state: &'s State, id: ConnectionId, message: WsMessage) -> Option<&'s Arc<Control>> {
        let Some(entry) = state.conns.get(&id) else {
            bump(&self.stats.dropped);
            return None;
        };
        self.deliver(id, &entry.outbox, message).then(|| entry.outbox.control())
    }

    /// Queues without waiting; returns whether the message was queued (the connection
    /// must then be woken). A full queue is a slow consumer.
    fn deliver(&self, id: ConnectionId, outbox: &OutboxSender, message: WsMessage) -> bool {
        match outbox.push(message, self.bounds) {
            Pushed::Queued => return true,
            Pushed::Full => self.slow_consumer(id, outbox.control()),
            Pushed::Closing => log::trace!("{id}: closing; message dropped"),
            // The connection thread has just ended.
            Pushed::Gone => {}
        }
        bump(&self.stats.dropped);
        false
    }

    fn slow_consumer(&self, id: ConnectionId, control: &Control) {
        match self.policy {
            SlowConsumerPolicy::Close => {
                if control.request_close(1013, "slow consumer: outbound queue full") {
                    bump(&self.stats.slow_consumer_closes);
                    let what = "outbound queue full (client reads too slowly); closing it with 1013";
                    match self.slow_log.admit() {
                        Some(held_back) => log::warn!("{id}: {what}{}", more(held_back)),
                        None => log::debug!("{id}: {what}"),
                    }
                }
            }
            SlowConsumerPolicy::DropNewest => {
                log::debug!("{id}: outbound queue full (client reads too slowly); message dropped")
            }
        }
    }

    fn update_room_stats(&self, state: &State) {
        self.stats.rooms.store(state.rooms.count() as u64, Ordering::Relaxed);
        self.stats.room_members.store(state.rooms.memberships() as u64, Ordering::Relaxed);
        if let Some(relay) = self.relay.get() {
            relay.rooms_changed();
        }
    }
}

/// Rings each waker, after the table's lock is released: connections coming and going
/// need not wait for a thousand system calls.
fn wake_all(controls: Vec<Arc<Control>>) {
    for control in controls {
        control.waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::outbox::{outbox, Outbox, BEHIND_FACTOR};
    use crate::wait::Waker;

    const ID: ConnectionId = ConnectionId(7);

    fn registry_with_open_connection(limits: &Limits) -> (Registry, Arc<Control>, Outbox) {
        let registry = Registry::new(Arc::default(), limits);
        let (sender, outbox) = outbox(Waker::new().unwrap());
        let control = Arc::clone(sender.control());
        registry.register(ID, sender);
        registry.opened(ID);
        (registry, control, outbox)
    }

    fn send_until_refused(registry: &Registry, control: &Control, most: usize) -> usize {
        let mut queued = 0;
        while queued < most && !control.is_closing() {
            registry.send(ID, WsMessage::text("x")).unwrap();
            queued += 1;
        }
        queued - usize::from(control.is_closing())
    }

    #[test]
    fn a_client_whose_socket_is_full_is_slow_at_the_message_bound() {
        let (registry, control, outbox) = registry_with_open_connection(&Limits::default());
        control.set_socket_full(true);
        assert_eq!(send_until_refused(&registry, &control, 1000), 64);
        assert_eq!(outbox.len(), 64);
        assert_eq!(control.take_close_request(), Some((1013, "slow consumer: outbound queue full".into())));
        assert_eq!(registry.stats.slow_consumer_closes.load(Ordering::SeqCst), 1);
        assert_eq!(registry.stats.dropped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_thread_waiting_for_a_cpu_gets_slack_but_stays_bounded() {
        let (registry, control, outbox) = registry_with_open_connection(&Limits::default());
        assert_eq!(send_until_refused(&registry, &control, 1000), 64 * BEHIND_FACTOR);
        assert_eq!(outbox.len(), 64 * BEHIND_FACTOR);
        assert!(control.is_closing());
    }

    #[test]
    fn the_byte_bound_holds_whatever_the_socket() {
        let limits = Limits { outbound_queue_bytes: 1000, ..Limits::default() };
        let (registry, control, outbox) = registry_with_open_connection(&limits);
        registry.send(ID, WsMessage::binary(vec![0; 5000])).unwrap();
        assert!(!control.is_closing(), "one large message may go to an empty queue");
        registry.send(ID, WsMessage::binary(vec![0; 10])).unwrap();
        assert!(control.is_closing());
        assert_eq!(outbox.len(), 1);
        // The thread takes the message: the queue is empty again.
        assert!(outbox.take().is_some());
        assert_eq!(control.queued(), (0, 0));
    }

    #[test]
    fn messages_for_connections_not_open_are_dropped_and_counted() {
        let (registry, _control, outbox) = registry_with_open_connection(&Limits::default());
        registry.send(ConnectionId(99), WsMessage::text("nobody")).unwrap();
        registry.unregister(ID);
        registry.send(ID, WsMessage::text("gone")).unwrap();
        assert_eq!(registry.stats.dropped.load(Ordering::SeqCst), 2);
        assert!(outbox.is_empty());
    }

    #[test]
    fn messages_for_a_closing_connection_are_refused_and_counted() {
        let (registry, control, outbox) = registry_with_open_connection(&Limits::default());
        registry.send(ID, WsMessage::text("before")).unwrap();
        registry.close(ID, 4000, "bye").unwrap();
        control.waker.reset();
        registry.send(ID, WsMessage::text("after the request")).unwrap();
        registry.broadcast(WsMessage::text("after the request")).unwrap();
        assert_eq!(registry.stats.dropped.load(Ordering::SeqCst), 2);
        assert_eq!(outbox.len(), 1, "only the message sent before the close is queued");
        let (socket, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let now = Some(std::time::Instant::now());
        assert!(!crate::wait::wait(&socket, false, &control.waker, now).unwrap(), "refused messages wake nobody");
    }

    #[test]
    fn a_connection_closing_on_its_own_refuses_messages_and_close_requests() {
        let (registry, control, outbox) = registry_with_open_connection(&Limits::default());
        control.set_closing();
        registry.send(ID, WsMessage::text("late")).unwrap();
        registry.close(ID, 4000, "bye").unwrap();
        assert_eq!(registry.stats.dropped.load(Ordering::SeqCst), 1);
        assert!(outbox.is_empty());
        assert_eq!(control.take_close_request(), None, "the close under way is the one that counts");
    }

    #[test]
    fn shutdown_closes_every_connection_and_refuses_later_calls() {
        let (registry, control, _outbox) = registry_with_open_connection(&Limits::default());
        registry.shutdown();
        assert_eq!(control.take_close_request(), Some((1001, "server shutting down".into())));
        assert!(matches!(registry.send(ID, WsMessage::text("late")), Err(Error::Closed)));
        assert!(matches!(registry.broadcast(WsMessage::text("late")), Err(Error::Closed)));
        assert!(matches!(registry.join(ID, "room"), Err(Error::Closed)));
    }
}
