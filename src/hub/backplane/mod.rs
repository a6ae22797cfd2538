//! The Redis backplane (feature `redis`): rooms that span several servers.
//!
//! ```text
//!  Handle::publish ──► registry: this server's members, at once, in the caller's thread
//!                  └─► Relay::publish ──try_send──► [bounded hand-off] ──► "tinywss-pub" ──PUBLISH──► Redis
//!                                                                                                       │
//!  registry.publish_here ◄── envelope checks ◄── "tinywss-sub" ◄──────────── PREFIX:messages, PREFIX:nodes
//! ```
//!
//! - **Channels**: two per cluster, whatever the number of rooms: `PREFIX:messages` for
//!   room messages and broadcasts, `PREFIX:nodes` for heartbeats and presence. Every node
//!   subscribes to both and skips the rooms it has no member in. One channel per room
//!   would spare a node the messages of rooms it does not have, but costs a
//!   `SUBSCRIBE`/`UNSUBSCRIBE` round trip whenever a room appears on or leaves a node,
//!   and a member who just joined would miss what was published before that round trip
//!   ended. With one channel, a member counted in presence on another node receives
//!   everything that node publishes afterwards. Redis spends the same either way
//!   (`bench/NOTES.md`, medians of 4 runs with three subscribing nodes: 1.06 µs per
//!   `PUBLISH` to one channel, 1.04 µs with a channel per room each on one node, 1.29 µs
//!   with every room on all three, 1.18 µs with a pattern subscription). What the
//!   single channel costs is on the nodes: about 30 µs of the subscriber thread for a
//!   message it skips, mostly its wake-up.
//! - **Order and exactly once**: one publisher connection per node, one subscriber
//!   connection per node, and Redis keeps the order of one connection's commands; a
//!   node delivers its own messages at once and skips them when they come back (they
//!   carry its name). What could not be sent is dropped and counted, never retried, so
//!   nothing arrives twice.
//! - **Presence** (`presence.rs`): versioned room sizes and heartbeats on
//!   `PREFIX:nodes`; a node not heard from for three of its heartbeats is gone.
//! - **Faults** (`link.rs`): each thread reconnects with backoff and resubscribes;
//!   while Redis is unreachable, `publish` drops at once (counted); the outage is logged
//!   once.
//! - **Untrusted input**: every envelope is checked (`envelope.rs`), against
//!   `max_message_size` too; what fails is skipped and counted.

mod envelope;
mod link;
mod presence;
mod publisher;
mod subscriber;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use tungstenite::Message as WsMessage;

use super::relay::Relay;
use super::Registry;
use crate::config::RedisSettings;
use crate::log_limit::{more, Throttle};
use crate::stats::{bump, Counters};
use crate::{ConnectionId, Error};
use link::{Link, Redis};
use presence::RemoteNodes;

/// One node's link to the cluster: the hand-off to its publisher thread, and what its
/// subscriber thread has heard.
pub(crate) struct Backplane {
    shared: Arc<Shared>,
    queue: Sender<Outgoing>,
    /// Dropped to stop both threads.
    stop: Mutex<Option<Sender<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Disconnects when both threads have ended.
    alive: Receiver<()>,
}

/// What the two threads and the callers share.
struct Shared {
    node: String,
    /// Different in every process: tells this server's own echo from another server
    /// that was given the same name by mistake.
    incarnation: u64,
    messages_channel: String,
    nodes_channel: String,
    heartbeat: Duration,
    max_message_size: usize,
    queue_bytes: usize,
    /// Payload bytes waiting in the hand-off.
    queued_bytes: AtomicUsize,
    stats: Arc<Counters>,
    /// Weak: the registry owns the backplane, not the other way round.
    registry: Weak<Registry>,
    link: Link,
    remote: Mutex<RemoteNodes>,
    /// This server's rooms changed since the publisher last told the others.
    presence_changed: AtomicBool,
    /// Someone asked for every node's whole presence (a hello), or this node reconnected.
    presence_all_due: AtomicBool,
    /// The subscriber asks the others for their whole presence.
    hello_due: AtomicBool,
    stopping: AtomicBool,
    /// Keeps a storm of dropped or malformed messages from flooding the log.
    drop_log: Throttle,
    malformed_log: Throttle,
}

/// What the callers hand to the publisher thread.
enum Outgoing {
    Message {
        room: Option<String>,
        message: WsMessage,
        except: Option<ConnectionId>,
    },
    /// Look at the flags (presence, hello).
    Wake,
}

impl std::fmt::Debug for Backplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backplane").field("node", &self.shared.node).finish_non_exhaustive()
    }
}

impl Backplane {
    /// Connects to Redis (unless `retry_at_start`) and starts the two threads. The node
    /// is named after `port` unless the settings name it.
    pub(crate) fn start(
        settings: RedisSettings,
        registry: &Arc<Registry>,
        stats: &Arc<Counters>,
        max_message_size: usize,
        port: u16,
    ) -> Result<Arc<Backplane>, Error> {
        let node = settings.node_name.clone().unwrap_or_else(|| default_node_name(port));
        let redis = Redis::new(&settings, settings.heartbeat.max(Duration::from_secs(1)))?;
        let unreachable = |reason: String| Error::Redis { url: redis.url.clone(), reason };
        let connections = match settings.retry_at_start {
            true => (None, None),
            false => (Some(redis.connect().map_err(unreachable)?), Some(redis.connect().map_err(unreachable)?)),
        };
        let prefix = &settings.channel_prefix;
        let shared = Arc::new(Shared {
            link: Link::new(&node, &redis.url, Arc::clone(stats)),
            incarnation: incarnation(),
            messages_channel: format!("{prefix}:messages"),
            nodes_channel: format!("{prefix}:nodes"),
            heartbeat: settings.heartbeat,
            max_message_size,
            queue_bytes: settings.publish_queue_bytes,
            queued_bytes: AtomicUsize::new(0),
            stats: Arc::clone(stats),
            registry: Arc::downgrade(registry),
            remote: Mutex::default(),
            presence_changed: AtomicBool::new(true),
            presence_all_due: AtomicBool::new(true),
            hello_due: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            drop_log: Throttle::default(),
            malformed_log: Throttle::default(),
            node,
        });
        stats.backplane_nodes.store(1, Ordering::Relaxed);
        let backplane = Backplane::spawn(shared, redis, settings, connections)?;
        log::info!(
            "{}: joining the cluster on Redis at {} (channels {} and {})",
            backplane.shared.node,
            backplane.shared.link.url(),
            backplane.shared.messages_channel,
            backplane.shared.nodes_channel
        );
        Ok(backplane)
    }

    fn spawn(
        shared: Arc<Shared>,
        redis: Redis,
        settings: RedisSettings,
        (publisher, subscriber): (Option<redis::Connection>, Option<redis::Connection>),
    ) -> Result<Arc<Backplane>, Error> {
        let (queue, queue_rx) = bounded(settings.publish_queue);
        let (stop, stop_rx) = bounded::<()>(0);
        let (alive, alive_rx) = bounded::<()>(0);
        let (ready, ready_rx) = bounded::<()>(1);
        let threads = vec![
            publisher::spawn(Arc::clone(&shared), redis.clone(), queue_rx, stop_rx.clone(), publisher, alive.clone())?,
            subscriber::spawn(Arc::clone(&shared), redis.clone(), queue.clone(), stop_rx, subscriber, ready, alive)?,
        ];
        let backplane = Arc::new(Backplane {
            shared,
            queue,
            stop: Mutex::new(Some(stop)),
            threads: Mutex::new(threads),
            alive: alive_rx,
        });
        // Required at start: not ready until subscribed, so that a message published on
        // another server once `Server::bind` has returned reaches this one.
        if !settings.retry_at_start && ready_rx.recv_timeout(redis.timeout * 2).is_err() {
            backplane.stop();
            let reason = "connected, but could not subscribe to the cluster's channels in time".into();
            return Err(Error::Redis { url: redis.url, reason });
        }
        Ok(backplane)
    }

    /// Hands a message to the publisher thread without waiting; what cannot go is
    /// dropped and counted.
    fn hand_off(&self, room: Option<&str>, message: &WsMessage, except: Option<ConnectionId>) {
        let shared = &self.shared;
        if !shared.link.publishing() {
            // Logged once for the whole outage, by the thread that saw Redis go.
            return bump(&shared.stats.backplane_dropped);
        }
        if message.len() > shared.max_message_size || room.is_some_and(|room| room.len() > usize::from(u16::MAX)) {
            return shared.dropped("a message larger than max_message_size, or for a room name longer than 64 KiB");
        }
        // The room's name waits too: a long one costs its bytes.
        let len = message.len() + room.map_or(0, str::len);
        let waiting = shared.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if waiting > 0 && waiting + len > shared.queue_bytes {
            shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            return shared.dropped("the hand-off to Redis is full: Redis is slower than the publishers");
        }
        let outgoing = Outgoing::Message { room: room.map(str::to_owned), message: message.clone(), except };
        match self.queue.try_send(outgoing) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                shared.dropped("the hand-off to Redis is full: Redis is slower than the publishers");
            }
            // The publisher thread has stopped: the server is shutting down.
            Err(TrySendError::Disconnected(_)) => bump(&shared.stats.backplane_dropped),
        }
    }
}

impl Relay for Backplane {
    fn publish(&self, room: Option<&str>, message: &WsMessage, except: Option<ConnectionId>) {
        self.hand_off(room, message, except);
    }

    fn rooms_changed(&self) {
        // One wake-up per batch of changes: the publisher clears the flag when it reads it.
        if !self.shared.presence_changed.swap(true, Ordering::Relaxed) {
            let _ = self.queue.try_send(Outgoing::Wake);
        }
    }

    fn remote_members(&self, room: &str) -> usize {
        self.shared.remote().members(room, Instant::now())
    }

    fn nodes(&self) -> Vec<String> {
        let mut nodes = vec![self.shared.node.clone()];
        nodes.extend(self.shared.remote().names(Instant::now()));
        nodes
    }

    fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.stop.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    }

    fn join(&self, deadline: Instant) {
        let done = matches!(self.alive.recv_deadline(deadline), Err(RecvTimeoutError::Disconnected));
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for thread in threads {
            if done || thread.is_finished() {
                let _ = thread.join();
            } else {
                log::debug!("{}: a backplane thread is still waiting for Redis; it ends by itself", self.shared.node);
            }
        }
    }
}

impl Drop for Backplane {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn remote(&self) -> MutexGuard<'_, RemoteNodes> {
        self.remote.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A message that does not go to the other servers: counted, and logged at most
    /// once per 10 s.
    fn dropped(&self, why: &str) {
        bump(&self.stats.backplane_dropped);
        match self.drop_log.admit() {
            Some(held_back) => log::warn!("{}: not sent to the other servers: {why}{}", self.node, more(held_back)),
            None => log::debug!("{}: not sent to the other servers: {why}", self.node),
        }
    }

    /// An envelope from Redis that fails its checks: skipped, counted, logged at most
    /// once per 10 s.
    fn malformed(&self, why: &str) {
        bump(&self.stats.backplane_malformed);
        match self.malformed_log.admit() {
            Some(held_back) => log::warn!("{}: skipped a message from Redis: {why}{}", self.node, more(held_back)),
            None => log::debug!("{}: skipped a message from Redis: {why}", self.node),
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// The host name and the port: unique per machine, and stable across restarts.
fn default_node_name(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let host: String = host.trim().chars().filter(char::is_ascii_graphic).take(48).collect();
    let host = if host.is_empty() { "tinywss".to_owned() } else { host };
    format!("{host}:{port}")
}

/// A number that differs from one process (and start) to the next.
fn incarnation() -> u64 {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    std::collections::hash_map::RandomState::new().hash_one((now, std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_printable_and_end_with_the_port() {
        let name = default_node_name(8443);
        assert!(name.ends_with(":8443"), "{name}");
        assert!(name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic()), "{name}");
    }
}
