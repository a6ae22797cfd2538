//! Writes the benchmark certificate: a CA (`ca.pem`) and an ECDSA P-256 `localhost`
//! certificate (`server.pem`, `server.key`) signed by it, the same code the examples use.
//! Every server in the benchmark uses these files, so all pay the same signature cost.
//!
//! Usage: certgen DIR

#[path = "../../../examples/common/dev_certs.rs"]
mod dev_certs;

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: certgen DIR");
        std::process::exit(2);
    };
    match dev_certs::generate(std::path::Path::new(&dir)) {
        Ok(certs) => println!("{} {} {}", certs.ca.display(), certs.cert.display(), certs.key.display()),
        Err(e) => {
            eprintln!("certgen: {e}");
            std::process::exit(1);
        }
    }
}
