//! One address cannot take the whole server: past `max_connections_per_ip` full
//! WebSockets its new connections are refused right after `accept`, and with every
//! handshake slot in use, so are those past `max_handshakes_per_ip` handshakes in
//! progress, while another address still connects. (Alone in its file: it counts the
//! whole process's threads and fds.)

mod common;
#[path = "common/from_address.rs"]
mod from_address;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{assert_echo, eventually, next_open, open_fds, start_with_client, tinywss_threads, Started};
use from_address::{hung_up, tcp_from, wss_from, ATTACKER};

const PER_IP: usize = 4;
/// Fewer than `PER_IP`, so that the attacker fills them within its connection limit.
const SLOTS: usize = 3;

#[test]
fn one_address_is_held_to_its_share() {
    let Started { server, events, client: mut good, .. } = start_with_client(|b| {
        b.max_connections_per_ip(Some(PER_IP))
            .max_handshakes(SLOTS)
            .max_handshakes_per_ip(Some(2))
            .handshake_timeout(Duration::from_secs(60))
    });
    let handle = server.handle();
    let (threads_before, fds_before) = (tinywss_threads().len(), open_fds());

    // Full WebSockets: four from the attacker's address, then the fifth is refused.
    let mut open: Vec<_> = (0..PER_IP).map(|_| wss_from(ATTACKER, &server).unwrap()).collect();
    for _ in 0..PER_IP {
        next_open(&events);
    }
    let refused = wss_from(ATTACKER, &server).map(|_| ()).expect_err("one connection too many from 127.0.0.2");
    assert!(matches!(refused, tungstenite::Error::Io(_)), "{refused}");
    assert_eq!((handle.stats().refused, handle.stats().refused_per_ip), (1, 1));
    // Another address is not affected, and the attacker's own connections still work.
    let mut other = wss_from(Ipv4Addr::LOCALHOST, &server).expect("a client from 127.0.0.1");
    next_open(&events);
    assert_echo(&mut other, "another address");
    assert_echo(&mut open[0], "within its share");
    assert_echo(&mut good, "unharmed");
    // A place frees up when one of its connections ends.
    drop(open.pop());
    eventually("the attacker's connection ends", || handle.stats().connections as usize == PER_IP + 1);
    open.push(wss_from(ATTACKER, &server).expect("a place freed up"));
    drop((open, other));

    // Handshakes in progress: one address may fill the free slots, but once they are all
    // in use it may not push others out for more; another address may.
    eventually("those connections end", || handle.stats().connections == 1);
    let silent: Vec<_> = (0..SLOTS).map(|_| tcp_from(ATTACKER, server.addr)).collect();
    eventually("the server has accepted them", || handle.stats().connections as usize == SLOTS + 1);
    let one_more = tcp_from(ATTACKER, server.addr);
    eventually("the silent connection past the slots is closed", || hung_up(&one_more));
    assert_eq!((handle.stats().refused_per_ip, handle.stats().handshakes_shed), (2, 0));
    assert!(!silent.iter().any(hung_up), "the others are still in their handshakes");
    let mut other = wss_from(Ipv4Addr::LOCALHOST, &server).expect("a client from 127.0.0.1 during the handshakes");
    assert_echo(&mut other, "another address, again");
    assert_eq!(handle.stats().handshakes_shed, 1);
    eventually("the attacker's oldest handshake makes way", || hung_up(&silent[0]));
    assert_echo(&mut good, "still unharmed");

    drop((silent, one_more, other));
    eventually("every other connection ends", || handle.stats().connections == 1);
    eventually("no tinywss thread is left", || tinywss_threads().len() == threads_before);
    eventually("no file descriptor is left", || open_fds() <= fds_before);
}
