//! A whole session logged at `trace`: the logs teach (TLS, the Upgrade, each frame, the
//! close) and never show a secret header value, a query value or a payload.
//! (Alone in its file: it installs its own logger for the whole test binary.)

mod common;

use std::sync::{Arc, Mutex};

use tinywss::{AppData, Rejection};
use tungstenite::Message as WsMessage;

static RECORDS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let entry = (record.target().to_owned(), record.args().to_string());
        RECORDS.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
    }

    fn flush(&self) {}
}

const SECRETS: [&str; 6] =
    ["COOKIE-s3cr3t", "BEARER-s3cr3t", "TOKEN-s3cr3t", "TEXT-PAYLOAD-s3cr3t", "BINARY-PAYLOAD-s3cr3t", "PING-s3cr3t"];

#[test]
fn trace_log_of_a_session_teaches_and_keeps_secrets() {
    static LOGGER: Capture = Capture;
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    let server = common::start(|b| {
        b.authenticate(|request| match request.cookie("session") {
            Some("COOKIE-s3cr3t") => Ok(Some(Arc::new(()) as AppData)),
            _ => Err(Rejection::new(401, "no session")),
        })
    });
    let events = server.echo();
    let url = format!("wss://localhost:{}/live?token=TOKEN-s3cr3t", server.addr.port());
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request.headers_mut().insert("Cookie", "session=COOKIE-s3cr3t".parse().unwrap());
    request.headers_mut().insert("Authorization", "Bearer BEARER-s3cr3t".parse().unwrap());
    let tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let tls = rustls::ClientConnection::new(
        common::client_tls(&server.certs.files.ca),
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let (mut client, _) = tungstenite::client::client(request, rustls::StreamOwned::new(tls, tcp)).unwrap();
    common::next_open(&events);
    client.send(WsMessage::text("TEXT-PAYLOAD-s3cr3t")).unwrap();
    assert_eq!(common::read_data(&mut client), WsMessage::text("TEXT-PAYLOAD-s3cr3t"));
    client.send(WsMessage::binary(&b"BINARY-PAYLOAD-s3cr3t"[..])).unwrap();
    assert_eq!(common::read_data(&mut client).into_data(), &b"BINARY-PAYLOAD-s3cr3t"[..]);
    client.send(WsMessage::Ping(b"PING-s3cr3t"[..].into())).unwrap();
    assert!(matches!(client.read().unwrap(), WsMessage::Pong(_)));
    client.close(None).unwrap();
    while client.read().is_ok() {}
    let handle = server.handle();
    handle.shutdown().unwrap();

    let records = RECORDS.lock().unwrap().clone();
    let ours: Vec<&str> = records.iter().filter(|(t, _)| t.starts_with("tinywss")).map(|(_, m)| m.as_str()).collect();
    let all = ours.join("\n");
    for secret in SECRETS {
        assert!(!all.contains(secret), "{secret} leaked into the log:\n{all}");
    }
    // The log shows each step of the protocol.
    for step in [
        "TLS established: TLSv1_3",
        "GET /live?token=<redacted> HTTP/1.1",
        "Cookie: <redacted>",
        "Authorization: <redacted>",
        "Sec-WebSocket-Key: ",
        "HTTP/1.1 101 Switching Protocols",
        "Sec-WebSocket-Accept: ",
        "<- text frame (opcode 0x1), FIN=1, RSV=0, masked, payload 19 bytes",
        "-> text frame (opcode 0x1), FIN=1, RSV=0, unmasked, payload 19 bytes",
        "<- binary frame (opcode 0x2)",
        "<- ping frame (opcode 0x9)",
        "-> pong frame (opcode 0xa)",
        "<- close frame (opcode 0x8)",
        "-> close frame (opcode 0x8)",
        "closed by client: 1005",
        "received 2 messages (40 bytes), sent 2 messages (40 bytes)",
    ] {
        // (tungstenite's client sends some header names in lower case)
        assert!(all.to_lowercase().contains(&step.to_lowercase()), "the log does not show {step:?}:\n{all}");
    }
}
