//! The per-connection thread: TLS handshake, then the HTTP request (`upgrade.rs`), then
//! the frame loop (`session.rs`).
//!
//! One thread owns the socket, the rustls session and the tungstenite `WebSocket`, and
//! blocks in `poll(2)` on the socket and its [`Waker`](crate::wait::Waker) with the
//! nearest timer as timeout.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{select, Receiver, Sender, TrySendError};
use tungstenite::Message as WsMessage;

use crate::config::Limits;
use crate::policy::Policy;
use crate::registry::{Control, Registry};
use crate::session::Session;
use crate::stats::{add, bump, Counters};
use crate::stream::{would_block, PlainStream, Progress, TlsStream, Transport};
use crate::wait::wait;
use crate::{http, ConnectionId, Error, Event};

/// What every connection thread shares with the server.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) limits: Limits,
    pub(crate) policy: Policy,
    /// When the server started (for the health endpoint's uptime).
    pub(crate) started: Instant,
    /// `None` for plain `ws://` behind a TLS-terminating proxy.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) events: Sender<Event>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) stats: Arc<Counters>,
    /// Never receives; disconnects when shutdown begins, to unblock event sends.
    pub(crate) shutdown: Receiver<()>,
    /// Keeps failed-handshake reports at `info` from flooding the log.
    pub(crate) failure_log: FailureLog,
}

impl Context {
    /// Hands an event to the application, waiting while its channel is full (this is
    /// the backpressure that slows clients down) unless the server is shutting down.
    pub(crate) fn emit(&self, event: Event) -> bool {
        let event = match self.events.try_send(event) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(event)) => event,
        };
        select! {
            send(self.events, event) -> sent => sent.is_ok(),
            recv(self.shutdown) -> _ => {
                bump(&self.stats.dropped);
                false
            }
        }
    }
}

/// One accepted client, handed from the acceptor to its thread.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) id: ConnectionId,
    pub(crate) peer: SocketAddr,
    pub(crate) socket: TcpStream,
    pub(crate) control: Arc<Control>,
    pub(crate) outbox: Receiver<WsMessage>,
    pub(crate) context: Arc<Context>,
}

/// The stack size of a connection thread: 64 KiB more than its handshake thread's.
///
/// glibc keeps the stacks of ended threads for reuse, and leaves resident the 16 KiB
/// below the point where each thread ended (`PTHREAD_STACK_MIN`): a handshake thread's
/// stack comes back with ~20 KiB resident. A cached stack is only handed out for a
/// request no larger than it, and 64 KiB is at least a page on any Linux system, so a
/// connection thread never gets a handshake thread's stack: it starts on fresh pages
/// (12 KiB resident when idle, against 20 KiB on a reused one).
pub(crate) fn stack_size(limits: &Limits) -> usize {
    limits.thread_stack_size + (64 << 10)
}

/// The body of a connection thread.
pub(crate) fn run(conn: Connection) {
    let Connection { id, peer, socket, control, outbox, context } = conn;
    let deadline = Instant::now() + context.limits.handshake_timeout;
    let thread = Thread { id, peer, control, context: &context, deadline };
    if let Some(accepted) = thread.handshake_on_own_thread(socket) {
        serve_websocket(&thread, &outbox, accepted);
    }
    context.registry.unregister(id);
    let unsent = outbox.try_iter().count();
    if unsent > 0 {
        add(&context.stats.dropped, unsent);
        log::debug!("{id}: {unsent} queued messages were not sent before the connection ended");
    }
}

/// A client whose WebSocket handshake succeeded.
struct Accepted {
    stream: Transport,
    info: crate::ConnectionInfo,
    /// Bytes the client sent right behind its request (its first frames, perhaps).
    leftover: Vec<u8>,
}

/// From the Open event to the Close event.
fn serve_websocket(thread: &Thread<'_>, outbox: &Receiver<WsMessage>, accepted: Accepted) {
    let Accepted { stream, info, leftover } = accepted;
    let (id, context) = (thread.id, thread.context);
    let data = info.data.clone();
    context.registry.opened(id);
    context.stats.websockets.fetch_add(1, Ordering::SeqCst);
    // The path only: the query may carry a token.
    let path = info.path.split('?').next().unwrap_or_default();
    log::debug!("{id}: open, path {path:?}, subprotocol {:?}", info.subprotocol);
    context.emit(Event::Open { conn: id, info });
    let started = Instant::now();
    let mut session = Session::new(thread, outbox, stream, leftover, data.clone());
    let reason = session.run();
    session.finish();
    context.stats.websockets.fetch_sub(1, Ordering::SeqCst);
    // Unregister before the Close event: a send made after seeing it is counted as dropped.
    context.registry.unregister(id);
    log::debug!("{id}: {reason} after {:.1?}; {}", started.elapsed(), session.traffic);
    context.emit(Event::Close { conn: id, reason, data });
}

/// The parts of a connection thread that every phase uses.
pub(crate) struct Thread<'a> {
    pub(crate) id: ConnectionId,
    pub(crate) peer: SocketAddr,
    pub(crate) control: Arc<Control>,
    pub(crate) context: &'a Context,
    /// One deadline for the TLS handshake and the HTTP request together.
    pub(crate) deadline: Instant,
}

impl Thread<'_> {
    /// Runs [`handshake`](Self::handshake) on a short-lived thread and waits for it.
    ///
    /// For memory: the handshake is the deepest and most allocating work a connection
    /// does, and a thread keeps what it touched for as long as it lives. The stack pages
    /// of rustls and ring stay resident, and glibc's per-thread cache (tcache) keeps
    /// ~9 KiB of the small blocks the handshake freed. A thread that ends gives both
    /// back, so the connection thread, which lives as long as its client, holds only what
    /// the frame loop needs. Measured with 1,000 idle connections: 42.8 KiB of RSS each
    /// with the handshake on the connection thread, 27.5 KiB with it on its own thread.
    /// The cost is a thread start and join per connection: ~25 µs of server CPU, +9 %
    /// on a TLS handshake (290 → 315 µs). If the thread cannot be started, the
    /// handshake runs here.
    fn handshake_on_own_thread(&self, socket: TcpStream) -> Option<Accepted> {
        let mut socket = Some(socket);
        let handed = &mut socket;
        let result = std::thread::scope(|scope| {
            let handshake = std::thread::Builder::new()
                .name(format!("tinywss-hs-{}", self.id.0))
                .stack_size(self.context.limits.thread_stack_size)
                .spawn_scoped(scope, || handed.take().and_then(|socket| self.handshake(socket)))?;
            // A panic (in an authentication hook, say) goes on in this thread, as if the
            // handshake had run here.
            Ok::<_, io::Error>(handshake.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        });
        result.unwrap_or_else(|e| {
            log::debug!("{}: no thread for the handshake ({e}); doing it on the connection thread", self.id);
            socket.and_then(|socket| self.handshake(socket))
        })
    }

    /// TLS handshake, then the HTTP request, under one deadline. `None` when the client
    /// was answered in plain HTTP or turned away (logged and counted here).
    fn handshake(&self, socket: TcpStream) -> Option<Accepted> {
        let stats = &self.context.stats;
        let mut stream = match self.tls_handshake(socket) {
            Ok(stream) => stream,
            Err(e) => {
                self.handshake_failed(&e, &stats.handshakes_failed_tls, "TLS handshake");
                return None;
            }
        };
        if let Some(tls) = stream.tls() {
            let show = |value: Option<String>| value.unwrap_or_else(|| "none".into());
            log::debug!(
                "{}: TLS established: {}, cipher suite {}, key exchange {}, SNI {}, ALPN {}, client certificate {}",
                self.id,
                show(tls.protocol_version().map(|v| format!("{v:?}"))),
                show(tls.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite()))),
                show(tls.negotiated_key_exchange_group().map(|g| format!("{:?}", g.name()))),
                show(tls.server_name().map(str::to_owned)),
                show(tls.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned())),
                if tls.peer_certificates().is_some() { "verified" } else { "none" },
            );
        }
        match self.serve_request(&mut stream) {
            Ok(Some((info, leftover))) => Some(Accepted { stream, info, leftover }),
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

    /// Counts a failed handshake (as a timeout, or under `counter`) and reports it.
    fn handshake_failed(&self, error: &Error, counter: &AtomicU64, what: &str) {
        bump(if matches!(error, Error::Timeout(_)) { &self.context.stats.handshakes_timed_out } else { counter });
        self.context.failure_log.report(self.id, self.peer, what, error);
    }

    fn tls_handshake(&self, socket: TcpStream) -> Result<Transport, Error> {
        let Some(config) = &self.context.tls else {
            self.expect_plain_http(&socket)?;
            return Ok(Transport::Plain(PlainStream::new(socket)));
        };
        self.expect_tls_record(&socket)?;
        let tls = rustls::ServerConnection::new(Arc::clone(config)).map_err(|e| Error::Tls(e.to_string()))?;
        let mut stream = TlsStream::new(tls, socket);
        loop {
            match stream.handshake().map_err(|e| handshake_error(e, &stream))? {
                Progress::Done => return Ok(Transport::Tls(stream)),
                Progress::NeedRead => self.wait_io(&stream.sock, false, self.deadline)?,
                Progress::NeedWrite => self.wait_io(&stream.sock, true, self.deadline)?,
            }
        }
    }

    /// Looks at the first byte before rustls does: a TLS connection starts with a
    /// handshake record (0x16). A letter means plain HTTP (`http://` or `ws://` to the
    /// TLS port): answer that in plain text, so a person sees why, instead of a TLS alert.
    fn expect_tls_record(&self, socket: &TcpStream) -> Result<(), Error> {
        let mut first = [0u8; 1];
        loop {
            match socket.peek(&mut first) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => break,
                Err(e) if would_block(&e) => self.wait_io(socket, false, self.deadline)?,
                Err(e) => return Err(Error::Io(e)),
            }
        }
        match first[0] {
            0x16 => Ok(()),
            b'A'..=b'Z' => {
                let reject =
                    http::Reject::new(400, "this port speaks TLS: use https:// or wss://, not http:// or ws://");
                let _ = (&*socket).write_all(http::error_response(&reject).as_bytes());
                Err(Error::Tls("the client spoke plain HTTP (http:// or ws://) to the TLS port".into()))
            }
            other => Err(Error::Tls(format!("not a TLS handshake (first byte 0x{other:02x})"))),
        }
    }

    /// In plain `ws://` mode, turns away a client that starts a TLS handshake: the proxy
    /// in front should have ended TLS, so it (or the client) is set up wrongly.
    fn expect_plain_http(&self, socket: &TcpStream) -> Result<(), Error> {
        let mut first = [0u8; 1];
        loop {
            match socket.peek(&mut first) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) if first[0] == 0x16 => {
                    return Err(Error::Tls(
                        "a TLS client reached this plain ws:// port: the reverse proxy must end TLS and \
                         forward plain HTTP (or the client must use ws://)"
                            .into(),
                    ))
                }
                Ok(_) => return Ok(()),
                Err(e) if would_block(&e) => self.wait_io(socket, false, self.deadline)?,
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// Writes all of `bytes` through TLS and flushes, waiting for the socket as needed;
    /// fails if the client takes nothing until `deadline`.
    pub(crate) fn send_all(&self, stream: &mut Transport, mut bytes: &[u8], deadline: Instant) -> Result<(), Error> {
        while !bytes.is_empty() {
            match stream.write(bytes) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
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
        let woken = wait(&socket, want_write, &self.control.waker, Some(deadline)).map_err(Error::Io)?;
        if woken {
            self.control.waker.reset();
            if self.control.close_requested() {
                return Err(Error::Closed);
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout("the TLS and HTTP handshake took too long"));
        }
        Ok(())
    }
}

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

    fn report(&self, id: ConnectionId, peer: SocketAddr, what: &str, error: &Error) {
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
            log::info!("{id}: {what} with {peer} failed: {error}{more}");
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            log::debug!("{id}: {what} with {peer} failed: {error}");
        }
    }
}

/// A failed TLS handshake, with a hint when the client hung up after seeing our
/// certificate: clients that reject it (Python, Node) often close without an alert.
fn handshake_error(e: io::Error, stream: &TlsStream) -> Error {
    if e.kind() == io::ErrorKind::UnexpectedEof && stream.bytes_sent > 0 {
        return Error::Tls(
            "the client hung up after receiving our certificate: it probably does not trust it \
             (install the CA that signed it in the client) or the host name does not match"
                .into(),
        );
    }
    tls_error(e)
}

/// rustls errors arrive wrapped in `io::Error` (`InvalidData`); name them as TLS errors,
/// with a hint for the ones people meet most.
pub(crate) fn tls_error(e: io::Error) -> Error {
    if e.kind() != io::ErrorKind::InvalidData {
        return Error::Io(e);
    }
    let text = e.to_string();
    let hint = if text.contains("UnknownCA") || text.contains("BadCertificate") || text.contains("CertificateUnknown") {
        " (the client does not trust our certificate: install the CA that signed it in the client, \
         or check the host name)"
    } else {
        ""
    };
    Error::Tls(format!("{text}{hint}"))
}
