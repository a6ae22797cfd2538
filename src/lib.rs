//! # tinywss
//!
//! A small WebSocket Secure (`wss://`) server for plain, synchronous Rust programs:
//! no async runtime, a few threads, bounded memory.
//!
//! ## Design overview
//!
//! ```text
//!  std::net::TcpListener
//!         │ accept (acceptor thread, server.rs; connection and handshake limits,
//!         │ in total and per address: admission.rs)
//!         ▼
//!  one thread per client ("tinywss-conn-<id>", small stack; connection/)
//!    TLS handshake (rustls)      ─┐ one deadline for both, on a parked handshake
//!    HTTP/1.1 Upgrade (http/)    ─┘ worker ("tinywss-hs-<n>", threads.rs) that then
//!                                   starts the client's own thread
//!    frame loop (tungstenite): poll(socket, waker, timers)
//!         │ Event                                   ▲ Message (bounded outbox per client)
//!         │ (bounded channel, in order per client)  │ + waker
//!         ▼                                         │
//!  the application ── Handle::send/broadcast/close ─────┘
//!  (Server::events)   in the caller's thread: find the client in the shared
//!                     registry (hub/), queue the message, ring the client's waker;
//!                     or, when the client's thread sleeps with nothing queued,
//!                     write the message to the client right there (write-through)
//!         │ optional (feature `redis`): rooms across servers
//!         ▼
//!  Redis pub/sub backplane (hub/backplane/): a publisher thread, a subscriber thread
//! ```
//!
//! Each client thread sleeps in `poll(2)` until its socket has bytes, the application
//! queues a message for it, or a timer (handshake deadline, keepalive ping, close
//! timeout) is due: an idle connection costs no CPU. Everything that can grow is bounded:
//! the events channel, each client's outbound queue, message and frame sizes, the number
//! of connections and of handshakes in progress, in total and per address. What does not
//! fit is refused or dropped, and counted in [`Stats`].
//!
//! The source is laid out the same way, and every import points down this list:
//! `server` and `handle` (what the application starts and calls; `listen`, the
//! addresses it listens on) → `admission` (who the acceptor lets in) → `connection` (one
//! client's thread, its phases in order in `connection/mod.rs`) → `hub` (the routing
//! table, the outboxes, the rooms, the events channel) → `http` and `tls` (pure HTTP
//! functions; certificates and their renewal) → `wait` and the public types.
//!
//! ## Quick start
//!
//! An echo server on this machine, with a development certificate made on first run
//! (clients must trust `certs/ca.pem`; see [`ConfigBuilder::development_certificate`]).
//! tinywss logs through `log` and prints nothing by itself: install a logger (say
//! `env_logger::init()`) to see what it does. The README's quick start is the same
//! program as a whole crate, with a clean shutdown on Ctrl-C and SIGTERM.
//!
//! ```no_run
//! use tinywss::{Config, Event, Server};
//!
//! let config = Config::builder()
//!     .development_certificate("certs") // or .tls_pem_files(chain, key) for a real one
//!     .build()?; // certificate problems surface here, naming the file
//! let server = Server::bind(config)?; // 127.0.0.1:8443 and [::1]:8443
//! let handle = server.handle(); // Clone + Send + Sync: give it to any thread
//! for event in server.events() {
//!     match event {
//!         Event::Open { conn, info } => println!("{conn} from {}", info.peer),
//!         Event::Message { conn, message, .. } => handle.send(conn, message)?,
//!         Event::Close { conn, reason, .. } => println!("{conn}: {reason}"),
//!         _ => {}
//!     }
//! }
//! # Ok::<(), tinywss::Error>(())
//! ```
//!
//! ## Limits, and what happens past them
//!
//! Every resource a client can make the server spend is bounded. Each limit is a
//! [`ConfigBuilder`] setter; the defaults suit a small device.
//!
//! | limit | default | past it |
//! |---|---|---|
//! | [`max_connections`](ConfigBuilder::max_connections) | 256 | the oldest unfinished handshake gives way to the new client ([`Stats::handshakes_shed`]); with none, the new TCP connection is closed right after `accept`, before any TLS work ([`Stats::refused`]) |
//! | [`max_handshakes`](ConfigBuilder::max_handshakes) | 64 TLS + HTTP handshakes in progress | the oldest unfinished handshake gives way to the new client: its connection is closed; [`Stats::handshakes_shed`] |
//! | [`max_connections_per_ip`](ConfigBuilder::max_connections_per_ip) | 64 per address (IPv6: per /64); none behind a proxy | new TCP connections from that address closed right after `accept`; [`Stats::refused_per_ip`] |
//! | [`max_handshakes_per_ip`](ConfigBuilder::max_handshakes_per_ip) | 16 per address while every handshake slot is in use; none behind a proxy | new TCP connections from that address closed right after `accept` instead of pushing another client's handshake out; [`Stats::refused_per_ip`] |
//! | [`handshake_timeout`](ConfigBuilder::handshake_timeout) | 10 s for TLS + HTTP, the authentication hook included | connection dropped (HTTP 503 if the hook accepted late); [`Stats::handshakes_timed_out`] |
//! | [`max_request_head`](ConfigBuilder::max_request_head) | 8 KiB, 32 header lines | HTTP 431 |
//! | [`max_message_size`](ConfigBuilder::max_message_size), [`max_frame_size`](ConfigBuilder::max_frame_size) | 1 MiB | Close 1009, checked on the frame header before buffering; [`Stats::limit_closes`] |
//! | inflated size of a compressed message ([`compression`](ConfigBuilder::compression)) | [`max_message_size`](ConfigBuilder::max_message_size), counted as it inflates, 16 KiB at a time | Close 1009 before inflating past it (a 16 KB deflate bomb of 16 MiB costs the limit, not 16 MiB); data that is not deflate: Close 1002; [`Stats::limit_closes`] |
//! | protocol violations | — | Close 1002 (1007 for invalid UTF-8); [`Stats::protocol_errors`] |
//! | [`ping_interval`](ConfigBuilder::ping_interval) + [`pong_timeout`](ConfigBuilder::pong_timeout) | 30 s + 10 s | connection dropped, [`CloseReason::Error`] with a timeout |
//! | [`idle_timeout`](ConfigBuilder::idle_timeout) | off | Close 1000 "idle timeout" |
//! | [`outbound_queue`](ConfigBuilder::outbound_queue), [`outbound_queue_bytes`](ConfigBuilder::outbound_queue_bytes) | 64 messages, 1 MiB | [`SlowConsumerPolicy`]: Close 1013 (default) or drop the message; [`Stats::dropped`] |
//! | output waiting for one client whose socket is full (messages, pongs, close replies) | [`write_buffer_size`](ConfigBuilder::write_buffer_size) (8 KiB) + one message + 64 KiB of TLS records | nothing more is read from that client until it takes its output (TCP pushes back on it, so a Ping flood cannot grow memory); queued messages stay in the outbound queue |
//! | [`write_timeout`](ConfigBuilder::write_timeout) | 10 s without progress | connection dropped; [`Stats::limit_closes`]. A client that reads slowly is served slowly, in the bounded memory above |
//! | [`close_timeout`](ConfigBuilder::close_timeout) | 3 s for the Close reply, then 3 s for the last bytes to leave | TCP closed anyway. Messages sent to a closing connection are refused at once; [`Stats::dropped`] |
//! | [`events_capacity`](ConfigBuilder::events_capacity) | 1,024 events waiting for the application, at most an eighth from one connection | that connection's thread waits for the application; TCP slows that client only; nothing is dropped; [`Stats::events_throttled`] |
//! | [`events_bytes`](ConfigBuilder::events_bytes) | 4 MiB of messages waiting for the application, at most an eighth from one connection (one larger message still goes alone) | the same |
//! | certificate, key and CA files | regular files of at most 1 MiB | refused with [`Error::TlsFile`] ([`CertProblem::NotARegularFile`]) naming the file; a renewal that fails stays refused until the files change |
//! | Redis backplane: `redis_publish_queue`, `redis_publish_queue_bytes` | 1,024 messages, 4 MiB waiting for the publisher thread | not sent to the other servers (this server's clients get it); [`Stats::backplane_dropped`], a warning at most every 10 s |
//! | Redis backplane: Redis unreachable, or a command unanswered for `redis_heartbeat` (at least 1 s) | — | messages for the other servers dropped at once and counted ([`Stats::backplane_dropped`]); one warning per outage; reconnects every 50 ms, doubling up to the heartbeat |
//! | Redis backplane: a message from Redis | an envelope of version 1, checked byte by byte; payload at most [`max_message_size`](ConfigBuilder::max_message_size) | skipped; [`Stats::backplane_malformed`] |
//! | Redis backplane: other servers tracked | 256 servers, 100,000 rooms each, 16 MiB of their room names in all; heartbeat and presence envelopes of at most 64 KiB; a server silent for three of its heartbeats (`redis_heartbeat`, 5 s) is gone | envelopes of more servers, or larger, skipped; more rooms left out of presence; each counted in [`Stats::backplane_malformed`] |
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
//! - **On this machine**: [`ConfigBuilder::development_certificate`] makes a local CA
//!   and a certificate for `localhost`, `127.0.0.1` and `::1` on first use
//!   ([`DevelopmentCertificate`]), and says at `warn` that it is in use and where the CA
//!   to trust is.
//!
//! `cargo run --example check -- wss://HOST:PORT/ --ca ca.pem` checks a server from the
//! client side, step by step.
//!
//! ## Two modes: events or a handler per client
//!
//! - **Events mode**, [`Server::bind`]: every client's messages reach one thread of the
//!   application through [`Server::events`], which answers through the [`Handle`]. One
//!   owner of all state: a game loop, a chat room, a simulation.
//! - **Handler mode**, [`Server::serve`]: the application's code for one client runs on
//!   that client's own thread through a [`Connection`] (`recv`, `send`, `recv_timeout`,
//!   `flush`, `close`), straight-line and blocking, while pings, limits, the close
//!   handshake and messages from the [`Handle`] keep flowing. No thread between the
//!   socket and the code that answers, and a burst of requests leaves in one flush: the
//!   faster mode on every throughput figure (`BENCHMARKS.md` in the repository: 64-byte
//!   ping-pong with one client 46.1k against 37.9k messages/s, 50 clients with 32 in
//!   flight 1.31M against 805k, the server on one core), for work that each client does
//!   on its own.
//!
//! ## Rooms across servers (feature `redis`)
//!
//! With `ConfigBuilder::redis("redis://HOST:6379/")`, several servers sharing one Redis
//! share their rooms: [`Handle::publish`], [`publish_except`](Handle::publish_except)
//! and [`broadcast`](Handle::broadcast) reach the members on every server, exactly once
//! each and in the order one server sent them; [`Handle::room_size`] counts the members
//! of every server; `Handle::nodes` names the servers alive. The publishing server
//! delivers to its own members at once and skips its own messages when Redis sends them
//! back. Nothing waits for Redis: a bounded hand-off feeds one publisher thread, one
//! subscriber thread receives, both reconnect with backoff; what cannot go is dropped and
//! counted, never queued without bound.
//!
//! - **Channels**: two per cluster, `PREFIX:messages` (room messages, broadcasts) and
//!   `PREFIX:nodes` (heartbeats, presence), whatever the number of rooms. One channel
//!   per room would spare a server the messages of rooms it does not have, at the price
//!   of a subscribe round trip whenever a room appears on a server, during which a new
//!   member misses messages; with one channel, a member counted in presence on another
//!   server gets everything that server publishes afterwards. Redis spends the same
//!   either way, about 1 µs per `PUBLISH` with three servers; a server skips a message
//!   for a room it does not have in about 30 µs of its subscriber thread, about one
//!   delivery's worth (`bench/NOTES.md`).
//! - **Envelope**: binary, so binary messages travel as they are: a version byte (1), a
//!   kind, the sending server's name, then for a message a flags byte (text or binary),
//!   the sender's connection, the room and the payload: 14 bytes plus the two names.
//!   Another program may publish into rooms by writing the same bytes; the layout is in
//!   `src/hub/backplane/envelope.rs`.
//! - **Presence**: each server sends what changed in its rooms (versioned, at most every
//!   50 ms) and a heartbeat every `redis_heartbeat` (5 s). A server not heard from for
//!   three heartbeats (killed, or cut off) disappears with its members: within 15 s by
//!   default; one that shuts down says goodbye and disappears at once. A server that
//!   sees a version go missing asks everyone for their whole presence again. The
//!   counts show in [`Stats::backplane_nodes`] and on the health endpoint.
//! - **Untrusted input**: whoever can publish on Redis can send anything; every
//!   envelope is checked (lengths, UTF-8, names, [`max_message_size`](ConfigBuilder::max_message_size))
//!   and skipped if it fails ([`Stats::backplane_malformed`]). The redis client holds a
//!   whole message before tinywss sees it: Redis' own `proto-max-bulk-len` and the
//!   subscriber's `client-output-buffer-limit pubsub` (32 MiB by default) bound that.
//! - **TLS and passwords**: `rediss://` on the same rustls (no OpenSSL, no tokio), with
//!   the system's CA certificates or `redis_ca_file`; `redis://:PASSWORD@HOST`. The
//!   password never reaches a log or an error.
//! - **What it costs**: nothing without the feature (`cargo tree` is unchanged). With
//!   it: 39 more crates (21 of them the Unicode tables of `url`'s international domain
//!   names; an application that names Redis by address or ASCII host can drop those with
//!   `cargo update -p idna_adapter --precise 1.0.0`), about 600 KB more in a small
//!   build, and 70 % more CPU for a clean build (`bench/NOTES.md`); two threads per
//!   server, idle except for the heartbeat.
//!
//! ## Threads and shutdown
//!
//! [`Server::bind`] starts one acceptor thread, for every address it listens on; each
//! client gets its own thread once its handshake is done (handshakes run on a few parked
//! workers; the Redis backplane adds two, "tinywss-pub" and "tinywss-sub"). There is no
//! thread in between: [`Handle`] calls queue messages straight onto the clients' queues.
//! [`Server::events`] is a crossbeam `Receiver`, so the application can `select!` it
//! together with its own channels.
//! [`Handle::shutdown`] (or dropping the [`Server`]) closes every client with 1001 and
//! joins all threads within the shutdown timeout; the events channel then ends. Call it
//! from a Ctrl-C/SIGTERM handler (the `ctrlc` crate, as the examples do): otherwise the
//! signal ends the process and every client sees its connection drop without a Close.
//!
//! A panic on a connection thread (a bug, in tinywss or in application code that runs
//! there: the [authentication hook](ConfigBuilder::authenticate), the logger) ends that
//! connection only, and like any other end: a Close event with [`Error::Panicked`] if it
//! was open, out of the routing table and its rooms, its thread and file descriptors
//! released. A panicking authentication hook is answered with HTTP 500. Each is logged
//! at `error` and counted in [`Stats::panics`]. (Built with `panic = "abort"`, a panic
//! ends the process instead.)
//!
//! ## Logging
//!
//! tinywss logs through the `log` crate and installs no logger. No level ever shows a
//! private key, a cookie or authorization value, a query-string value, or a message
//! payload (a test checks a whole session at `trace`). The one text it logs without
//! knowing what it holds is a panic's message, at `error`: the words of the code that
//! panicked (yours, in a hook), which name the bug and which the panic hook prints
//! anyway. Keep secrets out of panic messages.
//!
//! | level | what |
//! |---|---|
//! | `error` | the acceptor stopped working, a renewed certificate refused, a panic on a connection thread (with the connection id and the panic's message) |
//! | `warn`  | certificate problems that do not stop the server, a development certificate in use, plain `ws://`, slow clients closed, accept failures, clients refused or handshakes shed at the limits (at most one line per 10 s; the rest at `debug`); Redis unreachable (once per outage), another server gone silent, messages from Redis skipped or not sent to it (at most one line per 10 s) |
//! | `info`  | server start and shutdown, the certificate in service (subject, expiry, fingerprint) and each renewal, failed handshakes (at most one line per 10 s; the rest at `debug`); Redis connected and back after an outage (with the messages it cost), another server leaving |
//! | `debug` | each connection: TLS version, cipher suite, SNI and ALPN; the HTTP request and the 101 response, header by header; open; the close (who, code, reason, duration, messages and bytes each way) |
//! | `trace` | each frame both ways (target `tinywss::frames`: opcode, FIN, RSV, masked, payload length), each message and control frame |
//!
//! Text that comes from a client (paths, header values, refusal reasons) is logged with
//! control, line-breaking and bidirectional characters escaped (`\u{202e}`), so a request
//! cannot forge or hide a log line.
//!
//! To watch the protocol, run an example with `RUST_LOG=trace`. The examples keep
//! tungstenite's own log at `info` unless `RUST_LOG` names it: its `debug` lines print
//! close reasons and its `trace` lines message payloads. In a program of your own, add
//! `tungstenite=info` to the filter (`RUST_LOG=debug,tungstenite=info`), or filter on
//! `tinywss` alone (`RUST_LOG=tinywss=trace`).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

// The public types.
mod config;
mod error;
mod event;
mod stats;

// The running server: the acceptor and who it lets in, and what the application calls.
mod admission;
mod handle;
mod listen;
mod server;

// What the connection threads and the handles share: routing table, outboxes, rooms,
// the events channel.
mod hub;

// One client's thread, phase by phase: TLS, HTTP, frames; the threads that run them.
mod connection;
mod threads;

// What the phases use: HTTP as pure functions, TLS set-up and certificates, waiting.
mod http;
mod log_limit;
mod tls;
mod wait;

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz;

/// The channel crate of [`Server::events`], re-exported on purpose (it is not 1.0 yet):
/// use this one for `select!` and `tick`, so its version always matches ours.
pub use crossbeam_channel;

pub use config::{Compression, Config, ConfigBuilder, SlowConsumerPolicy};
pub use connection::{Connection, HandlerError, Wakeup};
pub use error::{CertProblem, Error, Timeout, TlsFailure};
pub use event::{CloseReason, ConnectionId, ConnectionInfo, Event, Message};
pub use handle::Handle;
pub use http::{accept_key, websocket_key, AppData, Rejection, Request};
pub use server::Server;
pub use stats::Stats;
pub use tls::{CertificateInfo, ClientAuth, DevelopmentCertificate};

/// The README's examples compile (checked by `cargo test`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
