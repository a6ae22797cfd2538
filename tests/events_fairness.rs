//! One client floods small messages faster than the application takes them: it cannot
//! take the whole events channel, so another client's message reaches the application
//! long before the flood's backlog is drained; and nothing is lost.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{read_data, start};
use tinywss::{Event, Message};
use tungstenite::Message as WsMessage;

const FLOOD: usize = 3_000;
/// How long the application spends on each of the flooder's messages: slower than the flood.
const SLOW: Duration = Duration::from_micros(500);
const CAPACITY: usize = 1024;
/// How many times the good client speaks during the flood.
const GOOD: usize = 3;

/// What the application saw of the good client's messages: how many of the flooder's
/// messages it had taken when each arrived.
struct Arrival {
    text: String,
    flood_taken: usize,
    at: Instant,
}

#[test]
fn a_flooding_client_does_not_hold_back_the_others() {
    let server = start(|b| b.events_capacity(CAPACITY));
    let events = server.server.events();
    let mut good = server.connect("/");
    common::next_open(&events);
    let mut flood = server.connect("/");
    let flooder = common::next_open(&events);

    // The application: slow with the flooder's messages (checking their order), echoes
    // the good client's and notes when they came.
    let flood_taken = Arc::new(AtomicUsize::new(0));
    let (arrivals_tx, arrivals) = std::sync::mpsc::channel();
    let app = {
        let (events, handle, taken) = (server.server.events(), server.handle(), Arc::clone(&flood_taken));
        thread::spawn(move || {
            let (mut next, mut good_seen) = (0, 0);
            while next < FLOOD || good_seen < GOOD {
                match events.recv_timeout(common::PATIENCE).expect("the flood stopped coming") {
                    Event::Message { conn, message: Message::Text(text), .. } if conn == flooder => {
                        assert_eq!(text, next.to_string(), "the flooder's messages out of order");
                        next += 1;
                        taken.store(next, Ordering::SeqCst);
                        thread::sleep(SLOW);
                    }
                    Event::Message { conn, message: Message::Text(text), .. } => {
                        let at = Instant::now();
                        good_seen += 1;
                        let _ = arrivals_tx.send(Arrival { text: text.clone(), flood_taken: next, at });
                        handle.send(conn, text).unwrap();
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        })
    };
    let sender = thread::spawn(move || {
        for i in 0..FLOOD {
            flood.send(WsMessage::text(i.to_string())).unwrap();
        }
        flood
    });

    // Once the flood has backed up, the good client speaks, a few times.
    common::eventually("the flood backs up in the events channel", || events.len() >= 100);
    let mut worst = (0, Duration::ZERO);
    for i in 0..GOOD {
        let text = format!("hello {i}");
        let (sent, flood_before) = (Instant::now(), flood_taken.load(Ordering::SeqCst));
        good.send(WsMessage::text(text.clone())).unwrap();
        let arrival = arrivals.recv_timeout(common::PATIENCE).expect("the good client's message never arrived");
        assert_eq!(arrival.text, text);
        let ahead = arrival.flood_taken - flood_before;
        let latency = arrival.at - sent;
        eprintln!("good message {i}: {ahead} flood messages ahead of it, {latency:?} to the application");
        worst = (worst.0.max(ahead), worst.1.max(latency));
        assert_eq!(read_data(&mut good), WsMessage::text(text));
    }
    let flood_left = FLOOD - flood_taken.load(Ordering::SeqCst);
    app.join().unwrap();
    let _flood = sender.join().unwrap();
    eprintln!("worst: {} flood messages ahead, {:?}; {flood_left} of the flood still to come then", worst.0, worst.1);
    assert!(worst.0 <= CAPACITY / 4, "the good client's message waited behind {} flood messages", worst.0);
    assert!(worst.1 < Duration::from_secs(1), "the good client's message took {:?}", worst.1);
    assert!(flood_left > 0, "the good client's messages arrived only after the whole flood");
    let stats = server.handle().stats();
    assert!(stats.events_throttled > 0, "the flood was never held back: {stats:?}");
    assert_eq!(stats.messages_in, (FLOOD + GOOD) as u64);
}
