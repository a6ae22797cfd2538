//! The synchronous peer: the echo server a user would write from tungstenite's README,
//! with rustls around the socket. A blocking `TcpListener`, one `std::thread` per client,
//! `rustls::StreamOwned` (blocking), `tungstenite::accept`, tungstenite's default
//! `WebSocketConfig`, and `send` (write + flush) for every message: one TLS record and one
//! `write(2)` per echo, no batching. It is what tinywss is built from, without tinywss.
//!
//! Like the other servers it sets `TCP_NODELAY` and ends TLS with close_notify after the
//! close handshake.
//!
//! Usage: sync_ws_server --cert PEM --key PEM [--bind ADDR] [--lifetime SECS]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use tinywss_bench::{server_tls, Flags};
use tungstenite::{Error as WsError, WebSocket};

const USAGE: &str = "usage: sync_ws_server --cert PEM --key PEM [--bind ADDR (127.0.0.1:9006)] \
[--lifetime SECS (900)]";

type Ws = WebSocket<StreamOwned<ServerConnection, TcpStream>>;

fn main() {
    let flags = Flags::parse(USAGE, &["bind", "cert", "key", "lifetime"]);
    let tls = server_tls(&flags.required::<PathBuf>("cert"), &flags.required::<PathBuf>("key"), &[b"http/1.1"]);
    let listener = TcpListener::bind(flags.get("bind", "127.0.0.1:9006".to_string())).expect("bind");
    println!("listening {}", listener.local_addr().expect("local address"));
    let _ = std::io::stdout().flush();
    let lifetime = Duration::from_secs(flags.get("lifetime", 900));
    thread::spawn(move || {
        thread::sleep(lifetime);
        std::process::exit(0);
    });
    for tcp in listener.incoming() {
        match tcp {
            Ok(tcp) => {
                let tls = Arc::clone(&tls);
                thread::spawn(move || serve(tls, tcp));
            }
            // Out of descriptors, usually: back off instead of spinning.
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One client, from the TCP connection to the end of TLS; a failed handshake or a broken
/// connection just ends the thread.
fn serve(tls: Arc<ServerConfig>, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let Ok(conn) = ServerConnection::new(tls) else { return };
    // The TLS handshake runs inside the first reads of the WebSocket handshake.
    let Ok(mut ws) = tungstenite::accept(StreamOwned::new(conn, tcp)) else { return };
    if let Err(WsError::ConnectionClosed) = echo(&mut ws) {
        let stream = ws.get_mut();
        stream.conn.send_close_notify();
        let _ = stream.flush();
    }
}

/// tungstenite's README loop: ping, pong and close are answered inside `read`.
fn echo(ws: &mut Ws) -> Result<(), WsError> {
    loop {
        let message = ws.read()?;
        if message.is_binary() || message.is_text() {
            ws.send(message)?;
        }
    }
}
