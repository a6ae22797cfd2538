//! `shutdown()` closes every client with 1001 and joins every thread.

mod common;

use std::thread;

use common::{next_open, start, tinywss_threads};
use tinywss::{CloseReason, Event};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message as WsMessage;

#[test]
fn shutdown_sends_1001_to_every_client_and_joins_all_threads() {
    let server = start(|b| b);
    let events = server.echo();
    let clients: Vec<_> = (0..5).map(|_| server.connect("/")).collect();
    let conns: Vec<_> = clients.iter().map(|_| next_open(&events)).collect();
    // The acceptor and one thread per client.
    assert!(tinywss_threads().len() >= 6, "{:?}", tinywss_threads());

    // Clients read concurrently, as real ones would, and answer the Close frame.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            thread::spawn(move || loop {
                match client.read() {
                    Ok(WsMessage::Close(frame)) => {
                        // Reply and wait for the server to end the connection.
                        while client.read().is_ok() {}
                        return frame.map(|f| f.code);
                    }
                    Ok(_) => continue,
                    Err(e) => panic!("connection ended without a Close frame: {e}"),
                }
            })
        })
        .collect();
    server.handle().shutdown().unwrap();
    // Every thread has been joined; the kernel may list a joined thread in /proc for a
    // moment longer (it clears the thread id, which join waits for, before it reaps it).
    common::eventually("no tinywss thread is left after shutdown", || tinywss_threads().is_empty());
    for reader in readers {
        assert_eq!(reader.join().unwrap(), Some(CloseCode::Away));
    }

    let mut closes = 0;
    // The events channel ends once every connection thread has finished.
    while let Ok(event) = events.recv_timeout(common::PATIENCE) {
        if let Event::Close { reason: CloseReason::Server { code, .. }, .. } = event {
            assert_eq!(code, 1001);
            closes += 1;
        }
    }
    assert_eq!(closes, 5);
    assert!(matches!(server.handle().send(conns[0], "x"), Err(tinywss::Error::Closed)));
}
