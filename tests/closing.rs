//! A connection that is closing while its client reads nothing: the thread waits without
//! spinning, messages sent to it are refused and counted at once, and the Close frame
//! stuck behind a full socket still reaches a client that reads again in time.

mod common;

use std::io::Read;
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_echo, close_reason_of, eventually, next_open, raw_websocket, start_with_client, Raw, Started};
use tinywss::{CloseReason, ConnectionId, Event, Handle};

/// More than the kernel buffers hold between the server and a client that does not
/// read: the server's send buffer grows to 4 MiB at most, and the client's receive
/// buffer stays at its initial 128 KiB while the client reads nothing.
const BACKLOG: usize = 6 << 20;
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Long enough for the backlog to cross loopback once the client reads again.
const PATIENT_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A raw client past the Upgrade that will read nothing, and its connection, whose
/// socket is full: the server has handed `BACKLOG` bytes to TLS that cannot leave.
fn deaf_client_with_full_socket(started: &Started) -> (Raw, ConnectionId) {
    let server = &started.server;
    let raw = raw_websocket(server.addr, &server.certs.files.ca);
    let id = next_open(&started.events);
    let handle = server.handle();
    let sent_before = handle.stats().messages_out;
    handle.send(id, vec![7u8; BACKLOG]).unwrap();
    eventually("the backlog is handed to TLS", || handle.stats().messages_out > sent_before);
    (raw, id)
}

/// The thread of `conn`, as its id under /proc/self/task.
fn thread_of(conn: ConnectionId) -> String {
    let name = format!("tinywss-conn-{}", conn.as_u64());
    let tasks = std::fs::read_dir("/proc/self/task").unwrap().flatten();
    let mut found = tasks.filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name));
    found.next().map(|t| t.file_name().to_string_lossy().into_owned()).expect("no thread for the connection")
}

/// CPU time a thread has used (user + system), or `None` once it has ended.
fn cpu_time(tid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses: state is the first, utime
    // and stime the 12th and 13th (fields 14 and 15 of proc(5)), in clock ticks of 10 ms.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Sends `conn` a message every 20 ms until its Close event; returns how many were sent,
/// how many of those were counted as dropped the moment they were sent, and the CPU
/// time its thread used meanwhile.
fn keep_sending_until_closed(
    started: &Started,
    handle: &Handle,
    conn: ConnectionId,
    tid: &str,
) -> (u64, u64, Duration) {
    let start_cpu = cpu_time(tid).unwrap();
    let dropped_before = handle.stats().dropped;
    let (mut sent, mut refused_at_once, mut cpu) = (0, 0, Duration::ZERO);
    let give_up = Instant::now() + common::PATIENCE;
    loop {
        match started.events.recv_timeout(Duration::from_millis(20)) {
            Ok(Event::Close { conn: c, .. }) if c == conn => return (sent, refused_at_once, cpu),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < give_up, "the closing connection never ended");
        if let Some(now) = cpu_time(tid) {
            cpu = now - start_cpu;
        }
        handle.send(conn, "too late").unwrap();
        sent += 1;
        if handle.stats().dropped == dropped_before + sent {
            refused_at_once += 1;
        }
    }
}

#[test]
fn a_closing_connection_spends_no_cpu_and_refuses_messages() {
    let mut started = start_with_client(|b| b.close_timeout(CLOSE_TIMEOUT));
    let handle = started.server.handle();
    let (_raw, deaf) = deaf_client_with_full_socket(&started);
    let tid = thread_of(deaf);

    let closing = Instant::now();
    let dropped_before = handle.stats().dropped;
    handle.close(deaf, 4000, "bye").unwrap();
    let (sent, refused_at_once, cpu) = keep_sending_until_closed(&started, &handle, deaf, &tid);
    let window = closing.elapsed();
    eprintln!("closing took {window:.1?}, its thread used {cpu:?} of CPU; {sent} messages sent meanwhile");
    assert!(cpu < window / 10, "the closing thread used {cpu:?} of CPU in {window:?}");
    assert_eq!(refused_at_once, sent, "messages for a closing connection must be refused and counted at once");
    assert_eq!(handle.stats().dropped, dropped_before + sent);
    assert_echo(&mut started.client, "unharmed");
}

/// Reads frames until a Close frame; returns the data payload bytes before it, and its
/// code and reason (`None` if the connection ended without one).
fn read_to_close(raw: &mut Raw) -> (usize, Option<(u16, String)>) {
    let mut data = 0;
    loop {
        let mut head = [0u8; 2];
        if raw.read_exact(&mut head).is_err() {
            return (data, None);
        }
        let len = match head[1] & 0x7f {
            126 => read_len::<2>(raw),
            127 => read_len::<8>(raw),
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        if raw.read_exact(&mut payload).is_err() {
            return (data, None);
        }
        match head[0] & 0x0f {
            0x8 if len >= 2 => {
                let reason = String::from_utf8_lossy(&payload[2..]).into_owned();
                return (data, Some((u16::from_be_bytes([payload[0], payload[1]]), reason)));
            }
            0x8 => return (data, Some((1005, String::new()))),
            0x0..=0x2 => data += len,
            _ => {}
        }
    }
}

fn read_len<const N: usize>(raw: &mut Raw) -> usize {
    let mut bytes = [0u8; 8];
    raw.read_exact(&mut bytes[8 - N..]).unwrap();
    u64::from_be_bytes(bytes) as usize
}

#[test]
fn the_close_frame_behind_a_full_socket_reaches_a_client_that_reads_again() {
    let mut started = start_with_client(|b| b.close_timeout(PATIENT_CLOSE_TIMEOUT));
    let handle = started.server.handle();
    let (mut raw, deaf) = deaf_client_with_full_socket(&started);
    handle.close(deaf, 4000, "kicked").unwrap();
    // The client reads nothing until the server has given up waiting for its Close reply
    // (one close timeout) and is sending what is left (within a second one). The pause
    // is the client's behaviour under test, not a wait for readiness.
    thread::sleep(PATIENT_CLOSE_TIMEOUT * 3 / 2);
    let reading = Instant::now();
    let (data, close) = read_to_close(&mut raw);
    eprintln!("read {data} bytes and {close:?} in {:.1?}", reading.elapsed());
    assert_eq!(data, BACKLOG, "the message queued before the close must arrive whole");
    assert_eq!(close, Some((4000, "kicked".to_owned())));
    match close_reason_of(&started.events, deaf) {
        CloseReason::Server { code: 4000, .. } => {}
        other => panic!("expected the server's close, got {other:?}"),
    }
    assert_echo(&mut started.client, "unharmed");
}
