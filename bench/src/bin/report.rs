//! Writes BENCHMARKS.md from the load generator's JSON lines (`bench/run.sh` calls it).
//!
//! Usage: report --results FILE.jsonl --meta FILE --notes FILE.md --out BENCHMARKS.md
//!
//! `--meta` holds `key=value` lines (machine, build figures); `--notes` is appended as is.
//! Every figure in the tables is the median over the rounds of the same test.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::Value;
use tinywss_bench::Flags;

const USAGE: &str = "usage: report --results FILE.jsonl --meta FILE --notes FILE.md --out FILE.md";

/// The servers of the main table, in column order: label in the results, column name,
/// name in a ratio column. tinywss's two modes come first.
const SERVERS: [(&str, &str, &str); 5] = [
    ("tinywss", "tinywss events", "events"),
    ("tinywss-handler", "tinywss handler", "handler"),
    ("tokio-tungstenite", "tokio-tungstenite", "tokio-tungstenite"),
    ("sync-tungstenite", "sync tungstenite", "sync tungstenite"),
    ("rustls-floor", "rustls floor", "floor"),
];

/// The ratio columns of the main table: (ours, peer) as indexes into `SERVERS`; each mode
/// against the async peer and the hand-written sync one (the targets).
const RATIOS: [(usize, usize); 4] = [(0, 2), (1, 2), (0, 3), (1, 3)];

struct Results {
    rows: Vec<Value>,
}

impl Results {
    fn of(&self, test: &str, server: &str) -> Vec<&Value> {
        self.rows.iter().filter(|r| r["test"] == test && r["server"] == server).collect()
    }

    /// The rounds that count for the medians: a throughput or idle run with any error
    /// measured something else (a refused connection, a lost client) and is left out; a
    /// push run keeps the latencies of what it received (lost connections are counted apart).
    fn counted(&self, test: &str, server: &str) -> Vec<&Value> {
        let clean = |r: &&Value| test.starts_with("push") || r["errors"].as_u64() == Some(0);
        self.of(test, server).into_iter().filter(clean).collect()
    }

    /// The median of one field over the counted rounds of a test.
    fn median(&self, test: &str, server: &str, field: &str) -> Option<f64> {
        let mut values: Vec<f64> = self.counted(test, server).iter().filter_map(|r| r[field].as_f64()).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        Some(if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 })
    }

    fn max(&self, test: &str, server: &str, field: &str) -> Option<f64> {
        self.of(test, server).iter().filter_map(|r| r[field].as_f64()).reduce(f64::max)
    }

    fn rounds(&self, test: &str, server: &str) -> usize {
        self.of(test, server).len()
    }
}

/// A number for a table: thousands separated, one decimal below 100.
fn num(v: Option<f64>) -> String {
    let Some(v) = v else { return "–".into() };
    if v.abs() < 100.0 && v.fract() != 0.0 {
        return format!("{v:.1}");
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

fn pair(a: Option<f64>, b: Option<f64>) -> String {
    format!("{} / {}", num(a), num(b))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

/// Adds the server's CPU time per message and per handshake: unlike the rates, these do
/// not depend on whether the load generator or the server was the bottleneck.
fn with_cost(mut row: Value) -> Value {
    let cpu = row["server_cpu_pct"].as_f64();
    for (rate, cost) in [("msgs_per_s", "server_cpu_us_per_msg"), ("handshakes_per_s", "server_cpu_us_per_handshake")] {
        if let (Some(cpu), Some(rate)) = (cpu, row[rate].as_f64()) {
            if rate > 0.0 {
                let us = cpu / 100.0 * 1e6 / rate;
                row[cost] = ((us * 100.0).round() / 100.0).into();
            }
        }
    }
    row
}

fn main() {
    let flags = Flags::parse(USAGE, &["results", "meta", "notes", "out"]);
    let text = std::fs::read_to_string(flags.required::<PathBuf>("results")).expect("results file");
    let rows = text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok());
    let results = Results { rows: rows.map(with_cost).collect() };
    let meta_text = std::fs::read_to_string(flags.required::<PathBuf>("meta")).expect("meta file");
    let meta: BTreeMap<&str, &str> = meta_text.lines().filter_map(|l| l.split_once('=')).collect();
    let m = |k: &str| meta.get(k).copied().unwrap_or("?");
    let notes = std::fs::read_to_string(flags.required::<PathBuf>("notes")).unwrap_or_default();

    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "Written by `bench/run.sh` on {}. Re-run it to refresh this file; the analysis at the end \
         comes from `bench/NOTES.md`.\n",
        m("date")
    );
    let _ = writeln!(w, "## Machine\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    let _ = writeln!(w, "| CPU | {} (`nproc` = {}) |", m("cpu"), m("nproc"));
    let _ = writeln!(w, "| kernel | {} |", m("kernel"));
    let _ = writeln!(w, "| memory | {} |", m("memory"));
    let _ = writeln!(w, "| toolchain | {} |", m("rustc"));
    let _ = writeln!(w, "| load average before / after | {} / {} |", m("load_before"), m("load_after"));
    let _ = writeln!(w, "| run time of `bench/run.sh` | {} s |", m("run_seconds"));
    let _ = writeln!(
        w,
        "\nThe machine is shared with other builds and tests, so CPU time is noisy: every figure is \
         the **median of {} interleaved rounds** (each round runs the servers in a rotated order, \
         a fresh server process per measurement), and the ratios matter more than the absolute \
         numbers. Throughput and idle runs that reported any error are left out of the medians; \
         the per-round figures, errors included, are at the end.\n",
        m("rounds")
    );

    let _ = writeln!(w, "## Method\n");
    let _ = writeln!(w, "{}", METHOD.replace("{duration}", m("duration")));

    let _ = writeln!(w, "## tinywss against the peers\n");
    let columns: Vec<&str> = SERVERS.iter().map(|(_, column, _)| *column).collect();
    let ratios: Vec<String> =
        RATIOS.iter().map(|&(ours, peer)| format!("{} ÷ {}", SERVERS[ours].2, SERVERS[peer].2)).collect();
    let _ = writeln!(w, "| figure | {} | {} |", columns.join(" | "), ratios.join(" | "));
    let _ = writeln!(w, "|---|{}", "---:|".repeat(columns.len() + ratios.len()));
    let row = |w: &mut String, label: &str, test: &str, field: &str| {
        let v: Vec<Option<f64>> = SERVERS.iter().map(|(s, _, _)| results.median(test, s, field)).collect();
        let values: Vec<String> = v.iter().map(|x| num(*x)).collect();
        let ratios: Vec<String> = RATIOS.iter().map(|&(ours, peer)| ratio(v[ours], v[peer])).collect();
        let _ = writeln!(w, "| {label} | {} | {} |", values.join(" | "), ratios.join(" | "));
    };
    let latency_row = |w: &mut String, label: &str, test: &str| {
        let v: Vec<String> = SERVERS
            .iter()
            .map(|(s, _, _)| pair(results.median(test, s, "p50_us"), results.median(test, s, "p99_us")))
            .collect();
        let _ = writeln!(w, "| {label} | {} |{}", v.join(" | "), " |".repeat(RATIOS.len()));
    };
    row(w, "1 connection, 64 B ping-pong: msgs/s", "pingpong", "msgs_per_s");
    latency_row(w, "… round trip p50 / p99 (µs)", "pingpong");
    row(w, "… server CPU µs per message", "pingpong", "server_cpu_us_per_msg");
    row(w, "50 connections × 32 in flight, 64 B: msgs/s", "pipeline", "msgs_per_s");
    latency_row(w, "… round trip p50 / p99 (µs)", "pipeline");
    row(w, "… server CPU (% of its one core)", "pipeline", "server_cpu_pct");
    row(w, "… server CPU µs per message", "pipeline", "server_cpu_us_per_msg");
    row(w, "… load generator CPU (% of its one core)", "pipeline", "client_cpu_pct");
    row(w, "1 connection × 32 in flight, 64 B: msgs/s", "pipeline1", "msgs_per_s");
    latency_row(w, "… round trip p50 / p99 (µs)", "pipeline1");
    row(w, "… server CPU (% of its one core)", "pipeline1", "server_cpu_pct");
    row(w, "… server CPU µs per message", "pipeline1", "server_cpu_us_per_msg");
    row(w, "… load generator CPU (% of its one core)", "pipeline1", "client_cpu_pct");
    row(w, "handshakes/s (TCP + TLS 1.3 + Upgrade + close, 8 clients)", "handshake", "handshakes_per_s");
    row(w, "… server CPU µs per handshake", "handshake", "server_cpu_us_per_handshake");
    row(w, "… load generator CPU (% of its one core)", "handshake", "client_cpu_pct");
    let idle = m("idle_conns");
    row(w, &format!("KiB RSS per idle connection ({idle} open)"), "idle", "kib_per_conn");
    row(
        w,
        "… kernel KiB per idle connection (KernelStack + SUnreclaim growth, whole machine, both ends)",
        "idle",
        "sys_kernel_kib_per_conn",
    );
    row(w, &format!("server CPU time over 10 s with {idle} idle connections (ms)"), "idle", "server_cpu_ms");
    let _ = writeln!(
        w,
        "\nRatios: msgs/s and handshakes/s above 1 mean tinywss (in that mode) is faster; KiB and \
         CPU µs above 1 mean it uses more. Where the load generator sits near 100 % of its core, it (not the \
         server) limits the rate, and the server CPU µs per message or handshake is the fairer \
         comparison. \"rustls floor\" speaks no WebSocket (handshake = TCP + TLS + close).\n"
    );

    other_peers(w, &results, m("idle_conns"), [m("node_version"), m("python_version")]);

    let _ = writeln!(w, "## tinywss on its own\n");
    let _ = writeln!(w, "### Idle connections\n");
    let _ = writeln!(w, "| open connections | KiB RSS per connection | server RSS before → after | server CPU over the hold | wake-ups over the hold | threads |");
    let _ = writeln!(w, "|---:|---:|---:|---:|---:|---:|");
    for (test, label) in [("idle", m("idle_conns")), ("idle-10k", m("idle_10k_conns"))] {
        if results.rounds(test, "tinywss") == 0 {
            continue;
        }
        let med = |f: &str| results.median(test, "tinywss", f);
        let _ = writeln!(
            w,
            "| {label} | {} | {} → {} KiB | {} ms utime+stime ({} µs scheduled) in {} s | {} | {} |",
            num(med("kib_per_conn")),
            num(med("rss_before_kib")),
            num(med("rss_after_kib")),
            num(med("server_cpu_ms")),
            num(med("server_sched_run_us")),
            num(med("hold_s")),
            num(med("server_wakeups")),
            num(med("server_threads")),
        );
    }
    let note =
        if m("idle_10k_note") == "?" { "not measured (IDLE_10K=0)".to_owned() } else { m("idle_10k_note").to_string() };
    let _ = writeln!(w, "\n10,000 connections: {note}.\n");

    let failed =
        |test: &str, server: &str| results.of(test, server).iter().filter(|r| r["errors"].as_u64() != Some(0)).count();
    let _ = writeln!(w, "### Push latency: from `Handle::send` / `Handle::broadcast` to the client\n");
    let _ = writeln!(w, "| scenario | tinywss p50 / p99 / p99.9 (µs) | tinywss max (µs) | tinywss server CPU per delivery (µs) | tinywss, write-through off: p50 / p99 / p99.9 (µs) | … server CPU per delivery (µs) | tokio-tungstenite p50 / p99 / p99.9 (µs) | tokio-tungstenite max (µs) | tokio-tungstenite server CPU per delivery (µs) | rounds with a lost connection (tinywss / write-through off / peer) |");
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (test, label) in [
        ("push-send-1", "1 client, 10,000 sends at 2,000/s"),
        ("push-send-100", "100 clients, 10,000 sends round-robin at 2,000/s"),
        ("push-broadcast-100", "100 clients, 1,000 broadcasts at 100/s"),
        ("push-broadcast-1000", "1,000 clients, 500 broadcasts at 50/s (fan-out: 500,000 deliveries)"),
    ] {
        let three = |s: &str| {
            format!(
                "{} / {} / {}",
                num(results.median(test, s, "p50_us")),
                num(results.median(test, s, "p99_us")),
                num(results.median(test, s, "p999_us"))
            )
        };
        let cpu = |s: &str| num(results.median(test, s, "server_cpu_us_per_delivery"));
        let _ = writeln!(
            w,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} of {} |",
            three("tinywss"),
            num(results.max(test, "tinywss", "max_us")),
            cpu("tinywss"),
            three("tinywss-queued"),
            cpu("tinywss-queued"),
            three("tokio-tungstenite"),
            num(results.max(test, "tokio-tungstenite", "max_us")),
            cpu("tokio-tungstenite"),
            failed(test, "tinywss"),
            failed(test, "tinywss-queued"),
            failed(test, "tokio-tungstenite"),
            results.rounds(test, "tinywss"),
        );
    }
    let _ = writeln!(
        w,
        "\nThe tokio-tungstenite peer pushes the same way: a plain thread puts the stamped message \
         into each connection task's bounded channel (`try_send`). With write-through off \
         (`ConfigBuilder::write_through(false)`), every message goes through the connection's \
         queue and wakes its thread, as before write-through existed. Server CPU per delivery: \
         the server process's CPU time from the first client's `start` to the last `done`, over \
         the messages received. p50/p99/p99.9 are medians over \
         the rounds; max is the largest of any round. A lost connection is one that ended before \
         the last message (the server's reason is in `target/bench/servers.log`).\n"
    );

    let _ = writeln!(w, "### Size and build\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    let _ = writeln!(
        w,
        "| `examples/echo`, `--profile release-small`, stripped | {} bytes ({} KiB) |",
        m("echo_size"),
        m("echo_size_kib")
    );
    let _ = writeln!(
        w,
        "| the same, linked with packed relative relocations (`cargo rustc --profile release-small \
         --example echo -- -C link-arg=-Wl,-z,pack-relative-relocs`; needs glibc 2.36 or later to run) \
         | {} bytes ({} KiB) |",
        m("echo_size_relr"),
        m("echo_size_relr_kib")
    );
    let _ = writeln!(
        w,
        "| clean build of the library, `cargo build --release --lib` in an empty target dir | {} s (2 cores, shared) |",
        m("build_release_s")
    );
    let _ = writeln!(
        w,
        "| crates in the library's normal dependency tree | {} ({}); {} without procedural macros \
             and their dependencies (`-e normal,no-proc-macro`): what is compiled into a program |",
        m("dep_count"),
        m("dep_method"),
        m("dep_linked")
    );

    let _ = writeln!(w, "\n## Per-round figures\n");
    let _ = writeln!(w, "| test | server | round | msgs/s | hs/s | p50 µs | p99 µs | max µs | KiB/conn | server CPU % | client CPU % | errors |");
    let _ = writeln!(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &results.rows {
        let f = |k: &str| num(r[k].as_f64());
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r["test"].as_str().unwrap_or("?"),
            r["server"].as_str().unwrap_or("?"),
            r["round"],
            f("msgs_per_s"),
            f("handshakes_per_s"),
            f("p50_us"),
            f("p99_us"),
            f("max_us"),
            f("kib_per_conn"),
            f("server_cpu_pct"),
            f("client_cpu_pct"),
            r["errors"],
        );
    }
    if !notes.is_empty() {
        let _ = writeln!(w, "\n{notes}");
    }
    std::fs::write(flags.required::<PathBuf>("out"), md).expect("write the report");
}

/// The optional peers (Node `ws`, Python `websockets`): the same echo tests, if measured.
fn other_peers(w: &mut String, results: &Results, idle: &str, versions: [&str; 2]) {
    let measured: Vec<((&str, &str), &str)> = [("node-ws", "Node ws"), ("python-websockets", "Python websockets")]
        .into_iter()
        .zip(versions)
        .filter(|((server, _), _)| results.rounds("pingpong", server) > 0)
        .collect();
    if measured.is_empty() {
        return;
    }
    let _ = writeln!(w, "### Other peers: Node and Python\n");
    let (peers, versions): (Vec<(&str, &str)>, Vec<&str>) = measured.into_iter().unzip();
    let _ = writeln!(
        w,
        "Measured the same way, interleaved with the servers above (`bench/peers/`: {}).\n",
        versions.join("; ")
    );
    let names: Vec<&str> = peers.iter().map(|(_, name)| *name).collect();
    let ratios: Vec<String> = names.iter().map(|name| format!("tinywss ÷ {name}")).collect();
    let _ = writeln!(w, "| figure | tinywss | {} | {} |", names.join(" | "), ratios.join(" | "));
    let _ = writeln!(w, "|---|---:|{}", "---:|".repeat(2 * peers.len()));
    for (label, test, field) in [
        ("1 connection, 64 B ping-pong: msgs/s", "pingpong", "msgs_per_s"),
        ("50 connections × 32 in flight, 64 B: msgs/s", "pipeline", "msgs_per_s"),
        ("1 connection × 32 in flight, 64 B: msgs/s", "pipeline1", "msgs_per_s"),
        ("handshakes/s", "handshake", "handshakes_per_s"),
        ("… server CPU µs per handshake", "handshake", "server_cpu_us_per_handshake"),
        (&format!("KiB RSS per idle connection ({idle} open)"), "idle", "kib_per_conn"),
    ] {
        let ours = results.median(test, "tinywss", field);
        let theirs: Vec<Option<f64>> = peers.iter().map(|(server, _)| results.median(test, server, field)).collect();
        let values: Vec<String> = theirs.iter().map(|v| num(*v)).collect();
        let ratios: Vec<String> = theirs.iter().map(|v| ratio(ours, *v)).collect();
        let _ = writeln!(w, "| {label} | {} | {} | {} |", num(ours), values.join(" | "), ratios.join(" | "));
    }
    let _ = writeln!(w);
}

const METHOD: &str = "\
- **Servers.** `tinywss`: `bench/src/bin/tinywss_server.rs`, the library with its defaults \
(except the connection limits, raised for one load generator with 10,000 connections), echoing from the application thread with `Handle::send`. \
`tokio-tungstenite`: `tokio_ws_server.rs`, tokio-tungstenite 0.30 + tokio-rustls, one task per \
client, tungstenite's default config, all ready messages echoed before one flush. `sync \
tungstenite`: `sync_ws_server.rs`, the echo loop of tungstenite's README over rustls' blocking \
`StreamOwned`: a blocking `TcpListener`, one thread per client, tungstenite 0.30's default config, \
`send` (write + flush) for every message, so one TLS record and one `write` per echo; what tinywss \
is built from, used directly. `rustls floor`: `tls_echo_server.rs`, tokio-rustls echoing \
4-byte-length-prefixed frames, no WebSocket: the TLS cost floor. All use rustls 0.23 with the ring provider, TLS 1.3, default session tickets, and \
the same ECDSA P-256 certificate (made by `certgen` with the library's `DevelopmentCertificate`). The tokio servers run as many worker threads as CPUs \
they are allowed (1 when pinned). Optional peers, when Node.js and Python are installed: \
`node-ws` (`bench/peers/node_echo.js`: Node's `https` + the `ws` package from npm) and \
`python-websockets` (`bench/peers/python_echo.py`: the `websockets` asyncio server from PyPI with \
Python's `ssl`); both use OpenSSL for TLS, no compression, and the same certificate.
- **Load generator.** `loadgen.rs`: tokio on one thread, rustls client (ring) with session \
resumption off (every handshake is a full one), tokio-tungstenite client. Each measurement: 1 s \
warm-up, then {duration} s counted. Ping-pong: send 64 B, wait for the echo. Pipeline: 32 \
messages in flight per connection, each batch of replies answered by as many new messages in \
one flush; run with 50 connections and with 1 (one busy client, no contention between \
connections). Handshake: 8 clients loop connect + TLS + Upgrade + close handshake. msgs/s counts \
echoes received; latency is per message, send to echo.
- **Pinning** (the same for every server): ping-pong with server and load generator both on \
CPU 0 (`taskset -c 0`); both pipelines and handshakes with the server on CPU 0 and the load \
generator on CPU 1; idle and push not pinned.
- **Idle memory and CPU.** The load generator opens and closes one connection (so one-time \
set-up is not counted), reads the server's `VmRSS` (`/proc/PID/status`), opens 1,000 \
connections (32 handshakes at a time), waits 1 s (2 s for the large run), reads `VmRSS` again: KiB per connection = \
difference ÷ 1,000. Kernel memory is not in `VmRSS`: the growth of `KernelStack` and `SUnreclaim` in \
`/proc/meminfo` over the same interval is shown too (whole machine, so the client's sockets \
count as well; the load generator has one thread, so `KernelStack` grows by server threads only). \
Then it holds them 10 s and reads the server's `utime + stime` \
(`/proc/PID/stat`) and, finer, the run time and number of times scheduled summed over all \
threads (`/proc/PID/task/*/schedstat`) before and after. The keepalive ping (30 s) does not \
fall in the window.
- **Push latency.** `tinywss_server --push-rate`: once the load generator's clients are all \
connected, one of them sends `start N`; when N connections are open, an application thread sends messages on a fixed schedule with `Handle::send` (round-robin over the \
connections) or `Handle::broadcast`. Each payload starts with `CLOCK_MONOTONIC` nanoseconds \
read just before the call; the load generator (another process on the same machine, same clock \
as `Instant`) subtracts it from its own `CLOCK_MONOTONIC` when the message comes out of its \
WebSocket reader. So the figure includes queueing, waking the connection thread, TLS, loopback \
TCP and the client's own decrypt. Separate processes keep the server's `/proc` figures its own; \
`CLOCK_MONOTONIC` is one clock per machine, so no wall-clock step can distort it.
";
