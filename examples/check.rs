//! A connection checker: connects to a `wss://` URL like a client and reports each step
//! (DNS, TCP, TLS version and cipher suite, the certificate chain with subjects and
//! expiry dates, whether the host name matches, the HTTP Upgrade, the subprotocol, a
//! ping round trip), stopping with a clear message at the step that fails.
//!
//! It diagnoses what breaks WSS in the field: expired or not-yet-valid certificates,
//! a host name the certificate does not cover, an untrusted CA or a missing
//! intermediate, a server that requires a client certificate, TLS spoken to a plain
//! port or plain HTTP to a TLS port, a wrong path, a subprotocol mismatch.
//!
//! Usage: cargo run --example check -- wss://HOST[:PORT]/PATH [--ca PEM]... [--cert PEM --key PEM]
//!        [--protocol NAME]... [--tls 1.2|1.3] [--timeout SECS]
//!
//! Without `--ca` it trusts `$SSL_CERT_FILE` or the system's CA bundle. To check the
//! development server: `cargo run --example check -- wss://localhost:8443/ --ca certs/ca.pem`.
//! Exits with 0 when every step passed, 1 when one failed, 2 for bad arguments.

#[path = "../cli/src/check.rs"]
mod check;
#[path = "../cli/src/civil_date.rs"]
mod civil_date;

/// The checker is shared with the `tinywss check` command (cli/src/check.rs).
fn main() {
    std::process::exit(check::main(std::env::args().skip(1)));
}
