//! The subscriber thread ("tinywss-sub"): listens on the cluster's two channels,
//! checks every envelope, delivers the other nodes' messages to this server's clients
//! through the registry, and keeps presence.
//!
//! It sleeps in a read on its connection. The other nodes' heartbeats and this node's
//! own (its echo) wake it about once per heartbeat per node; a read timeout of one
//! heartbeat, when nothing came, makes it ask Redis for a PING, so a connection that
//! died silently is noticed within two heartbeats.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use redis::{Connection, Msg, PubSub};

use super::envelope::{self, Body, Envelope, Payload};
use super::link::{Backoff, Redis, Side};
use super::presence::{Heard, MISSED_HEARTBEATS};
use super::{Outgoing, Shared};
use crate::http::log_safe;
use crate::stats::bump;
use crate::Error;

/// The shortest read timeout (a node about to expire).
const MIN_WAIT: Duration = Duration::from_millis(10);

/// Starts the thread; `connection` is the one made at start, if any. `ready` hears
/// once the first subscription is in place.
pub(super) fn spawn(
    shared: Arc<Shared>,
    redis: Redis,
    wake_publisher: Sender<Outgoing>,
    stop: Receiver<()>,
    connection: Option<Connection>,
    ready: Sender<()>,
    alive: Sender<()>,
) -> Result<JoinHandle<()>, Error> {
    let backoff = Backoff::new(shared.heartbeat);
    let subscriber = Subscriber { shared, redis, wake_publisher, stop, ready: Some(ready), backoff, last_hello: None };
    let thread = std::thread::Builder::new().name("tinywss-sub".into()).spawn(move || {
        let _alive = alive;
        subscriber.run(connection);
    })?;
    Ok(thread)
}

struct Subscriber {
    shared: Arc<Shared>,
    redis: Redis,
    wake_publisher: Sender<Outgoing>,
    stop: Receiver<()>,
    ready: Option<Sender<()>>,
    backoff: Backoff,
    /// When this node last asked for everyone's presence (at most once per heartbeat).
    last_hello: Option<Instant>,
}

impl Subscriber {
    fn run(mut self, mut connection: Option<Connection>) {
        loop {
            if self.shared.stopping() {
                return;
            }
            let result = match connection.take().map_or_else(|| self.redis.connect(), Ok) {
                Ok(mut redis) => self.listen(&mut redis),
                Err(error) => Err(error),
            };
            match result {
                Ok(()) => return,
                Err(error) => self.shared.link.down(Side::Subscriber, &error),
            }
            // A stop, or the pause before the next attempt.
            if self.stop.recv_timeout(self.backoff.next()).is_err_and(|e| e.is_disconnected()) {
                return;
            }
        }
    }

    /// Subscribes and handles messages until the connection fails (`Err`) or the
    /// backplane stops (`Ok`).
    fn listen(&mut self, redis: &mut Connection) -> Result<(), String> {
        let mut pubsub = redis.as_pubsub();
        pubsub.set_read_timeout(Some(self.redis.timeout)).map_err(|e| e.to_string())?;
        let channels = [self.shared.messages_channel.as_str(), self.shared.nodes_channel.as_str()];
        pubsub.subscribe(&channels[..]).map_err(|e| e.to_string())?;
        self.subscribed();
        let mut last_heard = Instant::now();
        let mut timeout = self.redis.timeout;
        while !self.shared.stopping() {
            let now = Instant::now();
            let wait = self.wait_until(now).saturating_duration_since(now).max(MIN_WAIT);
            if wait != timeout {
                pubsub.set_read_timeout(Some(wait)).map_err(|e| e.to_string())?;
                timeout = wait;
            }
            match pubsub.get_message() {
                Ok(message) => {
                    last_heard = Instant::now();
                    self.handle(&message);
                }
                Err(e) if e.is_timeout() => {
                    if last_heard.elapsed() >= self.shared.heartbeat {
                        self.ping(&mut pubsub, &mut timeout)?;
                        last_heard = Instant::now();
                    }
                }
                Err(e) => return Err(e.to_string()),
            }
            self.expire(Instant::now());
        }
        Ok(())
    }

    /// The subscription is in place (again): this node hears the cluster, and asks
    /// everyone for their presence, since what it knew may be stale.
    fn subscribed(&mut self) {
        self.backoff.reset();
        self.shared.link.up(Side::Subscriber);
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(());
        }
        self.request_hello(true);
    }

    /// Nothing came for a heartbeat (not even this node's own): is Redis still there?
    fn ping(&self, pubsub: &mut PubSub<'_>, timeout: &mut Duration) -> Result<(), String> {
        pubsub.set_read_timeout(Some(self.redis.timeout)).map_err(|e| e.to_string())?;
        *timeout = self.redis.timeout;
        pubsub.ping::<redis::Value>().map(drop).map_err(|e| format!("no answer to PING: {e}"))
    }

    /// The next heartbeat, or a node's expiry if that comes first.
    fn wait_until(&self, now: Instant) -> Instant {
        let beat = now + self.shared.heartbeat;
        self.shared.remote().next_expiry().map_or(beat, |expiry| expiry.min(beat))
    }

    fn handle(&mut self, message: &Msg) {
        let shared = &self.shared;
        let channel = message.get_channel_name();
        let on_messages = if channel == shared.messages_channel {
            true
        } else if channel == shared.nodes_channel {
            false
        } else {
            return;
        };
        let bytes = message.get_payload_bytes();
        if !on_messages && bytes.len() > envelope::MAX_CONTROL {
            return shared.malformed("a presence or heartbeat envelope larger than 64 KiB");
        }
        let envelope = match envelope::decode(bytes) {
            Ok(envelope) => envelope,
            Err(why) => return shared.malformed(why),
        };
        if envelope.body.is_message() != on_messages {
            return shared.malformed("an envelope on the wrong channel");
        }
        if envelope.node == shared.node {
            return self.own(&envelope);
        }
        match envelope.body {
            Body::Message { room, payload, .. } => self.deliver(room, &payload),
            _ => self.heard(&envelope),
        }
    }

    /// A message from another node, for this node's members of `room` (or everyone).
    fn deliver(&self, room: Option<&str>, payload: &Payload<'_>) {
        let shared = &self.shared;
        if payload.len() > shared.max_message_size {
            return shared.malformed("a message larger than max_message_size");
        }
        let Some(registry) = shared.registry.upgrade() else { return };
        bump(&shared.stats.backplane_received);
        let message = payload.to_ws();
        // The sender's connection is excluded on its own node only: ids are per node.
        let _ = match room {
            Some(room) => registry.publish_here(room, &message, None),
            None => registry.broadcast_here(&message),
        };
    }

    /// This node's own envelope, back from Redis: skipped. A heartbeat in its name
    /// from another process means two servers share a name, which breaks both.
    fn own(&self, envelope: &Envelope<'_>) {
        if let Body::Heartbeat { incarnation, .. } = envelope.body {
            if incarnation != self.shared.incarnation {
                self.shared.malformed(
                    "a heartbeat in this server's name from another server: give each server its own \
                     redis_node_name, or they ignore each other's messages",
                );
            }
        }
    }

    /// Presence and liveness from another node.
    fn heard(&mut self, envelope: &Envelope<'_>) {
        let (node, now) = (envelope.node, Instant::now());
        let known = self.shared.remote().knows(node);
        let heard = match &envelope.body {
            Body::Heartbeat { version, interval_ms, .. } => {
                if *interval_ms == 0 || *interval_ms > 3_600_000 {
                    return self.shared.malformed("a heartbeat interval outside 1 ms to 1 hour");
                }
                let interval = Duration::from_millis(u64::from(*interval_ms));
                self.shared.remote().heartbeat(node, *version, interval, now)
            }
            Body::Presence { version, replace, rooms } => {
                self.shared.remote().presence(node, *version, *replace, rooms, self.shared.heartbeat, now)
            }
            Body::Hello => {
                self.shared.presence_all_due.store(true, Ordering::Relaxed);
                let _ = self.wake_publisher.try_send(Outgoing::Wake);
                Heard::Fine
            }
            Body::Goodbye => {
                if self.shared.remote().goodbye(node) {
                    log::info!("{}: {} left the cluster", self.shared.node, log_safe(node));
                }
                Heard::Fine
            }
            Body::Message { .. } => Heard::Fine,
        };
        match heard {
            Heard::Fine => {}
            Heard::Gap => self.request_hello(false),
            Heard::Ignored => return self.shared.malformed("a node beyond the 256 this server keeps track of"),
            Heard::Truncated => self.shared.malformed(
                "presence beyond what this server keeps for other nodes (100,000 rooms each, 16 MiB of room \
                 names in all); the rest left out",
            ),
        }
        if !known && self.shared.remote().knows(node) {
            log::info!("{}: {} joined the cluster", self.shared.node, log_safe(node));
        }
        self.count_nodes(now);
    }

    /// Asks every node for its whole presence: at once after (re)subscribing, else at
    /// most once per heartbeat.
    fn request_hello(&mut self, now_anyway: bool) {
        let now = Instant::now();
        if now_anyway || self.last_hello.is_none_or(|last| now >= last + self.shared.heartbeat) {
            self.last_hello = Some(now);
            self.shared.hello_due.store(true, Ordering::Relaxed);
            let _ = self.wake_publisher.try_send(Outgoing::Wake);
        }
    }

    /// Forgets the nodes not heard from for three of their heartbeats.
    fn expire(&self, now: Instant) {
        let mut remote = self.shared.remote();
        for node in remote.expired(now) {
            log::warn!(
                "{}: {} not heard from for {MISSED_HEARTBEATS} heartbeats: gone from the cluster, with its members",
                self.shared.node,
                log_safe(&node)
            );
        }
        if remote.expire(now) {
            drop(remote);
            self.count_nodes(now);
        }
    }

    fn count_nodes(&self, now: Instant) {
        let nodes = 1 + self.shared.remote().count(now);
        self.shared.stats.backplane_nodes.store(nodes as u64, Ordering::Relaxed);
    }
}
