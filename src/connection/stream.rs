//! A rustls server session over a non-blocking TCP socket, as one `Read + Write` stream.
//!
//! rustls' own `StreamOwned` is made for blocking sockets. Here every call does as much
//! as the socket allows and then reports `WouldBlock`, which tungstenite understands:
//! it keeps unsent bytes buffered and the caller waits in `poll(2)` for readiness.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use rustls::ServerConnection;

use super::wire::{Sealed, Wire};
use crate::{Error, TlsFailure};

/// Where a TLS handshake stands after [`TlsStream::handshake`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Finished: application data may flow.
    Done,
    /// Waiting for bytes from the client.
    NeedRead,
    /// Waiting for the socket to accept our bytes.
    NeedWrite,
}

/// A TLS session and its socket.
#[derive(Debug)]
pub(crate) struct TlsStream {
    pub(crate) tls: ServerConnection,
    /// Shared with whoever waits for it outside the session (see [`Transport::waitable`]);
    /// read and written here only.
    pub(crate) sock: Arc<TcpStream>,
    /// Encrypted bytes the socket has taken so far: tells a slow client from a stuck one.
    pub(crate) bytes_sent: u64,
    /// Whether the socket refused ciphertext at the last attempt to write it.
    socket_full: bool,
    /// The last read from the socket returned less than it was offered, so the socket
    /// had nothing more then: the next read that finds no plaintext reports
    /// `WouldBlock` without asking the socket again (a system call per batch of
    /// messages). Every caller waits in `poll` before sleeping, which sees newer input.
    drained: bool,
    /// Orders the socket writes of the connection thread after a sending thread's; made
    /// at the first write-through (a connection that never has one, handler mode's
    /// included, neither allocates it nor takes its lock).
    wire: Option<Arc<Wire>>,
    /// While a sending thread seals a message: its records, taken out of rustls rather
    /// than written (`Transport::seal`).
    sealing: Option<Vec<u8>>,
}

impl TlsStream {
    pub(crate) fn new(tls: ServerConnection, sock: TcpStream) -> Box<TlsStream> {
        Box::new(TlsStream {
            tls,
            sock: Arc::new(sock),
            bytes_sent: 0,
            socket_full: false,
            drained: false,
            wire: None,
            sealing: None,
        })
    }

    /// Moves the TLS handshake forward as far as the socket allows without blocking.
    ///
    /// # Errors
    ///
    /// `InvalidData` wrapping the rustls error when the client's handshake is bad (after
    /// a best-effort attempt to send it the alert), `UnexpectedEof` when it hangs up.
    pub(crate) fn handshake(&mut self) -> io::Result<Progress> {
        while self.tls.is_handshaking() || self.tls.wants_write() {
            if self.tls.wants_write() {
                match self.tls.write_tls(&mut &*self.sock) {
                    Ok(n) => {
                        self.bytes_sent += n as u64;
                        continue;
                    }
                    Err(e) if would_block(&e) => return Ok(Progress::NeedWrite),
                    Err(e) => return Err(e),
                }
            }
            if !self.tls.is_handshaking() {
                break;
            }
            match self.tls.read_tls(&mut &*self.sock) {
                Ok(0) => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "client hung up during the TLS handshake"))
                }
                Ok(_) => self.process_records()?,
                Err(e) if would_block(&e) => return Ok(Progress::NeedRead),
                Err(e) => return Err(e),
            }
        }
        Ok(Progress::Done)
    }

    /// Whether encrypted bytes are waiting for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        self.tls.wants_write() || self.owes()
    }

    /// Whether a sending thread left records the socket has not taken yet.
    fn owes(&self) -> bool {
        self.wire.as_ref().is_some_and(|wire| wire.pending())
    }

    /// Decrypts what `read_tls` took in. On a TLS error, rustls has queued an alert for
    /// the client; send it as a last gasp so the client learns why, then fail.
    fn process_records(&mut self) -> io::Result<()> {
        if let Err(e) = self.tls.process_new_packets() {
            let _ = self.flush();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(())
    }

    /// Sends `close_notify` and writes what the socket takes now; best effort, because
    /// the connection is ending anyway.
    pub(crate) fn close_notify(&mut self) {
        self.tls.send_close_notify();
        let _ = self.flush();
    }
}

impl Read for TlsStream {
    /// Returns plaintext rustls already holds, else reads one batch of records from the
    /// socket. `Ok(0)` is a clean TLS close, `UnexpectedEof` a TCP close without it.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Err(e) if would_block(&e) => {}
                other => return other,
            }
            if std::mem::take(&mut self.drained) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut sock = Noting { sock: &self.sock, short: false };
            match self.tls.read_tls(&mut sock) {
                // rustls noted the EOF: the next reader() call reports it.
                Ok(0) => continue,
                Ok(_) => {
                    self.drained = sock.short;
                    self.process_records()?;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The socket, noting whether a read returned less than it was offered.
struct Noting<'a> {
    sock: &'a TcpStream,
    short: bool,
}

impl Read for Noting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

impl Write for TlsStream {
    /// Encrypts into rustls' buffer. When that buffer is full, pushes ciphertext to the
    /// socket first; reports `WouldBlock` rather than `Ok(0)` when the socket is full too.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tls.writer().write(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        self.flush()?;
        match self.tls.writer().write(buf)? {
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    /// Writes buffered ciphertext to the socket until done or `WouldBlock`: first what
    /// a sending thread left, then rustls' records. While a sending thread seals, takes
    /// the records out instead.
    fn flush(&mut self) -> io::Result<()> {
        if let Some(records) = &mut self.sealing {
            while self.tls.wants_write() {
                self.tls.write_tls(records)?;
            }
            return Ok(());
        }
        if !self.wants_write() {
            // Nothing to write: no need to wait for a sending thread writing its own.
            self.socket_full = false;
            return Ok(());
        }
        let TlsStream { tls, sock, bytes_sent, wire, .. } = self;
        let flushed = match wire {
            // Under the wire's lock, after what a sending thread left.
            Some(wire) => {
                let mut backlog = wire.lock();
                let (taken, drained) = wire.drain(&mut backlog, sock);
                *bytes_sent += taken;
                drained.and_then(|()| write_records(tls, sock, bytes_sent))
            }
            None => write_records(tls, sock, bytes_sent),
        };
        self.socket_full = matches!(&flushed, Err(e) if would_block(e));
        flushed
    }
}

/// Writes rustls' records to the socket until done or `WouldBlock`, counting what it took.
fn write_records(tls: &mut ServerConnection, mut sock: &TcpStream, bytes_sent: &mut u64) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(&mut sock) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *bytes_sent += n as u64,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The socket has nothing more for now. Only `WouldBlock`: on these non-blocking sockets a
/// `TimedOut` is a real TCP timeout (the peer is gone), not a read-timeout expiry.
pub(crate) fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// rustls errors arrive wrapped in `io::Error` (`InvalidData`); name them as TLS errors,
/// with a hint for the ones people meet most.
pub(crate) fn tls_error(e: io::Error) -> Error {
    if e.kind() != io::ErrorKind::InvalidData {
        return Error::Io(e);
    }
    let text = e.to_string();
    if text.contains("UnknownCA") || text.contains("BadCertificate") || text.contains("CertificateUnknown") {
        let hint = "the client does not trust our certificate: install the CA that signed it in the client, \
                    or check the host name";
        return Error::tls(TlsFailure::CertificateRefused, format!("{text} ({hint})"));
    }
    Error::tls(TlsFailure::Other, text)
}

/// What a connection speaks over: TLS, or plain TCP behind a TLS-terminating proxy
/// ([`plain_ws_behind_proxy`](crate::ConfigBuilder::plain_ws_behind_proxy)).
#[derive(Debug)]
pub(crate) enum Transport {
    Tls(Box<TlsStream>),
    Plain(PlainStream),
    /// Bytes in memory, for the fuzz targets: the frame loop without a socket.
    #[cfg(fuzzing)]
    Memory(MemoryStream),
}

/// Reads a fixed input, then `WouldBlock`; keeps what is written.
#[cfg(fuzzing)]
#[derive(Debug)]
pub(crate) struct MemoryStream {
    pub(crate) input: io::Cursor<Vec<u8>>,
    pub(crate) output: Vec<u8>,
    /// Something to poll that never becomes ready.
    pub(crate) idle: Arc<std::fs::File>,
}

/// A plain TCP socket that counts what it sent and notes when it was full, like
/// [`TlsStream`] does.
#[derive(Debug)]
pub(crate) struct PlainStream {
    pub(crate) sock: Arc<TcpStream>,
    bytes_sent: u64,
    socket_full: bool,
}

impl PlainStream {
    pub(crate) fn new(sock: TcpStream) -> PlainStream {
        PlainStream { sock: Arc::new(sock), bytes_sent: 0, socket_full: false }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = (&*self.sock).write(buf);
        self.socket_full = matches!(&written, Err(e) if would_block(e));
        let n = written?;
        self.bytes_sent += n as u64;
        Ok(n)
    }
}

impl Transport {
    /// The socket, to wait on.
    pub(crate) fn sock(&self) -> BorrowedFd<'_> {
        match self {
            Transport::Tls(stream) => stream.sock.as_fd(),
            Transport::Plain(plain) => plain.sock.as_fd(),
            #[cfg(fuzzing)]
            Transport::Memory(memory) => memory.idle.as_fd(),
        }
    }

    /// The socket, to wait on without holding the stream: events mode waits for its
    /// client while the stream stays free for another thread to write to
    /// (`connection::shared`).
    pub(crate) fn waitable(&self) -> Arc<dyn AsFd + Send + Sync> {
        match self {
            Transport::Tls(stream) => stream.sock.clone(),
            Transport::Plain(plain) => plain.sock.clone(),
            #[cfg(fuzzing)]
            Transport::Memory(memory) => memory.idle.clone(),
        }
    }

    /// Closes the TCP connection both ways.
    pub(crate) fn shutdown(&self) {
        let sock = match self {
            Transport::Tls(stream) => &stream.sock,
            Transport::Plain(plain) => &plain.sock,
            #[cfg(fuzzing)]
            Transport::Memory(_) => return,
        };
        let _ = sock.shutdown(std::net::Shutdown::Both);
    }

    /// The TLS session, if any.
    pub(crate) fn tls(&self) -> Option<&ServerConnection> {
        match self {
            Transport::Tls(stream) => Some(&stream.tls),
            _ => None,
        }
    }

    /// Bytes the socket has taken so far: tells a slow client from a stuck one.
    pub(crate) fn bytes_sent(&self) -> u64 {
        match self {
            Transport::Tls(stream) => stream.bytes_sent + stream.wire.as_ref().map_or(0, |wire| wire.sent_by_senders()),
            Transport::Plain(plain) => plain.bytes_sent,
            #[cfg(fuzzing)]
            Transport::Memory(memory) => memory.output.len() as u64,
        }
    }

    /// Whether the socket refused bytes at the last attempt to write to it: output is
    /// waiting for the client to read.
    pub(crate) fn socket_full(&self) -> bool {
        match self {
            // Bytes a sending thread left count as full: they go first, when the socket
            // takes them.
            Transport::Tls(stream) => stream.socket_full || stream.owes(),
            Transport::Plain(plain) => plain.socket_full,
            #[cfg(fuzzing)]
            Transport::Memory(_) => false,
        }
    }

    /// Whether bytes are waiting for the socket (only TLS buffers any).
    pub(crate) fn wants_write(&self) -> bool {
        matches!(self, Transport::Tls(stream) if stream.wants_write())
    }

    /// From now on until [`sealed`](Transport::sealed), what a flush would write to the
    /// socket is kept for the caller instead; `false` for plain TCP, which writes as
    /// usual (it has no records whose order could break).
    pub(crate) fn seal(&mut self) -> bool {
        match self {
            Transport::Tls(stream) => {
                stream.sealing = Some(Vec::new());
                true
            }
            _ => false,
        }
    }

    /// The records sealed since [`seal`](Transport::seal), for the caller to write.
    pub(crate) fn sealed(&mut self) -> Option<Sealed> {
        let Transport::Tls(stream) = self else { return None };
        let records = stream.sealing.take()?;
        let wire = Arc::clone(stream.wire.get_or_insert_with(Arc::default));
        Some(Sealed { wire, sock: Arc::clone(&stream.sock), records })
    }

    /// Sends TLS `close_notify`, best effort; nothing for plain TCP.
    pub(crate) fn close_notify(&mut self) {
        if let Transport::Tls(stream) = self {
            stream.close_notify();
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Tls(stream) => stream.read(buf),
            Transport::Plain(plain) => (&*plain.sock).read(buf),
            #[cfg(fuzzing)]
            Transport::Memory(memory) => match memory.input.read(buf)? {
                0 if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
                n => Ok(n),
            },
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Tls(stream) => stream.write(buf),
            Transport::Plain(plain) => plain.write(buf),
            #[cfg(fuzzing)]
            Transport::Memory(memory) => memory.output.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Tls(stream) => stream.flush(),
            Transport::Plain(plain) => (&*plain.sock).flush(),
            #[cfg(fuzzing)]
            Transport::Memory(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_errors_become_tls_failures_with_a_kind() {
        let refused = rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA);
        let error = tls_error(io::Error::new(io::ErrorKind::InvalidData, refused));
        assert!(matches!(&error, Error::Tls { kind: TlsFailure::CertificateRefused, .. }), "{error:?}");
        assert!(error.to_string().contains("install the CA"), "{error}");
        let other = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        let error = tls_error(io::Error::new(io::ErrorKind::InvalidData, other));
        assert!(matches!(&error, Error::Tls { kind: TlsFailure::Other, .. }), "{error:?}");
        assert!(matches!(tls_error(io::ErrorKind::ConnectionReset.into()), Error::Io(_)));
    }
}
