//! Handler mode: the application's code for one client runs on that client's thread
//! ([`Server::serve`](crate::Server::serve)), through a [`Connection`].
//!
//! The handler and the frame loop share the thread: `recv` runs the loop (reading in
//! batches, answering pings, sending what other threads queued with the
//! [`Handle`](crate::Handle), keeping the timers) until a message is there; `send` writes
//! into the connection's buffer, which is flushed once when `recv` finds no more input
//! ready, or when the buffer fills. So a burst of requests costs one flush, and no thread
//! sits between the socket and the code that answers it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::session::{Next, Session};
use crate::hub::Control;
use crate::{CloseReason, ConnectionId, ConnectionInfo, Error, Message, Request};

/// What a handler may fail with: any error, boxed. The connection is then closed with
/// 1011 (Internal Error) and the error logged.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// The application's code for one client, as [`Server::serve`](crate::Server::serve) takes it.
#[derive(Clone)]
pub(crate) struct Handler(pub(crate) HandlerFn);

pub(crate) type HandlerFn = std::sync::Arc<dyn Fn(&mut Connection<'_>) -> Result<(), HandlerError> + Send + Sync>;

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handler")
    }
}

/// One client, as a handler sees it on the client's own thread.
///
/// [`recv`](Connection::recv) waits for the client's next message while everything else
/// keeps flowing: keepalive pings, the limits, the close handshake, and messages other
/// threads send to this connection through the [`Handle`](crate::Handle) (`send`,
/// `broadcast`, `publish`). [`send`](Connection::send) answers without a flush per
/// message: what is sent goes out in one batch when `recv` finds no more input ready.
///
/// ```no_run
/// let config = tinywss::Config::builder()
///     .tls_pem_files("certs/server.pem", "certs/server.key")
///     .build()?;
/// let server = tinywss::Server::serve(config, |conn| {
///     while let Some(message) = conn.recv() {
///         conn.send(message)?;
///     }
///     Ok(())
/// })?;
/// # Ok::<(), tinywss::Error>(())
/// ```
pub struct Connection<'a> {
    pub(crate) session: Session,
    pub(crate) info: &'a ConnectionInfo,
    pub(crate) request: &'a Request,
}

impl std::fmt::Debug for Connection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("id", &self.info.id).finish_non_exhaustive()
    }
}

impl Connection<'_> {
    /// This connection's id, as the [`Handle`](crate::Handle) knows it.
    pub fn id(&self) -> ConnectionId {
        self.info.id
    }

    /// Who connected and how: peer address, path, subprotocol, TLS version, client
    /// certificate, and what the [authentication hook](crate::ConfigBuilder::authenticate)
    /// attached ([`ConnectionInfo::data`]).
    pub fn info(&self) -> &ConnectionInfo {
        self.info
    }

    /// The client's Upgrade request: path, query, headers, cookies.
    pub fn request(&self) -> &Request {
        self.request
    }

    /// Waits for the client's next message. `None` once the connection is over: the
    /// client closed it, the server did (a [`Handle::close`](crate::Handle::close), a
    /// limit, shutdown), or it failed; [`close_reason`](Connection::close_reason) says
    /// which. Messages that arrived before the end are still handed out first.
    pub fn recv(&mut self) -> Option<Message> {
        match self.session.next_message(None) {
            Next::Message(message) => Some(message),
            Next::TimedOut | Next::Ended => None,
        }
    }

    /// Like [`recv`](Connection::recv), but waits at most `timeout`: for a handler that
    /// also has work of its own on a clock (a game tick, a sensor reading). A zero
    /// timeout still looks at the socket once, without waiting, as does a call that a
    /// [`Wakeup`] ends early: a handler busy with other work still takes what its
    /// client sent meanwhile.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] when no message came in time, or a [`Wakeup`] woke
    /// the handler (what was sent has been flushed meanwhile); [`RecvTimeoutError::Disconnected`] once the connection
    /// is over.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, RecvTimeoutError> {
        match self.session.next_message(Some(Instant::now() + timeout)) {
            Next::Message(message) => Ok(message),
            Next::TimedOut => Err(RecvTimeoutError::Timeout),
            Next::Ended => Err(RecvTimeoutError::Disconnected),
        }
    }

    /// Sends a message to the client. It goes into the connection's buffer, which is
    /// flushed when [`recv`](Connection::recv) finds no more input ready, when the buffer
    /// fills, or by [`flush`](Connection::flush). When the client's socket is full, this
    /// waits until the client reads (at most the
    /// [`write_timeout`](crate::ConfigBuilder::write_timeout)): a slow client slows its
    /// own handler, and nothing piles up.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the connection is closing or over; the message is counted
    /// in [`Stats::dropped`](crate::Stats::dropped).
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.session.send(crate::event::to_ws(message.into()))
    }

    /// Sends everything written so far, and what other threads queued for this client,
    /// and waits until the socket has taken it. It also does the rest of the loop's work
    /// without waiting: reads what the client sent (its messages wait for `recv`; pings
    /// are answered, a Close is seen), and takes close requests and timers. Call it
    /// before the handler blocks on something other than [`recv`](Connection::recv), and
    /// regularly in a handler that only sends (a stream): then `Handle::close`, shutdown
    /// and the client's Close reach it through the `Err` this returns. Reading pauses
    /// while 64 KiB of the client's messages wait for `recv`, and while the client's
    /// socket is full: what comes after them, a Close too, waits with them.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the connection is over.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.session.flush_all()
    }

    /// Starts the close handshake: what was sent before goes out first, then a Close
    /// frame with `code` and `reason` (at most 123 bytes are sent). [`recv`](Connection::recv)
    /// returns `None` once the client has answered (or the close timeout passed).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCloseCode`] for a code that may not be sent (RFC 6455 §7.4: use
    /// 1000–1003, 1007–1014, or 3000–4999).
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        if !crate::event::sendable_close_code(code) {
            return Err(Error::InvalidCloseCode(code));
        }
        self.session.close(code, reason);
        Ok(())
    }

    /// A [`Wakeup`] for this handler: another thread that has work for it (a line from a
    /// child process, a reading from a device) makes the handler's
    /// [`recv_timeout`](Connection::recv_timeout) return at once with
    /// [`RecvTimeoutError::Timeout`], so the handler waits for its client and for that
    /// thread at the same time, without polling.
    pub fn wakeup(&self) -> Wakeup {
        Wakeup { control: self.session.shared_control() }
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.session.ended()
    }
}

/// Wakes one connection's handler from another thread: see [`Connection::wakeup`].
///
/// `Clone + Send + Sync`. Waking a handler that is busy makes its next `recv_timeout`
/// return at once; several wakes before it looks count as one. [`Connection::recv`]
/// (without a timeout) does not return for a wake. Waking a connection that has ended
/// does nothing.
#[derive(Clone)]
pub struct Wakeup {
    control: Arc<Control>,
}

impl Wakeup {
    /// Makes the handler's current or next [`Connection::recv_timeout`] return
    /// [`RecvTimeoutError::Timeout`] at once. Costs one system call when the handler is
    /// asleep, none when a wake is already pending.
    pub fn wake(&self) {
        self.control.wake_handler();
    }
}

impl std::fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wakeup")
    }
}
