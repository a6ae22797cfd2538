//! A panic on a connection thread after `Open`: the application's code that runs there
//! in events mode is its logger, so this file installs one that panics once, on the
//! record of a marked message. The connection still ends like any other: a `Close` event
//! with [`Error::Panicked`], the `websockets` count down, out of its rooms, unregistered,
//! its thread and fds gone; the server and its other client carry on. (Alone in its file:
//! it sets the process's logger and counts the whole process's threads and fds.)

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::{assert_echo, close_reason_of, eventually, next_open, open_fds, start, tinywss_threads};
use tinywss::{CloseReason, Error};

/// The length of the message whose `trace` record makes the logger panic.
const MARKED_LEN: usize = 4242;

/// Keeps nothing, and panics once on the record of a received message of `MARKED_LEN` bytes.
struct PanickingLogger {
    armed: AtomicBool,
}

impl log::Log for PanickingLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let marked = format!("message of {MARKED_LEN} bytes received");
        if record.args().to_string().contains(&marked) && self.armed.swap(false, Ordering::SeqCst) {
            panic!("the application's logger failed");
        }
    }

    fn flush(&self) {}
}

static LOGGER: PanickingLogger = PanickingLogger { armed: AtomicBool::new(true) };

/// Waits for the next Open event, past the events of the clients already open.
fn later_open(events: &std::sync::mpsc::Receiver<tinywss::Event>) {
    while !matches!(common::next_event(events), tinywss::Event::Open { .. }) {}
}

#[test]
fn a_panic_after_open_still_closes_and_forgets_the_connection() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let server = start(|b| b);
    let events = server.echo();
    let mut good = server.connect("/");
    next_open(&events);
    let handle = server.handle();
    let (threads_before, fds_before) = (tinywss_threads().len(), open_fds());

    let mut offender = server.connect("/");
    let id = next_open(&events);
    handle.join(id, "lobby").unwrap();
    assert_echo(&mut offender, "before the panic");
    let stats = handle.stats();
    assert_eq!((stats.websockets, stats.room_members), (2, 1), "{stats:?}");

    offender.send(tungstenite::Message::text("x".repeat(MARKED_LEN))).unwrap();
    assert_echo(&mut good, "while the other thread panics");
    match close_reason_of(&events, id) {
        CloseReason::Error(Error::Panicked(message)) => assert_eq!(message, "the application's logger failed"),
        other => panic!("expected a close for a panic, got {other:?}"),
    }
    let stats = handle.stats();
    assert_eq!((stats.websockets, stats.rooms, stats.room_members, stats.panics), (1, 0, 0, 1), "{stats:?}");
    handle.send(id, "to nobody").unwrap();
    assert_eq!(handle.stats().dropped, 1, "a send to the dead connection is dropped: it is unregistered");
    assert!(offender.read().is_err(), "the offender's connection ended");
    drop(offender);

    eventually("the offender's thread ends", || handle.stats().connections == 1);
    eventually("no tinywss thread is left", || tinywss_threads().len() == threads_before);
    eventually("no file descriptor is left", || open_fds() <= fds_before);
    assert_echo(&mut good, "after the panic");
    let mut later = server.connect("/");
    later_open(&events);
    assert_echo(&mut later, "a later client");
}
