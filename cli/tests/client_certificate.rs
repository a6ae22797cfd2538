//! `tinywss serve --client-ca` (mTLS): the verified subject reaches the process.

mod common;

use common::{read_env, TempDir, Tinywss};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

#[test]
fn the_verified_client_subject_is_passed_on() {
    let dir = TempDir::new("mtls");
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.distinguished_name.push(DnType::CommonName, "Sensor Clients CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    std::fs::write(dir.0.join("clients-ca.pem"), ca_params.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "alice");
    params.distinguished_name.push(DnType::OrganizationName, "Kitchen");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let (cert_file, key_file) = (dir.0.join("alice.pem"), dir.0.join("alice.key"));
    std::fs::write(&cert_file, params.signed_by(&key, &issuer).unwrap().pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();

    let ca = dir.0.join("clients-ca.pem");
    let server =
        Tinywss::start(&["--client-ca", ca.to_str().unwrap(), "--exec", "sh", "-c", "env; echo END; read wait"]);
    let mut client = server.try_connect("/", &[], Some((&cert_file, &key_file))).unwrap();
    let env = read_env(&mut client);
    assert_eq!(env.get("SSL_CLIENT_S_DN").map(String::as_str), Some("CN=alice, O=Kitchen"), "{env:?}");
    assert_eq!(env.get("SSL_CLIENT_S_DN_CN").map(String::as_str), Some("alice"));
    assert_eq!(env.get("SSL_CLIENT_I_DN").map(String::as_str), Some("CN=Sensor Clients CA"));
    assert_eq!(env.get("SSL_CLIENT_VERIFY").map(String::as_str), Some("SUCCESS"));
    // Without a certificate, no process is started at all: the TLS handshake fails.
    assert!(server.try_connect("/", &[], None).is_err());
}
