//! Rooms across several tinywss servers through a real Redis: publish, publish_except and
//! broadcast reach every member on every node exactly once and in the publisher's order;
//! presence counts the members of every node.
#![cfg(feature = "redis")]

mod common;

use std::collections::HashMap;

use common::redis::{await_room_size, read_text, Node, RedisServer};
use common::{assert_echo, eventually, Client};

/// Reads `client` until it has the end marker of every publisher in `ends`, and checks
/// that each publisher's messages arrived exactly once, in the order sent: `P:i` with i
/// counting from 0. Returns how many came from each publisher.
fn read_streams(client: &mut Client, ends: &[&str]) -> HashMap<String, usize> {
    let mut next: HashMap<String, usize> = HashMap::new();
    let mut ended = Vec::new();
    while ended.len() < ends.len() {
        let text = read_text(client);
        if ends.contains(&text.as_str()) {
            assert!(!ended.contains(&text), "end marker {text} twice");
            ended.push(text);
            continue;
        }
        let stamp = text.trim_start_matches("bin:");
        let (publisher, i) = stamp.split_once(':').unwrap_or_else(|| panic!("unexpected message {text:?}"));
        let i: usize = i.parse().unwrap();
        let expected = next.entry(publisher.to_owned()).or_default();
        assert_eq!(
            i, *expected,
            "from {publisher}: message {i} where {expected} was due (lost, repeated or reordered)"
        );
        *expected += 1;
    }
    next
}

#[test]
fn cross_node_publish_reaches_every_member_once_and_in_order() {
    let redis = RedisServer::start();
    // The clients read once everything is published: room for all 502 messages.
    let queue = |b: tinywss::ConfigBuilder| b.outbound_queue(1024);
    let a = Node::start(&redis.url(), "node-a", queue);
    let b = Node::start(&redis.url(), "node-b", queue);
    let c = Node::start(&redis.url(), "node-c", queue);
    let (mut on_a, _) = a.member(&["lobby"]);
    let (mut on_b1, _) = b.member(&["lobby"]);
    let (mut on_b2, _) = b.member(&["lobby"]);
    let (mut on_c, _) = c.member(&["lobby"]);
    let (mut outsider, _) = c.member(&["elsewhere"]);
    await_room_size(&[&a, &b, &c], "lobby", 4);

    // Two publishers at once, text and binary, each with its own order to keep.
    let (ha, hb) = (a.handle(), b.handle());
    let from_a = std::thread::spawn(move || {
        for i in 0..300 {
            if i % 3 == 0 {
                ha.publish("lobby", tinywss::Message::Binary(format!("A:{i}").into_bytes())).unwrap();
            } else {
                ha.publish("lobby", format!("A:{i}")).unwrap();
            }
        }
        ha.publish("lobby", "end-A").unwrap();
    });
    for i in 0..200 {
        hb.publish("lobby", format!("B:{i}")).unwrap();
    }
    hb.publish("lobby", "end-B").unwrap();
    from_a.join().unwrap();

    for client in [&mut on_a, &mut on_b1, &mut on_b2, &mut on_c] {
        let counts = read_streams(client, &["end-A", "end-B"]);
        assert_eq!((counts["A"], counts["B"]), (300, 200));
        // Nothing more was on its way: the next message is the client's own echo.
        assert_echo(client, "after the end markers");
    }
    assert_echo(&mut outsider, "a client in another room got nothing");

    let (sa, sb, sc) = (a.stats(), b.stats(), c.stats());
    assert_eq!(sa.backplane_published, 301);
    assert_eq!(sb.backplane_published, 201);
    // Each node delivers the other publisher's messages: its own never come back to it.
    assert_eq!((sa.backplane_received, sb.backplane_received, sc.backplane_received), (201, 301, 502));
    for s in [&sa, &sb, &sc] {
        assert_eq!((s.backplane_dropped, s.backplane_malformed), (0, 0), "{s:?}");
    }
}

#[test]
fn publish_except_leaves_out_the_sender_on_its_node_only() {
    let redis = RedisServer::start();
    let a = Node::start(&redis.url(), "node-a", |b| b);
    let b = Node::start(&redis.url(), "node-b", |b| b);
    let (mut sender, sender_id) = a.member(&["chat"]);
    let (mut neighbour, _) = a.member(&["chat"]);
    let (mut remote, remote_id) = b.member(&["chat"]);
    await_room_size(&[&a, &b], "chat", 3);

    a.handle().publish_except("chat", "hello from the sender", sender_id).unwrap();
    assert_eq!(read_text(&mut neighbour), "hello from the sender");
    assert_eq!(read_text(&mut remote), "hello from the sender");
    assert_echo(&mut sender, "the sender did not get its own line");

    b.handle().publish_except("chat", "hello from b", remote_id).unwrap();
    assert_eq!(read_text(&mut sender), "hello from b");
    assert_eq!(read_text(&mut neighbour), "hello from b");
    assert_echo(&mut remote, "nor did the sender on b");
}

#[test]
fn broadcast_reaches_every_client_of_every_node() {
    let redis = RedisServer::start();
    let a = Node::start(&redis.url(), "node-a", |b| b);
    let b = Node::start(&redis.url(), "node-b", |b| b);
    let c = Node::start(&redis.url(), "node-c", |b| b);
    let (mut on_a, _) = a.member(&[]);
    let (mut on_b, _) = b.member(&[]);
    let (mut on_c, _) = c.member(&["some room"]);
    // Presence says when the other nodes listen: wait for all three to see each other.
    for node in [&a, &b, &c] {
        eventually("three nodes", || node.stats().backplane_nodes == 3);
    }

    c.handle().broadcast("to everyone").unwrap();
    for client in [&mut on_a, &mut on_b, &mut on_c] {
        assert_eq!(read_text(client), "to everyone");
        assert_echo(client, "exactly once");
    }
}

#[test]
fn presence_counts_the_members_of_every_node() {
    let redis = RedisServer::start();
    let a = Node::start(&redis.url(), "node-a", |b| b);
    let b = Node::start(&redis.url(), "node-b", |b| b);
    let c = Node::start(&redis.url(), "node-c", |b| b);
    let (_a1, _) = a.member(&["lobby"]);
    let (_a2, _) = a.member(&["lobby", "games"]);
    let (b1, b1_id) = b.member(&["lobby"]);
    let (_b2, b2_id) = b.member(&["lobby", "games"]);
    let (_c1, _) = c.member(&["games"]);
    await_room_size(&[&a, &b, &c], "lobby", 4);
    await_room_size(&[&a, &b, &c], "games", 3);
    assert_eq!(a.handle().room_size("nowhere"), 0);
    for node in [&a, &b, &c] {
        assert_eq!(node.stats().backplane_nodes, 3);
        let mut names = node.handle().nodes();
        names.sort();
        assert_eq!(names, ["node-a", "node-b", "node-c"]);
    }

    // Leaving and closing count down everywhere.
    b.handle().leave(b2_id, "games").unwrap();
    await_room_size(&[&a, &b, &c], "games", 2);
    drop(b1);
    common::close_reason_of(&b.events, b1_id);
    await_room_size(&[&a, &b, &c], "lobby", 3);

    // /healthz shows the cluster as this node sees it.
    let mut raw = common::raw_tls(a.server.addr, &a.server.certs.files.ca);
    let head = common::http_exchange(&mut raw, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(common::status_of(&head), 200, "{head}");
    let mut body = String::new();
    let _ = std::io::Read::read_to_string(&mut raw, &mut body);
    assert!(body.contains("\"redis\":{\"connected\":true,\"nodes\":3}"), "{body}");

    // A node that shuts down says goodbye: it leaves presence at once, not after the
    // heartbeat timeout.
    let started = std::time::Instant::now();
    let c_handle = c.handle();
    // Its clients get a Close and the test's client never answers: shut down aside.
    let shutting_down = std::thread::spawn(move || c_handle.shutdown());
    for node in [&a, &b] {
        eventually("node-c gone", || node.stats().backplane_nodes == 2);
        assert_eq!(node.handle().room_size("games"), 1);
    }
    assert!(
        started.elapsed() < common::redis::TEST_HEARTBEAT * 3,
        "goodbye took {:?}, as long as a timeout",
        started.elapsed()
    );
    shutting_down.join().unwrap().unwrap();
}

#[test]
fn a_message_published_as_soon_as_bind_returns_goes_to_the_other_servers() {
    let redis = RedisServer::start();
    let b = Node::start(&redis.url(), "listener", |b| b);
    let (mut member, _) = b.member(&["room"]);
    for i in 0..10 {
        let a = Node::start(&redis.url(), &format!("newcomer-{i}"), |b| b);
        a.handle().publish("room", format!("first words {i}")).unwrap();
        assert_eq!(a.stats().backplane_dropped, 0, "dropped on start {i}");
        assert_eq!(read_text(&mut member), format!("first words {i}"));
    }
}
