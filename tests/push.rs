//! Server push and broadcast: messages the application starts, with no client traffic.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::{eventually, next_open, read_data, start, start_with_client, Started};
use tungstenite::Message as WsMessage;

#[test]
fn push_from_another_thread_reaches_a_silent_client() {
    let Started { server, events: _events, mut client, conn } = start_with_client(|b| b);
    let handle = server.handle();
    // The client only reads: the server thread must wake for the queued message alone.
    thread::spawn(move || handle.send(conn, "pushed").unwrap()).join().unwrap();
    assert_eq!(read_data(&mut client), WsMessage::text("pushed"));
    thread::spawn({
        let handle = server.handle();
        move || handle.send(conn, vec![1u8, 2, 3]).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(read_data(&mut client), WsMessage::binary(vec![1u8, 2, 3]));
}

#[test]
fn broadcast_reaches_every_client_exactly_once() {
    let server = start(|b| b);
    let events = server.echo();
    let mut clients: Vec<_> = (0..8).map(|_| server.connect("/")).collect();
    let conns: Vec<_> = clients.iter().map(|_| next_open(&events)).collect();
    let handle = server.handle();
    handle.broadcast("to everyone").unwrap();
    // A personal message after the broadcast proves nothing else came in between.
    for conn in &conns {
        handle.send(*conn, format!("only {conn}")).unwrap();
    }
    let mut seen: Vec<String> = Vec::new();
    for client in &mut clients {
        assert_eq!(read_data(client), WsMessage::text("to everyone"));
        let personal = read_data(client).into_text().unwrap().to_string();
        assert!(personal.starts_with("only conn#"), "{personal}");
        seen.push(personal);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), conns.len(), "each client got its own personal message");
    assert_eq!(handle.stats().messages_out, 2 * conns.len() as u64);
}

#[test]
fn burst_larger_than_socket_buffers_arrives_without_further_traffic() {
    // 4 MiB queued at once: the socket fills, the connection thread waits for POLLOUT,
    // and must keep moving queued messages on its own until the queue is empty.
    let Started { server, events: _events, mut client, conn } = start_with_client(|b| b.outbound_queue_bytes(8 << 20));
    let handle = server.handle();
    for i in 0..64u8 {
        handle.send(conn, vec![i; 64 << 10]).unwrap();
    }
    for i in 0..64u8 {
        let data = read_data(&mut client).into_data();
        assert_eq!((data.len(), data[0]), (64 << 10, i));
    }
    assert_eq!(handle.stats().dropped, 0);
}

#[test]
fn sends_from_many_threads_keep_each_threads_order_while_the_client_talks() {
    // Each send is written by the sending thread when the connection's thread sleeps,
    // queued when it is busy (here with the client's own messages and their echoes):
    // whichever way each one goes, every sender's messages arrive once and in order.
    // (A queue deep enough for all of them: the client reads only after it has sent.)
    let server = start(|b| b.outbound_queue(2000));
    let events = server.echo();
    let mut client = server.connect("/");
    let conn = next_open(&events);
    const SENDERS: usize = 4;
    const EACH: usize = 300;
    const ECHOED: usize = 100;
    // Halfway, the senders wait together until everything so far is handed to TLS (the
    // queue is empty, the echoes are done): the connection's thread then goes to sleep,
    // so the second half most likely starts with sends that write through.
    const HALF: usize = EACH / 2;
    let halfway = Arc::new(Barrier::new(SENDERS));
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let handle = server.handle();
            let halfway = Arc::clone(&halfway);
            thread::spawn(move || {
                for i in 0..EACH {
                    if i == HALF {
                        halfway.wait();
                        let first_half = (SENDERS * (HALF + HALF.div_ceil(50)) + ECHOED) as u64;
                        eventually("the first half handed to TLS", || handle.stats().messages_out >= first_half);
                    }
                    handle.send(conn, format!("{sender} {i}")).unwrap();
                    if i % 50 == 0 {
                        handle.broadcast(format!("{sender} b{i}")).unwrap();
                    }
                }
            })
        })
        .collect();
    for i in 0..ECHOED {
        client.send(WsMessage::text(format!("echo {i}"))).unwrap();
    }
    let (mut next, mut broadcasts, mut echoes) = ([0; SENDERS], [0; SENDERS], 0);
    let expected = SENDERS * EACH + SENDERS * EACH.div_ceil(50) + ECHOED;
    for _ in 0..expected {
        let text = read_data(&mut client).into_text().unwrap().to_string();
        let (who, what) = text.split_once(' ').unwrap();
        if who == "echo" {
            assert_eq!(what, echoes.to_string(), "echoes in order");
            echoes += 1;
        } else if let Some(i) = what.strip_prefix('b') {
            let sender: usize = who.parse().unwrap();
            assert_eq!(i, (broadcasts[sender] * 50).to_string(), "sender {sender}'s broadcasts in order");
            assert!(next[sender] > broadcasts[sender] * 50, "a broadcast after the send before it");
            broadcasts[sender] += 1;
        } else {
            let sender: usize = who.parse().unwrap_or_else(|_| panic!("{text:?}"));
            assert_eq!(what, next[sender].to_string(), "sender {sender}'s messages in order");
            next[sender] += 1;
        }
    }
    for sender in senders {
        sender.join().unwrap();
    }
    assert_eq!((next, echoes), ([EACH; SENDERS], ECHOED));
    let stats = server.handle().stats();
    assert_eq!((stats.messages_out, stats.dropped), (expected as u64, 0));
    // Both ways were taken (so the two threads' TLS records met on one socket, and the
    // client decrypted them all): from halfway on, the connection's thread sleeps
    // between sends, and the senders write through.
    assert!(stats.messages_written_through > 0, "{stats:?}");
}

/// Sends `n` numbered messages to a client that only reads, each after the client got
/// the one before (so that its connection's thread has gone back to sleep); returns how
/// many the sending thread wrote itself.
fn pushes_written_through(write_through: bool, n: usize) -> u64 {
    let server = start(|b| b.write_through(write_through));
    // Events are taken as they come: a sender writes through only then.
    let events = server.echo();
    let mut client = server.connect("/");
    let conn = next_open(&events);
    let handle = server.handle();
    for i in 0..n {
        handle.send(conn, i.to_string()).unwrap();
        assert_eq!(read_data(&mut client), WsMessage::text(i.to_string()));
    }
    let stats = handle.stats();
    assert_eq!((stats.messages_out, stats.dropped), (n as u64, 0));
    stats.messages_written_through
}

#[test]
fn a_push_to_a_sleeping_connection_is_written_by_the_sender() {
    let written_through = pushes_written_through(true, 50);
    // The client sends nothing, so its connection's thread wakes only for a push that
    // found it busy: the first (it was still starting after the Open event), and any
    // that came before it went back to sleep after writing a queued one, which a busy
    // machine makes rare, not impossible.
    assert!(written_through >= 25, "{written_through} of 50 written through");
}

#[test]
fn with_write_through_off_every_push_is_queued() {
    assert_eq!(pushes_written_through(false, 50), 0);
}
