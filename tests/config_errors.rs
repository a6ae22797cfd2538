//! Certificate and key problems fail at start-up, naming the file and the problem.

mod common;

use std::path::Path;

use common::TestCerts;
use tinywss::{CertProblem, Config, Error, Server};

fn build(cert: &Path, key: &Path) -> Result<Config, Error> {
    Config::builder().bind("127.0.0.1:0").tls_pem_files(cert, key).build()
}

#[test]
fn key_that_does_not_match_the_certificate() {
    let (a, b) = (TestCerts::new(), TestCerts::new());
    match build(&a.files.cert, &b.files.key) {
        Err(Error::KeyMismatch { cert, key }) => {
            assert_eq!((cert.as_path(), key.as_path()), (a.files.cert.as_path(), b.files.key.as_path()));
            let text = Error::KeyMismatch { cert, key }.to_string();
            assert!(text.contains(&*b.files.key.to_string_lossy()), "{text}");
            assert!(text.contains("does not belong to the certificate"), "{text}");
        }
        other => panic!("expected KeyMismatch, got {other:?}"),
    }
}

#[test]
fn missing_file() {
    let certs = TestCerts::new();
    let missing = certs.dir.0.join("nope.pem");
    let err = build(&missing, &certs.files.key).unwrap_err();
    assert!(matches!(&err, Error::TlsFile { path, .. } if path == &missing), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("nope.pem") && text.contains("not found"), "{text}");
    assert!(matches!(&err, Error::TlsFile { kind: CertProblem::NotFound, .. }), "{err:?}");
    let source = std::error::Error::source(&err).expect("the operating system's error is the source");
    assert!(source.to_string().contains("No such file"), "{source}");
}

#[test]
fn pem_without_certificate() {
    let certs = TestCerts::new();
    // A classic mix-up: the key file given as the certificate.
    let err = build(&certs.files.key, &certs.files.key).unwrap_err();
    assert!(matches!(&err, Error::TlsFile { kind: CertProblem::NoCertificate, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("server.key") && text.contains("no certificate"), "{text}");
}

#[test]
fn file_without_private_key() {
    let certs = TestCerts::new();
    let err = build(&certs.files.cert, &certs.files.cert).unwrap_err();
    assert!(matches!(&err, Error::TlsFile { kind: CertProblem::NoPrivateKey, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("server.pem") && text.contains("no private key"), "{text}");
}

#[test]
fn no_tls_identity_at_all() {
    let err = Config::builder().build().unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[test]
fn address_in_use() {
    let certs = TestCerts::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let config = Config::builder().bind(&addr).tls_pem_files(&certs.files.cert, &certs.files.key).build().unwrap();
    match Server::bind(config) {
        Err(Error::Bind { addr: a, .. }) => assert_eq!(a, addr),
        other => panic!("expected Bind error, got {other:?}"),
    }
}

#[test]
fn zero_message_limits_are_refused() {
    let certs = TestCerts::new();
    let builder = || Config::builder().tls_pem_files(&certs.files.cert, &certs.files.key);
    assert!(matches!(builder().max_message_size(0).build(), Err(Error::Config(_))));
    assert!(matches!(builder().max_frame_size(0).build(), Err(Error::Config(_))));
}
