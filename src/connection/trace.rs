//! Frame-by-frame `trace` logging: watches the bytes that pass between tungstenite and
//! the connection and logs each WebSocket frame header as it goes by, never a payload.
//!
//! A frame header (RFC 6455 §5.2) is 2 to 14 bytes:
//!
//! ```text
//!  byte 0: FIN (1 bit) RSV1-3 (3 bits) opcode (4 bits)
//!  byte 1: MASK (1 bit) payload length (7 bits): 0-125, or 126 / 127 for a
//!          16-bit / 64-bit length in the next 2 / 8 bytes
//!  then:   the 4-byte masking key, if MASK is set (client to server: always)
//!  then:   the payload
//! ```

use std::io::{self, Read, Write};
use std::ops::{Deref, DerefMut};

use super::stream::Transport;
use crate::ConnectionId;

/// Follows one direction of a frame stream: collects header bytes, then skips payload.
#[derive(Debug, Default)]
struct FrameTap {
    header: Vec<u8>,
    payload_left: u64,
}

/// A decoded frame header.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    fin: bool,
    rsv: u8,
    opcode: u8,
    masked: bool,
    length: u64,
}

impl FrameTap {
    /// Feeds bytes that passed by; returns the headers that completed.
    fn feed(&mut self, mut bytes: &[u8]) -> Vec<Header> {
        let mut headers = Vec::new();
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min(bytes.len() as u64);
                self.payload_left -= skip;
                bytes = &bytes[skip as usize..];
                continue;
            }
            self.header.push(bytes[0]);
            bytes = &bytes[1..];
            if let Some(header) = parse(&self.header) {
                self.payload_left = header.length;
                self.header.clear();
                headers.push(header);
            }
        }
        headers
    }
}

/// Parses a complete header, or `None` while more bytes are needed.
fn parse(bytes: &[u8]) -> Option<Header> {
    let (&b0, &b1) = (bytes.first()?, bytes.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (length, length_bytes) = match b1 & 0x7f {
        126 => (u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as u64, 2),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 8),
        n => (n as u64, 0),
    };
    let size = 2 + length_bytes + if masked { 4 } else { 0 };
    (bytes.len() >= size).then_some(Header {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 7,
        opcode: b0 & 0x0f,
        masked,
        length,
    })
}

fn opcode_name(opcode: u8) -> &'static str {
    match opcode {
        0x0 => "continuation",
        0x1 => "text",
        0x2 => "binary",
        0x8 => "close",
        0x9 => "ping",
        0xa => "pong",
        _ => "reserved",
    }
}

/// The connection's stream, logging frame headers both ways at `trace`, as they go over
/// the wire.
#[derive(Debug)]
pub(crate) struct Logged {
    inner: Transport,
    id: ConnectionId,
    /// Whether `trace` was enabled when the connection opened; if not, no work at all.
    enabled: bool,
    incoming: FrameTap,
    outgoing: FrameTap,
}

impl Logged {
    pub(crate) fn new(inner: Transport, id: ConnectionId, leftover: &[u8]) -> Logged {
        let enabled = log::log_enabled!(target: "tinywss::frames", log::Level::Trace);
        let mut logged = Logged { inner, id, enabled, incoming: FrameTap::default(), outgoing: FrameTap::default() };
        logged.observe(leftover, "<-");
        logged
    }

    fn observe(&mut self, bytes: &[u8], direction: &str) {
        if !self.enabled {
            return;
        }
        let tap = if direction == "<-" { &mut self.incoming } else { &mut self.outgoing };
        for h in tap.feed(bytes) {
            log::trace!(
                target: "tinywss::frames",
                "{} {direction} {} frame (opcode 0x{:x}), FIN={}, RSV={}, {}, payload {} bytes",
                self.id,
                opcode_name(h.opcode),
                h.opcode,
                u8::from(h.fin),
                h.rsv,
                if h.masked { "masked" } else { "unmasked" },
                h.length
            );
        }
    }
}

impl Deref for Logged {
    type Target = Transport;
    fn deref(&self) -> &Transport {
        &self.inner
    }
}

impl DerefMut for Logged {
    fn deref_mut(&mut self) -> &mut Transport {
        &mut self.inner
    }
}

impl Read for Logged {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n], "<-");
        Ok(n)
    }
}

impl Write for Logged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.observe(&buf[..n], "->");
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_across_chunk_boundaries() {
        // A masked "Hello" (RFC 6455 §5.7), a 300-byte unmasked binary frame, a ping.
        let mut stream = vec![0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        stream.extend([0x82, 0x7e, 0x01, 0x2c]);
        stream.extend([0u8; 300]);
        stream.extend([0x89, 0x00]);
        let mut tap = FrameTap::default();
        let mut found = Vec::new();
        for chunk in stream.chunks(3) {
            found.extend(tap.feed(chunk));
        }
        let summary: Vec<_> = found.iter().map(|h| (h.opcode, h.fin, h.masked, h.length)).collect();
        assert_eq!(summary, [(1, true, true, 5), (2, true, false, 300), (9, true, false, 0)]);
    }

    #[test]
    fn long_lengths() {
        let mut header = vec![0x02, 0xff];
        header.extend((100u64 << 20).to_be_bytes());
        header.extend([1, 2, 3, 4]);
        let parsed = parse(&header).unwrap();
        assert_eq!((parsed.fin, parsed.opcode, parsed.masked, parsed.length), (false, 2, true, 100 << 20));
        assert_eq!(parse(&header[..9]), None);
    }
}
