//! Plain HTTP responses: the refusals of a bad Upgrade request, files, the health JSON.
//! Every plain response closes the connection afterwards: no keep-alive to manage.

/// A request the server refuses: an HTTP status and a short plain-text reason for the
/// client. The [authentication hook](crate::ConfigBuilder::authenticate) returns one to
/// say "no"; the server's own checks (Upgrade, Origin, limits) make them too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub(crate) status: u16,
    pub(crate) reason: String,
}

impl Rejection {
    /// Refuses with `status` (e.g. 401 or 403) and `reason` (plain text, shown to the
    /// client). A status outside 400–599 becomes 403.
    pub fn new(status: u16, reason: impl Into<String>) -> Rejection {
        let status = if (400..600).contains(&status) { status } else { 403 };
        Rejection { status, reason: reason.into() }
    }
}

/// A short plain-text error response; the connection closes after it.
pub(crate) fn error_response(reject: &Rejection) -> String {
    let body = format!("{} {}\n", reject.status, reject.reason);
    // §4.4: a 426 lists the WebSocket versions we support.
    let extra = if reject.status == 426 { "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n" } else { "" };
    let mut response = response_head(reject.status, "text/plain; charset=utf-8", body.len() as u64, extra);
    response.push_str(&body);
    response
}

/// The head of a plain HTTP response (`extra`: more header lines, each ending in CRLF).
/// Every plain response closes the connection: no keep-alive to manage.
pub(crate) fn response_head(status: u16, content_type: &str, length: u64, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\
         Connection: close\r\nCache-Control: no-cache\r\n{extra}\r\n",
        status_text(status)
    )
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_is_complete_http() {
        let response = error_response(&Rejection::new(426, "unsupported"));
        assert!(response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(response.contains("Sec-WebSocket-Version: 13\r\n"));
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
