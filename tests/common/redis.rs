//! A real `redis-server` (Debian's `redis-server` package) for the backplane tests: each
//! test starts its own on a free loopback port, and it is stopped by its PID when the
//! test ends. Commands are spoken in RESP by hand, so the tests do not depend on the
//! client the library uses.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{TempDir, PATIENCE};

/// A `redis-server` child process, killed (SIGKILL) and reaped on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// Extra arguments, kept for a restart on the same port.
    extra: Vec<String>,
    dir: TempDir,
}

impl RedisServer {
    /// A plain server on a free loopback port, no persistence.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// A server with extra arguments (`--requirepass`, TLS options, ...).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        // Another process may take the port between our probe and the server's bind:
        // try a few ports before giving up.
        for _ in 0..5 {
            let mut server = RedisServer { child: None, port: free_port(), extra: extra.clone(), dir: TempDir::new() };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// A plain server on `port` (one a node was told about before Redis ran).
    pub fn start_on(port: u16) -> RedisServer {
        let mut server = RedisServer { child: None, port, extra: Vec::new(), dir: TempDir::new() };
        assert!(server.spawn(), "redis-server did not start on port {port}");
        server
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is not running").id()
    }

    /// Where the server's own log goes (for a failing test's message).
    pub fn log_file(&self) -> PathBuf {
        self.dir.0.join("redis.log")
    }

    /// Kills the server with SIGKILL: no goodbye to its clients, like a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "redis-server did not restart on port {}; see {}", self.port, self.log_file().display());
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) the server: a Redis that hangs.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }

    /// `PUBLISH channel payload`; returns how many subscribers received it.
    pub fn publish(&self, channel: &str, payload: &[u8]) -> i64 {
        let reply = self.command(&[b"PUBLISH", channel.as_bytes(), payload]);
        reply.trim_start_matches(':').trim().parse().unwrap_or_else(|_| panic!("PUBLISH answered {reply:?}"))
    }

    /// Sends one command and returns the first line of the reply (`+PONG`, `:2`, ...).
    pub fn command(&self, args: &[&[u8]]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connecting to redis-server");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(&resp(args)).unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    /// Starts the process and waits (boundedly) until it answers PING; `false` when it
    /// exits first (its port was taken).
    fn spawn(&mut self) -> bool {
        let log = self.log_file();
        let port = self.port.to_string();
        let dir = self.dir.0.to_string_lossy().into_owned();
        let mut args = vec!["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
        args.extend(["--dir", &dir, "--logfile", log.to_str().unwrap()]);
        args.extend(self.extra.iter().map(String::as_str));
        let child = Command::new("redis-server")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run redis-server: install Debian's package (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if self.child.as_mut().unwrap().try_wait().ok().flatten().is_some() {
                self.child = None;
                return false;
            }
            if self.answers_ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("redis-server on port {} did not answer PING within {PATIENCE:?}", self.port);
    }

    /// Whether the server answers PING (`-NOAUTH` counts: it is up, with a password).
    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        if stream.write_all(&resp(&[b"PING"])).is_err() {
            return false;
        }
        let mut reply = [0u8; 16];
        matches!(stream.read(&mut reply), Ok(n) if reply[..n].starts_with(b"+PONG") || reply[..n].starts_with(b"-NOAUTH"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // A test that stopped it must not leave it stopped for the kill.
            let _ = Command::new("kill").arg("-CONT").arg(child.id().to_string()).status();
        }
        self.kill();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One command in RESP: an array of bulk strings.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A tinywss server on 127.0.0.1:0 joined to a Redis backplane, echoing like
/// [`start_with_client`](super::start_with_client)'s, with its events.
pub struct Node {
    pub server: super::TestServer,
    pub events: std::sync::mpsc::Receiver<tinywss::Event>,
}

/// How long a test node waits between heartbeats: short enough for presence tests,
/// long enough that a loaded machine does not make a live node look dead (3 missed).
pub const TEST_HEARTBEAT: Duration = Duration::from_millis(500);

impl Node {
    /// A node named `name` on the Redis at `url`, configured further by `configure`.
    pub fn start(
        url: &str,
        name: &str,
        configure: impl FnOnce(tinywss::ConfigBuilder) -> tinywss::ConfigBuilder,
    ) -> Node {
        let server =
            super::start(|builder| configure(builder.redis(url).redis_node_name(name).redis_heartbeat(TEST_HEARTBEAT)));
        let events = server.echo();
        Node { server, events }
    }

    pub fn handle(&self) -> tinywss::Handle {
        self.server.handle()
    }

    pub fn stats(&self) -> tinywss::Stats {
        self.server.handle().stats()
    }

    /// A client connected to this node, its connection open and in `rooms`.
    pub fn member(&self, rooms: &[&str]) -> (super::Client, tinywss::ConnectionId) {
        let client = self.server.connect("/");
        let conn = super::next_open(&self.events);
        for room in rooms {
            self.handle().join(conn, room).unwrap();
        }
        (client, conn)
    }
}

/// The next data message of `client` as text (a binary one as `bin:` and its bytes).
pub fn read_text(client: &mut super::Client) -> String {
    match super::read_data(client) {
        tungstenite::Message::Text(text) => text.to_string(),
        tungstenite::Message::Binary(data) => format!("bin:{}", String::from_utf8_lossy(&data)),
        other => panic!("expected a data message, got {other:?}"),
    }
}

/// Waits until every handle counts `n` members in `room` across the cluster.
pub fn await_room_size(nodes: &[&Node], room: &str, n: usize) {
    for node in nodes {
        super::eventually(&format!("{room} to have {n} members seen from every node"), || {
            node.handle().room_size(room) == n
        });
    }
}
