//! The codec behind [`Deflate`](super::Deflate): the inbound frame rewriter and inflater,
//! and the outbound compressor (module docs of `deflate.rs` explain the design).

use std::io::{self, Read};
use std::sync::Arc;

use flate2::{Compress, Decompress, FlushCompress, FlushDecompress};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::Message;

use super::pool;
use super::Bounds;
use crate::http::DeflateParams;
use crate::stats::{add, bump, Counters};
use crate::ConnectionId;

/// The four bytes every sync-flushed message ends with, which the sender leaves off and
/// the receiver puts back (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// How much is inflated at a time: one frame handed to tungstenite at most.
const CHUNK: usize = 16 << 10;

/// Reads from the transport a buffer's worth at a time.
const READ_SIZE: usize = 4 << 10;

/// One connection's permessage-deflate state.
#[derive(Debug)]
pub(super) struct Codec {
    params: DeflateParams,
    bounds: Bounds,
    inbound: Inbound,
    /// Kept between messages only with context takeover.
    compressor: Option<Compress>,
    id: ConnectionId,
    stats: Arc<Counters>,
}

/// Where the inbound stream is, frame by frame.
#[derive(Default)]
struct Inbound {
    /// Bytes read from the transport, not yet looked at.
    raw: Vec<u8>,
    /// Frames ready for tungstenite, and how much of them it has taken.
    ready: Vec<u8>,
    taken: usize,
    /// The frame whose payload is arriving.
    frame: Option<Current>,
    /// A fragmented message is under way: whether it is compressed (its continuation
    /// frames are inflated) and, if so, whether a frame of it went to tungstenite yet.
    message: Option<Compressed>,
    /// Kept between messages only with client context takeover.
    inflater: Option<Decompress>,
    /// Inflated bytes of the current message.
    inflated: usize,
    /// Its payload bytes as they came, compressed.
    compressed: usize,
    /// The client broke the rules: everything from here passes through untouched.
    failed: bool,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound").field("raw", &self.raw.len()).field("inflated", &self.inflated).finish()
    }
}

#[derive(Debug, Clone, Copy)]
enum Compressed {
    /// Plain fragments: pass through.
    No,
    /// Inflating; `opcode` until the first frame went to tungstenite.
    Yes { opcode: Option<u8> },
}

/// The payload of the frame being read.
#[derive(Debug)]
struct Current {
    /// Payload bytes still to come.
    left: u64,
    /// `None`: passed through as it comes.
    inflate: Option<Inflating>,
}

#[derive(Debug)]
struct Inflating {
    mask: [u8; 4],
    /// Payload bytes unmasked so far (where in the mask the next byte is).
    offset: usize,
    fin: bool,
    /// Unmasked payload the inflater has not taken yet.
    pending: Vec<u8>,
    /// The four bytes the sender left off went into `pending` (last frame only).
    tail_added: bool,
    /// The last step filled its output: the inflater may hold more without new input.
    full: bool,
}

/// A frame header (RFC 6455 §5.2).
struct Header {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    length: u64,
    size: usize,
}

fn parse_header(bytes: &[u8]) -> Option<Header> {
    let (&b0, &b1) = (bytes.first()?, bytes.get(1)?);
    let (length, at) = match b1 & 0x7f {
        126 => (u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as u64, 4),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
        n => (n as u64, 2),
    };
    let (mask, size) =
        if b1 & 0x80 != 0 { (Some(bytes.get(at..at + 4)?.try_into().ok()?), at + 4) } else { (None, at) };
    Some(Header { fin: b0 & 0x80 != 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, mask, length, size })
}

/// A masked frame header with an all-zero key: tungstenite wants client frames masked,
/// and XOR with zero leaves the payload as it is.
fn push_header(out: &mut Vec<u8>, fin: bool, rsv: u8, opcode: u8, length: u64) {
    out.push(u8::from(fin) << 7 | rsv << 4 | opcode);
    match length {
        0..=125 => out.push(0x80 | length as u8),
        126..=0xffff => {
            out.push(0x80 | 126);
            out.extend((length as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend(length.to_be_bytes());
        }
    }
    out.extend([0; 4]);
}

impl Codec {
    /// Takes the bytes the client sent behind its request: they may hold compressed frames.
    pub(super) fn new(
        params: DeflateParams,
        bounds: Bounds,
        id: ConnectionId,
        stats: &Arc<Counters>,
        leftover: &mut Vec<u8>,
    ) -> Option<Codec> {
        let raw = std::mem::take(leftover);
        bump(&stats.compression_agreed);
        let inbound = Inbound { raw, ..Inbound::default() };
        Some(Codec { params, bounds, inbound, compressor: None, id, stats: Arc::clone(stats) })
    }

    pub(super) fn read(&mut self, inner: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let inbound = &mut self.inbound;
            if inbound.taken < inbound.ready.len() {
                let n = buf.len().min(inbound.ready.len() - inbound.taken);
                buf[..n].copy_from_slice(&inbound.ready[inbound.taken..inbound.taken + n]);
                inbound.taken += n;
                if inbound.taken == inbound.ready.len() {
                    // An idle connection keeps no buffer that a large message grew.
                    release(&mut inbound.ready);
                    inbound.taken = 0;
                }
                return Ok(n);
            }
            if !self.process() {
                if self.inbound.raw.is_empty() {
                    release(&mut self.inbound.raw);
                }
                let mut chunk = [0u8; READ_SIZE];
                let n = inner.read(&mut chunk)?;
                if n == 0 {
                    return Ok(0);
                }
                self.inbound.raw.extend_from_slice(&chunk[..n]);
            }
        }
    }

    /// Moves what it can from `raw` to `ready`, a chunk at most, so that a message
    /// inflates only as fast as tungstenite takes it; `false` when it needs more bytes.
    fn process(&mut self) -> bool {
        let mut progress = false;
        while self.inbound.ready.len() < CHUNK {
            let inbound = &mut self.inbound;
            let step = if inbound.failed {
                let raw = std::mem::take(&mut inbound.raw);
                inbound.ready.extend(raw);
                return progress || !inbound.ready.is_empty();
            } else {
                match &mut inbound.frame {
                    Some(Current { inflate: Some(_), .. }) => self.inflate_step(),
                    Some(frame) => {
                        let n = frame.left.min(inbound.raw.len() as u64) as usize;
                        frame.left -= n as u64;
                        if frame.left == 0 {
                            inbound.frame = None;
                        }
                        inbound.ready.extend(inbound.raw.drain(..n));
                        n > 0
                    }
                    None => match parse_header(&inbound.raw) {
                        Some(header) => {
                            self.start_frame(header);
                            true
                        }
                        None => false,
                    },
                }
            };
            if !step {
                break;
            }
            progress = true;
        }
        progress
    }

    /// A frame header arrived: decide whether its payload is inflated or passes.
    fn start_frame(&mut self, header: Header) {
        let inbound = &mut self.inbound;
        let is_data = header.opcode == 1 || header.opcode == 2;
        let compressed = match (header.opcode, inbound.message, header.rsv, header.mask) {
            (1 | 2, None, 4, Some(mask)) => Some((mask, Some(header.opcode))),
            (0, Some(Compressed::Yes { opcode }), 0, Some(mask)) => Some((mask, opcode)),
            _ => None,
        };
        let Some((mask, opcode)) = compressed else {
            // Not ours to judge: tungstenite sees the frame as the client sent it.
            if is_data && header.rsv == 0 && inbound.message.is_none() && !header.fin {
                inbound.message = Some(Compressed::No);
            } else if header.opcode == 0 && header.fin && matches!(inbound.message, Some(Compressed::No)) {
                inbound.message = None;
            }
            inbound.ready.extend(inbound.raw.drain(..header.size));
            inbound.frame = (header.length > 0).then_some(Current { left: header.length, inflate: None });
            return;
        };
        inbound.raw.drain(..header.size);
        if header.length > self.bounds.max_frame_size as u64 {
            return self.too_big(header.length);
        }
        inbound.message = Some(Compressed::Yes { opcode });
        let inflating =
            Inflating { mask, offset: 0, fin: header.fin, pending: Vec::new(), tail_added: false, full: false };
        inbound.frame = Some(Current { left: header.length, inflate: Some(inflating) });
    }

    /// Takes the compressed frame's payload bytes that arrived and inflates one chunk
    /// of it for tungstenite; `false` when it needs more bytes.
    fn inflate_step(&mut self) -> bool {
        let window = self.inflate_window();
        let budget = (self.bounds.max_message_size + 1).saturating_sub(self.inbound.inflated).clamp(1, CHUNK);
        let inbound = &mut self.inbound;
        let Some(Current { left, inflate: Some(inflating) }) = &mut inbound.frame else { return false };
        let n = (*left).min(inbound.raw.len() as u64) as usize;
        *left -= n as u64;
        let offset = inflating.offset;
        inflating.pending.extend(inbound.raw.drain(..n).enumerate().map(|(i, b)| b ^ inflating.mask[(offset + i) % 4]));
        inflating.offset += n;
        inbound.compressed += n;
        let last_input = *left == 0;
        if last_input && inflating.fin && !inflating.tail_added {
            inflating.pending.extend(TAIL);
            inflating.tail_added = true;
        }
        if inflating.pending.is_empty() && !last_input && !inflating.full {
            return false;
        }
        let inflater = inbound.inflater.get_or_insert_with(|| pool::inflater(window));
        let mut out = vec![0u8; budget];
        let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
        let status = inflater.decompress(&inflating.pending, &mut out, FlushDecompress::Sync);
        let used = (inflater.total_in() - in_before) as usize;
        let produced = (inflater.total_out() - out_before) as usize;
        inflating.pending.drain(..used);
        inflating.full = produced == budget;
        inbound.inflated += produced;
        let inflated = inbound.inflated;
        let finished = last_input && inflating.pending.is_empty() && !inflating.full;
        let fin = finished && inflating.fin;
        if status.is_err() {
            log::debug!("{}: the client's compressed message is not valid deflate data", self.id);
            self.broken();
            return true;
        }
        if inflated > self.bounds.max_message_size {
            self.too_big(inflated as u64);
            return true;
        }
        if finished {
            self.inbound.frame = None;
        }
        if produced > 0 || fin {
            self.emit(&out[..produced], fin);
        }
        if fin {
            self.end_message();
        }
        produced > 0 || used > 0 || finished
    }

    /// Hands tungstenite a frame of inflated bytes.
    fn emit(&mut self, bytes: &[u8], fin: bool) {
        let inbound = &mut self.inbound;
        let opcode = match &mut inbound.message {
            Some(Compressed::Yes { opcode }) => opcode.take().unwrap_or(0),
            _ => 0,
        };
        push_header(&mut inbound.ready, fin, 0, opcode, bytes.len() as u64);
        inbound.ready.extend_from_slice(bytes);
    }

    fn end_message(&mut self) {
        let inbound = &mut self.inbound;
        log::trace!(
            target: "tinywss::frames",
            "{} <- compressed message: {} bytes inflated to {}",
            self.id,
            inbound.compressed,
            inbound.inflated
        );
        bump(&self.stats.compressed_messages_in);
        add(&self.stats.compressed_wire_bytes_in, inbound.compressed);
        add(&self.stats.compressed_payload_bytes_in, inbound.inflated);
        inbound.message = None;
        inbound.inflated = 0;
        inbound.compressed = 0;
        if self.params.client_no_context_takeover {
            // Nothing kept between messages: an idle connection holds no inflater.
            self.give_inflater_back();
        }
    }

    /// The inflater's window: the client's, or 512 bytes, the least zlib inflates with.
    fn inflate_window(&self) -> u8 {
        self.params.client_max_window_bits.max(9)
    }

    fn give_inflater_back(&mut self) {
        if let Some(inflater) = self.inbound.inflater.take() {
            pool::give_inflater(self.inflate_window(), inflater);
        }
    }

    /// Shows tungstenite a header past its frame limit: it closes with 1009 before
    /// reading a byte more.
    fn too_big(&mut self, size: u64) {
        log::debug!("{}: a compressed message inflates past {} bytes", self.id, self.bounds.max_message_size);
        let claimed = size.max(self.bounds.max_frame_size as u64 + 1);
        self.fail_with(|out| push_header(out, true, 0, 2, claimed));
    }

    /// Shows tungstenite a frame with reserved bits set: a protocol error, 1002.
    fn broken(&mut self) {
        self.fail_with(|out| push_header(out, true, 2, 2, 0));
    }

    fn fail_with(&mut self, header: impl FnOnce(&mut Vec<u8>)) {
        let inbound = &mut self.inbound;
        header(&mut inbound.ready);
        inbound.failed = true;
        inbound.frame = None;
        inbound.message = None;
        inbound.raw.clear();
        self.give_inflater_back();
    }

    pub(super) fn compress(&mut self, message: Message) -> Message {
        let (opcode, data) = match message {
            Message::Text(text) if text.len() >= self.bounds.min_size => (Data::Text, tungstenite::Bytes::from(text)),
            Message::Binary(data) if data.len() >= self.bounds.min_size => (Data::Binary, data),
            other => return other,
        };
        let bits = self.params.server_max_window_bits;
        let mut compressor = self.compressor.take().unwrap_or_else(|| pool::compressor(bits));
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        // Incompressible (random, or already compressed): sent as it is. The client never
        // sees what the compressor took in, so a kept context would point into bytes the
        // client does not have: start afresh (a new stream needs none).
        let incompressible = deflate_sync(&mut compressor, &data, &mut out).is_err() || out.len() > data.len();
        if incompressible || self.params.server_no_context_takeover {
            pool::give_compressor(bits, compressor);
        } else {
            self.compressor = Some(compressor);
        }
        if incompressible {
            return Message::Frame(Frame::message(data, OpCode::Data(opcode), true));
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        bump(&self.stats.compressed_messages_out);
        add(&self.stats.compressed_payload_bytes_out, data.len());
        add(&self.stats.compressed_wire_bytes_out, out.len());
        let mut frame = Frame::message(out, OpCode::Data(opcode), true);
        frame.header_mut().rsv1 = true;
        Message::Frame(frame)
    }
}

impl Drop for Codec {
    /// A connection that kept its context gives the states to the next one.
    fn drop(&mut self) {
        if let Some(compressor) = self.compressor.take() {
            pool::give_compressor(self.params.server_max_window_bits, compressor);
        }
        self.give_inflater_back();
    }
}

/// Empties a buffer whose bytes are all used, and frees it if it grew past a few frame
/// headers' worth.
fn release(buffer: &mut Vec<u8>) {
    if buffer.capacity() > 64 {
        *buffer = Vec::new();
    } else {
        buffer.clear();
    }
}

/// Compresses all of `input` and sync-flushes, so the message ends on a byte boundary
/// with the empty stored block RFC 7692 §7.2.1 strips.
fn deflate_sync(compressor: &mut Compress, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), flate2::CompressError> {
    loop {
        out.reserve(CHUNK.min(input.len() + 64));
        let before = compressor.total_in();
        compressor.compress_vec(input, out, FlushCompress::Sync)?;
        input = &input[(compressor.total_in() - before) as usize..];
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_written_for_tungstenite_read_back() {
        for length in [0u64, 125, 126, 65535, 65536, 1 << 40] {
            let mut out = Vec::new();
            push_header(&mut out, true, 0, 2, length);
            let header = parse_header(&out).unwrap();
            assert_eq!((header.fin, header.rsv, header.opcode, header.length), (true, 0, 2, length));
            assert_eq!((header.mask, header.size), (Some([0; 4]), out.len()));
            assert!(parse_header(&out[..out.len() - 1]).is_none(), "a partial header waits for more");
        }
    }

    #[test]
    fn release_frees_grown_buffers_only() {
        let mut small = Vec::with_capacity(16);
        small.push(1u8);
        release(&mut small);
        assert_eq!((small.len(), small.capacity() >= 16), (0, true));
        let mut grown = vec![0u8; 16 << 10];
        release(&mut grown);
        assert_eq!(grown.capacity(), 0);
    }
}
