//! Connections that send nothing cannot lock real clients out: 300 of them from
//! 127.0.0.2, then a steady trickle of more, while a real client on 127.0.0.1 connects
//! and echoes, again and again, within a bound. The per-address limits are lifted, so
//! that 127.0.0.2 stands for an attack from many addresses: this is the handshake
//! bound and its shedding at work. (Alone in its file: it counts the whole process's
//! threads and fds.)

mod common;
#[path = "common/from_address.rs"]
mod from_address;

use std::net::{Ipv4Addr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_echo, eventually, open_fds, proc_status_kib, start_with_client, tinywss_threads, Started};
use from_address::{tcp_from, wss_from, ATTACKER};

const SILENT: usize = 300;
const HANDSHAKES: usize = 16;
const ROUNDS: usize = 2 * HANDSHAKES + 8;
/// The rate the issue names: enough to keep 256 slots full against a 10 s deadline.
const TRICKLE_PER_SECOND: u32 = 26;

#[test]
fn silent_connections_cannot_lock_out_a_real_client() {
    let Started { server, events: _events, client: mut good, .. } = start_with_client(|b| {
        b.max_handshakes(HANDSHAKES)
            .max_connections_per_ip(None)
            .max_handshakes_per_ip(None)
            .handshake_timeout(Duration::from_secs(60))
    });
    let handle = server.handle();
    let (threads_before, fds_before) = (tinywss_threads().len(), open_fds());

    let mut silent: Vec<TcpStream> = (0..SILENT).map(|_| tcp_from(ATTACKER, server.addr)).collect();
    eventually("the server has seen every silent connection", || {
        let stats = handle.stats();
        stats.accepted + stats.refused == SILENT as u64 + 1
    });
    let (threads_flooded, rss_flooded) = (tinywss_threads().len() - threads_before, proc_status_kib("VmRSS"));
    eprintln!("flood: {threads_flooded} more tinywss threads, VmRSS {rss_flooded} KiB; {:?}", handle.stats());
    // A connection thread and a handshake thread for each handshake in progress, and as
    // many again for shed ones still winding down.
    assert!(threads_flooded <= 4 * HANDSHAKES, "{threads_flooded} threads for the silent connections");

    // The trickle turns the handshake slots over more than twice while real clients
    // connect, one after each new silent connection.
    let trickled = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let (trickled, stop, addr) = (Arc::clone(&trickled), Arc::clone(&stop), server.addr);
        thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::SeqCst) && held.len() < 1000 {
                held.push(tcp_from(ATTACKER, addr));
                trickled.fetch_add(1, Ordering::SeqCst);
                thread::sleep(Duration::from_secs(1) / TRICKLE_PER_SECOND);
            }
            held
        })
    };
    let mut slowest = Duration::ZERO;
    for round in 1..=ROUNDS {
        eventually("the trickle goes on", || trickled.load(Ordering::SeqCst) >= round);
        let start = Instant::now();
        let mut real = wss_from(Ipv4Addr::LOCALHOST, &server)
            .unwrap_or_else(|e| panic!("real client {round} refused after {:?}: {e}", start.elapsed()));
        assert_echo(&mut real, "through the flood");
        slowest = slowest.max(start.elapsed());
        assert_echo(&mut good, "unharmed");
    }
    stop.store(true, Ordering::SeqCst);
    silent.extend(trickle.join().unwrap());
    let stats = handle.stats();
    eprintln!("real client: slowest connect + echo {slowest:?}; {stats:?}");
    assert!(slowest < Duration::from_secs(2), "a real client took {slowest:?}");

    drop(silent);
    eventually("every attacker thread ends", || handle.stats().connections == 1);
    eventually("no tinywss thread is left", || tinywss_threads().len() == threads_before);
    eventually("no file descriptor is left", || open_fds() <= fds_before);
    assert_echo(&mut good, "after the flood");
}
