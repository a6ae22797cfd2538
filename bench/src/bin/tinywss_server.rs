//! The tinywss echo server used by the benchmarks, with a push mode for latency.
//!
//! Echo (`--mode events`, the default): every data message comes back to its sender
//! through `Handle::send`, from the application thread that reads `Server::events`, as a
//! real application would. `--mode handler`: each client's thread echoes its own
//! messages (`Server::serve`). The "listening" line names the mode.
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
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tinywss::{Config, ConnectionId, Event, Handle, Message, Server};
use tinywss_bench::{Flags, PushMode, PushPlan};

const USAGE: &str = "usage: tinywss_server --cert PEM --key PEM [--mode events|handler (events)] \
[--bind ADDR (127.0.0.1:9001)] [--max-connections N (20000)] [--events-capacity N (library default)] \
[--lifetime SECS (900)] [--write-through on|off (on)] [--push-rate MSGS_PER_S --push-count N (10000) --push-size BYTES (64) \
--push-mode send|broadcast (send)]";

/// How the application gets the messages: `--mode`.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// One application thread reads `Server::events`.
    Events,
    /// Each client's own thread answers (`Server::serve`).
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
            "write-through",
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
    match flags.get("write-through", "on".to_string()).as_str() {
        "on" => {}
        "off" => builder = builder.write_through(false),
        other => {
            eprintln!("tinywss_server: --write-through {other:?}: use on or off\n{USAGE}");
            std::process::exit(2);
        }
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

/// `--mode handler`: each client is served on its own thread by `Server::serve`, which
/// echoes every data message; a `start N` message arms the push plan as in events mode.
fn serve_handler(config: Config, push: Option<PushPlan>, lifetime: Duration) {
    // The connections open now, and the push plan waiting for enough of them.
    let state = Arc::new(Mutex::new((BTreeSet::new(), None::<usize>)));
    let handle_slot: Arc<OnceLock<Handle>> = Arc::default();
    let (shared, slot) = (Arc::clone(&state), Arc::clone(&handle_slot));
    let server = Server::serve(config, move |conn| {
        let id = conn.id();
        shared.lock().unwrap().0.insert(id);
        arm_push(&shared, push, &slot);
        while let Some(message) = conn.recv() {
            match (&push, &message) {
                (Some(_), Message::Text(text)) if text.starts_with("start") => {
                    shared.lock().unwrap().1 = Some(text["start".len()..].trim().parse().unwrap_or(1));
                    arm_push(&shared, push, &slot);
                }
                _ => conn.send(message)?,
            }
        }
        shared.lock().unwrap().0.remove(&id);
        Ok(())
    })
    .unwrap_or_else(|e| {
        eprintln!("tinywss_server: {e}");
        std::process::exit(1);
    });
    let _ = handle_slot.set(server.handle());
    println!("listening {} (mode handler)", server.local_addr());
    let _ = std::io::stdout().flush();
    let stopper = server.handle();
    thread::spawn(move || {
        thread::sleep(lifetime);
        let _ = stopper.shutdown();
    });
    for _ in server.events() {}
}

/// Starts the push plan once `start N` has come and N connections are open.
fn arm_push(state: &Mutex<(BTreeSet<ConnectionId>, Option<usize>)>, push: Option<PushPlan>, handle: &OnceLock<Handle>) {
    let (Some(plan), Some(handle)) = (push, handle.get()) else { return };
    let mut state = state.lock().unwrap();
    if state.1.is_some_and(|n| state.0.len() >= n) {
        state.1 = None;
        let (handle, conns) = (handle.clone(), state.0.iter().copied().collect());
        thread::spawn(move || push_messages(plan, &handle, conns));
    }
}

/// Sends the planned messages, each stamped just before the library call.
fn push_messages(plan: PushPlan, handle: &Handle, conns: Vec<ConnectionId>) {
    if conns.is_empty() {
        return;
    }
    // The pushing thread's own time in the library: what a frame loop would feel.
    let mut in_calls = Duration::ZERO;
    plan.run(|i, payload| {
        let called = Instant::now();
        let sent = match plan.mode {
            PushMode::Send => handle.send(conns[i % conns.len()], payload).is_ok(),
            PushMode::Broadcast => handle.broadcast(payload).is_ok(),
        };
        in_calls += called.elapsed();
        sent
    });
    for conn in &conns {
        let _ = handle.send(*conn, "done");
    }
    let stats = handle.stats();
    let deliveries = match plan.mode {
        PushMode::Send => plan.count,
        PushMode::Broadcast => plan.count * conns.len(),
    };
    eprintln!(
        "push finished: {} messages, {} dropped, {} slow-consumer closes, {} written through; \
         {:.2} us of the pushing thread per delivery",
        plan.count,
        stats.dropped,
        stats.slow_consumer_closes,
        stats.messages_written_through,
        in_calls.as_secs_f64() * 1e6 / deliveries.max(1) as f64
    );
}
