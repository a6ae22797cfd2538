//! The send side of [`Server::events`](crate::Server::events): how connection threads
//! hand events to the application, and how much of the channel each may fill.
//!
//! The channel holds a bounded number of events, but messages can be large and the
//! application slow, so the payload bytes waiting are bounded too
//! ([`events_bytes`](crate::ConfigBuilder::events_bytes)). Both bounds are shared: a
//! connection may have only its share of either waiting, so a client that floods waits for
//! its own backlog (its thread stops reading, and TCP slows that client alone) while the
//! other clients' messages still go straight in, instead of queueing behind the flood.
//!
//! The application owns the receiving end, a plain crossbeam `Receiver`, so nothing of
//! ours runs when it takes an event. A ledger mirrors the channel instead: one entry per
//! event, recorded under the same lock as the send, so in the same order. Since only the
//! application takes events out, the channel's length says how many of the oldest entries
//! it has taken ([`Ledger::catch_up`]). Every send settles the account and wakes the
//! waiting connections once half their share is free (so each refills in a batch, not an
//! event per wake-up); when every sender is waiting, one of them (the watcher) looks on a
//! timer, because nobody else would notice.

use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{after, bounded, never, select, Receiver, Sender, TrySendError};

use crate::config::Limits;
use crate::event::IdMap;
use crate::stats::{bump, Counters};
use crate::{ConnectionId, Event};

/// A connection may fill this part of either bound (128 events of the default 1,024):
/// deep enough to keep a fast application busy, shallow enough that another client's
/// message waits behind at most that much of one flood. When more than this many
/// connections flood, the channel fills before their shares do, and they wait for a slot
/// in turn (woken by the channel itself as the application takes events).
const FAIR_SHARES: usize = 8;

/// How long the watcher sleeps between looks at the channel: about the time the
/// application takes for half of what is in the channel, at the pace it showed since the
/// last look (so the channel does not run dry while everyone waits), and twice as long
/// each time it took nothing (so an application that is away costs little).
const LOOK_MIN: Duration = Duration::from_micros(100);
const LOOK_MAX: Duration = Duration::from_millis(50);

/// The events channel as the connection threads see it.
#[derive(Debug)]
pub(crate) struct EventSink {
    events: Sender<Event>,
    /// Never receives; disconnects when shutdown begins, to unblock event sends.
    shutdown: Receiver<()>,
    stats: Arc<Counters>,
    ledger: Mutex<Ledger>,
}

/// What may wait in the channel: events, and payload bytes of messages.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    events: usize,
    bytes: usize,
}

impl EventSink {
    pub(crate) fn new(
        events: Sender<Event>,
        shutdown: Receiver<()>,
        stats: Arc<Counters>,
        limits: &Limits,
    ) -> EventSink {
        let total = Bounds { events: limits.events_capacity, bytes: limits.events_bytes };
        EventSink { events, shutdown, stats, ledger: Mutex::new(Ledger::new(total)) }
    }

    /// Whether the application has taken every event: no reply to one is on its way.
    pub(crate) fn all_taken(&self) -> bool {
        self.events.is_empty()
    }

    /// Hands an event to the application, first waiting while its connection has its
    /// share of the channel waiting (this is the backpressure that slows a client down),
    /// unless the server is shutting down.
    pub(crate) fn emit(&self, event: Event) -> bool {
        let (conn, bytes) = sender_and_bytes(&event);
        let mut ledger = self.ledger();
        ledger.catch_up(self.events.len());
        if !ledger.admits(conn, bytes) {
            bump(&self.stats.events_throttled);
            let shut_down;
            (ledger, shut_down) = self.wait_for_share(ledger, conn, bytes);
            if shut_down {
                bump(&self.stats.dropped);
                return false;
            }
        }
        self.send(&mut ledger, conn, bytes, event)
    }

    /// Waits, without holding the ledger, until `conn` may send `bytes`: rung when the
    /// application has taken half its share, or looking on a timer as the watcher.
    /// Returns the ledger again, and whether the server is shutting down.
    fn wait_for_share<'a>(
        &'a self,
        mut ledger: MutexGuard<'a, Ledger>,
        conn: ConnectionId,
        bytes: usize,
    ) -> (MutexGuard<'a, Ledger>, bool) {
        let (ring, rung) = bounded(1);
        ledger.start_waiting(conn, ring);
        loop {
            let look_in = ledger.look_in(conn);
            drop(ledger);
            let timer = look_in.map_or_else(never, after);
            let shut_down = select! {
                recv(rung) -> _ => false,
                recv(timer) -> _ => false,
                recv(self.shutdown) -> _ => true,
            };
            ledger = self.ledger();
            ledger.catch_up(self.events.len());
            if look_in.is_some() {
                ledger.pace(Instant::now());
            }
            if shut_down || ledger.admits(conn, bytes) {
                ledger.stop_waiting(conn);
                return (ledger, shut_down);
            }
        }
    }

    /// Sends and records the event, holding the ledger so both keep the same order.
    fn send(&self, ledger: &mut Ledger, conn: ConnectionId, bytes: usize, event: Event) -> bool {
        let sent = match self.events.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Disconnected(_)) => false,
            // More than `FAIR_SHARES` connections flood: wait for a slot, woken by the
            // channel. The others wait for the ledger meanwhile; they could not send either.
            Err(TrySendError::Full(event)) => {
                bump(&self.stats.events_throttled);
                select! {
                    send(self.events, event) -> sent => sent.is_ok(),
                    recv(self.shutdown) -> _ => {
                        bump(&self.stats.dropped);
                        false
                    }
                }
            }
        };
        if sent {
            ledger.record(conn, bytes);
        }
        sent
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // Nothing panics while holding it; if something did, the counts are still usable.
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Who sent an event, and the payload bytes it holds.
fn sender_and_bytes(event: &Event) -> (ConnectionId, usize) {
    match event {
        Event::Open { conn, .. } | Event::Close { conn, .. } => (*conn, 0),
        Event::Message { conn, message, .. } => (*conn, message.len()),
    }
}

/// What is in the channel, event by event, and who waits to add to it.
#[derive(Debug)]
struct Ledger {
    /// What may wait from all connections, and from one.
    total: Bounds,
    share: Bounds,
    /// The sender and payload bytes of each event in the channel, oldest first; those
    /// the application has taken are still here until the next `catch_up`.
    queued: VecDeque<(ConnectionId, usize)>,
    /// The payload bytes of `queued`.
    bytes: usize,
    /// The connections with events in `queued` or waiting to send one.
    shares: IdMap<Share>,
    /// How many events the application has taken, all told (its pace, for the watcher).
    taken: u64,
    /// The waiting connection that looks at the channel on a timer.
    watcher: Option<ConnectionId>,
    /// When the watcher last looked, and `taken` then.
    last_look: Option<(Instant, u64)>,
    /// How long the watcher sleeps between looks.
    look_every: Duration,
}

/// One connection's part of the ledger.
#[derive(Debug, Default)]
struct Share {
    events: usize,
    bytes: usize,
    /// Rung when half its share is free again (or it becomes the watcher), while the
    /// connection waits.
    ring: Option<Sender<()>>,
}

impl Ledger {
    fn new(total: Bounds) -> Ledger {
        let share = Bounds { events: (total.events / FAIR_SHARES).max(1), bytes: total.bytes / FAIR_SHARES };
        Ledger {
            total,
            share,
            queued: VecDeque::new(),
            bytes: 0,
            shares: IdMap::default(),
            taken: 0,
            watcher: None,
            last_look: None,
            look_every: LOOK_MIN,
        }
    }

    /// Forgets the events the application has taken, given how many are still in the
    /// channel, and rings their connections that wait once half their share is free.
    fn catch_up(&mut self, in_channel: usize) {
        let taken = self.queued.len().saturating_sub(in_channel);
        self.taken += taken as u64;
        let resume_at = self.share.events / 2;
        for (conn, bytes) in self.queued.drain(..taken) {
            self.bytes = self.bytes.saturating_sub(bytes);
            if let Entry::Occupied(mut entry) = self.shares.entry(conn) {
                let share = entry.get_mut();
                share.events = share.events.saturating_sub(1);
                share.bytes = share.bytes.saturating_sub(bytes);
                match &share.ring {
                    // Full means already rung: one wake-up is enough.
                    Some(ring) if share.events <= resume_at => drop(ring.try_send(())),
                    None if share.events == 0 => drop(entry.remove()),
                    _ => {}
                }
            }
        }
    }

    /// Whether `conn` may send an event of `bytes` now: always when it has nothing
    /// waiting (so a message larger than any share still goes), else within its share.
    fn admits(&self, conn: ConnectionId, bytes: usize) -> bool {
        let Some(share) = self.shares.get(&conn).filter(|share| share.events > 0) else {
            return true;
        };
        share.events < self.share.events
            && share.bytes + bytes <= self.share.bytes
            && self.bytes + bytes <= self.total.bytes
    }

    fn record(&mut self, conn: ConnectionId, bytes: usize) {
        self.queued.push_back((conn, bytes));
        self.bytes += bytes;
        let share = self.shares.entry(conn).or_default();
        share.events += 1;
        share.bytes += bytes;
    }

    fn start_waiting(&mut self, conn: ConnectionId, ring: Sender<()>) {
        self.shares.entry(conn).or_default().ring = Some(ring);
    }

    /// How long `conn` may sleep before it looks at the channel itself: `Some` for the
    /// watcher (the first to wait becomes it), `None` for the others, which are rung.
    fn look_in(&mut self, conn: ConnectionId) -> Option<Duration> {
        (*self.watcher.get_or_insert(conn) == conn).then_some(self.look_every)
    }

    /// After the watcher's look: when to look next, from the application's pace since
    /// the last look (see [`LOOK_MIN`]).
    fn pace(&mut self, now: Instant) {
        if let Some((then, taken_then)) = self.last_look {
            let taken = self.taken - taken_then;
            self.look_every = if taken == 0 {
                self.look_every * 2
            } else {
                let half_the_channel = now.duration_since(then).as_nanos() * self.queued.len() as u128 / 2;
                Duration::from_nanos(u64::try_from(half_the_channel / u128::from(taken)).unwrap_or(u64::MAX))
            }
            .clamp(LOOK_MIN, LOOK_MAX);
        }
        self.last_look = Some((now, self.taken));
    }

    /// `conn` sends now (or gives up); a watcher hands its watch to another waiting
    /// connection, ringing it so that it starts looking.
    fn stop_waiting(&mut self, conn: ConnectionId) {
        if let Entry::Occupied(mut entry) = self.shares.entry(conn) {
            entry.get_mut().ring = None;
            if entry.get().events == 0 {
                entry.remove();
            }
        }
        if self.watcher == Some(conn) {
            let next = self.shares.iter().find_map(|(id, share)| share.ring.as_ref().map(|ring| (*id, ring)));
            if let Some((_, ring)) = next {
                let _ = ring.try_send(());
            }
            self.watcher = next.map(|(id, _)| id);
            if self.watcher.is_none() {
                // The next watcher measures the pace afresh.
                (self.last_look, self.look_every) = (None, LOOK_MIN);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CloseReason, Message};
    use std::thread;

    const CAPACITY: usize = 64;

    fn sink(bytes: usize) -> (Arc<EventSink>, Receiver<Event>, Sender<()>) {
        let limits = Limits { events_capacity: CAPACITY, events_bytes: bytes, ..Limits::default() };
        let (events, received) = bounded(CAPACITY);
        let (shutdown_signal, shutdown) = bounded(0);
        (Arc::new(EventSink::new(events, shutdown, Arc::default(), &limits)), received, shutdown_signal)
    }

    fn message(conn: u64, bytes: usize) -> Event {
        Event::Message { conn: ConnectionId(conn), message: Message::Binary(vec![0; bytes]), data: None }
    }

    fn waits(sink: &Arc<EventSink>, event: Event) -> thread::JoinHandle<bool> {
        let sink = Arc::clone(sink);
        let emitting = thread::spawn(move || sink.emit(event));
        thread::sleep(Duration::from_millis(50));
        assert!(!emitting.is_finished(), "the event went in past its connection's share");
        emitting
    }

    #[test]
    fn a_connection_fills_only_its_share_of_events() {
        let (sink, received, _shutdown) = sink(usize::MAX);
        for _ in 0..CAPACITY / FAIR_SHARES {
            assert!(sink.emit(message(1, 1)));
        }
        let emitting = waits(&sink, message(1, 1));
        // Another connection is not held back by the first one's backlog.
        assert!(sink.emit(message(2, 1)));
        received.recv().unwrap();
        assert!(emitting.join().unwrap());
        assert_eq!(sink.stats.events_throttled.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn bytes_are_bounded_but_one_large_message_always_goes() {
        let (sink, received, _shutdown) = sink(8 * 1024);
        assert!(sink.emit(message(1, 100_000)), "a message larger than the share goes alone");
        let emitting = waits(&sink, message(1, 10));
        assert!(sink.emit(message(2, 100_000)), "another connection's first message goes too");
        received.recv().unwrap();
        assert!(emitting.join().unwrap());
        let ledger = sink.ledger();
        assert_eq!(ledger.bytes, 100_010, "the first message was taken: {ledger:?}");
    }

    #[test]
    fn the_watcher_notices_when_nobody_else_sends() {
        let (sink, received, _shutdown) = sink(usize::MAX);
        let share = CAPACITY / FAIR_SHARES;
        for _ in 0..share {
            assert!(sink.emit(message(1, 1)));
        }
        for _ in 0..share {
            assert!(sink.emit(message(2, 1)));
        }
        let (first, second) = (waits(&sink, message(1, 1)), waits(&sink, message(2, 1)));
        // Taking every event wakes both, though neither sends in the meantime.
        for _ in 0..2 * share {
            received.recv().unwrap();
        }
        assert!(first.join().unwrap() && second.join().unwrap());
        assert_eq!(received.len(), 2);
    }

    #[test]
    fn many_flooding_connections_take_turns_for_slots() {
        let (sink, received, _shutdown) = sink(usize::MAX);
        for conn in 0..FAIR_SHARES as u64 {
            for _ in 0..CAPACITY / FAIR_SHARES {
                assert!(sink.emit(message(conn, 1)));
            }
        }
        assert!(received.is_full());
        // One more connection: within its share, but the channel has no room.
        let emitting = waits(&sink, message(99, 1));
        received.recv().unwrap();
        assert!(emitting.join().unwrap());
        assert!(received.is_full());
    }

    #[test]
    fn shutdown_releases_a_waiting_connection() {
        let (sink, _received, shutdown) = sink(0);
        assert!(sink.emit(message(1, 10)));
        let emitting = waits(
            &sink,
            Event::Close {
                conn: ConnectionId(1),
                reason: CloseReason::Server { code: 1001, reason: String::new() },
                data: None,
            },
        );
        drop(shutdown);
        assert!(!emitting.join().unwrap(), "the event is dropped (and counted) at shutdown");
        assert_eq!(sink.stats.dropped.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}
