//! [`Handle`]: how the application acts on the server from any thread.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tungstenite::Message as WsMessage;

use crate::dispatcher::Command;
use crate::reload::Reloader;
use crate::stats::Counters;
use crate::wait::Waker;
use crate::{ConnectionId, Error, Message, Stats};

/// A cheap, cloneable handle to a running [`Server`](crate::Server).
///
/// # About threads and cloning
///
/// `Handle` is `Clone + Send + Sync`: give a clone to every thread that needs one. All
/// clones talk to the same dispatcher thread through one bounded channel. `send`,
/// `broadcast` and `close` only queue a command: they return at once and never wait
/// for a client. The dispatcher then moves the message to the connection's own bounded
/// queue and wakes its thread. Messages sent through one handle to one connection
/// arrive in the order they were sent.
///
/// Only [`shutdown`](Handle::shutdown) blocks, up to the configured shutdown timeout.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

/// What all handles share.
pub(crate) struct Shared {
    pub(crate) commands: Sender<Command>,
    pub(crate) stats: Arc<Counters>,
    pub(crate) local_addr: SocketAddr,
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
    /// Returns the connection threads it started.
    pub(crate) acceptor: JoinHandle<Vec<JoinHandle<()>>>,
    pub(crate) dispatcher: JoinHandle<()>,
    /// Dropped to release connection threads waiting on a full events channel.
    pub(crate) shutdown_signal: Sender<()>,
    /// Disconnects when the last connection thread ends.
    pub(crate) alive: Receiver<()>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("local_addr", &self.shared.local_addr).finish_non_exhaustive()
    }
}

impl Handle {
    pub(crate) fn new(shared: Shared) -> Handle {
        Handle { shared: Arc::new(shared) }
    }

    /// Queues a message for one connection.
    ///
    /// Returns once the command is queued; delivery happens on the connection's thread.
    /// A message for a connection that is not open (any more) is dropped and counted in
    /// [`Stats::dropped`]; one that finds the client's outbound queue full closes that
    /// client with 1013 (see [`ConfigBuilder::outbound_queue`](crate::ConfigBuilder::outbound_queue)).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn send(&self, conn: ConnectionId, message: impl Into<Message>) -> Result<(), Error> {
        self.command(Command::Send { id: conn, message: to_ws(message.into()) })
    }

    /// Queues a message for every open connection. The payload is shared between
    /// them, not copied.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn broadcast(&self, message: impl Into<Message>) -> Result<(), Error> {
        self.command(Command::Broadcast { message: to_ws(message.into()) })
    }

    /// Starts the close handshake with one connection: messages queued before this call
    /// are sent first, then a Close frame with `code` and `reason` (at most 123 bytes
    /// are sent). The connection's [`Event::Close`](crate::Event::Close) follows.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCloseCode`] for a code that may not be sent (RFC 6455 §7.4: use
    /// 1000–1003, 1007–1014, or 3000–4999); [`Error::Closed`] after shutdown.
    pub fn close(&self, conn: ConnectionId, code: u16, reason: &str) -> Result<(), Error> {
        if !sendable_close_code(code) {
            return Err(Error::InvalidCloseCode(code));
        }
        self.command(Command::Close { id: conn, code, reason: reason.to_owned() })
    }

    /// Adds an open connection to `room` (rooms exist while they have members). A
    /// connection may be in any number of rooms; it leaves all of them when it closes.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn join(&self, conn: ConnectionId, room: &str) -> Result<(), Error> {
        self.command(Command::Join { id: conn, room: room.to_owned() })
    }

    /// Removes a connection from `room`.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn leave(&self, conn: ConnectionId, room: &str) -> Result<(), Error> {
        self.command(Command::Leave { id: conn, room: room.to_owned() })
    }

    /// Queues a message for every member of `room`. The payload is shared between the
    /// members, not copied; each connection only frames and encrypts it.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn publish(&self, room: &str, message: impl Into<Message>) -> Result<(), Error> {
        self.command(Command::Publish { room: room.to_owned(), message: to_ws(message.into()), except: None })
    }

    /// Like [`publish`](Handle::publish), but not to `sender` (a chat message goes to
    /// everyone else in the room).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn publish_except(&self, room: &str, message: impl Into<Message>, sender: ConnectionId) -> Result<(), Error> {
        let message = to_ws(message.into());
        self.command(Command::Publish { room: room.to_owned(), message, except: Some(sender) })
    }

    /// A snapshot of the server's counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
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
        log::info!("shutting down {}", self.shared.local_addr);
        let deadline = Instant::now() + self.shared.shutdown_timeout;
        // 1. No new clients; every Register the acceptor sent is queued before step 2.
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.acceptor_waker.wake();
        let connections = threads.acceptor.join().unwrap_or_default();
        // 2. Every connection, open or in handshake, is asked to close with 1001.
        let _ = self.shared.commands.send(Command::Shutdown);
        let _ = threads.dispatcher.join();
        // 3. Threads waiting on a full events channel give up on it.
        drop(threads.shutdown_signal);
        let all_done = matches!(threads.alive.recv_deadline(deadline), Err(RecvTimeoutError::Disconnected));
        let mut running = 0;
        for thread in connections {
            if all_done || thread.is_finished() {
                let _ = thread.join();
            } else {
                running += 1;
            }
        }
        if running > 0 {
            return Err(Error::ShutdownTimeout { threads: running });
        }
        log::info!("shut down {}", self.shared.local_addr);
        Ok(())
    }

    fn command(&self, command: Command) -> Result<(), Error> {
        self.shared.commands.send(command).map_err(|_| Error::Closed)
    }
}

/// Close codes an endpoint may put in a Close frame (RFC 6455 §7.4.1–7.4.2).
fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn to_ws(message: Message) -> WsMessage {
    match message {
        Message::Text(text) => WsMessage::Text(text.into()),
        Message::Binary(data) => WsMessage::Binary(data.into()),
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

    #[test]
    fn reserved_close_codes_are_refused() {
        for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(!sendable_close_code(code), "{code}");
        }
        for code in [1000, 1001, 1008, 1011, 1013, 3000, 4999] {
            assert!(sendable_close_code(code), "{code}");
        }
    }
}
