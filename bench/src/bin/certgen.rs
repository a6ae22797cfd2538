//! Writes the benchmark certificate: a CA (`ca.pem`) and an ECDSA P-256 `localhost`
//! certificate (`server.pem`, `server.key`) signed by it: the library's development
//! certificate, as the examples use it.
//! Every server in the benchmark uses these files, so all pay the same signature cost.
//!
//! Usage: certgen DIR

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: certgen DIR");
        std::process::exit(2);
    };
    match tinywss::DevelopmentCertificate::generate(&dir) {
        Ok(certs) => println!("{} {} {}", certs.ca.display(), certs.cert.display(), certs.key.display()),
        Err(e) => {
            eprintln!("certgen: {e}");
            std::process::exit(1);
        }
    }
}
