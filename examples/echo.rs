//! An echo server: every message a client sends comes back to it.
//!
//! Two ways to write it, the two modes of the library, so they can be compared from the
//! command line (BENCHMARKS.md has the figures):
//!
//! - `--mode events` (the default): every message goes to this program's main thread
//!   through `Server::events`, which sends it back through the `Handle`. One owner of
//!   all state: the shape of a game loop or a chat room.
//! - `--mode handler`: each client's messages are answered on that client's own thread
//!   (`Server::serve`): no thread between the socket and the code that answers, so a
//!   burst of requests costs one flush. The shape of a request/response service.
//!
//! With no `--cert`/`--key`, it uses the development certificates in `certs/` (and makes
//! them on first run): a browser or client must trust `certs/ca.pem` to connect.
//!
//! Usage: cargo run --example echo -- [--mode events|handler] [--bind ADDR]...
//!        [--cert PEM --key PEM] [--max-connections N] [--max-connections-per-ip N|none]
//!        [--max-message BYTES] [--max-frame BYTES] [--deflate | --deflate-takeover BITS]
//!
//! Defaults: `--mode events`, both loopback addresses (`127.0.0.1:8443` and
//! `[::1]:8443`), the development certificate, and the library's limits (256 clients,
//! 64 from one address, messages of 1 MiB). To hold 1,000 idle clients from this
//! machine: `--max-connections 1000 --max-connections-per-ip none`. `--deflate` answers
//! clients that offer permessage-deflate (browsers, Python `websockets`, Node `ws`) with
//! compression, no context takeover.
//! Logs go to stderr; set `RUST_LOG=debug` to watch handshakes, `RUST_LOG=trace` to
//! watch every frame too (docs/PROTOCOL.md walks through it).

#[path = "common/cli.rs"]
mod cli;

use tinywss::{Connection, Event, HandlerError, Server};

fn main() {
    cli::init_logging();
    let args = cli::Cli::parse("echo", "[--mode events|handler]", &["mode"]);
    match args.get("mode", String::from("events")).as_str() {
        "events" => events_mode(&args),
        "handler" => handler_mode(&args),
        other => args.usage_error(&format!("unknown --mode {other:?}: use events or handler")),
    }
}

/// One thread sees every event and answers through the handle.
fn events_mode(args: &cli::Cli) {
    let server = args.serve(|builder| builder);
    log::info!("echo server (events mode) ready at {}", cli::reach(&server, "wss", "/"));
    let handle = server.handle();
    for event in server.events() {
        match event {
            Event::Open { conn, info } => log::info!("{conn} open from {}", info.peer),
            // The handle refuses only after shutdown: then the loop ends anyway.
            Event::Message { conn, message, .. } => {
                let _ = handle.send(conn, message);
            }
            Event::Close { conn, reason, .. } => log::info!("{conn} {reason}"),
            _ => {}
        }
    }
}

/// Each client's thread answers its own messages.
fn handler_mode(args: &cli::Cli) {
    let server = args.start(|builder| builder, |config| Server::serve(config, echo));
    log::info!("echo server (handler mode) ready at {}", cli::reach(&server, "wss", "/"));
    // The clients are served on their own threads; this one waits for the shutdown
    // (Ctrl-C or SIGTERM), after which the events channel disconnects.
    for _ in server.events() {}
}

fn echo(conn: &mut Connection<'_>) -> Result<(), HandlerError> {
    log::info!("{} open from {}", conn.id(), conn.info().peer);
    while let Some(message) = conn.recv() {
        conn.send(message)?;
    }
    if let Some(reason) = conn.close_reason() {
        log::info!("{} {reason}", conn.id());
    }
    Ok(())
}
