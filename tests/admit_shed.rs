//! When the handshake slots are full, a new client takes the place of the oldest
//! unfinished handshake: the oldest silent connection is closed first, the newer ones
//! survive until their turn, and open WebSockets are never touched. (Alone in its file:
//! it counts the whole process's threads and fds.)

mod common;
#[path = "common/from_address.rs"]
mod from_address;

use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use common::{assert_echo, eventually, open_fds, start_with_client, tinywss_threads, Started};
use from_address::{hung_up, tcp_from, wss_from, ATTACKER};

const SLOTS: usize = 4;

#[test]
fn the_oldest_unfinished_handshake_is_shed_first() {
    let Started { server, events: _events, client: mut good, .. } = start_with_client(|b| {
        b.max_handshakes(SLOTS)
            .max_connections_per_ip(None)
            .max_handshakes_per_ip(None)
            .handshake_timeout(Duration::from_secs(60))
    });
    let handle = server.handle();
    let (threads_before, fds_before) = (tinywss_threads().len(), open_fds());
    // One at a time, so that the server accepts them in this order.
    let mut silent: Vec<TcpStream> = Vec::new();
    let connect_silent = |silent: &mut Vec<TcpStream>| {
        silent.push(tcp_from(ATTACKER, server.addr));
        let n = silent.len() as u64;
        eventually("the server has accepted it", || handle.stats().accepted == 1 + n);
    };
    (0..SLOTS).for_each(|_| connect_silent(&mut silent));

    for shed in 0..SLOTS {
        connect_silent(&mut silent);
        eventually("the oldest silent connection is closed", || hung_up(&silent[shed]));
        let survivors: Vec<_> = (shed + 1..silent.len()).filter(|&i| hung_up(&silent[i])).collect();
        assert!(survivors.is_empty(), "after {} shed, these newer ones were closed too: {survivors:?}", shed + 1);
        assert_eq!(handle.stats().handshakes_shed, shed as u64 + 1);
        assert_eq!(handle.stats().refused, 0);
        assert_echo(&mut good, "an open WebSocket is never shed");
    }
    // A real client does the same, and completes its handshake.
    let mut real = wss_from(Ipv4Addr::LOCALHOST, &server).expect("a real client takes the oldest's place");
    assert_echo(&mut real, "in");
    eventually("the next oldest is closed", || hung_up(&silent[SLOTS]));
    assert_eq!(handle.stats().handshakes_shed, SLOTS as u64 + 1);

    drop((silent, real));
    eventually("every other connection ends", || handle.stats().connections == 1);
    eventually("no tinywss thread is left", || tinywss_threads().len() == threads_before);
    eventually("no file descriptor is left", || open_fds() <= fds_before);
    assert_echo(&mut good, "after the shedding");
}
