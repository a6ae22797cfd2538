//! Makes the development certificates in `certs/`: a local CA (`ca.pem`) and a
//! certificate for `localhost`, `127.0.0.1` and `::1` (`server.pem`, `server.key`).
//!
//! The other examples make them on first use; run this to make new ones (after they
//! expire, say). Development only: see `certs/README.md`.
//!
//! Usage: cargo run --example dev_certs [-- DIR]
//!
//! (`unwrap`-free, but errors are just printed: this is a tool, not a library.)

#[path = "common/dev_certs.rs"]
mod dev_certs;

fn main() {
    let dir = std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(dev_certs::default_dir);
    match dev_certs::generate(&dir) {
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
