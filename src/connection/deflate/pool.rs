//! zlib states lent out for one message at a time, and kept for the next.
//!
//! Without context takeover a connection keeps no zlib state between messages, yet
//! freeing the state after each message did not give its memory back: glibc raises its
//! mmap threshold the first time a compressor's 256 KiB block is freed and from then on
//! keeps freed blocks in its per-thread arenas, so RSS grew by about 320 KiB for every
//! idle connection that had sent one compressed message. Borrowing the states from a
//! small process-wide pool instead bounds that memory by how many messages are being
//! compressed at once, not by how many connections ever sent one. A connection that
//! keeps its context gives its states back when it ends.
//!
//! A state is reset before it goes back; a reset keeps its window size and level, so
//! the pool is kept per window size.

use std::sync::{Mutex, PoisonError};

use flate2::{Compress, Compression, Decompress};

/// Idle states kept of each kind; a state given back beyond it is freed. Enough for the
/// messages a small device compresses at once; a burst past it allocates, as before.
const KEEP: usize = 4;

static COMPRESSORS: Mutex<Vec<(u8, Compress)>> = Mutex::new(Vec::new());
static INFLATERS: Mutex<Vec<(u8, Decompress)>> = Mutex::new(Vec::new());

/// A raw-deflate compressor with a window of 2^`bits` bytes, fresh.
pub(super) fn compressor(bits: u8) -> Compress {
    take(&COMPRESSORS, bits).unwrap_or_else(|| Compress::new_with_window_bits(Compression::default(), false, bits))
}

/// Takes a compressor back: whatever it held is forgotten.
pub(super) fn give_compressor(bits: u8, mut compressor: Compress) {
    compressor.reset();
    give(&COMPRESSORS, bits, compressor);
}

/// A raw-deflate inflater for windows up to 2^`bits` bytes, fresh.
pub(super) fn inflater(bits: u8) -> Decompress {
    take(&INFLATERS, bits).unwrap_or_else(|| Decompress::new_with_window_bits(false, bits))
}

/// Takes an inflater back: whatever it held is forgotten.
pub(super) fn give_inflater(bits: u8, mut inflater: Decompress) {
    inflater.reset(false);
    give(&INFLATERS, bits, inflater);
}

fn take<T>(pool: &Mutex<Vec<(u8, T)>>, bits: u8) -> Option<T> {
    // A panic elsewhere while the lock was held leaves only whole entries behind.
    let mut pool = pool.lock().unwrap_or_else(PoisonError::into_inner);
    let found = pool.iter().position(|(b, _)| *b == bits)?;
    Some(pool.swap_remove(found).1)
}

fn give<T>(pool: &Mutex<Vec<(u8, T)>>, bits: u8, state: T) {
    let mut pool = pool.lock().unwrap_or_else(PoisonError::into_inner);
    if pool.len() < KEEP {
        pool.push((bits, state));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{FlushCompress, FlushDecompress};

    fn round_trip(compressor: &mut Compress, inflater: &mut Decompress, text: &[u8]) -> Vec<u8> {
        let mut deflated = Vec::with_capacity(text.len() + 64);
        compressor.compress_vec(text, &mut deflated, FlushCompress::Sync).unwrap();
        let mut out = Vec::with_capacity(text.len());
        inflater.decompress_vec(&deflated, &mut out, FlushDecompress::Sync).unwrap();
        out
    }

    #[test]
    fn a_state_given_back_starts_afresh_with_its_window() {
        let text = b"the same words, the same words, the same words".as_slice();
        let (mut c, mut d) = (compressor(10), inflater(10));
        assert_eq!(round_trip(&mut c, &mut d, text), text);
        give_compressor(10, c);
        give_inflater(10, d);
        // Fresh states on both sides: the second message must not refer to the first.
        let (mut c, mut d) = (compressor(10), inflater(10));
        let mut other = Decompress::new_with_window_bits(false, 10);
        let mut deflated = Vec::with_capacity(256);
        c.compress_vec(text, &mut deflated, FlushCompress::Sync).unwrap();
        let mut out = Vec::with_capacity(256);
        other.decompress_vec(&deflated, &mut out, FlushDecompress::Sync).unwrap();
        assert_eq!(out, text, "a reused compressor starts a new stream");
        assert_eq!(round_trip(&mut compressor(10), &mut d, text), text, "a reused inflater reads a new stream");
    }
}
