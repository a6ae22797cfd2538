//! What arrives from Redis is untrusted input: anyone who can publish on the cluster's
//! channels can send anything. Malformed, oversized and unknown envelopes are skipped
//! and counted, never a panic; a well-behaved member keeps receiving meanwhile, and an
//! oversized flood does not stay in memory.
#![cfg(feature = "redis")]

mod common;

use common::redis::{await_room_size, read_text, Node, RedisServer};
use common::{assert_echo, eventually, proc_status_kib};

const MESSAGES: &str = "tinywss:messages";
const NODES: &str = "tinywss:nodes";

/// A room message as the envelope documents it: version 1, kind 1, the node's name,
/// flags (bit 0: binary), the sender's connection (0: none), the room, the payload.
fn room_message(node: &[u8], room: &[u8], flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![1, 1, node.len() as u8];
    out.extend_from_slice(node);
    out.push(flags);
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(&(room.len() as u16).to_be_bytes());
    out.extend_from_slice(room);
    out.extend_from_slice(payload);
    out
}

#[test]
fn malformed_and_oversized_envelopes_are_skipped_and_counted() {
    let redis = RedisServer::start();
    let a = Node::start(&redis.url(), "target", |b| b.max_message_size(1024));
    let b = Node::start(&redis.url(), "honest", |b| b.max_message_size(1024));
    let (mut member, _) = a.member(&["room"]);
    let (_remote, _) = b.member(&["room"]);
    await_room_size(&[&a, &b], "room", 2);

    // Someone outside the cluster may publish a well-formed message: it is delivered.
    assert_eq!(redis.publish(MESSAGES, &room_message(b"emitter", b"room", 0, b"from outside")), 2);
    assert_eq!(read_text(&mut member), "from outside");

    let mut truncated_room = room_message(b"emitter", b"room", 0, b"");
    truncated_room.truncate(truncated_room.len() - 2);
    let mut truncated_presence = vec![1, 4, 7];
    truncated_presence.extend_from_slice(b"emitter");
    truncated_presence.extend_from_slice(&1u64.to_be_bytes());
    truncated_presence.push(1);
    truncated_presence.extend_from_slice(&1_000_000u32.to_be_bytes());
    truncated_presence.extend_from_slice(&[0, 4, b'r', b'o', b'o', b'm', 0, 0, 0, 9]);
    // Well formed, but larger than any presence chunk a node sends (32 KiB of rooms).
    let mut huge_presence = vec![1, 4, 7];
    huge_presence.extend_from_slice(b"emitter");
    huge_presence.extend_from_slice(&1u64.to_be_bytes());
    huge_presence.push(1);
    huge_presence.extend_from_slice(&100u32.to_be_bytes());
    for i in 0..100u32 {
        let room = format!("{i:0>700}");
        huge_presence.extend_from_slice(&(room.len() as u16).to_be_bytes());
        huge_presence.extend_from_slice(room.as_bytes());
        huge_presence.extend_from_slice(&1u32.to_be_bytes());
    }
    let mut zero_heartbeat = vec![1, 3, 7];
    zero_heartbeat.extend_from_slice(b"emitter");
    zero_heartbeat.extend_from_slice(&0u64.to_be_bytes());
    zero_heartbeat.extend_from_slice(&0u32.to_be_bytes());
    zero_heartbeat.extend_from_slice(&7u64.to_be_bytes());
    let bad: Vec<(&str, &str, Vec<u8>)> = vec![
        ("empty", MESSAGES, vec![]),
        ("unknown version", MESSAGES, {
            let mut m = room_message(b"emitter", b"room", 0, b"v2");
            m[0] = 2;
            m
        }),
        ("unknown kind", MESSAGES, {
            let mut m = room_message(b"emitter", b"room", 0, b"?");
            m[1] = 99;
            m
        }),
        ("a message kind on the nodes channel", NODES, room_message(b"emitter", b"room", 0, b"x")),
        ("no node name", MESSAGES, room_message(b"", b"room", 0, b"x")),
        ("a node name with a line break", MESSAGES, room_message(b"evil\nnode", b"room", 0, b"x")),
        ("a room cut short", MESSAGES, truncated_room),
        ("a room that is not UTF-8", MESSAGES, room_message(b"emitter", b"\xff\xfe", 0, b"x")),
        ("text that is not UTF-8", MESSAGES, room_message(b"emitter", b"room", 0, b"\xc3\x28")),
        ("larger than max_message_size", MESSAGES, room_message(b"emitter", b"room", 1, &[7; 1025])),
        ("presence with entries missing", NODES, truncated_presence),
        ("presence over 64 KiB", NODES, huge_presence),
        ("a heartbeat of 0 ms", NODES, zero_heartbeat),
    ];
    let before = a.stats().backplane_malformed;
    for (i, (what, channel, payload)) in bad.iter().enumerate() {
        redis.publish(channel, payload);
        // The honest node keeps publishing in between: its messages all arrive, in order.
        b.handle().publish("room", format!("honest {i}")).unwrap();
        assert_eq!(read_text(&mut member), format!("honest {i}"), "after {what}");
        assert_eq!(a.stats().backplane_malformed - before, i as u64 + 1, "{what} was not counted");
    }
    // A message in this node's own name is its own echo: skipped, and not an error.
    redis.publish(MESSAGES, &room_message(b"target", b"room", 0, b"own name"));
    b.handle().publish("room", "last").unwrap();
    assert_eq!(read_text(&mut member), "last");
    assert_eq!(a.stats().backplane_malformed - before, bad.len() as u64);
    assert_echo(&mut member, "the member is unharmed");
    // Delivered: the emitter's message and the honest node's; nothing else.
    assert_eq!(a.stats().backplane_received, 1 + bad.len() as u64 + 1);
}

#[test]
fn an_oversized_flood_does_not_stay_in_memory() {
    let redis = RedisServer::start();
    let a = Node::start(&redis.url(), "target", |b| b);
    let (mut member, _) = a.member(&["room"]);
    await_room_size(&[&a], "room", 1);
    let big = room_message(b"emitter", b"room", 1, &vec![0u8; 4 << 20]);
    // One at a time: Redis itself disconnects a subscriber that has more than 32 MiB
    // waiting (client-output-buffer-limit pubsub).
    let flood = |n: u64| {
        for _ in 0..n {
            let before = a.stats().backplane_malformed;
            redis.publish(MESSAGES, &big);
            eventually("the oversized message counted", || a.stats().backplane_malformed == before + 1);
        }
        proc_status_kib("VmRSS")
    };
    // The first ones size the buffers that read a message; more add nothing.
    let start = proc_status_kib("VmRSS");
    let warm = flood(8);
    let after = flood(32);
    eprintln!("RSS: {start} KiB, {warm} KiB after 8 x 4 MiB oversized messages, {after} KiB after 32 more");
    assert!(after.saturating_sub(warm) < 8 << 10, "RSS grew from {warm} to {after} KiB");
    assert_echo(&mut member, "the member is unharmed");
}
