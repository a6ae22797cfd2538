//! `tinywss serve --broadcast`: one process for the whole server. Each message it writes
//! goes to every client (or to the room `--room`), through the library's broadcast:
//! one payload shared by all, each client's own bounded queue, and a client that cannot
//! keep up closed with 1013 without slowing the others. Client messages reach its stdin
//! prefixed with the connection's id; while it does not read, the events loop waits,
//! the events channel fills, and the clients are held back by TCP.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tinywss::{Event, Server};

use crate::process::{self, Framing};

/// Runs `command` behind `server` until the process ends its output (then the server
/// shuts down) or the server is shut down (then the process is stopped). Returns the
/// exit code for `tinywss`: the process's own when it exited by itself.
pub fn run(
    server: &Server,
    command: &[String],
    framing: Framing,
    room: Option<String>,
    grace: std::time::Duration,
) -> i32 {
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]);
    let (mut process, input, output) = match process::spawn(cmd, framing, || {}) {
        Ok((child, input, output)) => (process::Reaper::new(child, grace), input, output),
        Err(e) => {
            log::error!("cannot start {:?}: {e}", command[0]);
            return 1;
        }
    };
    log::info!(
        "process {} ({}) broadcasts to {}",
        process.child.id(),
        command.join(" "),
        room.as_deref().map_or("every client".into(), |r| format!("room {r:?}"))
    );
    let handle = server.handle();
    let target = room.clone();
    let ended = Arc::new(AtomicBool::new(false));
    let output_ended = Arc::clone(&ended);
    let relay = std::thread::spawn(move || {
        for message in &output {
            let sent = match &target {
                Some(room) => handle.publish(room, message),
                None => handle.broadcast(message),
            };
            if sent.is_err() {
                return; // shut down
            }
        }
        log::info!("the process closed its output: shutting down");
        output_ended.store(true, Ordering::SeqCst);
        let _ = handle.shutdown();
    });
    let handle = server.handle();
    for event in server.events() {
        match event {
            Event::Open { conn, info } => {
                log::info!("{conn} open from {}", info.peer);
                if let Some(room) = &room {
                    if query_room(&info.path).as_deref() == Some(room.as_str()) {
                        let _ = handle.join(conn, room);
                    }
                }
            }
            Event::Message { conn, message, .. } => {
                // Waits while the process does not read: back-pressure on every client.
                let _ = input.send(process::input(&message, &format!("{} ", conn.as_u64())));
            }
            Event::Close { conn, reason, .. } => log::info!("{conn} {reason}"),
            _ => {}
        }
    }
    drop(input);
    // A process that closed its output is most likely exiting: let its exit status stand.
    let status = if ended.load(Ordering::SeqCst) { process.finish() } else { process.stop() };
    let _ = relay.join();
    log::info!("process {} ended: {}", process.child.id(), process::describe(status));
    // Its own code when it exited by itself; 0 when it was stopped with the server.
    status.and_then(|s| s.code()).unwrap_or(0)
}

/// The `room` parameter of a request target such as `/feed?room=kitchen`.
fn query_room(target: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| pair.strip_prefix("room=")).map(str::to_owned)
}
