//! The HTTP Upgrade request parser and checks, on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinywss::fuzz::request_head(data));
