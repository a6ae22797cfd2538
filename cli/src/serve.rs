//! `tinywss serve`: the options onto the library's `ConfigBuilder`, then one of the three
//! modes. Certificate renewal, `/healthz`, the limits and the logs are the library's.

use std::process::exit;
use std::sync::Mutex;

use tinywss::crossbeam_channel::{bounded, Sender};
use tinywss::{ClientAuth, Config, ConfigBuilder, Connection, HandlerError, Server};

use crate::args::{Identity, Mode, Serve};
use crate::exec::{Exec, Forks};
use crate::process::Framing;

/// Runs the server until Ctrl-C/SIGTERM (or, with `--broadcast`, until the process ends).
pub fn run(serve: Serve) -> i32 {
    let config = match builder(&serve).build() {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    let framing = Framing { binary: serve.binary, max_line: serve.max_message.unwrap_or(1 << 20) };
    // Disconnects at shutdown, for --exec handlers waiting on a process that does not read.
    let (stop_tx, stop) = bounded::<()>(0);
    let server = match &serve.mode {
        Mode::Echo => Server::serve(config, echo),
        Mode::Exec(command) => {
            let exec = Exec { command: command.clone(), framing, grace: serve.grace, stop };
            Server::serve(config, move |conn| exec.serve(conn))
        }
        Mode::Broadcast(_) => Server::bind(config),
    };
    let server = match server {
        Ok(server) => server,
        Err(e) => return fail(&e),
    };
    shutdown_on_signal(&server, stop_tx);
    let urls: Vec<String> = server.local_addrs().iter().map(|a| format!("wss://{a}/")).collect();
    log::info!("ready: {}", urls.join(" "));
    match serve.mode {
        Mode::Broadcast(command) => crate::broadcast::run(&server, &command, framing, serve.room, serve.grace),
        // Handler mode: the clients are served on their own threads; this one waits for
        // the shutdown, after which the events channel disconnects.
        _ => {
            for _ in server.events() {}
            0
        }
    }
}

fn builder(serve: &Serve) -> ConfigBuilder {
    let mut builder = serve.bind.iter().fold(Config::builder(), |builder, addr| builder.bind(addr));
    builder = match &serve.identity {
        Identity::Files { cert, key } => builder.tls_pem_files(cert, key),
        Identity::Development(dir) => builder.development_certificate(dir),
    };
    if let Some(dir) = &serve.static_dir {
        builder = builder.static_dir(dir);
    }
    builder = builder.allowed_origins(serve.origins.iter().cloned()).allow_same_origin(serve.same_origin);
    if let Some(n) = serve.max_connections {
        builder = builder.max_connections(n);
    }
    if let Some(n) = serve.max_connections_per_ip {
        builder = builder.max_connections_per_ip(n);
    }
    if let Some(bytes) = serve.max_message {
        builder = builder.max_message_size(bytes).max_frame_size(bytes);
    }
    if let Some(interval) = serve.ping {
        builder = builder.ping_interval(interval);
    }
    if let Some(ca) = &serve.client_ca {
        builder = builder.client_auth(ca, ClientAuth::Required);
    }
    if let Some(max) = serve.max_forks {
        let forks = Forks::new(max);
        builder = builder.authenticate(move |request| forks.admit(request));
    }
    builder
}

fn echo(conn: &mut Connection<'_>) -> Result<(), HandlerError> {
    while let Some(message) = conn.recv() {
        conn.send(message)?;
    }
    Ok(())
}

/// Ctrl-C or SIGTERM: every client gets a Close (1001), every process is stopped and
/// reaped, then `tinywss` exits.
fn shutdown_on_signal(server: &Server, stop: Sender<()>) {
    let handle = server.handle();
    let stop = Mutex::new(Some(stop));
    let result = ctrlc::set_handler(move || {
        log::info!("signal received; shutting down");
        drop(stop.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Err(e) = handle.shutdown() {
            log::warn!("{e}");
        }
    });
    if let Err(e) = result {
        log::warn!("cannot handle Ctrl-C: {e}");
    }
}

fn fail(error: &dyn std::fmt::Display) -> i32 {
    eprintln!("tinywss: {error}");
    exit(1)
}
