//! A static file is sent with exactly the length its `Content-Length` announced: a file
//! that grows while being sent is cut there, and one that shrinks ends the connection
//! after what was left (a short body). A WebSocket client echoes meanwhile.
//!
//! The client's receive buffer is kept small and it reads nothing until the file has
//! changed, so the server is stuck partway through the file (a few MiB of socket
//! buffers at most) when it changes.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};

use common::{assert_echo, logs, next_open, start, TempDir, TestServer, PATIENCE};
use rustix::net::{sockopt, AddressFamily, SocketType};

/// Well beyond what the socket buffers between server and client hold (the server's
/// send buffer grows to 4 MiB by default on Linux; the client's is pinned small).
const SIZE: usize = 12 << 20;

/// A site with one large file, `big.bin`, of `SIZE` bytes `a`.
fn site() -> (TempDir, PathBuf) {
    let site = TempDir::new();
    let file = site.0.join("big.bin");
    std::fs::write(&file, vec![b'a'; SIZE]).unwrap();
    (site, file)
}

/// A TLS client whose TCP receive buffer is pinned at 64 KiB before it connects.
fn small_window_client(addr: SocketAddr, ca: &Path) -> common::Raw {
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    sockopt::set_socket_recv_buffer_size(&fd, 64 << 10).unwrap();
    rustix::net::connect(&fd, &addr).unwrap();
    let tcp = TcpStream::from(fd);
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    tcp.set_write_timeout(Some(PATIENCE)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = rustls::ClientConnection::new(common::client_tls(ca), name).unwrap();
    rustls::StreamOwned::new(tls, tcp)
}

/// Asks for `big.bin` and reads the response head; returns the client and the
/// announced length.
fn request_big_file(server: &TestServer) -> (common::Raw, usize) {
    let mut raw = small_window_client(server.addr, &server.certs.files.ca);
    let head = common::http_exchange(&mut raw, b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(common::status_of(&head), 200, "{head}");
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length in {head}"));
    (raw, length)
}

/// Reads the body until the server ends the connection.
fn read_body(raw: &mut common::Raw) -> Vec<u8> {
    let mut body = Vec::new();
    let mut chunk = [0u8; 64 << 10];
    loop {
        match raw.read(&mut chunk) {
            Ok(0) => return body,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return body,
            Err(e) => panic!("reading the body after {} bytes: {e}", body.len()),
        }
    }
}

#[test]
fn a_file_that_grows_while_being_sent_is_cut_at_its_announced_length() {
    let (site, file) = site();
    let server = start(|b| b.static_dir(&site.0).websocket_path("/ws"));
    let events = server.echo();
    let mut good = server.connect("/ws");
    next_open(&events);

    let (mut raw, length) = request_big_file(&server);
    assert_eq!(length, SIZE);
    std::fs::OpenOptions::new().append(true).open(&file).unwrap().write_all(&vec![b'b'; 1 << 20]).unwrap();
    assert_echo(&mut good, "while the file is sent");
    let body = read_body(&mut raw);
    let extra = body.len().saturating_sub(length);
    assert_eq!(extra, 0, "{extra} bytes sent past the announced Content-Length of {length}");
    assert!(body.iter().all(|&b| b == b'a'), "the body is the file as it was announced");
    assert_echo(&mut good, "after the file");
}

#[test]
fn a_file_that_shrinks_while_being_sent_ends_the_connection_early() {
    logs::capture_at(log::LevelFilter::Debug);
    let (site, file) = site();
    let server = start(|b| b.static_dir(&site.0).websocket_path("/ws"));
    let events = server.echo();
    let mut good = server.connect("/ws");
    next_open(&events);

    let (mut raw, length) = request_big_file(&server);
    std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(0).unwrap();
    assert_echo(&mut good, "while the file is sent");
    let body = read_body(&mut raw);
    assert!(body.len() < length, "a short body: {} of {length} bytes", body.len());
    let shrank = logs::matching(log::Level::Debug, "shrank while being sent");
    assert_eq!(shrank.len(), 1, "{shrank:?}");
    assert_echo(&mut good, "after the file");
    let stats = server.handle().stats();
    assert_eq!((stats.http_responses, stats.handshakes_failed_http), (1, 0), "{stats:?}");
}
