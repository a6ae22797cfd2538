//! The backplane's two threads per node: asleep when there is nothing to do (one wake-up
//! per heartbeat), backing off while Redis is down, and gone with their descriptors once
//! the server shuts down. Alone in its file: it counts the whole process's threads.
#![cfg(feature = "redis")]

mod common;

use std::time::Duration;

use common::redis::{await_room_size, Node, RedisServer, TEST_HEARTBEAT};
use common::{eventually, open_fds, tinywss_threads};

/// Context switches and CPU time (ms) of this process's backplane threads.
fn backplane_activity() -> (u64, u64) {
    let (mut switches, mut ticks) = (0, 0);
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !matches!(comm.trim(), "tinywss-pub" | "tinywss-sub") {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        switches += status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        ticks += fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    (switches, ticks * 10)
}

/// Activity of the backplane threads over `window`.
fn activity_over(window: Duration) -> (u64, u64) {
    let before = backplane_activity();
    std::thread::sleep(window);
    let after = backplane_activity();
    (after.0 - before.0, after.1 - before.1)
}

#[test]
fn idle_threads_sleep_and_every_thread_and_descriptor_comes_back() {
    let mut redis = RedisServer::start();
    let (threads_before, fds_before) = (tinywss_threads().len(), open_fds());
    {
        let a = Node::start(&redis.url(), "idle-a", |b| b);
        let b = Node::start(&redis.url(), "idle-b", |b| b);
        let (_on_a, _) = a.member(&["room"]);
        let (_on_b, _) = b.member(&["room"]);
        await_room_size(&[&a, &b], "room", 2);
        let threads = tinywss_threads();
        assert_eq!(threads.iter().filter(|t| *t == "tinywss-pub").count(), 2, "{threads:?}");
        assert_eq!(threads.iter().filter(|t| *t == "tinywss-sub").count(), 2, "{threads:?}");

        // Idle: each publisher wakes once per heartbeat, each subscriber once per
        // heartbeat it hears (its own and the other node's).
        let window = TEST_HEARTBEAT * 6;
        let (switches, cpu_ms) = activity_over(window);
        eprintln!("idle backplane over {window:?}: {switches} context switches, {cpu_ms} ms CPU (2 nodes)");
        let heartbeats = (window.as_millis() / TEST_HEARTBEAT.as_millis()) as u64;
        assert!(switches <= 4 * 3 * (heartbeats + 2), "{switches} context switches in {window:?}");
        assert!(cpu_ms <= 100, "{cpu_ms} ms of CPU in {window:?}");

        // Redis down: reconnect attempts back off; no thread spins.
        redis.kill();
        eventually("both nodes to notice", || a.stats().backplane_connected == 0 && b.stats().backplane_connected == 0);
        let (switches, cpu_ms) = activity_over(window);
        eprintln!("backplane with Redis down over {window:?}: {switches} context switches, {cpu_ms} ms CPU");
        assert!(switches <= 200, "{switches} context switches in {window:?} with Redis down");
        assert!(cpu_ms <= 100, "{cpu_ms} ms of CPU in {window:?} with Redis down");
        redis.restart();
        eventually("reconnected", || a.stats().backplane_connected == 1 && b.stats().backplane_connected == 1);
    }
    eventually("backplane threads gone", || tinywss_threads().len() == threads_before);
    eventually("descriptors back", || open_fds() == fds_before);
}
