//! `tinywss certs DIR [--name ...]`: the development CA and certificate, and the advice.

mod common;

use std::process::Command;

use common::TempDir;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

#[test]
fn extra_names_go_into_the_certificate_and_bad_ones_are_refused() {
    let dir = TempDir::new("certs");
    let out = Command::new(env!("CARGO_BIN_EXE_tinywss"))
        .args(["certs", dir.0.to_str().unwrap(), "--name", "pi.local", "--name", "192.168.1.20"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("localhost, 127.0.0.1, ::1, pi.local, 192.168.1.20"), "{text}");
    assert!(text.contains("--cacert"), "{text}");
    let der = CertificateDer::pem_file_iter(dir.0.join("server.pem")).unwrap().next().unwrap().unwrap();
    let leaf = tinywss::CertificateInfo::from_der(&der).unwrap();
    assert_eq!(leaf.alt_names(), ["localhost", "pi.local", "127.0.0.1", "::1", "192.168.1.20"]);

    let out = Command::new(env!("CARGO_BIN_EXE_tinywss")).args(["certs", "x", "--name", "a b"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither an IP address nor a host name"), "{out:?}");
}
