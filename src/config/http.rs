//! The HTTP setters of [`ConfigBuilder`]: which paths are WebSocket endpoints, who may
//! connect (Origin, the authentication hook), subprotocols, health and static files.

use std::path::PathBuf;
use std::sync::Arc;

use super::ConfigBuilder;
use crate::http::{AppData, Rejection, Request};

/// The HTTP Upgrade and what else the port serves.
impl ConfigBuilder {
    /// Adds subprotocols (`Sec-WebSocket-Protocol`) the server speaks, most preferred
    /// first; a later call adds less preferred ones. The first one in the list that the
    /// client also offers is selected and reported in
    /// [`ConnectionInfo::subprotocol`](crate::ConnectionInfo).
    ///
    /// Defaults to none: no subprotocol is ever selected.
    pub fn subprotocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.policy.subprotocols.extend(protocols.into_iter().map(Into::into));
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

    /// Adds web pages allowed to open WebSockets here, by origin (e.g.
    /// `"https://example.com"`); a later call adds more. Others get 403 and are counted in
    /// [`Stats::origin_refused`](crate::Stats). Requests without an `Origin` header
    /// (clients other than browsers) are not affected.
    ///
    /// `http` and `https` origins compare as browsers mean them: scheme and host without
    /// regard to case, and a default port written or not (`https://example.com:443` is
    /// `https://example.com`). Other entries (an extension's `chrome-extension://…`,
    /// `null`) compare as text. An entry that no browser could send, such as
    /// `"https://example.com/"` (a path) or `"example.com"` (no scheme), makes
    /// [`build`](Self::build) fail rather than refuse every page.
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
    /// thread, so it may block briefly (on a database, say) without holding up other
    /// clients. It returns `Ok(None)` to accept, `Ok(Some(data))` to accept and attach
    /// `data` to every event of the connection, or `Err` to refuse with an HTTP status and
    /// body.
    ///
    /// Its time counts toward the [handshake timeout](Self::handshake_timeout), but the
    /// hook is not cut short: it is your code, and runs to its end. A hook that accepts
    /// after the deadline has passed gets its client `503 Service Unavailable`, counted in
    /// [`Stats::handshakes_timed_out`](crate::Stats); a refusal is sent as it is, however
    /// late. So bound your own waits (a query timeout) well within the handshake timeout.
    ///
    /// A hook that panics (an `unwrap` on a missing query parameter, say) gets its client
    /// `500 Internal Server Error`; the panic is logged at `error` with the connection id
    /// and its message, counted in [`Stats::panics`](crate::Stats), and the server carries
    /// on. (Built with `panic = "abort"`, a panic ends the process instead.)
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
    /// Files are read with blocking file I/O on the connection's own thread. The request
    /// must arrive within the [handshake timeout](Self::handshake_timeout); the response
    /// has bounds of its own: each 16 KiB must leave within the
    /// [write timeout](Self::write_timeout), so a large file to a slow client may take
    /// longer than the handshake timeout. Opening and reading the file have no time limit
    /// (a hung network file system holds that one connection's thread, no other). A file
    /// is sent with the length it has when opened: bytes added meanwhile are not sent,
    /// and if it shrinks, the connection ends after what is left (the client sees a body
    /// shorter than its `Content-Length`).
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
}

#[cfg(test)]
mod tests {
    use super::ConfigBuilder;

    #[test]
    fn list_setters_add_to_their_list() {
        let builder = ConfigBuilder::default()
            .subprotocols(["v2"])
            .subprotocols(["v1"])
            .allowed_origins(["https://a.example"])
            .allowed_origins(["https://b.example"])
            .websocket_path("/a")
            .websocket_path("/b");
        assert_eq!(builder.policy.subprotocols, ["v2", "v1"]);
        assert_eq!(builder.policy.allowed_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(builder.policy.websocket_paths, ["/a", "/b"]);
    }
}
