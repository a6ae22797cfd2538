//! The tinywss echo server used by the benchmarks, with a push mode for latency.
//!
//! Echo: every data message comes back to its sender through `Handle::send`, from the
//! application thread that reads `Server::events`, as a real application would.
//!
//! Push (`--push-rate`): when any client sends the text message `start`, a separate
//! application thread sends `--push-count` binary messages at `--push-rate` per second
//! to the connections open at that moment, either round-robin with `Handle::send` or to
//! all of them with `Handle::broadcast`. Each payload starts with the `CLOCK_MONOTONIC`
//! nanoseconds read just before the `send`/`broadcast` call (then a sequence number), so
//! the load generator, in its own process on the same machine, computes the latency from
//! the call to its receipt. After the last message every connection gets the text `done`.
//!
//! The server stops by itself after `--lifetime` seconds.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use tinywss::{Config, ConnectionId, Event, Handle, Message, Server};
use tinywss_bench::{mono_nanos, Flags};

const USAGE: &str = "usage: tinywss_server --cert PEM --key PEM [--bind ADDR (127.0.0.1:9001)] \
[--max-connections N (20000)] [--lifetime SECS (900)] [--push-rate MSGS_PER_S --push-count N (10000) \
--push-size BYTES (64) --push-mode send|broadcast (send)]";

#[derive(Clone, Copy, PartialEq)]
enum PushMode {
    Send,
    Broadcast,
}

#[derive(Clone, Copy)]
struct PushPlan {
    rate: f64,
    count: usize,
    size: usize,
    mode: PushMode,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error")).init();
    let flags = Flags::parse(
        USAGE,
        &["bind", "cert", "key", "max-connections", "lifetime", "push-rate", "push-count", "push-size", "push-mode"],
    );
    let push = flags.has("push-rate").then(|| PushPlan {
        rate: flags.required("push-rate"),
        count: flags.get("push-count", 10_000),
        size: flags.get("push-size", 64usize).max(16),
        mode: match flags.get("push-mode", "send".to_string()).as_str() {
            "send" => PushMode::Send,
            "broadcast" => PushMode::Broadcast,
            other => {
                eprintln!("--push-mode: {other:?} is neither send nor broadcast");
                std::process::exit(2);
            }
        },
    });
    let config = Config::builder()
        .bind(flags.get("bind", "127.0.0.1:9001".to_string()))
        .tls_pem_files(flags.required::<PathBuf>("cert"), flags.required::<PathBuf>("key"))
        // The default (256) suits a small device; the idle tests open 10,000.
        .max_connections(flags.get("max-connections", 20_000))
        .build()
        .unwrap_or_else(|e| {
            eprintln!("tinywss_server: {e}");
            std::process::exit(1);
        });
    let server = Server::bind(config).unwrap_or_else(|e| {
        eprintln!("tinywss_server: {e}");
        std::process::exit(1);
    });
    println!("listening {}", server.local_addr());
    let _ = std::io::stdout().flush();

    let handle = server.handle();
    let lifetime = Duration::from_secs(flags.get("lifetime", 900));
    let stopper = handle.clone();
    thread::spawn(move || {
        thread::sleep(lifetime);
        let _ = stopper.shutdown();
    });

    let mut open = BTreeSet::new();
    for event in server.events() {
        match event {
            Event::Open { conn, .. } => {
                open.insert(conn);
            }
            Event::Close { conn, .. } => {
                open.remove(&conn);
            }
            Event::Message { conn, message } => match (&push, &message) {
                (Some(plan), Message::Text(text)) if text == "start" => {
                    let (plan, handle, conns) = (*plan, handle.clone(), open.iter().copied().collect());
                    thread::spawn(move || push_messages(plan, &handle, conns));
                }
                _ => {
                    let _ = handle.send(conn, message);
                }
            },
            _ => {}
        }
    }
}

/// Sends the planned messages on a fixed schedule (absolute times, so one late wake-up
/// does not shift the rest), each stamped just before the library call.
fn push_messages(plan: PushPlan, handle: &Handle, conns: Vec<ConnectionId>) {
    if conns.is_empty() {
        return;
    }
    let start = Instant::now();
    for i in 0..plan.count {
        let due = start + Duration::from_secs_f64(i as f64 / plan.rate);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        let mut payload = vec![0u8; plan.size];
        payload[8..16].copy_from_slice(&(i as u64).to_le_bytes());
        payload[..8].copy_from_slice(&mono_nanos().to_le_bytes());
        let sent = match plan.mode {
            PushMode::Send => handle.send(conns[i % conns.len()], payload),
            PushMode::Broadcast => handle.broadcast(payload),
        };
        if sent.is_err() {
            return;
        }
    }
    for conn in conns {
        let _ = handle.send(conn, "done");
    }
    let stats = handle.stats();
    eprintln!("push finished: {} sent, {} dropped", plan.count, stats.dropped);
}
