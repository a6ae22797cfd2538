//! The comparison peer: a WebSocket echo server on tokio-tungstenite + tokio-rustls,
//! written the way a careful async user would: one task per client, tungstenite's
//! default `WebSocketConfig`, and every message that is already decoded echoed before
//! one flush (so a pipelining client gets one TLS record per batch, not per message).
//!
//! Push (`--push-rate`, as in `tinywss_server`): each connection task also drains a
//! bounded tokio channel; on `start N` (once N are open), a plain thread (the "application") sends stamped
//! messages into those channels with `try_send`, so the push latency compares with
//! tinywss's `Handle::send`/`broadcast` path.
//!
//! Usage: tokio_ws_server --cert PEM --key PEM [--bind ADDR] [--threads N] [--lifetime SECS]
//! `--threads` defaults to the CPUs this process may run on (so `taskset -c 0` gives 1).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tinywss_bench::{server_tls, Flags, PushMode, PushPlan};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

const USAGE: &str = "usage: tokio_ws_server --cert PEM --key PEM [--bind ADDR (127.0.0.1:9002)] \
[--threads N (CPUs allowed)] [--lifetime SECS (900)] [--push-rate MSGS_PER_S --push-count N (10000) \
--push-size BYTES (64) --push-mode send|broadcast (send)]";

/// Outgoing messages that may wait for one client (as tinywss's default outbound queue).
const OUTBOUND_QUEUE: usize = 64;

type Ws = WebSocketStream<TlsStream<TcpStream>>;

/// What the connection tasks share: the push plan and the open connections' queues.
struct Shared {
    push: Option<PushPlan>,
    conns: Mutex<Vec<(u64, mpsc::Sender<Message>)>>,
}

fn main() {
    let flags = Flags::parse(
        USAGE,
        &["bind", "cert", "key", "threads", "lifetime", "push-rate", "push-count", "push-size", "push-mode"],
    );
    let tls = server_tls(&flags.required::<PathBuf>("cert"), &flags.required::<PathBuf>("key"), &[b"http/1.1"]);
    let runtime = tinywss_bench::tokio_runtime(&flags);
    let bind = flags.get("bind", "127.0.0.1:9002".to_string());
    let lifetime = Duration::from_secs(flags.get("lifetime", 900));
    let shared = Arc::new(Shared { push: PushPlan::from_flags(&flags), conns: Mutex::new(Vec::new()) });
    runtime.block_on(async move {
        let listener = TcpListener::bind(&bind).await.expect("bind");
        println!("listening {}", listener.local_addr().expect("local address"));
        let acceptor = TlsAcceptor::from(tls);
        let _ = tokio::time::timeout(lifetime, accept_loop(listener, acceptor, shared)).await;
    });
    std::process::exit(0);
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let mut next_id = 0;
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                next_id += 1;
                tokio::spawn(serve(acceptor.clone(), tcp, Arc::clone(&shared), next_id));
            }
            // Out of descriptors, usually: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn serve(acceptor: TlsAcceptor, tcp: TcpStream, shared: Arc<Shared>, id: u64) -> Result<(), WsError> {
    let tls = acceptor.accept(tcp).await?;
    let mut ws = tokio_tungstenite::accept_async(tls).await?;
    let result = if shared.push.is_some() {
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        shared.conns.lock().expect("lock").push((id, tx));
        let result = echo_and_push(&mut ws, &shared, rx).await;
        shared.conns.lock().expect("lock").retain(|(other, _)| *other != id);
        result
    } else {
        echo(&mut ws).await
    };
    // The close handshake is done: end TLS with close_notify, as tinywss does.
    let _ = ws.get_mut().shutdown().await;
    result
}

async fn echo(ws: &mut Ws) -> Result<(), WsError> {
    while let Some(message) = ws.next().await {
        if !echo_batch(ws, message?).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Echoes `message` and every message already decoded after it, then flushes once;
/// false when the stream ended.
async fn echo_batch(ws: &mut Ws, mut message: Message) -> Result<bool, WsError> {
    loop {
        if message.is_binary() || message.is_text() {
            ws.feed(message).await?;
        }
        match ws.next().now_or_never() {
            Some(Some(next)) => message = next?,
            Some(None) => return Ok(false),
            None => break,
        }
    }
    ws.flush().await?;
    Ok(true)
}

async fn echo_and_push(
    ws: &mut Ws,
    shared: &Arc<Shared>,
    mut outbound: mpsc::Receiver<Message>,
) -> Result<(), WsError> {
    loop {
        tokio::select! {
            message = ws.next() => {
                let Some(message) = message else { return Ok(()) };
                let message = message?;
                if let Some(n) = message.to_text().ok().and_then(|t| t.strip_prefix("start")) {
                    start_push(shared, n.trim().parse().unwrap_or(1));
                } else if !echo_batch(ws, message).await? {
                    return Ok(());
                }
            }
            Some(message) = outbound.recv() => {
                ws.feed(message).await?;
                while let Ok(more) = outbound.try_recv() {
                    ws.feed(more).await?;
                }
                ws.flush().await?;
            }
        }
    }
}

/// Runs the push plan on its own thread, like an application thread would, once `n`
/// connections are registered (at most 10 s later).
fn start_push(shared: &Arc<Shared>, n: usize) {
    let Some(plan) = shared.push else { return };
    let shared = Arc::clone(shared);
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let conns: Vec<mpsc::Sender<Message>> = loop {
            let conns = shared.conns.lock().expect("lock");
            if conns.len() >= n || std::time::Instant::now() >= deadline {
                break conns.iter().map(|(_, tx)| tx.clone()).collect();
            }
            drop(conns);
            std::thread::sleep(Duration::from_millis(1));
        };
        let mut dropped = 0;
        plan.run(|i, payload| {
            let message = Message::binary(payload);
            let targets = match plan.mode {
                PushMode::Send => &conns[i % conns.len()..=i % conns.len()],
                PushMode::Broadcast => &conns[..],
            };
            for tx in targets {
                if tx.try_send(message.clone()).is_err() {
                    dropped += 1;
                }
            }
            true
        });
        for tx in &conns {
            let _ = tx.blocking_send(Message::text("done"));
        }
        eprintln!("push finished: {} messages, {dropped} dropped", plan.count);
    });
}
