//! Server push: a simulated price feed. Clients subscribe to symbols; a feed thread
//! publishes every symbol's price `--rate` times a second to its room.
//!
//! Client to server: `sub SYMBOL` or `unsub SYMBOL` (symbols: ACME, GLOBEX, INITECH,
//! UMBRELLA). Server to client: `SYMBOL PRICE SEQ` lines.
//!
//! A client that reads slower than the feed falls behind; the slow-consumer policy
//! decides what happens: `--policy close` (the default: closed with 1013 once its
//! queue is full, so it reconnects and resynchronises) or `--policy drop` (it keeps
//! the connection and misses updates; the drops are counted). Every 5 s the server
//! logs its counters, so you can watch this happen, e.g. with a client that reads
//! slowly: `websocat -n --ping-interval 0 wss://localhost:8443/ | pv -L 1k`.
//!
//! With `--redis URL` (and `--features redis`), several ticker servers share the feed
//! through Redis: one of them (the first alive in name order) runs it, and every
//! server's subscribers get it; when that server dies, the next takes over within three
//! heartbeats.
//!
//! Usage: cargo run --example ticker -- [--bind ADDR]... [--cert PEM --key PEM]
//!        [--max-connections N] [--rate UPDATES_PER_SECOND] [--policy close|drop]
//!        [--redis URL]

#[path = "common/cli.rs"]
mod cli;
#[path = "common/cluster.rs"]
mod cluster;

use std::thread;
use std::time::{Duration, Instant};

use tinywss::{Event, Handle, Message, SlowConsumerPolicy};

const SYMBOLS: [&str; 4] = ["ACME", "GLOBEX", "INITECH", "UMBRELLA"];

fn main() {
    cli::init_logging();
    let args =
        cli::Cli::parse("ticker", "[--rate N] [--policy close|drop] [--redis URL]", &["rate", "policy", "redis"]);
    let redis = cluster::url(&args);
    let rate: u32 = args.get("rate", 10).clamp(1, 10_000);
    let policy = match args.get("policy", "close".to_string()).as_str() {
        "close" => SlowConsumerPolicy::Close,
        "drop" => SlowConsumerPolicy::DropNewest,
        other => args.usage_error(&format!("--policy: {other:?} is neither close nor drop")),
    };
    let server =
        args.serve(|builder| cluster::join(builder.slow_consumer_policy(policy).outbound_queue(256), redis.as_deref()));
    log::info!(
        "ticker ready at {}: send `sub ACME`; {rate} updates/s per symbol; {policy:?} slow consumers",
        cli::reach(&server, "wss", "/")
    );

    let feed = server.handle();
    thread::spawn(move || run_feed(&feed, rate));
    let handle = server.handle();
    for event in server.events() {
        match event {
            Event::Open { conn, .. } => {
                let _ = handle.send(conn, format!("* symbols: {}; send `sub SYMBOL`", SYMBOLS.join(" ")));
            }
            Event::Message { conn, message: Message::Text(text), .. } => match text.trim().split_once(' ') {
                Some(("sub", symbol)) if SYMBOLS.contains(&symbol) => {
                    let _ = handle.join(conn, symbol);
                }
                Some(("unsub", symbol)) => {
                    let _ = handle.leave(conn, symbol);
                }
                _ => {
                    let _ = handle.send(conn, "* unknown command; send `sub SYMBOL` or `unsub SYMBOL`");
                }
            },
            Event::Close { conn, reason, .. } => log::info!("{conn} {reason}"),
            _ => {}
        }
    }
}

/// Publishes a random walk per symbol at a fixed rate, and logs the counters every 5 s.
fn run_feed(handle: &Handle, rate: u32) {
    let mut prices = [100.0f64, 42.0, 7.5, 250.0];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let period = Duration::from_secs(1) / rate;
    let mut next = Instant::now();
    let mut report = Instant::now() + Duration::from_secs(5);
    for seq in 0u64.. {
        // With --redis, one server's feed is everyone's: the others pass it on.
        let symbols: &[&str] = if cluster::leads(handle) { &SYMBOLS } else { &[] };
        for (symbol, price) in symbols.iter().zip(prices.iter_mut()) {
            // xorshift: a cheap, deterministic random walk.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *price = (*price * (1.0 + ((seed % 2001) as f64 - 1000.0) / 100_000.0)).max(0.01);
            if handle.publish(symbol, format!("{symbol} {price:.2} {seq}")).is_err() {
                return; // the server has shut down
            }
        }
        if Instant::now() >= report {
            let s = handle.stats();
            log::info!(
                "{} clients, {} subscriptions, {} updates sent, {} dropped, {} slow clients closed",
                s.websockets,
                s.room_members,
                s.messages_out,
                s.dropped,
                s.slow_consumer_closes
            );
            report += Duration::from_secs(5);
        }
        next += period;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}
