//! `tinywss`: the tinywss library as a program, for people who do not write Rust.
//!
//! - `tinywss serve`: serve any command over `wss://`, one process per connection
//!   (`--exec`, as websocketd does) or one for all (`--broadcast`), or echo;
//! - `tinywss check URL`: check a `wss://` server step by step, from the client side;
//! - `tinywss certs DIR`: make a development CA and a certificate for this machine.
//!
//! Logs go to stderr (`RUST_LOG=debug` for handshakes and closes).

mod args;
mod broadcast;
#[cfg(feature = "check")]
mod check;
mod civil_date;
mod exec;
mod logger;
mod process;
mod serve;

use std::path::PathBuf;
use std::process::exit;

const USAGE: &str = "usage: tinywss serve (--cert PEM --key PEM | --dev) [OPTIONS] [--exec|--broadcast CMD [ARGS...]]
       tinywss check wss://HOST[:PORT]/PATH [--ca PEM]... [--cert PEM --key PEM]
       tinywss certs DIR [--name HOST|IP]...
       tinywss COMMAND --help    for each command's options";

fn main() {
    init_logging();
    let mut args = std::env::args().skip(1);
    let code = match args.next().as_deref() {
        Some("serve") => match args::parse_serve(args) {
            Ok(options) => serve::run(options),
            Err(e) if e.is_empty() => help(args::SERVE_HELP),
            Err(e) => usage_error(&e, "tinywss serve --help for the options"),
        },
        #[cfg(feature = "check")]
        Some("check") => check::main(args),
        #[cfg(not(feature = "check"))]
        Some("check") => usage_error("this tinywss was built without the checker (cargo feature \"check\")", USAGE),
        Some("certs") => certs(args),
        Some("-V" | "--version") => help(concat!("tinywss ", env!("CARGO_PKG_VERSION"))),
        Some("-h" | "--help" | "help") | None => help(USAGE),
        Some(other) => usage_error(&format!("unknown command {other:?}"), USAGE),
    };
    exit(code);
}

/// `tinywss certs DIR [--name NAME]...`: a new development CA and certificate, and how
/// to trust it.
fn certs(args: impl Iterator<Item = String>) -> i32 {
    const USAGE: &str = "usage: tinywss certs DIR [--name HOST|IP]...";
    let (mut dir, mut names) = (None, Vec::new());
    let mut args = args;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--name" => match args.next() {
                Some(name) => names.push(name),
                None => return usage_error("--name needs a host name or an IP address", USAGE),
            },
            "-h" | "--help" => return help(USAGE),
            _ if arg.starts_with('-') || dir.is_some() => return usage_error(&format!("unexpected {arg:?}"), USAGE),
            _ => dir = Some(PathBuf::from(arg)),
        }
    }
    let Some(dir) = dir else { return usage_error("certs needs a folder", USAGE) };
    match tinywss::DevelopmentCertificate::generate_for(&dir, &names) {
        Ok(certs) => {
            let (ca, shown) = (certs.ca.display(), dir.display());
            let all: Vec<&str> =
                ["localhost", "127.0.0.1", "::1"].into_iter().chain(names.iter().map(String::as_str)).collect();
            println!("made a development CA and a certificate for {} in {shown}:", all.join(", "));
            println!("  {ca}  the CA: clients must trust it");
            println!("  {}  {}  the server's certificate and key", certs.cert.display(), certs.key.display());
            println!("serve with:  tinywss serve --dev={shown}");
            println!("trust it:    curl --cacert {ca}   NODE_EXTRA_CA_CERTS={ca}   SSL_CERT_FILE={ca} websocat");
            println!("             tinywss check wss://localhost:8443/ --ca {ca}");
            println!("             browsers: import {ca} as an authority (see certs/README.md in the sources)");
            println!(
                "never in production: the key is unencrypted, and the certificate names only what is listed above"
            );
            0
        }
        Err(e) => {
            eprintln!("tinywss: cannot make development certificates in {}: {e}", dir.display());
            1
        }
    }
}

fn help(text: &str) -> i32 {
    println!("{text}");
    0
}

fn usage_error(error: &str, usage: &str) -> i32 {
    eprintln!("tinywss: {error}\n{usage}");
    2
}

/// Logs to stderr at `info` unless `RUST_LOG` says otherwise; tungstenite's own lines
/// stay at `info` unless named, since its `debug` and `trace` lines print payloads.
fn init_logging() {
    let asked = std::env::var("RUST_LOG").ok().filter(|f| !f.trim().is_empty()).unwrap_or_else(|| "info".into());
    let filter = if asked.contains("tungstenite") { asked } else { format!("{asked},tungstenite=info") };
    logger::init(&filter);
}
