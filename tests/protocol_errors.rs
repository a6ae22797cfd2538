//! Protocol violations close the offender with the RFC's code and are reported;
//! a well-behaved client connected at the same time is unharmed.

mod common;

use std::io::Write;

use common::{assert_echo, close_reason_of, frame, read_close_code, start};
use tinywss::CloseReason;

/// Sends `bytes` on a fresh raw connection and returns (close code received, reason reported).
fn offend(bytes: &[u8], expected: u16) {
    let server = start(|b| b);
    let common::Offender { events, mut good, mut raw, id: offender } = server.offender();
    raw.write_all(bytes).unwrap();
    raw.flush().unwrap();
    assert_eq!(read_close_code(&mut raw), Some(expected), "close code for {bytes:02x?}");
    match close_reason_of(&events, offender) {
        CloseReason::Server { code, reason } => {
            assert_eq!(code, expected, "{reason}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected a server close, got {other:?}"),
    }
    assert_eq!(server.handle().stats().protocol_errors, 1);
    assert_echo(&mut good, "still fine");
}

#[test]
fn unmasked_frame() {
    offend(&frame(0x81, b"hi", false), 1002);
}

#[test]
fn reserved_bits() {
    offend(&frame(0x81 | 0x40, b"hi", true), 1002);
}

#[test]
fn reserved_data_opcode() {
    offend(&frame(0x83, b"hi", true), 1002);
}

#[test]
fn reserved_control_opcode() {
    offend(&frame(0x8b, b"", true), 1002);
}

#[test]
fn invalid_utf8_in_text() {
    offend(&frame(0x81, &[0xce, 0xba, 0xff, 0xfe], true), 1007);
}

#[test]
fn invalid_close_code() {
    offend(&frame(0x88, &999u16.to_be_bytes(), true), 1002);
}

#[test]
fn fragmented_control_frame() {
    // A Ping without FIN.
    offend(&frame(0x09, b"x", true), 1002);
}

#[test]
fn continuation_without_start() {
    offend(&frame(0x80, b"orphan", true), 1002);
}

#[test]
fn new_message_inside_a_fragmented_one() {
    let mut bytes = frame(0x01, b"start", true);
    bytes.extend(frame(0x81, b"not a continuation", true));
    offend(&bytes, 1002);
}

#[test]
fn control_frame_too_long() {
    offend(&frame(0x89, &[b'p'; 126], true), 1002);
}
