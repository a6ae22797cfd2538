//! The Redis backplane's setters of [`ConfigBuilder`] (feature `redis`): rooms that span
//! several servers. The backplane itself is in `hub/backplane/`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo};

use super::ConfigBuilder;
use crate::Error;

/// How this server joins a cluster through Redis.
#[derive(Clone)]
pub(crate) struct RedisSettings {
    /// As given: it may hold a password, so it is never shown (see [`display_url`]).
    pub(crate) url: String,
    /// `None`: named after the host and the listening port, once bound.
    pub(crate) node_name: Option<String>,
    pub(crate) channel_prefix: String,
    pub(crate) heartbeat: Duration,
    pub(crate) publish_queue: usize,
    pub(crate) publish_queue_bytes: usize,
    pub(crate) retry_at_start: bool,
    pub(crate) ca_file: Option<PathBuf>,
    /// The CA file's PEM, read and checked by `build`.
    pub(crate) ca_pem: Option<Vec<u8>>,
}

impl RedisSettings {
    fn new(url: String) -> RedisSettings {
        RedisSettings {
            url,
            node_name: None,
            channel_prefix: "tinywss".into(),
            heartbeat: Duration::from_secs(5),
            publish_queue: 1024,
            publish_queue_bytes: 4 << 20,
            retry_at_start: false,
            ca_file: None,
            ca_pem: None,
        }
    }

    /// The URL without credentials, for logs and errors.
    pub(crate) fn display_url(&self) -> String {
        display_url(&self.url)
    }

    fn check(&mut self) -> Result<(), Error> {
        let info = self.url.as_str().into_connection_info().map_err(|e| {
            Error::Config(format!("the redis URL does not parse ({e}); expected redis://[:PASSWORD@]HOST[:PORT][/DB]"))
        })?;
        if matches!(info.addr(), ConnectionAddr::Unix(_)) {
            return Err(Error::Config(
                "the redis backplane speaks TCP (redis:// or rediss://), not a Unix socket".into(),
            ));
        }
        if let Some(name) = &self.node_name {
            check_node_name(name)?;
        }
        if self.channel_prefix.is_empty() || self.channel_prefix.len() > 64 {
            return Err(Error::Config("redis_channel_prefix must be 1 to 64 bytes long".into()));
        }
        if self.heartbeat < Duration::from_millis(100) || self.heartbeat > Duration::from_secs(3600) {
            return Err(Error::Config("redis_heartbeat must be between 100 ms and 1 hour".into()));
        }
        if let Some(path) = &self.ca_file {
            crate::tls::load_certificates(path, "Redis CA")?;
            self.ca_pem = Some(crate::tls::read_file(path, "Redis CA")?);
        }
        Ok(())
    }
}

impl fmt::Debug for RedisSettings {
    // The URL may carry the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.display_url())
            .field("node_name", &self.node_name)
            .field("channel_prefix", &self.channel_prefix)
            .field("heartbeat", &self.heartbeat)
            .field("publish_queue", &self.publish_queue)
            .field("publish_queue_bytes", &self.publish_queue_bytes)
            .field("retry_at_start", &self.retry_at_start)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `scheme://host:port[/db]`: the URL without user name and password (or the words
/// "the redis URL" when it does not parse, since then the password cannot be found).
pub(crate) fn display_url(url: &str) -> String {
    let Ok(info) = url.into_connection_info() else { return "the redis URL".into() };
    let db = info.redis_settings().db();
    let db = if db == 0 { String::new() } else { format!("/{db}") };
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}{db}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}{db}"),
        other => format!("{other}"),
    }
}

/// A node name goes in every envelope and in log lines: 1 to 64 printable ASCII bytes.
fn check_node_name(name: &str) -> Result<(), Error> {
    if (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(Error::Config(format!("redis_node_name {name:?}: use 1 to 64 printable ASCII characters without spaces")))
    }
}

/// The Redis backplane (feature `redis`).
impl ConfigBuilder {
    /// Makes this server one node of a cluster that shares its rooms through Redis
    /// pub/sub: [`Handle::publish`](crate::Handle::publish),
    /// [`publish_except`](crate::Handle::publish_except) and
    /// [`broadcast`](crate::Handle::broadcast) then reach the clients of every server
    /// connected to the same Redis, and [`Handle::room_size`](crate::Handle::room_size)
    /// counts them all. `url` is `redis://[:PASSWORD@]HOST[:PORT][/DB]`, or `rediss://`
    /// for TLS (see [`redis_ca_file`](Self::redis_ca_file)).
    ///
    /// Every node delivers to its own clients at once, in the calling thread, and hands
    /// the message to one publisher thread (a bounded queue: see
    /// [`redis_publish_queue`](Self::redis_publish_queue)); one subscriber thread
    /// receives the other nodes' messages. Nothing waits for Redis: while it is
    /// unreachable, messages for the other servers are dropped and counted in
    /// [`Stats::backplane_dropped`](crate::Stats), the threads reconnect with backoff, and
    /// the outage is logged once. The crate docs ("Rooms across servers") describe the
    /// channels, the envelope and presence.
    ///
    /// For `rediss://`, the redis client takes rustls' process-wide crypto provider;
    /// when the application has installed none, tinywss installs ring's, the one it uses
    /// itself.
    ///
    /// Defaults to none: rooms are this server's alone.
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.redis_settings().url = url.into();
        self
    }

    /// The name of this server in the cluster: unique among the servers sharing a
    /// Redis (each ignores the messages in its own name, as its own echo), 1 to 64
    /// printable ASCII characters. It shows in [`Handle::nodes`](crate::Handle::nodes)
    /// and in the other servers' logs.
    ///
    /// Defaults to the host name and the listening port (`"web-1:8443"`): unique per
    /// machine, and the same after a restart, so a restarted server takes its own place
    /// in presence at once instead of counting twice until the old one times out.
    pub fn redis_node_name(mut self, name: impl Into<String>) -> Self {
        self.redis_settings().node_name = Some(name.into());
        self
    }

    /// The first part of the cluster's channel names (`PREFIX:messages`,
    /// `PREFIX:nodes`), so that several applications can share one Redis.
    ///
    /// Defaults to `"tinywss"`.
    pub fn redis_channel_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.redis_settings().channel_prefix = prefix.into();
        self
    }

    /// How often this server tells the others it is alive. A server not heard from for
    /// three heartbeats (killed, or cut off from Redis) leaves the others' presence with
    /// its members; one that shuts down says goodbye and leaves at once. The heartbeat is
    /// also how long a Redis command may take before Redis counts as unreachable (at
    /// least 1 s). Between 100 ms and 1 hour.
    ///
    /// Defaults to 5 s: a killed server leaves presence within 15 s, and an idle
    /// backplane wakes each of its two threads about once per 5 s per server.
    pub fn redis_heartbeat(mut self, interval: Duration) -> Self {
        self.redis_settings().heartbeat = interval;
        self
    }

    /// The most messages waiting for the publisher thread. While Redis is slow, what
    /// does not fit is dropped (this server's clients still get it) and counted in
    /// [`Stats::backplane_dropped`](crate::Stats); the caller never waits.
    ///
    /// Defaults to 1,024.
    pub fn redis_publish_queue(mut self, messages: usize) -> Self {
        self.redis_settings().publish_queue = messages.max(1);
        self
    }

    /// The most bytes (payloads and room names) waiting for the publisher thread; past
    /// it, as for [`redis_publish_queue`](Self::redis_publish_queue). One larger message
    /// still goes when nothing else waits.
    ///
    /// Defaults to 4 MiB.
    pub fn redis_publish_queue_bytes(mut self, bytes: usize) -> Self {
        self.redis_settings().publish_queue_bytes = bytes.max(1);
        self
    }

    /// Whether [`Server::bind`](crate::Server::bind) starts while Redis is unreachable.
    /// `false`: it fails with [`Error::Redis`], naming the URL (a wrong address or
    /// password shows at once). `true`: the server serves its own clients at once and
    /// joins the cluster when Redis answers; until then messages for the other servers
    /// are dropped and counted.
    ///
    /// Defaults to `false`.
    pub fn redis_retry_at_start(mut self, retry: bool) -> Self {
        self.redis_settings().retry_at_start = retry;
        self
    }

    /// The CA certificate (PEM) that signed the Redis server's certificate, for
    /// `rediss://` with a private CA (a self-hosted Redis). Read and checked by
    /// [`build`](Self::build), like the server's own certificate files.
    ///
    /// Defaults to none: the system's CA certificates are trusted.
    pub fn redis_ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.redis_settings().ca_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// The settings the `redis_*` setters change; [`redis`](Self::redis) gives the URL.
    fn redis_settings(&mut self) -> &mut RedisSettings {
        self.redis.get_or_insert_with(|| RedisSettings::new(String::new()))
    }
}

/// Checks the backplane's settings, if any were given.
pub(super) fn checked(settings: Option<RedisSettings>) -> Result<Option<RedisSettings>, Error> {
    match settings {
        Some(settings) if settings.url.is_empty() => {
            Err(Error::Config("redis_* settings were given without ConfigBuilder::redis(URL)".into()))
        }
        Some(mut settings) => settings.check().map(|()| Some(settings)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(display_url("redis://:pw@127.0.0.1:6380/2"), "redis://127.0.0.1:6380/2");
        assert_eq!(display_url("rediss://user:pw@cache.example:6379"), "rediss://cache.example:6379");
        assert_eq!(display_url("not a url with a pw"), "the redis URL");
    }

    #[test]
    fn settings_are_checked() {
        let bad = |b: ConfigBuilder| b.plain_ws_behind_proxy(true).build().unwrap_err().to_string();
        assert!(bad(ConfigBuilder::default().redis("http://x")).contains("redis URL"));
        assert!(bad(ConfigBuilder::default().redis("redis+unix:///tmp/r.sock")).contains("Unix socket"));
        assert!(bad(ConfigBuilder::default().redis_node_name("a")).contains("without ConfigBuilder::redis"));
        assert!(bad(ConfigBuilder::default().redis("redis://h").redis_node_name("two words")).contains("node_name"));
        assert!(bad(ConfigBuilder::default().redis("redis://h").redis_heartbeat(Duration::ZERO)).contains("heartbeat"));
        let ok = ConfigBuilder::default().redis("redis://:pw@h").plain_ws_behind_proxy(true).build().unwrap();
        assert!(!format!("{ok:?}").contains("pw"), "{ok:?}");
    }
}
