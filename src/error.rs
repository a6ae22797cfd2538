//! The one error type of the crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in tinywss.
///
/// Configuration errors ([`Error::TlsFile`], [`Error::KeyMismatch`], [`Error::Config`],
/// [`Error::Bind`]) come from [`ConfigBuilder::build`](crate::ConfigBuilder::build) and
/// [`Server::bind`](crate::Server::bind). Connection errors ([`Error::Io`], [`Error::Tls`],
/// [`Error::Protocol`], [`Error::Timeout`], ...) reach the application inside
/// [`CloseReason::Error`](crate::CloseReason::Error) when a connection ends without a close
/// handshake. [`Error::Closed`] and [`Error::ShutdownTimeout`] come from [`Handle`](crate::Handle).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is incomplete or inconsistent, e.g. no TLS identity was given.
    Config(String),
    /// A certificate, key or CA file cannot be used: missing, unreadable, no certificate
    /// in it, no usable private key, a certificate that has expired or is not valid yet.
    /// `kind` says which, for code; `problem` says what is wrong and how to fix it, for
    /// people.
    TlsFile {
        /// The file at fault.
        path: PathBuf,
        /// Which problem it is.
        kind: CertProblem,
        /// What is wrong with it, and what to do.
        problem: String,
        /// The operating system's error, when the file could not be read.
        source: Option<io::Error>,
    },
    /// The private key does not belong to the certificate (the two files come from
    /// different certificate requests).
    KeyMismatch {
        /// The certificate chain file.
        cert: PathBuf,
        /// The private key file.
        key: PathBuf,
    },
    /// The listening socket could not be bound (address in use, no permission for a
    /// port below 1024, address not local, ...).
    Bind {
        /// The address as configured.
        addr: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// An I/O error on a socket: the peer reset the connection, or it closed the TCP
    /// connection without a WebSocket close handshake.
    Io(io::Error),
    /// The TLS layer failed: a bad handshake (the client does not trust our certificate,
    /// speaks no TLS at all, offers no common cipher suite) or a corrupt record.
    Tls {
        /// Which failure it is.
        kind: TlsFailure,
        /// What happened, with a hint at the fix where there is a common one.
        detail: String,
    },
    /// The client's HTTP request was not a valid WebSocket Upgrade; the server answered
    /// with `status`.
    Handshake {
        /// The HTTP status the server answered with.
        status: u16,
        /// Why the request was refused.
        reason: String,
    },
    /// The WebSocket layer failed in a way that has no close code of its own (a client
    /// that breaks the protocol is failed with 1002, 1007 or 1009 instead, and reported as
    /// [`CloseReason::Server`](crate::CloseReason::Server)). The text is tungstenite's.
    Protocol(String),
    /// A deadline passed: which one is in the [`Timeout`].
    Timeout(Timeout),
    /// Code on the connection's thread panicked: a bug, in tinywss or in application code
    /// that runs there (its `log` logger, say). The connection was dropped and forgotten
    /// like any other; the text is the panic's message. (A panicking
    /// [authentication hook](crate::ConfigBuilder::authenticate) is answered with HTTP 500
    /// instead: no WebSocket was open.)
    Panicked(String),
    /// A close code that may not be sent in a Close frame (RFC 6455 §7.4), given to
    /// [`Handle::close`](crate::Handle::close).
    InvalidCloseCode(u16),
    /// The server has been shut down; the [`Handle`](crate::Handle) can no longer act.
    Closed,
    /// [`Handle::shutdown`](crate::Handle::shutdown) gave up waiting for some threads
    /// at its deadline; they finish in the background.
    ShutdownTimeout {
        /// How many connection threads were still running.
        threads: usize,
    },
    /// The Redis backplane ([`ConfigBuilder::redis`](crate::ConfigBuilder), feature
    /// `redis`) could not connect at start: Redis unreachable, a wrong password, a
    /// certificate that is not trusted. (With
    /// [`redis_retry_at_start`](crate::ConfigBuilder) the server starts anyway.)
    Redis {
        /// The Redis URL, without its password.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(what) => write!(f, "invalid configuration: {what}"),
            Error::TlsFile { path, problem, .. } => write!(f, "{}: {problem}", path.display()),
            Error::KeyMismatch { cert, key } => write!(
                f,
                "{}: this private key does not belong to the certificate in {}; \
                 use the key that was generated with that certificate's request",
                key.display(),
                cert.display()
            ),
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Tls { detail, .. } => write!(f, "tls error: {detail}"),
            Error::Handshake { status, reason } => {
                write!(f, "websocket handshake refused with {status}: {reason}")
            }
            Error::Protocol(e) => write!(f, "websocket protocol error: {e}"),
            Error::Timeout(which) => write!(f, "timed out: {which}"),
            Error::Panicked(message) => write!(f, "panicked on the connection's thread: {message}"),
            Error::InvalidCloseCode(code) => {
                write!(f, "close code {code} may not be sent; use 1000-1003, 1007-1014 or 3000-4999")
            }
            Error::Closed => f.write_str("the server has been shut down"),
            Error::ShutdownTimeout { threads } => {
                write!(f, "shutdown deadline passed with {threads} connection threads still running")
            }
            Error::Redis { url, reason } => write!(f, "redis backplane at {url}: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } | Error::Io(source) => Some(source),
            Error::TlsFile { source: Some(source), .. } => Some(source),
            _ => None,
        }
    }
}

/// What is wrong with a certificate, key or CA file ([`Error::TlsFile`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertProblem {
    /// The file does not exist.
    NotFound,
    /// The file exists but cannot be read: permissions, or an I/O error.
    Unreadable,
    /// Not a regular file (a directory, a FIFO, a device), or too large to be one of
    /// these files.
    NotARegularFile,
    /// A PEM block is damaged.
    MalformedPem,
    /// No certificate in the file (the key file given as the certificate, say).
    NoCertificate,
    /// A certificate that is not valid X.509.
    InvalidCertificate,
    /// No private key in the file (the certificate given as the key, say).
    NoPrivateKey,
    /// A private key of a type rustls cannot sign with.
    UnsupportedKey,
    /// The certificate expired.
    Expired,
    /// The certificate is not valid yet (or this machine's clock is wrong).
    NotYetValid,
    /// The certificate cannot be used for this purpose: as a server certificate for
    /// TLS, as a CA to verify client certificates, or as a development certificate
    /// (a `server.pem` that [`development_certificate`](crate::ConfigBuilder::development_certificate)
    /// did not make, and will not replace).
    Unusable,
    /// A [development certificate](crate::DevelopmentCertificate) could not be made: its
    /// folder or files cannot be created or written (permissions, a read-only file
    /// system, a file where the folder should be), or the system gave no random numbers
    /// for its keys.
    CannotCreate,
}

/// Which TLS failure ended a handshake or a connection ([`Error::Tls`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The client does not trust our certificate: it sent an alert saying so, or hung
    /// up right after receiving it. Install the CA in the client, or check the host name.
    CertificateRefused,
    /// The client spoke plain HTTP (`http://` or `ws://`) to the TLS port; it was
    /// answered with HTTP 400 in plain text.
    PlainHttp,
    /// The client sent something that is not TLS at all.
    NotTls,
    /// A TLS client reached a plain `ws://` port
    /// ([`plain_ws_behind_proxy`](crate::ConfigBuilder::plain_ws_behind_proxy)).
    TlsToPlainPort,
    /// Any other TLS error: no common version or cipher suite, a bad record, an alert.
    Other,
}

/// Which deadline passed ([`Error::Timeout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// The TLS handshake and the HTTP request together took longer than
    /// [`handshake_timeout`](crate::ConfigBuilder::handshake_timeout).
    Handshake,
    /// No answer to a keepalive ping within
    /// [`pong_timeout`](crate::ConfigBuilder::pong_timeout).
    Pong,
    /// The client took no byte for
    /// [`write_timeout`](crate::ConfigBuilder::write_timeout).
    Write,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Timeout::Handshake => "the TLS and HTTP handshake took too long",
            Timeout::Pong => "no answer to a keepalive ping",
            Timeout::Write => "the client stopped reading: no write progress within the write timeout",
        })
    }
}

impl Error {
    /// A certificate, key or CA file that cannot be used.
    pub(crate) fn tls_file(path: impl Into<PathBuf>, kind: CertProblem, problem: impl Into<String>) -> Error {
        Error::TlsFile { path: path.into(), kind, problem: problem.into(), source: None }
    }

    /// A TLS failure.
    pub(crate) fn tls(kind: TlsFailure, detail: impl Into<String>) -> Error {
        Error::Tls { kind, detail: detail.into() }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        // Errors travel inside every close event: keep them a few words wide.
        assert!(std::mem::size_of::<Error>() <= 64, "{}", std::mem::size_of::<Error>());
    }

    #[test]
    fn file_errors_name_the_file() {
        let e = Error::tls_file("certs/x.pem", CertProblem::NoCertificate, "no certificate");
        assert_eq!(e.to_string(), "certs/x.pem: no certificate");
    }
}
