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

#[path = "common/check.rs"]
mod check;

use std::process::exit;
use std::time::Duration;

const USAGE: &str = "usage: check wss://HOST[:PORT]/PATH [--ca PEM]... [--cert PEM --key PEM] \
                     [--protocol NAME]... [--tls 1.2|1.3] [--timeout SECS]";

fn parse_args() -> Result<check::Options, String> {
    let mut argv = std::env::args().skip(1);
    let mut options = check::Options::new("");
    let (mut cert, mut key) = (None, None);
    while let Some(arg) = argv.next() {
        if arg == "--help" || arg == "-h" {
            println!("{USAGE}");
            exit(0);
        }
        if !arg.starts_with("--") {
            options.url = arg;
            continue;
        }
        let value = argv.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--ca" => options.ca_files.push(value.into()),
            "--cert" => cert = Some(value.into()),
            "--key" => key = Some(value.into()),
            "--protocol" => options.subprotocols.push(value),
            "--tls" => options.tls_version = Some(value),
            "--timeout" => {
                let secs = value.parse().map_err(|_| format!("--timeout: {value:?} is not a number of seconds"))?;
                options.timeout = Duration::from_secs(secs);
            }
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    options.client_cert = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--cert and --key go together".into()),
    };
    if options.url.is_empty() {
        return Err("no URL given".into());
    }
    Ok(options)
}

fn main() {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("check: {e}\n{USAGE}");
            exit(2);
        }
    };
    println!("checking {}", options.url);
    let report = check::check(&options);
    println!("{report}");
    exit(if report.failed_step().is_some() { 1 } else { 0 });
}
