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
    /// `problem` says what is wrong and how to fix it.
    TlsFile {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it, and what to do.
        problem: String,
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
    Tls(String),
    /// The client's HTTP request was not a valid WebSocket Upgrade; the server answered
    /// with `status`.
    Handshake {
        /// The HTTP status the server answered with.
        status: u16,
        /// Why the request was refused.
        reason: String,
    },
    /// The client violated the WebSocket protocol (RFC 6455).
    Protocol(String),
    /// A deadline passed: the handshake took too long, the client stopped answering
    /// pings, or a close handshake was not completed. The text says which.
    Timeout(&'static str),
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(what) => write!(f, "invalid configuration: {what}"),
            Error::TlsFile { path, problem } => write!(f, "{}: {problem}", path.display()),
            Error::KeyMismatch { cert, key } => write!(
                f,
                "{}: this private key does not belong to the certificate in {}; \
                 use the key that was generated with that certificate's request",
                key.display(),
                cert.display()
            ),
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Tls(e) => write!(f, "tls error: {e}"),
            Error::Handshake { status, reason } => {
                write!(f, "websocket handshake refused with {status}: {reason}")
            }
            Error::Protocol(e) => write!(f, "websocket protocol error: {e}"),
            Error::Timeout(what) => write!(f, "timed out: {what}"),
            Error::InvalidCloseCode(code) => {
                write!(f, "close code {code} may not be sent; use 1000-1003, 1007-1014 or 3000-4999")
            }
            Error::Closed => f.write_str("the server has been shut down"),
            Error::ShutdownTimeout { threads } => {
                write!(f, "shutdown deadline passed with {threads} connection threads still running")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } | Error::Io(source) => Some(source),
            _ => None,
        }
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
        let e = Error::TlsFile { path: "certs/x.pem".into(), problem: "no certificate".into() };
        assert_eq!(e.to_string(), "certs/x.pem: no certificate");
    }
}
