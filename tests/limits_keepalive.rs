//! Keepalive and idle timeouts: a silent client is found out; an active one is not.

mod common;

use std::sync::mpsc::TryRecvError;
use std::time::Duration;

use common::{assert_echo, next_open, raw_websocket, start_with_client, Started};
use tinywss::{CloseReason, Error, Event, Timeout};
use tungstenite::Message as WsMessage;

#[test]
fn client_that_never_answers_pings_is_dropped_and_reported() {
    let Started { server, events, client: mut good, .. } = start_with_client(|b| {
        b.ping_interval(Some(Duration::from_millis(300))).pong_timeout(Duration::from_millis(300))
    });
    // A raw client that never reads never answers the server's pings.
    let _deaf = raw_websocket(server.addr, &server.certs.files.ca);
    let deaf = next_open(&events);
    // The good client keeps talking (bounded) until the deaf one is reported.
    let reason = (0..100_000)
        .find_map(|i| {
            assert_echo(&mut good, &format!("message {i}"));
            match events.try_recv() {
                Ok(Event::Close { conn, reason, .. }) if conn == deaf => Some(reason),
                Ok(_) | Err(TryRecvError::Empty) => None,
                Err(e) => panic!("{e}"),
            }
        })
        .expect("the deaf client was never dropped");
    assert!(matches!(reason, CloseReason::Error(Error::Timeout(Timeout::Pong))), "{reason}");
    assert_eq!(server.handle().stats().limit_closes, 1);
}

#[test]
fn client_that_answers_pings_but_never_sends_hits_the_idle_timeout() {
    let Started { server: _server, events, client: mut quiet, conn } = start_with_client(|b| {
        b.ping_interval(Some(Duration::from_millis(100)))
            .pong_timeout(Duration::from_millis(500))
            .idle_timeout(Some(Duration::from_millis(700)))
    });
    // Reading answers pings; the first data-less message the client sees is the Close.
    let mut pings = 0;
    let close = loop {
        match quiet.read().unwrap() {
            WsMessage::Ping(_) => pings += 1,
            WsMessage::Close(frame) => break frame.unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(pings >= 2, "the server pinged {pings} times before the idle timeout");
    assert_eq!((u16::from(close.code), close.reason.as_str()), (1000, "idle timeout"));
    match common::close_reason_of(&events, conn) {
        CloseReason::Server { code: 1000, reason } => assert_eq!(reason, "idle timeout"),
        other => panic!("expected the idle close, got {other:?}"),
    }
}
