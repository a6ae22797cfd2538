//! Clients that cannot speak wss:// with us fail at the TLS step, visibly.

mod common;

use std::net::TcpStream;

use common::{eventually, start, TestCerts};

#[test]
fn client_that_does_not_trust_the_certificate_fails() {
    let server = start(|b| b);
    let other_ca = TestCerts::new();
    let err = common::connect(server.addr, &other_ca.files.ca, "/").map(|_| ()).unwrap_err();
    // The other CA has the same name, so rustls finds it and the signature fails.
    assert!(err.to_string().contains("invalid peer certificate"), "unexpected error: {err}");
    let handle = server.handle();
    eventually("the server counts the failed handshake", || handle.stats().handshakes_failed_tls == 1);
    // Counted by the handshake thread; the connection thread ends a moment later.
    eventually("the connection is no longer counted", || handle.stats().connections == 0);
}

#[test]
fn plain_ws_client_gets_no_websocket() {
    let server = start(|b| b);
    let tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let url = format!("ws://localhost:{}/", server.addr.port());
    match tungstenite::client::client(url, tcp) {
        Ok(_) => panic!("a plain ws:// client got a WebSocket on the TLS port"),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            // The server answers in plain text, so a person sees why.
            assert_eq!(response.status(), 400);
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("use https:// or wss://"), "{body}");
        }
        Err(e) => panic!("expected an HTTP 400 answer, got {e:?}"),
    }
    let handle = server.handle();
    eventually("the server counts the failed handshake", || handle.stats().handshakes_failed_tls == 1);
}

#[test]
fn client_with_wrong_host_name_fails() {
    let server = start(|b| b);
    let tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("example.com").unwrap();
    let tls = rustls::ClientConnection::new(common::client_tls(&server.certs.files.ca), name).unwrap();
    let stream = rustls::StreamOwned::new(tls, tcp);
    let url = format!("wss://example.com:{}/", server.addr.port());
    let err = tungstenite::client::client(url, stream).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("not valid for name \"example.com\""), "unexpected error: {err}");
}
