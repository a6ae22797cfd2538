//! Text and binary messages make the round trip over wss://, up to 1 MiB.

mod common;

use common::{read_data, start, start_with_client, Started};
use tinywss::{Event, Message};
use tungstenite::Message as WsMessage;

#[test]
fn text_and_binary_round_trip() {
    let server = start(|b| b);
    let events = server.echo();
    let mut client = server.connect("/echo?x=1");
    match common::next_event(&events) {
        Event::Open { info, .. } => {
            assert_eq!(info.path, "/echo?x=1");
            assert_eq!(info.peer.ip(), client.get_ref().sock.local_addr().unwrap().ip());
            assert_eq!(info.subprotocol, None);
            assert_eq!(info.server_name.as_deref(), Some("localhost"));
        }
        other => panic!("expected Open, got {other:?}"),
    }

    client.send(WsMessage::text("héllo wörld")).unwrap();
    assert_eq!(read_data(&mut client), WsMessage::text("héllo wörld"));
    match common::next_event(&events) {
        Event::Message { message, .. } => assert_eq!(message, Message::Text("héllo wörld".into())),
        other => panic!("expected Message, got {other:?}"),
    }

    let binary: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    client.send(WsMessage::binary(binary.clone())).unwrap();
    assert_eq!(read_data(&mut client), WsMessage::binary(binary));
}

#[test]
fn one_mebibyte_binary_message() {
    let Started { server, events: _events, mut client, .. } = start_with_client(|b| b);
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    client.send(WsMessage::binary(big.clone())).unwrap();
    let back = read_data(&mut client).into_data();
    assert_eq!(back.len(), big.len());
    assert!(back == big, "1 MiB payload came back altered");
    let stats = server.handle().stats();
    assert_eq!(stats.messages_in, 1);
    assert_eq!(stats.bytes_in, 1 << 20);
}

#[test]
fn subprotocol_is_negotiated_by_server_preference() {
    let server = start(|b| b.subprotocols(["v2.chat", "v1.chat"]));
    let events = server.echo();
    let tcp = std::net::TcpStream::connect(server.addr).unwrap();
    let tls = rustls::ClientConnection::new(
        common::client_tls(&server.certs.files.ca),
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(format!("wss://localhost:{}/", server.addr.port()))
            .unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "v1.chat, v2.chat".parse().unwrap());
    let (_client, response) = tungstenite::client::client(request, rustls::StreamOwned::new(tls, tcp)).unwrap();
    assert_eq!(response.headers()["Sec-WebSocket-Protocol"], "v2.chat");
    match common::next_event(&events) {
        Event::Open { info, .. } => assert_eq!(info.subprotocol.as_deref(), Some("v2.chat")),
        other => panic!("expected Open, got {other:?}"),
    }
}
