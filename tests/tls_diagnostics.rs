//! Every certificate diagnostic, each triggered by a bad certificate or key made here:
//! errors stop `build()` and name the file and the problem; warnings go to the log.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::logs;
use common::pki::{Ca, DAY};
use common::TempDir;
use log::Level;
use tinywss::{CertProblem, Config, ConfigBuilder, Error};

fn builder(cert: &Path, key: &Path) -> ConfigBuilder {
    logs::capture();
    Config::builder().bind("127.0.0.1:0").tls_pem_files(cert, key)
}

fn error_text(result: Result<Config, Error>) -> String {
    result.map(|_| ()).unwrap_err().to_string()
}

/// The kind of a certificate file error, for code to match on, and its text, for people.
fn file_error(result: Result<Config, Error>) -> (CertProblem, String) {
    let error = result.map(|_| ()).unwrap_err();
    match &error {
        Error::TlsFile { kind, .. } => (*kind, error.to_string()),
        other => panic!("expected a TlsFile error, got {other:?}"),
    }
}

fn warnings_for(cert: &Path) -> Vec<String> {
    logs::matching(Level::Warn, &cert.display().to_string())
}

#[test]
fn key_file_missing() {
    let dir = TempDir::new();
    let (cert, _) = Ca::new("Test CA").leaf(&["localhost"]).write(&dir.0, "server", &[]);
    let missing = dir.0.join("missing.key");
    let (kind, text) = file_error(builder(&cert, &missing).build());
    assert_eq!(kind, CertProblem::NotFound);
    assert!(text.contains("missing.key") && text.contains("private key file not found"), "{text}");
}

#[test]
fn certificate_file_unreadable() {
    let dir = TempDir::new();
    let (_, key) = Ca::new("Test CA").leaf(&["localhost"]).write(&dir.0, "server", &[]);
    // A directory in place of the file: unreadable even for root (permissions are not).
    let not_a_file = dir.0.join("cert-dir");
    std::fs::create_dir(&not_a_file).unwrap();
    let (kind, text) = file_error(builder(&not_a_file, &key).build());
    assert_eq!(kind, CertProblem::NotARegularFile);
    assert!(text.contains("cert-dir") && text.contains("cannot read the certificate file"), "{text}");
}

#[test]
fn damaged_certificate() {
    let dir = TempDir::new();
    let (_, key) = Ca::new("Test CA").leaf(&["localhost"]).write(&dir.0, "server", &[]);
    let cert = dir.0.join("damaged.pem");
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n").unwrap();
    let (kind, text) = file_error(builder(&cert, &key).build());
    assert_eq!(kind, CertProblem::InvalidCertificate);
    assert!(text.contains("damaged.pem") && text.contains("not a valid X.509 certificate"), "{text}");
}

#[test]
fn unsupported_key_type() {
    let dir = TempDir::new();
    let (cert, _) = Ca::new("Test CA").leaf(&["localhost"]).write(&dir.0, "server", &[]);
    // An Ed448 key in PKCS#8 (OID 1.3.101.113), as `openssl genpkey -algorithm ed448` makes.
    let mut der = vec![0x30, 0x47, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x71, 0x04, 0x3b, 0x04, 0x39];
    der.extend([7u8; 57]);
    let key = dir.0.join("ed448.key");
    std::fs::write(&key, format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", base64(&der)))
        .unwrap();
    let (kind, text) = file_error(builder(&cert, &key).build());
    assert_eq!(kind, CertProblem::UnsupportedKey);
    assert!(text.contains("ed448.key") && text.contains("unsupported private key"), "{text}");
    assert!(text.contains("ECDSA P-256"), "the message says what to use instead: {text}");
}

#[test]
fn key_of_another_certificate() {
    let (dir, ca) = (TempDir::new(), Ca::new("Test CA"));
    let (cert, _) = ca.leaf(&["localhost"]).write(&dir.0, "one", &[]);
    let (_, other_key) = ca.leaf(&["localhost"]).write(&dir.0, "two", &[]);
    let text = error_text(builder(&cert, &other_key).build());
    assert!(text.contains("two.key") && text.contains("does not belong to the certificate in"), "{text}");
    assert!(text.contains("one.pem"), "{text}");
}

#[test]
fn expired_certificate() {
    let dir = TempDir::new();
    let now = SystemTime::now();
    let leaf = Ca::new("Test CA").leaf_valid(&["localhost"], now - 100 * DAY, now - 10 * DAY);
    let (cert, key) = leaf.write(&dir.0, "expired", &[]);
    let result = builder(&cert, &key).build();
    assert!(matches!(&result, Err(Error::TlsFile { path, .. }) if path == &cert), "{result:?}");
    let (kind, text) = file_error(result);
    assert_eq!(kind, CertProblem::Expired);
    assert!(text.contains("expired.pem") && text.contains("the certificate for localhost expired on"), "{text}");
    assert!(text.contains("(10 days ago)") && text.contains("renew it"), "{text}");
}

#[test]
fn certificate_not_yet_valid() {
    let dir = TempDir::new();
    let now = SystemTime::now();
    let leaf = Ca::new("Test CA").leaf_valid(&["localhost"], now + 3 * DAY + Duration::from_secs(60), now + 90 * DAY);
    let (cert, key) = leaf.write(&dir.0, "future", &[]);
    let (kind, text) = file_error(builder(&cert, &key).build());
    assert_eq!(kind, CertProblem::NotYetValid);
    assert!(text.contains("future.pem") && text.contains("not valid yet"), "{text}");
    assert!(text.contains("(in 3 days)") && text.contains("check this machine's clock"), "{text}");
}

#[test]
fn warns_when_expiry_is_near() {
    let (dir, ca) = (TempDir::new(), Ca::new("Test CA"));
    let now = SystemTime::now();
    let leaf = ca.leaf_valid(&["localhost"], now - DAY, now + 5 * DAY + Duration::from_secs(60));
    let (cert, key) = leaf.write(&dir.0, "soon", &[&ca]);
    builder(&cert, &key).build().unwrap();
    let warnings = warnings_for(&cert);
    assert!(warnings.iter().any(|w| w.contains("expires on") && w.contains("(in 5 days)")), "{warnings:?}");

    // The window is configurable: 3 days ahead, a 5-day certificate is fine.
    let (cert, key) = leaf.write(&dir.0, "soon-ok", &[&ca]);
    builder(&cert, &key).cert_expiry_warning(3 * DAY).build().unwrap();
    assert_eq!(warnings_for(&cert), Vec::<String>::new());
}

#[test]
fn warns_when_host_name_is_not_covered() {
    let (dir, ca) = (TempDir::new(), Ca::new("Test CA"));
    let (cert, key) = ca.leaf(&["localhost", "127.0.0.1"]).write(&dir.0, "local", &[&ca]);
    builder(&cert, &key).public_host_name("ws.example.org").build().unwrap();
    let warnings = warnings_for(&cert);
    assert!(
        warnings.iter().any(|w| w.contains("does not cover the host name ws.example.org")
            && w.contains("it covers localhost, 127.0.0.1")),
        "{warnings:?}"
    );

    let (cert, key) = ca.leaf(&["localhost", "*.example.org"]).write(&dir.0, "wildcard", &[&ca]);
    builder(&cert, &key).public_host_name("ws.example.org").build().unwrap();
    assert_eq!(warnings_for(&cert), Vec::<String>::new(), "a wildcard name covers ws.example.org");
}

#[test]
fn warns_when_chain_is_incomplete() {
    let (dir, root) = (TempDir::new(), Ca::new("Test Root"));
    let intermediate = root.intermediate("Test Intermediate R3");
    let leaf = intermediate.leaf(&["localhost"]);
    let (cert, key) = leaf.write(&dir.0, "leaf-only", &[]);
    builder(&cert, &key).build().unwrap();
    let warnings = warnings_for(&cert);
    assert!(
        warnings.iter().any(|w| w.contains("chain is incomplete")
            && w.contains("issued by CN=Test Intermediate R3")
            && w.contains("fullchain.pem")),
        "{warnings:?}"
    );

    let (cert, key) = leaf.write(&dir.0, "full-chain", &[&intermediate]);
    builder(&cert, &key).build().unwrap();
    assert_eq!(warnings_for(&cert), Vec::<String>::new());

    let (cert, key) = leaf.write(&dir.0, "wrong-order", &[&root]);
    builder(&cert, &key).build().unwrap();
    let warnings = warnings_for(&cert);
    assert!(warnings.iter().any(|w| w.contains("is not the issuer of certificate #1")), "{warnings:?}");
}

#[test]
fn a_good_pair_has_no_warning() {
    let (dir, ca) = (TempDir::new(), Ca::new("Test CA"));
    let (cert, key) = ca.leaf(&["localhost"]).write(&dir.0, "good", &[&ca]);
    builder(&cert, &key).public_host_name("localhost").build().unwrap();
    assert_eq!(warnings_for(&cert), Vec::<String>::new());
    let served = logs::matching(Level::Info, &cert.display().to_string());
    assert!(served.iter().any(|l| l.starts_with("serving") && l.contains("valid until")), "{served:?}");
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            let c = if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] } else { b'=' };
            out.push(char::from(c));
        }
    }
    out
}

#[test]
fn warns_that_a_development_certificate_is_in_use() {
    let dev = common::TestCerts::new();
    builder(&dev.files.cert, &dev.files.key).build().unwrap();
    let warnings = warnings_for(&dev.files.cert);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("development certificate") && warnings[0].contains("never in production"));
}
