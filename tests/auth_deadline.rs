//! The authentication hook's time counts toward the handshake deadline: a hook that
//! accepts after the deadline has passed gets its client a 503, counted as a timed-out
//! handshake, and no WebSocket opens. A client connected at the same time keeps echoing.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{assert_echo, eventually, http_exchange, next_open, raw_tls, start, status_of, UPGRADE_REQUEST};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn a_hook_that_accepts_after_the_deadline_gets_its_client_a_503() {
    let server = start(|b| {
        b.handshake_timeout(HANDSHAKE_TIMEOUT).authenticate(|request| {
            if request.query_param("slow").is_some() {
                // Past the deadline whatever the load: it started before the hook ran.
                std::thread::sleep(HANDSHAKE_TIMEOUT + Duration::from_millis(100));
            }
            Ok(None)
        })
    });
    let events = server.echo();
    let mut good = server.connect("/");
    next_open(&events);

    let mut raw = raw_tls(server.addr, &server.certs.files.ca);
    let started = Instant::now();
    raw.write_all(UPGRADE_REQUEST.replacen("GET / ", "GET /?slow=1 ", 1).as_bytes()).unwrap();
    raw.flush().unwrap();
    assert_echo(&mut good, "while the hook runs");
    let head = http_exchange(&mut raw, b"");
    assert_eq!(status_of(&head), 503, "{head}");
    assert!(started.elapsed() >= HANDSHAKE_TIMEOUT, "answered after {:?}", started.elapsed());

    let handle = server.handle();
    // Counted once the handshake is over, just after the answer went out.
    eventually("the late hook counts as a timed-out handshake", || handle.stats().handshakes_timed_out == 1);
    let stats = handle.stats();
    assert_eq!((stats.websockets, stats.auth_refused, stats.handshakes_failed_http), (1, 0, 0), "{stats:?}");
    assert!(!events.try_iter().any(|e| matches!(e, tinywss::Event::Open { .. })), "no Open for it");
    assert_echo(&mut good, "after the late hook");
}
