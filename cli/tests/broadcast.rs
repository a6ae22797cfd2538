//! `tinywss serve --broadcast`: one process for the server, its lines to every client.

mod common;

use common::{read_text, Tinywss};
use tungstenite::Message;

/// Waits for a client to say "go" (so every client is connected first), tells what it
/// got, then writes 200 numbered lines.
const COUNT: &str =
    "read go; echo \"first: $go\"; i=0; while [ $i -lt 200 ]; do echo \"line $i\"; i=$((i+1)); done; exec sleep 600";

#[test]
fn fifty_clients_get_every_line_in_order() {
    let server = Tinywss::start(&["--broadcast", "sh", "-c", COUNT]);
    let mut clients: Vec<_> = (0..50).map(|_| server.connect("/")).collect();
    server.wait_for_log("conn#50 open");
    clients[7].send(Message::text("go")).unwrap();
    for client in &mut clients {
        let first = read_text(client);
        // The message reached the process's stdin prefixed with its sender's id.
        assert_eq!(first, "first: 8 go");
        for i in 0..200 {
            assert_eq!(read_text(client), format!("line {i}"));
        }
    }
    // One process for all of them.
    assert_eq!(server.children().len(), 1);
}

#[test]
fn a_room_gets_the_lines_and_other_clients_do_not() {
    let server = Tinywss::start(&["--room", "kitchen", "--broadcast", "sh", "-c", "read go; echo hot; exec sleep 600"]);
    let mut inside = server.connect("/?room=kitchen");
    let mut outside = server.connect("/?room=garage");
    server.wait_for_log("conn#2 open");
    outside.send(Message::text("go")).unwrap();
    assert_eq!(read_text(&mut inside), "hot");
    outside.get_mut().sock.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    assert!(matches!(outside.read(), Err(tungstenite::Error::Io(_))), "a client outside the room got a line");
}

#[test]
fn the_server_stops_when_the_process_ends() {
    let mut server = Tinywss::start(&["--broadcast", "sh", "-c", "read go; echo bye; exit 4"]);
    let mut client = server.connect("/");
    server.wait_for_log("conn#1 open");
    client.send(Message::text("go")).unwrap();
    assert_eq!(read_text(&mut client), "bye");
    assert_eq!(common::read_close(&mut client).0, 1001);
    assert_eq!(server.child.wait().unwrap().code(), Some(4));
}
