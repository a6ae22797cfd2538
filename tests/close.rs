//! Ping/pong and the close handshake, started by the client or by the server.

mod common;

use std::borrow::Cow;

use common::{next_event, read_data, start_with_client, Started};
use tinywss::{CloseReason, Event};
use tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
use tungstenite::Message as WsMessage;

#[test]
fn client_ping_gets_a_pong() {
    let Started { server: _server, events: _events, mut client, .. } = start_with_client(|b| b);
    client.send(WsMessage::Ping(b"are you there"[..].into())).unwrap();
    match client.read().unwrap() {
        WsMessage::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
}

#[test]
fn client_close_is_reported_and_answered() {
    let Started { server: _server, events, mut client, conn } = start_with_client(|b| b);
    client.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye now".into() })).unwrap();
    // The server echoes the Close frame (completing the handshake) and then closes TCP.
    match client.read() {
        Ok(WsMessage::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the server's Close reply, got {other:?}"),
    }
    assert!(matches!(client.read(), Err(tungstenite::Error::ConnectionClosed)));
    match next_event(&events) {
        Event::Close { conn: closed, reason: CloseReason::Client { code, reason }, .. } => {
            assert_eq!((closed, code, reason.as_str()), (conn, 1000, "bye now"));
        }
        other => panic!("expected Close from the client, got {other:?}"),
    }
}

#[test]
fn server_close_sends_code_and_reason_after_queued_messages() {
    let Started { server, events, mut client, conn } = start_with_client(|b| b);
    let handle = server.handle();
    handle.send(conn, "last words").unwrap();
    handle.close(conn, 4000, "kicked").unwrap();
    assert_eq!(read_data(&mut client), WsMessage::text("last words"));
    match client.read() {
        Ok(WsMessage::Close(Some(frame))) => {
            assert_eq!(frame.code, CloseCode::from(4000));
            assert_eq!(frame.reason.as_str(), "kicked");
        }
        other => panic!("expected Close, got {other:?}"),
    }
    // tungstenite replies to the Close; the server then ends the connection.
    while client.read().is_ok() {}
    match next_event(&events) {
        Event::Close { reason: CloseReason::Server { code, reason }, .. } => {
            assert_eq!((code, Cow::from(reason)), (4000, Cow::from("kicked")));
        }
        other => panic!("expected Close by the server, got {other:?}"),
    }
    assert!(matches!(handle.close(conn, 1005, ""), Err(tinywss::Error::InvalidCloseCode(1005))));
}
