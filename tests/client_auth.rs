//! Client certificates (mutual TLS): clients signed by the configured CA get in and the
//! application sees who they are; others are turned away in the TLS handshake.

mod common;

use std::sync::Arc;

use common::pki::{Ca, Leaf};
use common::{client_builder, connect_with, eventually, next_event, TempDir};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tinywss::{ClientAuth, Config, Event, Server};

struct Setup {
    server: Server,
    events: std::sync::mpsc::Receiver<Event>,
    server_ca: std::path::PathBuf,
    client_ca: Ca,
    _dir: TempDir,
}

fn setup(mode: ClientAuth) -> Setup {
    setup_with(mode, |builder| builder)
}

fn setup_with(mode: ClientAuth, configure: impl FnOnce(tinywss::ConfigBuilder) -> tinywss::ConfigBuilder) -> Setup {
    common::init_logger();
    let dir = TempDir::new();
    let (server_ca, client_ca) = (Ca::new("Server CA"), Ca::new("Client CA"));
    let (cert, key) = server_ca.leaf(&["localhost"]).write(&dir.0, "server", &[]);
    let builder = Config::builder()
        .bind("127.0.0.1:0")
        .tls_pem_files(cert, key)
        .client_auth(client_ca.write(&dir.0.join("clients.pem")), mode);
    let config = configure(builder).build().unwrap();
    let server = Server::bind(config).unwrap();
    let events = common::echo_events(&server);
    Setup { server, events, server_ca: server_ca.write(&dir.0.join("ca.pem")), client_ca, _dir: dir }
}

impl Setup {
    fn connect(&self, identity: Option<&Leaf>) -> Result<common::Client, tungstenite::Error> {
        let builder = client_builder(&self.server_ca, rustls::DEFAULT_VERSIONS);
        let config = match identity {
            Some(leaf) => {
                let chain = vec![CertificateDer::from(leaf.der.clone())];
                let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        let mut client = connect_with(self.server.local_addr(), Arc::new(config), "localhost", "/")?;
        // TLS 1.3 clients learn of a refused certificate only when they next read.
        client.send(tungstenite::Message::text("hello"))?;
        client.read()?;
        Ok(client)
    }

    /// The client identity of the next connection that opens (skipping other events).
    fn opened_identity(&self) -> Option<Box<tinywss::CertificateInfo>> {
        loop {
            if let Event::Open { info, .. } = next_event(&self.events) {
                return info.client_certificate;
            }
        }
    }

    fn assert_refused(&self, result: Result<common::Client, tungstenite::Error>) -> String {
        let err = result.map(|_| ()).expect_err("the client should have been refused").to_string();
        let handle = self.server.handle();
        eventually("the failed handshake is counted", || handle.stats().handshakes_failed_tls == 1);
        let opened = self.events.try_iter().filter(|e| matches!(e, Event::Open { .. })).count();
        assert_eq!(opened, 0, "a refused client never reaches the application");
        err
    }
}

#[test]
fn required_accepts_a_client_signed_by_the_ca_and_shows_its_identity() {
    let setup = setup(ClientAuth::Required);
    let alice = setup.client_ca.client("alice");
    let _client = setup.connect(Some(&alice)).unwrap();
    let identity = setup.opened_identity().expect("the verified client certificate");
    assert_eq!(identity.common_name.as_deref(), Some("alice"));
    assert_eq!(identity.subject, "CN=alice, O=Test Clients");
    assert_eq!(identity.issuer, "CN=Client CA");
    assert_eq!(identity.emails, ["alice@example.test"]);
    assert_eq!(identity.sha256_fingerprint, alice.fingerprint());
}

#[test]
fn required_rejects_a_client_signed_by_another_ca() {
    let setup = setup(ClientAuth::Required);
    let mallory = Ca::new("Client CA").client("mallory");
    let err = setup.assert_refused(setup.connect(Some(&mallory)));
    assert!(err.contains("alert"), "the client is told by a TLS alert: {err}");
}

#[test]
fn required_rejects_a_client_without_certificate() {
    let setup = setup(ClientAuth::Required);
    let err = setup.assert_refused(setup.connect(None));
    assert!(err.contains("CertificateRequired") || err.contains("alert"), "{err}");
}

#[test]
fn optional_lets_clients_without_certificate_in_and_verifies_the_others() {
    let setup = setup(ClientAuth::Optional);
    let _anonymous = setup.connect(None).unwrap();
    assert_eq!(setup.opened_identity(), None);
    let _bob = setup.connect(Some(&setup.client_ca.client("bob"))).unwrap();
    assert_eq!(setup.opened_identity().and_then(|i| i.common_name), Some("bob".to_owned()));
    let stranger = Ca::new("Client CA").client("stranger");
    setup.assert_refused(setup.connect(Some(&stranger)));
}

#[test]
fn missing_client_ca_file_is_named() {
    let (dir, ca) = (TempDir::new(), Ca::new("Server CA"));
    let (cert, key) = ca.leaf(&["localhost"]).write(&dir.0, "server", &[]);
    let missing = dir.0.join("clients-ca.pem");
    let err = Config::builder().tls_pem_files(cert, key).client_auth(&missing, ClientAuth::Required).build();
    let text = err.map(|_| ()).unwrap_err().to_string();
    assert!(text.contains("clients-ca.pem") && text.contains("client CA file not found"), "{text}");
}

#[test]
fn the_authentication_hook_sees_the_client_identity() {
    let setup = setup_with(ClientAuth::Optional, |builder| {
        builder.authenticate(|request| match request.client_certificate().and_then(|c| c.common_name.as_deref()) {
            Some("alice") => Ok(None),
            Some(_) => Err(tinywss::Rejection::new(403, "alice only")),
            None => Err(tinywss::Rejection::new(401, "a client certificate is required here")),
        })
    });
    let _alice = setup.connect(Some(&setup.client_ca.client("alice"))).unwrap();
    assert_eq!(setup.opened_identity().and_then(|i| i.common_name), Some("alice".to_owned()));
    match setup.connect(Some(&setup.client_ca.client("bob"))).map(|_| ()) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("bob should get 403, got {other:?}"),
    }
    match setup.connect(None).map(|_| ()) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("an anonymous client should get 401, got {other:?}"),
    }
    assert_eq!(setup.server.handle().stats().auth_refused, 2);
}
