//! A client that never reads while the server broadcasts: it is closed (or its messages
//! dropped), server memory stays bounded, and a reading client gets everything.

mod common;

use std::sync::mpsc::TryRecvError;
use std::time::{Duration, Instant};

use common::{next_open, proc_status_kib, raw_websocket, read_data, start_with_client, Started, TestServer};
use tinywss::{CloseReason, ConfigBuilder, Error, Event, SlowConsumerPolicy, Timeout};

const BURST: usize = 32;
const PAYLOAD: usize = 16 * 1024;

/// Broadcasts in bursts (each read in full by the good client) until the deaf client's
/// Close event arrives; returns its reason and the peak-memory growth in KiB.
fn broadcast_until_deaf_is_gone(
    configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> (TestServer, CloseReason, u64) {
    let Started { server, events, client: mut good, .. } = start_with_client(configure);
    let _deaf = raw_websocket(server.addr, &server.certs.files.ca);
    let deaf = next_open(&events);
    let handle = server.handle();
    let before = proc_status_kib("VmHWM");
    let deadline = Instant::now() + 3 * common::PATIENCE;
    for burst in 0.. {
        assert!(Instant::now() < deadline, "the deaf client was never closed");
        for i in 0..BURST {
            let mut payload = vec![0u8; PAYLOAD];
            payload[..8].copy_from_slice(&((burst * BURST + i) as u64).to_be_bytes());
            handle.broadcast(payload).unwrap();
        }
        for i in 0..BURST {
            let got = read_data(&mut good).into_data();
            assert_eq!(got[..8], ((burst * BURST + i) as u64).to_be_bytes(), "good client lost a message");
        }
        match events.try_recv() {
            Ok(Event::Close { conn, reason, .. }) if conn == deaf => {
                let grown = proc_status_kib("VmHWM").saturating_sub(before);
                eprintln!("deaf client closed after {} broadcasts; peak memory grew {grown} KiB", (burst + 1) * BURST);
                return (server, reason, grown);
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(TryRecvError::Empty) => {}
            Err(e) => panic!("{e}"),
        }
    }
    unreachable!()
}

#[test]
fn default_policy_closes_the_slow_client_with_1013() {
    let (server, reason, grown) = broadcast_until_deaf_is_gone(|b| b.close_timeout(Duration::from_millis(500)));
    assert!(matches!(reason, CloseReason::Server { code: 1013, .. }), "{reason}");
    let stats = server.handle().stats();
    assert_eq!(stats.slow_consumer_closes, 1);
    assert!(stats.dropped >= 1);
    assert!(grown < 16 * 1024, "peak memory grew {grown} KiB");
}

#[test]
fn drop_newest_keeps_the_client_until_writes_stall() {
    let (server, reason, grown) = broadcast_until_deaf_is_gone(|b| {
        b.slow_consumer_policy(SlowConsumerPolicy::DropNewest).write_timeout(Duration::from_millis(500))
    });
    // Dropped messages first; then the write timeout, since the socket took nothing.
    assert!(matches!(reason, CloseReason::Error(Error::Timeout(Timeout::Write))), "{reason}");
    let stats = server.handle().stats();
    assert_eq!(stats.slow_consumer_closes, 0);
    assert!(stats.dropped >= 1, "{stats:?}");
    assert_eq!(stats.limit_closes, 1);
    assert!(grown < 16 * 1024, "peak memory grew {grown} KiB");
}
