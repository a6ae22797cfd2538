//! permessage-deflate (RFC 7692) under tungstenite, which has no extension support and
//! refuses any frame with RSV1 set.
//!
//! Inbound, this stream sits between the wire (the frame log over the transport, so
//! frames are logged as the client sent them) and tungstenite: it reads the client's
//! frames, and for a compressed message (RSV1 on its first frame) it inflates each
//! frame's payload as it arrives and hands tungstenite ordinary frames in its place (the
//! same opcode, RSV1 clear, an all-zero mask, which leaves the bytes as they are).
//! Every other frame passes through untouched, so tungstenite still judges it.
//!
//! ```text
//!  wire:        [RSV1 text, FIN=0, 100 B deflated] [continuation, FIN=1, 20 B]
//!  tungstenite: [text, FIN=0, 4 KiB] [continuation, FIN=0, 3 KiB] [continuation, FIN=1, 0 B]
//! ```
//!
//! What the client cannot get past:
//! - the inflated size counts against `max_message_size` as it grows: inflating stops
//!   at the limit and tungstenite is shown a frame header past its `max_frame_size`, so
//!   it fails the connection with 1009 as for any message too big, having held at most
//!   the limit (a few KB of zeros inflate to gigabytes);
//! - a compressed frame longer than `max_frame_size` gets the same answer;
//! - a payload that is not deflate data ends the same way with a frame tungstenite
//!   refuses as a protocol error (1002); text that inflates to invalid UTF-8 is
//!   tungstenite's 1007.
//!
//! Outbound, [`Deflate::compress`] turns a message into one frame with RSV1 set, which
//! tungstenite writes as it is (`Message::Frame`).

use std::io::{self, Read, Write};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use tungstenite::Message;

#[cfg(feature = "deflate")]
mod codec;
#[cfg(feature = "deflate")]
mod pool;
#[cfg(not(feature = "deflate"))]
mod codec {
    //! Without the `deflate` feature the configuration refuses compression, so no
    //! connection agrees on it and no codec is made.
    use super::{io, Arc, Bounds, ConnectionId, Counters, DeflateParams, Message, Read};

    #[derive(Debug)]
    pub(super) enum Codec {}

    impl Codec {
        pub(super) fn new(
            _: DeflateParams,
            _: Bounds,
            _: ConnectionId,
            _: &Arc<Counters>,
            _: &mut Vec<u8>,
        ) -> Option<Codec> {
            None
        }
        pub(super) fn read(&mut self, _: &mut impl Read, _: &mut [u8]) -> io::Result<usize> {
            match *self {}
        }
        pub(super) fn compress(&mut self, _: Message) -> Message {
            match *self {}
        }
    }
}

use codec::Codec;

use super::trace::Logged;
use crate::http::DeflateParams;
use crate::stats::Counters;
use crate::ConnectionId;

/// The connection's stream (the frame log over the transport), with permessage-deflate
/// applied when it was agreed.
#[derive(Debug)]
pub(crate) struct Deflate {
    inner: Logged,
    /// `None` when the client did not offer compression or it is off: a plain pipe.
    codec: Option<Box<Codec>>,
}

impl Deflate {
    /// Wraps the transport; returns the bytes tungstenite should start with. With
    /// compression, the bytes the client sent behind its request go through the
    /// inflater first, so tungstenite starts with none. The codec counts what it
    /// compresses and inflates in `stats`.
    pub(crate) fn new(
        inner: Logged,
        params: Option<DeflateParams>,
        bounds: Bounds,
        id: ConnectionId,
        stats: &Arc<Counters>,
        leftover: Vec<u8>,
    ) -> (Deflate, Vec<u8>) {
        let mut leftover = leftover;
        let codec = params.and_then(|params| Codec::new(params, bounds, id, stats, &mut leftover)).map(Box::new);
        (Deflate { inner, codec }, leftover)
    }

    /// A data message, compressed into one RSV1 frame when compression was agreed and
    /// the message is big enough to gain from it; any other message as it is.
    pub(crate) fn compress(&mut self, message: Message) -> Message {
        match &mut self.codec {
            Some(codec) => codec.compress(message),
            None => message,
        }
    }
}

impl Deref for Deflate {
    type Target = Logged;
    fn deref(&self) -> &Logged {
        &self.inner
    }
}

impl DerefMut for Deflate {
    fn deref_mut(&mut self) -> &mut Logged {
        &mut self.inner
    }
}

impl Read for Deflate {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.codec {
            None => self.inner.read(buf),
            Some(codec) => codec.read(&mut self.inner, buf),
        }
    }
}

impl Write for Deflate {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The bounds the inflater keeps to (the same as tungstenite's for plain messages).
// Read by the codec only, which the `deflate` feature brings.
#[cfg_attr(not(feature = "deflate"), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) max_message_size: usize,
    pub(crate) max_frame_size: usize,
    /// Smaller messages go out uncompressed.
    pub(crate) min_size: usize,
}

impl Bounds {
    /// The bounds the configuration sets: a frame never larger than a message.
    pub(crate) fn of(limits: &crate::config::Limits) -> Bounds {
        Bounds {
            max_message_size: limits.max_message_size,
            max_frame_size: limits.max_frame_size.min(limits.max_message_size),
            min_size: limits.compression.map_or(usize::MAX, |c| c.min_size),
        }
    }
}
