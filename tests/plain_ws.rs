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
