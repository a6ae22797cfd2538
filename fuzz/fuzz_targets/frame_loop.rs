//! The connection's frame loop (src/connection/session.rs) over arbitrary client bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinywss::fuzz::frame_loop(data));
