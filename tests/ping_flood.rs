//! A client that floods Ping frames and reads its pongs only in a trickle: every Ping
//! asks the server for a Pong, so the server must stop reading such a client while its
//! output waits, or the pongs pile up in memory. Server memory stays bounded, a
//! well-behaved client is served throughout, and once the flooder reads nothing at all
//! the write timeout closes it. (Alone in its file: it counts the whole process's
//! threads and fds.)

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_echo, close_reason_of, eventually, frame, open_fds, proc_status_kib, raw_websocket, start_with_client,
    tinywss_threads, Raw, Started,
};
use tinywss::{CloseReason, Error, Event, Timeout};

/// Pings are sent until this many bytes have gone or the time is up.
const FLOOD_BYTES: u64 = 64 << 20;
const FLOOD_TIME: Duration = Duration::from_secs(6);
/// What the flooder reads now and then: progress, so the write timeout alone never ends it.
const TRICKLE: usize = 256 << 10;
const TRICKLE_EVERY: Duration = Duration::from_millis(500);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// The flooder's receive buffer, fixed. Left to autotuning it may grow toward the
/// system's maximum (`tcp_rmem`, often 32 MiB), and Linux reopens a closed receive
/// window only once a sizeable share of the buffer is free (silly-window avoidance): with
/// a huge buffer, seconds of trickling can let no byte through, which the server rightly
/// calls a client that stopped reading. The test must not depend on the host's tuning.
const FLOODER_RCVBUF: usize = 256 << 10;
/// Peak memory the server may gain while one client floods it.
const MAX_GROWTH_KIB: u64 = 2 << 10;

/// Writes masked pings (125-byte payloads, the most a control frame carries) until the
/// budget or the time runs out; returns the bytes the socket took. The server pushing
/// back shows up as write timeouts, which are retried.
fn flood(mut raw: Raw) -> (Raw, u64) {
    raw.sock.set_write_timeout(Some(Duration::from_millis(50))).unwrap();
    let batch = frame(0x89, &[b'p'; 125], true).repeat(128);
    let stop = Instant::now() + FLOOD_TIME;
    let mut sent = 0;
    while sent < FLOOD_BYTES && Instant::now() < stop {
        if !raw.conn.wants_write() {
            raw.conn.writer().write_all(&batch).unwrap();
        }
        match raw.conn.write_tls(&mut raw.sock) {
            Ok(n) => sent += n as u64,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("the flooder was cut off after {sent} bytes: {e}"),
        }
    }
    (raw, sent)
}

/// Reads (and throws away) `TRICKLE` bytes of ciphertext every `TRICKLE_EVERY` until
/// told to stop: a client that takes its output, slowly.
fn trickle(mut sock: TcpStream, stop: Arc<AtomicBool>) -> u64 {
    sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = vec![0u8; TRICKLE];
    let mut read = 0;
    while !stop.load(Ordering::SeqCst) {
        let mut got = 0;
        while got < TRICKLE && !stop.load(Ordering::SeqCst) {
            match sock.read(&mut buf[got..]) {
                Ok(0) => return read,
                Ok(n) => got += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return read,
            }
        }
        read += got as u64;
        // The pause is the client's behaviour under test, not a wait for readiness.
        thread::sleep(TRICKLE_EVERY);
    }
    read
}

#[test]
fn ping_flood_holds_no_memory_and_a_deaf_flooder_is_closed() {
    let Started { server, events, client: mut good, .. } = start_with_client(|b| b.write_timeout(WRITE_TIMEOUT));
    let handle = server.handle();
    let (threads_before, fds_before) = (tinywss_threads().len(), open_fds());

    let raw = raw_websocket(server.addr, &server.certs.files.ca);
    rustix::net::sockopt::set_socket_recv_buffer_size(&raw.sock, FLOODER_RCVBUF).unwrap();
    let flooder = common::next_open(&events);
    let stop_reading = Arc::new(AtomicBool::new(false));
    let reader = {
        let (sock, stop) = (raw.sock.try_clone().unwrap(), Arc::clone(&stop_reading));
        thread::spawn(move || trickle(sock, stop))
    };
    let before = proc_status_kib("VmHWM");
    let started = Instant::now();
    let flooding = thread::spawn(move || flood(raw));

    let (mut echoes, mut slowest) = (0, Duration::ZERO);
    while !flooding.is_finished() {
        let sent = Instant::now();
        assert_echo(&mut good, &format!("during the flood {echoes}"));
        slowest = slowest.max(sent.elapsed());
        echoes += 1;
        // The flooder takes its pongs, slowly: it stays open while it does.
        for event in events.try_iter() {
            if let Event::Close { conn, reason, .. } = event {
                panic!("{conn} closed during the flood: {reason}");
            }
        }
    }
    let (raw, sent) = flooding.join().unwrap();
    let grown = proc_status_kib("VmHWM").saturating_sub(before);
    stop_reading.store(true, Ordering::SeqCst);
    let read = reader.join().unwrap();
    eprintln!(
        "flooded {} KiB of pings in {:.1?} (read {} KiB of pongs); peak memory grew {grown} KiB; \
         {echoes} echoes, slowest {slowest:.1?}",
        sent >> 10,
        started.elapsed(),
        read >> 10
    );
    assert!(grown < MAX_GROWTH_KIB, "peak memory grew {grown} KiB during a ping flood of {} KiB", sent >> 10);
    assert!(echoes > 0 && slowest < Duration::from_secs(2), "the good client waited {slowest:?}");

    // Now the flooder reads nothing: its output cannot leave, and the write timeout ends it.
    let closing = Instant::now();
    match close_reason_of(&events, flooder) {
        CloseReason::Error(Error::Timeout(Timeout::Write)) => {}
        other => panic!("expected the write timeout, got {other:?}"),
    }
    eprintln!("the deaf flooder was closed {:.1?} after it stopped reading", closing.elapsed());
    assert_eq!(handle.stats().limit_closes, 1);
    drop(raw);
    assert_echo(&mut good, "after the flood");
    eventually("no tinywss thread is left", || tinywss_threads().len() == threads_before);
    eventually("no file descriptor is left", || open_fds() <= fds_before);
}
