//! rediss:// with a password and a private CA, against Debian's redis-server built
//! with TLS; a wrong password is a clear error at start that never shows the password.
#![cfg(feature = "redis")]

mod common;

use common::redis::{await_room_size, free_port, read_text, Node, RedisServer};
use common::{logs, TestCerts};

/// A Redis that speaks TLS only to clients (its plain port is the tests' own), with a
/// password, and its certificate for `localhost` from a fresh CA.
fn tls_redis(certs: &TestCerts, password: &str) -> (RedisServer, u16) {
    let tls_port = free_port().to_string();
    let files = &certs.files;
    let redis = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        files.cert.to_str().unwrap(),
        "--tls-key-file",
        files.key.to_str().unwrap(),
        "--tls-ca-cert-file",
        files.ca.to_str().unwrap(),
        "--tls-auth-clients",
        "no",
        "--requirepass",
        password,
    ]);
    (redis, tls_port.parse().unwrap())
}

#[test]
fn rediss_with_a_password_and_a_private_ca() {
    logs::capture_at(log::LevelFilter::Trace);
    let certs = TestCerts::new();
    let (_redis, port) = tls_redis(&certs, "s3cret-pw");
    let url = format!("rediss://:s3cret-pw@localhost:{port}/");
    let a = Node::start(&url, "tls-a", |b| b.redis_ca_file(&certs.files.ca));
    let b = Node::start(&url, "tls-b", |b| b.redis_ca_file(&certs.files.ca));
    let (_on_a, _) = a.member(&["room"]);
    let (mut on_b, _) = b.member(&["room"]);
    await_room_size(&[&a, &b], "room", 2);
    a.handle().publish("room", "over TLS").unwrap();
    assert_eq!(read_text(&mut on_b), "over TLS");
    assert!(logs::containing("s3cret-pw").is_empty(), "the password reached the log");

    // A wrong password: refused at start, and named without the password.
    let certs_files = &certs.files;
    let wrong = format!("rediss://:not-the-pw@localhost:{port}/");
    let config = tinywss::Config::builder()
        .bind("127.0.0.1:0")
        .tls_pem_files(&certs_files.cert, &certs_files.key)
        .redis(&wrong)
        .redis_ca_file(&certs_files.ca)
        .build()
        .unwrap();
    let error = tinywss::Server::bind(config).unwrap_err().to_string();
    assert!(error.contains(&format!("rediss://localhost:{port}")), "{error}");
    assert!(!error.contains("not-the-pw"), "{error}");
    assert!(logs::containing("not-the-pw").is_empty(), "the password reached the log");

    // A Redis whose certificate no trusted CA signed: refused, saying so.
    let config = tinywss::Config::builder()
        .bind("127.0.0.1:0")
        .tls_pem_files(&certs_files.cert, &certs_files.key)
        .redis(&url)
        .redis_ca_file(&TestCerts::new().files.ca)
        .build()
        .unwrap();
    let error = tinywss::Server::bind(config).unwrap_err().to_string();
    assert!(error.contains("certificate"), "{error}");
}
