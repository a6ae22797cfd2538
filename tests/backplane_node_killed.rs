//! A node killed without shutdown (SIGKILL: no goodbye, no cleanup) leaves the
//! cluster's presence within three of its heartbeats; one that shuts down on SIGTERM and
//! exits, as the examples do, leaves at once. The node is a real process: this test
//! binary run again, as `child_node`.
#![cfg(feature = "redis")]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::redis::{await_room_size, Node, RedisServer, TEST_HEARTBEAT};
use common::{eventually, PATIENCE};

const CHILD_ENV: &str = "TINYWSS_TEST_CHILD_REDIS";

/// Kills the child on every way out of the test.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A survivor with one member in the lobby, and the child node with `members` more,
/// seen by it.
fn survivor_and_child(redis: &RedisServer, child_heartbeat: Duration, members: usize) -> (Node, common::Client, Child) {
    let survivor = Node::start(&redis.url(), "survivor", |b| b);
    let (member, _) = survivor.member(&["lobby"]);
    let mut child = Child(
        Command::new(std::env::current_exe().unwrap())
            .args(["child_node", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_ENV, format!("{} {} {members}", redis.url(), child_heartbeat.as_millis()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // It says so once it handles SIGTERM; its output is read to the end, so that it
    // never writes into a closed pipe.
    let stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let (ready, is_ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(stdout).map_while(Result::ok) {
            if line.contains("child ready") {
                let _ = ready.send(());
            }
        }
    });
    is_ready.recv_timeout(PATIENCE).expect("the child node did not get ready");
    eventually("the child node", || survivor.stats().backplane_nodes == 2);
    await_room_size(&[&survivor], "lobby", 1 + members);
    (survivor, member, child)
}

#[test]
fn a_killed_node_leaves_presence_within_three_heartbeats() {
    let redis = RedisServer::start();
    let (survivor, _member, mut child) = survivor_and_child(&redis, TEST_HEARTBEAT, 3);

    let killed = Instant::now();
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    eventually("the killed node to leave presence", || {
        survivor.handle().room_size("lobby") == 1 && survivor.stats().backplane_nodes == 1
    });
    let gone_after = killed.elapsed();
    eprintln!("killed node gone from presence after {gone_after:?} (heartbeat {TEST_HEARTBEAT:?})");
    // The bound is three heartbeats after the last one received; a loaded machine may
    // run the checks late, not early.
    assert!(gone_after <= TEST_HEARTBEAT * 3 + std::time::Duration::from_secs(2), "gone after {gone_after:?}");
    assert_eq!(survivor.handle().nodes(), ["survivor"]);
}

#[test]
fn a_node_that_shuts_down_and_exits_leaves_at_once() {
    let redis = RedisServer::start();
    // A long heartbeat: leaving by timeout would take 30 s. No clients: its events end
    // as soon as it stops accepting, and the process with them.
    let (survivor, _member, mut child) = survivor_and_child(&redis, Duration::from_secs(10), 0);
    let stopped = Instant::now();
    let status = Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status().unwrap();
    assert!(status.success());
    eventually("the node to leave presence", || survivor.stats().backplane_nodes == 1);
    let gone_after = stopped.elapsed();
    eprintln!("a node that shut down and exited left presence after {gone_after:?}");
    assert!(gone_after < Duration::from_secs(5), "gone after {gone_after:?}: by timeout, not by goodbye");
    assert!(child.0.wait().unwrap().success(), "the child did not exit cleanly");
}

/// The other node: members in the lobby; on SIGTERM it shuts down and exits as
/// the examples do, as soon as its events end; otherwise it waits to be killed (and
/// ends by itself if it is not).
#[test]
#[ignore = "the other node of the tests in this file, run in a process of its own"]
fn child_node() {
    let Ok(setting) = std::env::var(CHILD_ENV) else { return };
    let setting: Vec<&str> = setting.split(' ').collect();
    let heartbeat = Duration::from_millis(setting[1].parse().unwrap());
    let node = Node::start(setting[0], "leaving", |b| b.redis_heartbeat(heartbeat));
    let _members: Vec<_> = (0..setting[2].parse().unwrap()).map(|_| node.member(&["lobby"])).collect();
    let handle = node.handle();
    ctrlc::set_handler(move || {
        let _ = handle.shutdown();
    })
    .unwrap();
    println!("child ready");
    // Ends by itself if nobody kills it.
    std::thread::spawn(|| {
        std::thread::sleep(PATIENCE * 3);
        std::process::exit(1);
    });
    for _ in node.server.server.events() {}
    // As a program's main would return: the process ends now, whatever its threads do.
    std::process::exit(0);
}
