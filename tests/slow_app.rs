//! An application that stops reading events: clients are slowed down through TCP,
//! nothing is dropped, and the application's own Handle calls never block.

mod common;

use std::thread;

use common::{next_open, read_data, start};
use tinywss::{Event, Message};
use tungstenite::Message as WsMessage;

const MESSAGES: usize = 2_000;

#[test]
fn slow_application_loses_nothing_and_handle_calls_return() {
    // DropNewest: the broadcasts that do not fit the stuck client's queue are counted.
    let server = start(|b| b.events_capacity(4).slow_consumer_policy(tinywss::SlowConsumerPolicy::DropNewest));
    let events = server.server.events();
    let mut client = server.connect("/");
    let conn = next_open(&events);
    // The client sends far more than the channel holds, from its own thread.
    let sender = thread::spawn(move || {
        for i in 0..MESSAGES {
            client.send(WsMessage::text(format!("{i}"))).unwrap();
        }
        client
    });

    // The application does not read: the connection's share of the channel fills and
    // its thread waits.
    let handle = server.handle();
    common::eventually("the connection thread waits", || handle.stats().events_throttled >= 1);
    let waiting = events.len();
    // Meanwhile the application acts through its handle: every call returns although
    // the connection thread is stuck waiting for the application.
    for _ in 0..2_000 {
        handle.broadcast("tick").unwrap();
        let _ = handle.stats();
    }
    assert_eq!(events.len(), waiting, "no event should go in while the app is away");

    // The application comes back and finds every message, in order.
    let mut next = 0;
    while next < MESSAGES {
        match events.recv_timeout(common::PATIENCE).expect("messages went missing") {
            Event::Message { conn: from, message: Message::Text(text), .. } => {
                assert_eq!(from, conn);
                assert_eq!(text, next.to_string());
                next += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut client = sender.join().unwrap();
    // Every broadcast was either delivered or dropped and counted: none lost silently.
    handle.send(conn, "end").unwrap();
    let ticks = (0..).take_while(|_| read_data(&mut client) == WsMessage::text("tick")).count();
    let stats = handle.stats();
    eprintln!("slow app: {ticks} ticks delivered, {} dropped", stats.dropped);
    assert_eq!(ticks as u64 + stats.dropped, 2_000, "{stats:?}");
    assert_eq!(stats.messages_in, MESSAGES as u64);
}

/// A client whose messages wait for a slow application is not ended as idle: its
/// messages count from when they were read, not from when the read that waited began.
#[test]
fn messages_waiting_for_the_application_keep_the_client_from_idling() {
    let idle = std::time::Duration::from_millis(400);
    let server = start(|b| b.events_capacity(4).idle_timeout(Some(idle)));
    let events = server.server.events();
    let mut client = server.connect("/");
    let conn = next_open(&events);
    // More than the connection's share of the channel, in one write: one read batch.
    for i in 0..16 {
        client.write(WsMessage::text(format!("{i}"))).unwrap();
    }
    client.flush().unwrap();
    let handle = server.handle();
    common::eventually("the connection thread waits", || handle.stats().events_throttled >= 1);
    // The application is away for longer than the idle timeout, while the connection
    // thread waits in the middle of its batch.
    thread::sleep(idle * 2);
    for i in 0..16 {
        match events.recv_timeout(common::PATIENCE).expect("messages went missing") {
            Event::Message { message: Message::Text(text), .. } => assert_eq!(text, i.to_string()),
            other => panic!("unexpected {other:?}"),
        }
    }
    // The batch that carried them ended a moment ago: the connection is still open.
    handle.send(conn, "still here").unwrap();
    assert_eq!(read_data(&mut client), WsMessage::text("still here"));
    assert!(events.try_recv().is_err(), "no Close event: {:?}", events.try_recv());
}
