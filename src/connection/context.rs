//! What every connection thread shares with the server.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Sender;

use crate::config::Limits;
use crate::http::Policy;
use crate::hub::{EventSink, Registry};
use crate::log_limit::FailureLog;
use crate::stats::Counters;
use crate::ConnectionId;

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
    /// Whether each client is served by the application's handler on its own thread
    /// (the handler itself travels with each accepted connection).
    pub(crate) handler_mode: bool,
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
            handler_mode: false,
        }
    }

    /// Serves each client with the application's handler on its own thread.
    pub(crate) fn in_handler_mode(mut self, handler_mode: bool) -> Context {
        self.handler_mode = handler_mode;
        self
    }
}

/// Counts a connection as served (`Stats::connections`) for exactly as long as it lives,
/// from `accept` to the end of its thread, and keeps the shutdown waiting for it.
#[derive(Debug)]
pub(crate) struct Lifeline {
    stats: Arc<Counters>,
    /// The shutdown waits until every clone of this is gone.
    _alive: Sender<()>,
}

impl Lifeline {
    pub(crate) fn new(stats: Arc<Counters>, alive: Sender<()>) -> Lifeline {
        stats.connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Lifeline { stats, _alive: alive }
    }
}

impl Drop for Lifeline {
    fn drop(&mut self) {
        self.stats.connections.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A connection's place under the acceptor's limits (handshakes in progress, connections
/// per address): tells the acceptor when its handshake is over and when its thread is.
///
/// Dropping it tells both, so a thread that ends early, or unwinds, still gives its
/// place back. The acceptor reads the news when it next decides on a client; nothing is
/// locked and the acceptor is not woken for it.
#[derive(Debug)]
pub(crate) struct Slot {
    id: ConnectionId,
    /// The address the acceptor counts the connection under.
    address: IpAddr,
    handshaking: bool,
    acceptor: Sender<Departure>,
}

/// What a [`Slot`] tells the acceptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Departure {
    pub(crate) id: ConnectionId,
    pub(crate) address: IpAddr,
    /// `true` when the thread ends, `false` when only the handshake is over.
    pub(crate) thread_over: bool,
}

impl Slot {
    pub(crate) fn new(id: ConnectionId, address: IpAddr, acceptor: Sender<Departure>) -> Slot {
        Slot { id, address, handshaking: true, acceptor }
    }

    /// The handshake is over, whatever its outcome.
    pub(crate) fn handshake_over(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            self.tell(false);
        }
    }

    fn tell(&self, thread_over: bool) {
        // After the acceptor has stopped nobody counts any more.
        let _ = self.acceptor.send(Departure { id: self.id, address: self.address, thread_over });
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.handshake_over();
        self.tell(true);
    }
}
