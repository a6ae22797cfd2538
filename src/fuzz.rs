//! Entry points for the fuzz targets in `fuzz/` (built only with `--cfg fuzzing`).

use crate::http::{self, Policy, Request};

/// Feeds arbitrary bytes to the request parser, the router and the Upgrade checks.
pub fn request_head(data: &[u8]) {
    let Some(len) = http::head_len(data) else { return };
    let peer = "127.0.0.1:1".parse().expect("a valid address");
    let request = match Request::parse(&data[..len], peer, None) {
        Ok(request) => request,
        Err(reject) => return check_reject(&reject),
    };
    let policy = Policy { websocket_paths: vec!["/ws".into()], same_origin: true, ..Policy::default() };
    let _ = policy.route(&request);
    let _ = policy.check_origin(&request);
    let _ = format!("{request:?}");
    match http::check_upgrade(
        &request,
        &["chat".to_owned(), "v2".to_owned()],
        Some(http::DeflateSettings { context_takeover: true, window_bits: 12 }),
    ) {
        Ok(upgrade) => {
            let response = http::switching_protocols(&upgrade);
            assert!(response.starts_with("HTTP/1.1 101 ") && response.ends_with("\r\n\r\n"));
            assert_eq!(upgrade.accept.len(), 28, "SHA-1 digests are 28 characters of base64");
        }
        Err(reject) => check_reject(&reject),
    }
}

fn check_reject(reject: &http::Rejection) {
    assert!((400..600).contains(&reject.status));
    let response = http::error_response(reject);
    let (head, body) = response.split_once("\r\n\r\n").expect("a blank line after the head");
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
}

/// Runs the frame loop of an open connection over arbitrary client bytes, with small
/// limits and a few outbound messages queued, until it ends or the input runs out.
pub fn frame_loop(data: &[u8]) {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::config::Limits;
    use crate::connection::fuzzing::{Client, MemoryStream, Session, Transport};
    use crate::connection::Context;
    use crate::hub::{outbox, EventSink, Registry};
    use tungstenite::Message as WsMessage;

    let Ok(idle) = std::fs::File::open("/dev/null") else { return };
    let Ok(waker) = crate::wait::Waker::new() else { return };
    // No shares to wait for: the harness takes the events only between steps.
    let limits = Limits {
        max_message_size: 4096,
        max_frame_size: 1024,
        events_capacity: usize::MAX,
        events_bytes: usize::MAX,
        ..Limits::default()
    };
    let (events, events_rx) = crossbeam_channel::unbounded();
    let (_shutdown_signal, shutdown) = crossbeam_channel::bounded(0);
    let stats = Arc::default();
    let registry = Arc::new(Registry::new(Arc::clone(&stats), &limits));
    let events = EventSink::new(events, shutdown, Arc::clone(&stats), &limits);
    let context = Context::new(limits, Policy::default(), None, events, Arc::clone(&registry), stats);
    let (sender, outbox) = outbox(waker);
    let id = crate::ConnectionId(1);
    registry.register(id, sender);
    registry.opened(id);
    for text in ["one", "two"] {
        let _ = registry.send(id, WsMessage::text(text));
    }
    let client = Arc::new(Client {
        id,
        peer: "127.0.0.1:1".parse().expect("a valid address"),
        outbox,
        context: Arc::new(context),
        deadline: Instant::now() + Duration::from_secs(10),
    });
    let memory = MemoryStream { input: std::io::Cursor::new(data.to_vec()), output: Vec::new(), idle: Arc::new(idle) };
    // No compression: the frame loop as most connections run it.
    let mut session = Session::new(Arc::clone(&client), Transport::Memory(memory), None, Vec::new(), None);
    // Each step reads up to 256 messages (at least 2 bytes each) or ends the connection.
    for _ in 0..data.len() / 512 + 8 {
        if session.step().is_some() {
            break;
        }
        while events_rx.try_recv().is_ok() {}
    }
    let written = session.bytes_written();
    // Pongs and close replies echo at most 125 bytes per control frame received (of at
    // least 6 bytes); queued messages and one Close frame add a little.
    assert!(written <= 2 * data.len() as u64 + 512, "wrote {written} bytes for {} bytes of input", data.len());
}
