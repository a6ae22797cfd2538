//! `tinywss serve --exec`: one process per connection, on the connection's own thread
//! (handler mode).
//!
//! The handler waits for the client and for the process at once: `recv_timeout`
//! returns for a client message, or early when the process's reader thread has queued
//! output and rung the connection's [`Wakeup`](tinywss::Wakeup). Back-pressure both ways,
//! with no buffer that can grow:
//!
//! - output: `Connection::send` waits while the client's socket is full; meanwhile the
//!   reader's small channel fills, the reader stops, the pipe fills, and the process
//!   blocks in `write`.
//! - input: a client message is handed to the writer thread only when its channel has
//!   room. While the process does not read, the handler keeps forwarding output and
//!   takes at most 64 KiB more from the client (to notice it leaving): then nothing
//!   more is read from it, and TCP holds it back.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tinywss::crossbeam_channel::{Receiver, RecvTimeoutError, Select, Sender, TryRecvError, TrySendError};
use tinywss::{AppData, Connection, HandlerError, Message, Rejection, Request};

use crate::process::{self, Framing};

/// How long the handler sleeps when neither its client nor its process has anything:
/// only a bound, since both wake it.
const IDLE: Duration = Duration::from_secs(3600);

/// While the process does not read: how often the handler looks whether the client is
/// still there (one wake-up a second, only while the process is stuck)...
const STALL_CHECK: Duration = Duration::from_secs(1);

/// ...and how much more it may take from the client meanwhile (one message may be
/// larger alone). Past that, the client is held back by TCP, and its leaving is
/// noticed when the process reads, writes or exits, or the server stops.
const HELD_BYTES: usize = 64 << 10;

/// What `--exec` runs, and how.
pub struct Exec {
    pub command: Vec<String>,
    pub framing: Framing,
    pub grace: Duration,
    /// Disconnects when the server shuts down.
    pub stop: Receiver<()>,
}

/// Why the relay between a client and its process ended.
enum End {
    /// The process closed its output (it exited, most likely).
    Output,
    /// The client left, or the connection failed.
    Client,
    /// The server is shutting down.
    Shutdown,
}

impl Exec {
    /// Serves one client: starts its process, relays both ways, stops and reaps it.
    pub fn serve(&self, conn: &mut Connection<'_>) -> Result<(), HandlerError> {
        let mut command = Command::new(&self.command[0]);
        command.args(&self.command[1..]).envs(environment(conn.request(), conn.info()));
        let wakeup = conn.wakeup();
        let (mut process, input, output) = match process::spawn(command, self.framing, move || wakeup.wake()) {
            Ok((child, input, output)) => (process::Reaper::new(child, self.grace), input, output),
            Err(e) => {
                log::error!("{}: cannot start {:?}: {e}", conn.id(), self.command[0]);
                conn.close(1011, "cannot start the command")?;
                while conn.recv().is_some() {}
                return Ok(());
            }
        };
        log::info!("{} runs process {} ({})", conn.id(), process.child.id(), self.command.join(" "));
        let end = self.relay(conn, &input, &output);
        // End of file on its stdin too, for a process that reads it rather than handle signals.
        drop(input);
        let status = match end {
            End::Output => process.finish(),
            End::Client | End::Shutdown => process.stop(),
        };
        let status = process::describe(status);
        log::info!("{} process {} ended: {status}", conn.id(), process.child.id());
        if let End::Output = end {
            conn.close(1000, &format!("process ended ({status})"))?;
            while conn.recv().is_some() {}
        }
        Ok(())
    }

    fn relay(&self, conn: &mut Connection<'_>, input: &Sender<Vec<u8>>, output: &Receiver<Message>) -> End {
        let mut held = Held::default();
        loop {
            loop {
                match output.try_recv() {
                    Ok(message) => {
                        if conn.send(message).is_err() {
                            return End::Client;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return End::Output,
                }
            }
            if !held.is_empty() {
                if let Some(end) = self.feed(conn, input, output, &mut held) {
                    return end;
                }
                continue;
            }
            match conn.recv_timeout(IDLE) {
                Ok(message) => held.push(process::input(&message, "")),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return End::Client,
            }
        }
    }

    /// Hands the held client messages to the process. While it does not read, waits for
    /// it (or for shutdown) and forwards its output meanwhile; and once a second looks at
    /// the client, taking at most [`HELD_BYTES`] more from it, so that a client that
    /// leaves is noticed while its process is stuck. Returns when one message went in.
    fn feed(
        &self,
        conn: &mut Connection<'_>,
        input: &Sender<Vec<u8>>,
        output: &Receiver<Message>,
        held: &mut Held,
    ) -> Option<End> {
        while let Some(bytes) = held.pop() {
            match input.try_send(bytes) {
                // A process that closed its stdin gets no input: the message is dropped.
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(bytes)) => {
                    held.push_front(bytes);
                    break;
                }
            }
        }
        if held.is_empty() {
            return None;
        }
        log::debug!("{}: the process is not reading; holding the client back", conn.id());
        if conn.flush().is_err() {
            return Some(End::Client);
        }
        loop {
            let mut select = Select::new();
            let (send, recv, _stop) = (select.send(input), select.recv(output), select.recv(&self.stop));
            let Ok(op) = select.select_timeout(STALL_CHECK) else {
                while held.bytes < HELD_BYTES {
                    match conn.recv_timeout(Duration::ZERO) {
                        Ok(message) => held.push(process::input(&message, "")),
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return Some(End::Client),
                    }
                }
                continue;
            };
            match op.index() {
                i if i == send => {
                    // `held` is not empty here: this loop only runs while it holds a message.
                    let _ = op.send(input, held.pop().unwrap_or_default());
                    return None;
                }
                i if i == recv => match op.recv(output) {
                    Ok(message) => {
                        if conn.send(message).and_then(|()| conn.flush()).is_err() {
                            return Some(End::Client);
                        }
                    }
                    Err(_) => return Some(End::Output),
                },
                _ => {
                    let _ = op.recv(&self.stop);
                    return Some(End::Shutdown);
                }
            }
        }
    }
}

/// Client messages taken from the connection but not yet written to the process.
#[derive(Default)]
struct Held {
    messages: VecDeque<Vec<u8>>,
    bytes: usize,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    fn push(&mut self, bytes: Vec<u8>) {
        self.bytes += bytes.len();
        self.messages.push_back(bytes);
    }

    fn push_front(&mut self, bytes: Vec<u8>) {
        self.bytes += bytes.len();
        self.messages.push_front(bytes);
    }

    fn pop(&mut self) -> Option<Vec<u8>> {
        let bytes = self.messages.pop_front()?;
        self.bytes -= bytes.len();
        Some(bytes)
    }
}

/// The process's environment, as a CGI script's (RFC 3875), on top of the server's own.
pub fn environment(request: &Request, info: &tinywss::ConnectionInfo) -> Vec<(String, String)> {
    let (host, port) = host_and_port(request, info.peer);
    let mut env = vec![
        ("REMOTE_ADDR".to_owned(), info.peer.ip().to_string()),
        ("REMOTE_PORT".to_owned(), info.peer.port().to_string()),
        ("REQUEST_METHOD".to_owned(), request.method().to_owned()),
        ("REQUEST_URI".to_owned(), info.path.clone()),
        ("PATH_INFO".to_owned(), request.path().to_owned()),
        ("QUERY_STRING".to_owned(), request.query().unwrap_or("").to_owned()),
        ("SERVER_NAME".to_owned(), host),
        ("SERVER_PORT".to_owned(), port),
        ("SERVER_PROTOCOL".to_owned(), "HTTP/1.1".to_owned()),
        ("SERVER_SOFTWARE".to_owned(), concat!("tinywss/", env!("CARGO_PKG_VERSION")).to_owned()),
        ("HTTPS".to_owned(), "on".to_owned()),
        ("TINYWSS_CONNECTION_ID".to_owned(), info.id.as_u64().to_string()),
    ];
    if let Some(protocol) = &info.subprotocol {
        env.push(("WEBSOCKET_PROTOCOL".to_owned(), protocol.clone()));
    }
    if let Some(cert) = &info.client_certificate {
        // mod_ssl's names: scripts written for Apache or nginx read them as they are.
        env.push(("SSL_CLIENT_VERIFY".to_owned(), "SUCCESS".to_owned()));
        env.push(("SSL_CLIENT_S_DN".to_owned(), cert.subject.clone()));
        env.push(("SSL_CLIENT_I_DN".to_owned(), cert.issuer.clone()));
        if let Some(cn) = &cert.common_name {
            env.push(("SSL_CLIENT_S_DN_CN".to_owned(), cn.clone()));
        }
    }
    for (name, value) in request.headers() {
        // `Proxy:` would become HTTP_PROXY, which many HTTP clients obey ("httpoxy").
        if name.eq_ignore_ascii_case("proxy") {
            continue;
        }
        let name = format!("HTTP_{}", header_variable(name));
        match env.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => *joined = format!("{joined}, {value}"),
            None => env.push((name, value.to_owned())),
        }
    }
    env
}

/// `User-Agent` → `USER_AGENT`; anything but letters and digits becomes `_`.
fn header_variable(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

/// The server's name and port as the client addressed it: SNI, else the Host header.
fn host_and_port(request: &Request, peer: SocketAddr) -> (String, String) {
    let host_header = request.header("host").unwrap_or("");
    let (host, port) = match host_header.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port),
        _ => (host_header, "443"),
    };
    let host = request.server_name().unwrap_or(host.trim_start_matches('[').trim_end_matches(']'));
    let host = if host.is_empty() { peer.ip().to_string() } else { host.to_owned() };
    (host, port.to_owned())
}

/// Processes running under `--max-forks`: a slot is taken in the authentication hook,
/// before the HTTP 101, and given back when the connection's data is dropped (its
/// thread has ended, the process reaped), or when the handshake fails after the hook.
pub struct Forks {
    running: AtomicUsize,
    max: usize,
}

struct Slot(Arc<Forks>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Forks {
    pub fn new(max: usize) -> Arc<Forks> {
        Arc::new(Forks { running: AtomicUsize::new(0), max })
    }

    /// The authentication hook: a slot for the process, or HTTP 503 (Service
    /// Unavailable). Refused before the Upgrade, the client costs no process and no
    /// WebSocket thread, and sees a plain status, as from any busy server; a Close 1013
    /// would need a WebSocket opened first, only to be closed.
    pub fn admit(self: &Arc<Forks>, _request: &Request) -> Result<Option<AppData>, Rejection> {
        let taken = self.running.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < self.max).then_some(n + 1));
        match taken {
            Ok(_) => Ok(Some(Arc::new(Slot(Arc::clone(self))) as AppData)),
            Err(_) => {
                log::info!("refused a client: {} processes running (--max-forks)", self.max);
                Err(Rejection::new(503, format!("busy: {} processes running (--max-forks), try again later", self.max)))
            }
        }
    }
}
