//! Failed handshakes in the log: a person trying one client after another sees each new
//! kind of failure at once; a storm of the same kind shows once per interval. (Alone in
//! its file: it installs the capturing logger for the whole test binary.)

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::pki::Ca;
use common::{eventually, logs, start, TempDir};
use log::Level;

/// Sends a plain HTTP request to the TLS port and reads the plain-text answer.
fn plain_http(addr: std::net::SocketAddr) {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(common::PATIENCE)).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

#[test]
fn each_new_kind_of_failure_shows_at_once_and_repeats_are_held_back() {
    logs::capture_at(log::LevelFilter::Debug);
    let server = start(|b| b);
    let handle = server.handle();
    let plain = "spoke plain HTTP";
    let untrusted = "does not trust our certificate";

    plain_http(server.addr);
    eventually("the plain HTTP client is logged", || logs::containing(plain).len() == 1);
    // Right after it, a client that does not trust our certificate: another kind.
    let dir = TempDir::new();
    let other_ca = Ca::new("Some other CA").write(&dir.0.join("other-ca.pem"));
    assert!(common::connect(server.addr, &other_ca, "/").is_err());
    eventually("the untrusted client is logged", || logs::containing(untrusted).len() == 1);
    assert_eq!(logs::matching(Level::Info, untrusted).len(), 1, "a new kind of failure shows at info at once");

    // The same kinds again, at once: held back to debug.
    for _ in 0..3 {
        plain_http(server.addr);
    }
    eventually("every failure is logged at some level", || logs::containing(plain).len() == 4);
    assert_eq!(logs::matching(Level::Info, plain).len(), 1, "repeats within the interval are held back");
    assert_eq!(logs::matching(Level::Debug, plain).len(), 3);
    assert_eq!(handle.stats().handshakes_failed_tls, 5);
}
