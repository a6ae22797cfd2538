//! The connection checker (`examples/check.rs`) against real servers: it passes on a
//! good one and names the failing step for each broken setup the server side detects.

#[path = "../cli/src/check.rs"]
mod check;
#[path = "../cli/src/civil_date.rs"]
mod civil_date;
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use check::{Options, Outcome, Report};
use common::pki::{Ca, Leaf, DAY};
use common::TempDir;
use tinywss::{ClientAuth, Config, ConfigBuilder, Server};

/// A tinywss server, the CA file that trusts it, and the CA itself.
struct Setup {
    server: Server,
    ca_file: PathBuf,
    dir: TempDir,
    ca: Ca,
}

/// A tinywss server with the certificate (and intermediates) `chain` makes from a new CA.
fn serve(chain: impl Fn(&Ca) -> (Leaf, Vec<Ca>), configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Setup {
    common::init_logger();
    let (dir, ca) = (TempDir::new(), Ca::new("Checker Test CA"));
    let (leaf, intermediates) = chain(&ca);
    let (cert, key) = leaf.write(&dir.0, "server", &intermediates.iter().collect::<Vec<_>>());
    let builder = Config::builder().bind("127.0.0.1:0").tls_pem_files(cert, key);
    let server = Server::bind(configure(builder).build().unwrap()).unwrap();
    let _events = common::echo_events(&server);
    Setup { server, ca_file: ca.write(&dir.0.join("ca.pem")), dir, ca }
}

fn good_server(configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Setup {
    serve(|ca| (ca.leaf(&["localhost"]), Vec::new()), configure)
}

fn options(url: String, ca: &Path) -> Options {
    let mut options = Options::new(&url);
    options.ca_files = vec![ca.to_owned()];
    options.timeout = common::PATIENCE;
    options
}

fn wss(addr: SocketAddr, host: &str) -> String {
    format!("wss://{host}:{}/", addr.port())
}

/// The failing step's name and its message.
fn failure(report: &Report) -> (&'static str, String) {
    let step = report.failed_step().unwrap_or_else(|| panic!("expected a failure:\n{report}"));
    (step.name, step.lines[0].clone())
}

/// A bare rustls server that serves any certificate (tinywss refuses expired ones) for one
/// handshake.
fn raw_tls_server(leaf: &Leaf) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let chain = vec![rustls::pki_types::CertificateDer::from(leaf.der.clone())];
    let key = rustls::pki_types::PrivateKeyDer::try_from(pem_key_der(&leaf.key_pem)).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    std::thread::spawn(move || {
        if let Ok((mut tcp, _)) = listener.accept() {
            let mut tls = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            while tls.is_handshaking() && tls.complete_io(&mut tcp).is_ok() {}
        }
    });
    addr
}

/// A plain TCP server for one client: it reads the request head, writes what `answer`
/// makes of its Sec-WebSocket-Key and nothing more, then reads until the client goes.
fn fake_ws_server(answer: impl FnOnce(&str) -> Vec<u8> + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else { return };
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        let key = head.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap_or_default();
        let _ = tcp.write_all(&answer(key));
        // As a WebSocket server does after its Close: the client waits for the TCP close.
        let _ = tcp.shutdown(std::net::Shutdown::Write);
        let _ = std::io::copy(&mut tcp, &mut std::io::sink());
    });
    addr
}

/// A 101 head with the right accept key and `extra` header lines.
fn switching(key: &str, extra: &str) -> Vec<u8> {
    let accept = tinywss::accept_key(key);
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
    .into_bytes()
}

fn check_fake(answer: impl FnOnce(&str) -> Vec<u8> + Send + 'static) -> Report {
    let mut options = Options::new(&format!("ws://127.0.0.1:{}/", fake_ws_server(answer).port()));
    options.timeout = common::PATIENCE;
    check::check(&options)
}

fn pem_key_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).unwrap().secret_pkcs8_der().to_vec()
}

#[test]
fn good_server_passes_every_step() {
    let setup = good_server(|b| b.subprotocols(["chat"]));
    let mut options = options(wss(setup.server.local_addr(), "localhost"), &setup.ca_file);
    options.subprotocols = vec!["chat".into()];
    let report = check::check(&options);
    assert!(report.failed_step().is_none(), "{report}");
    let names: Vec<_> = report.steps.iter().map(|s| s.name).collect();
    let expected =
        ["URL", "DNS", "TCP", "TLS", "certificate", "host name", "HTTP Upgrade", "subprotocol", "ping", "close"];
    assert_eq!(names, expected);
    let text = report.to_string();
    assert!(text.contains("TLSv1_3") && text.contains("ALPN http/1.1"), "{text}");
    assert!(text.contains("#1 CN=localhost") && text.contains("issuer  CN=Checker Test CA"), "{text}");
    assert!(text.contains("(expires in 89 days)"), "{text}");
    assert_eq!(report.step("subprotocol").unwrap().lines[0], "chat");
    assert!(report.step("ping").unwrap().lines[0].starts_with("pong after"), "{text}");
    assert_eq!(report.step("close").unwrap().lines[0], "the server answered the close handshake (1000)");
}

#[test]
fn an_ipv6_address_passes_every_step() {
    // Served on 127.0.0.1 (as every server here) and ::1.
    let setup = serve(|ca| (ca.leaf(&["::1"]), Vec::new()), |b| b.bind("[::1]:0"));
    let url = format!("wss://[::1]:{}/", setup.server.local_addrs()[1].port());
    let report = check::check(&options(url, &setup.ca_file));
    assert!(report.failed_step().is_none(), "{report}");
}

#[test]
fn expired_certificate_fails_at_the_certificate_step() {
    let ca = Ca::new("Checker Test CA");
    let now = SystemTime::now();
    let addr = raw_tls_server(&ca.leaf_valid(&["localhost"], now - 60 * DAY, now - 2 * DAY));
    let dir = TempDir::new();
    let report = check::check(&options(wss(addr, "localhost"), &ca.write(&dir.0.join("ca.pem"))));
    let (step, message) = failure(&report);
    assert_eq!(step, "certificate", "{report}");
    assert!(message.contains("expired on") && message.contains("renew"), "{message}");
    assert!(report.to_string().contains("EXPIRED 2 days ago"), "the chain is shown: {report}");
}

#[test]
fn certificate_not_yet_valid_fails_at_the_certificate_step() {
    let ca = Ca::new("Checker Test CA");
    let now = SystemTime::now();
    let addr = raw_tls_server(&ca.leaf_valid(&["localhost"], now + 2 * DAY, now + 60 * DAY));
    let dir = TempDir::new();
    let report = check::check(&options(wss(addr, "localhost"), &ca.write(&dir.0.join("ca.pem"))));
    let (step, message) = failure(&report);
    assert_eq!(step, "certificate", "{report}");
    assert!(message.contains("not valid before") && message.contains("clock"), "{message}");
}

#[test]
fn wrong_host_name_fails_at_the_host_name_step() {
    let setup = serve(|ca| (ca.leaf(&["example.test"]), Vec::new()), |b| b);
    let report = check::check(&options(wss(setup.server.local_addr(), "localhost"), &setup.ca_file));
    let (step, message) = failure(&report);
    assert_eq!(step, "host name", "{report}");
    assert!(message.contains("does not cover localhost: it covers example.test"), "{message}");
    assert_eq!(report.step("certificate").unwrap().outcome, Outcome::Ok, "the chain itself is fine");
}

#[test]
fn untrusted_ca_fails_at_the_certificate_step() {
    let setup = good_server(|b| b);
    let other = Ca::new("Somebody Else's CA").write(&setup.dir.0.join("other.pem"));
    let report = check::check(&options(wss(setup.server.local_addr(), "localhost"), &other));
    let (step, message) = failure(&report);
    assert_eq!(step, "certificate", "{report}");
    assert!(message.contains("not issued by a trusted CA") && message.contains("--ca"), "{message}");
    assert!(message.contains("the issuer is CN=Checker Test CA"), "{message}");
}

#[test]
fn missing_intermediate_is_named() {
    let setup = serve(|ca| (ca.intermediate("Checker Intermediate").leaf(&["localhost"]), Vec::new()), |b| b);
    let report = check::check(&options(wss(setup.server.local_addr(), "localhost"), &setup.ca_file));
    let (step, message) = failure(&report);
    assert_eq!(step, "certificate", "{report}");
    assert!(message.contains("incomplete chain") && message.contains("fullchain.pem"), "{message}");

    let fixed = serve(
        |ca| {
            let intermediate = ca.intermediate("Checker Intermediate");
            (intermediate.leaf(&["localhost"]), vec![intermediate])
        },
        |b| b,
    );
    let report = check::check(&options(wss(fixed.server.local_addr(), "localhost"), &fixed.ca_file));
    assert!(report.failed_step().is_none(), "{report}");
    assert!(report.to_string().contains("#2 CN=Checker Intermediate"), "{report}");
}

#[test]
fn certificate_expiring_soon_is_a_warning() {
    let now = SystemTime::now();
    let setup = serve(|ca| (ca.leaf_valid(&["localhost"], now - DAY, now + 3 * DAY + 60 * SECOND), vec![]), |b| b);
    let report = check::check(&options(wss(setup.server.local_addr(), "localhost"), &setup.ca_file));
    assert!(report.failed_step().is_none(), "{report}");
    let step = report.step("certificate").unwrap();
    assert_eq!(step.outcome, Outcome::Warning);
    assert!(step.lines[0].contains("expires in 3 days"), "{report}");
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn required_client_certificate_is_named() {
    let clients = Ca::new("Checker Client CA");
    let setup = good_server(|b| b);
    let clients_file = clients.write(&setup.dir.0.join("clients.pem"));
    let (cert, key) = setup.ca.leaf(&["localhost"]).write(&setup.dir.0, "mtls", &[]);
    let config = Config::builder()
        .bind("127.0.0.1:0")
        .tls_pem_files(cert, key)
        .client_auth(clients_file, ClientAuth::Required)
        .build()
        .unwrap();
    let server = Server::bind(config).unwrap();
    let _events = common::echo_events(&server);
    let url = wss(server.local_addr(), "localhost");

    let report = check::check(&options(url.clone(), &setup.ca_file));
    let (step, message) = failure(&report);
    assert_eq!(step, "TLS", "{report}");
    assert!(message.contains("requires a client certificate: pass --cert and --key"), "{message}");

    let mut with_cert = options(url, &setup.ca_file);
    with_cert.client_cert = Some(clients.client("checker").write(&setup.dir.0, "client", &[]));
    let report = check::check(&with_cert);
    assert!(report.failed_step().is_none(), "{report}");
}

#[test]
fn tls_version_mismatch_is_named() {
    let setup = good_server(|b| b.tls13_only(true));
    let mut options = options(wss(setup.server.local_addr(), "localhost"), &setup.ca_file);
    options.tls_version = Some("1.2".into());
    let (step, message) = failure(&check::check(&options));
    assert_eq!(step, "TLS");
    assert!(message.contains("no TLS version in common"), "{message}");
}

#[test]
fn wrong_scheme_either_way_is_named() {
    let setup = good_server(|b| b);
    let url = format!("ws://localhost:{}/", setup.server.local_addr().port());
    let (step, message) = failure(&check::check(&options(url, &setup.ca_file)));
    assert_eq!(step, "HTTP Upgrade");
    assert!(message.contains("the server expects TLS: use wss://"), "{message}");
    assert!(!message.contains("400 Bad Request 400"), "the status is said once: {message}");

    let plain = Server::bind(Config::builder().bind("127.0.0.1:0").plain_ws_behind_proxy(true).build().unwrap());
    let plain = plain.unwrap();
    let (step, message) = failure(&check::check(&options(wss(plain.local_addr(), "localhost"), &setup.ca_file)));
    assert_eq!(step, "TLS");
    assert!(message.contains("may not speak TLS on this port"), "{message}");
}

#[test]
fn closed_port_fails_at_tcp() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = TempDir::new();
    let ca = Ca::new("unused").write(&dir.0.join("ca.pem"));
    let (step, message) = failure(&check::check(&options(format!("wss://127.0.0.1:{port}/"), &ca)));
    assert_eq!(step, "TCP");
    assert!(message.contains("cannot connect") && message.contains("is the server running"), "{message}");
}

#[test]
fn an_unreadable_ca_file_is_named_before_connecting() {
    // Nothing listens on this port: a check that connected first would fail at TCP.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let report = check::check(&options(format!("wss://127.0.0.1:{port}/"), Path::new("/nonexistent.pem")));
    let (step, message) = failure(&report);
    assert_eq!(step, "CA file", "{report}");
    assert!(report.step("TCP").is_none() && report.step("DNS").is_none(), "checked before connecting:\n{report}");
    assert!(
        message.contains("/nonexistent.pem") && message.contains("not found") && message.contains("--ca"),
        "{message}"
    );
    assert!(!message.contains("I/O error"), "{message}");
}

#[test]
fn not_a_websocket_url() {
    let (step, message) = failure(&check::check(&Options::new("https://localhost/")));
    assert_eq!(step, "URL");
    assert!(message.contains("must start with wss://"), "{message}");
}

/// What a fake server answers to a request with this Sec-WebSocket-Key.
type Answer = fn(&str) -> Vec<u8>;

#[test]
fn a_broken_switch_names_what_is_missing() {
    let cases: [(Answer, &str); 5] = [
        (|_| b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".to_vec(), "without Sec-WebSocket-Accept"),
        (|_| b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n".to_vec(), "Sec-WebSocket-Accept is \"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\""),
        (|key| String::from_utf8(switching(key, "")).unwrap().replace("Connection: Upgrade\r\n", "").into_bytes(), "no Connection header, not \"Connection: Upgrade\"; a reverse proxy"),
        (|key| switching(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n"), "extensions that were not offered"),
        (|_| b"HTTP/1.1 302 Found\r\nLocation: wss://elsewhere/\r\nContent-Length: 5\r\n\r\nmoved".to_vec(), "redirects (WebSocket clients do not follow redirects): use the URL it names: HTTP 302 Found (Location: wss://elsewhere/): moved"),
    ];
    for (answer, expected) in cases {
        let report = check_fake(answer);
        let (step, message) = failure(&report);
        assert_eq!(step, "HTTP Upgrade", "{report}");
        assert!(message.contains(expected), "{message}");
    }
    let report = check_fake(|key| switching(key, "Sec-WebSocket-Protocol: chat\r\n"));
    let (step, message) = failure(&report);
    assert_eq!(step, "subprotocol", "{report}");
    assert!(message.contains("chose the subprotocol \"chat\", but none was offered"), "{message}");
}

#[test]
fn frames_right_behind_the_101_are_read() {
    // The server's Close (code 1000) comes in the same write as its 101: the ping step
    // sees the close handshake end, not a silent server.
    let report = check_fake(|key| [switching(key, ""), b"\x88\x02\x03\xe8".to_vec()].concat());
    let (step, message) = failure(&report);
    assert_eq!(step, "ping", "{report}");
    assert!(message.contains("closed normally"), "{message}");
}
