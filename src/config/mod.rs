//! [`Config`] and its builder: every limit and timeout, with defaults sized for small devices.
//!
//! The setters come in three groups, one file each: `limits.rs` (sizes, queues,
//! timeouts), `http.rs` (endpoints, Origin, authentication, files) and `tls.rs`
//! (certificates and TLS options). `build` checks them and loads the certificates.

mod compression;
mod http;
mod limits;
#[cfg(feature = "redis")]
mod redis;
mod tls;

#[cfg(feature = "redis")]
pub(crate) use redis::RedisSettings;

use std::fmt;
use std::time::Duration;

use crate::http::Policy;
use crate::listen::Addresses;
use crate::tls::{Setup, TlsSettings};
use crate::Error;
pub use compression::Compression;

/// How a [`Server`](crate::Server) runs. Build one with [`Config::builder`].
///
/// Building loads and checks the TLS certificate and key, so certificate problems
/// surface at start-up, naming the file at fault, not at the first client.
#[derive(Clone)]
pub struct Config {
    pub(crate) bind: Addresses,
    pub(crate) tls: Setup,
    pub(crate) limits: Limits,
    pub(crate) policy: Policy,
    /// The Redis backplane, when this server is one node of a cluster.
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<RedisSettings>,
}

/// The limits and timeouts the server works with (shared by every thread through `Context`).
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) max_handshakes: usize,
    /// `None`: no limit per address.
    pub(crate) max_connections_per_ip: Option<usize>,
    pub(crate) max_handshakes_per_ip: Option<usize>,
    pub(crate) max_message_size: usize,
    pub(crate) max_frame_size: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) outbound_queue: usize,
    pub(crate) outbound_queue_bytes: usize,
    pub(crate) slow_consumer: SlowConsumerPolicy,
    /// Whether a sending thread may write to a sleeping connection itself (events mode).
    pub(crate) write_through: bool,
    pub(crate) write_timeout: Duration,
    pub(crate) events_capacity: usize,
    pub(crate) events_bytes: usize,
    pub(crate) max_request_head: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) thread_stack_size: usize,
    /// `None`: no permessage-deflate.
    pub(crate) compression: Option<Compression>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_handshakes: 64,
            max_connections_per_ip: Some(64),
            max_handshakes_per_ip: Some(16),
            max_message_size: 1 << 20,
            max_frame_size: 1 << 20,
            read_buffer_size: 1 << 10,
            write_buffer_size: 8 << 10,
            outbound_queue: 64,
            outbound_queue_bytes: 1 << 20,
            slow_consumer: SlowConsumerPolicy::Close,
            write_through: true,
            write_timeout: Duration::from_secs(10),
            events_capacity: 1024,
            events_bytes: 4 << 20,
            max_request_head: 8 << 10,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(10),
            idle_timeout: None,
            close_timeout: Duration::from_secs(3),
            shutdown_timeout: Duration::from_secs(5),
            thread_stack_size: 256 << 10,
            compression: None,
        }
    }
}

impl Config {
    /// Starts a builder with every default in place; only the TLS identity is required.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The first address the server will listen on, as configured (see
    /// [`bind_addrs`](Self::bind_addrs) for all of them).
    pub fn bind_addr(&self) -> &str {
        self.bind.as_slice().first().map_or("", String::as_str)
    }

    /// Every address the server will listen on, in order: those given to
    /// [`ConfigBuilder::bind`], or the default pair.
    pub fn bind_addrs(&self) -> &[String] {
        self.bind.as_slice()
    }
}

impl fmt::Debug for Config {
    // The rustls config holds the private key: show only what is safe to log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Config");
        f.field("bind", &self.bind.as_slice())
            .field("tls", &"<certificate and key>")
            .field("limits", &self.limits)
            .field("policy", &self.policy);
        #[cfg(feature = "redis")]
        f.field("redis", &self.redis);
        f.finish()
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
/// Setters that take a list add to it: [`bind`](Self::bind),
/// [`subprotocols`](Self::subprotocols), [`allowed_origins`](Self::allowed_origins),
/// [`websocket_path`](Self::websocket_path) and [`sni_pem_files`](Self::sni_pem_files)
/// can be called again to add more. All the other setters replace the value.
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
    /// Empty: the default addresses.
    bind: Vec<String>,
    /// Set by the setters in `tls.rs`.
    tls: TlsSettings,
    /// Set by the setters in `limits.rs`.
    limits: Limits,
    /// Whether a per-address limit was set: if not, `build` lifts them for plain `ws://`
    /// behind a proxy, where every client has the proxy's address.
    per_ip_chosen: bool,
    /// Set by the setters in `http.rs`.
    policy: Policy,
    /// Set by the setters in `redis.rs`.
    #[cfg(feature = "redis")]
    redis: Option<RedisSettings>,
}

impl ConfigBuilder {
    /// An address to listen on, e.g. `"0.0.0.0:443"`. Called once, the server listens
    /// on that address only; each further call adds one (a socket each, all served
    /// alike), e.g. `.bind("0.0.0.0:443").bind("[::]:443")` for IPv4 and IPv6 from
    /// everywhere, where the system keeps the two apart (`net.ipv6.bindv6only`; on
    /// Linux, `[::]` alone usually takes IPv4 too, and the second then fails to bind).
    /// Port 0 picks a free port, one per address; read them back with
    /// [`Server::local_addrs`](crate::Server::local_addrs).
    ///
    /// Defaults to `"127.0.0.1:8443"` and `"[::1]:8443"`: both loopback addresses, so
    /// `wss://localhost:8443/` works whichever of the two a client tries, and nothing
    /// outside this machine reaches the server. (On a machine without IPv6 the second
    /// is skipped, with a line in the log.)
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.bind.push(addr.into());
        self
    }

    /// Checks the settings and loads every certificate, key and CA file. Problems that
    /// do not stop the server (a certificate that expires soon, does not cover the
    /// [`public_host_name`](Self::public_host_name), or comes without its intermediate)
    /// are logged as warnings.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when no TLS identity was given, or an allowed origin is not
    /// one (a path, a missing scheme); [`Error::TlsFile`] when a file
    /// is missing, holds no usable certificate or key, or the certificate is expired or
    /// not valid yet; [`Error::KeyMismatch`] when the key does not belong to the certificate.
    pub fn build(self) -> Result<Config, Error> {
        if self.limits.max_message_size == 0 || self.limits.max_frame_size == 0 {
            return Err(Error::Config("max_message_size and max_frame_size must be at least 1 byte".into()));
        }
        if self.limits.compression.is_some() && !cfg!(feature = "deflate") {
            return Err(Error::Config("compression needs tinywss's `deflate` cargo feature".into()));
        }
        if let Some(dir) = &self.policy.static_dir {
            if !dir.is_dir() {
                return Err(Error::Config(format!("static_dir {} is not a directory", dir.display())));
            }
        }
        if let Some(why) = self.policy.allowed_origins.iter().find_map(|origin| crate::http::unusable_origin(origin)) {
            return Err(Error::Config(why));
        }
        #[cfg(feature = "redis")]
        let redis = redis::checked(self.redis)?;
        let tls = self.tls.build()?;
        let bind = Addresses::new(self.bind);
        let mut limits = self.limits;
        if tls.is_plain() && !self.per_ip_chosen {
            limits.max_connections_per_ip = None;
            limits.max_handshakes_per_ip = None;
        }
        let policy = Policy { plain_ws: tls.is_plain(), ..self.policy };
        Ok(Config {
            bind,
            tls,
            limits,
            policy,
            #[cfg(feature = "redis")]
            redis,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behind_a_proxy_the_per_address_limits_are_lifted_unless_set() {
        let plain = || Config::builder().plain_ws_behind_proxy(true);
        let limits = plain().build().unwrap().limits;
        assert_eq!((limits.max_connections_per_ip, limits.max_handshakes_per_ip), (None, None));
        let limits = plain().max_connections_per_ip(Some(5)).build().unwrap().limits;
        assert_eq!((limits.max_connections_per_ip, limits.max_handshakes_per_ip), (Some(5), Some(16)));
    }

    #[test]
    fn compression_is_refused_without_the_deflate_feature() {
        let config =
            Config::builder().plain_ws_behind_proxy(true).compression(Some(Compression::no_context_takeover())).build();
        assert_eq!(config.is_err(), !cfg!(feature = "deflate"));
    }
}
