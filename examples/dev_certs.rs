//! Makes new development certificates in `certs/`: a local CA (`ca.pem`) and a
//! certificate for `localhost`, `127.0.0.1` and `::1` (`server.pem`, `server.key`),
//! with the library's [`DevelopmentCertificate::generate`].
//!
//! The other examples make them on first use (`ConfigBuilder::development_certificate`)
//! and renew them before they expire; run this to start over with a new CA.
//! Development only: see `certs/README.md`.
//!
//! Usage: cargo run --example dev_certs [-- DIR]
//!
//! (`unwrap`-free, but errors are just printed: this is a tool, not a library.)

use std::path::{Path, PathBuf};

use tinywss::DevelopmentCertificate;

fn main() {
    let dir =
        std::env::args().nth(1).map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("certs"), PathBuf::from);
    match DevelopmentCertificate::generate(&dir) {
        Ok(certs) => {
            println!("CA certificate (trust this in clients): {}", certs.ca.display());
            println!("server certificate: {}", certs.cert.display());
            println!("server private key: {}", certs.key.display());
        }
        Err(e) => {
            eprintln!("cannot make development certificates in {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
}
