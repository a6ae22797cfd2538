//! Log lines that clients can cause, kept from flooding the log.
//!
//! A storm of bad clients must not bury the log (or fill a small device's disk), and a
//! person trying clients one after another must still see each new problem at once.
//! So lines that clients cause go through a [`Throttle`]: at most one line per interval
//! at the level that shows by default, the rest at `debug` and counted in the next line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::http::log_safe;
use crate::{ConnectionId, Error};

/// At most one line per interval for one kind of event.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// Milliseconds since `start` before which no line is let through.
    quiet_until: AtomicU64,
    suppressed: AtomicU64,
    start: OnceLock<Instant>,
}

impl Throttle {
    const INTERVAL_MS: u64 = 10_000;

    /// Whether a line may be logged now at the visible level; if so, how many were held
    /// back since the last one (to say so in the line). If not, the event is counted.
    pub(crate) fn admit(&self) -> Option<u64> {
        let now = self.start.get_or_init(Instant::now).elapsed().as_millis() as u64;
        let quiet_until = self.quiet_until.load(Ordering::Relaxed);
        let claimed = now >= quiet_until
            && self
                .quiet_until
                .compare_exchange(quiet_until, now + Self::INTERVAL_MS, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if claimed {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// " (N more since the last report)", or nothing.
pub(crate) fn more(suppressed: u64) -> String {
    if suppressed > 0 {
        format!(" ({suppressed} more like it since the last report)")
    } else {
        String::new()
    }
}

/// Reports failed handshakes at `info`, where the default log level shows them (an
/// untrusted certificate is the most common reason a client cannot connect). Each kind
/// of failure (an untrusted certificate, plain HTTP to the TLS port, a 404, a timeout)
/// shows at once the first time; repeats of the same kind show at most once per
/// interval, the rest go to `debug` and are counted in the next line of that kind.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    /// One throttle per kind. The kinds come from enums and HTTP statuses, so the map
    /// stays small whatever clients send.
    kinds: Mutex<HashMap<(&'static str, String), Throttle>>,
}

impl FailureLog {
    pub(crate) fn report(&self, id: ConnectionId, peer: SocketAddr, what: &'static str, error: &Error) {
        if matches!(error, Error::Closed) {
            return log::debug!(
                "{id}: {what} with {peer} cut short by the server (shutdown, or shed for a newer client)"
            );
        }
        let admitted = {
            let mut kinds = self.kinds.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            kinds.entry((what, failure_kind(error))).or_default().admit()
        };
        let error = log_safe(&error.to_string()).into_owned();
        match admitted {
            Some(suppressed) => log::info!("{id}: {what} with {peer} failed: {error}{}", more(suppressed)),
            None => log::debug!("{id}: {what} with {peer} failed: {error}"),
        }
    }
}

/// What makes two failures the same kind, for the log: the error's variant and the kind
/// or status inside it, never client text.
fn failure_kind(error: &Error) -> String {
    match error {
        Error::Io(e) => format!("io {:?}", e.kind()),
        Error::Tls { kind, .. } => format!("tls {kind:?}"),
        Error::Handshake { status, .. } => format!("http {status}"),
        Error::Timeout(which) => format!("timeout {which:?}"),
        other => format!("{:?}", std::mem::discriminant(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_lets_one_line_through_per_interval_and_counts_the_rest() {
        let throttle = Throttle::default();
        assert_eq!(throttle.admit(), Some(0));
        assert_eq!(throttle.admit(), None);
        assert_eq!(throttle.admit(), None);
        // The interval passes.
        throttle.quiet_until.store(0, Ordering::Relaxed);
        assert_eq!(throttle.admit(), Some(2), "the next line counts what was held back");
    }

    #[test]
    fn each_kind_of_failure_has_its_own_throttle() {
        let log = FailureLog::default();
        let peer = "127.0.0.1:1".parse().unwrap();
        let refused = Error::Handshake { status: 404, reason: "no endpoint".into() };
        let timeout = Error::Timeout(crate::Timeout::Handshake);
        for _ in 0..3 {
            log.report(ConnectionId(1), peer, "HTTP request", &refused);
        }
        log.report(ConnectionId(2), peer, "HTTP request", &timeout);
        let kinds = log.kinds.lock().unwrap();
        assert_eq!(kinds.len(), 2);
        let held = |kind: &str| kinds[&("HTTP request", kind.to_owned())].suppressed.load(Ordering::Relaxed);
        assert_eq!(held("http 404"), 2, "repeats of one kind are held back");
        assert_eq!(held("timeout Handshake"), 0, "a new kind shows at once");
    }
}
