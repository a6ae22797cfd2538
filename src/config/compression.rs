//! The compression setter of [`ConfigBuilder`]: permessage-deflate (RFC 7692).

use super::ConfigBuilder;
use crate::http::DeflateSettings;

/// permessage-deflate, as the server offers it to clients that ask (every browser,
/// Python `websockets`, Node `ws` with `perMessageDeflate`). Two modes, told apart by
/// what they cost in memory per connection:
///
/// - [`no_context_takeover`](Self::no_context_takeover): each message is compressed on
///   its own, with nothing kept between messages: the zlib states are borrowed from a
///   small process-wide pool for each message and given back. Measured RSS per idle
///   connection that has exchanged a compressed message: 37 KiB (31 KiB without
///   compression). Best for messages of a few hundred bytes and more.
/// - [`context_takeover`](Self::context_takeover): both sides keep the last window of
///   text, so a message that repeats the previous one's keys shrinks to a few bytes (a
///   174-byte JSON ticker: 34 bytes, 3× less on the wire, little more CPU). Each
///   connection keeps zlib's compressor (2^(bits+2) + 128 KiB) and an inflater (up to
///   32 KiB + 7 KiB) between messages; measured RSS per idle connection: 370 KiB with
///   15 bits, 246 KiB with 10.
///
/// Messages smaller than [`min_size`](Self::min_size) are sent uncompressed, and so is a
/// message that compression would not shrink. bench/NOTES.md has the measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    pub(crate) context_takeover: bool,
    pub(crate) window_bits: u8,
    pub(crate) min_size: usize,
}

impl Compression {
    /// Compress each message on its own (`server_no_context_takeover`, and
    /// `client_no_context_takeover` asked of the client): no state kept between messages.
    pub fn no_context_takeover() -> Compression {
        Compression { context_takeover: false, window_bits: 15, min_size: 128 }
    }

    /// Keep the compression context between messages, with an LZ77 window of
    /// 2^`window_bits` bytes (9 to 15; values outside are brought into that range). A
    /// smaller window costs less memory per connection and finds fewer repeats.
    pub fn context_takeover(window_bits: u8) -> Compression {
        Compression { context_takeover: true, window_bits: window_bits.clamp(9, 15), min_size: 16 }
    }

    /// Messages shorter than this go uncompressed: below it deflate's framing costs
    /// about what it saves. Defaults to 128 bytes without context takeover (a short
    /// message has too few repeats of its own) and 16 bytes with it (a short message
    /// that repeats the previous ones shrinks to a few bytes).
    pub fn min_size(mut self, bytes: usize) -> Compression {
        self.min_size = bytes;
        self
    }

    pub(crate) fn settings(&self) -> DeflateSettings {
        DeflateSettings { context_takeover: self.context_takeover, window_bits: self.window_bits }
    }
}

impl ConfigBuilder {
    /// permessage-deflate for clients that offer it; clients that do not offer it are
    /// served uncompressed. Inflated messages count against
    /// [`max_message_size`](Self::max_message_size) as they grow, so a small compressed
    /// message that would inflate past it closes the connection with 1009 before the
    /// memory is spent.
    ///
    /// Needs the `deflate` cargo feature (zlib in Rust, about 100 KiB of binary);
    /// without it, [`build`](Self::build) returns [`Error::Config`](crate::Error::Config).
    ///
    /// Defaults to `None`: no compression, and no `Sec-WebSocket-Extensions` answer.
    pub fn compression(mut self, compression: Option<Compression>) -> Self {
        self.limits.compression = compression;
        self
    }
}
