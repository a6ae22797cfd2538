//! The order of the socket writes of one TLS stream written by two threads: its
//! connection thread, and a thread writing a message through (`shared.rs`).
//!
//! TLS records must reach the socket in the order rustls sealed them. A sending thread
//! seals its message under the session's lock, takes the records out of rustls
//! ([`Sealed`]), and writes them to the socket after it has let the session go: the
//! write is what wakes the client, and a client on the same CPU then runs at once, in
//! the middle of that system call; had the sender still held the session, the
//! connection thread, woken by the client's next message, would wait for it. The wire's
//! lock, taken before the session's is released, keeps the order: the connection thread
//! writes to the socket only under it, after whatever a sender left there because the
//! socket was full.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the socket of one stream owes: records a sending thread sealed that the socket
/// did not take, or the failure of its write.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    backlog: Mutex<Backlog>,
    /// Whether the backlog holds bytes or a failure: read without the lock, since the
    /// connection thread asks before every read.
    pending: AtomicBool,
    /// Bytes the socket took from sending threads (the connection thread counts its own).
    sent: AtomicU64,
}

/// The part of a [`Wire`] its lock guards.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    bytes: Vec<u8>,
    /// A sending thread's write failed: the connection is broken, and its thread says so
    /// at its next write.
    failed: Option<io::ErrorKind>,
}

impl Wire {
    /// Taken for every socket write once the WebSocket is open.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Backlog> {
        // Every change to the backlog is a single push or drain: usable after a panic.
        self.backlog.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the socket owes anything: then the connection thread must write it
    /// before anything else, and nobody may write through.
    pub(crate) fn pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }

    pub(crate) fn sent_by_senders(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Writes what the backlog holds, for the connection thread; `Ok` once it is empty.
    /// Returns the bytes the socket took, or why it stopped (`WouldBlock` when full).
    pub(crate) fn drain(&self, backlog: &mut Backlog, sock: &TcpStream) -> (u64, io::Result<()>) {
        if let Some(kind) = backlog.failed {
            return (0, Err(kind.into()));
        }
        let (taken, written) = write_out(sock, &backlog.bytes);
        backlog.bytes.drain(..taken);
        if backlog.bytes.is_empty() {
            backlog.bytes = Vec::new();
            self.pending.store(false, Ordering::SeqCst);
        }
        (taken as u64, written)
    }
}

/// Writes `bytes` until the socket has taken them all or stops taking them: how many it
/// took, and why it stopped (`WouldBlock` when full, `WriteZero` when it took nothing).
fn write_out(mut sock: &TcpStream, bytes: &[u8]) -> (usize, io::Result<()>) {
    let mut taken = 0;
    while taken < bytes.len() {
        match sock.write(&bytes[taken..]) {
            Ok(0) => return (taken, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => taken += n,
            Err(e) => return (taken, Err(e)),
        }
    }
    (taken, Ok(()))
}

/// A message's records, sealed by a sending thread under the session's lock, for it to
/// write to the socket after letting the session go.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub(crate) wire: Arc<Wire>,
    pub(crate) sock: Arc<TcpStream>,
    pub(crate) records: Vec<u8>,
}

impl Sealed {
    /// Writes the records, under the wire's lock (taken while the session was still
    /// held). `false` when the connection thread must take over: the socket did not take
    /// them all (the rest waits in the backlog), or the write failed. The backlog holds
    /// at most two messages: nobody seals while it holds anything, except one sender that
    /// sealed before this write found the socket full, and now waits for the wire.
    pub(crate) fn write(&self, backlog: &mut Backlog) -> bool {
        let mut taken = 0;
        // Behind bytes still owed (nobody writes through then, but a sender that sealed
        // just before may have left some): after them, or out of order.
        if backlog.bytes.is_empty() && backlog.failed.is_none() {
            let written;
            (taken, written) = write_out(&self.sock, &self.records);
            self.wire.sent.fetch_add(taken as u64, Ordering::Relaxed);
            match written {
                Ok(()) => return true,
                // Full, or taking nothing: the rest waits (`WouldBlock` is the same test
                // as `stream::would_block`).
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::WriteZero) => {}
                Err(e) => {
                    backlog.failed = Some(e.kind());
                    self.wire.pending.store(true, Ordering::SeqCst);
                    return false;
                }
            }
        }
        backlog.bytes.extend_from_slice(&self.records[taken..]);
        self.wire.pending.store(true, Ordering::SeqCst);
        false
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;
    use std::thread;

    use super::*;
    use crate::wait::{wait_for, Interest, Waker};

    /// The server's end (non-blocking, as a connection's) and the client's end.
    fn socket_pair() -> (Arc<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (Arc::new(server), client)
    }

    fn sealed(wire: &Arc<Wire>, sock: &Arc<TcpStream>, records: Vec<u8>) -> Sealed {
        Sealed { wire: Arc::clone(wire), sock: Arc::clone(sock), records }
    }

    #[test]
    fn records_the_socket_takes_leave_nothing_owed() {
        let (sock, mut client) = socket_pair();
        let wire = Arc::new(Wire::default());
        assert!(sealed(&wire, &sock, b"hello".to_vec()).write(&mut wire.lock()));
        assert!(!wire.pending());
        assert_eq!(wire.sent_by_senders(), 5);
        let mut got = [0; 5];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
    }

    #[test]
    fn what_a_full_socket_leaves_goes_first_and_whole() {
        let (sock, mut client) = socket_pair();
        let wire = Arc::new(Wire::default());
        // More than any socket buffer: the client reads nothing yet.
        let first: Vec<u8> = (0..16 << 20).map(|i| (i % 251) as u8).collect();
        assert!(!sealed(&wire, &sock, first.clone()).write(&mut wire.lock()), "the connection thread takes over");
        assert!(wire.pending());
        // A sender that sealed meanwhile queues behind it, without writing.
        assert!(!sealed(&wire, &sock, b"second".to_vec()).write(&mut wire.lock()));
        let reader = thread::spawn(move || {
            let mut got = vec![0; first.len() + 6];
            client.read_exact(&mut got).unwrap();
            assert!(got[..first.len()] == first[..], "the first records, whole and in order");
            assert_eq!(&got[first.len()..], b"second");
        });
        // The connection thread: drain, waiting for the socket, until nothing is owed.
        let waker = Waker::new().unwrap();
        let mut from_thread = wire.sent_by_senders();
        loop {
            let (taken, drained) = wire.drain(&mut wire.lock(), &sock);
            from_thread += taken;
            match drained {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_for(&*sock, Interest::WRITE, &waker, None).unwrap();
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(!wire.pending());
        assert_eq!(from_thread, (16 << 20) + 6);
        reader.join().unwrap();
    }

    #[test]
    fn a_failed_write_is_the_connection_threads_to_report() {
        let (sock, client) = socket_pair();
        sock.shutdown(std::net::Shutdown::Write).unwrap();
        let wire = Arc::new(Wire::default());
        assert!(!sealed(&wire, &sock, b"late".to_vec()).write(&mut wire.lock()));
        assert!(wire.pending());
        let (_, drained) = wire.drain(&mut wire.lock(), &sock);
        assert_eq!(drained.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        assert!(wire.pending(), "the failure stays: nothing more can be written");
        drop(client);
    }
}
