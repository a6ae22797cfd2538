//! `ConfigBuilder::development_certificate`: a local CA and a certificate for this
//! machine's names, made on first use in the folder given, reused afterwards, announced
//! by one warning that names the CA; never a panic when the folder cannot be written.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::logs;
use common::TempDir;
use tinywss::{CertProblem, Config, DevelopmentCertificate, Error, Server};

fn serve_from(dir: &Path, bind: &str) -> Result<Server, Error> {
    Server::bind(Config::builder().bind(bind).development_certificate(dir).build()?)
}

/// Echoes one message over wss:// to `addr`, asking for `name`, trusting only `ca`.
fn echo_as(server: &Server, name: &str, ca: &Path) {
    let addr: SocketAddr = server.local_addr();
    let mut client = common::connect_with(addr, common::client_tls(ca), name, "/")
        .unwrap_or_else(|e| panic!("a client trusting {} cannot reach {name}: {e}", ca.display()));
    common::assert_echo(&mut client, "hello");
}

#[test]
fn made_on_first_use_for_every_local_name_then_reused() {
    logs::capture();
    let root = TempDir::new();
    let dir = root.0.join("certs");
    let server = serve_from(&dir, "127.0.0.1:0").unwrap();
    let _events = common::echo_events(&server);
    let files = DevelopmentCertificate::in_dir(&dir);
    let mode = std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the private key must be readable by its owner only");
    echo_as(&server, "localhost", &files.ca);
    echo_as(&server, "127.0.0.1", &files.ca);
    drop(server);

    let server = serve_from(&dir, "[::1]:0").unwrap();
    let _events = common::echo_events(&server);
    echo_as(&server, "::1", &files.ca);
    let ca_before = std::fs::read(&files.ca).unwrap();
    drop(server);
    let _again = serve_from(&dir, "127.0.0.1:0").unwrap();
    assert_eq!(std::fs::read(&files.ca).unwrap(), ca_before, "a second start must reuse the CA clients trust");
}

#[test]
fn one_warning_says_development_and_names_the_ca() {
    logs::capture();
    let root = TempDir::new();
    let dir = root.0.join("certs");
    let _server = serve_from(&dir, "127.0.0.1:0").unwrap();
    let ca = dir.join("ca.pem").display().to_string();
    let warnings = logs::matching(log::Level::Warn, &dir.display().to_string());
    assert_eq!(warnings.len(), 1, "one warning about the development certificate, not {warnings:#?}");
    assert!(warnings[0].contains("development") && warnings[0].contains("never in production"), "{}", warnings[0]);
    assert!(warnings[0].contains(&ca), "the warning must say where the CA to trust is: {}", warnings[0]);
}

#[test]
fn a_folder_that_cannot_be_made_is_an_error_naming_it() {
    let root = TempDir::new();
    let file = root.0.join("not-a-folder");
    std::fs::write(&file, "a file where the folder should be").unwrap();
    let dir = file.join("certs");
    match Config::builder().development_certificate(&dir).build() {
        Err(e @ Error::TlsFile { kind: CertProblem::CannotCreate, .. }) => {
            assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
        }
        other => panic!("expected a CannotCreate error, got {other:?}"),
    }
}

#[test]
fn a_certificate_of_another_kind_is_never_overwritten() {
    let root = TempDir::new();
    let ca = common::pki::Ca::new("Real CA");
    let (cert, key) = ca.leaf(&["example.org"]).write(&root.0, "server", &[]);
    let before = std::fs::read(&cert).unwrap();
    match Config::builder().development_certificate(&root.0).build() {
        Err(e @ Error::TlsFile { kind: CertProblem::Unusable, .. }) => {
            assert!(e.to_string().contains("not a tinywss development certificate"), "{e}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(std::fs::read(&cert).unwrap(), before);
    assert!(key.exists() && !root.0.join("ca.pem").exists());
}

#[test]
fn generate_replaces_the_files_with_a_new_ca() {
    let root = TempDir::new();
    let first = DevelopmentCertificate::generate(&root.0).unwrap();
    let ca_before = std::fs::read(&first.ca).unwrap();
    let second = DevelopmentCertificate::generate(&root.0).unwrap();
    assert_eq!((&first.ca, &first.cert, &first.key), (&second.ca, &second.cert, &second.key));
    assert_ne!(std::fs::read(&second.ca).unwrap(), ca_before);
}
