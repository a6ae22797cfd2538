//! Failed handshakes in the log: visible at the default level, but never a flood.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::http::log_safe;
use crate::{ConnectionId, Error};

/// Reports failed handshakes at `info`, where the default log level shows them (an
/// untrusted certificate is the most common reason a client cannot connect), but at most
/// one line per interval; the rest go to `debug` and are counted in the next line.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    /// Milliseconds since `start` before which failures are not reported at `info`.
    quiet_until: AtomicU64,
    suppressed: AtomicU64,
    start: std::sync::OnceLock<Instant>,
}

impl FailureLog {
    const INTERVAL_MS: u64 = 10_000;

    pub(crate) fn report(&self, id: ConnectionId, peer: SocketAddr, what: &str, error: &Error) {
        if matches!(error, Error::Closed) {
            return log::debug!("{id}: {what} with {peer} cut short by the shutdown");
        }
        let now = self.start.get_or_init(Instant::now).elapsed().as_millis() as u64;
        let quiet_until = self.quiet_until.load(Ordering::Relaxed);
        let claimed = now >= quiet_until
            && self
                .quiet_until
                .compare_exchange(quiet_until, now + Self::INTERVAL_MS, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if claimed {
            let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
            let more = if suppressed > 0 {
                format!(" ({suppressed} more failures since the last report)")
            } else {
                String::new()
            };
            log::info!("{id}: {what} with {peer} failed: {}{more}", log_safe(&error.to_string()));
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            log::debug!("{id}: {what} with {peer} failed: {}", log_safe(&error.to_string()));
        }
    }
}
