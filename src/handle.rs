//! [`Handle`]: how the application acts on the server from any thread.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::event::{sendable_close_code, to_ws};
use crate::hub::Registry;
use crate::stats::Counters;
use crate::threads::Started;
use crate::tls::Reloader;
use crate::wait::Waker;
use crate::{ConnectionId, Error, Message, Stats};

/// A cheap, cloneable handle to a running [`Server`](crate::Server).
///
/// # About threads and cloning
///
/// `Handle` is `Clone + Send + Sync`: give a clone to every thread that needs one.
/// `send`, `broadcast`, `publish` and `close` do their work in the calling thread and
/// never wait for a client: they put the message on each connection's own bounded
/// queue and wake its thread (a system call, about a microsecond, per connection that
/// was asleep). Messages and closes for one connection arrive in the order the calls
/// returned, whichever threads made them.
///
/// Only [`shutdown`](Handle::shutdown) blocks, up to the configured shutdown timeout.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

/// What all handles share.
pub(crate) struct Shared {
    pub(crate) registry: Arc<Registry>,
    pub(crate) stats: Arc<Counters>,
    /// The first of `local_addrs`.
    pub(crate) local_addr: SocketAddr,
    /// Every address listened on, in the order configured.
    pub(crate) local_addrs: Vec<SocketAddr>,
    pub(crate) acceptor_waker: Arc<Waker>,
    pub(crate) stop: Arc<AtomicBool>,
    /// Taken by the first `shutdown`.
    pub(crate) threads: Mutex<Option<Threads>>,
    pub(crate) shutdown_timeout: Duration,
    /// `None` for plain `ws://`.
    pub(crate) tls_reloader: Option<Arc<Reloader>>,
}

/// The server's threads and the signals that stop them.
pub(crate) struct Threads {
    pub(crate) acceptor: JoinHandle<()>,
    /// Every handshake worker and connection thread not joined yet.
    pub(crate) started: Arc<Started>,
    /// Dropped to release connection threads waiting on a full events channel.
    pub(crate) shutdown_signal: Sender<()>,
    /// Disconnects when the last connection thread ends.
    pub(crate) alive: Receiver<()>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("local_addrs", &self.shared.local_addrs).finish_non_exhaustive()
    }
}

impl Handle {
    pub(crate) fn new(shared: Shared) -> Handle {
        Handle { shared: Arc::new(shared) }
    }

    /// Sends a message to one connection.
    ///
    /// Returns once the message is written or queued, without waiting for the client.
    /// In events mode, when the connection's thread is asleep with nothing queued and the
    /// events channel is empty, the message (up to 16 KiB) is encrypted and written to
    /// the client's socket on the calling thread: a few microseconds of its time, and no
    /// wake-up of the connection's thread. Otherwise it is queued, and sent by the
    /// connection's thread. A message for a connection that is not open, or is closing,
    /// is dropped and counted in [`Stats::dropped`]; one that finds the client's outbound queue full closes that
    /// client with 1013 (see [`ConfigBuilder::outbound_queue`](crate::ConfigBuilder::outbound_queue)).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn send(&self, conn: ConnectionId, message: impl Into<Message>) -> Result<(), Error> {
        self.shared.registry.send(conn, to_ws(message.into()))
    }

    /// Sends a message to every open connection, each as [`send`](Handle::send) does
    /// (so in events mode the calling thread may write it to many clients itself, instead
    /// of waking each client's thread: see
    /// [`write_through`](crate::ConfigBuilder::write_through)). The payload is shared
    /// between them, not copied. With the Redis backplane, every server of the cluster
    /// does the same for its own connections.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn broadcast(&self, message: impl Into<Message>) -> Result<(), Error> {
        self.shared.registry.broadcast(to_ws(message.into()))
    }

    /// Starts the close handshake with one connection: messages queued before this call
    /// are sent first, then a Close frame with `code` and `reason` (at most 123 bytes
    /// are sent). Messages sent to it after this call are dropped and counted in
    /// [`Stats::dropped`]. The connection's [`Event::Close`](crate::Event::Close) follows.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCloseCode`] for a code that may not be sent (RFC 6455 §7.4: use
    /// 1000–1003, 1007–1014, or 3000–4999); [`Error::Closed`] after shutdown.
    pub fn close(&self, conn: ConnectionId, code: u16, reason: &str) -> Result<(), Error> {
        if !sendable_close_code(code) {
            return Err(Error::InvalidCloseCode(code));
        }
        self.shared.registry.close(conn, code, reason)
    }

    /// Adds an open connection to `room` (rooms exist while they have members). A
    /// connection may be in any number of rooms; it leaves all of them when it closes.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn join(&self, conn: ConnectionId, room: &str) -> Result<(), Error> {
        self.shared.registry.join(conn, room)
    }

    /// Removes a connection from `room`.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn leave(&self, conn: ConnectionId, room: &str) -> Result<(), Error> {
        self.shared.registry.leave(conn, room)
    }

    /// Sends a message to every member of `room`, each as [`send`](Handle::send) does.
    /// The payload is shared between the members, not copied; each connection only
    /// frames and encrypts it.
    ///
    /// With the Redis backplane ([`ConfigBuilder::redis`](crate::ConfigBuilder)), the
    /// members on every server of the cluster get it too, exactly once each and in the
    /// order of this server's calls: this server's at once, the others' through Redis.
    /// The call never waits for Redis; what cannot go to it is counted in
    /// [`Stats::backplane_dropped`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn publish(&self, room: &str, message: impl Into<Message>) -> Result<(), Error> {
        self.shared.registry.publish(room, to_ws(message.into()), None)
    }

    /// Like [`publish`](Handle::publish), but not to `sender` (a chat message goes to
    /// everyone else in the room).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn publish_except(&self, room: &str, message: impl Into<Message>, sender: ConnectionId) -> Result<(), Error> {
        self.shared.registry.publish(room, to_ws(message.into()), Some(sender))
    }

    /// How many connections are in `room`: on this server, and with the Redis backplane
    /// on every server of the cluster, as each last reported (a change on another
    /// server shows here within a Redis round trip; a server that died leaves with its
    /// members within three of its heartbeats).
    pub fn room_size(&self, room: &str) -> usize {
        self.shared.registry.room_size(room)
    }

    /// The names of the cluster's servers alive now, as this one sees them: this one
    /// first, then the others in name order. Empty without a backplane.
    #[cfg(feature = "redis")]
    pub fn nodes(&self) -> Vec<String> {
        self.shared.registry.relay().map(|relay| relay.nodes()).unwrap_or_default()
    }

    /// A snapshot of the server's counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// The address the server listens on: the first, when it listens on several (see
    /// [`local_addrs`](Self::local_addrs)).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Every address the server listens on, in the order configured
    /// ([`ConfigBuilder::bind`](crate::ConfigBuilder::bind)), with the real ports.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.shared.local_addrs
    }

    /// Reloads the certificate and key files now, checks them like at start, and puts
    /// them in service for new handshakes; open connections keep their sessions. Use it
    /// from an ACME client's deploy hook, or on `SIGHUP`. The files are also reloaded by
    /// themselves when they change (see
    /// [`tls_reload_interval`](crate::ConfigBuilder::tls_reload_interval)).
    ///
    /// # Errors
    ///
    /// The problem with the new files, as [`ConfigBuilder::build`](crate::ConfigBuilder::build)
    /// reports it ([`Error::TlsFile`], [`Error::KeyMismatch`]); the certificates in
    /// service then stay. [`Error::Config`] for a plain `ws://` server.
    pub fn reload_tls(&self) -> Result<(), Error> {
        match &self.shared.tls_reloader {
            Some(reloader) => reloader.reload_now(),
            None => Err(Error::Config("this server speaks plain ws://: there is no certificate to reload".into())),
        }
    }

    /// Stops the server: no new connections; every client gets a Close frame with 1001
    /// (Going Away); then waits for every thread to finish, up to the configured
    /// shutdown timeout. Afterwards the events channel disconnects once drained.
    ///
    /// Only the first call does the work; later calls return `Ok(())` at once.
    ///
    /// # Errors
    ///
    /// [`Error::ShutdownTimeout`] when connection threads were still running at the
    /// deadline (they end by themselves at their own close timeout).
    pub fn shutdown(&self) -> Result<(), Error> {
        let threads = self.shared.threads.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let Some(threads) = threads else { return Ok(()) };
        log::info!("shutting down {}", self.addrs());
        let deadline = Instant::now() + self.shared.shutdown_timeout;
        // 0. The cluster's other servers hear this one leave before its events can end
        //    (and with them, often, the application).
        self.shared.registry.leave_cluster(deadline);
        // 1. No new clients: every connection the acceptor started is registered by now.
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.acceptor_waker.wake();
        let _ = threads.acceptor.join();
        // 2. Every connection, open or in handshake, is asked to close with 1001.
        self.shared.registry.shutdown();
        // 3. Threads waiting on a full events channel give up on it.
        drop(threads.shutdown_signal);
        let all_done = matches!(threads.alive.recv_deadline(deadline), Err(RecvTimeoutError::Disconnected));
        let mut running = 0;
        for thread in threads.started.take_all() {
            if all_done || thread.is_finished() {
                let _ = thread.join();
            } else {
                running += 1;
            }
        }
        if running > 0 {
            return Err(Error::ShutdownTimeout { threads: running });
        }
        log::info!("shut down {}", self.addrs());
        Ok(())
    }

    /// The addresses listened on, for the log.
    fn addrs(&self) -> String {
        let addrs: Vec<String> = self.shared.local_addrs.iter().map(SocketAddr::to_string).collect();
        addrs.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_send_sync_clone() {
        fn assert_traits<T: Clone + Send + Sync>() {}
        assert_traits::<Handle>();
    }
}
