//! An echo server: every message a client sends comes back to it.
//!
//! With no `--cert`/`--key`, it uses the development certificates in `certs/` (and makes
//! them on first run): a browser or client must trust `certs/ca.pem` to connect.
//!
//! Usage: cargo run --example echo -- [--bind ADDR]... [--cert PEM --key PEM]
//!        [--max-connections N] [--max-connections-per-ip N|none]
//!        [--max-message BYTES] [--max-frame BYTES]
//!
//! Defaults: both loopback addresses (`127.0.0.1:8443` and `[::1]:8443`), the
//! development certificate, and the library's limits (256 clients, 64 from one address,
//! messages of 1 MiB). To hold 1,000 idle clients from this machine:
//! `--max-connections 1000 --max-connections-per-ip none`.
//! Logs go to stderr; set `RUST_LOG=debug` to watch handshakes, `RUST_LOG=trace` to
//! watch every frame too (docs/PROTOCOL.md walks through it).

#[path = "common/cli.rs"]
mod cli;

use tinywss::Event;

fn main() {
    cli::init_logging();
    let args = cli::Cli::parse("echo", "", &[]);
    let server = args.serve(|builder| builder);
    log::info!("echo server ready at {}", cli::reach(&server, "wss", "/"));
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
