//! The per-connection thread: TLS handshake, HTTP Upgrade, then the frame loop.
//!
//! One thread owns the socket, the rustls session and the tungstenite `WebSocket`, and
//! blocks in `poll(2)` on the socket and its [`Waker`](crate::wait::Waker) with the
//! nearest timer as timeout. Each wake-up is handled as a batch: read every frame that
//! is available, queue every outbound message that is waiting, then flush once.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{select, Receiver, Sender, TrySendError};
use tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message as WsMessage, WebSocket};

use crate::config::Limits;
use crate::dispatcher::{Command, Control};
use crate::stats::{add, bump, Counters};
use crate::stream::{would_block, Progress, TlsStream, Transport};
use crate::wait::wait;
use crate::{http, CloseReason, ConnectionId, ConnectionInfo, Error, Event, Message};

/// Most messages read per wake-up before queued output gets its turn.
const READ_BUDGET: usize = 256;

/// What every connection thread shares with the server.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) limits: Limits,
    /// `None` for plain `ws://` behind a TLS-terminating proxy.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) events: Sender<Event>,
    pub(crate) commands: Sender<Command>,
    pub(crate) stats: Arc<Counters>,
    /// Never receives; disconnects when shutdown begins, to unblock event sends.
    pub(crate) shutdown: Receiver<()>,
}

impl Context {
    /// Hands an event to the application, waiting while its channel is full (this is
    /// the backpressure that slows clients down) unless the server is shutting down.
    fn emit(&self, event: Event) -> bool {
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

/// The body of a connection thread.
pub(crate) fn run(conn: Connection) {
    let Connection { id, peer, socket, control, outbox, context } = conn;
    let deadline = Instant::now() + context.limits.handshake_timeout;
    let thread = Thread { id, peer, control, context: &context, deadline };
    if let Some((stream, info, leftover)) = thread.handshake(socket) {
        let _ = context.commands.send(Command::Opened { id });
        log::debug!("{id}: open, path {:?}, subprotocol {:?}, {}", info.path, info.subprotocol, info.tls_version);
        context.emit(Event::Open { conn: id, info });
        let started = Instant::now();
        let mut session = Session::new(&thread, &outbox, stream, leftover);
        let reason = session.run();
        session.finish();
        let _ = context.commands.send(Command::Unregister { id });
        log::debug!("{id}: {reason} after {:.1?}", started.elapsed());
        context.emit(Event::Close { conn: id, reason });
    } else {
        let _ = context.commands.send(Command::Unregister { id });
    }
    let unsent = outbox.try_iter().count();
    if unsent > 0 {
        add(&context.stats.dropped, unsent);
        log::debug!("{id}: {unsent} queued messages were not sent before the connection ended");
    }
}

/// The parts of a connection thread that every phase uses.
struct Thread<'a> {
    id: ConnectionId,
    peer: SocketAddr,
    control: Arc<Control>,
    context: &'a Context,
    /// One deadline for the TLS handshake and the HTTP Upgrade together.
    deadline: Instant,
}

impl Thread<'_> {
    /// TLS handshake, then HTTP Upgrade, under one deadline. `None` when the client was
    /// turned away (logged and counted here).
    fn handshake(&self, socket: TcpStream) -> Option<(Transport, ConnectionInfo, Vec<u8>)> {
        let stats = &self.context.stats;
        let mut stream = match self.tls_handshake(socket) {
            Ok(stream) => stream,
            Err(e) => {
                bump(if matches!(e, Error::Timeout(_)) {
                    &stats.handshakes_timed_out
                } else {
                    &stats.handshakes_failed_tls
                });
                log::debug!("{}: TLS handshake with {} failed: {e}", self.id, self.peer);
                return None;
            }
        };
        let tls = stream.tls();
        let tls_version = tls.and_then(|t| t.protocol_version()).map(|v| format!("{v:?}")).unwrap_or_default();
        let server_name = tls.and_then(|t| t.server_name()).map(str::to_owned);
        let client_certificate = tls.and_then(crate::tls::client_certificate);
        if let Some(tls) = tls {
            log::debug!(
                "{}: TLS established: {tls_version}, {:?}, SNI {server_name:?}, client certificate {:?}",
                self.id,
                tls.negotiated_cipher_suite().map(|s| s.suite()),
                client_certificate.as_ref().map(|c| &c.subject)
            );
        }
        match self.http_upgrade(&mut stream) {
            Ok((upgrade, leftover)) => {
                let info = ConnectionInfo {
                    id: self.id,
                    peer: self.peer,
                    path: upgrade.path,
                    subprotocol: upgrade.subprotocol,
                    server_name,
                    tls_version,
                    client_certificate,
                };
                Some((stream, info, leftover))
            }
            Err(e) => {
                bump(if matches!(e, Error::Timeout(_)) {
                    &stats.handshakes_timed_out
                } else {
                    &stats.handshakes_failed_http
                });
                log::debug!("{}: HTTP Upgrade from {} failed: {e}", self.id, self.peer);
                stream.close_notify();
                None
            }
        }
    }

    fn tls_handshake(&self, socket: TcpStream) -> Result<Transport, Error> {
        let Some(config) = &self.context.tls else {
            self.expect_plain_http(&socket)?;
            return Ok(Transport::Plain(socket));
        };
        self.expect_tls_record(&socket)?;
        let tls = rustls::ServerConnection::new(Arc::clone(config)).map_err(|e| Error::Tls(e.to_string()))?;
        let mut stream = TlsStream::new(tls, socket);
        loop {
            match stream.handshake().map_err(tls_error)? {
                Progress::Done => return Ok(Transport::Tls(stream)),
                Progress::NeedRead => self.wait_handshake(&stream.sock, false)?,
                Progress::NeedWrite => self.wait_handshake(&stream.sock, true)?,
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
                Err(e) if would_block(&e) => self.wait_handshake(socket, false)?,
                Err(e) => return Err(Error::Io(e)),
            }
        }
        match first[0] {
            0x16 => Ok(()),
            b'A'..=b'Z' => {
                let reject = http::Reject {
                    status: 400,
                    reason: "this port speaks TLS: use https:// or wss://, not http:// or ws://".into(),
                };
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
                Err(e) if would_block(&e) => self.wait_handshake(socket, false)?,
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// Reads the request head, decides, and answers 101 or an error.
    fn http_upgrade(&self, stream: &mut Transport) -> Result<(http::Upgrade, Vec<u8>), Error> {
        let (head, leftover) = self.read_request_head(stream)?;
        match http::parse_upgrade(&head, &self.context.limits.subprotocols) {
            Ok(upgrade) => {
                self.respond(stream, &http::switching_protocols(&upgrade))?;
                Ok((upgrade, leftover))
            }
            Err(reject) => Err(self.refuse(stream, reject)),
        }
    }

    fn refuse(&self, stream: &mut Transport, reject: http::Reject) -> Error {
        // The refusal is best effort: the error to report is the refusal itself.
        let _ = self.respond(stream, &http::error_response(&reject));
        Error::Handshake { status: reject.status, reason: reject.reason }
    }

    /// Reads until the blank line that ends the request head; returns the head and any
    /// bytes after it (a client may send its first frame right behind the request).
    fn read_request_head(&self, stream: &mut Transport) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let max = self.context.limits.max_request_head;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let scanned = buf.len().saturating_sub(3);
            match stream.read(&mut chunk) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if would_block(&e) => {
                    // TLS 1.3 session tickets may still be waiting to go out.
                    let _ = stream.flush();
                    self.wait_handshake(stream.sock(), stream.wants_write())?;
                    continue;
                }
                Err(e) => return Err(tls_error(e)),
            }
            if let Some(end) = http::head_len(&buf[scanned..]).map(|n| scanned + n) {
                let leftover = buf.split_off(end);
                return Ok((buf, leftover));
            }
            if buf.len() > max {
                let reject = http::Reject { status: 431, reason: format!("request head larger than {max} bytes") };
                return Err(self.refuse(stream, reject));
            }
        }
    }

    /// Writes a complete HTTP response through TLS before the handshake deadline.
    fn respond(&self, stream: &mut Transport, response: &str) -> Result<(), Error> {
        stream.write_all(response.as_bytes()).map_err(tls_error)?;
        loop {
            match stream.flush() {
                Ok(()) => return Ok(()),
                Err(e) if would_block(&e) => self.wait_handshake(stream.sock(), true)?,
                Err(e) => return Err(tls_error(e)),
            }
        }
    }

    /// Waits for the socket during the handshake; gives up at the deadline or shutdown.
    fn wait_handshake(&self, socket: &TcpStream, want_write: bool) -> Result<(), Error> {
        let woken = wait(socket, want_write, &self.control.waker, Some(self.deadline)).map_err(Error::Io)?;
        if woken {
            self.control.waker.reset();
            if self.control.close_requested() {
                return Err(Error::Closed);
            }
        }
        if Instant::now() >= self.deadline {
            return Err(Error::Timeout("the TLS and HTTP handshake took too long"));
        }
        Ok(())
    }
}

/// A close the server started, and when to stop waiting for the client's reply.
struct Closing {
    code: u16,
    reason: String,
    deadline: Instant,
}

/// The frame loop of an open connection.
struct Session<'a> {
    thread: &'a Thread<'a>,
    outbox: &'a Receiver<WsMessage>,
    ws: WebSocket<Transport>,
    /// When any frame last arrived (keepalive).
    last_frame: Instant,
    /// When a data message last arrived (idle timeout).
    last_message: Instant,
    ping_sent: Option<Instant>,
    closing: Option<Closing>,
    /// The close code and reason the client sent first, if it started the close.
    client_close: Option<(u16, String)>,
    /// A message tungstenite handed back because its write buffer was full.
    pending: Option<WsMessage>,
    want_write: bool,
    /// Frames may be waiting in rustls or tungstenite after the read budget ran out.
    more_to_read: bool,
}

impl<'a> Session<'a> {
    fn new(thread: &'a Thread<'a>, outbox: &'a Receiver<WsMessage>, stream: Transport, leftover: Vec<u8>) -> Self {
        let limits = &thread.context.limits;
        let config = WebSocketConfig::default()
            .read_buffer_size(limits.read_buffer_size)
            .write_buffer_size(limits.write_buffer_size)
            // Room for one more message beyond the batch: the outbound queue, not this
            // buffer, is where messages wait for a slow client.
            .max_write_buffer_size(limits.write_buffer_size + limits.max_message_size.max(64 << 10) + 64)
            .max_message_size(Some(limits.max_message_size))
            .max_frame_size(Some(limits.max_frame_size.min(limits.max_message_size)));
        let now = Instant::now();
        Session {
            thread,
            outbox,
            ws: WebSocket::from_partially_read(stream, leftover, Role::Server, Some(config)),
            last_frame: now,
            last_message: now,
            ping_sent: None,
            closing: None,
            client_close: None,
            pending: None,
            want_write: false,
            more_to_read: false,
        }
    }

    fn limits(&self) -> &Limits {
        &self.thread.context.limits
    }

    /// Runs until the connection is over; returns why.
    fn run(&mut self) -> CloseReason {
        loop {
            // Look at the close request before the queue: a message queued before the
            // request must still go out before the Close frame.
            let close_request = self.thread.control.take_close_request();
            if let Some(end) = self.read_frames() {
                return end;
            }
            self.write_queued();
            if let Some((code, reason)) = close_request {
                self.start_close(code, reason);
            }
            if let Some(end) = self.check_timers() {
                return end;
            }
            if let Some(end) = self.flush() {
                return end;
            }
            let deadline = if self.more_to_read { Some(Instant::now()) } else { self.next_deadline() };
            let waker = &self.thread.control.waker;
            match wait(self.ws.get_ref().sock(), self.want_write, waker, deadline) {
                Ok(true) => waker.reset(),
                Ok(false) => {}
                Err(e) => return CloseReason::Error(Error::Io(e)),
            }
        }
    }

    /// Reads every frame that is ready (up to the budget); `Some` when the connection ended.
    fn read_frames(&mut self) -> Option<CloseReason> {
        self.more_to_read = false;
        for _ in 0..READ_BUDGET {
            match self.ws.read() {
                Ok(message) => {
                    self.last_frame = Instant::now();
                    self.ping_sent = None;
                    self.on_message(message);
                }
                Err(WsError::Io(e)) if would_block(&e) => return None,
                Err(e) => return Some(self.on_read_error(e)),
            }
        }
        self.more_to_read = true;
        None
    }

    fn on_message(&mut self, message: WsMessage) {
        let id = self.thread.id;
        let context = self.thread.context;
        let message = match message {
            WsMessage::Text(text) => Message::Text(text.as_str().to_owned()),
            WsMessage::Binary(data) => Message::Binary(data.into()),
            WsMessage::Ping(_) => return log::trace!("{id}: ping received; pong queued"),
            WsMessage::Pong(_) => return log::trace!("{id}: pong received"),
            WsMessage::Close(frame) => return self.on_close_frame(frame),
            WsMessage::Frame(_) => return,
        };
        self.last_message = self.last_frame;
        bump(&context.stats.messages_in);
        add(&context.stats.bytes_in, message.len());
        log::trace!("{id}: {} message of {} bytes received", kind(&message), message.len());
        context.emit(Event::Message { conn: id, message });
    }

    fn on_close_frame(&mut self, frame: Option<CloseFrame>) {
        let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.as_str().to_owned()));
        if self.closing.is_some() {
            log::trace!("{}: client acknowledged our close with {code}", self.thread.id);
        } else {
            // tungstenite has queued the echo of this Close frame; the next flush sends it.
            log::trace!("{}: client closes with {code} {reason:?}; replying", self.thread.id);
            self.client_close = Some((code, reason));
        }
    }

    /// Maps a read error to the end of the connection, failing it with the RFC's close
    /// code where the client broke the protocol.
    fn on_read_error(&mut self, error: WsError) -> CloseReason {
        match error {
            WsError::ConnectionClosed | WsError::AlreadyClosed => self.clean_end(),
            // We started the close; a client that hangs up instead of replying still
            // ends the connection the way the server asked for.
            WsError::Io(_) | WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)
                if self.closing.is_some() =>
            {
                self.clean_end()
            }
            WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
                CloseReason::Error(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the client closed the connection without a close handshake",
                )))
            }
            WsError::Io(e) => CloseReason::Error(tls_error(e)),
            WsError::Capacity(e) => self.fail(1009, &format!("{e}")),
            WsError::Utf8(_) => self.fail(1007, "invalid UTF-8 in a text message"),
            WsError::Protocol(e) => self.fail(1002, &format!("{e}")),
            WsError::AttackAttempt => self.fail(1008, "attack attempt"),
            other => CloseReason::Error(Error::Protocol(other.to_string())),
        }
    }

    /// The close handshake finished: report who started it.
    fn clean_end(&mut self) -> CloseReason {
        if let Some(closing) = self.closing.take() {
            CloseReason::Server { code: closing.code, reason: closing.reason }
        } else if let Some((code, reason)) = self.client_close.take() {
            CloseReason::Client { code, reason }
        } else {
            CloseReason::Error(Error::Io(io::ErrorKind::UnexpectedEof.into()))
        }
    }

    /// _Fail the WebSocket Connection_ (RFC 6455 §7.1.7): send a Close frame with the
    /// code, then drop the connection without waiting for a reply.
    fn fail(&mut self, code: u16, reason: &str) -> CloseReason {
        log::debug!("{}: failing the connection with {code}: {reason}", self.thread.id);
        // Control frames carry at most 125 bytes: 2 for the code, the rest for the reason.
        let reason = truncate_utf8(reason, 123).to_owned();
        let _ = self.ws.close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.clone().into() }));
        CloseReason::Server { code, reason }
    }

    /// Moves queued messages into tungstenite until the queue is empty or buffers are full.
    fn write_queued(&mut self) {
        if let Some(message) = self.pending.take() {
            if !self.write(message) {
                return;
            }
        }
        while self.ws.can_write() {
            match self.outbox.try_recv() {
                Ok(message) => {
                    if !self.write(message) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }

    /// Hands one message to tungstenite; false when no more should be written now.
    fn write(&mut self, message: WsMessage) -> bool {
        let len = message.len();
        let stats = &self.thread.context.stats;
        match self.ws.write(message) {
            Ok(()) => {}
            // Buffered; the socket is full for now.
            Err(WsError::Io(e)) if would_block(&e) => self.want_write = true,
            Err(WsError::WriteBufferFull(message)) => {
                self.pending = Some(*message);
                self.want_write = true;
                return false;
            }
            Err(e) => {
                bump(&stats.dropped);
                log::debug!("{}: message not sent: {e}", self.thread.id);
                return false;
            }
        }
        bump(&stats.messages_out);
        add(&stats.bytes_out, len);
        log::trace!("{}: message of {len} bytes queued for the client", self.thread.id);
        !self.want_write
    }

    /// Starts the close handshake, unless one is already under way.
    fn start_close(&mut self, code: u16, reason: String) {
        if self.closing.is_some() || !self.ws.can_write() {
            return;
        }
        log::debug!("{}: closing with {code} {reason:?}", self.thread.id);
        let frame = CloseFrame { code: CloseCode::from(code), reason: truncate_utf8(&reason, 123).to_owned().into() };
        let deadline = Instant::now() + self.limits().close_timeout;
        self.closing = Some(Closing { code, reason, deadline });
        // The frame is queued even when the socket is full (WouldBlock); flush sends it.
        let _ = self.ws.close(Some(frame));
    }

    /// Keepalive, idle and close deadlines; `Some` when the connection must end now.
    fn check_timers(&mut self) -> Option<CloseReason> {
        let now = Instant::now();
        if self.closing.as_ref().is_some_and(|c| now >= c.deadline) {
            log::debug!("{}: no close reply from the client in time", self.thread.id);
            return Some(self.clean_end());
        }
        let limits = self.limits();
        let (pong_timeout, ping_interval, idle_timeout) =
            (limits.pong_timeout, limits.ping_interval, limits.idle_timeout);
        match (self.ping_sent, ping_interval) {
            (Some(sent), _) if now >= sent + pong_timeout => {
                return Some(CloseReason::Error(Error::Timeout("no answer to a keepalive ping")));
            }
            (None, Some(interval)) if now >= self.last_frame + interval && self.closing.is_none() => {
                log::trace!("{}: quiet for {interval:?}; sending a keepalive ping", self.thread.id);
                self.ping_sent = Some(now);
                let _ = self.ws.write(WsMessage::Ping(Default::default()));
            }
            _ => {}
        }
        if let Some(idle) = idle_timeout {
            if now >= self.last_message + idle {
                self.start_close(1000, "idle timeout".into());
            }
        }
        None
    }

    /// When the loop must wake up even if nothing arrives.
    fn next_deadline(&self) -> Option<Instant> {
        let limits = self.limits();
        let keepalive = match self.ping_sent {
            Some(sent) => Some(sent + limits.pong_timeout),
            None => limits.ping_interval.map(|i| self.last_frame + i),
        };
        let idle = limits.idle_timeout.map(|i| self.last_message + i);
        let close = self.closing.as_ref().map(|c| c.deadline);
        [keepalive, idle, close].into_iter().flatten().min()
    }

    /// Writes everything buffered; `Some` when that ended the connection.
    fn flush(&mut self) -> Option<CloseReason> {
        match self.ws.flush() {
            Ok(()) => {
                self.want_write = false;
                None
            }
            Err(WsError::Io(e)) if would_block(&e) => {
                self.want_write = true;
                None
            }
            // The server wrote the last Close frame of the handshake.
            Err(WsError::ConnectionClosed) => Some(self.clean_end()),
            Err(WsError::Io(e)) => Some(CloseReason::Error(tls_error(e))),
            Err(e) => Some(CloseReason::Error(Error::Protocol(e.to_string()))),
        }
    }

    /// Sends what is still buffered (a Close frame, usually), then TLS `close_notify`,
    /// then closes TCP: within the close timeout, because the client may be gone.
    fn finish(&mut self) {
        let deadline = Some(Instant::now() + self.limits().close_timeout);
        let waker = &self.thread.control.waker;
        let stream = self.ws.get_mut();
        loop {
            match stream.flush() {
                Err(e) if would_block(&e) => {}
                _ => break,
            }
            match wait(stream.sock(), true, waker, deadline) {
                Ok(_) if deadline.is_some_and(|d| Instant::now() < d) => {}
                _ => break,
            }
        }
        stream.close_notify();
        let _ = stream.sock().shutdown(Shutdown::Both);
    }
}

fn kind(message: &Message) -> &'static str {
    match message {
        Message::Text(_) => "text",
        Message::Binary(_) => "binary",
    }
}

/// rustls errors arrive wrapped in `io::Error` (`InvalidData`); name them as TLS errors,
/// with a hint for the ones people meet most.
fn tls_error(e: io::Error) -> Error {
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

/// The longest prefix of `text` that fits in `max` bytes without splitting a character.
fn truncate_utf8(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate_utf8;

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }
}
