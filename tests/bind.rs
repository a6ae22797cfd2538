//! Listening addresses: `bind` once serves that address alone, as it always did; each
//! further call adds one; without any, both loopback addresses (IPv4 and IPv6).

mod common;

use common::TestCerts;
use tinywss::{Config, ConfigBuilder, Error, Server};

fn builder(certs: &TestCerts) -> ConfigBuilder {
    Config::builder().tls_pem_files(&certs.files.cert, &certs.files.key)
}

#[test]
fn each_bind_adds_an_address_and_each_serves() {
    common::init_logger();
    let certs = TestCerts::new();
    let server = Server::bind(builder(&certs).bind("127.0.0.1:0").bind("[::1]:0").build().unwrap()).unwrap();
    let _events = common::echo_events(&server);
    let addrs = server.local_addrs();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert!(addrs[0].is_ipv4() && addrs[1].is_ipv6(), "in the order given: {addrs:?}");
    assert_eq!(server.handle().local_addrs(), addrs);
    for (addr, name) in addrs.iter().zip(["127.0.0.1", "::1"]) {
        let mut client = common::connect_with(*addr, common::client_tls(&certs.files.ca), name, "/")
            .unwrap_or_else(|e| panic!("no client reaches {addr}: {e}"));
        common::assert_echo(&mut client, "hello");
    }
    let addrs = addrs.to_vec();
    drop(server);
    for addr in addrs {
        std::net::TcpListener::bind(addr).unwrap_or_else(|e| panic!("{addr} still taken after shutdown: {e}"));
    }
}

#[test]
fn one_bind_serves_that_address_alone() {
    common::init_logger();
    let certs = TestCerts::new();
    let config = builder(&certs).bind("127.0.0.1:0").build().unwrap();
    assert_eq!(config.bind_addrs(), ["127.0.0.1:0"]);
    let server = Server::bind(config).unwrap();
    assert_eq!(server.local_addrs().len(), 1);
    assert_eq!(server.local_addrs()[0], server.local_addr());
}

#[test]
fn without_bind_both_loopback_addresses() {
    let certs = TestCerts::new();
    let config = builder(&certs).build().unwrap();
    assert_eq!(config.bind_addrs(), ["127.0.0.1:8443", "[::1]:8443"]);
}

#[test]
fn an_address_given_that_cannot_be_bound_is_an_error_naming_it() {
    common::init_logger();
    let certs = TestCerts::new();
    // ::2 is not an address of this machine.
    let config = builder(&certs).bind("127.0.0.1:0").bind("[::2]:0").build().unwrap();
    match Server::bind(config) {
        Err(e @ Error::Bind { .. }) => assert!(e.to_string().starts_with("cannot listen on [::2]:0: "), "{e}"),
        other => panic!("expected a Bind error, got {other:?}"),
    }
}
