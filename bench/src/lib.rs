//! Helpers shared by the benchmark binaries: flags, TLS configs, clocks, `/proc` readings
//! and latency summaries.
//!
//! Binaries: `loadgen` (the client side), `tinywss_server`, `tokio_ws_server` (the
//! tokio-tungstenite peer), `sync_ws_server` (the thread-per-client tungstenite peer),
//! `tls_echo_server` (the TLS floor: no WebSocket), `certgen` (the benchmark
//! certificate), `report` (writes BENCHMARKS.md from the results), and, with the `redis`
//! feature, `backplane` (rooms across servers through Redis, in one process).

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// `--flag value` pairs from the command line; every flag must be known to the binary.
#[derive(Debug)]
pub struct Flags {
    values: HashMap<String, String>,
    usage: &'static str,
}

impl Flags {
    /// Parses `std::env::args`; exits with the usage on `--help` or on an unknown flag.
    pub fn parse(usage: &'static str, known: &[&str]) -> Flags {
        let mut values = HashMap::new();
        let mut argv = std::env::args().skip(1);
        while let Some(flag) = argv.next() {
            if flag == "--help" || flag == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            let Some(name) = flag.strip_prefix("--").filter(|n| known.contains(n)) else {
                fail(usage, &format!("unknown option {flag}"));
            };
            let Some(value) = argv.next() else { fail(usage, &format!("{flag} needs a value")) };
            values.insert(name.to_owned(), value);
        }
        Flags { values, usage }
    }

    /// The flag's value, or `default`.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T {
        match self.values.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| fail(self.usage, &format!("--{name}: bad value {v:?}"))),
        }
    }

    /// The flag's value; exits when it is missing.
    pub fn required<T: FromStr>(&self, name: &str) -> T {
        match self.values.get(name) {
            None => fail(self.usage, &format!("--{name} is required")),
            Some(v) => v.parse().unwrap_or_else(|_| fail(self.usage, &format!("--{name}: bad value {v:?}"))),
        }
    }

    /// Whether the flag was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

fn fail(usage: &str, problem: &str) -> ! {
    eprintln!("{problem}\n{usage}");
    std::process::exit(2);
}

/// The peers' tokio runtime: `--threads` workers, by default one per CPU the process may use.
pub fn tokio_runtime(flags: &Flags) -> tokio::runtime::Runtime {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(flags.get("threads", cpus))
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Nanoseconds of `CLOCK_MONOTONIC`: the clock behind `Instant`, one per machine, so a
/// timestamp taken in one process can be compared with one taken in another.
pub fn mono_nanos() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A rustls server config (ring) for the peers: the same defaults tinywss uses.
pub fn server_tls(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert).expect("certificate file").collect::<Result<_, _>>().expect("PEM");
    let key = PrivateKeyDer::from_pem_file(key).expect("key file");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A rustls client config (ring) trusting only `ca`. Session resumption is off, so every
/// handshake measured is a full one, whichever server is on the other side.
pub fn client_tls(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// A process's resident memory (`VmRSS` in `/proc/PID/status`), in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// One `kB` field of `/proc/PID/status`.
pub fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// CPU time a process used so far: `utime + stime` from `/proc/PID/stat`, in clock ticks.
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second (`CLK_TCK`), to turn [`cpu_ticks`] into time.
pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// Run time (ns) and number of times scheduled, summed over every thread of a process,
/// from `/proc/PID/task/*/schedstat`: finer than clock ticks, and it counts wake-ups.
pub fn sched_totals(pid: u32) -> (u64, u64, usize) {
    let (mut run_ns, mut slices, mut threads) = (0, 0, 0);
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
                let v: Vec<u64> = s.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                if v.len() == 3 {
                    run_ns += v[0];
                    slices += v[2];
                    threads += 1;
                }
            }
        }
    }
    (run_ns, slices, threads)
}

/// Percentiles of a set of latencies, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub count: usize,
}

impl Latency {
    /// Summarises latencies given in nanoseconds (the slice is sorted in place).
    pub fn from_nanos(samples: &mut [u64]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i] as f64 / 1000.0
        };
        Latency { p50: at(0.50), p99: at(0.99), p999: at(0.999), max: at(1.0), count: samples.len() }
    }

    /// Adds the fields `p50_us`, `p99_us`, `p999_us`, `max_us` to a JSON object.
    pub fn add_to(&self, object: &mut serde_json::Map<String, serde_json::Value>) {
        let round = |v: f64| (v * 10.0).round() / 10.0;
        object.insert("p50_us".into(), round(self.p50).into());
        object.insert("p99_us".into(), round(self.p99).into());
        object.insert("p999_us".into(), round(self.p999).into());
        object.insert("max_us".into(), round(self.max).into());
    }
}

/// Whether pushed messages go round-robin to one connection each or to all at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushMode {
    /// Message `i` goes to connection `i % n` (`Handle::send`).
    Send,
    /// Every message goes to every connection (`Handle::broadcast`).
    Broadcast,
}

/// The push schedule of a benchmark server (`--push-rate` and friends).
#[derive(Clone, Copy, Debug)]
pub struct PushPlan {
    pub rate: f64,
    pub count: usize,
    pub size: usize,
    pub mode: PushMode,
}

impl PushPlan {
    /// The plan from `--push-rate`, `--push-count` (10000), `--push-size` (64, at least
    /// 16) and `--push-mode` (send); `None` without `--push-rate`.
    pub fn from_flags(flags: &Flags) -> Option<PushPlan> {
        let mode = match flags.get("push-mode", "send".to_string()).as_str() {
            "send" => PushMode::Send,
            "broadcast" => PushMode::Broadcast,
            other => fail(flags.usage, &format!("--push-mode: {other:?} is neither send nor broadcast")),
        };
        flags.has("push-rate").then(|| PushPlan {
            rate: flags.required("push-rate"),
            count: flags.get("push-count", 10_000),
            size: flags.get("push-size", 64usize).max(16),
            mode,
        })
    }

    /// Calls `deliver(i, payload)` for each message on a fixed schedule (absolute times,
    /// so one late wake-up does not shift the rest). Each payload carries the
    /// [`mono_nanos`] read just before the call, then the sequence number. Stops early
    /// when `deliver` returns false.
    pub fn run(&self, mut deliver: impl FnMut(usize, Vec<u8>) -> bool) {
        let start = std::time::Instant::now();
        for i in 0..self.count {
            let due = start + std::time::Duration::from_secs_f64(i as f64 / self.rate);
            let now = std::time::Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let mut payload = vec![0u8; self.size];
            payload[8..16].copy_from_slice(&(i as u64).to_le_bytes());
            payload[..8].copy_from_slice(&mono_nanos().to_le_bytes());
            if !deliver(i, payload) {
                return;
            }
        }
    }
}

/// The frame header of the plain TLS echo protocol: a 4-byte big-endian payload length.
pub const TLS_FRAME_HEADER: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        let l = Latency::from_nanos(&mut v);
        assert_eq!(l.p50, 500.0);
        assert_eq!(l.p99, 990.0);
        assert_eq!(l.p999, 999.0);
        assert_eq!(l.max, 1000.0);
    }

    #[test]
    fn own_cpu_ticks_are_readable() {
        assert!(cpu_ticks("self").is_some());
        assert!(rss_kib(std::process::id()).is_some());
        assert!(sched_totals(std::process::id()).2 >= 1);
    }
}
