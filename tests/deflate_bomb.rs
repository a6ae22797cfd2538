#![cfg(feature = "deflate")]
//! A deflate bomb: 16 KB that would inflate to 16 MiB. Alone in its file because it
//! measures the process's peak memory, which tests running beside it would move.

mod common;

use std::io::Write;

use common::{
    assert_echo, close_reason_of, frame, http_exchange, next_open, proc_status_kib, raw_tls, read_close_code, start,
    status_of, UPGRADE_REQUEST,
};
use flate2::{Compress, Compression as Level, FlushCompress};
use tinywss::{CloseReason, Compression};

const LIMIT: usize = 1 << 20;

#[test]
fn a_deflate_bomb_closes_with_1009_without_inflating_past_the_limit() {
    let server = start(|b| b.max_message_size(LIMIT).compression(Some(Compression::no_context_takeover())));
    let events = server.echo();
    let mut good = server.connect("/");
    next_open(&events);
    let mut bomb = raw_tls(server.addr, &server.certs.files.ca);
    let offer = UPGRADE_REQUEST.replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
    let head = http_exchange(&mut bomb, offer.as_bytes());
    assert_eq!(status_of(&head), 101, "{head}");
    assert!(head.contains("Sec-WebSocket-Extensions: permessage-deflate"), "{head}");
    let id = next_open(&events);

    // 16 MiB of zeros deflate to about 16 KB; the first frame carries 4 KB of them.
    let zeros = vec![0u8; 1 << 20];
    let mut compress = Compress::new(Level::best(), false);
    let mut payload = Vec::with_capacity(1 << 20);
    for _ in 0..16 {
        compress.compress_vec(&zeros, &mut payload, FlushCompress::None).unwrap();
    }
    compress.compress_vec(&[], &mut payload, FlushCompress::Sync).unwrap();
    payload.truncate(payload.len() - 4);
    let mut bytes = frame(0x40 | 0x02, &payload[..4096], true);
    bytes.extend(frame(0x80, &payload[4096..], true));
    drop(zeros);

    let before = proc_status_kib("VmHWM");
    // The server may close before it has read everything: ignore write errors.
    let _ = bomb.write_all(&bytes).and_then(|_| bomb.flush());
    assert_eq!(read_close_code(&mut bomb), Some(1009));
    assert!(matches!(close_reason_of(&events, id), CloseReason::Server { code: 1009, .. }));
    let grown = proc_status_kib("VmHWM").saturating_sub(before);
    eprintln!("a bomb of {} bytes (16 MiB inflated): peak memory grew by {grown} KiB", bytes.len());
    // tungstenite holds the message as it grows, up to the limit, before it is refused
    // (no server can hold less: a legitimate message may be that large); what must not
    // happen is memory in proportion to what the bomb inflates to. Measured: 1,220 KiB,
    // the limit and the copy glibc makes when the growing buffer is reallocated (1,032
    // KiB with MALLOC_MMAP_THRESHOLD_=65536, where realloc moves pages instead).
    assert!(grown < 2 * (LIMIT as u64 / 1024), "peak memory grew by {grown} KiB for a 1 MiB limit");
    assert_echo(&mut good, "unharmed");
    assert_eq!(server.handle().stats().limit_closes, 1);
}
