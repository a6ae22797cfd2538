//! Plain ws:// only on explicit request, for a server behind a TLS-terminating proxy.

mod common;

use std::net::TcpStream;

use common::logs;
use common::{eventually, next_event, TestCerts};
use tinywss::{Config, Error, Event, Server};

fn plain_server() -> Server {
    logs::capture();
    let config = Config::builder().bind("127.0.0.1:0").plain_ws_behind_proxy(true).build().unwrap();
    Server::bind(config).unwrap()
}

#[test]
fn plain_client_exchanges_messages_and_start_is_warned_about() {
    let server = plain_server();
    let addr = server.local_addr();
    let warned = logs::matching(log::Level::Warn, &format!("plain ws:// without TLS on {addr}"));
    assert_eq!(warned.len(), 1, "one warning at start");

    let events = common::echo_events(&server);
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let (mut client, _) = tungstenite::client::client(format!("ws://localhost:{}/feed", addr.port()), tcp).unwrap();
    match next_event(&events) {
        Event::Open { info, .. } => {
            assert_eq!(info.path, "/feed");
            assert_eq!(info.tls_version, "");
            assert!(info.server_name.is_none() && info.client_certificate.is_none());
        }
        other => panic!("expected Open, got {other:?}"),
    }
    client.send(tungstenite::Message::text("over plain TCP")).unwrap();
    let reply = loop {
        match client.read().unwrap() {
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => continue,
            other => break other,
        }
    };
    assert_eq!(reply, tungstenite::Message::text("over plain TCP"));
    assert!(matches!(server.handle().reload_tls(), Err(Error::Config(_))));
}

#[test]
fn tls_client_on_the_plain_port_is_turned_away() {
    let server = plain_server();
    let certs = TestCerts::new();
    let err = common::connect(server.local_addr(), &certs.files.ca, "/").map(|_| ()).unwrap_err();
    assert!(matches!(err, tungstenite::Error::Io(_) | tungstenite::Error::Tls(_)), "{err:?}");
    let handle = server.handle();
    eventually("the TLS attempt is counted as a failed handshake", || handle.stats().handshakes_failed_tls == 1);
}

#[test]
fn plain_mode_excludes_tls_settings() {
    let certs = TestCerts::new();
    let result =
        Config::builder().plain_ws_behind_proxy(true).tls_pem_files(&certs.files.cert, &certs.files.key).build();
    let text = result.map(|_| ()).unwrap_err().to_string();
    assert!(text.contains("plain_ws_behind_proxy(true) serves no TLS"), "{text}");
}

#[test]
fn without_opt_in_a_tls_identity_is_required() {
    let text = Config::builder().build().map(|_| ()).unwrap_err().to_string();
    assert!(text.contains("no TLS identity") && text.contains("plain_ws_behind_proxy"), "{text}");
}

/// Sends an Upgrade request for `/` with these `Host` and `Origin` headers over plain
/// TCP; returns the status.
fn upgrade_status(addr: std::net::SocketAddr, host: &str, origin: &str) -> u16 {
    use std::io::{Read, Write};
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let request =
        common::UPGRADE_REQUEST.replace("Host: localhost\r\n", &format!("Host: {host}\r\nOrigin: {origin}\r\n"));
    tcp.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    common::status_of(&String::from_utf8_lossy(&head))
}

#[test]
fn same_origin_behind_a_proxy_accepts_http_and_https_pages() {
    logs::capture();
    let config = Config::builder().bind("127.0.0.1:0").plain_ws_behind_proxy(true).allow_same_origin(true);
    let server = Server::bind(config.build().unwrap()).unwrap();
    let addr = server.local_addr();
    let events = common::echo_events(&server);
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let (mut good, _) = tungstenite::client::client(format!("ws://localhost:{}/", addr.port()), tcp).unwrap();
    common::next_open(&events);

    let local = format!("localhost:{}", addr.port());
    for (host, origin, expected) in [
        (local.as_str(), format!("http://{local}"), 101),
        (local.as_str(), format!("https://{local}"), 101),
        ("example.com", "https://example.com".to_owned(), 101),
        ("example.com", "http://example.com".to_owned(), 101),
        ("example.com", "https://example.com:8443".to_owned(), 403),
        (local.as_str(), format!("ftp://{local}"), 403),
        (local.as_str(), local.clone(), 403),
        (local.as_str(), "null".to_owned(), 403),
    ] {
        assert_eq!(upgrade_status(addr, host, &origin), expected, "Origin {origin:?} with Host {host}");
    }
    good.send(tungstenite::Message::text("unaffected")).unwrap();
    let reply = loop {
        match good.read().unwrap() {
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => continue,
            other => break other,
        }
    };
    assert_eq!(reply, tungstenite::Message::text("unaffected"));
}
