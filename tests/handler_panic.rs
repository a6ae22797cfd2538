//! A handler that panics: its client gets Close 1011, the panic is logged and counted,
//! nothing is left behind, and the server keeps serving. (Alone in its file: it counts
//! the whole process's threads and fds.)

mod common;

use common::{assert_echo, eventually, open_fds, start_handler, tinywss_threads};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message as WsMessage;

const OFFENDERS: usize = 50;

#[test]
fn a_panicking_handler_closes_with_1011_and_leaks_nothing() {
    let server = start_handler(
        |b| b,
        |conn| {
            while let Some(message) = conn.recv() {
                if message.as_bytes() == b"panic" {
                    // The handler's own bug: a header this client did not send.
                    conn.request().header("x-missing").expect("an X-Missing header");
                }
                conn.send(message)?;
            }
            Ok(())
        },
    );
    let mut good = server.connect("/");
    assert_echo(&mut good, "warm");
    let handle = server.handle();
    let (threads_before, fds_before) = (tinywss_threads().len(), open_fds());

    for i in 0..OFFENDERS {
        let mut bad = server.connect("/");
        bad.send(WsMessage::text("panic")).unwrap();
        let code = loop {
            match bad.read() {
                Ok(WsMessage::Close(frame)) => break frame.map(|f| f.code),
                Ok(_) => continue,
                Err(e) => panic!("no Close frame after the handler panicked: {e}"),
            }
        };
        assert_eq!(code, Some(CloseCode::Error), "offender {i}");
        let _ = bad.flush();
        if i % 10 == 0 {
            assert_echo(&mut good, &format!("during the panics {i}"));
        }
    }

    eventually("every panic is counted", || handle.stats().panics == OFFENDERS as u64);
    eventually("only the good client is left", || handle.stats().websockets == 1);
    eventually("every offender's thread ends", || tinywss_threads().len() == threads_before);
    eventually("no file descriptor is left", || open_fds() <= fds_before);
    assert_echo(&mut good, "unharmed");
    assert_echo(&mut server.connect("/"), "a new client is served");
}
