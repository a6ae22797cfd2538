//! The TLS phase of a connection: look at the first byte, run the rustls handshake
//! under the connection's deadline, and log what was negotiated.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;

use super::client::Client;
use super::stream::{tls_error, would_block, PlainStream, Progress, TlsStream, Transport};
use crate::{http, Error, TlsFailure};

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

impl Client {
    /// Runs the TLS handshake, or in plain `ws://` mode only checks that the client does
    /// not try one.
    pub(crate) fn tls_handshake(&self, socket: TcpStream) -> Result<Transport, Error> {
        let Some(config) = &self.context.tls else {
            self.expect_plain_http(&socket)?;
            return Ok(Transport::Plain(PlainStream::new(socket)));
        };
        self.expect_tls_record(&socket)?;
        let tls = rustls::ServerConnection::new(Arc::clone(config))
            .map_err(|e| Error::tls(TlsFailure::Other, e.to_string()))?;
        let mut stream = TlsStream::new(tls, socket);
        loop {
            match stream.handshake().map_err(|e| handshake_error(e, &stream))? {
                Progress::Done => break,
                Progress::NeedRead => self.wait_io(&stream.sock, false, self.deadline)?,
                Progress::NeedWrite => self.wait_io(&stream.sock, true, self.deadline)?,
            }
        }
        self.log_established(&stream.tls);
        Ok(Transport::Tls(stream))
    }

    /// Looks at the first byte before rustls does: a TLS connection starts with a
    /// handshake record. A letter means plain HTTP (`http://` or `ws://` to the TLS
    /// port): answer that in plain text, so a person sees why, instead of a TLS alert.
    fn expect_tls_record(&self, socket: &TcpStream) -> Result<(), Error> {
        match self.first_byte(socket)? {
            TLS_HANDSHAKE_RECORD => Ok(()),
            b'A'..=b'Z' => {
                let reject =
                    http::Rejection::new(400, "this port speaks TLS: use https:// or wss://, not http:// or ws://");
                let _ = (&*socket).write_all(http::error_response(&reject).as_bytes());
                Err(Error::tls(TlsFailure::PlainHttp, "the client spoke plain HTTP (http:// or ws://) to the TLS port"))
            }
            other => Err(Error::tls(TlsFailure::NotTls, format!("not a TLS handshake (first byte 0x{other:02x})"))),
        }
    }

    /// In plain `ws://` mode, turns away a client that starts a TLS handshake: the proxy
    /// in front should have ended TLS, so it (or the client) is set up wrongly.
    fn expect_plain_http(&self, socket: &TcpStream) -> Result<(), Error> {
        if self.first_byte(socket)? == TLS_HANDSHAKE_RECORD {
            return Err(Error::tls(
                TlsFailure::TlsToPlainPort,
                "a TLS client reached this plain ws:// port: the reverse proxy must end TLS and \
                 forward plain HTTP (or the client must use ws://)",
            ));
        }
        Ok(())
    }

    /// Waits for the client's first byte and peeks at it, leaving it in the socket.
    fn first_byte(&self, socket: &TcpStream) -> Result<u8, Error> {
        let mut first = [0u8; 1];
        loop {
            match socket.peek(&mut first) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => return Ok(first[0]),
                Err(e) if would_block(&e) => self.wait_io(socket, false, self.deadline)?,
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    fn log_established(&self, tls: &rustls::ServerConnection) {
        let show = |value: Option<String>| value.unwrap_or_else(|| "none".into());
        log::debug!(
            "{}: TLS established: {}, cipher suite {}, key exchange {}, SNI {}, ALPN {}, client certificate {}",
            self.id,
            show(tls.protocol_version().map(|v| format!("{v:?}"))),
            show(tls.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite()))),
            show(tls.negotiated_key_exchange_group().map(|g| format!("{:?}", g.name()))),
            show(tls.server_name().map(str::to_owned)),
            show(tls.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned())),
            if tls.peer_certificates().is_some() { "verified" } else { "none" },
        );
    }
}

/// A failed TLS handshake, with a hint when the client hung up after seeing our
/// certificate: clients that reject it (Python, Node) often close without an alert.
fn handshake_error(e: io::Error, stream: &TlsStream) -> Error {
    if e.kind() == io::ErrorKind::UnexpectedEof && stream.bytes_sent > 0 {
        return Error::tls(
            TlsFailure::CertificateRefused,
            "the client hung up after receiving our certificate: it probably does not trust it \
             (install the CA that signed it in the client) or the host name does not match",
        );
    }
    tls_error(e)
}
