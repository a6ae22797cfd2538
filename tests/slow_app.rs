//! An application that stops reading events: clients are slowed down through TCP,
//! nothing is dropped, and the application's own Handle calls never block.

mod common;

use std::thread;

use common::{read_data, start};
use tinywss::{Event, Message};
use tungstenite::Message as WsMessage;

const MESSAGES: usize = 2_000;

#[test]
fn slow_application_loses_nothing_and_handle_calls_return() {
    // DropNewest: the broadcasts that do not fit the stuck client's queue are counted.
    let server = start(|b| b.events_capacity(4).slow_consumer_policy(tinywss::SlowConsumerPolicy::DropNewest));
    let events = server.server.events();
    let (addr, ca) = (server.addr, server.certs.files.ca.clone());
    let mut client = common::connect(addr, &ca, "/").unwrap();
    let conn = match events.recv_timeout(common::PATIENCE).unwrap() {
        Event::Open { conn, .. } => conn,
        other => panic!("{other:?}"),
    };
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
