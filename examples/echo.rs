//! An echo server: every message a client sends comes back to it.
//!
//! With no `--cert`/`--key`, it uses the development certificates in `certs/` (and makes
//! them on first run): a browser or client must trust `certs/ca.pem` to connect.
//!
//! Usage: cargo run --example echo -- [--bind ADDR] [--cert PEM --key PEM]
//!        [--max-message BYTES] [--max-frame BYTES]
//!
//! Defaults: `--bind 127.0.0.1:8443`, the development certificates, and the library's
//! message limits (1 MiB). Logs go to stderr; set `RUST_LOG=debug` (or `trace`) to watch
//! handshakes and frames.

#[path = "common/dev_certs.rs"]
mod dev_certs;

use std::path::PathBuf;
use std::process::exit;

use tinywss::{Config, Event, Server};

struct Args {
    bind: String,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    max_message: Option<usize>,
    max_frame: Option<usize>,
}

const USAGE: &str = "usage: echo [--bind ADDR] [--cert PEM --key PEM] [--max-message BYTES] [--max-frame BYTES]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args { bind: "127.0.0.1:8443".into(), cert: None, key: None, max_message: None, max_frame: None };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            exit(0);
        }
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bytes = || value.parse::<usize>().map_err(|_| format!("{flag}: {value:?} is not a number of bytes"));
        match flag.as_str() {
            "--bind" => args.bind = value.clone(),
            "--cert" => args.cert = Some(value.clone().into()),
            "--key" => args.key = Some(value.clone().into()),
            "--max-message" => args.max_message = Some(bytes()?),
            "--max-frame" => args.max_frame = Some(bytes()?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(args)
}

/// The certificate and key to use: the ones given, or the development ones.
fn identity(args: &Args) -> Result<(PathBuf, PathBuf), String> {
    match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Ok((cert.clone(), key.clone())),
        (None, None) => {
            let dir = dev_certs::default_dir();
            let certs = dev_certs::ensure(&dir).map_err(|e| format!("cannot make development certificates: {e}"))?;
            log::warn!(
                "using the development certificate {}; clients must trust {}",
                certs.cert.display(),
                certs.ca.display()
            );
            Ok((certs.cert, certs.key))
        }
        _ => Err("--cert and --key go together".into()),
    }
}

fn build_config(args: &Args) -> Result<Config, String> {
    let (cert, key) = identity(args)?;
    let mut builder = Config::builder().bind(&args.bind).tls_pem_files(cert, key);
    if let Some(bytes) = args.max_message {
        builder = builder.max_message_size(bytes);
    }
    if let Some(bytes) = args.max_frame {
        builder = builder.max_frame_size(bytes);
    }
    builder.build().map_err(|e| e.to_string())
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let server = parse_args()
        .and_then(|args| build_config(&args))
        .and_then(|config| Server::bind(config).map_err(|e| e.to_string()));
    let server = match server {
        Ok(server) => server,
        Err(e) => {
            eprintln!("echo: {e}\n{USAGE}");
            exit(2);
        }
    };
    log::info!("echo server ready at wss://localhost:{}/", server.local_addr().port());
    let handle = server.handle();
    for event in server.events() {
        match event {
            Event::Open { conn, info } => log::info!("{conn} open from {} on {}", info.peer, info.path),
            // The handle refuses only after shutdown: then the loop ends anyway.
            Event::Message { conn, message, .. } => {
                let _ = handle.send(conn, message);
            }
            Event::Close { conn, reason, .. } => log::info!("{conn} {reason}"),
            _ => {}
        }
    }
}
