//! The Redis backplane under load, in one process: a `redis-server` started here
//! (Debian's package), tinywss servers on 127.0.0.1:0 joined to it, and TLS WebSocket
//! clients on one tokio thread.
//!
//! - **Latency**: a publisher on node A, `--subscribers` clients (100) in a room on node
//!   B; `--rate` messages per second (100) for `--seconds` (3), each stamped with the
//!   time of the `publish` call; p50/p99 from that call to the client's receipt. Then the
//!   same with the clients on node A itself, for comparison; then both with 1 client.
//!   A third node, C, has no member in the room: what it spends skipping those messages
//!   is its subscriber thread's run time (`/proc/self/task/TID/schedstat`).
//! - **Fan-out**: `--fanout-clients` clients (1,000) in one room, on one node, then split
//!   over two; node A publishes `--burst` messages (100) back to back; deliveries per
//!   second from the first `publish` call to the last receipt, and their latency.
//!
//! Every message is 64 bytes (the stamp, a sequence number, padding). Prints one
//! Markdown table. Needs `redis-server` on the PATH.
//!
//! Usage: backplane [--subscribers N] [--rate MSGS_PER_S] [--seconds S]
//!        [--fanout-clients N] [--burst N]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tinywss::{Config, Event, Handle, Message, Server};
use tinywss_bench::{client_tls, mono_nanos, Flags, Latency};
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const USAGE: &str = "usage: backplane [--subscribers N (100)] [--rate MSGS_PER_S (100)] [--seconds S (3)] \
[--fanout-clients N (1000)] [--burst N (100)]";
const ROOM: &str = "bench";
const SIZE: usize = 64;

fn main() {
    let flags = Flags::parse(USAGE, &["subscribers", "rate", "seconds", "fanout-clients", "burst"]);
    let subscribers: usize = flags.get("subscribers", 100);
    let rate: u64 = flags.get("rate", 100);
    let count = rate * flags.get::<u64>("seconds", 3);
    let fanout_clients: usize = flags.get("fanout-clients", 1000);
    let burst: u64 = flags.get("burst", 100);

    let dir = std::env::temp_dir().join(format!("tinywss-backplane-bench-{}", std::process::id()));
    let certs = tinywss::DevelopmentCertificate::generate(&dir).expect("certificates");
    let redis = RedisServer::start(&dir);
    let clients = Clients::new(&certs.ca);
    let start = |name: &str| Node::start(name, &redis.url(), &certs.cert, &certs.key);

    println!("| what | clients | messages | p50 | p99 | deliveries/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    // Latency: publisher on A; the room on B, then on A; C has no member.
    let (a, b) = (start("A"), start("B"));
    let subs_before = thread_ids("tinywss-sub");
    let c = start("C");
    let c_sub = thread_ids("tinywss-sub").into_iter().find(|t| !subs_before.contains(t));
    let c_run_ns = || c_sub.map(run_ns).unwrap_or(0);
    let mut skipped = (0, 0);
    for clients_n in [subscribers, 1] {
        for (label, node) in [("publisher on A, room on B (through Redis)", &b), ("publisher and room on A", &a)] {
            let before = c_run_ns();
            clients.run(&a, &[(node, clients_n)], count, rate).print(label, clients_n, count);
            skipped = (skipped.0 + c_run_ns() - before, skipped.1 + count);
        }
    }
    let paced = skipped;
    // Fan-out: one node, then two.
    let before = c_run_ns();
    let result = clients.run(&a, &[(&a, fanout_clients)], burst, 0);
    result.print("fan-out, one node (A)", fanout_clients, burst);
    let half = fanout_clients / 2;
    let result = clients.run(&a, &[(&a, fanout_clients - half), (&b, half)], burst, 0);
    result.print("fan-out, two nodes (A publishes; half the clients on B)", fanout_clients, burst);
    let bursts = (c_run_ns() - before, 2 * burst);
    for ((ns, messages), how) in
        [(paced, format!("{rate}/s, one at a time")), (bursts, format!("in bursts of {burst}"))]
    {
        let per_message = ns as f64 / 1000.0 / messages as f64;
        println!("| node C (no member) skipping messages {how}: run time per message | | {messages} | {per_message:.1} µs | | |");
    }
    drop(c);
    for node in [&a, &b] {
        let s = node.handle.stats();
        eprintln!(
            "node {}: published {}, received {}, dropped {} (backplane) / {} (clients), slow consumers closed {}",
            node.name,
            s.backplane_published,
            s.backplane_received,
            s.backplane_dropped,
            s.dropped,
            s.slow_consumer_closes
        );
    }
    drop((a, b));
    let _ = std::fs::remove_dir_all(dir);
}

/// A tinywss server joined to the backplane; its members all join [`ROOM`].
struct Node {
    name: String,
    handle: Handle,
    addr: SocketAddr,
    _server: Server,
}

impl Node {
    fn start(name: &str, redis: &str, cert: &Path, key: &Path) -> Node {
        let config = Config::builder()
            .bind("127.0.0.1:0")
            .tls_pem_files(cert, key)
            .max_connections(5000)
            .max_handshakes(5000)
            .max_connections_per_ip(None)
            .max_handshakes_per_ip(None)
            // A burst to every client at once: room for all of it in each queue.
            .outbound_queue(4096)
            .redis(redis)
            .redis_node_name(name)
            .build()
            .expect("config");
        let server = Server::bind(config).expect("server");
        let (handle, addr) = (server.handle(), server.local_addr());
        let events = server.events();
        let joiner = server.handle();
        thread::spawn(move || {
            for event in events {
                if let Event::Open { conn, .. } = event {
                    let _ = joiner.join(conn, ROOM);
                }
            }
        });
        Node { name: name.into(), handle, addr, _server: server }
    }
}

/// What one run measured.
struct Outcome {
    latency: Latency,
    /// From the first `publish` call to the last receipt.
    elapsed: Duration,
}

impl Outcome {
    fn print(&self, label: &str, clients: usize, messages: u64) {
        let rate = self.latency.count as f64 / self.elapsed.as_secs_f64();
        println!(
            "| {label} | {clients} | {messages} | {:.0} µs | {:.0} µs | {:.0} |",
            self.latency.p50, self.latency.p99, rate
        );
        let expected = clients as u64 * messages;
        if self.latency.count as u64 != expected {
            eprintln!("{label}: {} deliveries of {expected}", self.latency.count);
        }
    }
}

/// The client side: one tokio thread.
struct Clients {
    runtime: tokio::runtime::Runtime,
    connector: TlsConnector,
}

impl Clients {
    fn new(ca: &Path) -> Clients {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Clients { runtime, connector: TlsConnector::from(client_tls(ca)) }
    }

    /// Connects `n` clients to each node of `placement`, waits until `publisher` counts
    /// them all in the room, publishes `count` messages from it (`rate` per second; 0:
    /// back to back), and collects every delivery's latency.
    fn run(&self, publisher: &Node, placement: &[(&Node, usize)], count: u64, rate: u64) -> Outcome {
        let total: usize = placement.iter().map(|(_, n)| n).sum();
        // The previous run's clients have left (their servers saw them go).
        self.wait_until("the previous clients to leave", || publisher.handle.room_size(ROOM) == 0);
        let gate = Arc::new(Semaphore::new(32));
        let tasks: Vec<_> = placement
            .iter()
            .flat_map(|(node, n)| std::iter::repeat_n(node.addr, *n))
            .map(|addr| self.runtime.spawn(receive(addr, self.connector.clone(), Arc::clone(&gate), count)))
            .collect();
        self.wait_until("every client in the room", || publisher.handle.room_size(ROOM) == total);
        let handle = publisher.handle.clone();
        let publishing = thread::spawn(move || publish(&handle, count, rate));
        let mut samples = Vec::with_capacity(total * count as usize);
        let mut last = 0;
        for task in tasks {
            let (latencies, received_at) = self.runtime.block_on(task).expect("client task");
            samples.extend(latencies);
            last = last.max(received_at);
        }
        let first = publishing.join().expect("publisher");
        let elapsed = Duration::from_nanos(last.saturating_sub(first));
        Outcome { latency: Latency::from_nanos(&mut samples), elapsed }
    }
}

impl Clients {
    /// Polls `done` for up to 60 s, running the clients meanwhile (the client thread
    /// runs only while it is driven).
    fn wait_until(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.runtime.block_on(async { tokio::time::sleep(Duration::from_millis(5)).await });
        }
    }
}

/// Publishes `count` stamped messages; returns when the first was published (ns).
fn publish(handle: &Handle, count: u64, rate: u64) -> u64 {
    let started = mono_nanos();
    let begun = Instant::now();
    for seq in 0..count {
        if let Some(offset) = (seq * 1_000_000_000).checked_div(rate) {
            thread::sleep((begun + Duration::from_nanos(offset)).saturating_duration_since(Instant::now()));
        }
        let mut payload = Vec::with_capacity(SIZE);
        payload.extend_from_slice(&mono_nanos().to_be_bytes());
        payload.extend_from_slice(&seq.to_be_bytes());
        payload.resize(SIZE, 0);
        handle.publish(ROOM, Message::Binary(payload)).expect("publish");
    }
    started
}

/// One client: connects, then reads `count` messages; returns their latencies and when
/// the last one came (ns).
async fn receive(addr: SocketAddr, connector: TlsConnector, gate: Arc<Semaphore>, count: u64) -> (Vec<u64>, u64) {
    let ws = {
        let _permit = gate.acquire().await.expect("gate");
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let tls = connector.connect(name, tcp).await.expect("tls");
        let url = format!("wss://localhost:{}/", addr.port());
        tokio_tungstenite::client_async(url, tls).await.expect("upgrade").0
    };
    let (_sink, mut stream) = ws.split();
    let mut latencies = Vec::with_capacity(count as usize);
    let mut last = 0;
    while (latencies.len() as u64) < count {
        match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
            Ok(Some(Ok(WsMessage::Binary(data)))) if data.len() >= 8 => {
                last = mono_nanos();
                let stamp = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
                latencies.push(last.saturating_sub(stamp));
            }
            Ok(Some(Ok(_))) => continue,
            _ => break,
        }
    }
    (latencies, last)
}

/// The ids of this process's threads named `name`.
fn thread_ids(name: &str) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| t.file_name().to_str()?.parse().ok())
        .collect()
}

/// Nanoseconds a thread of this process has run (`/proc/self/task/TID/schedstat`).
fn run_ns(tid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A `redis-server` on a free loopback port, killed when dropped.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(dir: &Path) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("port").port();
        let log: PathBuf = dir.join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", dir.to_str().expect("dir"), "--logfile", log.to_str().expect("log")])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian: apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(10));
        }
        RedisServer { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
