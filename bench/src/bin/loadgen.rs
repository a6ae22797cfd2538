//! The load generator: N concurrent TLS clients on tokio, speaking WebSocket (`--proto
//! ws`, any of the WebSocket servers) or the length-prefixed TLS echo protocol (`--proto
//! tls`, the TLS floor). It trusts only the CA given with `--ca` and prints exactly one
//! JSON line on stdout.
//!
//! Modes:
//! - `echo`: each connection sends one `--size` message and waits for it to come back.
//! - `pipeline`: each connection keeps `--inflight` messages in flight; every batch of
//!   replies read at once is answered by the same number of new messages, one flush.
//! - `push`: the server pushes (tinywss_server `--push-rate`); the first client sends the
//!   text `start N` once all N are connected; the latency of each message is the receipt time
//!   minus the server's `CLOCK_MONOTONIC` stamp in its first 8 bytes; ends at `done`. With
//!   `--pid`, reports the server's CPU time from `start` to the last `done`.
//! - `handshake`: each connection loops TCP connect + TLS + Upgrade + close handshake.
//! - `idle`: opens `--conns` connections and holds them; with `--pid`, reports the server's
//!   RSS before and after (per connection) and its CPU time during `--hold` seconds.
//!
//! Throughput counts replies received during `--duration` seconds after `--warmup`
//! seconds; MB/s is payload bytes echoed back (one direction) per second, 10^6 bytes.
//! Every run is bounded: `--timeout` seconds at most, whatever the server does.

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{Map, Value};
use tinywss_bench::{
    client_tls, cpu_ticks, mono_nanos, rss_kib, sched_totals, status_field, ticks_per_second, Flags, Latency,
    TLS_FRAME_HEADER,
};
use tokio::io::{AsyncBufRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{watch, Barrier, Semaphore};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type BoxError = Box<dyn Error + Send + Sync>;
type Ws = WebSocketStream<TlsStream<TcpStream>>;

const USAGE: &str =
    "usage: loadgen --ca PEM --mode echo|pipeline|push|handshake|idle [--addr HOST:PORT (127.0.0.1:9001)] \
[--proto ws|tls (ws)] [--conns N (1)] [--size BYTES (64)] [--inflight N (32)] [--duration SECS (5)] \
[--warmup SECS (1)] [--threads N (1)] [--label NAME] [--pid SERVER_PID] [--hold SECS (10)] [--settle SECS (2)] \
[--connect-concurrency N (32)] [--timeout SECS (300)] [--test NAME] [--round N]";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Proto {
    Ws,
    Tls,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Echo,
    Pipeline,
    Push,
    Handshake,
    Idle,
}

struct Settings {
    addr: SocketAddr,
    proto: Proto,
    mode: Mode,
    conns: usize,
    size: usize,
    inflight: usize,
    warmup: Duration,
    duration: Duration,
    hold: Duration,
    settle: Duration,
    connect_concurrency: usize,
    pid: Option<u32>,
    connector: TlsConnector,
    /// The zero of the timestamps carried in echo payloads.
    t0: Instant,
}

impl Settings {
    fn measure_start(&self) -> Instant {
        self.t0 + self.warmup
    }
    fn end(&self) -> Instant {
        self.t0 + self.warmup + self.duration
    }
}

/// A data message as the client sees it.
enum Msg {
    Data(Vec<u8>),
    Text(String),
}

/// One client connection of either protocol.
enum Conn {
    Ws(Box<Ws>),
    Tls(Box<BufReader<TlsStream<TcpStream>>>),
}

impl Conn {
    async fn open(s: &Settings) -> Result<Conn, BoxError> {
        let tcp = TcpStream::connect(s.addr).await?;
        tcp.set_nodelay(true)?;
        let name = rustls_pki_types::ServerName::try_from("localhost")?;
        let tls = s.connector.connect(name, tcp).await?;
        match s.proto {
            Proto::Tls => Ok(Conn::Tls(Box::new(BufReader::with_capacity(16 << 10, tls)))),
            Proto::Ws => {
                let url = format!("wss://localhost:{}/", s.addr.port());
                let config = WebSocketConfig::default().read_buffer_size(16 << 10);
                let (ws, _) = tokio_tungstenite::client_async_with_config(url, tls, Some(config)).await?;
                Ok(Conn::Ws(Box::new(ws)))
            }
        }
    }

    /// Sends a batch of binary messages with one flush.
    async fn send(&mut self, batch: Vec<Vec<u8>>) -> Result<(), BoxError> {
        match self {
            Conn::Ws(ws) => {
                for payload in batch {
                    ws.feed(Message::binary(payload)).await?;
                }
                ws.flush().await?;
            }
            Conn::Tls(tls) => {
                let mut out = Vec::with_capacity(batch.iter().map(|p| p.len() + TLS_FRAME_HEADER).sum());
                for payload in batch {
                    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                    out.extend_from_slice(&payload);
                }
                let stream = tls.get_mut();
                stream.write_all(&out).await?;
                stream.flush().await?;
            }
        }
        Ok(())
    }

    async fn send_text(&mut self, text: &str) -> Result<(), BoxError> {
        match self {
            Conn::Ws(ws) => Ok(ws.send(Message::text(text)).await?),
            Conn::Tls(_) => Err("text messages need --proto ws".into()),
        }
    }

    /// The next data message; `None` at a clean end.
    async fn recv(&mut self) -> Result<Option<Msg>, BoxError> {
        match self {
            Conn::Ws(ws) => loop {
                match ws.next().await {
                    None => return Ok(None),
                    Some(message) => {
                        if let Some(msg) = ws_data(message?) {
                            return Ok(Some(msg));
                        }
                    }
                }
            },
            Conn::Tls(tls) => {
                let mut header = [0u8; TLS_FRAME_HEADER];
                match tls.read_exact(&mut header).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
                let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
                tls.read_exact(&mut payload).await?;
                Ok(Some(Msg::Data(payload)))
            }
        }
    }

    /// A data message that has already arrived, without waiting for the network.
    fn try_recv(&mut self) -> Option<Result<Msg, BoxError>> {
        match self {
            Conn::Ws(ws) => loop {
                match ws.next().now_or_never()? {
                    None => return None,
                    Some(Err(e)) => return Some(Err(e.into())),
                    Some(Ok(message)) => {
                        if let Some(msg) = ws_data(message) {
                            return Some(Ok(msg));
                        }
                    }
                }
            },
            Conn::Tls(tls) => {
                let buffered = tls.buffer();
                if buffered.len() < TLS_FRAME_HEADER {
                    return None;
                }
                let len = u32::from_be_bytes(buffered[..4].try_into().expect("4 bytes")) as usize;
                if buffered.len() < TLS_FRAME_HEADER + len {
                    return None;
                }
                let payload = buffered[TLS_FRAME_HEADER..TLS_FRAME_HEADER + len].to_vec();
                AsyncBufRead::consume(std::pin::Pin::new(&mut **tls), TLS_FRAME_HEADER + len);
                Some(Ok(Msg::Data(payload)))
            }
        }
    }

    /// Closes cleanly: WebSocket close handshake (or TLS close_notify), then waits for
    /// the server to end the connection, for at most 5 seconds.
    async fn close(self) -> Result<(), BoxError> {
        let closing = async move {
            match self {
                Conn::Ws(mut ws) => {
                    ws.close(None).await?;
                    while let Some(message) = ws.next().await {
                        message?;
                    }
                }
                Conn::Tls(mut tls) => {
                    tls.get_mut().shutdown().await?;
                    let mut sink = [0u8; 1024];
                    while tls.read(&mut sink).await? > 0 {}
                }
            }
            Ok::<(), BoxError>(())
        };
        tokio::time::timeout(Duration::from_secs(5), closing).await.map_err(|_| "close timed out")?
    }
}

fn ws_data(message: Message) -> Option<Msg> {
    match message {
        Message::Binary(data) => Some(Msg::Data(data.to_vec())),
        Message::Text(text) => Some(Msg::Text(text.as_str().to_owned())),
        _ => None,
    }
}

/// A payload of `size` bytes whose first 8 carry the nanoseconds since `t0`.
fn stamped(size: usize, t0: Instant) -> Vec<u8> {
    let mut payload = vec![0x5a; size.max(8)];
    payload[..8].copy_from_slice(&(t0.elapsed().as_nanos() as u64).to_le_bytes());
    payload
}

fn stamp_of(payload: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(payload.get(..8)?.try_into().ok()?))
}

/// What one connection's task measured.
#[derive(Default)]
struct Tally {
    count: u64,
    bytes: u64,
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    /// Counts one message (or handshake) of `bytes` payload bytes that took `latency_ns`.
    fn record(&mut self, bytes: usize, latency_ns: u64) {
        self.count += 1;
        self.bytes += bytes as u64;
        self.latencies.push(latency_ns);
    }
    fn error(&mut self, e: BoxError) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
    }
    fn merge(&mut self, other: Tally) {
        self.count += other.count;
        self.bytes += other.bytes;
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

async fn echo(s: Arc<Settings>) -> Tally {
    let mut tally = Tally::default();
    let result = async {
        let mut conn = Conn::open(&s).await?;
        while Instant::now() < s.end() {
            let sent = Instant::now();
            conn.send(vec![stamped(s.size, s.t0)]).await?;
            let Some(Msg::Data(reply)) = conn.recv().await? else { return Err("connection ended".into()) };
            let done = Instant::now();
            if sent >= s.measure_start() && done <= s.end() {
                tally.record(reply.len(), (done - sent).as_nanos() as u64);
            }
        }
        conn.close().await
    };
    if let Err(e) = result.await {
        tally.error(e);
    }
    tally
}

async fn pipeline(s: Arc<Settings>) -> Tally {
    let mut tally = Tally::default();
    let result = async {
        let mut conn = Conn::open(&s).await?;
        conn.send((0..s.inflight).map(|_| stamped(s.size, s.t0)).collect()).await?;
        loop {
            let first = conn.recv().await?.ok_or("connection ended")?;
            let now = Instant::now();
            let mut replies = vec![first];
            while let Some(more) = conn.try_recv() {
                replies.push(more?);
            }
            let n = replies.len();
            if now >= s.measure_start() && now <= s.end() {
                for reply in replies {
                    let Msg::Data(reply) = reply else { continue };
                    let sent = stamp_of(&reply).ok_or("short reply")?;
                    tally.record(reply.len(), (now - s.t0).as_nanos() as u64 - sent);
                }
            }
            if now >= s.end() {
                break;
            }
            conn.send((0..n).map(|_| stamped(s.size, s.t0)).collect()).await?;
        }
        // Replies still in flight are not read; the close handshake skips over them.
        conn.close().await
    };
    if let Err(e) = result.await {
        tally.error(e);
    }
    tally
}

async fn handshake(s: Arc<Settings>) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < s.end() {
        let started = Instant::now();
        let result = async {
            let conn = Conn::open(&s).await?;
            conn.close().await
        };
        match result.await {
            Ok(()) => {
                let done = Instant::now();
                if started >= s.measure_start() && done <= s.end() {
                    tally.record(0, (done - started).as_nanos() as u64);
                }
            }
            Err(e) => {
                tally.error(e);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

/// Who has connected in push mode: after the barrier, the first client that connected
/// tells the server how many are waiting, so one failed connection cannot stall the run.
#[derive(Default)]
struct PushStart {
    connected: AtomicUsize,
    started: std::sync::atomic::AtomicBool,
    /// The server's CPU clock ticks when the first client asked for the pushes (with
    /// `--pid`): what the pushes cost it is counted from there, handshakes left out.
    server_ticks: std::sync::Mutex<Option<u64>>,
}

async fn push_client(s: Arc<Settings>, gate: Arc<Semaphore>, barrier: Arc<Barrier>, start: Arc<PushStart>) -> Tally {
    let mut tally = Tally::default();
    let permit = gate.acquire().await;
    let conn = Conn::open(&s).await;
    drop(permit);
    if conn.is_ok() {
        start.connected.fetch_add(1, Ordering::SeqCst);
    }
    barrier.wait().await;
    let result = async {
        let mut conn = conn?;
        if !start.started.swap(true, Ordering::SeqCst) {
            let ticks = s.pid.and_then(|pid| cpu_ticks(&pid.to_string()));
            *start.server_ticks.lock().unwrap() = ticks;
            let connected = start.connected.load(Ordering::SeqCst);
            conn.send_text(&format!("start {connected}")).await?;
        }
        loop {
            match conn.recv().await? {
                Some(Msg::Data(payload)) => {
                    let received = mono_nanos();
                    let sent = stamp_of(&payload).ok_or("short push message")?;
                    tally.record(payload.len(), received.saturating_sub(sent));
                }
                Some(Msg::Text(text)) if text == "done" => break,
                Some(Msg::Text(_)) => {}
                None => return Err("connection ended before done".into()),
            }
        }
        conn.close().await
    };
    if let Err(e) = result.await {
        tally.error(e);
    }
    tally
}

/// Opens one connection and holds it, reading (so pings get their pongs), until `stop`.
async fn idle_client(
    s: Arc<Settings>,
    gate: Arc<Semaphore>,
    opened: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) -> Tally {
    let mut tally = Tally::default();
    let permit = gate.acquire().await;
    let conn = Conn::open(&s).await;
    drop(permit);
    let mut conn = match conn {
        Ok(conn) => conn,
        Err(e) => {
            opened.fetch_add(1, Ordering::SeqCst);
            tally.error(e);
            return tally;
        }
    };
    opened.fetch_add(1, Ordering::SeqCst);
    tally.count = 1;
    tokio::select! {
        _ = stop.wait_for(|stop| *stop) => {}
        result = conn.recv() => {
            if let Err(e) = result.and_then(|m| m.ok_or_else(|| "server ended the connection".into())) {
                tally.error(e);
            }
        }
    }
    // Dropped without a close handshake: thousands of closes would only slow the exit.
    tally
}

/// Kernel memory from `/proc/meminfo` (KiB): thread kernel stacks, unreclaimable slab
/// (sockets, among others) and page tables.
fn kernel_memory() -> Vec<(&'static str, u64)> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    ["KernelStack", "SUnreclaim", "PageTables"]
        .into_iter()
        .filter_map(|name| {
            let line = meminfo.lines().find(|l| l.split(':').next() == Some(name))?;
            Some((name, line.split_whitespace().nth(1)?.parse().ok()?))
        })
        .collect()
}

/// The server process's counters at one moment.
struct ServerSample {
    at: Instant,
    ticks: u64,
    run_ns: u64,
    slices: u64,
    threads: usize,
}

fn sample(pid: u32) -> ServerSample {
    let (run_ns, slices, threads) = sched_totals(pid);
    ServerSample { at: Instant::now(), ticks: cpu_ticks(&pid.to_string()).unwrap_or(0), run_ns, slices, threads }
}

fn cpu_pct(ticks: u64, over: Duration) -> f64 {
    let secs = ticks as f64 / ticks_per_second() as f64;
    (secs / over.as_secs_f64() * 1000.0).round() / 10.0
}

async fn run_idle(s: Arc<Settings>, out: &mut Map<String, Value>) -> Tally {
    // One connection first, so one-time set-up (allocator arenas, lazily built tables) is
    // not counted per connection.
    let warm = async { Conn::open(&s).await?.close().await };
    if let Err(e) = warm.await {
        let mut tally = Tally::default();
        tally.error(e);
        return tally;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = s.pid.and_then(rss_kib);
    let kernel_before = kernel_memory();
    let gate = Arc::new(Semaphore::new(s.connect_concurrency.max(1)));
    let opened = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let tasks: Vec<_> = (0..s.conns)
        .map(|_| tokio::spawn(idle_client(Arc::clone(&s), Arc::clone(&gate), Arc::clone(&opened), stop_rx.clone())))
        .collect();
    while opened.load(Ordering::SeqCst) < s.conns {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_time = started.elapsed();
    tokio::time::sleep(s.settle).await;
    // System-wide, so both ends' sockets count; the load generator has one thread, so
    // KernelStack grows by the server's threads only.
    let mut kernel_total = 0.0;
    for ((name, before), (_, after)) in kernel_before.iter().zip(kernel_memory()) {
        let per_conn = (after as f64 - *before as f64) / s.conns as f64;
        if *name != "PageTables" {
            kernel_total += per_conn;
        }
        out.insert(format!("sys_{name}_kib_per_conn"), ((per_conn * 10.0).round() / 10.0).into());
    }
    out.insert("sys_kernel_kib_per_conn".into(), ((kernel_total * 10.0).round() / 10.0).into());
    if let Some(pid) = s.pid {
        let after = rss_kib(pid);
        let first = sample(pid);
        tokio::time::sleep(s.hold).await;
        let last = sample(pid);
        let after_hold = rss_kib(pid);
        if let (Some(before), Some(after)) = (before, after) {
            out.insert("rss_before_kib".into(), before.into());
            out.insert("rss_after_kib".into(), after.into());
            out.insert("rss_after_hold_kib".into(), after_hold.unwrap_or(0).into());
            let per_conn = (after as f64 - before as f64) / s.conns as f64;
            out.insert("kib_per_conn".into(), ((per_conn * 10.0).round() / 10.0).into());
        }
        let held = last.at - first.at;
        out.insert("hold_s".into(), ((held.as_secs_f64() * 100.0).round() / 100.0).into());
        let ticks = last.ticks.saturating_sub(first.ticks);
        out.insert("server_cpu_ticks".into(), ticks.into());
        out.insert("server_cpu_ms".into(), (ticks * 1000 / ticks_per_second()).into());
        let run_us = last.run_ns.saturating_sub(first.run_ns) / 1000;
        out.insert("server_sched_run_us".into(), run_us.into());
        out.insert("server_wakeups".into(), last.slices.saturating_sub(first.slices).into());
        out.insert("server_threads".into(), last.threads.into());
        for field in ["VmHWM:", "VmData:", "RssAnon:", "VmPTE:"] {
            if let Some(v) = status_field(pid, field) {
                out.insert(format!("server_{}_kib", field.trim_end_matches(':')), v.into());
            }
        }
    } else {
        tokio::time::sleep(s.hold).await;
    }
    out.insert("connect_s".into(), ((connect_time.as_secs_f64() * 100.0).round() / 100.0).into());
    let _ = stop_tx.send(true);
    let mut tally = Tally::default();
    for task in tasks {
        if let Ok(t) = task.await {
            tally.merge(t);
        }
    }
    tally
}

fn main() {
    let flags = Flags::parse(
        USAGE,
        &[
            "addr",
            "ca",
            "proto",
            "mode",
            "conns",
            "size",
            "inflight",
            "duration",
            "warmup",
            "threads",
            "label",
            "pid",
            "hold",
            "settle",
            "connect-concurrency",
            "timeout",
            "test",
            "round",
        ],
    );
    let proto = match flags.get("proto", "ws".to_string()).as_str() {
        "ws" => Proto::Ws,
        "tls" => Proto::Tls,
        other => exit_usage(&format!("--proto {other:?}: use ws or tls")),
    };
    let mode = match flags.required::<String>("mode").as_str() {
        "echo" => Mode::Echo,
        "pipeline" => Mode::Pipeline,
        "push" => Mode::Push,
        "handshake" => Mode::Handshake,
        "idle" => Mode::Idle,
        other => exit_usage(&format!("--mode {other:?}")),
    };
    let secs = |name, default: f64| Duration::from_secs_f64(flags.get(name, default));
    let settings = Arc::new(Settings {
        addr: flags.get("addr", "127.0.0.1:9001".parse().expect("address")),
        proto,
        mode,
        conns: flags.get("conns", 1usize).max(1),
        size: flags.get("size", 64usize),
        inflight: flags.get("inflight", 32usize).max(1),
        warmup: secs("warmup", 1.0),
        duration: secs("duration", 5.0),
        hold: secs("hold", 10.0),
        settle: secs("settle", 2.0),
        connect_concurrency: flags.get("connect-concurrency", 32),
        pid: flags.has("pid").then(|| flags.required("pid")),
        connector: TlsConnector::from(client_tls(&flags.required::<PathBuf>("ca"))),
        t0: Instant::now(),
    });
    let threads: usize = flags.get("threads", 1);
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
    .expect("tokio runtime");
    let timeout = secs("timeout", 300.0);

    let mut out = Map::new();
    out.insert("server".into(), flags.get("label", String::new()).into());
    if flags.has("test") {
        out.insert("test".into(), flags.get("test", String::new()).into());
    }
    if flags.has("round") {
        out.insert("round".into(), flags.get("round", 0u32).into());
    }
    out.insert("mode".into(), format!("{mode:?}").to_lowercase().into());
    out.insert("proto".into(), format!("{proto:?}").to_lowercase().into());
    out.insert("conns".into(), settings.conns.into());
    out.insert("size".into(), settings.size.into());
    if mode == Mode::Pipeline {
        out.insert("inflight".into(), settings.inflight.into());
    }
    let client_ticks = cpu_ticks("self").unwrap_or(0);
    let run = runtime.block_on(async {
        let s = Arc::clone(&settings);
        let work = async {
            let mut out = Map::new();
            // Server and client CPU over the measured window (not for push/idle).
            let window = tokio::spawn({
                let s = Arc::clone(&s);
                async move {
                    tokio::time::sleep_until(s.measure_start().into()).await;
                    let server0 = s.pid.map(sample);
                    let client0 = cpu_ticks("self").unwrap_or(0);
                    tokio::time::sleep_until(s.end().into()).await;
                    let server = server0.zip(s.pid.map(sample));
                    let client = cpu_ticks("self").unwrap_or(0) - client0;
                    (server.map(|(a, b)| b.ticks.saturating_sub(a.ticks)), client)
                }
            });
            let tally = match s.mode {
                Mode::Idle => run_idle(Arc::clone(&s), &mut out).await,
                Mode::Push => {
                    let barrier = Arc::new(Barrier::new(s.conns));
                    let gate = Arc::new(Semaphore::new(s.connect_concurrency.max(1)));
                    let start = Arc::new(PushStart::default());
                    let tasks: Vec<_> = (0..s.conns)
                        .map(|_| {
                            tokio::spawn(push_client(
                                Arc::clone(&s),
                                Arc::clone(&gate),
                                Arc::clone(&barrier),
                                Arc::clone(&start),
                            ))
                        })
                        .collect();
                    let tally = collect(tasks).await;
                    let ticks_at_start = *start.server_ticks.lock().unwrap();
                    let ticks_now = s.pid.and_then(|pid| cpu_ticks(&pid.to_string()));
                    if let Some((before, after)) = ticks_at_start.zip(ticks_now) {
                        let us = after.saturating_sub(before) as f64 * 1e6 / ticks_per_second() as f64;
                        out.insert("server_cpu_push_ms".into(), (us / 1000.0).round().into());
                        let per_delivery = us / tally.count.max(1) as f64;
                        out.insert("server_cpu_us_per_delivery".into(), ((per_delivery * 10.0).round() / 10.0).into());
                    }
                    tally
                }
                mode => {
                    let tasks: Vec<_> = (0..s.conns)
                        .map(|_| {
                            let s = Arc::clone(&s);
                            match mode {
                                Mode::Echo => tokio::spawn(echo(s)),
                                Mode::Pipeline => tokio::spawn(pipeline(s)),
                                _ => tokio::spawn(handshake(s)),
                            }
                        })
                        .collect();
                    let tally = collect(tasks).await;
                    if let Ok((server, client)) = window.await {
                        if let Some(server) = server {
                            out.insert("server_cpu_pct".into(), cpu_pct(server, s.duration).into());
                        }
                        out.insert("client_cpu_pct".into(), cpu_pct(client, s.duration).into());
                    }
                    tally
                }
            };
            (tally, out)
        };
        tokio::time::timeout(timeout, work).await
    });
    let (mut tally, extra) = match run {
        Ok(result) => result,
        Err(_) => {
            out.insert("error".into(), format!("timed out after {timeout:?}").into());
            println!("{}", Value::Object(out));
            std::process::exit(1);
        }
    };
    match mode {
        Mode::Echo | Mode::Pipeline => {
            let secs = settings.duration.as_secs_f64();
            let rate = tally.count as f64 / secs;
            out.insert("msgs_per_s".into(), rate.round().into());
            out.insert("mb_per_s".into(), ((tally.bytes as f64 / secs / 1e6 * 100.0).round() / 100.0).into());
        }
        Mode::Handshake => {
            out.insert(
                "handshakes_per_s".into(),
                (tally.count as f64 / settings.duration.as_secs_f64()).round().into(),
            );
        }
        Mode::Push => {
            out.insert("received".into(), tally.count.into());
        }
        Mode::Idle => {
            out.insert("opened".into(), (tally.count).into());
        }
    }
    if mode != Mode::Idle {
        Latency::from_nanos(&mut tally.latencies).add_to(&mut out);
    }
    out.extend(extra);
    let client_ticks = cpu_ticks("self").unwrap_or(0) - client_ticks;
    let client_secs = client_ticks as f64 / ticks_per_second() as f64;
    out.insert("client_cpu_total_s".into(), ((client_secs * 100.0).round() / 100.0).into());
    out.insert("errors".into(), tally.errors.into());
    if let Some(e) = tally.first_error {
        out.insert("first_error".into(), e.into());
    }
    println!("{}", Value::Object(out));
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
    let mut tally = Tally::default();
    for task in tasks {
        match task.await {
            Ok(t) => tally.merge(t),
            Err(e) => tally.error(e.to_string().into()),
        }
    }
    tally
}

fn exit_usage(problem: &str) -> ! {
    eprintln!("{problem}\n{USAGE}");
    std::process::exit(2);
}
