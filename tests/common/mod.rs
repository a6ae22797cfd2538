//! Shared test helpers: certificates made at test time, a server on port 0, a real
//! tungstenite + rustls client that trusts the test CA.

// Each test file uses a different part of this module.
#![allow(dead_code)]

pub mod logs;
pub mod pki;
// Needs the `redis` feature (the backplane tests) and a `redis-server` to run.
#[cfg(feature = "redis")]
pub mod redis;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use tinywss::{ConfigBuilder, ConnectionId, DevelopmentCertificate, Event, Handle, Server};
use tungstenite::WebSocket;

/// How long any single wait in a test may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub type Client = WebSocket<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

pub fn init_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = env_logger::builder().is_test(true).try_init();
    });
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("tinywss-test-{}-{n}", std::process::id()));
        // A directory by this name is a leftover of an earlier test process that had the
        // same pid and was killed before it could clean up: start from an empty one.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh CA and localhost certificate in a temporary directory: the library's own
/// development certificate, as the examples and applications get it.
pub struct TestCerts {
    pub dir: TempDir,
    pub files: DevelopmentCertificate,
}

impl TestCerts {
    pub fn new() -> TestCerts {
        let dir = TempDir::new();
        let files = DevelopmentCertificate::generate(&dir.0).unwrap();
        TestCerts { dir, files }
    }
}

/// A running server on 127.0.0.1:0 with fresh certificates.
pub struct TestServer {
    pub server: Server,
    pub addr: SocketAddr,
    pub certs: TestCerts,
}

pub fn start(configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> TestServer {
    init_logger();
    let certs = TestCerts::new();
    let builder = tinywss::Config::builder().bind("127.0.0.1:0").tls_pem_files(&certs.files.cert, &certs.files.key);
    let server = Server::bind(configure(builder).build().unwrap()).unwrap();
    let addr = server.local_addr();
    TestServer { server, addr, certs }
}

/// A server in handler mode on 127.0.0.1:0 with fresh certificates: `handler` serves
/// each client on its own thread.
pub fn start_handler<F>(configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder, handler: F) -> TestServer
where
    F: Fn(&mut tinywss::Connection<'_>) -> Result<(), tinywss::HandlerError> + Send + Sync + 'static,
{
    init_logger();
    let certs = TestCerts::new();
    let builder = tinywss::Config::builder().bind("127.0.0.1:0").tls_pem_files(&certs.files.cert, &certs.files.key);
    let server = Server::serve(configure(builder).build().unwrap(), handler).unwrap();
    let addr = server.local_addr();
    TestServer { server, addr, certs }
}

/// How most tests begin: an echoing server, its events, and one client whose
/// connection is open.
pub struct Started {
    pub server: TestServer,
    pub events: mpsc::Receiver<Event>,
    pub client: Client,
    pub conn: ConnectionId,
}

/// Starts an echoing server configured by `configure`, connects one client to `/` and
/// waits for its `Open` event.
pub fn start_with_client(configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Started {
    let server = start(configure);
    let events = server.echo();
    let client = server.connect("/");
    let conn = next_open(&events);
    Started { server, events, client, conn }
}

impl TestServer {
    pub fn connect(&self, path: &str) -> Client {
        connect(self.addr, &self.certs.files.ca, path).unwrap()
    }

    /// Starts a thread that echoes every message and forwards every event to the test.
    pub fn echo(&self) -> mpsc::Receiver<Event> {
        echo_events(&self.server)
    }

    pub fn handle(&self) -> Handle {
        self.server.handle()
    }
}

/// Starts a thread that echoes every message and forwards every event to the test.
pub fn echo_events(server: &Server) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel();
    let handle = server.handle();
    let events = server.events();
    thread::spawn(move || {
        for event in events {
            if let Event::Message { conn, message, .. } = &event {
                let _ = handle.send(*conn, message.clone());
            }
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    rx
}

/// A rustls client config that trusts only `ca`.
pub fn client_tls(ca: &Path) -> Arc<rustls::ClientConfig> {
    Arc::new(client_builder(ca, rustls::DEFAULT_VERSIONS).with_no_client_auth())
}

/// A rustls client config builder that trusts only `ca` and speaks `versions`.
pub fn client_builder(
    ca: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
}

/// The certificate chain the server presented to `client`.
pub fn served_chain(client: &Client) -> Vec<Vec<u8>> {
    let chain = client.get_ref().conn.peer_certificates().unwrap_or_default();
    chain.iter().map(|c| c.to_vec()).collect()
}

/// The SHA-256 fingerprint of the certificate the server presented to `client`.
pub fn served_fingerprint(client: &Client) -> String {
    tinywss::CertificateInfo::from_der(&served_chain(client)[0]).unwrap().sha256_fingerprint
}

/// Opens a wss:// connection to `addr` as `localhost`, trusting `ca`.
pub fn connect(addr: SocketAddr, ca: &Path, path: &str) -> Result<Client, tungstenite::Error> {
    connect_with(addr, client_tls(ca), "localhost", path)
}

/// Opens a wss:// connection to `addr` with a client config of the test's own, asking
/// for `name` (an IP address sends no SNI).
pub fn connect_with(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: &str,
    path: &str,
) -> Result<Client, tungstenite::Error> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(PATIENCE))?;
    tcp.set_write_timeout(Some(PATIENCE))?;
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let tls = rustls::ClientConnection::new(config, server_name).unwrap();
    let stream = rustls::StreamOwned::new(tls, tcp);
    let host = if name.contains(':') { format!("[{name}]") } else { name.to_owned() }; // IPv6
    let url = format!("wss://{host}:{}{path}", addr.port());
    tungstenite::client::client(url, stream).map(|(ws, _response)| ws).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => panic!("blocking handshake interrupted"),
    })
}

/// Where a test takes its events from: the echo helper's channel ([`TestServer::echo`])
/// or the server's own (`Server::events`), for a test that is the application itself.
pub trait Events {
    /// The next event, or `None` after `patience`.
    fn recv_within(&self, patience: Duration) -> Option<Event>;
}

impl Events for mpsc::Receiver<Event> {
    fn recv_within(&self, patience: Duration) -> Option<Event> {
        self.recv_timeout(patience).ok()
    }
}

impl Events for crossbeam_channel::Receiver<Event> {
    fn recv_within(&self, patience: Duration) -> Option<Event> {
        self.recv_timeout(patience).ok()
    }
}

/// The next event, or a panic after [`PATIENCE`].
pub fn next_event(events: &impl Events) -> Event {
    events.recv_within(PATIENCE).expect("no event in time")
}

/// Waits for the Open event and returns the connection id.
pub fn next_open(events: &impl Events) -> ConnectionId {
    match next_event(events) {
        Event::Open { conn, .. } => conn,
        other => panic!("expected Open, got {other:?}"),
    }
}

/// Reads the next data message (skipping pongs), as tungstenite gives it.
pub fn read_data(client: &mut Client) -> tungstenite::Message {
    loop {
        match client.read().expect("read failed") {
            tungstenite::Message::Pong(_) | tungstenite::Message::Ping(_) => continue,
            other => return other,
        }
    }
}

/// Polls `condition` until it holds or [`PATIENCE`] passes; for states that have no
/// event of their own (a thread that has exited).
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// The names of this process's threads that belong to tinywss.
pub fn tinywss_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|name| name.trim().to_owned())
                .filter(|name| name.starts_with("tinywss"))
                .collect()
        })
        .unwrap_or_default()
}

/// Sends a text message and expects it back: the check that a client is unharmed.
pub fn assert_echo(client: &mut Client, text: &str) {
    client.send(tungstenite::Message::text(text)).expect("send failed");
    assert_eq!(read_data(client), tungstenite::Message::text(text));
}

/// A TLS connection without WebSocket: for crafting requests and frames by hand.
pub type Raw = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects and completes the TLS handshake only.
pub fn raw_tls(addr: SocketAddr, ca: &Path) -> Raw {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    tcp.set_write_timeout(Some(PATIENCE)).unwrap();
    let tls = rustls::ClientConnection::new(client_tls(ca), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut raw = rustls::StreamOwned::new(tls, tcp);
    while raw.conn.is_handshaking() {
        raw.conn.complete_io(&mut raw.sock).unwrap();
    }
    raw
}

pub const UPGRADE_REQUEST: &str = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Sends `request` and returns the response head (through the blank line).
pub fn http_exchange(raw: &mut Raw, request: &[u8]) -> String {
    use std::io::{Read, Write};
    raw.write_all(request).unwrap();
    raw.flush().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match raw.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The status code of an HTTP response head.
pub fn status_of(head: &str) -> u16 {
    head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an HTTP response: {head:?}"))
}

/// A raw client past the Upgrade: ready for hand-made frames.
pub fn raw_websocket(addr: SocketAddr, ca: &Path) -> Raw {
    let mut raw = raw_tls(addr, ca);
    let head = http_exchange(&mut raw, UPGRADE_REQUEST.as_bytes());
    assert_eq!(status_of(&head), 101, "{head}");
    raw
}

/// An offender and a witness on an echoing server: the events, a well-behaved client,
/// and a raw client past the Upgrade with its connection id, both open.
pub struct Offender {
    pub events: mpsc::Receiver<Event>,
    pub good: Client,
    pub raw: Raw,
    pub id: ConnectionId,
}

impl TestServer {
    pub fn offender(&self) -> Offender {
        let events = self.echo();
        let good = self.connect("/");
        next_open(&events);
        let raw = raw_websocket(self.addr, &self.certs.files.ca);
        let id = next_open(&events);
        Offender { events, good, raw, id }
    }
}

/// Encodes one frame. `first` is the first byte (FIN, RSV bits, opcode); clients mask.
pub fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n < 65536 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let key = [0x37, 0xfa, 0x21, 0x3d];
    if masked {
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Reads frames until a Close frame and returns its code (1005 if it had none), or
/// `None` if the connection ended without one.
pub fn read_close_code(raw: &mut Raw) -> Option<u16> {
    use std::io::Read;
    loop {
        let mut head = [0u8; 2];
        raw.read_exact(&mut head).ok()?;
        let len = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                raw.read_exact(&mut n).ok()?;
                u16::from_be_bytes(n) as usize
            }
            127 => {
                let mut n = [0u8; 8];
                raw.read_exact(&mut n).ok()?;
                u64::from_be_bytes(n) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        raw.read_exact(&mut payload).ok()?;
        if head[0] & 0x0f == 0x8 {
            return Some(if len >= 2 { u16::from_be_bytes([payload[0], payload[1]]) } else { 1005 });
        }
    }
}

/// Waits for the Close event of `conn` (skipping other connections' events).
pub fn close_reason_of(events: &mpsc::Receiver<Event>, conn: ConnectionId) -> tinywss::CloseReason {
    loop {
        match next_event(events) {
            Event::Close { conn: c, reason, .. } if c == conn => return reason,
            _ => continue,
        }
    }
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// A line of /proc/self/status in KiB, e.g. "VmRSS" or "VmHWM".
pub fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs `f` on a thread of its own; `None` when it has not returned within [`PATIENCE`]
/// (the thread is left behind), so a call that blocks fails the test instead of hanging it.
pub fn within_patience<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(f());
    });
    result.recv_timeout(PATIENCE).ok()
}

/// Makes a named pipe (FIFO) at `path`.
pub fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("running mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}
