//! The tinywss echo server used by the benchmarks, with a push mode for latency.
//!
//! Echo (`--mode events`, the default): every data message comes back to its sender
//! through `Handle::send`, from the application thread that reads `Server::events`, as a
//! real application would. `--mode handler` is for the library's handler API, which this
//! build does not have yet: it exits with a message (see [`serve_handler`]). The
//! "listening" line names the mode.
//!
//! Push (`--push-rate`): when a client sends the text message `start N` and N
//! connections are open, a separate application thread sends `--push-count` binary messages at `--push-rate` per second
//! to the connections open at that moment, either round-robin with `Handle::send` or to
//! all of them with `Handle::broadcast`. Each payload starts with the `CLOCK_MONOTONIC`
//! nanoseconds read just before the `send`/`broadcast` call (then a sequence number), so
//! the load generator, in its own process on the same machine, computes the latency from
//! the call to its receipt. After the last message every connection gets the text `done`.
//!
//! The server stops by itself after `--lifetime` seconds.
//!
//! Usage: tinywss_server --cert PEM --key PEM [--mode events|handler] [--bind ADDR] [--lifetime SECS]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use tinywss::{Config, ConnectionId, Event, Handle, Message, Server};
use tinywss_bench::{Flags, PushMode, PushPlan};

const USAGE: &str = "usage: tinywss_server --cert PEM --key PEM [--mode events|handler (events)] \
[--bind ADDR (127.0.0.1:9001)] [--max-connections N (20000)] [--events-capacity N (library default)] \
[--lifetime SECS (900)] [--push-rate MSGS_PER_S --push-count N (10000) --push-size BYTES (64) \
--push-mode send|broadcast (send)]";

/// How the application gets the messages: `--mode`.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// One application thread reads `Server::events`.
    Events,
    /// The library's handler API (not in this build yet).
    Handler,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error")).init();
    let flags = Flags::parse(
        USAGE,
        &[
            "mode",
            "bind",
            "cert",
            "key",
            "max-connections",
            "events-capacity",
            "lifetime",
            "push-rate",
            "push-count",
            "push-size",
            "push-mode",
        ],
    );
    let mode = match flags.get("mode", "events".to_string()).as_str() {
        "events" => Mode::Events,
        "handler" => Mode::Handler,
        other => {
            eprintln!("tinywss_server: --mode {other:?}: use events or handler\n{USAGE}");
            std::process::exit(2);
        }
    };
    let push = PushPlan::from_flags(&flags);
    let mut builder = Config::builder()
        .bind(flags.get("bind", "127.0.0.1:9001".to_string()))
        .tls_pem_files(flags.required::<PathBuf>("cert"), flags.required::<PathBuf>("key"))
        // The defaults (256, 64 handshakes at once, 64 per address) suit a small device;
        // the idle tests open 10,000, all from the load generator's one address.
        .max_connections(flags.get("max-connections", 20_000))
        .max_handshakes(flags.get("max-connections", 20_000))
        .max_connections_per_ip(None)
        .max_handshakes_per_ip(None);
    // For experiments only; the benchmarks use the library default.
    if flags.has("events-capacity") {
        builder = builder.events_capacity(flags.get("events-capacity", 1024));
    }
    let config = builder.build().unwrap_or_else(|e| {
        eprintln!("tinywss_server: {e}");
        std::process::exit(1);
    });
    let lifetime = Duration::from_secs(flags.get("lifetime", 900));
    match mode {
        Mode::Events => serve_events(config, push, lifetime),
        Mode::Handler => serve_handler(config, push, lifetime),
    }
}

/// `--mode events`: the application thread reads `Server::events` and answers with
/// `Handle::send`.
fn serve_events(config: Config, push: Option<PushPlan>, lifetime: Duration) {
    let server = Server::bind(config).unwrap_or_else(|e| {
        eprintln!("tinywss_server: {e}");
        std::process::exit(1);
    });
    println!("listening {} (mode events)", server.local_addr());
    let _ = std::io::stdout().flush();

    let handle = server.handle();
    let stopper = handle.clone();
    thread::spawn(move || {
        thread::sleep(lifetime);
        let _ = stopper.shutdown();
    });

    let mut open = BTreeSet::new();
    // `start N` waits for N open connections: the Open events of other connections may
    // still be on their way when the first client's `start` arrives.
    let mut start_at: Option<usize> = None;
    for event in server.events() {
        match event {
            Event::Open { conn, .. } => {
                open.insert(conn);
            }
            Event::Close { conn, reason, .. } => {
                open.remove(&conn);
                if push.is_some() {
                    eprintln!("{conn}: {reason}");
                }
            }
            Event::Message { conn, message, .. } => match (&push, &message) {
                (Some(_), Message::Text(text)) if text.starts_with("start") => {
                    start_at = Some(text["start".len()..].trim().parse().unwrap_or(1));
                }
                _ => {
                    let _ = handle.send(conn, message);
                }
            },
            _ => {}
        }
        if let (Some(plan), Some(n)) = (push, start_at) {
            if open.len() >= n {
                start_at = None;
                let (handle, conns) = (handle.clone(), open.iter().copied().collect());
                thread::spawn(move || push_messages(plan, &handle, conns));
            }
        }
    }
}

/// `--mode handler`: **the place for the handler-mode server**, written against the
/// library's handler API once it exists. It should do what [`serve_events`] does: print
/// "listening ADDR (mode handler)" once bound, echo every data message, answer `start N`
/// with the push plan, and stop after `lifetime`. Until then it says so and exits.
fn serve_handler(_config: Config, _push: Option<PushPlan>, _lifetime: Duration) {
    eprintln!("tinywss_server: --mode handler is not available in this build (the library has no handler API yet)");
    std::process::exit(2);
}

/// Sends the planned messages, each stamped just before the library call.
fn push_messages(plan: PushPlan, handle: &Handle, conns: Vec<ConnectionId>) {
    if conns.is_empty() {
        return;
    }
    plan.run(|i, payload| match plan.mode {
        PushMode::Send => handle.send(conns[i % conns.len()], payload).is_ok(),
        PushMode::Broadcast => handle.broadcast(payload).is_ok(),
    });
    for conn in conns {
        let _ = handle.send(conn, "done");
    }
    let stats = handle.stats();
    eprintln!(
        "push finished: {} messages, {} dropped, {} slow-consumer closes",
        plan.count, stats.dropped, stats.slow_consumer_closes
    );
}
