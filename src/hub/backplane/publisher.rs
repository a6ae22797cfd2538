//! The publisher thread ("tinywss-pub"): takes what `publish` and `broadcast` handed
//! off and sends it to Redis in batches (everything that waited, in one write and one
//! round trip), with this node's presence changes and its heartbeat.
//!
//! It sleeps on the hand-off until a message comes or the next heartbeat is due: an
//! idle node wakes it once per heartbeat. While Redis is unreachable it waits between
//! attempts (backoff), dropping and counting what was handed off before `publish` saw
//! the outage.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use redis::{Connection, Value};

use super::envelope;
use super::link::{Backoff, Redis, Side};
use super::presence::LocalPresence;
use super::{Outgoing, Shared};
use crate::stats::add;
use crate::Error;

/// A batch holds at most this many messages, or about this many bytes: one write, and
/// a bound on what a failed write loses.
const MAX_BATCH_MESSAGES: usize = 512;
const MAX_BATCH_BYTES: usize = 1 << 20;

/// Presence changes go out at most this often: a burst of joins is one envelope.
const PRESENCE_EVERY: Duration = Duration::from_millis(50);

/// Starts the thread; `connection` is the one made at start, if any.
pub(super) fn spawn(
    shared: Arc<Shared>,
    redis: Redis,
    queue: Receiver<Outgoing>,
    stop: Receiver<()>,
    connection: Option<Connection>,
    alive: Sender<()>,
) -> Result<JoinHandle<()>, Error> {
    let backoff = Backoff::new(shared.heartbeat);
    if connection.is_some() {
        // Before `Server::bind` returns: its first publish must not find Redis "down".
        shared.link.up(Side::Publisher);
    }
    let publisher = Publisher {
        shared,
        redis,
        queue,
        stop,
        local: LocalPresence::default(),
        next_heartbeat: Instant::now(),
        last_presence: None,
        backoff,
    };
    let thread = std::thread::Builder::new().name("tinywss-pub".into()).spawn(move || {
        let _alive = alive;
        publisher.run(connection);
    })?;
    Ok(thread)
}

struct Publisher {
    shared: Arc<Shared>,
    redis: Redis,
    queue: Receiver<Outgoing>,
    stop: Receiver<()>,
    /// What the other nodes were told about this one's rooms.
    local: LocalPresence,
    next_heartbeat: Instant,
    last_presence: Option<Instant>,
    backoff: Backoff,
}

/// How one turn of the loop ended.
enum Turn {
    Continue,
    Stop,
    /// The connection failed; the batch's messages are lost.
    Failed {
        error: String,
        lost: usize,
    },
}

impl Publisher {
    fn run(mut self, mut connection: Option<Connection>) {
        if connection.is_some() {
            self.announce();
        }
        loop {
            let Some(redis) = connection.as_mut() else {
                connection = self.reconnect();
                if connection.is_none() {
                    return;
                }
                continue;
            };
            match self.turn(redis) {
                Turn::Continue => {}
                Turn::Stop => return self.goodbye(redis),
                Turn::Failed { error, lost } => {
                    // Down first: the outage's count of drops includes this batch.
                    self.shared.link.down(Side::Publisher, &error);
                    add(&self.shared.stats.backplane_dropped, lost);
                    connection = None;
                }
            }
        }
    }

    /// Connects again, waiting longer after each failure; `None` once told to stop.
    fn reconnect(&mut self) -> Option<Connection> {
        loop {
            if self.shared.stopping() {
                return None;
            }
            match self.redis.connect() {
                Ok(connection) => {
                    self.backoff.reset();
                    self.shared.link.up(Side::Publisher);
                    self.announce();
                    return Some(connection);
                }
                Err(error) => self.shared.link.down(Side::Publisher, &error),
            }
            let pause = self.backoff.next();
            if self.pause(pause) {
                return None;
            }
        }
    }

    /// Tells everyone who this node is and what it has, at once.
    fn announce(&mut self) {
        self.shared.presence_all_due.store(true, Ordering::Relaxed);
        self.next_heartbeat = Instant::now();
        self.last_presence = None;
    }

    /// Waits `pause` while Redis is down; what was handed off meanwhile is dropped and
    /// counted. Returns whether to stop.
    fn pause(&self, pause: Duration) -> bool {
        let deadline = Instant::now() + pause;
        loop {
            select! {
                recv(self.queue) -> item => match item {
                    Ok(Outgoing::Message { room, message, .. }) => {
                        self.shared.queued_bytes.fetch_sub(queued_len(room.as_deref(), &message), Ordering::Relaxed);
                        add(&self.shared.stats.backplane_dropped, 1);
                    }
                    Ok(Outgoing::Wake) => {}
                    Err(_) => return true,
                },
                recv(self.stop) -> _ => return true,
                default(deadline.saturating_duration_since(Instant::now())) => return false,
            }
        }
    }

    /// Waits for work (or the next heartbeat), sends it all in one batch.
    fn turn(&mut self, redis: &mut Connection) -> Turn {
        let mut batch = Batch::default();
        let wait = self.next_due().saturating_duration_since(Instant::now());
        let stop = select! {
            recv(self.queue) -> item => match item {
                Ok(item) => { self.add(&mut batch, item); false }
                Err(_) => true,
            },
            recv(self.stop) -> _ => true,
            default(wait) => false,
        };
        while !batch.full() {
            match self.queue.try_recv() {
                Ok(item) => self.add(&mut batch, item),
                Err(_) => break,
            }
        }
        let presence = self.presence(&mut batch);
        self.heartbeat(&mut batch, presence.as_ref().map_or(0, |(_, versions)| *versions));
        if batch.commands > 0 {
            if let Err(error) = batch.send(redis) {
                return Turn::Failed { error, lost: batch.messages };
            }
            add(&self.shared.stats.backplane_published, batch.messages);
            if let Some((current, versions)) = presence {
                self.local.sent(current, versions);
            }
        }
        if stop || self.shared.stopping() {
            Turn::Stop
        } else {
            Turn::Continue
        }
    }

    /// When the loop must wake up even if nothing is handed off.
    fn next_due(&self) -> Instant {
        let shared = &self.shared;
        let presence_waits = shared.presence_changed.load(Ordering::Relaxed)
            || shared.presence_all_due.load(Ordering::Relaxed)
            || shared.hello_due.load(Ordering::Relaxed);
        match (presence_waits, self.last_presence) {
            (true, Some(last)) => self.next_heartbeat.min(last + PRESENCE_EVERY),
            (true, None) => Instant::now(),
            (false, _) => self.next_heartbeat,
        }
    }

    fn add(&self, batch: &mut Batch, item: Outgoing) {
        if let Outgoing::Message { room, message, except } = item {
            self.shared.queued_bytes.fetch_sub(queued_len(room.as_deref(), &message), Ordering::Relaxed);
            batch.message(&self.shared.messages_channel, &self.shared.node, room.as_deref(), except, &message);
        }
    }

    /// Adds a hello if the subscriber asked for one, and this node's presence if it
    /// changed (or everyone's is due); returns the rooms sent and how many versions.
    fn presence(&mut self, batch: &mut Batch) -> Option<(std::collections::HashMap<String, usize>, u64)> {
        let shared = &self.shared;
        if shared.hello_due.swap(false, Ordering::Relaxed) {
            batch.publish(&shared.nodes_channel, &envelope::hello(&shared.node));
        }
        let now = Instant::now();
        if self.last_presence.is_some_and(|last| now < last + PRESENCE_EVERY) {
            return None;
        }
        let replace = shared.presence_all_due.swap(false, Ordering::Relaxed);
        // Cleared before the rooms are read: a change after the read sets it again.
        let changed = shared.presence_changed.swap(false, Ordering::Relaxed);
        if !(replace || changed) {
            return None;
        }
        let current = shared.registry.upgrade()?.room_sizes();
        let changes = self.local.changes(&current, replace);
        if changes.is_empty() && !replace {
            return None;
        }
        let chunks = envelope::presence(&shared.node, self.local.version + 1, replace, &changes);
        for chunk in &chunks {
            batch.publish(&shared.nodes_channel, chunk);
        }
        self.last_presence = Some(now);
        Some((current, chunks.len() as u64))
    }

    /// Adds the heartbeat if it is due; `pending` presence versions go in the same batch.
    fn heartbeat(&mut self, batch: &mut Batch, pending: u64) {
        let now = Instant::now();
        if now < self.next_heartbeat {
            return;
        }
        let shared = &self.shared;
        let interval_ms = u32::try_from(shared.heartbeat.as_millis()).unwrap_or(u32::MAX);
        let beat = envelope::heartbeat(&shared.node, self.local.version + pending, interval_ms, shared.incarnation);
        batch.publish(&shared.nodes_channel, &beat);
        self.next_heartbeat = now + shared.heartbeat;
    }

    /// The last word: the other nodes forget this one at once instead of after its
    /// heartbeats stop.
    fn goodbye(&self, redis: &mut Connection) {
        let mut batch = Batch::default();
        batch.publish(&self.shared.nodes_channel, &envelope::goodbye(&self.shared.node));
        if let Err(e) = batch.send(redis) {
            log::debug!("{}: goodbye not sent: {e}", self.shared.node);
        }
    }
}

/// What a handed-off message counts toward `redis_publish_queue_bytes` (as
/// `Backplane::hand_off` added it).
fn queued_len(room: Option<&str>, message: &tungstenite::Message) -> usize {
    message.len() + room.map_or(0, str::len)
}

/// `PUBLISH` commands written in RESP, one after the other, sent as one write.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    commands: usize,
    /// How many of the commands are messages (the rest are presence and heartbeats).
    messages: usize,
}

impl Batch {
    fn full(&self) -> bool {
        self.messages >= MAX_BATCH_MESSAGES || self.buf.len() >= MAX_BATCH_BYTES
    }

    fn publish(&mut self, channel: &str, payload: &[u8]) {
        self.head(channel, payload.len());
        self.buf.extend_from_slice(payload);
        self.buf.extend_from_slice(b"\r\n");
        self.commands += 1;
    }

    /// A message's envelope is written straight into the batch: one copy of the payload.
    fn message(
        &mut self,
        channel: &str,
        node: &str,
        room: Option<&str>,
        except: Option<crate::ConnectionId>,
        message: &tungstenite::Message,
    ) {
        let start = self.buf.len();
        self.head(channel, envelope::message_len(node, room, message.len()));
        if !envelope::write_message(&mut self.buf, node, room, except, message) {
            // Not a data message or a room name too long: refused before the hand-off.
            self.buf.truncate(start);
            return;
        }
        self.buf.extend_from_slice(b"\r\n");
        self.commands += 1;
        self.messages += 1;
    }

    /// `*3 $7 PUBLISH $n channel $len` (the payload follows).
    fn head(&mut self, channel: &str, len: usize) {
        let _ = write!(self.buf, "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{channel}\r\n${len}\r\n", channel.len());
    }

    /// Writes the batch and reads one reply per command, stopping at the first failure
    /// (each read waits at most the connection's timeout, so a hung Redis costs one
    /// timeout, not one per command).
    fn send(&self, redis: &mut Connection) -> Result<(), String> {
        redis.send_packed_command(&self.buf).map_err(|e| e.to_string())?;
        for _ in 0..self.commands {
            match redis.recv_response().map_err(|e| e.to_string())? {
                Value::ServerError(e) => return Err(format!("Redis refused PUBLISH: {e}")),
                _ => continue,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_publish_commands_in_resp() {
        let mut batch = Batch::default();
        batch.publish("t:nodes", b"hi");
        batch.message("t:messages", "n", None, None, &tungstenite::Message::text("x"));
        let expected_head = b"*3\r\n$7\r\nPUBLISH\r\n$7\r\nt:nodes\r\n$2\r\nhi\r\n";
        assert!(batch.buf.starts_with(expected_head));
        let second = &batch.buf[expected_head.len()..];
        let len = envelope::message_len("n", None, 1);
        let head = format!("*3\r\n$7\r\nPUBLISH\r\n$10\r\nt:messages\r\n${len}\r\n");
        assert!(second.starts_with(head.as_bytes()));
        assert_eq!(second.len(), head.len() + len + 2);
        assert_eq!((batch.commands, batch.messages), (2, 1));
    }
}
