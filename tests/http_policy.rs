//! The handshake as policy: routing and statuses, Origin, subprotocols, the
//! authentication hook, static files and the health endpoint, all on the wss:// port.

mod common;

use std::sync::Arc;

use common::{http_exchange, next_event, next_open, raw_tls, start, status_of, TestServer, UPGRADE_REQUEST};
use tinywss::{AppData, CloseReason, Event, Rejection};
use tungstenite::Message as WsMessage;

/// Sends a crafted request on a fresh TLS connection; returns the whole response.
fn exchange(server: &TestServer, request: &str) -> (u16, String) {
    use std::io::Read;
    let mut raw = raw_tls(server.addr, &server.certs.files.ca);
    let head = http_exchange(&mut raw, request.as_bytes());
    let status = status_of(&head);
    let mut body = String::new();
    // Plain responses end with the connection; a 101 leaves it open for frames.
    if status != 101 {
        let _ = raw.read_to_string(&mut body);
    }
    (status, format!("{head}{body}"))
}

fn upgrade_to(path: &str) -> String {
    UPGRADE_REQUEST.replacen("GET / ", &format!("GET {path} "), 1)
}

#[test]
fn statuses_for_crafted_requests() {
    let server = start(|b| b.websocket_path("/ws"));
    assert_eq!(exchange(&server, &upgrade_to("/ws")).0, 101);
    assert_eq!(exchange(&server, &upgrade_to("/elsewhere")).0, 404);
    assert_eq!(exchange(&server, "GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n").0, 404);
    assert_eq!(exchange(&server, &upgrade_to("/ws").replacen("GET", "POST", 1)).0, 405);
    assert_eq!(exchange(&server, "DELETE /ws HTTP/1.1\r\nHost: x\r\n\r\n").0, 405);
    let no_key = upgrade_to("/ws").replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
    assert_eq!(exchange(&server, &no_key).0, 400);
    let no_connection = upgrade_to("/ws").replace("Connection: Upgrade\r\n", "");
    assert_eq!(exchange(&server, &no_connection).0, 400);
    let (status, response) = exchange(&server, &upgrade_to("/ws").replace("Version: 13", "Version: 8"));
    assert_eq!(status, 426);
    assert!(response.contains("Sec-WebSocket-Version: 13\r\n"), "{response}");
    // A browser opening the WebSocket URL as a page gets a short explanation.
    let (status, response) = exchange(&server, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 426);
    assert!(response.contains("this is a WebSocket endpoint"), "{response}");
}

#[test]
fn origin_allowlist() {
    // Written with its default port: the same origin as the browser's `https://good.example`.
    let server = start(|b| b.allowed_origins(["https://good.example:443"]));
    let with_origin = |origin: &str| {
        upgrade_to("/").replace("Host: localhost\r\n", &format!("Host: localhost\r\nOrigin: {origin}\r\n"))
    };
    assert_eq!(exchange(&server, &with_origin("https://good.example")).0, 101);
    assert_eq!(exchange(&server, &with_origin("https://evil.example")).0, 403);
    assert_eq!(exchange(&server, &with_origin("http://good.example")).0, 403);
    assert_eq!(server.handle().stats().origin_refused, 2);
    // Same-origin: the page was served by this very host and port.
    let same = start(|b| b.allow_same_origin(true));
    let host = format!("localhost:{}", same.addr.port());
    let request =
        upgrade_to("/").replace("Host: localhost\r\n", &format!("Host: {host}\r\nOrigin: https://{host}\r\n"));
    assert_eq!(exchange(&same, &request).0, 101);
    let request =
        upgrade_to("/").replace("Host: localhost\r\n", &format!("Host: {host}\r\nOrigin: https://evil:1\r\n"));
    assert_eq!(exchange(&same, &request).0, 403);
}

#[test]
fn no_subprotocol_when_none_match() {
    let server = start(|b| b.subprotocols(["mqtt"]));
    let events = server.echo();
    let request =
        upgrade_to("/").replace("Host: localhost\r\n", "Host: localhost\r\nSec-WebSocket-Protocol: chat, v2\r\n");
    let (status, response) = exchange(&server, &request);
    assert_eq!(status, 101);
    assert!(!response.to_ascii_lowercase().contains("sec-websocket-protocol"), "{response}");
    match next_event(&events) {
        Event::Open { info, .. } => assert_eq!(info.subprotocol, None),
        other => panic!("{other:?}"),
    }
}

#[derive(Debug, PartialEq)]
struct User(String);

#[test]
fn auth_hook_attaches_data_to_every_event_and_can_refuse() {
    let server = start(|b| {
        b.authenticate(|request| match (request.query_param("token"), request.cookie("session")) {
            (Some("secret"), Some(session)) => Ok(Some(Arc::new(User(session.to_owned())) as AppData)),
            _ => Err(Rejection::new(401, "who are you?")),
        })
    });
    let events = server.echo();

    let (status, response) = exchange(&server, &upgrade_to("/?token=wrong"));
    assert_eq!(status, 401);
    assert!(response.ends_with("401 who are you?\n"), "{response}");
    assert_eq!(server.handle().stats().auth_refused, 1);

    let mut request = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "wss://localhost:{}/?token=secret",
        server.addr.port()
    ))
    .unwrap();
    request.headers_mut().insert("Cookie", "theme=dark; session=alice".parse().unwrap());
    let tcp = std::net::TcpStream::connect(server.addr).unwrap();
    let tls = rustls::ClientConnection::new(
        common::client_tls(&server.certs.files.ca),
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let (mut client, _) = tungstenite::client::client(request, rustls::StreamOwned::new(tls, tcp)).unwrap();
    let user = |data: Option<AppData>| data.and_then(|d| d.downcast_ref::<User>().map(|u| u.0.clone()));
    match next_event(&events) {
        Event::Open { info, .. } => assert_eq!(user(info.data), Some("alice".into())),
        other => panic!("{other:?}"),
    }
    client.send(WsMessage::text("hi")).unwrap();
    match next_event(&events) {
        Event::Message { data, .. } => assert_eq!(user(data), Some("alice".into())),
        other => panic!("{other:?}"),
    }
    client.close(None).unwrap();
    while client.read().is_ok() {}
    match next_event(&events) {
        Event::Close { data, reason: CloseReason::Client { .. }, .. } => assert_eq!(user(data), Some("alice".into())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn static_files_with_content_types_and_no_way_out() {
    let site = common::TempDir::new();
    let root = site.0.join("www");
    std::fs::create_dir_all(root.join("js")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>hello</h1>").unwrap();
    std::fs::write(root.join("js/app.js"), "console.log(1)").unwrap();
    std::fs::write(site.0.join("secret.txt"), "TOP SECRET").unwrap();
    std::os::unix::fs::symlink(site.0.join("secret.txt"), root.join("link.txt")).unwrap();
    let server = start(|b| b.static_dir(&root).websocket_path("/ws"));

    let get = |path: &str| exchange(&server, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
    let (status, response) = get("/");
    assert_eq!(status, 200);
    assert!(response.contains("Content-Type: text/html; charset=utf-8\r\n") && response.ends_with("<h1>hello</h1>"));
    let (status, response) = get("/js/app.js");
    assert_eq!(status, 200);
    assert!(response.contains("Content-Type: text/javascript; charset=utf-8\r\n"), "{response}");
    let (status, response) = exchange(&server, "HEAD /js/app.js HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert!(response.contains("Content-Length: 14\r\n") && response.ends_with("\r\n\r\n"), "{response}");

    for attack in [
        "/../secret.txt",
        "/js/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/..\\secret.txt",
        "/%5c..%5csecret.txt",
        "//etc/passwd",
        "/link.txt",
        "/%00index.html",
    ] {
        let (status, response) = get(attack);
        assert_eq!(status, 404, "{attack}: {response}");
        assert!(!response.contains("TOP SECRET"), "{attack} leaked the secret");
    }
    // An absolute path in the request line is not even a path here.
    let (status, _) =
        exchange(&server, &format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", site.0.join("secret.txt").display()));
    assert_eq!(status, 404);
}

#[test]
fn health_endpoint_counts_open_websockets() {
    let server = start(|b| b);
    let events = server.echo();
    let clients: Vec<_> = (0..3).map(|_| server.connect("/")).collect();
    for _ in &clients {
        next_open(&events);
    }
    let (status, response) = exchange(&server, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert!(response.contains("Content-Type: application/json\r\n"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    assert!(body.contains("\"status\":\"ok\"") && body.contains("\"websockets\":3"), "{body}");
    drop(clients);
    let handle = server.handle();
    common::eventually("the clients are gone", || handle.stats().websockets == 0);
    let (_, response) = exchange(&server, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.contains("\"websockets\":0"), "{response}");
}

/// An Upgrade request for `/` with these `Host` and `Origin` headers.
fn upgrade_from(host: &str, origin: &str) -> String {
    upgrade_to("/").replace("Host: localhost\r\n", &format!("Host: {host}\r\nOrigin: {origin}\r\n"))
}

#[test]
fn same_origin_means_same_scheme_host_and_port() {
    let server = start(|b| b.allow_same_origin(true));
    let events = server.echo();
    let mut good = server.connect("/");
    next_open(&events);
    let port = server.addr.port();
    let host = format!("localhost:{port}");

    // A page on plain http (rewritable by anyone on the path), another scheme, no
    // scheme at all, another port, a malformed or opaque origin: none is this server's
    // https page.
    let refused = [
        format!("http://localhost:{port}"),
        format!("ftp://localhost:{port}"),
        format!("localhost:{port}"),
        format!("//localhost:{port}"),
        format!("https://localhost:{}", port.wrapping_add(1)),
        "https://localhost".to_owned(),
        format!("https://user@localhost:{port}"),
        format!("https://localhost:{port}/"),
        format!("https://localhost:+{port}"),
        "null".to_owned(),
        String::new(),
    ];
    let wrong: Vec<_> = refused
        .iter()
        .map(|origin| (origin, exchange(&server, &upgrade_from(&host, origin)).0))
        .filter(|(_, status)| *status != 403)
        .collect();
    assert!(wrong.is_empty(), "with Host {host}, these origins were not refused: {wrong:?}");
    assert_eq!(server.handle().stats().origin_refused, refused.len() as u64);

    let accepted = [
        (host.as_str(), format!("https://{host}")),
        (host.as_str(), format!("HTTPS://LocalHost:{port}")),
        // The default port, written or not, on either side.
        ("example.com", "https://example.com".to_owned()),
        ("example.com:443", "https://example.com".to_owned()),
        ("Example.COM", "https://example.com:443".to_owned()),
        ("[::1]:8443", "https://[::1]:8443".to_owned()),
    ];
    let wrong: Vec<_> = accepted
        .iter()
        .map(|(host, origin)| (host, origin, exchange(&server, &upgrade_from(host, origin)).0))
        .filter(|(_, _, status)| *status != 101)
        .collect();
    assert!(wrong.is_empty(), "these same origins were refused (host, origin, status): {wrong:?}");
    common::assert_echo(&mut good, "unaffected by the refused pages");
}

/// A site with hidden files and folders next to a page.
fn site_with_hidden_files() -> (common::TempDir, std::path::PathBuf) {
    let site = common::TempDir::new();
    let root = site.0.join("www");
    for dir in [".git", "sub/.hidden", ".well-known"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("index.html"), "<h1>hello</h1>").unwrap();
    std::fs::write(root.join(".env"), "DB_PASSWORD=HIDDEN-s3cret").unwrap();
    std::fs::write(root.join(".git/config"), "[remote] HIDDEN-s3cret").unwrap();
    std::fs::write(root.join(".git/index.html"), "HIDDEN-s3cret").unwrap();
    std::fs::write(root.join("sub/.hidden/x"), "HIDDEN-s3cret").unwrap();
    std::fs::write(root.join("sub/.profile"), "HIDDEN-s3cret").unwrap();
    std::fs::write(root.join(".well-known/security.txt"), "Contact: HIDDEN-s3cret").unwrap();
    (site, root)
}

/// Paths to the hidden files of [`site_with_hidden_files`], plain and percent-encoded.
const HIDDEN: [&str; 8] = [
    "/.env",
    "/%2eenv",
    "/.git/config",
    "/.git/",
    "/sub/.hidden/x",
    "/sub/%2Ehidden/x",
    "/sub/.profile",
    "/.well-known/security.txt",
];

#[test]
fn hidden_files_are_not_served() {
    let (_site, root) = site_with_hidden_files();
    let server = start(|b| b.static_dir(&root).websocket_path("/ws"));
    let events = server.echo();
    let mut good = server.connect("/ws");
    next_open(&events);
    let get = |path: &str| exchange(&server, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
    let served: Vec<_> =
        HIDDEN.iter().map(|path| (path, get(path))).filter(|(_, (status, _))| *status != 404).collect();
    assert!(served.is_empty(), "hidden files were served: {served:?}");
    assert_eq!(get("/").0, 200, "the visible page is still served");
    common::assert_echo(&mut good, "unaffected by the hidden files");
}

#[test]
fn hidden_files_are_served_when_opted_in() {
    let (_site, root) = site_with_hidden_files();
    let server = start(|b| b.static_dir(&root).websocket_path("/ws").serve_hidden_files(true));
    let events = server.echo();
    let mut good = server.connect("/ws");
    next_open(&events);
    let get = |path: &str| exchange(&server, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
    for path in HIDDEN {
        let (status, response) = get(path);
        assert_eq!(status, 200, "{path}: {response}");
        assert!(response.contains("HIDDEN-s3cret"), "{path}: {response}");
    }
    // The opt-in is for hidden names, not for ways out of the directory.
    assert_eq!(get("/../www/index.html").0, 404);
    assert_eq!(get("/sub/.hidden/../../index.html").0, 404);
    common::assert_echo(&mut good, "unaffected by the hidden files");
}
