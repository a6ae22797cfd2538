//! The command line every example shares: `--bind` (repeatable), `--cert`/`--key` (or
//! the library's development certificate in `certs/`), `--max-connections`,
//! `--max-connections-per-ip`, `--max-message`, `--max-frame`, `--deflate`/`--deflate-takeover`,
//! plus each example's own
//! flags; logging to stderr
//! (`RUST_LOG` sets the level; `info` by default); a clean shutdown on Ctrl-C/SIGTERM.

// Each example uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::exit;

use tinywss::{Compression, Config, ConfigBuilder, Server};

/// The flags every example takes, for `--help` and usage errors.
const SHARED_USAGE: &str = "[--bind ADDR]... [--cert PEM --key PEM] [--max-connections N] \
                            [--max-connections-per-ip N|none] [--max-message BYTES] [--max-frame BYTES] \
                            [--deflate | --deflate-takeover BITS]";

// (No `\` after the opening quote: it would eat the first line's indent.)
const SHARED_HELP: &str =
    "  --bind ADDR           listen on ADDR; repeat to listen on more (default: 127.0.0.1:8443 and [::1]:8443)
  --cert PEM --key PEM  your certificate chain and key (default: a development certificate in certs/)
  --max-connections N   clients served at once (default: 256)
  --max-connections-per-ip N|none
                        of those, from one address (default: 64; a local load test needs more)
  --max-message BYTES   largest message a client may send (default: 1048576)
  --max-frame BYTES     largest frame a client may send (default: 1048576)
  --deflate             permessage-deflate for clients that offer it, no context takeover
  --deflate-takeover BITS
                        permessage-deflate with context takeover and a window of 2^BITS (9-15)
  RUST_LOG=debug        shows handshakes and closes; RUST_LOG=trace every frame too";

/// Parsed options.
pub struct Cli {
    /// The addresses given; empty: the library's default (both loopback addresses).
    pub bind: Vec<String>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub max_connections: Option<usize>,
    /// `Some(None)`: no limit per address.
    pub max_connections_per_ip: Option<Option<usize>>,
    pub max_message: Option<usize>,
    pub max_frame: Option<usize>,
    /// `--deflate` or `--deflate-takeover`.
    pub compression: Option<Compression>,
    /// The example's own flags, without their leading `--`.
    pub extra: HashMap<String, String>,
    /// The usage line: the shared flags and the example's own.
    pub usage: String,
}

impl Cli {
    /// Parses the process arguments for example `name`; `own_usage` shows its own flags
    /// (e.g. `"[--rate N]"`), `own_flags` names them (e.g. `["rate"]`). Prints the usage
    /// and exits on `--help` or a mistake.
    pub fn parse(name: &str, own_usage: &str, own_flags: &[&str]) -> Cli {
        let usage = format!("usage: {name} {SHARED_USAGE} {own_usage}").trim_end().to_owned();
        match Cli::try_parse(std::env::args().skip(1), own_flags, usage.clone()) {
            Ok(cli) => cli,
            Err(e) if e.is_empty() => {
                println!("{usage}\n{SHARED_HELP}");
                exit(0);
            }
            Err(e) => usage_error(&e, &usage),
        }
    }

    pub fn try_parse(mut argv: impl Iterator<Item = String>, own_flags: &[&str], usage: String) -> Result<Cli, String> {
        let mut cli = Cli {
            bind: Vec::new(),
            cert: None,
            key: None,
            max_connections: None,
            max_connections_per_ip: None,
            max_message: None,
            max_frame: None,
            compression: None,
            extra: HashMap::new(),
            usage,
        };
        while let Some(flag) = argv.next() {
            if flag == "--help" || flag == "-h" {
                return Err(String::new());
            }
            if flag == "--deflate" {
                cli.compression = Some(Compression::no_context_takeover());
                continue;
            }
            let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |what: &str| value.parse::<usize>().map_err(|_| format!("{flag}: {value:?} is not a {what}"));
            match flag.as_str() {
                "--bind" => cli.bind.push(value.clone()),
                "--cert" => cli.cert = Some(value.clone().into()),
                "--key" => cli.key = Some(value.clone().into()),
                "--max-connections" => cli.max_connections = Some(number("number of connections")?),
                "--max-connections-per-ip" if value == "none" => cli.max_connections_per_ip = Some(None),
                "--max-connections-per-ip" => {
                    cli.max_connections_per_ip = Some(Some(number("number of connections, nor none")?));
                }
                "--max-message" => cli.max_message = Some(number("number of bytes")?),
                "--max-frame" => cli.max_frame = Some(number("number of bytes")?),
                "--deflate-takeover" => {
                    let bits = number("window size in bits")?.clamp(9, 15) as u8;
                    cli.compression = Some(Compression::context_takeover(bits));
                }
                other if own_flags.contains(&other.trim_start_matches("--")) => {
                    cli.extra.insert(other.trim_start_matches("--").to_owned(), value);
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        Ok(cli)
    }

    /// One of the example's own flags, parsed, or `default`.
    pub fn get<T: std::str::FromStr>(&self, flag: &str, default: T) -> T {
        match self.extra.get(flag) {
            None => default,
            Some(value) => {
                value.parse().unwrap_or_else(|_| self.usage_error(&format!("--{flag}: cannot use {value:?}")))
            }
        }
    }

    /// A mistake on the command line: prints it and the usage, exits with status 2.
    pub fn usage_error(&self, error: &str) -> ! {
        usage_error(error, &self.usage)
    }

    /// Starts the server: the shared options, then the example's own (`configure`).
    /// Exits with the error if it cannot start; shuts down cleanly on Ctrl-C/SIGTERM.
    pub fn serve(&self, configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Server {
        self.start(configure, Server::bind)
    }

    /// Like [`serve`](Cli::serve), in handler mode: `start` is `Server::serve` with the
    /// example's handler.
    pub fn start(
        &self,
        configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
        start: impl FnOnce(tinywss::Config) -> Result<Server, tinywss::Error>,
    ) -> Server {
        let server = self
            .builder()
            .and_then(|builder| configure(builder).build().map_err(|e| e.to_string()))
            .and_then(|config| start(config).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| fail(&e));
        shutdown_on_signal(server.handle());
        server
    }

    /// A builder with the shared options applied: addresses, TLS identity, limits.
    pub fn builder(&self) -> Result<ConfigBuilder, String> {
        let mut builder = self.bind.iter().fold(Config::builder(), |builder, addr| builder.bind(addr));
        builder = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => builder.tls_pem_files(cert, key),
            // Made in this repository's certs/ on first run, and announced in the log.
            (None, None) => builder.development_certificate(Path::new(env!("CARGO_MANIFEST_DIR")).join("certs")),
            _ => return Err("--cert and --key go together".into()),
        };
        if let Some(n) = self.max_connections {
            builder = builder.max_connections(n);
        }
        if let Some(n) = self.max_connections_per_ip {
            builder = builder.max_connections_per_ip(n);
        }
        if let Some(bytes) = self.max_message {
            builder = builder.max_message_size(bytes);
        }
        if let Some(bytes) = self.max_frame {
            builder = builder.max_frame_size(bytes);
        }
        Ok(builder.compression(self.compression))
    }
}

/// Where clients reach `server`: one URL per address actually bound (`localhost` for
/// the loopback and wildcard ones), then the addresses themselves, e.g.
/// `wss://localhost:8443/ (listening on 127.0.0.1:8443, [::1]:8443)`.
pub fn reach(server: &Server, scheme: &str, path: &str) -> String {
    let addrs = server.local_addrs();
    let mut urls: Vec<String> = Vec::new();
    for addr in addrs {
        let host = match addr.ip() {
            ip if ip.is_unspecified() || ip == Ipv4Addr::LOCALHOST || ip == Ipv6Addr::LOCALHOST => "localhost".into(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let url = format!("{scheme}://{host}:{}{path}", addr.port());
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    let listening: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    format!("{} (listening on {})", urls.join(" "), listening.join(", "))
}

/// Logs to stderr at `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    env_logger::Builder::new().parse_filters(&filter).init();
}

/// `RUST_LOG` (or `info`), with tungstenite held at `info` unless `RUST_LOG` names it:
/// tungstenite's own `debug` and `trace` lines print close reasons and message payloads,
/// which tinywss itself never logs at any level.
pub fn log_filter(rust_log: Option<&str>) -> String {
    let asked = rust_log.map(str::trim).filter(|filter| !filter.is_empty()).unwrap_or("info");
    if asked.contains("tungstenite") {
        asked.to_owned()
    } else {
        format!("{asked},tungstenite=info")
    }
}

/// A mistake on the command line: prints the error and the usage, exits with status 2.
pub fn usage_error(error: &str, usage: &str) -> ! {
    eprintln!("{}: {error}\n{usage}", program());
    exit(2)
}

/// The server cannot start (a certificate problem, a port in use): prints the error and
/// exits with status 1.
pub fn fail(error: &str) -> ! {
    eprintln!("{}: {error}", program());
    exit(1)
}

fn program() -> String {
    let name = std::env::args().next().unwrap_or_default();
    Path::new(&name).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Shuts the server down cleanly on Ctrl-C or SIGTERM: every client gets a Close frame
/// (1001) instead of a dropped connection, and the events loop ends.
fn shutdown_on_signal(handle: tinywss::Handle) {
    let result = ctrlc::set_handler(move || {
        log::info!("signal received; shutting down");
        if let Err(e) = handle.shutdown() {
            log::warn!("{e}");
        }
    });
    if let Err(e) = result {
        log::warn!("cannot handle Ctrl-C: {e}");
    }
}
