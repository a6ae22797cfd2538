//! Client-supplied text (the request path, query keys, header values) reaches the log
//! escaped: no control character, line or paragraph separator, or bidirectional override
//! can forge a log line or reorder what an operator reads.
//! (Alone in its file: it installs its own logger for the whole test binary.)

mod common;

use common::{http_exchange, logs, next_open, raw_tls, start, status_of, TestServer};

/// Characters that must never reach a log raw: they break lines or reorder text.
fn is_unsafe_in_a_log(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// Every record that mentions `marker` is free of unsafe characters and of forged lines.
fn assert_log_is_safe(marker: &str) {
    let records = logs::containing(marker);
    assert!(!records.is_empty(), "nothing was logged about {marker}");
    for record in &records {
        assert!(!record.chars().any(is_unsafe_in_a_log), "a raw control or bidi character in the log:\n{record:?}");
        let forged = format!("{marker}-FORGED");
        assert!(!record.lines().any(|line| line.starts_with(&forged)), "a forged log line:\n{record}");
    }
}

/// Sends `request` on a fresh TLS connection; returns the status.
fn send(server: &TestServer, request: &str) -> u16 {
    let mut raw = raw_tls(server.addr, &server.certs.files.ca);
    status_of(&http_exchange(&mut raw, request.as_bytes()))
}

#[test]
fn the_request_head_is_logged_escaped() {
    logs::capture_at(log::LevelFilter::Debug);
    let server = start(|b| b);
    let events = server.echo();
    let mut good = server.connect("/");
    next_open(&events);

    let request = "GET /ONE%0aONE-FORGED/\u{202e}gnp.exe/\u{2028}ONE-FORGED/\u{85}x/\u{2066}y?\u{202e}key=value \
        HTTP/1.1\r\nHost: localhost\r\nX-Note: ONE \u{202e}reversed\u{2029}ONE-FORGED\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(send(&server, request), 101);
    next_open(&events);

    assert_log_is_safe("ONE");
    let head = logs::containing("GET /ONE").join("\n");
    assert!(
        head.contains("/\\u{202e}gnp.exe/\\u{2028}ONE-FORGED/\\u{85}x/\\u{2066}y?\\u{202e}key=<redacted>"),
        "{head}"
    );
    assert!(head.contains("X-Note: ONE \\u{202e}reversed\\u{2029}ONE-FORGED"), "{head}");
    common::assert_echo(&mut good, "unaffected by the crafted request");
}

#[test]
fn paths_in_answers_and_refusals_are_logged_escaped() {
    logs::capture_at(log::LevelFilter::Debug);
    let site = common::TempDir::new();
    std::fs::write(site.0.join("a\nTWO-FORGED"), "a file with a newline in its name").unwrap();
    let server = start(|b| b.static_dir(&site.0).websocket_path("/ws"));
    let events = server.echo();
    let mut good = server.connect("/ws");
    next_open(&events);

    let upgrade = |path: &str| common::UPGRADE_REQUEST.replacen("GET / ", &format!("GET {path} "), 1);
    assert_eq!(send(&server, &upgrade("/TWO\u{202e}x\u{2028}TWO-FORGED")), 404);
    assert_eq!(send(&server, "GET /TWO\u{2066}y\u{85}TWO-FORGED HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
    assert_eq!(send(&server, "GET /a%0aTWO-FORGED HTTP/1.1\r\nHost: x\r\n\r\n"), 200);

    // These lines are written after the response has left.
    for line in ["no WebSocket endpoint at /TWO", "answered GET /TWO", "TWO-FORGED (33 bytes)"] {
        common::eventually(line, || !logs::containing(line).is_empty());
    }
    assert_log_is_safe("TWO");
    common::assert_echo(&mut good, "unaffected by the crafted requests");
}
