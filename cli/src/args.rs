//! The command line, parsed by hand: a dozen flags do not need an argument-parsing
//! crate (clap costs a stripped binary several hundred KB; this file, a few KB).
//!
//! Flags take their value as the next argument or after `=` (`--bind=0.0.0.0:8443`).
//! `--exec` and `--broadcast` take the rest of the line: the command and its arguments.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

/// What `tinywss serve` runs behind each connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    /// No command: every message comes back (a test target).
    Echo,
    /// One process per connection.
    Exec(Vec<String>),
    /// One process for the whole server, its output to every client.
    Broadcast(Vec<String>),
}

/// Where the server's certificate comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Identity {
    /// A certificate chain and its key, renewed in service when the files change.
    Files { cert: PathBuf, key: PathBuf },
    /// The development certificate in this folder, made on first use.
    Development(PathBuf),
}

/// `tinywss serve`'s options.
#[derive(Debug)]
pub struct Serve {
    pub bind: Vec<String>,
    pub identity: Identity,
    pub static_dir: Option<PathBuf>,
    pub origins: Vec<String>,
    pub same_origin: bool,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<Option<usize>>,
    pub max_message: Option<usize>,
    /// `Some(None)`: no keepalive ping.
    pub ping: Option<Option<Duration>>,
    pub client_ca: Option<PathBuf>,
    pub max_forks: Option<usize>,
    pub binary: bool,
    pub room: Option<String>,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    pub mode: Mode,
}

pub const SERVE_HELP: &str =
    "usage: tinywss serve (--cert PEM --key PEM | --dev[=DIR]) [OPTIONS] [--exec|--broadcast CMD [ARGS...]]

  --exec CMD [ARGS...]    one process per connection: each line it writes is a message to
                          its client, each message from the client a line on its stdin;
                          the connection closes (1000) when it exits, and it gets SIGTERM
                          (SIGKILL after --grace) when the client leaves
  --broadcast CMD [ARGS...]
                          one process for the server: each line it writes goes to every
                          client (or --room); client messages reach its stdin as \"ID TEXT\"
  (neither)               echo every message back
  --cert PEM --key PEM    certificate chain and key (renewed files are picked up live)
  --dev[=DIR]             a development certificate in DIR (default: certs), made on
                          first run: clients must trust DIR/ca.pem
  --bind ADDR             listen on ADDR; repeat for more (default: 127.0.0.1:8443, [::1]:8443)
  --static DIR            serve the files in DIR to plain GET requests
  --origin ORIGIN         accept browsers from ORIGIN only; repeatable
  --same-origin           accept browsers from this server's own pages
  --max-connections N     clients at once (default: 256)
  --max-connections-per-ip N|none   of those, from one address (default: 64)
  --max-message BYTES     largest message from a client (default: 1048576)
  --ping SECS             keepalive ping interval, 0 for none (default: 30)
  --client-ca PEM         require client certificates signed by this CA (mTLS)
  --max-forks N           with --exec: processes at once; the next client gets HTTP 503
  --binary                with --exec/--broadcast: chunks as binary messages, not lines
  --room NAME             with --broadcast: only to clients that asked for ?room=NAME
  --grace SECS            with --exec: SIGTERM to SIGKILL (default: 2)
  RUST_LOG=debug          shows handshakes and closes; RUST_LOG=trace every frame too";

/// The arguments still to read.
struct Argv(VecDeque<String>);

impl Argv {
    /// The next flag and, for `--flag=value`, its value.
    fn next_flag(&mut self) -> Option<(String, Option<String>)> {
        let arg = self.0.pop_front()?;
        match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => Some((flag.to_owned(), Some(value.to_owned()))),
            _ => Some((arg, None)),
        }
    }

    fn value(&mut self, flag: &str, inline: Option<String>) -> Result<String, String> {
        inline.or_else(|| self.0.pop_front()).ok_or_else(|| format!("{flag} needs a value"))
    }

    fn number(&mut self, flag: &str, inline: Option<String>) -> Result<usize, String> {
        let value = self.value(flag, inline)?;
        value.parse().map_err(|_| format!("{flag}: {value:?} is not a number"))
    }

    fn rest(&mut self, flag: &str) -> Result<Vec<String>, String> {
        let command: Vec<String> = self.0.drain(..).skip_while(|arg| arg == "--").collect();
        if command.is_empty() {
            return Err(format!("{flag} needs a command"));
        }
        Ok(command)
    }
}

/// Parses `tinywss serve`'s arguments (after `serve`). `Err("")` asks for the help.
pub fn parse_serve(args: impl IntoIterator<Item = String>) -> Result<Serve, String> {
    let mut argv = Argv(args.into_iter().collect());
    let mut serve = Serve {
        bind: Vec::new(),
        identity: Identity::Development(PathBuf::new()),
        static_dir: None,
        origins: Vec::new(),
        same_origin: false,
        max_connections: None,
        max_connections_per_ip: None,
        max_message: None,
        ping: None,
        client_ca: None,
        max_forks: None,
        binary: false,
        room: None,
        grace: Duration::from_secs(2),
        mode: Mode::Echo,
    };
    let (mut cert, mut key, mut dev) = (None, None, None);
    while let Some((flag, inline)) = argv.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--exec" => serve.mode = Mode::Exec(argv.rest(&flag)?),
            "--broadcast" => serve.mode = Mode::Broadcast(argv.rest(&flag)?),
            "--cert" => cert = Some(PathBuf::from(argv.value(&flag, inline)?)),
            "--key" => key = Some(PathBuf::from(argv.value(&flag, inline)?)),
            "--dev" => dev = Some(PathBuf::from(inline.unwrap_or_else(|| "certs".into()))),
            "--bind" => serve.bind.push(argv.value(&flag, inline)?),
            "--static" => serve.static_dir = Some(argv.value(&flag, inline)?.into()),
            "--origin" => serve.origins.push(argv.value(&flag, inline)?),
            "--same-origin" => serve.same_origin = true,
            "--max-connections" => serve.max_connections = Some(argv.number(&flag, inline)?),
            "--max-connections-per-ip" => {
                serve.max_connections_per_ip = match argv.value(&flag, inline.clone())?.as_str() {
                    "none" => Some(None),
                    n => Some(Some(n.parse().map_err(|_| format!("{flag}: {n:?} is not a number, nor none"))?)),
                }
            }
            "--max-message" => serve.max_message = Some(argv.number(&flag, inline)?),
            "--ping" => serve.ping = Some(Some(argv.number(&flag, inline)?).filter(|&s| s > 0).map(secs)),
            "--client-ca" => serve.client_ca = Some(argv.value(&flag, inline)?.into()),
            "--max-forks" => serve.max_forks = Some(argv.number(&flag, inline)?),
            "--binary" => serve.binary = true,
            "--room" => serve.room = Some(argv.value(&flag, inline)?),
            "--grace" => serve.grace = secs(argv.number(&flag, inline)?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    serve.identity = match (cert, key, dev) {
        (Some(cert), Some(key), None) => Identity::Files { cert, key },
        (None, None, Some(dir)) => Identity::Development(dir),
        (None, None, None) => {
            return Err("no certificate: give --cert PEM --key PEM, or --dev for a development one".into())
        }
        (_, _, Some(_)) => return Err("--dev and --cert/--key exclude each other".into()),
        _ => return Err("--cert and --key go together".into()),
    };
    check_mode_flags(&serve)?;
    Ok(serve)
}

/// Flags that mean nothing in the chosen mode are mistakes, not silently ignored.
fn check_mode_flags(serve: &Serve) -> Result<(), String> {
    let exec = matches!(serve.mode, Mode::Exec(_));
    let broadcast = matches!(serve.mode, Mode::Broadcast(_));
    if serve.max_forks.is_some() && !exec {
        return Err("--max-forks goes with --exec".into());
    }
    if serve.room.is_some() && !broadcast {
        return Err("--room goes with --broadcast".into());
    }
    if serve.binary && !(exec || broadcast) {
        return Err("--binary goes with --exec or --broadcast".into());
    }
    Ok(())
}

fn secs(n: usize) -> Duration {
    Duration::from_secs(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Serve, String> {
        parse_serve(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn the_command_takes_the_rest_of_the_line() {
        let serve = parse("--dev --bind 127.0.0.1:0 --bind=[::1]:0 --exec sh -c read --max-forks").unwrap();
        assert_eq!(serve.mode, Mode::Exec(vec!["sh".into(), "-c".into(), "read".into(), "--max-forks".into()]));
        assert_eq!(serve.bind, ["127.0.0.1:0", "[::1]:0"]);
        assert_eq!(serve.identity, Identity::Development("certs".into()));
        assert_eq!(parse("--dev=/tmp/c").unwrap().identity, Identity::Development("/tmp/c".into()));
        assert_eq!(parse("--dev --ping 0").unwrap().ping, Some(None));
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(
            parse("--bind 1").unwrap_err(),
            "no certificate: give --cert PEM --key PEM, or --dev for a development one"
        );
        assert_eq!(parse("--cert a").unwrap_err(), "--cert and --key go together");
        assert_eq!(parse("--dev --max-forks 2").unwrap_err(), "--max-forks goes with --exec");
        assert_eq!(parse("--dev --max-forks x --exec cat").unwrap_err(), "--max-forks: \"x\" is not a number");
        assert_eq!(parse("--dev --exec").unwrap_err(), "--exec needs a command");
        assert_eq!(parse("--dev --bogus").unwrap_err(), "unknown option --bogus");
    }
}
