//! The comparison peer: a WebSocket echo server on tokio-tungstenite + tokio-rustls,
//! written the way a careful async user would: one task per client, tungstenite's
//! default `WebSocketConfig`, and every message that is already decoded echoed before
//! one flush (so a pipelining client gets one TLS record per batch, not per message).
//!
//! Usage: tokio_ws_server --cert PEM --key PEM [--bind ADDR] [--threads N] [--lifetime SECS]
//! `--threads` defaults to the CPUs this process may run on (so `taskset -c 0` gives 1).

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tinywss_bench::{server_tls, Flags};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;

const USAGE: &str = "usage: tokio_ws_server --cert PEM --key PEM [--bind ADDR (127.0.0.1:9002)] \
[--threads N (CPUs allowed)] [--lifetime SECS (900)]";

fn main() {
    let flags = Flags::parse(USAGE, &["bind", "cert", "key", "threads", "lifetime"]);
    let tls = server_tls(&flags.required::<PathBuf>("cert"), &flags.required::<PathBuf>("key"), &[b"http/1.1"]);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(flags.get("threads", cpus))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let bind = flags.get("bind", "127.0.0.1:9002".to_string());
    let lifetime = Duration::from_secs(flags.get("lifetime", 900));
    runtime.block_on(async move {
        let listener = TcpListener::bind(&bind).await.expect("bind");
        println!("listening {}", listener.local_addr().expect("local address"));
        let acceptor = TlsAcceptor::from(tls);
        let _ = tokio::time::timeout(lifetime, accept_loop(listener, acceptor)).await;
    });
    std::process::exit(0);
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor) {
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(serve(acceptor.clone(), tcp));
            }
            // Out of descriptors, usually: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn serve(acceptor: TlsAcceptor, tcp: TcpStream) -> Result<(), WsError> {
    let tls = acceptor.accept(tcp).await?;
    let mut ws = tokio_tungstenite::accept_async(tls).await?;
    echo(&mut ws).await?;
    // The close handshake is done: end TLS with close_notify, as tinywss does.
    let _ = ws.get_mut().shutdown().await;
    Ok(())
}

async fn echo(ws: &mut WebSocketStream<TlsStream<TcpStream>>) -> Result<(), WsError> {
    while let Some(message) = ws.next().await {
        let mut message = message?;
        loop {
            if message.is_binary() || message.is_text() {
                ws.feed(message).await?;
            }
            // Whatever is already decoded goes into the same flush.
            match ws.next().now_or_never() {
                Some(Some(next)) => message = next?,
                Some(None) => return Ok(()),
                None => break,
            }
        }
        ws.flush().await?;
    }
    Ok(())
}
