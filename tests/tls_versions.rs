//! TLS 1.3 and 1.2 by default, TLS 1.3 only on request; ALPN http/1.1.

mod common;

use std::sync::Arc;

use common::{client_builder, connect_with, next_event, start};
use rustls::version::{TLS12, TLS13};
use tinywss::Event;

fn client(ca: &std::path::Path, version: &'static rustls::SupportedProtocolVersion) -> Arc<rustls::ClientConfig> {
    Arc::new(client_builder(ca, &[version]).with_no_client_auth())
}

/// The TLS version of the next connection that opens (the previous one's Close may come first).
fn opened_with(events: &std::sync::mpsc::Receiver<Event>) -> String {
    loop {
        match next_event(events) {
            Event::Open { info, .. } => return info.tls_version,
            Event::Close { .. } => continue,
            other => panic!("expected Open, got {other:?}"),
        }
    }
}

#[test]
fn tls12_and_tls13_clients_both_connect_by_default() {
    let server = start(|b| b);
    let events = server.echo();
    for (version, name) in [(&TLS12, "TLSv1_2"), (&TLS13, "TLSv1_3")] {
        let client = connect_with(server.addr, client(&server.certs.files.ca, version), "localhost", "/").unwrap();
        let negotiated = client.get_ref().conn.protocol_version().map(|v| format!("{v:?}"));
        assert_eq!(negotiated.as_deref(), Some(name));
        assert_eq!(opened_with(&events), name, "the application sees the version too");
    }
}

#[test]
fn tls13_only_refuses_tls12_clients() {
    let server = start(|b| b.tls13_only(true));
    let old = connect_with(server.addr, client(&server.certs.files.ca, &TLS12), "localhost", "/");
    let err = old.map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("ProtocolVersion") || err.contains("protocol version"), "{err}");
    connect_with(server.addr, client(&server.certs.files.ca, &TLS13), "localhost", "/").unwrap();
}

#[test]
fn alpn_selects_http11_when_a_browser_offers_h2() {
    let server = start(|b| b);
    let mut config = client_builder(&server.certs.files.ca, rustls::DEFAULT_VERSIONS).with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let client = connect_with(server.addr, Arc::new(config), "localhost", "/").unwrap();
    assert_eq!(client.get_ref().conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}
