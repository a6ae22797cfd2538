//! One client, from `accept` to the last byte: the phases in order.
//!
//! ```text
//!  handshake            on a handshake worker (crate::threads), under one deadline:
//!   │   tls_accept.rs   first byte, rustls handshake        (TLS)
//!   │   http_phase.rs   request head, route, policy, 101     (HTTP/1.1 Upgrade)
//!   └─ failed or plain HTTP: forgotten here; upgraded: a thread of its own
//!  serve                on the connection's own thread:
//!   ├─ Event::Open      (events mode)
//!   ├─ session.rs       the frame loop until the close       (WebSocket frames)
//!   │   or handler.rs   the application's handler, running that same loop from
//!   │                   `Connection::recv` (handler mode)
//!   ├─ Event::Close     (events mode; also after a panic, once Open went out)
//!   └─ unregister, count what was never sent                 (on every way out)
//! ```
//!
//! One thread owns the socket, the rustls session and the tungstenite `WebSocket`, and
//! blocks in `poll(2)` on the socket and its waker with the nearest timer as timeout
//! (`crate::wait`). In events mode it lends them while it sleeps: `shared.rs` keeps
//! them behind a lock that a sending thread may take to write a message itself, and
//! `wire.rs` keeps both threads' TLS records in order on the socket. `client.rs` holds
//! what every phase uses, `stream.rs` the rustls stream over a non-blocking socket,
//! `trace.rs` the frame-by-frame log, `deflate.rs` permessage-deflate between the two
//! (inflating under tungstenite, which has none).

mod client;
mod context;
mod deflate;
mod handler;
mod http_phase;
mod session;
mod shared;
mod stream;
mod tls_accept;
mod trace;
mod wire;

use std::net::{SocketAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub(crate) use context::{Context, Departure, Lifeline, Slot};
pub(crate) use handler::Handler;
pub use handler::{Connection, HandlerError, Wakeup};

use client::Client;
use http_phase::Upgraded;
use session::{Delivery, Session, Traffic};
use shared::Shared;
use stream::Transport;

use crate::http::log_safe;
use crate::hub::Outbox;
use crate::stats::{add, bump};
use crate::{AppData, CloseReason, ConnectionId, ConnectionInfo, Error, Event, Request};

#[cfg(fuzzing)]
pub(crate) mod fuzzing {
    //! The frame loop without a socket, for `crate::fuzz`.
    pub(crate) use super::client::Client;
    pub(crate) use super::session::Session;
    pub(crate) use super::stream::{MemoryStream, Transport};
}

/// One accepted client, handed from the acceptor to a handshake worker.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) id: ConnectionId,
    pub(crate) peer: SocketAddr,
    pub(crate) socket: TcpStream,
    /// When it was accepted: the handshake deadline counts from here, time spent waiting
    /// for a free worker included.
    pub(crate) accepted_at: Instant,
    pub(crate) outbox: Outbox,
    pub(crate) context: Arc<Context>,
    pub(crate) slot: Slot,
    /// The application's code for this client, in handler mode.
    pub(crate) handler: Option<Handler>,
    /// Counts the connection as served for as long as it lives, on whichever thread.
    pub(crate) lifeline: Lifeline,
}

impl Accepted {
    /// A client that no handshake worker can take: forgotten without a word to it.
    pub(crate) fn abandon(self) {
        self.context.registry.unregister(self.id);
    }
}

/// A client whose WebSocket handshake succeeded, handed from its handshake worker to
/// its own thread.
#[derive(Debug)]
pub(crate) struct Established {
    id: ConnectionId,
    peer: SocketAddr,
    outbox: Outbox,
    context: Arc<Context>,
    slot: Slot,
    handler: Option<Handler>,
    lifeline: Lifeline,
    stream: Transport,
    /// Boxed, as it moves from the worker to the connection thread and down its first
    /// calls: each move of 200 bytes would be one more slot in a frame the connection
    /// thread keeps for its whole life.
    upgraded: Box<Upgraded>,
}

impl Established {
    pub(crate) fn id(&self) -> ConnectionId {
        self.id
    }
}

/// The stack size of a connection thread: 64 KiB more than a handshake worker's.
///
/// glibc keeps the stacks of ended threads for reuse, and leaves resident the 16 KiB
/// below the point where each thread ended (`PTHREAD_STACK_MIN`): a retired handshake
/// worker's stack comes back with ~20 KiB resident. A cached stack is only handed out for
/// a request no larger than it, and 64 KiB is at least a page on any Linux system, so a
/// connection thread never gets a worker's stack: it starts on fresh pages (12 KiB
/// resident when idle, against 20 KiB on a reused one).
pub(crate) fn stack_size(limits: &crate::config::Limits) -> usize {
    limits.thread_stack_size + (64 << 10)
}

/// The handshake phases, on a handshake worker (`crate::threads`): the TLS handshake
/// and the HTTP request under one deadline. `Some` when the client got its WebSocket;
/// otherwise it was answered in plain HTTP or turned away, and is forgotten here.
///
/// A panic (a bug: the authentication hook's own panics are caught where it is called,
/// and answered with 500) is caught, reported, and ends the connection like a failed
/// handshake.
pub(crate) fn handshake(accepted: Accepted) -> Option<Established> {
    let Accepted { id, peer, socket, accepted_at, outbox, context, mut slot, handler, lifeline } = accepted;
    let deadline = accepted_at + context.limits.handshake_timeout;
    let client = Client { id, peer, outbox, context, deadline };
    let outcome = catch_unwind(AssertUnwindSafe(|| client.handshake(socket)));
    slot.handshake_over();
    let established = outcome.unwrap_or_else(|panic| {
        client.panicked("the handshake", "connection dropped", &*panic);
        None
    });
    let Some((stream, upgraded)) = established else {
        client.forget();
        return None;
    };
    let Client { outbox, context, .. } = client;
    Some(Established { id, peer, outbox, context, slot, handler, lifeline, stream, upgraded: Box::new(upgraded) })
}

/// The WebSocket, on the connection's own thread: from the Open event to the Close event.
///
/// The phases run inside one `catch_unwind` and the cleanup comes after it, so every way
/// out, a panic included, ends the same: a Close event if the Open event went out, the
/// connection out of the routing table and its rooms, its queue counted as dropped. A
/// panic is a bug, in tinywss or in application code that runs here (the application's
/// logger, say; a handler's panics are caught where it is called, and close with 1011).
/// Raised on, it would leave the registry entry, its waker (a file descriptor) and the
/// `websockets` count behind for good; caught, it is reported and the thread ends like
/// any other.
pub(crate) fn serve(established: Established) {
    let Established { id, peer, outbox, context, slot, handler, lifeline, stream, upgraded } = established;
    let client = Arc::new(Client { id, peer, outbox, context, deadline: Instant::now() });
    let mut opened = None;
    // Unwind-safe in effect: after a panic only the cleanup runs, and what it touches
    // (registry, counters, outbox) is consistent between any two steps of the phases.
    let phases = catch_unwind(AssertUnwindSafe(|| client.websocket(stream, upgraded, handler.as_ref(), &mut opened)));
    let panic = phases.err().map(|panic| client.panicked("the connection thread", "connection dropped", &*panic));
    if let Some(opened) = opened {
        client.close(opened, panic);
    }
    client.forget();
    // Given back last: the acceptor may count the place free only now.
    drop((slot, lifeline));
}

/// An open WebSocket, from its Open event on: what its Close event needs.
struct Opened {
    started: Instant,
    data: Option<AppData>,
    /// Whether the application hears of it through the events channel (events mode).
    events: bool,
    /// Why it ended and what it carried; `None` until the frame loop returns, so still
    /// `None` after a panic.
    ended: Option<(CloseReason, Traffic)>,
}

impl Client {
    /// The WebSocket's phases in order. `opened` is set as soon as the connection is
    /// open, so that the Close event follows whatever happens next.
    //
    // The functions from here down to the frame loop watch their stack frames: a
    // connection thread keeps every stack page its deepest call touched for as long as it
    // lives. So what only the start needs (the session's ingredients, the Open event, the
    // handler's outcome and its log line) lives in frames that return before the loop
    // runs; the request's details stay boxed; each mode's session (~700 bytes) has one
    // place, never two slots. Measured: with both modes' set-up and loop inlined here,
    // this frame was 4 KiB, and each connection held one stack page (4 KiB) more, idle or
    // carrying messages.
    fn websocket(
        self: &Arc<Self>,
        stream: Transport,
        mut upgraded: Box<Upgraded>,
        handler: Option<&Handler>,
        opened: &mut Option<Opened>,
    ) {
        let ended = match handler.zip(upgraded.request.take()) {
            Some((handler, request)) => self.run_handler(handler, &request, stream, &mut upgraded, opened),
            // Events mode: the application hears of the client through the events
            // channel. The session lives in the shared session's allocation or, without
            // write-through, in `run_queued`'s frame.
            None if self.context.limits.write_through => self.shared_session(stream, upgraded, opened).run(),
            None => self.run_queued(stream, upgraded, opened),
        };
        if let Some(opened) = opened {
            opened.ended = Some(ended);
        }
    }

    /// The session, shared with the threads that send to the client (write-through).
    /// Made here, so that its set-up returns before the loop runs.
    #[inline(never)]
    fn shared_session(
        self: &Arc<Self>,
        stream: Transport,
        upgraded: Box<Upgraded>,
        opened: &mut Option<Opened>,
    ) -> Arc<Shared> {
        Shared::offer(self.events_session(stream, upgraded, opened))
    }

    /// Events mode with write-through off: the session in this frame, the loop below it.
    #[inline(never)]
    fn run_queued(
        self: &Arc<Self>,
        stream: Transport,
        upgraded: Box<Upgraded>,
        opened: &mut Option<Opened>,
    ) -> (CloseReason, Traffic) {
        let mut session = self.events_session(stream, upgraded, opened);
        (session.run(), session.finish())
    }

    /// The session of an events-mode connection, then the connection opened and the Open
    /// event sent.
    // Boxed on purpose: by value, each caller would keep a 200-byte slot for it.
    #[allow(clippy::boxed_local)]
    #[inline(never)]
    fn events_session(
        self: &Arc<Self>,
        stream: Transport,
        mut upgraded: Box<Upgraded>,
        opened: &mut Option<Opened>,
    ) -> Session {
        let session = self.new_session(stream, &mut upgraded);
        *opened = Some(self.open(&upgraded.info, true));
        let Upgraded { info, .. } = *upgraded;
        self.context.events.emit(Event::Open { conn: self.id, info: Box::new(info) });
        session
    }

    /// Handler mode: the application's handler runs the frame loop through a
    /// [`Connection`]. An error or a panic in it closes the connection with 1011; either
    /// way the close handshake then runs to its end here.
    #[inline(never)]
    fn run_handler(
        self: &Arc<Self>,
        handler: &Handler,
        request: &Request,
        stream: Transport,
        upgraded: &mut Upgraded,
        opened: &mut Option<Opened>,
    ) -> (CloseReason, Traffic) {
        // Made in place: a session moved into the `Connection` would take two slots.
        let mut conn = Connection { session: self.new_session(stream, upgraded), info: &upgraded.info, request };
        *opened = Some(self.open(conn.info, false));
        conn.session.deliver_to(Delivery::Inbox(Default::default()));
        let outcome = catch_unwind(AssertUnwindSafe(|| (handler.0)(&mut conn)));
        let failed = self.handler_failed(outcome);
        let reason = conn.session.after_handler(failed);
        (reason, conn.session.finish())
    }

    /// The session over `stream`, taking from `upgraded` the bytes that came behind the
    /// request and the compression agreed on. Made before the connection opens: a panic
    /// in it (the application's logger, say) must not leave a Close event without an
    /// Open event.
    fn new_session(self: &Arc<Self>, stream: Transport, upgraded: &mut Upgraded) -> Session {
        let (deflate, leftover) = (upgraded.deflate.take(), std::mem::take(&mut upgraded.leftover));
        Session::new(Arc::clone(self), stream, deflate, leftover, upgraded.info.data.clone())
    }

    /// Whether the handler failed (returned an error other than `Closed`, or panicked);
    /// logged and counted here. Kept out of `run_handler`, whose frame the handler runs
    /// under, so that the formatting's temporaries do not add to it.
    #[inline(never)]
    fn handler_failed(&self, outcome: std::thread::Result<Result<(), HandlerError>>) -> bool {
        match outcome {
            Ok(Ok(())) => false,
            // The connection was closing or over when the handler sent: nothing failed.
            Ok(Err(e)) if matches!(e.downcast_ref::<Error>(), Some(Error::Closed)) => false,
            Ok(Err(e)) => {
                bump(&self.context.stats.handler_errors);
                log::warn!("{}: the handler failed: {}; closing with 1011", self.id, log_safe(&e.to_string()));
                true
            }
            Err(panic) => {
                self.panicked("the handler", "closing with 1011", &*panic);
                true
            }
        }
    }

    /// The TLS handshake, then the HTTP request, under one deadline. `None` when the
    /// client was answered in plain HTTP or turned away (logged and counted here).
    fn handshake(&self, socket: TcpStream) -> Option<(Transport, Upgraded)> {
        let stats = &self.context.stats;
        let mut stream = match self.tls_handshake(socket) {
            Ok(stream) => stream,
            Err(e) => {
                self.handshake_failed(&e, &stats.handshakes_failed_tls, "TLS handshake");
                return None;
            }
        };
        match self.serve_request(&mut stream) {
            Ok(Some(upgraded)) => Some((stream, upgraded)),
            Ok(None) => {
                stream.close_notify();
                None
            }
            Err(e) => {
                self.handshake_failed(&e, &stats.handshakes_failed_http, "HTTP request");
                stream.close_notify();
                None
            }
        }
    }

    /// Counts a failed handshake (as a timeout, or under `counter`) and reports it. One
    /// the server cut short (shutdown, or shed for a newer client) is not the client's
    /// failure: the acceptor counts the shed ones.
    fn handshake_failed(&self, error: &Error, counter: &AtomicU64, what: &'static str) {
        match error {
            Error::Closed => {}
            Error::Timeout(_) => bump(&self.context.stats.handshakes_timed_out),
            _ => bump(counter),
        }
        self.context.failure_log.report(self.id, self.peer, what, error);
    }

    /// Makes the connection routable and counted (the caller then tells the application,
    /// in events mode). It logs first: after the first change nothing here can panic, so
    /// `close` always follows.
    fn open(&self, info: &ConnectionInfo, events: bool) -> Opened {
        let (id, context) = (self.id, &self.context);
        // The path only: the query may carry a token.
        let path = info.path.split('?').next().unwrap_or_default();
        log::debug!("{id}: open, path {path:?}, subprotocol {:?}", info.subprotocol);
        context.registry.opened(id);
        context.stats.websockets.fetch_add(1, Ordering::SeqCst);
        Opened { started: Instant::now(), data: info.data.clone(), events, ended: None }
    }

    /// Undoes `open` and sends the Close event: with the frame loop's reason, or
    /// [`Error::Panicked`] when it never returned.
    fn close(&self, opened: Opened, panic: Option<String>) {
        let (id, context) = (self.id, &self.context);
        context.stats.websockets.fetch_sub(1, Ordering::SeqCst);
        // Unregister before the Close event: a send made after seeing it is counted as dropped.
        context.registry.unregister(id);
        let reason = match opened.ended {
            Some((reason, traffic)) => {
                log::debug!("{id}: {reason} after {:.1?}; {traffic}", opened.started.elapsed());
                reason
            }
            // Already logged at `error`.
            None => CloseReason::Error(Error::Panicked(panic.unwrap_or_default())),
        };
        if opened.events {
            context.events.emit(Event::Close { conn: id, reason, data: opened.data });
        }
    }

    /// Forgets the connection, however it ended: out of the routing table and its rooms
    /// (if `close` did not do it already), and what was still queued counted as dropped.
    fn forget(&self) {
        self.context.registry.unregister(self.id);
        let unsent = self.outbox.discard();
        if unsent > 0 {
            add(&self.context.stats.dropped, unsent);
            log::debug!("{}: {unsent} queued messages were not sent before the connection ended", self.id);
        }
    }
}
