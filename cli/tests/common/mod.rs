//! Runs the built `tinywss` binary on 127.0.0.1:0 and talks to it with a real TLS
//! WebSocket client (rustls + tungstenite) that trusts the CA `tinywss certs` made.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

/// How long a step may take on a loaded machine before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub type Client = tungstenite::WebSocket<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

/// A folder removed at the end of the test.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("tinywss-cli-{name}-{}-{n}", std::process::id()));
        // A leftover of an earlier test process with the same pid, killed before its
        // cleanup: start from an empty directory.
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

/// A running `tinywss serve`.
pub struct Tinywss {
    pub child: Child,
    pub addr: SocketAddr,
    pub ca: PathBuf,
    pub dir: TempDir,
    /// Lines of its log (stderr), as they come.
    pub log: mpsc::Receiver<String>,
}

/// `tinywss certs DIR`, checked.
pub fn make_certs(dir: &Path) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_tinywss")).arg("certs").arg(dir).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ca.pem") && text.contains("--cacert"), "{text}");
    dir.join("ca.pem")
}

impl Tinywss {
    /// `tinywss serve --dev=DIR --bind 127.0.0.1:0 ARGS...`, once it says it is ready.
    pub fn start(args: &[&str]) -> Tinywss {
        let dir = TempDir::new("serve");
        let ca = make_certs(&dir.0);
        let mut child = Command::new(env!("CARGO_BIN_EXE_tinywss"))
            .arg("serve")
            .arg(format!("--dev={}", dir.0.display()))
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("  tinywss| {line}");
                let _ = tx.send(line);
            }
        });
        let mut server = Tinywss { child, addr: "127.0.0.1:0".parse().unwrap(), ca, dir, log };
        let ready = server.wait_for_log("ready: wss://");
        let addr = ready.split("wss://").nth(1).unwrap().trim_end_matches('/').split('/').next().unwrap();
        server.addr = addr.parse().unwrap();
        server
    }

    /// The next log line that contains `text` (earlier ones are skipped).
    pub fn wait_for_log(&self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {text:?}: {e}"),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn connect(&self, path: &str) -> Client {
        self.try_connect(path, &[], None).unwrap()
    }

    /// Connects with extra request headers and, for mTLS, a client certificate.
    pub fn try_connect(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        client_cert: Option<(&Path, &Path)>,
    ) -> Result<Client, tungstenite::Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match client_cert {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert).unwrap().map(Result::unwrap).collect();
                builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).unwrap()).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        let tcp = TcpStream::connect(self.addr)?;
        tcp.set_read_timeout(Some(PATIENCE))?;
        tcp.set_write_timeout(Some(PATIENCE))?;
        let tls = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap();
        let mut request = format!("wss://localhost:{}{path}", self.addr.port()).into_client_request()?;
        for (name, value) in headers {
            let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            request.headers_mut().append(name, value.parse().unwrap());
        }
        tungstenite::client::client(request, rustls::StreamOwned::new(tls, tcp)).map(|(ws, _)| ws).map_err(
            |e| match e {
                tungstenite::HandshakeError::Failure(e) => e,
                tungstenite::HandshakeError::Interrupted(_) => panic!("interrupted handshake"),
            },
        )
    }

    /// The server's child processes: (pid, state letter), `Z` for a zombie.
    pub fn children(&self) -> Vec<(u32, char)> {
        children_of(self.pid())
    }

    /// SIGTERM, as systemd or Ctrl-C would: a clean shutdown; its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        terminate(self.pid());
        self.child.wait().unwrap()
    }

    /// The server's open file descriptors and threads, from /proc; not the library's
    /// parked handshake worker, which stays after the first client for the next one.
    pub fn fds_and_threads(&self) -> (usize, usize) {
        let entries =
            |dir: &str| std::fs::read_dir(format!("/proc/{}/{dir}", self.pid())).into_iter().flatten().flatten();
        let fds = entries("fd").count();
        let threads = entries("task")
            .filter(|task| {
                !std::fs::read_to_string(task.path().join("comm")).unwrap_or_default().starts_with("tinywss-hs")
            })
            .count();
        (fds, threads)
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let line = status.lines().find(|l| l.starts_with("VmRSS")).unwrap_or("VmRSS: 0 kB");
        line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

impl Drop for Tinywss {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            terminate(self.pid());
            let _ = self.child.wait();
        }
    }
}

fn terminate(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
}

/// Every process whose parent is `parent`, with its state, from /proc.
pub fn children_of(parent: u32) -> Vec<(u32, char)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // "pid (comm) S ppid ...": the command name may hold spaces and parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            found.push((pid, fields[0].chars().next().unwrap_or('?')));
        }
    }
    found
}

/// Polls `condition` until it holds or [`PATIENCE`] runs out.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The next text message (pings and pongs skipped).
pub fn read_text(client: &mut Client) -> String {
    loop {
        match client.read().unwrap() {
            Message::Text(text) => return text.to_string(),
            Message::Binary(data) => return String::from_utf8_lossy(&data).into_owned(),
            Message::Close(frame) => panic!("closed while waiting for text: {frame:?}"),
            _ => continue,
        }
    }
}

/// The next Close frame's code and reason (data before it skipped).
pub fn read_close(client: &mut Client) -> (u16, String) {
    loop {
        match client.read() {
            Ok(Message::Close(Some(frame))) => {
                let _ = client.flush();
                return (frame.code.into(), frame.reason.to_string());
            }
            Ok(Message::Close(None)) => return (1005, String::new()),
            Ok(_) => continue,
            Err(e) => panic!("no Close frame: {e}"),
        }
    }
}

/// Closes from the client side and reads until the server has answered.
pub fn leave(mut client: Client) {
    let _ = client.close(None);
    while client.read().is_ok() {}
}

/// `NAME=value` lines until `END`, as a map.
pub fn read_env(client: &mut Client) -> HashMap<String, String> {
    let mut env = HashMap::new();
    loop {
        let line = read_text(client);
        if line == "END" {
            return env;
        }
        if let Some((name, value)) = line.split_once('=') {
            env.insert(name.to_owned(), value.to_owned());
        }
    }
}
