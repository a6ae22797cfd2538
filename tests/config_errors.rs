//! Certificate and key problems fail at start-up, naming the file and the problem.

mod common;

use std::path::Path;

use common::TestCerts;
use tinywss::{CertProblem, ClientAuth, Config, ConfigBuilder, Error, Server};

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

/// Builds on a thread of its own: a read that blocks fails the test instead of hanging it.
fn build_promptly(builder: ConfigBuilder) -> Result<Config, Error> {
    common::within_patience(move || builder.build()).expect("build() still blocked after 10 s")
}

/// The problem `build()` reports, after checking that it names `culprit`.
fn problem_with(builder: ConfigBuilder, culprit: &Path) -> String {
    match build_promptly(builder) {
        Err(Error::TlsFile { path, problem, kind, .. }) => {
            assert_eq!(path, culprit, "{problem}");
            assert_eq!(kind, CertProblem::NotARegularFile, "{problem}");
            problem
        }
        other => panic!("expected a TlsFile error naming {}, got {other:?}", culprit.display()),
    }
}

fn with_files(cert: &Path, key: &Path) -> ConfigBuilder {
    Config::builder().bind("127.0.0.1:0").tls_pem_files(cert, key)
}

#[test]
fn certificate_that_is_a_fifo() {
    let certs = TestCerts::new();
    let fifo = certs.dir.0.join("server-fifo.pem");
    common::mkfifo(&fifo);
    let problem = problem_with(with_files(&fifo, &certs.files.key), &fifo);
    assert!(problem.contains("named pipe (FIFO)") && problem.contains("not a regular file"), "{problem}");
}

#[test]
fn key_that_is_a_fifo() {
    let certs = TestCerts::new();
    let fifo = certs.dir.0.join("server-fifo.key");
    common::mkfifo(&fifo);
    let problem = problem_with(with_files(&certs.files.cert, &fifo), &fifo);
    assert!(problem.contains("named pipe (FIFO)") && problem.contains("private key"), "{problem}");
}

#[test]
fn client_ca_that_is_a_fifo() {
    let certs = TestCerts::new();
    let fifo = certs.dir.0.join("clients.pem");
    common::mkfifo(&fifo);
    let builder = with_files(&certs.files.cert, &certs.files.key).client_auth(&fifo, ClientAuth::Required);
    let problem = problem_with(builder, &fifo);
    assert!(problem.contains("named pipe (FIFO)") && problem.contains("client CA"), "{problem}");
}

#[test]
fn certificate_that_is_a_directory() {
    let certs = TestCerts::new();
    let problem = problem_with(with_files(&certs.dir.0, &certs.files.key), &certs.dir.0);
    assert!(problem.contains("a directory") && problem.contains("not a regular file"), "{problem}");
}

#[test]
fn certificate_that_is_dev_zero() {
    let certs = TestCerts::new();
    let zero = Path::new("/dev/zero");
    let problem = problem_with(with_files(zero, &certs.files.key), zero);
    assert!(problem.contains("character device") && problem.contains("not a regular file"), "{problem}");
}

#[test]
fn certificate_larger_than_any_chain() {
    let certs = TestCerts::new();
    let large = certs.dir.0.join("large.pem");
    std::fs::write(&large, vec![b'A'; 2 << 20]).unwrap();
    let problem = problem_with(with_files(&large, &certs.files.key), &large);
    assert!(problem.contains("2097152 bytes") && problem.contains("larger than"), "{problem}");
}

#[test]
fn allowed_origin_that_no_browser_sends() {
    let certs = TestCerts::new();
    let with_origin = |origin: &str| {
        Config::builder()
            .bind("127.0.0.1:0")
            .tls_pem_files(&certs.files.cert, &certs.files.key)
            .allowed_origins([origin])
            .build()
    };
    // A trailing slash would otherwise refuse every page with 403, silently.
    let err = with_origin("https://example.com/").unwrap_err();
    assert!(matches!(&err, Error::Config(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("\"https://example.com/\"") && text.contains("no path"), "{text}");
    assert!(matches!(with_origin("example.com"), Err(Error::Config(_))));
    assert!(with_origin("https://example.com:8443").is_ok());
}
