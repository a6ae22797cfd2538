//! The handshake workers shrink back to one parked worker once a burst of handshakes is
//! over: never to none (the next client would pay for a thread start again) and never
//! stuck above one. The workers here go idle, and so time out, nearly together; the
//! interleaving where two retire on each other's count is pinned down by the unit tests
//! in `src/threads.rs`. (Alone in its file: it counts the whole process's threads.)

mod common;

use std::net::TcpStream;

use common::{eventually, start_with_client, tinywss_threads, Started};

const BURST: usize = 12;

fn workers() -> usize {
    tinywss_threads().iter().filter(|name| name.starts_with("tinywss-hs")).count()
}

#[test]
fn a_burst_of_handshakes_leaves_one_parked_worker() {
    let Started { server, client: mut good, .. } = start_with_client(|b| b.max_handshakes(BURST));
    let handle = server.handle();
    assert_eq!(workers(), 1, "the first client's worker stays parked");

    for round in 0..3 {
        // Silent clients hold one worker each in its TLS handshake...
        let silent: Vec<_> = (0..BURST).map(|_| TcpStream::connect(server.addr).unwrap()).collect();
        eventually("a worker for each silent client", || workers() == BURST);
        // ...and hang up together, so that the workers go idle, and time out, together.
        drop(silent);
        eventually("the handshakes have ended", || handle.stats().connections == 1);
        eventually("the extra workers have retired", || workers() <= 1);
        assert_eq!(workers(), 1, "round {round}: one worker stays parked");
    }
    common::assert_echo(&mut good, "unharmed");
}
