//! Failures in the log: visible at the default level, but never a flood.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::http::log_safe;
use crate::{ConnectionId, Error};

/// Lets at most one line per interval through at a loud level, and counts the others
/// (which their callers log at `debug`) for the next loud line to mention.
#[derive(Debug, Default)]
pub(crate) struct LogGate {
    /// Milliseconds since `start` before which no line is loud.
    quiet_until: AtomicU64,
    suppressed: AtomicU64,
    start: std::sync::OnceLock<Instant>,
}

impl LogGate {
    const INTERVAL_MS: u64 = 10_000;

    /// `Some(n)` when this line may be loud, `n` being how many were held back since the
    /// last loud one; `None` (and counted) when it is not.
    pub(crate) fn pass(&self) -> Option<u64> {
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

/// Reports failed handshakes at `info`, where the default log level shows them (an
/// untrusted certificate is the most common reason a client cannot connect), but at most
/// one line per interval; the rest go to `debug` and are counted in the next line.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    gate: LogGate,
}

impl FailureLog {
    pub(crate) fn report(&self, id: ConnectionId, peer: SocketAddr, what: &str, error: &Error) {
        if matches!(error, Error::Closed) {
            return log::debug!(
                "{id}: {what} with {peer} cut short by the server (shutdown, or shed for a newer client)"
            );
        }
        let error = error.to_string();
        let error = log_safe(&error);
        match self.gate.pass() {
            Some(0) => log::info!("{id}: {what} with {peer} failed: {error}"),
            Some(more) => {
                log::info!("{id}: {what} with {peer} failed: {error} ({more} more failures since the last report)")
            }
            None => log::debug!("{id}: {what} with {peer} failed: {error}"),
        }
    }
}
