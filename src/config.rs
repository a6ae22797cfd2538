//! [`Config`] and its builder: every limit and timeout, with defaults sized for small devices.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::policy::{AppData, Policy, Rejection};
use crate::tls::{self, TlsSettings};
use crate::{Error, Request};

/// How a [`Server`](crate::Server) runs. Build one with [`Config::builder`].
///
/// Building loads and checks the TLS certificate and key, so certificate problems
/// surface at start-up, naming the file at fault, not at the first client.
#[derive(Clone)]
pub struct Config {
    pub(crate) bind: String,
    pub(crate) tls: tls::Setup,
    pub(crate) limits: Limits,
    pub(crate) policy: Policy,
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
    pub(crate) outbound_queue_bytes: usize,
    pub(crate) slow_consumer: SlowConsumerPolicy,
    pub(crate) write_timeout: Duration,
    pub(crate) events_capacity: usize,
    pub(crate) max_request_head: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) thread_stack_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_message_size: 1 << 20,
            max_frame_size: 1 << 20,
            read_buffer_size: 1 << 10,
            write_buffer_size: 8 << 10,
            outbound_queue: 64,
            outbound_queue_bytes: 1 << 20,
            slow_consumer: SlowConsumerPolicy::Close,
            write_timeout: Duration::from_secs(10),
            events_capacity: 1024,
            max_request_head: 8 << 10,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(10),
            idle_timeout: None,
            close_timeout: Duration::from_secs(3),
            shutdown_timeout: Duration::from_secs(5),
            thread_stack_size: 256 << 10,
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
            .field("policy", &self.policy)
            .finish()
    }
}

/// What to do with a client that does not read as fast as the application sends.
///
/// Either way the message that did not fit is counted in [`Stats::dropped`](crate::Stats),
/// and nothing waits for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowConsumerPolicy {
    /// Close the client with 1013 (Try Again Later) and count it in
    /// [`Stats::slow_consumer_closes`](crate::Stats). Best when every message matters:
    /// the client reconnects and resynchronises instead of silently missing data.
    Close,
    /// Drop the message that did not fit and keep the client. Best for streams where
    /// a newer message replaces an older one (prices, positions).
    DropNewest,
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
    policy: Policy,
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
    /// the life of the connection, idle or not.
    ///
    /// Defaults to 1 KiB (tungstenite's own default of 128 KiB costs ~180 KiB per idle
    /// client). A larger one saves no system calls: the bytes are copied from rustls'
    /// buffer of decrypted data, and a message longer than the buffer is read into one
    /// of its own size.
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

    /// How many outgoing messages may wait for one client whose socket is full (it
    /// reads too slowly). Then the [`slow_consumer_policy`](Self::slow_consumer_policy)
    /// applies: one slow client never holds back the application or the others. While
    /// the client's socket still takes bytes, the connection thread is only waiting for
    /// a CPU, and up to four times as many may wait (the byte bound,
    /// [`outbound_queue_bytes`](Self::outbound_queue_bytes), holds either way).
    ///
    /// Defaults to `64`.
    pub fn outbound_queue(mut self, messages: usize) -> Self {
        self.limits.outbound_queue = messages.max(1);
        self
    }

    /// How many payload bytes may wait for one client, whether or not its socket is
    /// full: this bounds the memory a client can hold. A message larger than this is
    /// still accepted when the client's queue is empty, so any message can be sent once.
    ///
    /// Defaults to 1 MiB.
    pub fn outbound_queue_bytes(mut self, bytes: usize) -> Self {
        self.limits.outbound_queue_bytes = bytes;
        self
    }

    /// What happens to a client whose outbound queue is full.
    ///
    /// Defaults to [`SlowConsumerPolicy::Close`].
    pub fn slow_consumer_policy(mut self, policy: SlowConsumerPolicy) -> Self {
        self.limits.slow_consumer = policy;
        self
    }

    /// How long a write to a client may make no progress at all (the client's TCP
    /// window stays closed) before the connection is dropped.
    ///
    /// Defaults to 10 seconds.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.limits.write_timeout = timeout;
        self
    }

    /// How many events may wait for the application in [`Server::events`](crate::Server::events).
    /// When the application falls behind, connection threads wait (and TCP slows the
    /// clients down); nothing is dropped. The channel allocates its slots up front
    /// (about 150 bytes each); too small a channel makes busy connection threads wait
    /// one event at a time (measured: 256 instead of 1,024 cut pipelined echo throughput
    /// by more than half).
    ///
    /// Defaults to `1024`.
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

    /// The stack size of the short-lived thread that does each client's TLS and HTTP
    /// handshake, the deepest work of a connection; the connection thread that then serves
    /// the WebSocket gets 64 KiB more (so that it never reuses a handshake thread's
    /// stack, see `connection::stack_size`). Only the pages a thread touches cost memory;
    /// the size bounds the worst case.
    ///
    /// Defaults to 256 KiB (a debug build's TLS handshake needs more than 128 KiB).
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.limits.thread_stack_size = bytes.max(64 << 10);
        self
    }

    /// The subprotocols (`Sec-WebSocket-Protocol`) the server speaks, most preferred
    /// first. The first one in this list that the client also offers is selected and
    /// reported in [`ConnectionInfo::subprotocol`](crate::ConnectionInfo).
    ///
    /// Defaults to none: no subprotocol is ever selected.
    pub fn subprotocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.policy.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Makes `path` (e.g. `"/ws"`) a WebSocket endpoint; call once per path. Upgrade
    /// requests for other paths get 404.
    ///
    /// Defaults to none set, meaning every path is a WebSocket endpoint.
    pub fn websocket_path(mut self, path: impl Into<String>) -> Self {
        self.policy.websocket_paths.push(path.into());
        self
    }

    /// Web pages allowed to open WebSockets here, by exact origin (e.g.
    /// `"https://example.com"`); others get 403 and are counted in
    /// [`Stats::origin_refused`](crate::Stats). Requests without an `Origin` header
    /// (clients other than browsers) are not affected.
    ///
    /// Why it matters: browsers send the user's cookies with a WebSocket handshake from
    /// any page, and the same-origin policy does not apply to WebSockets. Without an
    /// Origin check, any site the user visits can connect as that user (cross-site
    /// WebSocket hijacking). Set this, or [`allow_same_origin`](Self::allow_same_origin),
    /// whenever cookies or other ambient credentials authenticate your users.
    ///
    /// Defaults to none set: any origin is accepted.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.policy.allowed_origins.extend(origins.into_iter().map(Into::into));
        self
    }

    /// Accepts pages served by this same server: the `Origin` is `https` with the host
    /// and port of the request's `Host` header. Host names compare case-insensitively, and
    /// a port left out is the scheme's default (`https://example.com` matches
    /// `Host: example.com:443`). Combines with [`allowed_origins`](Self::allowed_origins).
    ///
    /// Same origin means the same scheme too: a page on plain `http` for the same host is
    /// refused, since anyone on its network path can rewrite it into a page that talks to
    /// this server with the user's cookies. So are other schemes, a bare host, and the
    /// opaque origin `null` (sandboxed frames, `file:` pages). With
    /// [`plain_ws_behind_proxy`](Self::plain_ws_behind_proxy), `http` pages (port 80 by
    /// default) are accepted as well as `https`: only the proxy knows which scheme the
    /// browser used, so have it redirect `http` to `https`, and pass the browser's `Host`
    /// header through unchanged (nginx: `proxy_set_header Host $http_host;`).
    ///
    /// Defaults to `false` (with no allowed origins set, any origin is accepted).
    pub fn allow_same_origin(mut self, allow: bool) -> Self {
        self.policy.same_origin = allow;
        self
    }

    /// Decides who may connect. The hook sees each Upgrade request (path, query,
    /// headers, cookies, peer address) after the Origin check, on the connection's own
    /// thread (it may block briefly, e.g. on a database, without holding up others; the
    /// handshake timeout still runs). It returns `Ok(None)` to accept, `Ok(Some(data))`
    /// to accept and attach `data` to every event of the connection, or `Err` to refuse
    /// with an HTTP status and body.
    ///
    /// Defaults to none: every valid Upgrade request is accepted.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use tinywss::{Config, Rejection};
    ///
    /// struct User(String);
    /// let config = Config::builder()
    ///     .tls_pem_files("certs/server.pem", "certs/server.key")
    ///     .authenticate(|request| match request.query_param("token") {
    ///         Some("let-me-in") => Ok(Some(Arc::new(User("alice".into())) as tinywss::AppData)),
    ///         _ => Err(Rejection::new(401, "a valid ?token= is required")),
    ///     })
    ///     .build()?;
    /// # Ok::<(), tinywss::Error>(())
    /// ```
    pub fn authenticate<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Request) -> Result<Option<AppData>, Rejection> + Send + Sync + 'static,
    {
        self.policy.auth = Some(Arc::new(hook));
        self
    }

    /// The path of the health endpoint: a plain `GET` answers JSON with the uptime and
    /// the number of open WebSocket connections. `None` turns it off.
    ///
    /// Defaults to `Some("/healthz")`.
    pub fn health_path(mut self, path: Option<&str>) -> Self {
        self.policy.health_path = path.map(str::to_owned);
        self
    }

    /// Serves files from this directory to plain `GET`/`HEAD` requests on the same port
    /// (a page that opens the WebSocket, say). `/` and directories serve `index.html`.
    /// Paths that try to leave the directory (`..`, encoded or not, links pointing
    /// outside) get 404, and so do hidden files and folders unless
    /// [`serve_hidden_files`](Self::serve_hidden_files) is set.
    ///
    /// Defaults to none: no files are served.
    pub fn static_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.policy.static_dir = Some(dir.into());
        self
    }

    /// Serves hidden files and folders from the [`static_dir`](Self::static_dir): those
    /// whose name in the URL path, or the name of a folder on that path, starts with `.`
    /// (`/.env`, `/.git/config`, `/.well-known/security.txt`). Otherwise they get 404,
    /// as if absent: such files tend to hold what was never meant to be published
    /// (passwords in `.env`, a whole repository in `.git/`).
    ///
    /// `/.well-known/` (ACME challenges, `security.txt`) is the usual reason to turn this
    /// on; when you do, keep no other hidden file or folder in the directory.
    ///
    /// Defaults to `false`.
    pub fn serve_hidden_files(mut self, serve: bool) -> Self {
        self.policy.serve_hidden_files = serve;
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
        if self.limits.max_message_size == 0 || self.limits.max_frame_size == 0 {
            return Err(Error::Config("max_message_size and max_frame_size must be at least 1 byte".into()));
        }
        if let Some(dir) = &self.policy.static_dir {
            if !dir.is_dir() {
                return Err(Error::Config(format!("static_dir {} is not a directory", dir.display())));
            }
        }
        let tls = self.tls.build()?;
        let bind = self.bind.unwrap_or_else(|| "127.0.0.1:8443".into());
        let policy = Policy { plain_ws: tls.is_plain(), ..self.policy };
        Ok(Config { bind, tls, limits: self.limits, policy })
    }
}
