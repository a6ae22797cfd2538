//! The routing table: which connections exist, which are open, which rooms they are in,
//! and how a message gets into one connection's outbound queue.
//!
//! It is shared, behind one read-write lock, by the handles, the acceptor and the
//! connection threads. A [`Handle::send`](crate::Handle::send) runs entirely in the
//! caller's thread: look the connection up under the read lock, put the message on its
//! outbound queue, ring its waker. No thread sits in between, so an echoed message
//! crosses two threads (connection → application → connection), not three.
//!
//! An earlier version had a dispatcher thread own this table and receive every send as
//! a command. Measured on two cores (see `bench/NOTES.md`), that hop cost three context
//! switches per echoed message instead of one, a third of the ping-pong rate, and the
//! pipelined rate ÷ 2.5. What the thread gave, one owner and one order, the lock gives
//! too: every operation on a connection is done under it, so messages and closes sent to
//! one connection arrive in the order the calls returned, from any mix of threads.
//!
//! Nothing here waits for a client: a full queue is a slow consumer, closed (1013) or
//! dropped according to the policy, and counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crossbeam_channel::Sender;
use tungstenite::Message as WsMessage;

use crate::config::{Limits, SlowConsumerPolicy};
use crate::rooms::Rooms;
use crate::stats::{bump, Counters};
use crate::wait::Waker;
use crate::{ConnectionId, Error};

/// The way to one connection thread: its outbound queue and its signals.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) outbox: Sender<WsMessage>,
    pub(crate) control: Arc<Control>,
}

/// Signals to a connection thread that do not queue behind its messages.
#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) waker: Waker,
    /// The close the connection thread has yet to start.
    close: Mutex<Option<(u16, String)>>,
    /// Set by the first close request and never cleared, so later requests (a slow
    /// client's queue stays full) are not counted or logged again.
    close_requested: AtomicBool,
    /// Payload bytes and messages in the outbound queue: added before a message is
    /// queued, subtracted by the connection thread once it takes the message. The queue
    /// itself is an unbounded channel that allocates only while it holds messages (a
    /// bounded one allocates all its slots up front, 4 KiB per idle connection); these
    /// counts are its bounds.
    queued_bytes: AtomicUsize,
    queued_messages: AtomicUsize,
    /// Whether the client's socket is full (the last write would have blocked): set and
    /// cleared by the connection thread. A long queue is the client's fault only then.
    socket_full: AtomicBool,
}

impl Control {
    pub(crate) fn new(waker: Waker) -> Control {
        Control {
            waker,
            close: Mutex::new(None),
            close_requested: AtomicBool::new(false),
            queued_bytes: AtomicUsize::new(0),
            queued_messages: AtomicUsize::new(0),
            socket_full: AtomicBool::new(false),
        }
    }

    /// Asks the connection to close. The first request wins; returns whether this was it.
    pub(crate) fn request_close(&self, code: u16, reason: &str) -> bool {
        if self.close_requested.swap(true, Ordering::SeqCst) {
            return false;
        }
        *self.close.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((code, reason.to_owned()));
        self.waker.wake();
        true
    }

    /// Takes a pending close request, if any.
    pub(crate) fn take_close_request(&self) -> Option<(u16, String)> {
        self.close.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }

    /// Whether a close was ever requested.
    pub(crate) fn close_requested(&self) -> bool {
        self.close_requested.load(Ordering::SeqCst)
    }

    /// The connection thread took a message of `len` bytes from its queue.
    pub(crate) fn dequeued(&self, len: usize) {
        self.queued_messages.fetch_sub(1, Ordering::SeqCst);
        self.queued_bytes.fetch_sub(len, Ordering::SeqCst);
    }

    /// The connection thread found the client's socket full (`true`) or drained (`false`).
    pub(crate) fn set_socket_full(&self, full: bool) {
        self.socket_full.store(full, Ordering::Relaxed);
    }
}

/// How far a connection thread may fall behind its socket before the message count
/// alone makes it a slow consumer: a thread that is merely waiting for a CPU (the
/// client's socket is not full) is given this many times `outbound_queue` messages.
/// The byte bound holds either way.
const BEHIND_FACTOR: usize = 4;

/// The routing table and the queue bounds it enforces.
pub(crate) struct Registry {
    state: RwLock<State>,
    stats: Arc<Counters>,
    max_queued_bytes: usize,
    max_queued_messages: usize,
    policy: SlowConsumerPolicy,
}

#[derive(Default)]
struct State {
    conns: HashMap<ConnectionId, Entry>,
    rooms: Rooms,
    /// Set by shutdown: from then on the handles get [`Error::Closed`].
    shut_down: bool,
}

struct Entry {
    link: Link,
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
            max_queued_bytes: limits.outbound_queue_bytes,
            max_queued_messages: limits.outbound_queue,
            policy: limits.slow_consumer,
        }
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
    pub(crate) fn register(&self, id: ConnectionId, link: Link) {
        self.write().conns.insert(id, Entry { link, open: false });
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
        let state = self.open_state()?;
        match state.conns.get(&id) {
            Some(entry) if entry.open => {
                if self.deliver(id, &entry.link, message) {
                    entry.link.control.waker.wake();
                }
            }
            _ => {
                bump(&self.stats.dropped);
                log::debug!("{id}: not open; message dropped");
            }
        }
        Ok(())
    }

    pub(crate) fn broadcast(&self, message: WsMessage) -> Result<(), Error> {
        let to_wake = {
            let state = self.open_state()?;
            let open = state.conns.iter().filter(|(_, entry)| entry.open);
            self.queue_all(open.map(|(id, entry)| (*id, &entry.link)), &message)
        };
        wake_all(to_wake);
        Ok(())
    }

    pub(crate) fn publish(&self, room: &str, message: WsMessage, except: Option<ConnectionId>) -> Result<(), Error> {
        let to_wake = {
            let state = self.open_state()?;
            let members = state.rooms.members(room).filter(|id| Some(*id) != except);
            let recipients = members.filter_map(|id| state.conns.get(&id).map(|entry| (id, &entry.link)));
            self.queue_all(recipients, &message)
        };
        wake_all(to_wake);
        Ok(())
    }

    pub(crate) fn close(&self, id: ConnectionId, code: u16, reason: &str) -> Result<(), Error> {
        match self.open_state()?.conns.get(&id) {
            Some(entry) => {
                entry.link.control.request_close(code, reason);
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

    /// Asks every connection, open or still in its handshake, to close with 1001; the
    /// handles' operations fail with [`Error::Closed`] from now on.
    pub(crate) fn shutdown(&self) {
        let mut state = self.write();
        state.shut_down = true;
        for entry in state.conns.values() {
            entry.link.control.request_close(1001, "server shutting down");
        }
        log::debug!("shutdown: asked {} connections to close", state.conns.len());
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

    /// Queues a clone of `message` (the payload is shared, not copied) for each
    /// recipient; returns those to wake.
    fn queue_all<'s>(
        &self,
        recipients: impl Iterator<Item = (ConnectionId, &'s Link)>,
        message: &WsMessage,
    ) -> Vec<Arc<Control>> {
        recipients
            .filter(|(id, link)| self.deliver(*id, link, message.clone()))
            .map(|(_, link)| Arc::clone(&link.control))
            .collect()
    }

    /// Queues without waiting; returns whether the message was queued (the connection
    /// must then be woken). A full queue is a slow consumer.
    fn deliver(&self, id: ConnectionId, link: &Link, message: WsMessage) -> bool {
        let control = &link.control;
        let len = message.len();
        let bytes_before = control.queued_bytes.fetch_add(len, Ordering::SeqCst);
        let count_before = control.queued_messages.fetch_add(1, Ordering::SeqCst);
        let full = self.over_bounds(control, bytes_before, len, count_before);
        // The send fails only when the connection thread has just ended.
        if !full && link.outbox.send(message).is_ok() {
            return true;
        }
        control.queued_messages.fetch_sub(1, Ordering::SeqCst);
        control.queued_bytes.fetch_sub(len, Ordering::SeqCst);
        bump(&self.stats.dropped);
        if full {
            self.slow_consumer(id, control);
        }
        false
    }

    /// Whether one more message of `len` bytes would overfill the queue. The byte bound
    /// always holds (one message larger than it may still go to an empty queue). The
    /// message bound counts against the client only while its socket is full; otherwise
    /// its thread is just waiting for a CPU and gets some slack.
    fn over_bounds(&self, control: &Control, bytes_before: usize, len: usize, count_before: usize) -> bool {
        let bytes_over = bytes_before > 0 && bytes_before + len > self.max_queued_bytes;
        let max_messages = if control.socket_full.load(Ordering::Relaxed) {
            self.max_queued_messages
        } else {
            self.max_queued_messages.saturating_mul(BEHIND_FACTOR)
        };
        bytes_over || count_before >= max_messages
    }

    fn slow_consumer(&self, id: ConnectionId, control: &Control) {
        match self.policy {
            SlowConsumerPolicy::Close => {
                if control.request_close(1013, "slow consumer: outbound queue full") {
                    bump(&self.stats.slow_consumer_closes);
                    log::warn!("{id}: outbound queue full (client reads too slowly); closing it with 1013");
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
    use crossbeam_channel::Receiver;

    const ID: ConnectionId = ConnectionId(7);

    fn registry_with_open_connection(limits: &Limits) -> (Registry, Arc<Control>, Receiver<WsMessage>) {
        let registry = Registry::new(Arc::default(), limits);
        let control = Arc::new(Control::new(Waker::new().unwrap()));
        let (outbox, outbox_rx) = crossbeam_channel::unbounded();
        registry.register(ID, Link { outbox, control: Arc::clone(&control) });
        registry.opened(ID);
        (registry, control, outbox_rx)
    }

    fn send_until_refused(registry: &Registry, control: &Control, most: usize) -> usize {
        let mut queued = 0;
        while queued < most && !control.close_requested() {
            registry.send(ID, WsMessage::text("x")).unwrap();
            queued += 1;
        }
        queued - usize::from(control.close_requested())
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
        assert!(control.close_requested());
    }

    #[test]
    fn the_byte_bound_holds_whatever_the_socket() {
        let limits = Limits { outbound_queue_bytes: 1000, ..Limits::default() };
        let (registry, control, outbox) = registry_with_open_connection(&limits);
        registry.send(ID, WsMessage::binary(vec![0; 5000])).unwrap();
        assert!(!control.close_requested(), "one large message may go to an empty queue");
        registry.send(ID, WsMessage::binary(vec![0; 10])).unwrap();
        assert!(control.close_requested());
        assert_eq!(outbox.len(), 1);
        // The thread takes the message: the queue is empty again.
        control.dequeued(outbox.recv().unwrap().len());
        assert_eq!(
            (control.queued_bytes.load(Ordering::SeqCst), control.queued_messages.load(Ordering::SeqCst)),
            (0, 0)
        );
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
    fn shutdown_closes_every_connection_and_refuses_later_calls() {
        let (registry, control, _outbox) = registry_with_open_connection(&Limits::default());
        registry.shutdown();
        assert_eq!(control.take_close_request(), Some((1001, "server shutting down".into())));
        assert!(matches!(registry.send(ID, WsMessage::text("late")), Err(Error::Closed)));
        assert!(matches!(registry.broadcast(WsMessage::text("late")), Err(Error::Closed)));
        assert!(matches!(registry.join(ID, "room"), Err(Error::Closed)));
    }
}
