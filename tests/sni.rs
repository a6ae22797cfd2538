//! Several certificates chosen by server name (SNI), with a default for clients that
//! send no name.

mod common;

use common::pki::Ca;
use common::{client_tls, connect_with, served_fingerprint, TempDir};
use tinywss::{Config, Server};

#[test]
fn each_name_gets_its_certificate_and_no_name_gets_the_default() {
    common::init_logger();
    let (dir, ca) = (TempDir::new(), Ca::new("Test CA"));
    let ca_file = ca.write(&dir.0.join("ca.pem"));
    let default = ca.leaf(&["localhost", "127.0.0.1"]);
    let (alpha, beta) = (ca.leaf(&["alpha.test"]), ca.leaf(&["beta.test"]));
    let (default_cert, default_key) = default.write(&dir.0, "default", &[]);
    let (alpha_cert, alpha_key) = alpha.write(&dir.0, "alpha", &[]);
    let (beta_cert, beta_key) = beta.write(&dir.0, "beta", &[]);
    let config = Config::builder()
        .bind("127.0.0.1:0")
        .tls_pem_files(default_cert, default_key)
        .sni_pem_files("alpha.test", alpha_cert, alpha_key)
        .sni_pem_files("BETA.test", beta_cert, beta_key)
        .build()
        .unwrap();
    let server = Server::bind(config).unwrap();
    let (addr, tls) = (server.local_addr(), client_tls(&ca_file));

    let fingerprint = |name: &str| served_fingerprint(&connect_with(addr, tls.clone(), name, "/").unwrap());
    assert_eq!(fingerprint("alpha.test"), alpha.fingerprint());
    assert_eq!(fingerprint("beta.test"), beta.fingerprint(), "names match whatever their case");
    // An IP address sends no SNI: the default certificate answers.
    assert_eq!(fingerprint("127.0.0.1"), default.fingerprint());
    // A name without an entry gets the default too (which here covers it).
    assert_eq!(fingerprint("localhost"), default.fingerprint());
    // The application sees which name each client asked for.
    let events = server.events();
    let mut names = Vec::new();
    while names.len() < 4 {
        match events.recv_timeout(common::PATIENCE).expect("an event") {
            tinywss::Event::Open { info, .. } => names.push(info.server_name),
            _ => continue,
        }
    }
    names.sort();
    let expected = [None, Some("alpha.test"), Some("beta.test"), Some("localhost")];
    assert_eq!(names, expected.map(|n| n.map(str::to_owned)));
}
