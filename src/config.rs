//! [`Config`] and its builder: every limit and timeout, with defaults sized for small devices.

use std::fmt;
use std::time::Duration;

use crate::tls::{self, TlsSettings};
use crate::Error;

/// How a [`Server`](crate::Server) runs. Build one with [`Config::builder`].
///
/// Building loads and checks the TLS certificate and key, so certificate problems
/// surface at start-up, naming the file at fault, not at the first client.
#[derive(Clone)]
pub struct Config {
    pub(crate) bind: String,
    pub(crate) tls: tls::Setup,
    pub(crate) limits: Limits,
}

/// The limits and timeouts a connection thread works with (copied into each thread).
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) max_message_size: usize,
    pub(crate) max_frame_size: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) outbound_queue: usize,
    pub(crate) events_capacity: usize,
    pub(crate) max_request_head: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) thread_stack_size: usize,
    pub(crate) subprotocols: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_message_size: 1 << 20,
            max_frame_size: 1 << 20,
            read_buffer_size: 4 << 10,
            write_buffer_size: 8 << 10,
            outbound_queue: 64,
            events_capacity: 256,
            max_request_head: 8 << 10,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(10),
            idle_timeout: None,
            close_timeout: Duration::from_secs(3),
            shutdown_timeout: Duration::from_secs(5),
            thread_stack_size: 256 << 10,
            subprotocols: Vec::new(),
        }
    }
}

impl Config {
    /// Starts a builder with every default in place; only the TLS identity is required.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The address the server will listen on, as configured.
    pub fn bind_addr(&self) -> &str {
        &self.bind
    }
}

impl fmt::Debug for Config {
    // The rustls config holds the private key: show only what is safe to log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("tls", &"<certificate and key>")
            .field("limits", &self.limits)
            .finish()
    }
}

/// Builds a [`Config`]. Every setter names its default.
///
/// ```no_run
/// use std::time::Duration;
/// let config = tinywss::Config::builder()
///     .bind("0.0.0.0:8443")
///     .tls_pem_files("certs/server.pem", "certs/server.key")
///     .max_message_size(64 * 1024)
///     .ping_interval(Some(Duration::from_secs(20)))
///     .build()?;
/// # Ok::<(), tinywss::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ConfigBuilder {
    bind: Option<String>,
    /// Set through the TLS setters in `tls/settings.rs`.
    pub(crate) tls: TlsSettings,
    limits: Limits,
}

impl ConfigBuilder {
    /// The address to listen on, e.g. `"0.0.0.0:443"`; port 0 picks a free port
    /// (read it back with [`Server::local_addr`](crate::Server::local_addr)).
    ///
    /// Defaults to `"127.0.0.1:8443"`: reachable from this machine only.
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.bind = Some(addr.into());
        self
    }

    /// The most clients served at once; further clients are refused right after
    /// `accept`, before any TLS work, and counted in [`Stats::refused`](crate::Stats).
    ///
    /// Defaults to `256`.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.limits.max_connections = n;
        self
    }

    /// The largest message a client may send, after reassembly of fragments. A larger
    /// one closes the connection with 1009 (Message Too Big).
    ///
    /// Defaults to 1 MiB. Each connection may hold up to this much while a message arrives.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.limits.max_message_size = bytes;
        self
    }

    /// The largest single frame a client may send. The limit is checked on the frame
    /// header, before any payload is buffered. A larger frame closes with 1009.
    ///
    /// Defaults to 1 MiB. A frame can never be larger than a message: the smaller of
    /// the two limits applies to frames.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.limits.max_frame_size = bytes;
        self
    }

    /// How many bytes each connection reads from TLS at a time. This buffer is held for
    /// the life of the connection: it is the largest part of an idle connection's memory.
    ///
    /// Defaults to 4 KiB (tungstenite's own default of 128 KiB costs ~180 KiB per idle client).
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.limits.read_buffer_size = bytes.max(256);
        self
    }

    /// How many bytes of outgoing frames are gathered before they are handed to TLS;
    /// larger batches mean fewer TLS records when many small messages are queued.
    ///
    /// Defaults to 8 KiB.
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.limits.write_buffer_size = bytes;
        self
    }

    /// How many outgoing messages may wait for one client. When a client reads too
    /// slowly and its queue is full, it is closed with 1013 (Try Again Later) and the
    /// message is counted as dropped: one slow client never holds back the others.
    ///
    /// Defaults to `64`.
    pub fn outbound_queue(mut self, messages: usize) -> Self {
        self.limits.outbound_queue = messages.max(1);
        self
    }

    /// How many events may wait for the application in [`Server::events`](crate::Server::events).
    /// When the application falls behind, connection threads wait (and TCP slows the
    /// clients down); nothing is dropped.
    ///
    /// Defaults to `256`.
    pub fn events_capacity(mut self, events: usize) -> Self {
        self.limits.events_capacity = events.max(1);
        self
    }

    /// The largest HTTP Upgrade request head accepted, in bytes; a larger one gets
    /// HTTP 431.
    ///
    /// Defaults to 8 KiB.
    pub fn max_request_head(mut self, bytes: usize) -> Self {
        self.limits.max_request_head = bytes;
        self
    }

    /// One deadline for the TLS handshake and the HTTP Upgrade together, counted from
    /// `accept`. A client that is slower (or sends nothing) is disconnected.
    ///
    /// Defaults to 10 seconds.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.limits.handshake_timeout = timeout;
        self
    }

    /// After this long without any frame from a client, the server sends a Ping;
    /// `None` disables keepalive pings.
    ///
    /// Defaults to 30 seconds, below the idle timeouts of common NAT routers and proxies.
    pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.limits.ping_interval = interval;
        self
    }

    /// How long the server waits for any frame (normally the Pong) after a keepalive
    /// Ping before it gives the client up for dead.
    ///
    /// Defaults to 10 seconds.
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.limits.pong_timeout = timeout;
        self
    }

    /// Closes (1000, "idle timeout") a connection that sent no data message for this
    /// long, even if it answers pings. `None` disables it.
    ///
    /// Defaults to `None`: push-only clients legitimately never send, and keepalive
    /// already finds dead peers.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// How long the server waits for the client's Close reply (and for the last bytes
    /// to leave) before it drops the TCP connection anyway.
    ///
    /// Defaults to 3 seconds.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.limits.close_timeout = timeout;
        self
    }

    /// How long [`Handle::shutdown`](crate::Handle::shutdown) waits for every
    /// connection thread to finish its close handshake.
    ///
    /// Defaults to 5 seconds.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.limits.shutdown_timeout = timeout;
        self
    }

    /// The stack size of each connection thread. Only the pages a thread touches cost
    /// memory; the size bounds the worst case.
    ///
    /// Defaults to 256 KiB (a debug build's TLS handshake needs more than 128 KiB).
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.limits.thread_stack_size = bytes.max(64 << 10);
        self
    }

    /// The subprotocols (`Sec-WebSocket-Protocol`) the server speaks, most preferred
    /// first. The first one in this list that the client also offers is selected.
    ///
    /// Defaults to none: clients that require a subprotocol get none back.
    pub fn subprotocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.limits.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Checks the settings and loads every certificate, key and CA file. Problems that
    /// do not stop the server (a certificate that expires soon, does not cover the
    /// [`public_host_name`](Self::public_host_name), or comes without its intermediate)
    /// are logged as warnings.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when no TLS identity was given; [`Error::TlsFile`] when a file
    /// is missing, holds no usable certificate or key, or the certificate is expired or
    /// not valid yet; [`Error::KeyMismatch`] when the key does not belong to the certificate.
    pub fn build(self) -> Result<Config, Error> {
        let tls = self.tls.build()?;
        Ok(Config { bind: self.bind.unwrap_or_else(|| "127.0.0.1:8443".into()), tls, limits: self.limits })
    }
}
