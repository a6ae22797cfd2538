//! [`Client`]: what every phase of a connection thread works with, the two ways it
//! waits for the socket before the WebSocket is open, and how it reports a panic.

use std::any::Any;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;

use super::context::Context;
use super::stream::{tls_error, would_block, Transport};
use crate::http::log_safe;
use crate::hub::Outbox;
use crate::stats::bump;
use crate::wait::wait;
use crate::{ConnectionId, Error, Timeout};

/// One client as every phase of its connection sees it: who it is, its outbound queue
/// (and the signals that come with it), the server's shared state, and the deadline of
/// its handshake.
pub(crate) struct Client {
    pub(crate) id: ConnectionId,
    pub(crate) peer: SocketAddr,
    pub(crate) outbox: Outbox,
    pub(crate) context: Arc<Context>,
    /// One deadline for the TLS handshake and the HTTP request together.
    pub(crate) deadline: Instant,
}

impl Client {
    /// Writes all of `bytes` through TLS and flushes, waiting for the socket as needed;
    /// fails if the client takes nothing until `deadline`.
    pub(crate) fn send_all(&self, stream: &mut Transport, mut bytes: &[u8], deadline: Instant) -> Result<(), Error> {
        while !bytes.is_empty() {
            match stream.write(bytes) {
                Ok(0) => return Err(Error::Io(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if would_block(&e) => self.wait_io(stream.sock(), true, deadline)?,
                Err(e) => return Err(tls_error(e)),
            }
        }
        loop {
            match stream.flush() {
                Ok(()) => return Ok(()),
                Err(e) if would_block(&e) => self.wait_io(stream.sock(), true, deadline)?,
                Err(e) => return Err(tls_error(e)),
            }
        }
    }

    /// Waits for the socket before the WebSocket is open; gives up at `deadline` or
    /// when the server shuts down.
    pub(crate) fn wait_io(&self, socket: impl AsFd, want_write: bool, deadline: Instant) -> Result<(), Error> {
        let control = self.outbox.control();
        let woken = wait(&socket, want_write, &control.waker, Some(deadline)).map_err(Error::Io)?;
        if woken {
            control.waker.reset();
            if control.is_closing() {
                return Err(Error::Closed);
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout(Timeout::Handshake));
        }
        Ok(())
    }

    /// Reports a panic caught on this connection's thread: counted, and logged at `error`
    /// with the connection id and the panic's message. The message is what names the bug
    /// (`called Option::unwrap() on a None value`), and it is the code's own words, which
    /// the panic hook has printed already, with their source location; it is escaped all
    /// the same, since code may have put the client's text in it. Returns the message.
    pub(crate) fn panicked(&self, what: &str, outcome: &str, payload: &(dyn Any + Send)) -> String {
        let message = panic_message(payload);
        bump(&self.context.stats.panics);
        log::error!("{}: {what} panicked: {}; {outcome}", self.id, log_safe(&message));
        message
    }
}

/// The text given to `panic!` (or `unwrap`, `expect`), whichever type carries it.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_owned(),
        (_, Some(text)) => text.clone(),
        _ => "a panic without a message".to_owned(),
    }
}
