//! The connections to Redis: how each thread makes one (URL, TLS, timeouts), how long it
//! waits before trying again, and the outage bookkeeping both threads share, so that an
//! outage is logged once however many messages it costs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::{ConnectionAddr, TlsCertificates};

use crate::config::RedisSettings;
use crate::stats::{bump, Counters};
use crate::Error;

/// How to reach Redis.
#[derive(Clone)]
pub(super) struct Redis {
    client: redis::Client,
    /// The URL without credentials, for logs and errors.
    pub(super) url: String,
    /// How long connecting or a command may take before Redis counts as unreachable.
    pub(super) timeout: Duration,
}

impl Redis {
    pub(super) fn new(settings: &RedisSettings, timeout: Duration) -> Result<Redis, Error> {
        let url = settings.display_url();
        let client = match &settings.ca_pem {
            Some(pem) => {
                let certificates = TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) };
                redis::Client::build_with_tls(settings.url.as_str(), certificates)
            }
            None => redis::Client::open(settings.url.as_str()),
        }
        .map_err(|e| Error::Redis { url: url.clone(), reason: e.to_string() })?;
        if matches!(client.get_connection_info().addr(), ConnectionAddr::TcpTls { .. }) {
            ensure_crypto_provider();
        }
        Ok(Redis { client, url, timeout })
    }

    /// A new connection, every command on it bounded by the timeout.
    pub(super) fn connect(&self) -> Result<redis::Connection, String> {
        let connection = self.client.get_connection_with_timeout(self.timeout).map_err(|e| e.to_string())?;
        connection.set_read_timeout(Some(self.timeout)).map_err(|e| e.to_string())?;
        connection.set_write_timeout(Some(self.timeout)).map_err(|e| e.to_string())?;
        Ok(connection)
    }
}

/// The redis client builds its rustls configuration on rustls' process-wide provider,
/// and panics when there is none to pick; this crate builds only with ring.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one at the same moment: either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Waiting times between attempts to reach Redis: from 50 ms, doubling, up to a cap.
#[derive(Debug)]
pub(super) struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);

    pub(super) fn new(cap: Duration) -> Backoff {
        Backoff { next: Self::FIRST, cap: cap.max(Self::FIRST) }
    }

    pub(super) fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.cap);
        wait
    }

    pub(super) fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// Which of the two connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Publisher,
    Subscriber,
}

/// Whether each connection is up, and since when Redis has been lost.
pub(super) struct Link {
    node: String,
    url: String,
    stats: Arc<Counters>,
    state: Mutex<State>,
    /// Whether the publisher can take messages (read without the lock by every publish).
    publishing: AtomicBool,
}

#[derive(Default)]
struct State {
    publisher: bool,
    subscriber: bool,
    /// When the outage began: set by the first connection that failed.
    down_since: Option<Instant>,
    /// `backplane_dropped` when it began, to say how many the outage cost.
    dropped_before: u64,
    /// Whether both connections were ever up (the first time is no come-back).
    was_up: bool,
}

impl Link {
    pub(super) fn new(node: &str, url: &str, stats: Arc<Counters>) -> Link {
        Link {
            node: node.to_owned(),
            url: url.to_owned(),
            stats,
            state: Mutex::default(),
            publishing: AtomicBool::new(false),
        }
    }

    /// The URL without credentials.
    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// Whether messages can go to Redis now.
    pub(super) fn publishing(&self) -> bool {
        self.publishing.load(Ordering::Relaxed)
    }

    /// One connection works (again).
    pub(super) fn up(&self, side: Side) {
        let mut state = self.state();
        match side {
            Side::Publisher => {
                state.publisher = true;
                self.publishing.store(true, Ordering::Relaxed);
            }
            Side::Subscriber => state.subscriber = true,
        }
        if !(state.publisher && state.subscriber) {
            return;
        }
        self.stats.backplane_connected.store(1, Ordering::Relaxed);
        let since = state.down_since.take();
        if !std::mem::replace(&mut state.was_up, true) {
            log::info!("{}: connected to Redis at {}", self.node, self.url);
        } else if let Some(since) = since {
            bump(&self.stats.backplane_reconnects);
            let dropped = self.stats.backplane_dropped.load(Ordering::Relaxed) - state.dropped_before;
            log::info!(
                "{}: Redis is back after {:.1} s; {dropped} messages dropped meanwhile (not sent to the other servers)",
                self.node,
                since.elapsed().as_secs_f64()
            );
        }
    }

    /// One connection failed: the first failure of an outage is logged as a warning,
    /// the rest (the other connection, each failed attempt) at `debug`.
    pub(super) fn down(&self, side: Side, error: &str) {
        let mut state = self.state();
        match side {
            Side::Publisher => {
                state.publisher = false;
                self.publishing.store(false, Ordering::Relaxed);
            }
            Side::Subscriber => state.subscriber = false,
        }
        self.stats.backplane_connected.store(0, Ordering::Relaxed);
        if state.down_since.is_some() {
            log::debug!("{}: {side:?}: Redis at {} still unreachable: {error}", self.node, self.url);
            return;
        }
        state.down_since = Some(Instant::now());
        state.dropped_before = self.stats.backplane_dropped.load(Ordering::Relaxed);
        log::warn!(
            "{}: Redis at {} is unreachable ({error}); messages for the other servers are dropped until it is \
             back, and counted",
            self.node,
            self.url
        );
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_starts_over() {
        let mut backoff = Backoff::new(Duration::from_millis(300));
        let waits: Vec<_> = (0..5).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(waits, [50, 100, 200, 300, 300]);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(50));
    }

    #[test]
    fn an_outage_is_counted_once_from_the_first_failure_to_both_links_back() {
        let stats = Arc::new(Counters::default());
        let link = Link::new("n", "redis://h:1", Arc::clone(&stats));
        link.up(Side::Publisher);
        assert!(link.publishing());
        assert_eq!(stats.backplane_connected.load(Ordering::Relaxed), 0, "the subscriber is not up yet");
        link.up(Side::Subscriber);
        assert_eq!(stats.backplane_connected.load(Ordering::Relaxed), 1);
        link.down(Side::Subscriber, "reset");
        link.down(Side::Publisher, "reset");
        assert!(!link.publishing());
        link.up(Side::Publisher);
        assert_eq!(stats.backplane_reconnects.load(Ordering::Relaxed), 0);
        link.up(Side::Subscriber);
        assert_eq!(stats.backplane_reconnects.load(Ordering::Relaxed), 1);
    }
}
