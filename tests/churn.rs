//! 200 clients that connect and vanish mid-handshake leave no thread and no file
//! descriptor behind. (Alone in its file: it counts the whole process's threads and fds.)

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{assert_echo, eventually, open_fds, start_with_client, tinywss_threads, Started};

#[test]
fn clients_vanishing_mid_handshake_leak_nothing() {
    let Started { server, events: _events, client: mut good, .. } = start_with_client(|b| b);
    let handle = server.handle();
    let (threads_before, fds_before) = (tinywss_threads().len(), open_fds());

    let mut hello = Vec::new();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = rustls::ClientConnection::new(common::client_tls(&server.certs.files.ca), name).unwrap();
    tls.write_tls(&mut hello).unwrap();
    for i in 0..200 {
        let mut tcp = TcpStream::connect(server.addr).unwrap();
        // Half of them send half a ClientHello; every other one resets instead of closing.
        if i % 2 == 0 {
            tcp.write_all(&hello[..hello.len() / 2]).unwrap();
        }
        if i % 4 < 2 {
            rustix::net::sockopt::set_socket_linger(&tcp, Some(Duration::ZERO)).unwrap();
        }
        drop(tcp);
        if i % 50 == 0 {
            assert_echo(&mut good, &format!("during churn {i}"));
        }
    }

    // One address churning this fast may fill the handshake slots: then some of its
    // connections are refused at once (its share) or shed, and each is counted once.
    eventually("every churned connection is accepted or refused", || {
        let stats = handle.stats();
        stats.accepted + stats.refused == 201
    });
    eventually("every churned thread ends", || handle.stats().connections == 1);
    eventually("no tinywss thread is left", || tinywss_threads().len() == threads_before);
    eventually("no file descriptor is left", || open_fds() <= fds_before);
    let stats = handle.stats();
    let failed = stats.handshakes_failed_tls + stats.handshakes_timed_out + stats.handshakes_shed;
    assert_eq!(failed, stats.accepted - 1, "every accepted churned connection failed its handshake: {stats:?}");
    assert_eq!(stats.refused, stats.refused_per_ip, "refused only for its address's share: {stats:?}");
    assert_echo(&mut good, "after churn");
}
