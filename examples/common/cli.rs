//! The command line every example shares: `--bind`, `--cert`/`--key` (or the
//! development certificates), `--max-message`, `--max-frame`, plus each example's own
//! flags, and logging to stderr (`RUST_LOG` sets the level; `info` by default).

// Each example uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::exit;

use tinywss::{Config, ConfigBuilder, Server};

use crate::dev_certs;

/// Parsed options.
pub struct Cli {
    pub bind: String,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub max_message: Option<usize>,
    pub max_frame: Option<usize>,
    /// The example's own flags, without their leading `--`.
    pub extra: HashMap<String, String>,
}

impl Cli {
    /// Parses the process arguments; `own_flags` are the example's extra flags (e.g.
    /// `["rate"]` for `--rate N`). Prints `usage` and exits on `--help` or a mistake.
    pub fn parse(usage: &str, own_flags: &[&str]) -> Cli {
        match Cli::try_parse(std::env::args().skip(1), own_flags) {
            Ok(cli) => cli,
            Err(e) if e.is_empty() => {
                println!("{usage}");
                exit(0);
            }
            Err(e) => usage_error(&e, usage),
        }
    }

    fn try_parse(mut argv: impl Iterator<Item = String>, own_flags: &[&str]) -> Result<Cli, String> {
        let mut cli = Cli {
            bind: "127.0.0.1:8443".into(),
            cert: None,
            key: None,
            max_message: None,
            max_frame: None,
            extra: HashMap::new(),
        };
        while let Some(flag) = argv.next() {
            if flag == "--help" || flag == "-h" {
                return Err(String::new());
            }
            let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bytes = || value.parse::<usize>().map_err(|_| format!("{flag}: {value:?} is not a number of bytes"));
            match flag.as_str() {
                "--bind" => cli.bind = value.clone(),
                "--cert" => cli.cert = Some(value.clone().into()),
                "--key" => cli.key = Some(value.clone().into()),
                "--max-message" => cli.max_message = Some(bytes()?),
                "--max-frame" => cli.max_frame = Some(bytes()?),
                other if own_flags.contains(&other.trim_start_matches("--")) => {
                    cli.extra.insert(other.trim_start_matches("--").to_owned(), value);
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        Ok(cli)
    }

    /// One of the example's own flags, parsed, or `default`.
    pub fn get<T: std::str::FromStr>(&self, flag: &str, default: T, usage: &str) -> T {
        match self.extra.get(flag) {
            None => default,
            Some(value) => {
                value.parse().unwrap_or_else(|_| usage_error(&format!("--{flag}: cannot use {value:?}"), usage))
            }
        }
    }

    /// Starts the server: the shared options, then the example's own (`configure`).
    /// Exits with the error if it cannot start; shuts down cleanly on Ctrl-C/SIGTERM.
    pub fn serve(&self, configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Server {
        self.start(configure, Server::bind)
    }

    /// Like [`serve`](Cli::serve), in handler mode: `start` is `Server::serve` with the
    /// example's handler.
    #[allow(dead_code)] // Only the examples with a handler mode use it.
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

    /// A builder with the shared options applied: address, TLS identity, limits.
    fn builder(&self) -> Result<ConfigBuilder, String> {
        let (cert, key) = self.identity()?;
        let mut builder = Config::builder().bind(&self.bind).tls_pem_files(cert, key);
        if let Some(bytes) = self.max_message {
            builder = builder.max_message_size(bytes);
        }
        if let Some(bytes) = self.max_frame {
            builder = builder.max_frame_size(bytes);
        }
        Ok(builder)
    }

    /// The certificate and key to use: the ones given, or the development ones.
    fn identity(&self) -> Result<(PathBuf, PathBuf), String> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok((cert.clone(), key.clone())),
            (None, None) => {
                let dir = dev_certs::default_dir();
                let certs =
                    dev_certs::ensure(&dir).map_err(|e| format!("cannot make development certificates: {e}"))?;
                log::warn!(
                    "using the development certificate {}; clients must trust {} (see certs/README.md)",
                    certs.cert.display(),
                    certs.ca.display()
                );
                Ok((certs.cert, certs.key))
            }
            _ => Err("--cert and --key go together".into()),
        }
    }
}

/// Logs to stderr at `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
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
    std::path::Path::new(&name).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
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
