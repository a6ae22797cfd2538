//! Fifty clients at once: each gets exactly its own messages back, in order.

mod common;

use std::thread;

use common::{read_data, start};
use tungstenite::Message as WsMessage;

const CLIENTS: usize = 50;
const MESSAGES: usize = 20;

#[test]
fn fifty_clients_each_get_their_own_messages_in_order() {
    let server = start(|b| b);
    let _events = server.echo();
    let (addr, ca) = (server.addr, server.certs.files.ca.clone());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let ca = ca.clone();
            thread::spawn(move || {
                let mut client = common::connect(addr, &ca, "/").unwrap();
                // Pipeline everything first, then read: replies must not interleave.
                for m in 0..MESSAGES {
                    client.send(WsMessage::text(format!("client {c} message {m}"))).unwrap();
                }
                for m in 0..MESSAGES {
                    assert_eq!(read_data(&mut client), WsMessage::text(format!("client {c} message {m}")));
                }
                client.close(None).unwrap();
                while client.read().is_ok() {}
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client saw a wrong message");
    }
    let stats = server.handle().stats();
    assert_eq!(stats.accepted, CLIENTS as u64);
    assert_eq!(stats.messages_in, (CLIENTS * MESSAGES) as u64);
    assert_eq!(stats.messages_out, (CLIENTS * MESSAGES) as u64);
    assert_eq!(stats.dropped, 0);
}
