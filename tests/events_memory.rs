//! A client that sends large messages faster than the application takes them: the bytes
//! waiting in the events channel stay near `events_bytes`, not `events_capacity` whole
//! messages, and a well-behaved client's messages still get through promptly.
//!
//! Alone in its file: it measures the peak memory of the whole process.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{proc_status_kib, start};
use tinywss::{ConnectionId, Event, Message};
use tungstenite::Message as WsMessage;

const MESSAGE: usize = 1 << 20;
/// Enough to show the growth without the bound (200 MiB), few enough not to exhaust the machine.
const MESSAGES: usize = 200;
/// How long the application spends on each of the flooder's messages.
const SLOW: Duration = Duration::from_millis(10);
/// How long the application stops reading at the flooder's first message (unless the
/// flooder has sent everything before).
const PAUSE: Duration = Duration::from_secs(2);

/// What the threads of the test tell each other.
#[derive(Default)]
struct Progress {
    /// The flooder's client has sent every message.
    sent: AtomicBool,
    /// The application's pause is over.
    resumed: AtomicBool,
    /// The application has taken every message of the flooder.
    done: AtomicBool,
}

/// The application: stops reading for a while at the flooder's first message, then is
/// slow with the flooder's messages (checking their order) and echoes the good client at
/// once. Returns once it has taken them all and the good client has said goodbye.
fn slow_application(
    server: &common::TestServer,
    flooder: ConnectionId,
    progress: Arc<Progress>,
) -> thread::JoinHandle<()> {
    let events = server.server.events();
    let handle = server.handle();
    thread::spawn(move || {
        let (mut next, mut talking) = (0, true);
        while next < MESSAGES || talking {
            match events.recv_timeout(common::PATIENCE).expect("the flooder's messages stopped coming") {
                Event::Message { conn, message: Message::Binary(data), .. } if conn == flooder => {
                    assert_eq!(data.len(), MESSAGE);
                    assert_eq!(data[..8], (next as u64).to_be_bytes(), "the flooder's messages out of order");
                    if next == 0 {
                        let end = Instant::now() + PAUSE;
                        while Instant::now() < end && !progress.sent.load(Ordering::SeqCst) {
                            thread::sleep(Duration::from_millis(10));
                        }
                        progress.resumed.store(true, Ordering::SeqCst);
                    }
                    next += 1;
                    progress.done.store(next == MESSAGES, Ordering::SeqCst);
                    thread::sleep(SLOW);
                }
                Event::Message { message: Message::Text(text), .. } if text == "bye" => talking = false,
                Event::Message { conn, message, .. } => handle.send(conn, message).unwrap(),
                other => panic!("unexpected {other:?}"),
            }
        }
    })
}

#[test]
fn large_messages_wait_in_tcp_not_in_the_events_channel() {
    let server = start(|b| b);
    let events = server.server.events();
    let mut good = server.connect("/");
    common::next_open(&events);
    let mut flood = server.connect("/");
    let flooder = common::next_open(&events);
    let progress = Arc::new(Progress::default());
    let app = slow_application(&server, flooder, Arc::clone(&progress));
    let before = proc_status_kib("VmRSS");

    let sender = {
        let progress = Arc::clone(&progress);
        thread::spawn(move || {
            for i in 0..MESSAGES {
                let mut data = vec![0u8; MESSAGE];
                data[..8].copy_from_slice(&(i as u64).to_be_bytes());
                flood.send(WsMessage::binary(data)).unwrap();
            }
            progress.sent.store(true, Ordering::SeqCst);
            flood
        })
    };
    // Once the application reads again, the good client talks to it until the flood is over.
    let talker = thread::spawn(move || {
        common::eventually("the application reads again", || progress.resumed.load(Ordering::SeqCst));
        let (mut exchanges, mut slowest) = (0, Duration::ZERO);
        while !progress.done.load(Ordering::SeqCst) {
            let start = Instant::now();
            good.send(WsMessage::text(format!("still here {exchanges}"))).unwrap();
            let echoed = matches!(good.read(), Ok(WsMessage::Text(_)));
            slowest = slowest.max(start.elapsed());
            exchanges += 1;
            if !echoed {
                break;
            }
        }
        good.send(WsMessage::text("bye")).unwrap();
        (exchanges, slowest)
    });
    app.join().unwrap();
    let _flood = sender.join().unwrap();
    let (exchanges, slowest) = talker.join().unwrap();
    let grown = proc_status_kib("VmHWM").saturating_sub(before);
    eprintln!(
        "{MESSAGES} messages of 1 MiB to a slow application: peak memory grew {grown} KiB; \
         good client: {exchanges} echoes, slowest {slowest:?}"
    );
    assert!(grown < 48 * 1024, "peak memory grew {grown} KiB");
    assert!(slowest < Duration::from_secs(1), "the good client waited {slowest:?} for an echo");
    assert_eq!(server.handle().stats().messages_in, (MESSAGES + exchanges + 1) as u64);
}
