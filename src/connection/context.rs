//! What every connection thread shares with the server.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Limits;
use crate::http::Policy;
use crate::hub::{EventSink, Registry};
use crate::log_limit::FailureLog;
use crate::stats::Counters;

/// The server-wide state each connection thread works with, built once by
/// [`Server::bind`](crate::Server::bind).
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) limits: Limits,
    pub(crate) policy: Policy,
    /// When the server started (for the health endpoint's uptime).
    pub(crate) started: Instant,
    /// `None` for plain `ws://` behind a TLS-terminating proxy.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) events: EventSink,
    pub(crate) registry: Arc<Registry>,
    pub(crate) stats: Arc<Counters>,
    /// Keeps failed-handshake reports at `info` from flooding the log.
    pub(crate) failure_log: FailureLog,
}

impl Context {
    pub(crate) fn new(
        limits: Limits,
        policy: Policy,
        tls: Option<Arc<rustls::ServerConfig>>,
        events: EventSink,
        registry: Arc<Registry>,
        stats: Arc<Counters>,
    ) -> Context {
        Context {
            limits,
            policy,
            started: Instant::now(),
            tls,
            events,
            registry,
            stats,
            failure_log: FailureLog::default(),
        }
    }
}
