//! # tinywss
//!
//! A small WebSocket Secure (`wss://`) server for plain, synchronous Rust programs:
//! no async runtime, a few threads, bounded memory.
//!
//! ## Design overview
//!
//! ```text
//!  std::net::TcpListener
//!         │ accept (acceptor thread; enforces max_connections)
//!         ▼
//!  one thread per client ("tinywss-conn-<id>", small stack)
//!    TLS handshake (rustls)   ─┐ one deadline for both
//!    HTTP/1.1 Upgrade         ─┘
//!    frame loop (tungstenite): poll(socket, waker, timers)
//!         │ Event                                   ▲ Message (bounded queue per client)
//!         │ (bounded channel, in order per client)  │ + waker
//!         ▼                                         │
//!  the application ── Handle::send/broadcast/close ──► dispatcher thread
//!  (Server::events)                                    (owns the registry of connections)
//! ```
//!
//! Each client thread sleeps in `poll(2)` until its socket has bytes, the application
//! queues a message for it, or a timer (handshake deadline, keepalive ping, close
//! timeout) is due: an idle connection costs no CPU. Everything that can grow is bounded:
//! the events channel, each client's outbound queue, message and frame sizes, the number
//! of connections. What does not fit is refused or dropped, and counted in [`Stats`].
//!
//! ## Quick start
//!
//! An echo server:
//!
//! ```no_run
//! use tinywss::{Config, Event, Server};
//!
//! let config = Config::builder()
//!     .bind("127.0.0.1:8443")
//!     .tls_pem_files("certs/server.pem", "certs/server.key")
//!     .build()?; // certificate problems surface here, naming the file
//! let server = Server::bind(config)?;
//! let handle = server.handle(); // Clone + Send + Sync: give it to any thread
//! for event in server.events() {
//!     match event {
//!         Event::Open { conn, info } => println!("{conn} from {}", info.peer),
//!         Event::Message { conn, message } => handle.send(conn, message)?,
//!         Event::Close { conn, reason } => println!("{conn}: {reason}"),
//!         _ => {}
//!     }
//! }
//! # Ok::<(), tinywss::Error>(())
//! ```
//!
//! ## TLS
//!
//! Certificate trouble is what breaks WSS in the field, so [`ConfigBuilder::build`]
//! checks the certificate and key and names the file and the fix for each problem
//! (missing file, no certificate, unsupported key, key of another certificate, expired or
//! not yet valid), and warns about what still works but will not for long or for
//! everyone (expiry within 14 days, a host name the certificate does not cover, a chain
//! without its intermediate).
//!
//! - **Renewal without downtime**: the certificate files are checked every 30 s; renewed
//!   files (rewritten, renamed over, or symlinks switched, as ACME clients do) are checked
//!   the same way and serve new handshakes, while open connections carry on. A bad
//!   replacement is refused and logged; the old certificate stays.
//!   [`Handle::reload_tls`] reloads on demand.
//! - **Several names**: [`ConfigBuilder::sni_pem_files`] adds a certificate per server
//!   name (SNI); [`ConfigBuilder::tls_pem_files`] is the default.
//! - **Client certificates**: [`ConfigBuilder::client_auth`] with [`ClientAuth`]; the
//!   verified identity is in [`ConnectionInfo::client_certificate`].
//! - **Versions**: TLS 1.3 and 1.2 by default, [`ConfigBuilder::tls13_only`] as an
//!   option; ALPN `http/1.1`.
//! - **Behind a reverse proxy**: [`ConfigBuilder::plain_ws_behind_proxy`] serves plain
//!   `ws://` when the proxy terminates TLS (with a warning at start).
//!
//! `cargo run --example check -- wss://HOST:PORT/ --ca ca.pem` checks a server from the
//! client side, step by step.
//!
//! ## Threads and shutdown
//!
//! [`Server::bind`] starts an acceptor thread and a dispatcher thread; each client gets
//! its own thread. [`Server::events`] is a crossbeam `Receiver`, so the application can
//! `select!` it together with its own channels. [`Handle::shutdown`] (or dropping the
//! [`Server`]) closes every client with 1001 and joins all threads within the shutdown
//! timeout; the events channel then ends.
//!
//! ## Logging
//!
//! tinywss logs through the `log` crate and installs no logger. No level ever shows a
//! private key or a message payload.
//!
//! | level | what |
//! |---|---|
//! | `error` | the acceptor stopped working, a renewed certificate refused |
//! | `warn`  | certificate problems that do not stop the server, a development certificate in use, plain `ws://`, slow clients closed, accept failures |
//! | `info`  | server start and shutdown, the certificate in service (subject, expiry, fingerprint) and each renewal |
//! | `debug` | each connection: TLS version and cipher suite, Upgrade, open, close and why |
//! | `trace` | each message and control frame: kind and length |
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod config;
mod connection;
mod dispatcher;
mod error;
mod event;
mod handle;
mod http;
mod reload;
mod server;
mod stats;
mod stream;
mod tls;
mod wait;

pub use config::{Config, ConfigBuilder};
pub use error::Error;
pub use event::{CloseReason, ConnectionId, ConnectionInfo, Event, Message};
pub use handle::Handle;
pub use server::Server;
pub use stats::Stats;
pub use tls::{CertificateInfo, ClientAuth};

/// The README's examples compile (checked by `cargo test`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
