//! The HTTP/1.1 Upgrade handshake (RFC 6455 §4), done by hand so every step is visible.
//!
//! Pure functions: the connection thread reads the request head, this module decides,
//! and the connection thread writes the response it returns.

use super::extensions::{self, DeflateParams, DeflateSettings};
use super::request::Request;
use super::response::Rejection;

/// The GUID every WebSocket server appends to the client's key (RFC 6455 §1.3).
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A request the server accepts: what the 101 response needs and what the app learns.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Upgrade {
    /// The request target, path and query.
    pub(crate) path: String,
    /// `Sec-WebSocket-Accept`: proof that we read this client's key.
    pub(crate) accept: String,
    /// The subprotocol selected from the client's offer, if any.
    pub(crate) subprotocol: Option<String>,
    /// permessage-deflate, when the client offered it and we accepted (RFC 7692).
    pub(crate) deflate: Option<DeflateParams>,
}

/// Checks an Upgrade request against RFC 6455 §4.2.1 and prepares the 101 answer.
pub(crate) fn check_upgrade(
    request: &Request,
    subprotocols: &[String],
    deflate: Option<DeflateSettings>,
) -> Result<Upgrade, Rejection> {
    // §4.2.1 (1): an HTTP/1.1 or higher GET request (the version is checked by the parser).
    if request.method() != "GET" {
        return Err(Rejection::new(405, "a WebSocket handshake is a GET request"));
    }
    // §4.2.1 (2): a Host header.
    if request.header("host").is_none() {
        return Err(Rejection::new(400, "missing Host header"));
    }
    // §4.2.1 (3), (4): `Upgrade: websocket` and `Connection: Upgrade` (token lists).
    if !request.wants_websocket() {
        return Err(Rejection::new(426, "this is a WebSocket endpoint: the request has no `Upgrade: websocket`"));
    }
    if !request.has_token("connection", "upgrade") {
        return Err(Rejection::new(400, "missing `Connection: Upgrade`"));
    }
    // §4.2.1 (6): version 13; anything else gets 426 naming the version we speak (§4.4).
    match request.header("sec-websocket-version") {
        Some("13") => {}
        Some(other) => return Err(Rejection::new(426, format!("unsupported Sec-WebSocket-Version {other:?}"))),
        None => return Err(Rejection::new(400, "missing Sec-WebSocket-Version")),
    }
    // §4.2.1 (5): a key that is 16 random bytes in base64.
    let key = request.header("sec-websocket-key").ok_or_else(|| Rejection::new(400, "missing Sec-WebSocket-Key"))?;
    if !is_base64_of_16_bytes(key) {
        return Err(Rejection::new(400, "Sec-WebSocket-Key is not 16 bytes in base64"));
    }
    // §4.2.2 step 4 (/subprotocol/): the server's preference decides among the client's offers.
    let offered: Vec<&str> = request.list("sec-websocket-protocol").collect();
    let subprotocol = subprotocols.iter().find(|p| offered.contains(&p.as_str())).cloned();
    let path = match request.query() {
        Some(query) => format!("{}?{query}", request.path()),
        None => request.path().to_owned(),
    };
    let deflate = extensions::negotiate(request.list("sec-websocket-extensions"), deflate);
    Ok(Upgrade { path, accept: accept_key(key), subprotocol, deflate })
}

/// The `Sec-WebSocket-Accept` value that answers the client's `Sec-WebSocket-Key`:
/// base64(SHA-1(key + the RFC's GUID)) (RFC 6455 §4.2.2, step 5.4). The server sends it
/// in its 101; a client checks it, to know that a WebSocket server answered.
///
/// ```
/// // The example of RFC 6455 §1.3.
/// assert_eq!(tinywss::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha1 = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    sha1.update(key.as_bytes());
    sha1.update(WEBSOCKET_GUID.as_bytes());
    base64(sha1.finish().as_ref())
}

/// The 101 response that completes the handshake (RFC 6455 §4.2.2, step 5).
pub(crate) fn switching_protocols(upgrade: &Upgrade) -> String {
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        upgrade.accept
    );
    if let Some(protocol) = &upgrade.subprotocol {
        response.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
    }
    if let Some(deflate) = &upgrade.deflate {
        response.push_str(&format!("Sec-WebSocket-Extensions: {deflate}\r\n"));
    }
    response.push_str("\r\n");
    response
}

/// The `Sec-WebSocket-Key` a client sends: `nonce` in base64 (RFC 6455 §4.1). The nonce
/// must be 16 random bytes, new for each connection; [`accept_key`] gives the answer to
/// expect.
pub fn websocket_key(nonce: &[u8; 16]) -> String {
    base64(nonce)
}

fn is_base64_of_16_bytes(key: &str) -> bool {
    // 16 bytes encode to 22 significant characters and "==" padding.
    let b = key.as_bytes();
    b.len() == 24 && b[22..] == *b"==" && b[..22].iter().all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "GET /chat?x=1 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n";

    fn check(head: &str, subprotocols: &[String]) -> Result<Upgrade, Rejection> {
        let request = Request::parse(head.as_bytes(), "127.0.0.1:9".parse().unwrap(), None)?;
        check_upgrade(&request, subprotocols, None)
    }

    #[test]
    fn accept_key_matches_rfc_example() {
        // RFC 6455 §1.3 works this exact example.
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn good_request_is_accepted_with_server_preference() {
        let ours = vec!["superchat".to_owned(), "chat".to_owned()];
        let up = check(GOOD, &ours).unwrap();
        assert_eq!(up.path, "/chat?x=1");
        assert_eq!(up.subprotocol.as_deref(), Some("superchat"));
        let response = switching_protocols(&up);
        assert!(response.starts_with("HTTP/1.1 101 "));
        assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(response.contains("Sec-WebSocket-Protocol: superchat\r\n"));
        assert!(response.ends_with("\r\n\r\n"));
    }

    #[test]
    fn no_common_subprotocol_selects_none() {
        let up = check(GOOD, &["mqtt".to_owned()]).unwrap();
        assert_eq!(up.subprotocol, None);
        assert!(!switching_protocols(&up).contains("Sec-WebSocket-Protocol"));
    }

    #[test]
    fn extension_header_only_when_accepted() {
        let ours = Some(DeflateSettings { context_takeover: false, window_bits: 15 });
        let offer = GOOD
            .replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n");
        let parse = |head: &str| Request::parse(head.as_bytes(), "127.0.0.1:9".parse().unwrap(), None).unwrap();
        let up = check_upgrade(&parse(&offer), &[], ours).unwrap();
        assert!(switching_protocols(&up).contains(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
        ));
        // Compression off, or no offer: no header at all.
        let off = check_upgrade(&parse(&offer), &[], None).unwrap();
        assert!(!switching_protocols(&off).contains("Sec-WebSocket-Extensions"));
        let none = check_upgrade(&parse(GOOD), &[], ours).unwrap();
        assert!(!switching_protocols(&none).contains("Sec-WebSocket-Extensions"));
    }

    #[test]
    fn refusals_carry_the_right_status() {
        let status = |req: &str| check(req, &[]).unwrap_err().status;
        assert_eq!(status(&GOOD.replace("GET", "POST")), 405);
        assert_eq!(status(&GOOD.replace("HTTP/1.1", "HTTP/1.0")), 400);
        assert_eq!(status(&GOOD.replace("Host: localhost\r\n", "")), 400);
        assert_eq!(status(&GOOD.replace("Upgrade: websocket\r\n", "")), 426);
        assert_eq!(status(&GOOD.replace("keep-alive, Upgrade", "keep-alive")), 400);
        assert_eq!(status(&GOOD.replace("Version: 13", "Version: 8")), 426);
        assert_eq!(status(&GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "short")), 400);
        assert_eq!(status("\x16\x03\x01garbage\r\n\r\n"), 400);
        let many: String = (0..40).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(status(&GOOD.replace("Host: localhost\r\n", &format!("Host: a\r\n{many}"))), 431);
    }
}
