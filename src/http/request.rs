//! [`Request`]: the HTTP request head a client opened with, as the policy sees it.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;

use super::response::Rejection;
use crate::CertificateInfo;

/// The most header lines a request head may have; more gets HTTP 431.
pub(crate) const MAX_HEADERS: usize = 32;

/// The length of the request head (through the blank line), once it is all in `buf`.
pub(crate) fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// An HTTP/1.1 request head: the WebSocket Upgrade request, or a plain request for a
/// page or the health endpoint.
///
/// The [authentication hook](crate::ConfigBuilder::authenticate) sees one of these for
/// every Upgrade request and decides whether the client may connect.
#[derive(Clone)]
pub struct Request {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    peer: SocketAddr,
    server_name: Option<String>,
    client_certificate: Option<Box<CertificateInfo>>,
}

impl Request {
    /// Parses a complete request head (through the blank line).
    pub(crate) fn parse(head: &[u8], peer: SocketAddr, server_name: Option<String>) -> Result<Request, Rejection> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(Rejection::new(400, "incomplete request head")),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Rejection::new(431, format!("more than {MAX_HEADERS} header lines")))
            }
            Err(e) => return Err(Rejection::new(400, format!("malformed request: {e}"))),
        }
        if parsed.version != Some(1) {
            return Err(Rejection::new(400, "HTTP/1.1 required"));
        }
        let target = parsed.path.unwrap_or_default();
        // Origin-form only ("/path?query"): absolute URLs and "*" are for proxies.
        if !target.starts_with('/') {
            return Err(Rejection::new(400, "the request target must start with /"));
        }
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (target.to_owned(), None),
        };
        let headers = parsed
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).trim().to_owned()))
            .collect();
        let method = parsed.method.unwrap_or_default().to_owned();
        Ok(Request { method, path, query, headers, peer, server_name, client_certificate: None })
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path of the request target, without the query, as sent (not percent-decoded).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query string after `?`, if any, as sent.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The value of one `name=value` pair of the query string, as sent.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .as_deref()?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The first header with this name (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every header, in the order sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether any header called `name` lists `token` (comma-separated, case-insensitive).
    pub(crate) fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// Every comma-separated value of every header called `name`.
    pub(crate) fn list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(',').map(str::trim))
    }

    /// A cookie from the `Cookie` header(s).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.list_cookies().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    fn list_cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
    }

    /// The `Origin` header: the web page that opened the connection, sent by browsers.
    pub fn origin(&self) -> Option<&str> {
        self.header("origin")
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The host name the client asked for in TLS (SNI), if any.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The client's verified certificate, when client certificates are on
    /// ([`ConfigBuilder::client_auth`](crate::ConfigBuilder::client_auth)) and it sent one.
    pub fn client_certificate(&self) -> Option<&CertificateInfo> {
        self.client_certificate.as_deref()
    }

    pub(crate) fn with_client_certificate(mut self, certificate: Option<Box<CertificateInfo>>) -> Request {
        self.client_certificate = certificate;
        self
    }

    /// Whether this asks for a WebSocket (`Upgrade: websocket`).
    pub(crate) fn wants_websocket(&self) -> bool {
        self.has_token("upgrade", "websocket")
    }
}

impl Request {
    /// The request as it arrived, one line per header, for the `debug` log: cookie and
    /// authorization values and query values are replaced by `<redacted>`, since they
    /// often carry credentials (browsers cannot set headers on a WebSocket, so tokens
    /// travel in the query string). The rest goes through [`log_safe`].
    pub(crate) fn redacted_head(&self) -> String {
        let (method, path) = (log_safe(&self.method), log_safe(&self.path));
        let mut head = format!("{method} {path}{} HTTP/1.1", self.redacted_query());
        for (name, value) in self.headers() {
            head.push_str(&format!("\n    {}: {}", log_safe(name), log_safe(redacted(name, value))));
        }
        head
    }

    fn redacted_query(&self) -> String {
        match &self.query {
            None => String::new(),
            Some(query) => {
                let keys: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((key, _)) => format!("{}=<redacted>", log_safe(key)),
                        None => log_safe(pair).into_owned(),
                    })
                    .collect();
                format!("?{}", keys.join("&"))
            }
        }
    }
}

/// A header value as it may appear in a log.
fn redacted<'a>(name: &str, value: &'a str) -> &'a str {
    let secret = ["cookie", "authorization", "proxy-authorization"].iter().any(|s| name.eq_ignore_ascii_case(s));
    if secret {
        "<redacted>"
    } else {
        value
    }
}

/// `text` as it may appear in a log line: every character that does not print as
/// itself is escaped the way Rust's `{:?}` writes it (`\n`, `\u{85}`, `\u{202e}`). That
/// covers control characters (CR, LF, NEL, ESC), the line and paragraph separators,
/// bidirectional embeddings, overrides and isolates, zero-width and other format
/// characters, and unassigned code points. Client-supplied text goes through this before
/// it reaches a log, so it can neither forge a log line nor reorder what an operator reads.
///
/// Backslashes and quotes are left alone, so escaping twice, or escaping text already
/// written with `{:?}`, changes nothing. Nothing is copied when nothing needs escaping.
pub(crate) fn log_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// Whether [`log_safe`] escapes `c`.
fn needs_escape(c: char) -> bool {
    !matches!(c, '"' | '\'' | '\\') && c.escape_debug().len() > 1
}

impl fmt::Debug for Request {
    // Cookies, credentials and query values never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<_> = self.headers().map(|(n, v)| (n, redacted(n, v))).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.redacted_query())
            .field("headers", &headers)
            .field("peer", &self.peer)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(head: &str) -> Request {
        Request::parse(head.as_bytes(), "127.0.0.1:1".parse().unwrap(), None).unwrap()
    }

    #[test]
    fn head_len_finds_the_blank_line() {
        assert_eq!(head_len(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_len(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn parts_of_the_request() {
        let r = request(
            "GET /chat?room=a&token=x%20y HTTP/1.1\r\nHost: h\r\nCookie: a=1; session=s3cret\r\n\
             Cookie: b=2\r\nAuthorization: Bearer t\r\n\r\n",
        );
        assert_eq!((r.method(), r.path(), r.query()), ("GET", "/chat", Some("room=a&token=x%20y")));
        assert_eq!(r.query_param("token"), Some("x%20y"));
        assert_eq!(r.query_param("nope"), None);
        assert_eq!(r.cookie("session"), Some("s3cret"));
        assert_eq!(r.cookie("b"), Some("2"));
        assert_eq!(r.header("HOST"), Some("h"));
        let debug = format!("{r:?}");
        assert!(!debug.contains("s3cret") && !debug.contains("Bearer") && !debug.contains("x%20y"), "{debug}");
        let head = r.redacted_head();
        assert!(head.starts_with("GET /chat?room=<redacted>&token=<redacted> HTTP/1.1\n    Host: h\n"), "{head}");
        assert!(!head.contains("s3cret") && !head.contains("Bearer"), "{head}");
    }

    #[test]
    fn log_safe_escapes_what_does_not_print() {
        assert!(matches!(log_safe("/chat/résumé \"x\" 'y'"), Cow::Borrowed(_)));
        let cases = [
            ("a\r\nb\tc\0", "a\\r\\nb\\tc\\0"),
            ("\u{1b}[31m\u{7f}", "\\u{1b}[31m\\u{7f}"),
            ("next\u{85}line\u{2028}sep\u{2029}", "next\\u{85}line\\u{2028}sep\\u{2029}"),
            ("\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}", "\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{202e}"),
            ("\u{2066}\u{2067}\u{2068}\u{2069}", "\\u{2066}\\u{2067}\\u{2068}\\u{2069}"),
            ("\u{200b}\u{200e}\u{200f}\u{61c}\u{feff}", "\\u{200b}\\u{200e}\\u{200f}\\u{61c}\\u{feff}"),
        ];
        for (raw, logged) in cases {
            assert_eq!(log_safe(raw), logged, "{raw:?}");
            assert_eq!(log_safe(logged), logged, "escaping twice changes nothing");
        }
        assert!(matches!(log_safe("a\\u{202e}b \"c:\\d\""), Cow::Borrowed(_)));
    }

    #[test]
    fn the_logged_head_is_escaped() {
        let r = request(
            "GET /a/\u{202e}txt.exe?\u{2028}k=v&\u{85}flag HTTP/1.1\r\nHost: h\r\nX-Note: \u{2066}x\u{2029}y\r\n\r\n",
        );
        assert_eq!(r.path(), "/a/\u{202e}txt.exe", "the application sees the path as sent");
        let head = r.redacted_head();
        assert_eq!(
            head,
            "GET /a/\\u{202e}txt.exe?\\u{2028}k=<redacted>&\\u{85}flag HTTP/1.1\n    Host: h\n    X-Note: \\u{2066}x\\u{2029}y"
        );
    }

    #[test]
    fn absolute_targets_are_refused() {
        let err = Request::parse(b"GET http://evil/ HTTP/1.1\r\n\r\n", "127.0.0.1:1".parse().unwrap(), None);
        assert_eq!(err.unwrap_err().status, 400);
    }
}
