//! Who may connect, and where a request goes: routing, the Origin check, the
//! authentication hook.

use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::request::Request;
use super::response::Rejection;

/// A value the [authentication hook](crate::ConfigBuilder::authenticate) attaches to a
/// connection: it comes back with every event of that connection. Downcast it with
/// `data.downcast_ref::<T>()`.
pub type AppData = Arc<dyn Any + Send + Sync>;

/// The authentication hook: runs on the connection's own thread for every Upgrade request.
pub(crate) type AuthHook = Arc<dyn Fn(&Request) -> Result<Option<AppData>, Rejection> + Send + Sync>;

/// Where one request goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// A WebSocket Upgrade on a WebSocket path.
    WebSocket,
    /// The health endpoint.
    Health,
    /// A file under the static directory.
    File(PathBuf),
    /// A plain request for a WebSocket path: answered with a short 426 page.
    WebSocketPage,
    /// A method other than GET/HEAD for a plain request.
    MethodNotAllowed,
    /// Anything else.
    NotFound,
}

/// The handshake policy, from the configuration.
#[derive(Clone)]
pub(crate) struct Policy {
    /// Empty: every path is a WebSocket endpoint.
    pub(crate) websocket_paths: Vec<String>,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) same_origin: bool,
    /// The server speaks plain `ws://` behind a TLS-terminating proxy: same-origin pages
    /// may then be `http` as well as `https`.
    pub(crate) plain_ws: bool,
    pub(crate) auth: Option<AuthHook>,
    pub(crate) health_path: Option<String>,
    pub(crate) static_dir: Option<PathBuf>,
    /// Files and folders whose name starts with `.` are served from `static_dir`.
    pub(crate) serve_hidden_files: bool,
    pub(crate) subprotocols: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            websocket_paths: Vec::new(),
            allowed_origins: Vec::new(),
            same_origin: false,
            plain_ws: false,
            auth: None,
            health_path: Some("/healthz".into()),
            static_dir: None,
            serve_hidden_files: false,
            subprotocols: Vec::new(),
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("websocket_paths", &self.websocket_paths)
            .field("allowed_origins", &self.allowed_origins)
            .field("same_origin", &self.same_origin)
            .field("plain_ws", &self.plain_ws)
            .field("auth", &self.auth.as_ref().map(|_| "<hook>"))
            .field("health_path", &self.health_path)
            .field("static_dir", &self.static_dir)
            .field("serve_hidden_files", &self.serve_hidden_files)
            .field("subprotocols", &self.subprotocols)
            .finish()
    }
}

impl Policy {
    /// Decides where a request goes.
    pub(crate) fn route(&self, request: &Request) -> Route {
        let path = request.path();
        let websocket_path = self.websocket_paths.is_empty() || self.websocket_paths.iter().any(|p| p == path);
        if request.wants_websocket() {
            return if websocket_path { Route::WebSocket } else { Route::NotFound };
        }
        if !matches!(request.method(), "GET" | "HEAD") {
            return Route::MethodNotAllowed;
        }
        if self.health_path.as_deref() == Some(path) {
            return Route::Health;
        }
        if let Some(file) =
            self.static_dir.as_deref().and_then(|root| super::files::resolve(root, path, self.serve_hidden_files))
        {
            return Route::File(file);
        }
        if websocket_path {
            Route::WebSocketPage
        } else {
            Route::NotFound
        }
    }

    /// Refuses (403) a browser page from another site, when an Origin policy is set.
    ///
    /// Why: browsers attach the user's cookies to a WebSocket handshake whatever page
    /// opened it, and WebSockets are not covered by the same-origin policy. Without this
    /// check any web site the user visits can talk to this server as that user
    /// (cross-site WebSocket hijacking). Clients other than browsers send no Origin and
    /// are let through: the check protects browser users, not the server.
    pub(crate) fn check_origin(&self, request: &Request) -> Result<(), Rejection> {
        if self.allowed_origins.is_empty() && !self.same_origin {
            return Ok(());
        }
        let Some(origin) = request.origin() else { return Ok(()) };
        if self.allowed_origins.iter().any(|allowed| same_web_origin(allowed, origin)) {
            return Ok(());
        }
        if self.same_origin && same_origin(origin, request.header("host"), self.plain_ws) {
            return Ok(());
        }
        Err(Rejection::new(403, format!("origin {origin:?} is not allowed")))
    }

    /// Runs the application's hook, if any.
    pub(crate) fn authenticate(&self, request: &Request) -> Result<Option<AppData>, Rejection> {
        match &self.auth {
            None => Ok(None),
            Some(hook) => hook(request),
        }
    }
}

/// Whether `origin` is a page of this server: the same scheme, host and port as the
/// request (RFC 6454 §5), host names compared case-insensitively and a missing port read
/// as the scheme's default. The scheme is `https`; `http` only when the server speaks
/// plain `ws://` behind a proxy, which alone knows the scheme the browser used. Anything
/// that is not a serialized origin (`null`, a bare host, a path, user info) is not.
fn same_origin(origin: &str, host: Option<&str>, plain_ws: bool) -> bool {
    let Some(host) = host else { return false };
    let Some(origin) = WebOrigin::parse(origin) else { return false };
    if !origin.https && !plain_ws {
        return false;
    }
    host_and_port(host, default_port(origin.https)).is_some_and(|(host, port)| origin.is(host, port))
}

/// Whether a configured allowed origin admits the browser's `origin`. Web origins
/// compare as origins (scheme and host case-insensitively, a default port written or
/// not: `https://example.com:443` is `https://example.com`); others, such as an
/// extension's `chrome-extension://…`, as text without regard to case.
fn same_web_origin(allowed: &str, origin: &str) -> bool {
    match (WebOrigin::parse(allowed), WebOrigin::parse(origin)) {
        (Some(allowed), Some(origin)) => allowed.https == origin.https && allowed.is(origin.host, origin.port),
        _ => allowed.eq_ignore_ascii_case(origin),
    }
}

/// Why a configured allowed origin can never match what a browser sends, if it cannot:
/// checked when the configuration is built, so that the mistake is an error there
/// rather than every page refused with 403.
pub(crate) fn unusable_origin(allowed: &str) -> Option<String> {
    let usable = match allowed.split_once("://") {
        None => allowed == "null",
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http") => {
            WebOrigin::parse(allowed).is_some()
        }
        // Pages are never served over ws:// or wss://: such an Origin does not occur.
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("ws") || scheme.eq_ignore_ascii_case("wss") => false,
        // Another scheme (an extension's page): anything but a path after it.
        Some((scheme, rest)) => !scheme.is_empty() && !rest.is_empty() && !rest.contains('/'),
    };
    if usable {
        return None;
    }
    let hint = if allowed.is_ascii() {
        "browsers send scheme://host[:port] with no path, not even a trailing \"/\" (e.g. \"https://example.com\")"
    } else {
        "browsers send a host name in its ASCII form (\"https://xn--bcher-kva.example\" for bücher.example)"
    };
    Some(format!("allowed origin {allowed:?} is not an origin: {hint}"))
}

/// A serialized `http` or `https` origin (RFC 6454 §6.2): `scheme://host[:port]`.
struct WebOrigin<'a> {
    https: bool,
    host: &'a str,
    /// The scheme's default when the origin leaves it out.
    port: u16,
}

impl<'a> WebOrigin<'a> {
    fn parse(text: &'a str) -> Option<WebOrigin<'a>> {
        let (scheme, authority) = text.split_once("://")?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return None;
        };
        let (host, port) = host_and_port(authority, default_port(https))?;
        Some(WebOrigin { https, host, port })
    }

    /// The same host (IPv6 addresses as addresses: `[::1]` is `[0:0::1]`) and port.
    fn is(&self, host: &str, port: u16) -> bool {
        self.port == port && (self.host.eq_ignore_ascii_case(host) || same_ipv6(self.host, host))
    }
}

/// Whether two bracketed hosts are one IPv6 address, however each is written.
fn same_ipv6(a: &str, b: &str) -> bool {
    let address = |host: &str| host.strip_prefix('[')?.strip_suffix(']')?.parse::<std::net::Ipv6Addr>().ok();
    address(a).is_some_and(|a| address(b) == Some(a))
}

fn default_port(https: bool) -> u16 {
    if https {
        443
    } else {
        80
    }
}

/// Splits `host[:port]` (the host a name, an IPv4 address or a bracketed IPv6 address),
/// with `default_port` when the port is left out; `None` for anything else.
fn host_and_port(text: &str, default_port: u16) -> Option<(&str, u16)> {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (text, None),
    };
    let port = match port {
        None => default_port,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits.parse().ok()?,
        Some(_) => return None,
    };
    is_host(host).then_some((host, port))
}

/// Whether `host` is a host name, an IPv4 address or a bracketed IPv6 address.
fn is_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => ipv6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(head: &str) -> Request {
        Request::parse(head.as_bytes(), "127.0.0.1:1".parse().unwrap(), None).unwrap()
    }

    const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n";

    #[test]
    fn routes() {
        let policy = Policy { websocket_paths: vec!["/ws".into()], ..Policy::default() };
        assert_eq!(policy.route(&request(&format!("GET /ws HTTP/1.1\r\n{UPGRADE}\r\n"))), Route::WebSocket);
        assert_eq!(policy.route(&request(&format!("GET /other HTTP/1.1\r\n{UPGRADE}\r\n"))), Route::NotFound);
        assert_eq!(policy.route(&request("GET /ws HTTP/1.1\r\n\r\n")), Route::WebSocketPage);
        assert_eq!(policy.route(&request("GET /healthz HTTP/1.1\r\n\r\n")), Route::Health);
        assert_eq!(policy.route(&request("POST /ws HTTP/1.1\r\n\r\n")), Route::MethodNotAllowed);
        assert_eq!(policy.route(&request("GET /nothing HTTP/1.1\r\n\r\n")), Route::NotFound);
    }

    #[test]
    fn origins() {
        let open = Policy::default();
        let strict = Policy { allowed_origins: vec!["https://good.example".into()], ..Policy::default() };
        let same = Policy { same_origin: true, ..Policy::default() };
        let evil = request("GET / HTTP/1.1\r\nHost: h:8443\r\nOrigin: https://evil.example\r\n\r\n");
        let good = request("GET / HTTP/1.1\r\nHost: h:8443\r\nOrigin: https://good.example\r\n\r\n");
        let own = request("GET / HTTP/1.1\r\nHost: h:8443\r\nOrigin: https://h:8443\r\n\r\n");
        let none = request("GET / HTTP/1.1\r\nHost: h:8443\r\n\r\n");
        assert!(open.check_origin(&evil).is_ok());
        assert_eq!(strict.check_origin(&evil).unwrap_err().status, 403);
        assert!(strict.check_origin(&good).is_ok());
        assert!(strict.check_origin(&none).is_ok(), "non-browser clients send no Origin");
        assert!(same.check_origin(&own).is_ok());
        assert_eq!(same.check_origin(&evil).unwrap_err().status, 403);
    }

    #[test]
    fn allowed_origins_compare_as_origins() {
        let policy = |allowed: &str| Policy { allowed_origins: vec![allowed.into()], ..Policy::default() };
        let cases = [
            // (allowed, the browser's Origin, accepted)
            ("https://example.com", "https://example.com", true),
            ("https://example.com:443", "https://example.com", true),
            ("https://example.com", "https://example.com:443", true),
            ("HTTPS://Example.COM", "https://example.com", true),
            ("http://example.com:80", "http://example.com", true),
            ("https://[::1]:8443", "https://[::1]:8443", true),
            ("chrome-extension://abcdef", "chrome-extension://ABCDEF", true),
            ("null", "null", true),
            ("https://example.com", "http://example.com", false),
            ("http://example.com:443", "https://example.com", false),
            ("https://example.com:8443", "https://example.com", false),
            ("https://example.com", "https://example.com.evil", false),
            ("https://example.com", "https://sub.example.com", false),
            ("https://example.com", "null", false),
            ("null", "https://example.com", false),
            ("https://[0:0::1]", "https://[::1]", true),
            ("https://[::1]", "https://[::2]", false),
        ];
        for (allowed, origin, expected) in cases {
            let head = format!("GET / HTTP/1.1\r\nHost: h\r\nOrigin: {origin}\r\n\r\n");
            assert_eq!(policy(allowed).check_origin(&request(&head)).is_ok(), expected, "{allowed:?} / {origin:?}");
        }
    }

    #[test]
    fn an_allowed_origin_no_browser_sends_is_named() {
        for usable in ["https://example.com", "http://h:8080", "https://[::1]", "chrome-extension://abc", "null"] {
            assert_eq!(unusable_origin(usable), None, "{usable}");
        }
        for unusable in [
            "https://example.com/",
            "https://example.com/app",
            "example.com",
            "https://",
            "https://u@h",
            "",
            "wss://example.com",
            "://x",
            "chrome-extension://abc/",
            "chrome-extension://",
        ] {
            let why = unusable_origin(unusable).unwrap_or_else(|| panic!("{unusable:?} passed"));
            assert!(why.contains("scheme://host[:port]"), "{why}");
        }
        let why = unusable_origin("https://bücher.example").unwrap();
        assert!(why.contains("ASCII form"), "{why}");
    }

    #[test]
    fn same_origin_matrix() {
        // (Host header, Origin, accepted over TLS, accepted as plain ws:// behind a proxy)
        let cases = [
            ("h:8443", "https://h:8443", true, true),
            ("h:8443", "HTTPS://H:8443", true, true),
            ("H:8443", "https://h:8443", true, true),
            ("h:8443", "http://h:8443", false, true),
            ("h:8443", "ftp://h:8443", false, false),
            ("h:8443", "wss://h:8443", false, false),
            ("h:8443", "h:8443", false, false),
            ("h:8443", "//h:8443", false, false),
            ("h:8443", "https://h", false, false),
            ("h:8443", "https://h:8444", false, false),
            ("h:8443", "https://other:8443", false, false),
            ("h:8443", "https://h:8443/", false, false),
            ("h:8443", "https://h:8443/path", false, false),
            ("h:8443", "https://u@h:8443", false, false),
            ("h:8443", "https://h:+8443", false, false),
            ("h:8443", "https://h:", false, false),
            ("h:8443", "https://h:99999", false, false),
            ("h:8443", "https://", false, false),
            ("h:8443", "null", false, false),
            ("h:8443", "", false, false),
            // Default ports, written or left out, on either side.
            ("h", "https://h", true, true),
            ("h", "https://h:443", true, true),
            ("h:443", "https://h", true, true),
            ("h", "http://h", false, true),
            ("h:80", "http://h", false, true),
            ("h:80", "https://h", false, false),
            ("h:443", "http://h", false, false),
            // IP addresses.
            ("127.0.0.1:8443", "https://127.0.0.1:8443", true, true),
            ("[::1]:8443", "https://[::1]:8443", true, true),
            ("[::1]", "https://[::1]:443", true, true),
            ("[::1]:8443", "https://[::2]:8443", false, false),
            ("[nonsense]:8443", "https://[nonsense]:8443", false, false),
            // A Host header that is not one.
            ("h:8443/x", "https://h:8443/x", false, false),
            ("", "https://", false, false),
        ];
        for (plain_ws, column) in [(false, "TLS"), (true, "plain")] {
            let policy = Policy { same_origin: true, plain_ws, ..Policy::default() };
            for (host, origin, tls_ok, plain_ok) in cases {
                let expected = if plain_ws { plain_ok } else { tls_ok };
                let head = format!("GET / HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n\r\n");
                let accepted = policy.check_origin(&request(&head)).is_ok();
                assert_eq!(accepted, expected, "{column}: Host {host:?}, Origin {origin:?}");
            }
        }
        let no_host = request("GET / HTTP/1.1\r\nOrigin: https://h\r\n\r\n");
        assert!(Policy { same_origin: true, ..Policy::default() }.check_origin(&no_host).is_err());
    }
}
