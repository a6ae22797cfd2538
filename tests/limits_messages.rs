//! Message and frame size limits: 1009 for the offender, nothing for everyone else.

mod common;

use std::io::Write;

use common::{assert_echo, close_reason_of, frame, proc_status_kib, read_close_code, start};
use tinywss::CloseReason;

const LIMIT: usize = 64 * 1024;

fn expect_1009(bytes: &[u8]) {
    let server = start(|b| b.max_message_size(LIMIT).max_frame_size(LIMIT / 2));
    let common::Offender { events, mut good, mut raw, id: offender } = server.offender();
    // The server may close before it has read everything: ignore write errors.
    let _ = raw.write_all(bytes).and_then(|_| raw.flush());
    assert_eq!(read_close_code(&mut raw), Some(1009));
    match close_reason_of(&events, offender) {
        CloseReason::Server { code: 1009, .. } => {}
        other => panic!("expected a 1009 close, got {other:?}"),
    }
    assert_eq!(server.handle().stats().limit_closes, 1);
    assert_echo(&mut good, "unharmed");
}

#[test]
fn frame_larger_than_max_frame_size() {
    expect_1009(&frame(0x82, &vec![7u8; LIMIT / 2 + 1], true));
}

#[test]
fn fragmented_message_larger_than_max_message_size() {
    // Three frames each under the frame limit; together over the message limit.
    let part = vec![7u8; LIMIT / 2 - 10];
    let mut bytes = frame(0x02, &part, true);
    bytes.extend(frame(0x00, &part, true));
    bytes.extend(frame(0x80, &part, true));
    expect_1009(&bytes);
}

#[test]
fn hundred_mebibyte_frame_header_is_refused_without_allocating() {
    let server = start(|b| b);
    let common::Offender { events, mut good, mut raw, id: offender } = server.offender();
    let before = proc_status_kib("VmHWM");
    // Only the header: 100 MiB announced, 8 bytes of payload sent.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(100u64 << 20).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    raw.write_all(&header).unwrap();
    raw.flush().unwrap();
    assert_eq!(read_close_code(&mut raw), Some(1009));
    assert!(matches!(close_reason_of(&events, offender), CloseReason::Server { code: 1009, .. }));
    let grown = proc_status_kib("VmHWM").saturating_sub(before);
    assert!(grown < 10 * 1024, "peak memory grew by {grown} KiB for a refused 100 MiB frame");
    assert_echo(&mut good, "unharmed");
}
