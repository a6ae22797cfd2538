//! The backplane when Redis fails: killed and restarted mid-stream, unreachable at start,
//! hung (SIGSTOP). Nothing waits for Redis: not the application's `publish`, not a
//! connection thread; what cannot go is dropped, counted and logged once per outage.
#![cfg(feature = "redis")]

mod common;

use std::time::{Duration, Instant};

use common::redis::{await_room_size, free_port, read_text, Node, RedisServer};
use common::{assert_echo, eventually, logs};

/// Publishes `P:from..to` to `room`, and returns the longest a `publish` call took.
fn publish_range(node: &Node, room: &str, prefix: &str, range: std::ops::Range<usize>) -> Duration {
    let handle = node.handle();
    let mut slowest = Duration::ZERO;
    for i in range {
        let started = Instant::now();
        handle.publish(room, format!("{prefix}:{i}")).unwrap();
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

/// Reads `n` messages and checks they are `P:from`, `P:from+1`, ...
fn expect_range(client: &mut common::Client, prefix: &str, range: std::ops::Range<usize>) {
    for i in range {
        assert_eq!(read_text(client), format!("{prefix}:{i}"));
    }
}

#[test]
fn redis_killed_and_restarted_mid_stream() {
    logs::capture();
    let mut redis = RedisServer::start();
    let a = Node::start(&redis.url(), "killed-a", |b| b);
    let b = Node::start(&redis.url(), "killed-b", |b| b);
    let (mut remote, _) = b.member(&["feed"]);
    let (mut local, _) = a.member(&["feed"]);
    await_room_size(&[&a, &b], "feed", 2);

    // 1. Redis up: everything arrives.
    publish_range(&a, "feed", "m", 0..100);
    expect_range(&mut remote, "m", 0..100);
    expect_range(&mut local, "m", 0..100);

    // 2. Redis killed: publishing goes on, locally at once, and nothing waits.
    redis.kill();
    eventually("node a to notice", || a.stats().backplane_connected == 0);
    let dropped_before = a.stats().backplane_dropped;
    let slowest = publish_range(&a, "feed", "m", 100..200);
    assert!(slowest < Duration::from_millis(200), "a publish took {slowest:?} while Redis was down");
    expect_range(&mut local, "m", 100..200);
    // Dropped at once, or by the publisher thread when its connection fails.
    eventually("each message published meanwhile counted", || a.stats().backplane_dropped - dropped_before == 100);
    assert_echo(&mut local, "the local client is served as usual");

    // 3. Redis back on the same port: both nodes reconnect and resubscribe by themselves.
    redis.restart();
    for node in [&a, &b] {
        eventually("reconnected", || node.stats().backplane_connected == 1);
    }
    await_room_size(&[&a, &b], "feed", 2);
    publish_range(&a, "feed", "m", 200..300);
    expect_range(&mut remote, "m", 200..300);
    expect_range(&mut local, "m", 200..300);
    assert_echo(&mut remote, "and nothing from the outage arrived late");
    assert!(a.stats().backplane_reconnects >= 1 && b.stats().backplane_reconnects >= 1);

    // One warning for the outage however many messages it cost, and one line when back.
    let down = logs::matching(log::Level::Warn, "killed-a: Redis");
    assert_eq!(down.len(), 1, "{down:?}");
    assert!(down[0].contains(&format!("127.0.0.1:{}", redis.port)), "{down:?}");
    let back = logs::containing("killed-a: Redis is back");
    assert_eq!(back.len(), 1, "{back:?}");
    assert!(back[0].contains("100 messages dropped"), "{back:?}");
}

#[test]
fn unreachable_at_start_is_an_error_naming_the_url() {
    let port = free_port();
    let certs = common::TestCerts::new();
    let url = format!("redis://:hunter2@127.0.0.1:{port}/");
    let config = tinywss::Config::builder()
        .bind("127.0.0.1:0")
        .tls_pem_files(&certs.files.cert, &certs.files.key)
        .redis(&url)
        .build()
        .unwrap();
    let error = tinywss::Server::bind(config).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, tinywss::Error::Redis { .. }), "{error:?}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("hunter2"), "the password leaked: {text}");
}

#[test]
fn retry_at_start_serves_at_once_and_joins_when_redis_comes() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let a = Node::start(&url, "early-a", |b| b.redis_retry_at_start(true));
    let (mut local, _) = a.member(&["room"]);
    a.handle().publish("room", "while alone").unwrap();
    assert_eq!(read_text(&mut local), "while alone");
    assert_eq!(a.stats().backplane_connected, 0);
    assert_eq!(a.stats().backplane_dropped, 1);

    let redis = RedisServer::start_on(port);
    let b = Node::start(&redis.url(), "early-b", |b| b);
    let (mut remote, _) = b.member(&["room"]);
    await_room_size(&[&a, &b], "room", 2);
    a.handle().publish("room", "now together").unwrap();
    assert_eq!(read_text(&mut remote), "now together");
}

#[test]
fn a_hung_redis_blocks_no_publish_and_no_client() {
    let redis = RedisServer::start();
    // The local member's queue holds the whole burst: this test is about Redis.
    let a = Node::start(&redis.url(), "hung-a", |b| {
        b.redis_publish_queue(64).outbound_queue(8192).outbound_queue_bytes(8 << 20)
    });
    let b = Node::start(&redis.url(), "hung-b", |b| b.outbound_queue(1024));
    let (mut local, _) = a.member(&["room"]);
    let (mut remote, _) = b.member(&["room"]);
    await_room_size(&[&a, &b], "room", 2);

    redis.signal("STOP");
    // The local member reads everything as it comes.
    let reader = std::thread::spawn(move || {
        for _ in 0..5_000 {
            assert_eq!(read_text(&mut local).len(), 1024);
        }
        local
    });
    // Far more than the hand-off holds, 1 KiB each: the publisher thread is stuck on
    // Redis, the application is not.
    let handle = a.handle();
    let payload = "x".repeat(1024);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..5_000 {
        let call = Instant::now();
        handle.publish("room", payload.as_str()).unwrap();
        slowest = slowest.max(call.elapsed());
    }
    let total = started.elapsed();
    assert!(slowest < Duration::from_millis(200), "one publish took {slowest:?}");
    assert!(total < Duration::from_secs(5), "5,000 publishes took {total:?}");
    assert!(a.stats().backplane_dropped > 0, "{:?}", a.stats());
    // The local member got every message, and still talks to the server.
    let mut local = reader.join().unwrap();
    assert_echo(&mut local, "served while Redis hangs");

    // A command unanswered for a heartbeat (at least 1 s): Redis counts as down, and
    // the publisher thread stops waiting for it.
    eventually("the hang noticed", || a.stats().backplane_connected == 0);
    redis.signal("CONT");
    eventually("both connected", || a.stats().backplane_connected == 1 && b.stats().backplane_connected == 1);
    // Every message was either sent or counted as dropped.
    eventually("all 5,000 accounted for", || {
        let s = a.stats();
        s.backplane_published + s.backplane_dropped == 5_000
    });
    await_room_size(&[&a, &b], "room", 2);
    a.handle().publish("room", "after the hang").unwrap();
    // What was sent before the hang may arrive first.
    while read_text(&mut remote) != "after the hang" {}
    assert_echo(&mut remote, "and the remote client is fine");
}
