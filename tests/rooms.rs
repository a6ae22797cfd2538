//! Rooms: publish reaches members only, can exclude the sender, and membership ends
//! with the connection.

mod common;

use common::{eventually, next_open, read_data, start};
use tungstenite::Message as WsMessage;

fn text(s: &str) -> WsMessage {
    WsMessage::text(s)
}

#[test]
fn publish_reaches_members_only_and_cleans_up_on_close() {
    let server = start(|b| b);
    let events = server.echo();
    let handle = server.handle();
    // One at a time: each connection's thread emits its Open, so two clients that
    // connect together may be announced in either order.
    let (mut clients, ids): (Vec<_>, Vec<_>) = (0..3).map(|_| (server.connect("/"), next_open(&events))).unzip();
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    handle.join(a, "red").unwrap();
    handle.join(b, "red").unwrap();
    handle.join(c, "blue").unwrap();
    handle.join(a, "blue").unwrap();
    eventually("the memberships are counted", || handle.stats().room_members == 4);
    assert_eq!(handle.stats().rooms, 2);
    let sizes = ["red", "blue", "nobody-here"].map(|room| handle.room_size(room));
    assert_eq!(sizes, [2, 2, 0]);

    handle.publish("red", "to red").unwrap();
    handle.publish_except("red", "from a", a).unwrap();
    handle.publish("nobody-here", "lost in space").unwrap();
    // A personal message after the publishes proves what did (not) arrive before it.
    for id in &ids {
        handle.send(*id, "end").unwrap();
    }
    assert_eq!([read_data(&mut clients[0]), read_data(&mut clients[0])], [text("to red"), text("end")]);
    assert_eq!(
        [read_data(&mut clients[1]), read_data(&mut clients[1]), read_data(&mut clients[1])],
        [text("to red"), text("from a"), text("end")]
    );
    assert_eq!(read_data(&mut clients[2]), text("end"));

    // a leaves blue explicitly, then closes: it is gone from red too.
    handle.leave(a, "blue").unwrap();
    let mut a_client = clients.remove(0);
    a_client.close(None).unwrap();
    while a_client.read().is_ok() {}
    eventually("a's memberships are gone", || handle.stats().room_members == 2);
    assert_eq!([handle.room_size("red"), handle.room_size("blue")], [1, 1]);
    handle.publish("red", "after a left").unwrap();
    assert_eq!(read_data(&mut clients[0]), text("after a left"));
    assert_eq!(handle.stats().dropped, 0, "nothing was routed to the closed connection");
}
