//! Handshake limits: the deadline (slowloris), request-head size and header count,
//! garbage instead of TLS or HTTP, and the connection limit. Each offender gets the
//! documented treatment; a client connected at the same time keeps working.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{
    assert_echo, eventually, http_exchange, next_open, raw_tls, start, start_with_client, status_of, Started,
    UPGRADE_REQUEST,
};

/// Writes `bytes` one per second until the server hangs up; returns how long it took.
fn dribble(mut tcp: TcpStream, bytes: &[u8]) -> Duration {
    let start = Instant::now();
    tcp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    for byte in bytes.iter().take(20) {
        if tcp.write_all(&[*byte]).is_err() {
            break;
        }
        // The read timeout paces the bytes; a read that returns means the server hung up.
        match tcp.read(&mut [0u8; 256]) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            _ => break,
        }
    }
    start.elapsed()
}

#[test]
fn byte_a_second_tls_handshake_is_cut_at_the_deadline() {
    let Started { server, events: _events, client: mut good, .. } =
        start_with_client(|b| b.handshake_timeout(Duration::from_secs(2)));

    let mut hello = Vec::new();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = rustls::ClientConnection::new(common::client_tls(&server.certs.files.ca), name).unwrap();
    tls.write_tls(&mut hello).unwrap();
    let took = dribble(TcpStream::connect(server.addr).unwrap(), &hello);
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(5), "cut after {took:?}");

    let handle = server.handle();
    eventually("the timeout is counted", || handle.stats().handshakes_timed_out == 1);
    assert_echo(&mut good, "unharmed");
}

#[test]
fn byte_a_second_http_request_is_cut_at_the_same_deadline() {
    let server = start(|b| b.handshake_timeout(Duration::from_secs(2)));
    let mut raw = raw_tls(server.addr, &server.certs.files.ca);
    let start = Instant::now();
    raw.sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    for byte in UPGRADE_REQUEST.as_bytes().iter().take(20) {
        if raw.write_all(&[*byte]).and_then(|_| raw.flush()).is_err() {
            break;
        }
        match raw.read(&mut [0u8; 256]) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            _ => break,
        }
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(5), "cut after {took:?}");
    let handle = server.handle();
    eventually("the timeout is counted", || handle.stats().handshakes_timed_out == 1);
}

#[test]
fn oversized_request_head_gets_431() {
    let Started { server, events: _events, client: mut good, .. } = start_with_client(|b| b.max_request_head(2048));
    let mut raw = raw_tls(server.addr, &server.certs.files.ca);
    let padding = format!("X-Padding: {}\r\n", "a".repeat(4096));
    let request = UPGRADE_REQUEST.replace("Host: localhost\r\n", &format!("Host: localhost\r\n{padding}"));
    assert_eq!(status_of(&http_exchange(&mut raw, request.as_bytes())), 431);
    assert_echo(&mut good, "unharmed");
    // Counted once the refusal has been sent, so perhaps just after the client read it.
    let handle = server.handle();
    eventually("the refusal is counted", || handle.stats().handshakes_failed_http == 1);
}

#[test]
fn too_many_headers_gets_431() {
    let server = start(|b| b);
    let mut raw = raw_tls(server.addr, &server.certs.files.ca);
    let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
    let request = UPGRADE_REQUEST.replace("Host: localhost\r\n", &format!("Host: localhost\r\n{many}"));
    assert_eq!(status_of(&http_exchange(&mut raw, request.as_bytes())), 431);
}

#[test]
fn garbage_instead_of_http_gets_400() {
    let Started { server, events: _events, client: mut good, .. } = start_with_client(|b| b);
    let mut raw = raw_tls(server.addr, &server.certs.files.ca);
    assert_eq!(status_of(&http_exchange(&mut raw, b"\x00\x01\x02 garbage \xff\xfe\r\n\r\n")), 400);
    assert_echo(&mut good, "unharmed");
}

#[test]
fn garbage_instead_of_a_client_hello_is_dropped() {
    let Started { server, events: _events, client: mut good, .. } = start_with_client(|b| b);
    let mut tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(common::PATIENCE)).unwrap();
    tcp.write_all(&[0x00, 0xff, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef]).unwrap();
    // The server hangs up without a word: EOF or reset, well before the deadline.
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    assert!(rest.is_empty(), "server answered garbage with {rest:?}");
    let handle = server.handle();
    eventually("the failure is counted", || handle.stats().handshakes_failed_tls == 1);
    assert_echo(&mut good, "unharmed");
}

#[test]
fn connections_beyond_the_limit_are_refused_before_tls() {
    let server = start(|b| b.max_connections(2));
    let events = server.echo();
    let mut first = server.connect("/");
    let mut second = server.connect("/");
    next_open(&events);
    next_open(&events);
    let refused = common::connect(server.addr, &server.certs.files.ca, "/").map(|_| ()).unwrap_err();
    assert!(matches!(refused, tungstenite::Error::Io(_)), "{refused}");
    let stats = server.handle().stats();
    assert_eq!((stats.refused, stats.accepted, stats.connections), (1, 2, 2));
    assert_echo(&mut first, "one");
    assert_echo(&mut second, "two");
    // A slot frees up when a client leaves.
    drop(first);
    let handle = server.handle();
    eventually("the first client's thread ends", || handle.stats().connections == 1);
    let mut third = server.connect("/");
    assert_echo(&mut third, "three");
}
