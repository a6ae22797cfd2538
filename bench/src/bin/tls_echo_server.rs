//! The TLS cost floor: a rustls (tokio-rustls) echo server with no WebSocket at all.
//!
//! Protocol: frames of a 4-byte big-endian length and that many payload bytes; every
//! complete frame is echoed back, all frames of one read in one write and one flush.
//! What tinywss or tokio-tungstenite cost above this is WebSocket framing, masking,
//! threads and queues.
//!
//! Usage: tls_echo_server --cert PEM --key PEM [--bind ADDR] [--threads N] [--lifetime SECS]

use std::path::PathBuf;
use std::time::Duration;

use tinywss_bench::{server_tls, Flags, TLS_FRAME_HEADER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

const USAGE: &str = "usage: tls_echo_server --cert PEM --key PEM [--bind ADDR (127.0.0.1:9003)] \
[--threads N (CPUs allowed)] [--lifetime SECS (900)]";

/// Largest frame accepted; a client sending more is disconnected.
const MAX_FRAME: usize = 1 << 20;

fn main() {
    let flags = Flags::parse(USAGE, &["bind", "cert", "key", "threads", "lifetime"]);
    let tls = server_tls(&flags.required::<PathBuf>("cert"), &flags.required::<PathBuf>("key"), &[]);
    let runtime = tinywss_bench::tokio_runtime(&flags);
    let bind = flags.get("bind", "127.0.0.1:9003".to_string());
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
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn serve(acceptor: TlsAcceptor, tcp: TcpStream) -> std::io::Result<()> {
    let mut tls = acceptor.accept(tcp).await?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = tls.read(&mut chunk).await?;
        if n == 0 {
            return tls.shutdown().await;
        }
        buf.extend_from_slice(&chunk[..n]);
        // Echo every complete frame; keep a partial one for the next read.
        let mut complete = 0;
        while buf.len() - complete >= TLS_FRAME_HEADER {
            let header: [u8; 4] = buf[complete..complete + 4].try_into().expect("4 bytes");
            let len = u32::from_be_bytes(header) as usize;
            if len > MAX_FRAME {
                return Err(std::io::ErrorKind::InvalidData.into());
            }
            if buf.len() - complete < TLS_FRAME_HEADER + len {
                break;
            }
            complete += TLS_FRAME_HEADER + len;
        }
        if complete > 0 {
            tls.write_all(&buf[..complete]).await?;
            tls.flush().await?;
            buf.drain(..complete);
        }
    }
}
