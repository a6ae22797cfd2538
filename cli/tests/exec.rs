//! `tinywss serve --exec`: one process per connection, driven by real clients.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, leave, read_close, read_env, read_text, Tinywss, PATIENCE};
use tungstenite::Message;

/// A line in, a line out; `ready` first, so the test knows the process runs.
const ECHO: &str = "echo ready; while read line; do echo \"got $line\"; done";

#[test]
fn a_line_in_a_line_out_and_the_process_is_reaped_when_the_client_leaves() {
    let server = Tinywss::start(&["--exec", "sh", "-c", ECHO]);
    let baseline = server.fds_and_threads();
    let mut client = server.connect("/");
    assert_eq!(read_text(&mut client), "ready");
    client.send(Message::text("hello")).unwrap();
    assert_eq!(read_text(&mut client), "got hello");
    assert_eq!(server.children().len(), 1, "{:?}", server.children());
    let busy = server.fds_and_threads();
    leave(client);
    // Gone, not a zombie: the server waited for it.
    eventually("the process is reaped", || server.children().is_empty());
    // Its pipes, its socket and its threads (the connection's, stdin's, stdout's) too.
    eventually("fds and threads back to the baseline", || server.fds_and_threads() == baseline);
    eprintln!("fds and threads: {baseline:?} idle, {busy:?} with one client and its process");
}

#[test]
fn a_process_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let server = Tinywss::start(&[
        "--grace",
        "1",
        "--exec",
        "sh",
        "-c",
        "trap '' TERM; echo ready; exec 0<&-; while :; do sleep 1; done",
    ]);
    let mut client = server.connect("/");
    assert_eq!(read_text(&mut client), "ready");
    let started = Instant::now();
    leave(client);
    server.wait_for_log("SIGKILL");
    eventually("the process is reaped", || server.children().is_empty());
    assert!(started.elapsed() >= Duration::from_secs(1), "killed before the grace period: {:?}", started.elapsed());
}

#[test]
fn the_client_gets_a_close_when_the_process_exits() {
    let server = Tinywss::start(&["--exec", "sh", "-c", "echo one; echo two; exit 3"]);
    let mut client = server.connect("/");
    assert_eq!(read_text(&mut client), "one");
    assert_eq!(read_text(&mut client), "two");
    assert_eq!(read_close(&mut client), (1000, "process ended (exit 3)".into()));
    eventually("the process is reaped", || server.children().is_empty());
}

#[test]
fn binary_chunks_pass_as_they_are() {
    let server = Tinywss::start(&["--binary", "--exec", "cat"]);
    let mut client = server.connect("/");
    client.send(Message::binary(vec![0u8, 1, 2, 255])).unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        match client.read().unwrap() {
            Message::Binary(data) => got.extend_from_slice(&data),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, [0, 1, 2, 255]);
}

#[test]
fn a_process_that_does_not_read_holds_its_client_back_and_no_one_else() {
    // `?stall`: the process never reads its stdin; `/`: it echoes.
    let script = "if [ \"$QUERY_STRING\" = stall ]; then echo ready; exec sleep 600; fi; ".to_owned() + ECHO;
    let server = Tinywss::start(&["--exec", "sh", "-c", &script]);
    let mut stalled = server.connect("/?stall");
    assert_eq!(read_text(&mut stalled), "ready");
    let mut neighbour = server.connect("/");
    assert_eq!(read_text(&mut neighbour), "ready");
    let rss_before = server.rss_kib();

    // Writes 64 KiB messages, on a thread of its own, until the socket stops taking them.
    let sent = Arc::new(AtomicUsize::new(0));
    let progress = Arc::clone(&sent);
    std::thread::spawn(move || {
        let chunk = "x".repeat(64 << 10);
        while progress.load(Ordering::SeqCst) < 256 << 20 && stalled.send(Message::text(chunk.clone())).is_ok() {
            progress.fetch_add(chunk.len(), Ordering::SeqCst);
        }
    });
    // Held back: nothing more goes through for a whole second.
    let deadline = Instant::now() + PATIENCE;
    let mut last = usize::MAX;
    while sent.load(Ordering::SeqCst) != last {
        assert!(Instant::now() < deadline, "the client was never held back: {} MiB sent", last >> 20);
        last = sent.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(1));
    }
    let rss_after = server.rss_kib();
    eprintln!("held back after {} KiB; server RSS {rss_before} -> {rss_after} KiB", last >> 10);
    assert!(last < 64 << 20, "the client wrote {} MiB before being held back", last >> 20);
    assert!(rss_after < rss_before + 16 * 1024, "server RSS grew from {rss_before} to {rss_after} KiB");

    // The neighbour's process still answers, promptly.
    let started = Instant::now();
    neighbour.send(Message::text("still there?")).unwrap();
    assert_eq!(read_text(&mut neighbour), "got still there?");
    assert!(started.elapsed() < PATIENCE / 4, "neighbour answered after {:?}", started.elapsed());
    eprintln!("the neighbour's round trip meanwhile: {:?}", started.elapsed());
}

#[test]
fn max_forks_refuses_the_next_client_with_503_until_a_process_ends() {
    let server = Tinywss::start(&["--max-forks", "1", "--exec", "sh", "-c", ECHO]);
    let mut first = server.connect("/");
    assert_eq!(read_text(&mut first), "ready");
    match server.try_connect("/", &[], None) {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
            assert!(body.contains("--max-forks"), "{body}");
        }
        Ok(_) => panic!("a second process was started"),
        Err(e) => panic!("not refused with 503: {e}"),
    }
    assert_eq!(server.children().len(), 1);
    // The first client is unharmed.
    first.send(Message::text("a")).unwrap();
    assert_eq!(read_text(&mut first), "got a");
    leave(first);
    eventually("a slot frees once the process is reaped", || match server.try_connect("/", &[], None) {
        Ok(mut client) => read_text(&mut client) == "ready",
        Err(_) => false,
    });
}

#[test]
fn the_environment_is_as_documented() {
    let server = Tinywss::start(&["--exec", "sh", "-c", "env; echo END; read wait"]);
    let mut client = server
        .try_connect("/sensor/kitchen?unit=c&n=2", &[("X-Sensor-Key", "k1"), ("Proxy", "http://evil:1")], None)
        .unwrap();
    let local_port = client.get_ref().sock.local_addr().unwrap().port();
    let env = read_env(&mut client);
    let var = |name: &str| env.get(name).map(String::as_str).unwrap_or_else(|| panic!("no {name} in {env:?}"));
    assert_eq!(var("REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(var("REMOTE_PORT"), local_port.to_string());
    assert_eq!(var("PATH_INFO"), "/sensor/kitchen");
    assert_eq!(var("QUERY_STRING"), "unit=c&n=2");
    assert_eq!(var("REQUEST_URI"), "/sensor/kitchen?unit=c&n=2");
    assert_eq!(var("REQUEST_METHOD"), "GET");
    assert_eq!(var("HTTPS"), "on");
    assert_eq!(var("SERVER_NAME"), "localhost");
    assert_eq!(var("SERVER_PORT"), server.addr.port().to_string());
    assert_eq!(var("HTTP_X_SENSOR_KEY"), "k1");
    assert_eq!(var("HTTP_UPGRADE"), "websocket");
    assert!(var("TINYWSS_CONNECTION_ID").parse::<u64>().is_ok());
    assert!(var("SERVER_SOFTWARE").starts_with("tinywss/"));
    assert!(!env.contains_key("HTTP_PROXY"), "a Proxy header must not become HTTP_PROXY");
    assert!(!env.contains_key("SSL_CLIENT_S_DN"), "no client certificate was given");
    // The server's own environment is passed on (PATH, to find commands).
    assert!(env.contains_key("PATH"));
}

#[test]
fn a_client_that_leaves_while_its_process_does_not_read_is_noticed() {
    let server = Tinywss::start(&["--exec", "sh", "-c", "echo ready; exec sleep 600"]);
    let mut client = server.connect("/");
    assert_eq!(read_text(&mut client), "ready");
    // More than the pipe (64 KiB) and the channel (16 messages) hold, so the handler waits
    // on the process, but no more than it may take from the client meanwhile (64 KiB).
    for _ in 0..22 {
        client.send(Message::text("x".repeat(16 << 10))).unwrap();
    }
    server.wait_for_log("the process is not reading");
    let left = Instant::now();
    leave(client);
    eventually("the process is stopped and reaped", || server.children().is_empty());
    eprintln!("process reaped {:?} after its client left", left.elapsed());
}

#[test]
fn a_process_that_writes_all_the_time_still_hears_its_client() {
    // Every line the process writes wakes the connection's handler: its client must
    // still be read between the wake-ups.
    let server = Tinywss::start(&["--exec", "sh", "-c", "while :; do echo tick; done & exec cat"]);
    let mut client = server.connect("/");
    assert_eq!(read_text(&mut client), "tick");
    client.send(Message::text("hello")).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut ticks = 0u64;
    loop {
        match read_text(&mut client).as_str() {
            "hello" => break,
            "tick" => ticks += 1,
            other => panic!("neither a tick nor the echo: {other:?}"),
        }
        assert!(Instant::now() < deadline, "no echo after {ticks} ticks");
    }
    eprintln!("the echo came after {ticks} ticks");
}
