#![cfg(feature = "deflate")]
//! permessage-deflate (RFC 7692) over a hand-made client: negotiation, both directions,
//! context takeover, fragments, and the bounds on what a compressed message may cost.

mod common;

use std::io::{Read, Write};

use common::{
    assert_echo, close_reason_of, frame, http_exchange, next_open, raw_tls, start, status_of, Raw, TestServer,
    UPGRADE_REQUEST,
};
use flate2::{Compress, Compression as Level, Decompress, FlushCompress, FlushDecompress};
use tinywss::{CloseReason, Compression};

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// A client that speaks permessage-deflate with flate2.
struct DeflateClient {
    raw: Raw,
    compress: Compress,
    decompress: Decompress,
    /// The extension answer in the 101.
    agreed: Option<String>,
    /// Whether each side resets after a message.
    client_resets: bool,
    server_resets: bool,
}

fn request_offering(offer: &str) -> String {
    UPGRADE_REQUEST.replace("\r\n\r\n", &format!("\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n"))
}

impl DeflateClient {
    fn connect(server: &TestServer, offer: &str) -> DeflateClient {
        let mut raw = raw_tls(server.addr, &server.certs.files.ca);
        let head = http_exchange(&mut raw, request_offering(offer).as_bytes());
        assert_eq!(status_of(&head), 101, "{head}");
        let agreed = head.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: ").map(str::to_owned));
        let has = |p: &str| agreed.as_deref().is_some_and(|a| a.contains(p));
        DeflateClient {
            raw,
            compress: Compress::new(Level::default(), false),
            decompress: Decompress::new(false),
            client_resets: has("client_no_context_takeover"),
            server_resets: has("server_no_context_takeover"),
            agreed,
        }
    }

    /// The payload of a compressed message, the tail stripped.
    fn deflate(&mut self, data: &[u8]) -> Vec<u8> {
        if self.client_resets {
            self.compress.reset();
        }
        let mut out = Vec::with_capacity(data.len() + 1024);
        self.compress.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        assert!(out.ends_with(&TAIL));
        out.truncate(out.len() - 4);
        out
    }

    fn send_compressed(&mut self, opcode: u8, data: &[u8]) -> usize {
        let payload = self.deflate(data);
        self.raw.write_all(&frame(0x80 | 0x40 | opcode, &payload, true)).unwrap();
        self.raw.flush().unwrap();
        payload.len()
    }

    /// Reads the next data message: (opcode, whether it came compressed, payload).
    fn read_message(&mut self) -> (u8, bool, Vec<u8>) {
        let (mut opcode, mut compressed, mut payload) = (None, false, Vec::new());
        loop {
            let (b0, data) = read_frame(&mut self.raw);
            match b0 & 0x0f {
                0x9 | 0xa => continue,
                0x8 => panic!("closed by the server: {data:?}"),
                op => {
                    if opcode.is_none() {
                        opcode = Some(op);
                        compressed = b0 & 0x40 != 0;
                    }
                    payload.extend(data);
                }
            }
            if b0 & 0x80 != 0 {
                break;
            }
        }
        if compressed {
            payload = self.inflate(&payload);
        }
        (opcode.unwrap(), compressed, payload)
    }

    fn inflate(&mut self, payload: &[u8]) -> Vec<u8> {
        if self.server_resets {
            self.decompress.reset(false);
        }
        let mut input = payload.to_vec();
        input.extend(TAIL);
        let mut out = Vec::with_capacity(1 << 20);
        self.decompress.decompress_vec(&input, &mut out, FlushDecompress::Sync).unwrap();
        out
    }
}

/// One frame from the server: its first byte and payload.
fn read_frame(raw: &mut Raw) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    raw.read_exact(&mut head).unwrap();
    let len = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            raw.read_exact(&mut n).unwrap();
            u16::from_be_bytes(n) as usize
        }
        127 => {
            let mut n = [0u8; 8];
            raw.read_exact(&mut n).unwrap();
            u64::from_be_bytes(n) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    raw.read_exact(&mut payload).unwrap();
    (head[0], payload)
}

fn ticker(i: usize) -> String {
    format!(
        r#"{{"type":"ticker","symbol":"BTC-USD","price":"{}.{:02}","volume":"{}","sequence":{i},"time":"2026-11-29T19:20:{:02}Z"}}"#,
        43000 + i % 500,
        i % 100,
        1000 + i * 7,
        i % 60
    )
}

#[test]
fn no_header_when_off_or_not_offered() {
    let off = start(|b| b);
    let _events = off.echo();
    assert_eq!(DeflateClient::connect(&off, "permessage-deflate").agreed, None);
    let on = start(|b| b.compression(Some(Compression::no_context_takeover())));
    let _events = on.echo();
    assert_eq!(DeflateClient::connect(&on, "x-webkit-deflate-frame").agreed, None);
    assert_eq!(
        DeflateClient::connect(&on, "permessage-deflate; client_max_window_bits").agreed.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
}

#[test]
fn compressed_text_and_binary_both_ways() {
    let server = start(|b| b.compression(Some(Compression::no_context_takeover())));
    let events = server.echo();
    let mut client = DeflateClient::connect(&server, "permessage-deflate; client_max_window_bits");
    next_open(&events);
    let text = ticker(1).repeat(10);
    let sent = client.send_compressed(0x1, text.as_bytes());
    assert!(sent < text.len() / 4, "{sent} bytes for {}", text.len());
    assert_eq!(client.read_message(), (0x1, true, text.clone().into_bytes()));
    let binary: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire_in = sent + client.send_compressed(0x2, &binary);
    assert_eq!(client.read_message(), (0x2, true, binary.clone()));
    // Random bytes do not shrink: sent as they are, and the context starts afresh.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    wire_in += client.send_compressed(0x2, &noise);
    assert_eq!(client.read_message(), (0x2, false, noise.clone()));
    // Below min_size the answer goes out plain, the way the client sent it.
    client.raw.write_all(&frame(0x81, b"tiny", true)).unwrap();
    assert_eq!(client.read_message(), (0x1, false, b"tiny".to_vec()));

    // The counters: three messages came compressed, two went out compressed (the
    // noise and the tiny one went plain), and what each direction saved.
    let stats = server.handle().stats();
    assert_eq!(stats.compression_agreed, 1);
    assert_eq!(stats.compressed_messages_in, 3);
    assert_eq!(stats.compressed_wire_bytes_in, wire_in as u64);
    assert_eq!(stats.compressed_payload_bytes_in, (text.len() + binary.len() + noise.len()) as u64);
    assert_eq!(stats.compressed_messages_out, 2);
    assert_eq!(stats.compressed_payload_bytes_out, (text.len() + binary.len()) as u64);
    assert!(stats.compressed_wire_bytes_out * 4 < stats.compressed_payload_bytes_out, "{stats:?}");
    assert_eq!((stats.messages_in, stats.messages_out), (4, 4));
}

#[test]
fn context_takeover_across_a_thousand_messages() {
    let server = start(|b| b.compression(Some(Compression::context_takeover(15))));
    let events = server.echo();
    let mut client = DeflateClient::connect(&server, "permessage-deflate");
    assert_eq!(client.agreed.as_deref(), Some("permessage-deflate"));
    next_open(&events);
    let (mut plain, mut wire) = (0, 0);
    for i in 0..1000 {
        let text = ticker(i);
        plain += text.len();
        wire += client.send_compressed(0x1, text.as_bytes());
        let (opcode, compressed, echoed) = client.read_message();
        assert_eq!((opcode, compressed), (0x1, true), "message {i}");
        assert_eq!(String::from_utf8(echoed).unwrap(), text, "message {i}");
    }
    // The keys and most digits repeat: with the context kept, each message costs a
    // fraction of its size.
    assert!(wire * 3 < plain, "{wire} compressed bytes for {plain}");
}

#[test]
fn a_client_that_offers_may_still_send_plain_messages() {
    let server = start(|b| b.compression(Some(Compression::context_takeover(12).min_size(0))));
    let events = server.echo();
    let mut client = DeflateClient::connect(&server, "permessage-deflate; client_max_window_bits");
    assert!(client.agreed.as_deref().unwrap().contains("client_max_window_bits=12"));
    next_open(&events);
    for i in 0..20 {
        let text = ticker(i);
        if i % 2 == 0 {
            client.raw.write_all(&frame(0x81, text.as_bytes(), true)).unwrap();
        } else {
            client.send_compressed(0x1, text.as_bytes());
        }
        assert_eq!(client.read_message(), (0x1, true, text.into_bytes()), "message {i}");
    }
}

#[test]
fn compressed_message_in_fragments_with_a_ping_between() {
    let server = start(|b| b.compression(Some(Compression::context_takeover(15))));
    let events = server.echo();
    let mut client = DeflateClient::connect(&server, "permessage-deflate");
    next_open(&events);
    for round in 0..3 {
        let text = ticker(round).repeat(200);
        let payload = client.deflate(text.as_bytes());
        let third = payload.len() / 3;
        let mut bytes = frame(0x40 | 0x1, &payload[..third], true);
        bytes.extend(frame(0x89, b"ping", true));
        bytes.extend(frame(0x00, &payload[third..2 * third], true));
        bytes.extend(frame(0x80, &payload[2 * third..], true));
        // A byte at a time: every header and payload split wherever it can be.
        for chunk in bytes.chunks(if round == 0 { 1 } else { 700 }) {
            client.raw.write_all(chunk).unwrap();
            client.raw.flush().unwrap();
        }
        assert_eq!(client.read_message(), (0x1, true, text.into_bytes()), "round {round}");
    }
    // A plain fragmented message between compressed ones.
    client.raw.write_all(&frame(0x01, b"plain ", true)).unwrap();
    client.raw.write_all(&frame(0x80, b"fragments", true)).unwrap();
    let (_, _, echoed) = client.read_message();
    assert_eq!(echoed, b"plain fragments");
}

#[test]
fn data_that_is_not_deflate_closes_with_1002() {
    let server = start(|b| b.compression(Some(Compression::no_context_takeover())));
    let events = server.echo();
    let mut good = server.connect("/");
    next_open(&events);
    let mut bad = DeflateClient::connect(&server, "permessage-deflate");
    let id = next_open(&events);
    // 0xff: a block type that does not exist (BTYPE 11).
    bad.raw.write_all(&frame(0xc1, &[0xff, 0xff, 0xff, 0xff], true)).unwrap();
    assert_eq!(common::read_close_code(&mut bad.raw), Some(1002));
    assert!(matches!(close_reason_of(&events, id), CloseReason::Server { code: 1002, .. }));
    assert_echo(&mut good, "unharmed");
}
