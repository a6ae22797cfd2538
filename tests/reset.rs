//! A client that vanishes without a close (TCP reset) is reported, and its thread ends.

mod common;

use std::time::Duration;

use common::{eventually, next_event, start_with_client, tinywss_threads, Started};
use tinywss::{CloseReason, Event};

#[test]
fn reset_client_yields_close_event_and_thread_exits() {
    let Started { server, events, client, conn } = start_with_client(|b| b);
    assert!(tinywss_threads().iter().any(|t| t == &format!("tinywss-conn-{}", conn.as_u64())));

    // SO_LINGER 0: close() sends RST instead of FIN.
    let tcp = &client.get_ref().sock;
    rustix::net::sockopt::set_socket_linger(tcp, Some(Duration::ZERO)).unwrap();
    drop(client);

    match next_event(&events) {
        Event::Close { conn: closed, reason: CloseReason::Error(e), .. } => {
            assert_eq!(closed, conn);
            assert!(matches!(e, tinywss::Error::Io(_)), "{e}");
        }
        other => panic!("expected Close with an error, got {other:?}"),
    }
    let thread = format!("tinywss-conn-{}", conn.as_u64());
    eventually("the connection thread exits", || !tinywss_threads().contains(&thread));
    assert_eq!(server.handle().stats().connections, 0);
}
