//! Handler mode (`Server::serve`): the application's code for each client runs on the
//! client's own thread, and everything else keeps flowing while it waits in `recv`.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{assert_echo, eventually, read_data, start_handler, TestServer, PATIENCE};
use tinywss::crossbeam_channel::RecvTimeoutError;
use tinywss::{Connection, ConnectionId, HandlerError, Message};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message as WsMessage;

fn echo(conn: &mut Connection<'_>) -> Result<(), HandlerError> {
    while let Some(message) = conn.recv() {
        conn.send(message)?;
    }
    Ok(())
}

/// A handler that tells the test its connection id, then echoes.
fn announcing_echo(ids: mpsc::Sender<ConnectionId>) -> impl Fn(&mut Connection<'_>) -> Result<(), HandlerError> {
    move |conn| {
        let _ = ids.send(conn.id());
        echo(conn)
    }
}

/// The close code the client receives next (skipping data and control messages).
fn close_code(client: &mut common::Client) -> CloseCode {
    loop {
        match client.read() {
            Ok(WsMessage::Close(Some(frame))) => {
                // Send tungstenite's reply now, so the server need not wait for it.
                let _ = client.flush();
                return frame.code;
            }
            Ok(WsMessage::Close(None)) => panic!("a Close frame without a code"),
            Ok(_) => continue,
            Err(e) => panic!("no Close frame: {e}"),
        }
    }
}

#[test]
fn echoes_text_binary_and_a_large_message() {
    let server = start_handler(|b| b, echo);
    let mut client = server.connect("/");
    assert_echo(&mut client, "hello");
    client.send(WsMessage::binary(vec![7u8; 3])).unwrap();
    assert_eq!(read_data(&mut client), WsMessage::binary(vec![7u8; 3]));
    let big = vec![1u8; 1 << 20];
    client.send(WsMessage::binary(big.clone())).unwrap();
    assert_eq!(read_data(&mut client), WsMessage::binary(big));
    let stats = server.handle().stats();
    assert_eq!((stats.websockets, stats.messages_in, stats.messages_out), (1, 3, 3));
}

#[test]
fn pipelined_messages_come_back_in_order() {
    let server = start_handler(|b| b, echo);
    let mut client = server.connect("/");
    for round in 0..20 {
        for i in 0..32 {
            client.write(WsMessage::text(format!("{round}-{i}"))).unwrap();
        }
        client.flush().unwrap();
        for i in 0..32 {
            assert_eq!(read_data(&mut client), WsMessage::text(format!("{round}-{i}")));
        }
    }
}

#[test]
fn the_handler_sees_the_request_and_the_authentication_data() {
    let (seen, seen_rx) = mpsc::channel();
    let server = start_handler(
        |b| {
            b.authenticate(|request| {
                Ok(Some(std::sync::Arc::new(request.query_param("user").unwrap_or("").to_owned()) as tinywss::AppData))
            })
        },
        move |conn| {
            let user = conn.info().data.as_ref().and_then(|d| d.downcast_ref::<String>()).cloned();
            let agent = conn.request().header("host").map(str::to_owned);
            let _ = seen.send((conn.id(), conn.request().path().to_owned(), user, agent));
            echo(conn)
        },
    );
    let mut client = server.connect("/room?user=ada");
    assert_echo(&mut client, "hi");
    let (_, path, user, host) = seen_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(path, "/room");
    assert_eq!(user.as_deref(), Some("ada"));
    assert_eq!(host, Some(format!("localhost:{}", server.addr.port())));
}

#[test]
fn pushes_broadcasts_and_rooms_reach_a_handler_waiting_in_recv() {
    let (ids, ids_rx) = mpsc::channel();
    let server = start_handler(|b| b, announcing_echo(ids));
    let handle = server.handle();
    let (mut a, mut b) = (server.connect("/"), server.connect("/"));
    let (id_a, id_b) = (ids_rx.recv_timeout(PATIENCE).unwrap(), ids_rx.recv_timeout(PATIENCE).unwrap());
    // Both handlers are now blocked in recv(), their clients silent.
    handle.send(id_a, "pushed").unwrap();
    assert_eq!(read_data(&mut a), WsMessage::text("pushed"));
    handle.broadcast(Message::Binary(vec![1, 2])).unwrap();
    assert_eq!(read_data(&mut a), WsMessage::binary(vec![1, 2]));
    assert_eq!(read_data(&mut b), WsMessage::binary(vec![1, 2]));
    handle.join(id_b, "lobby").unwrap();
    handle.publish("lobby", "to the lobby").unwrap();
    assert_eq!(read_data(&mut b), WsMessage::text("to the lobby"));
    // a is not in the room: its next message is its own echo.
    assert_echo(&mut a, "only mine");
    assert_eq!(handle.stats().room_members, 1);
    // An echo and a push interleave in the order they were made.
    a.send(WsMessage::text("echo me")).unwrap();
    assert_eq!(read_data(&mut a), WsMessage::text("echo me"));
    handle.close(id_a, 4001, "bye").unwrap();
    assert_eq!(close_code(&mut a), CloseCode::from(4001));
}

#[test]
fn keepalive_pings_go_out_while_the_handler_waits() {
    let server = start_handler(|b| b.ping_interval(Some(Duration::from_millis(100))), echo);
    let mut client = server.connect("/");
    // The client sends nothing: the handler waits in recv() while the server pings.
    let start = Instant::now();
    match client.read().unwrap() {
        WsMessage::Ping(_) => {}
        other => panic!("expected a keepalive ping, got {other:?}"),
    }
    assert!(start.elapsed() < PATIENCE);
    // tungstenite answered the ping; the connection is alive and still echoes.
    assert_echo(&mut client, "still here");
}

#[test]
fn recv_timeout_lets_a_handler_keep_its_own_clock() {
    let server = start_handler(
        |b| b,
        |conn| {
            let mut ticks = 0;
            loop {
                match conn.recv_timeout(Duration::from_millis(20)) {
                    Ok(message) => conn.send(message)?,
                    Err(RecvTimeoutError::Timeout) => {
                        ticks += 1;
                        conn.send(format!("tick {ticks}"))?;
                    }
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                }
            }
        },
    );
    let mut client = server.connect("/");
    assert_eq!(read_data(&mut client), WsMessage::text("tick 1"));
    assert_eq!(read_data(&mut client), WsMessage::text("tick 2"));
}

#[test]
fn a_handler_that_returns_closes_with_1000() {
    let server = start_handler(
        |b| b,
        |conn| {
            if let Some(message) = conn.recv() {
                conn.send(message)?;
            }
            Ok(())
        },
    );
    let mut client = server.connect("/");
    assert_echo(&mut client, "once");
    assert_eq!(close_code(&mut client), CloseCode::Normal);
    eventually("the connection is gone", || server.handle().stats().websockets == 0);
}

#[test]
fn a_failing_handler_closes_its_connection_with_1011_and_the_server_carries_on() {
    let server: TestServer = start_handler(
        |b| b,
        |conn| {
            while let Some(message) = conn.recv() {
                if message.as_bytes() == b"fail" {
                    return Err("the handler gave up".into());
                }
                conn.send(message)?;
            }
            Ok(())
        },
    );
    let mut good = server.connect("/");
    let mut bad = server.connect("/");
    assert_echo(&mut bad, "fine so far");
    bad.send(WsMessage::text("fail")).unwrap();
    assert_eq!(close_code(&mut bad), CloseCode::Error);
    assert_echo(&mut good, "unharmed");
    let handle = server.handle();
    eventually("the failed connection is gone", || handle.stats().websockets == 1);
    assert_eq!(handle.stats().handler_errors, 1);
    assert_echo(&mut server.connect("/"), "a new client is served");
}

#[test]
fn limits_hold_as_in_events_mode() {
    let server = start_handler(|b| b.max_message_size(1024), echo);
    let mut good = server.connect("/");
    let mut big = server.connect("/");
    big.send(WsMessage::binary(vec![0u8; 4096])).unwrap();
    assert_eq!(close_code(&mut big), CloseCode::Size);
    assert_echo(&mut good, "unharmed");
    assert_eq!(server.handle().stats().limit_closes, 1);
}

#[test]
fn a_client_that_does_not_read_slows_only_its_own_handler() {
    let (sent, sent_rx) = mpsc::channel();
    let server = start_handler(
        |b| b.write_timeout(Duration::from_millis(500)),
        move |conn| {
            if conn.request().path() != "/firehose" {
                return echo(conn);
            }
            // Sends until the client's socket stops taking bytes for the write timeout.
            let chunk = vec![0u8; 64 << 10];
            let mut count = 0u64;
            while conn.send(Message::Binary(chunk.clone())).is_ok() {
                count += 1;
            }
            let _ = sent.send((count, conn.close_reason().map(ToString::to_string)));
            Ok(())
        },
    );
    let before = common::proc_status_kib("VmRSS");
    let _deaf = server.connect("/firehose");
    let mut good = server.connect("/");
    for i in 0..20 {
        assert_echo(&mut good, &format!("while the firehose is stuck {i}"));
    }
    let (count, reason) = sent_rx.recv_timeout(PATIENCE).expect("the firehose handler never stopped");
    let reason = reason.unwrap_or_default();
    assert!(reason.contains("timed out"), "{reason}");
    // Only what the socket buffers took: the handler waited instead of piling up output.
    assert!(count < 1000, "{count} chunks of 64 KiB were accepted for a client that reads nothing");
    let grown = common::proc_status_kib("VmRSS").saturating_sub(before);
    assert!(grown < 32 << 10, "the server grew by {grown} KiB");
    assert_echo(&mut good, "after");
    assert_eq!(server.handle().stats().limit_closes, 1);
}

/// CPU ticks (utime + stime) of this process's threads whose name starts with `prefix`.
fn cpu_ticks(prefix: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.trim().starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        total += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    total
}

/// A handler waiting in `send` for a full socket, past the keepalive deadline, sleeps.
#[test]
fn send_blocked_on_a_full_socket_after_the_ping_deadline_does_not_spin() {
    let (done, done_rx) = mpsc::channel();
    let server = start_handler(
        |b| b.write_timeout(Duration::from_secs(4)).ping_interval(Some(Duration::from_millis(200))),
        move |conn: &mut Connection<'_>| -> Result<(), HandlerError> {
            let chunk = vec![0u8; 16 << 10];
            while conn.send(Message::Binary(chunk.clone())).is_ok() {}
            let _ = done.send(());
            Ok(())
        },
    );
    let _deaf = server.connect("/");
    // Past the ping deadline: a wait that looked at it would no longer sleep.
    std::thread::sleep(Duration::from_millis(800));
    let before = cpu_ticks("tinywss-conn");
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks("tinywss-conn") - before;
    let elapsed = start.elapsed();
    assert!(done_rx.try_recv().is_err(), "the handler was expected to still wait in send");
    assert!(used < 20, "the connection thread used {used} ticks of CPU in {elapsed:?} while waiting for a full socket");
}

/// A handler that streams (send + flush, never recv) is closed by `Handle::close`.
#[test]
fn a_streaming_handler_is_closed_by_handle_close() {
    let (ids, ids_rx) = mpsc::channel();
    let server = start_handler(
        |b| b,
        move |conn: &mut Connection<'_>| -> Result<(), HandlerError> {
            let _ = ids.send(conn.id());
            let mut n = 0u64;
            loop {
                conn.send(Message::Text(format!("tick {n}")))?;
                conn.flush()?;
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        },
    );
    let mut client = server.connect("/");
    let id = ids_rx.recv_timeout(PATIENCE).unwrap();
    server.handle().close(id, 4000, "enough").unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut ticks_after_close = 0;
    while Instant::now() < deadline {
        match client.read() {
            Ok(WsMessage::Close(frame)) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(4000));
                return;
            }
            Ok(_) => ticks_after_close += 1,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no Close frame 3 s after Handle::close; {ticks_after_close} more messages were sent");
}

#[test]
fn a_wakeup_from_another_thread_ends_recv_timeout_early() {
    // The handler waits an hour for its client; another thread has work for it after a
    // moment (a process wrote a line), and wakes it instead of the hour passing.
    let server = start_handler(
        |b| b,
        |conn| {
            let wakeup = conn.wakeup();
            let (work, to_do) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = work.send("from another thread");
                wakeup.wake();
            });
            let started = Instant::now();
            loop {
                match conn.recv_timeout(Duration::from_secs(3600)) {
                    Ok(message) => conn.send(message)?,
                    Err(RecvTimeoutError::Timeout) => {
                        let line: &str = to_do.recv()?;
                        conn.send(format!("{line} after {} ms", started.elapsed().as_millis()))?;
                    }
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                }
            }
        },
    );
    let mut client = server.connect("/");
    let started = Instant::now();
    let WsMessage::Text(text) = read_data(&mut client) else { panic!("not text") };
    assert!(text.starts_with("from another thread"), "{text}");
    assert!(started.elapsed() < PATIENCE, "woken after {:?}", started.elapsed());
    // The handler still serves its client after the wake-up.
    assert_echo(&mut client, "still here");
}

/// A handler busy with other work looks at its client between times: a zero timeout,
/// a wait a wake-up ends, or `flush`. What the client sent after its input last ran dry
/// must still be read. Whether `look` found what it looked for, in time.
fn poll_between_other_work(conn: &mut Connection<'_>, mut look: impl FnMut(&mut Connection<'_>) -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if look(conn) {
            return true;
        }
        // The handler's other work.
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Echoes a first message (reading it reads on until the socket has no more: the input
/// ran dry), then echoes the next one found by `look`, or says it gave up.
fn echo_twice(
    look: impl Fn(&mut Connection<'_>) -> Result<Message, RecvTimeoutError> + Send + Sync + 'static,
) -> impl Fn(&mut Connection<'_>) -> Result<(), HandlerError> + Send + Sync + 'static {
    move |conn| {
        let Some(first) = conn.recv() else { return Ok(()) };
        conn.send(first)?;
        let mut second = None;
        let found = poll_between_other_work(conn, |conn| match look(conn) {
            Ok(message) => {
                second = Some(message);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        });
        match second {
            Some(message) => conn.send(message)?,
            None => conn.send(if found { "the client left" } else { "the handler gave up" })?,
        }
        Ok(())
    }
}

#[test]
fn a_zero_timeout_reads_what_came_after_the_input_ran_dry() {
    let server = start_handler(|b| b, echo_twice(|conn| conn.recv_timeout(Duration::ZERO)));
    let mut client = server.connect("/");
    assert_echo(&mut client, "first");
    assert_echo(&mut client, "sent while the handler was busy");
}

#[test]
fn wake_ups_faster_than_the_handler_looks_do_not_keep_its_client_unread() {
    // A wake-up is pending at every look (a process that writes all the time, say):
    // each wait returns at once, and must still read the client first.
    let server = start_handler(
        |b| b,
        echo_twice(|conn| {
            conn.wakeup().wake();
            conn.recv_timeout(Duration::from_secs(3600))
        }),
    );
    let mut client = server.connect("/");
    assert_echo(&mut client, "first");
    assert_echo(&mut client, "sent while wake-ups kept coming");
}

#[test]
fn flush_sees_a_close_that_came_after_the_input_ran_dry() {
    let (seen, seen_rx) = mpsc::channel();
    let server = start_handler(
        |b| b,
        move |conn| {
            let Some(first) = conn.recv() else { return Ok(()) };
            conn.send(first)?;
            let closed = poll_between_other_work(conn, |conn| conn.flush().is_err());
            let _ = seen.send(closed);
            Ok(())
        },
    );
    let mut client = server.connect("/");
    assert_echo(&mut client, "first");
    client.close(None).unwrap();
    // The server's Close reply comes back; then the handler's flush fails.
    match client.read() {
        Ok(WsMessage::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => {}
        Ok(other) => panic!("expected the Close reply, got {other:?}"),
        Err(e) => panic!("no Close reply: {e}"),
    }
    assert_eq!(seen_rx.recv_timeout(PATIENCE), Ok(true), "the handler's flush never saw the Close");
}
