//! An authentication hook that panics (`query_param("token").unwrap()` on a request
//! without a token): each such request gets HTTP 500 and an `error` line with its
//! connection id, nothing is left behind, and the server keeps serving. (Alone in its
//! file: it counts the whole process's threads and fds.)

mod common;

use std::collections::BTreeMap;

use common::{assert_echo, eventually, http_exchange, logs, next_open, open_fds, raw_tls, start, tinywss_threads};
use common::{PATIENCE, UPGRADE_REQUEST};
use tinywss::Rejection;

const OFFENDERS: usize = 200;

/// The status of an HTTP response head; 0 when there was none (the connection just ended).
fn status(head: &str) -> u16 {
    head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Waits up to [`PATIENCE`] for the process's fds to come back to `baseline`; returns
/// how many are still open above it.
fn fds_left_above(baseline: usize) -> usize {
    let deadline = std::time::Instant::now() + PATIENCE;
    while open_fds() > baseline && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    open_fds().saturating_sub(baseline)
}

/// Waits for the next Open event, past the events of the clients already open.
fn later_open(events: &std::sync::mpsc::Receiver<tinywss::Event>) {
    while !matches!(common::next_event(events), tinywss::Event::Open { .. }) {}
}

#[test]
fn a_panicking_hook_answers_500_and_leaks_nothing() {
    logs::capture();
    let server = start(|b| {
        b.authenticate(|request| {
            // The application's bug: no token, no Option to unwrap.
            let token = request.query_param("token").unwrap();
            match token {
                "let-me-in" => Ok(None),
                _ => Err(Rejection::new(401, "wrong token")),
            }
        })
    });
    let events = server.echo();
    let mut good = server.connect("/?token=let-me-in");
    next_open(&events);
    let handle = server.handle();
    let (threads_before, fds_before) = (tinywss_threads().len(), open_fds());

    let mut statuses = BTreeMap::<u16, usize>::new();
    for i in 0..OFFENDERS {
        let mut raw = raw_tls(server.addr, &server.certs.files.ca);
        let head = http_exchange(&mut raw, UPGRADE_REQUEST.as_bytes());
        *statuses.entry(status(&head)).or_default() += 1;
        if i % 50 == 0 {
            assert_echo(&mut good, &format!("during panics {i}"));
        }
    }

    eventually("every offender is accepted", || handle.stats().accepted == 1 + OFFENDERS as u64);
    eventually("every offender's thread ends", || handle.stats().connections == 1);
    eventually("no tinywss thread is left", || tinywss_threads().len() == threads_before);
    let leaked = fds_left_above(fds_before);
    assert_eq!(leaked, 0, "{leaked} file descriptors leaked by {OFFENDERS} panicking hooks");
    assert_eq!(statuses, BTreeMap::from([(500, OFFENDERS)]), "statuses (0: no response)");

    let stats = handle.stats();
    assert_eq!((stats.panics, stats.auth_refused, stats.websockets), (OFFENDERS as u64, 0, 1), "{stats:?}");
    assert_eq!(stats.handshakes_failed_http, OFFENDERS as u64, "{stats:?}");
    let logged = logs::matching(log::Level::Error, "the authentication hook panicked");
    assert_eq!(logged.len(), OFFENDERS, "{logged:?}");
    assert!(logged[0].starts_with("conn#") && logged[0].contains("`Option::unwrap()`"), "{}", logged[0]);

    assert_echo(&mut good, "after the panics");
    let mut later = server.connect("/?token=let-me-in");
    later_open(&events);
    assert_echo(&mut later, "a later client");
}
