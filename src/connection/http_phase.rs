//! The HTTP phase of a connection thread: read the request head, route it, and answer
//! with `101 Switching Protocols`, a file, the health JSON, or an HTTP error.

use std::fs::File;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

use super::client::Client;
use super::stream::{tls_error, would_block, Transport};
use crate::http::{self, log_safe, AppData, Rejection, Request, Route};
use crate::stats::bump;
use crate::{ConnectionInfo, Error, Timeout};

/// What the 101 response settled.
#[derive(Debug)]
pub(crate) struct Upgraded {
    pub(crate) info: ConnectionInfo,
    /// Bytes the client sent right behind its request (its first frames, perhaps).
    pub(crate) leftover: Vec<u8>,
    /// The request itself, kept in handler mode only (the handler may look at it).
    pub(crate) request: Option<Box<Request>>,
    /// permessage-deflate, if agreed.
    pub(crate) deflate: Option<http::DeflateParams>,
}

/// How much of a file goes through TLS at a time.
const FILE_CHUNK: usize = 16 << 10;

impl Client {
    /// Reads one request and answers it. `Some` for a WebSocket, `None` when a plain
    /// response was served; `Err` when the request was refused.
    pub(crate) fn serve_request(&self, stream: &mut Transport) -> Result<Option<Upgraded>, Error> {
        let (head, leftover) = self.read_request_head(stream)?;
        let server_name = stream.tls().and_then(|tls| tls.server_name()).map(str::to_owned);
        let request = match Request::parse(&head, self.peer, server_name) {
            Ok(request) => request.with_client_certificate(stream.tls().and_then(crate::tls::client_certificate)),
            Err(reject) => return Err(self.refuse(stream, reject)),
        };
        log::debug!("{}: request from {}:\n    {}", self.id, self.peer, request.redacted_head());
        let policy = &self.context.policy;
        match policy.route(&request) {
            Route::WebSocket => self.accept_websocket(stream, &request, leftover).map(Some),
            Route::Health => self.respond_plain(stream, 200, "application/json", &self.health_json(), &request),
            Route::File(path) => self.respond_file(stream, &path, &request),
            Route::WebSocketPage => {
                let page = "426 Upgrade Required: this is a WebSocket endpoint. \
                            Connect with a WebSocket client (new WebSocket(\"wss://...\")), not a page load.\n";
                self.respond_plain(stream, 426, "text/plain; charset=utf-8", page, &request)
            }
            Route::MethodNotAllowed => {
                self.respond_plain(stream, 405, "text/plain", "405 method not allowed\n", &request)
            }
            Route::NotFound => {
                if request.wants_websocket() {
                    Err(self
                        .refuse(stream, Rejection::new(404, format!("no WebSocket endpoint at {}", request.path()))))
                } else {
                    self.respond_plain(stream, 404, "text/plain", "404 not found\n", &request)
                }
            }
        }
    }

    /// Validates the Upgrade, applies the Origin check and the authentication hook, and
    /// sends the 101.
    fn accept_websocket(
        &self,
        stream: &mut Transport,
        request: &Request,
        leftover: Vec<u8>,
    ) -> Result<Upgraded, Error> {
        let policy = &self.context.policy;
        let deflate = self.context.limits.compression.map(|c| c.settings());
        let upgrade = match http::check_upgrade(request, &policy.subprotocols, deflate) {
            Ok(upgrade) => upgrade,
            Err(reject) => return Err(self.refuse(stream, reject)),
        };
        if let Err(reject) = policy.check_origin(request) {
            bump(&self.context.stats.origin_refused);
            return Err(self.refuse(stream, reject));
        }
        let data = self.authenticate(stream, request)?;
        let response = http::switching_protocols(&upgrade);
        self.send_all(stream, response.as_bytes(), self.deadline)?;
        log::debug!("{}: response:\n    {}", self.id, response.trim_end().replace("\r\n", "\n    "));
        let info = ConnectionInfo {
            id: self.id,
            peer: self.peer,
            path: upgrade.path,
            subprotocol: upgrade.subprotocol,
            server_name: stream.tls().and_then(|tls| tls.server_name()).map(str::to_owned),
            tls_version: stream
                .tls()
                .and_then(|tls| tls.protocol_version())
                .map(|v| format!("{v:?}"))
                .unwrap_or_default(),
            client_certificate: request.client_certificate().cloned().map(Box::new),
            data,
        };
        // Only a handler can look at the request later; events mode keeps no copy of it.
        let request = self.context.handler_mode.then(|| Box::new(request.clone()));
        Ok(Upgraded { info, leftover, request, deflate: upgrade.deflate })
    }

    /// Runs the application's authentication hook: its verdict, a 500 if it panicked,
    /// or a 503 if it accepted after the handshake deadline.
    ///
    /// The hook cannot be interrupted (it is the application's code), so the deadline is
    /// checked when it returns: a client let in too late has most likely given up, and a
    /// slow hook would otherwise keep connections in their handshake past the limit the
    /// configuration sets. Such a client gets 503 (the server was slow, not the client),
    /// counted as a timed-out handshake. A refusal is sent as it is, late or not: it is
    /// the answer either way.
    fn authenticate(&self, stream: &mut Transport, request: &Request) -> Result<Option<AppData>, Error> {
        let verdict = catch_unwind(AssertUnwindSafe(|| self.context.policy.authenticate(request)));
        match verdict {
            Ok(Ok(_)) if Instant::now() >= self.deadline => {
                log::debug!(
                    "{}: the authentication hook accepted after the handshake deadline; answering 503",
                    self.id
                );
                let _ = self.refuse(stream, Rejection::new(503, "the server took too long to accept; try again"));
                Err(Error::Timeout(Timeout::Handshake))
            }
            Ok(Ok(data)) => Ok(data),
            Ok(Err(reject)) => {
                bump(&self.context.stats.auth_refused);
                Err(self.refuse(stream, reject))
            }
            Err(panic) => {
                self.panicked("the authentication hook", "answered 500", &*panic);
                Err(self.refuse(stream, Rejection::new(500, "the server failed to check this request")))
            }
        }
    }

    /// Answers with an HTTP error and reports the refusal as the error.
    fn refuse(&self, stream: &mut Transport, reject: Rejection) -> Error {
        bump(&self.context.stats.http_responses);
        // The answer is best effort: the error to report is the refusal itself.
        let _ = self.send_all(stream, http::error_response(&reject).as_bytes(), self.deadline);
        Error::Handshake { status: reject.status, reason: reject.reason }
    }

    /// A complete small response; HEAD gets the head only.
    fn respond_plain(
        &self,
        stream: &mut Transport,
        status: u16,
        content_type: &str,
        body: &str,
        request: &Request,
    ) -> Result<Option<Upgraded>, Error> {
        bump(&self.context.stats.http_responses);
        let mut response = http::response_head(status, content_type, body.len() as u64, "");
        if request.method() != "HEAD" {
            response.push_str(body);
        }
        self.send_all(stream, response.as_bytes(), self.deadline)?;
        log::debug!("{}: answered {} {} with {status}", self.id, log_safe(request.method()), log_safe(request.path()));
        Ok(None)
    }

    /// Sends a file with the length it has now. It is sent in chunks, each within the
    /// write timeout; exactly that many bytes, even if the file grows meanwhile (more
    /// would corrupt the response). If it shrinks, the connection ends after what was
    /// there: the client sees a body shorter than announced.
    fn respond_file(&self, stream: &mut Transport, path: &Path, request: &Request) -> Result<Option<Upgraded>, Error> {
        let not_found =
            |stream: &mut Transport| self.respond_plain(stream, 404, "text/plain", "404 not found\n", request);
        let Ok(file) = File::open(path) else { return not_found(stream) };
        let Ok(length) = file.metadata().map(|m| m.len()) else { return not_found(stream) };
        bump(&self.context.stats.http_responses);
        let head = http::response_head(200, http::content_type(path), length, "");
        self.send_all(stream, head.as_bytes(), self.deadline)?;
        let name = path.to_string_lossy();
        let sent = if request.method() == "HEAD" { length } else { self.send_body(stream, file.take(length))? };
        if sent < length {
            log::debug!("{}: {} shrank while being sent: {sent} of {length} bytes sent", self.id, log_safe(&name));
        } else {
            log::debug!("{}: served {} ({length} bytes)", self.id, log_safe(&name));
        }
        Ok(None)
    }

    /// Sends everything `body` yields, one chunk at a time, each within the write
    /// timeout; returns how many bytes that was.
    fn send_body(&self, stream: &mut Transport, mut body: impl Read) -> Result<u64, Error> {
        let mut chunk = vec![0u8; FILE_CHUNK];
        let mut sent = 0;
        loop {
            let n = match body.read(&mut chunk) {
                Ok(0) => return Ok(sent),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(e)),
            };
            let deadline = Instant::now() + self.context.limits.write_timeout;
            self.send_all(stream, &chunk[..n], deadline)?;
            sent += n as u64;
        }
    }

    fn health_json(&self) -> String {
        let stats = self.context.stats.snapshot();
        // With the Redis backplane (it counts this node, so never 0): the cluster as
        // this node sees it. Node names stay out of a public endpoint.
        let redis = match stats.backplane_nodes {
            0 => String::new(),
            nodes => format!(",\"redis\":{{\"connected\":{},\"nodes\":{nodes}}}", stats.backplane_connected == 1),
        };
        format!(
            "{{\"status\":\"ok\",\"uptime_seconds\":{},\"websockets\":{},\"connections\":{}{redis}}}\n",
            self.context.started.elapsed().as_secs(),
            stats.websockets,
            stats.connections
        )
    }

    /// Reads until the blank line that ends the request head; returns the head and any
    /// bytes after it.
    fn read_request_head(&self, stream: &mut Transport) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let max = self.context.limits.max_request_head;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let scanned = buf.len().saturating_sub(3);
            match stream.read(&mut chunk) {
                Ok(0) => {
                    let eof = std::io::ErrorKind::UnexpectedEof;
                    let what = if buf.is_empty() { "before sending a request" } else { "in the middle of its request" };
                    return Err(Error::Io(std::io::Error::new(
                        eof,
                        format!("the client closed the connection {what}"),
                    )));
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if would_block(&e) => {
                    // TLS 1.3 session tickets may still be waiting to go out.
                    let _ = std::io::Write::flush(stream);
                    self.wait_io(stream.sock(), stream.wants_write(), self.deadline)?;
                    continue;
                }
                Err(e) => return Err(tls_error(e)),
            }
            if let Some(end) = http::head_len(&buf[scanned..]).map(|n| scanned + n) {
                let leftover = buf.split_off(end);
                return Ok((buf, leftover));
            }
            if buf.len() > max {
                return Err(self.refuse(stream, Rejection::new(431, format!("request head larger than {max} bytes"))));
            }
        }
    }
}
