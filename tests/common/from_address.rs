//! Clients from a chosen loopback address (127.0.0.2 as an attacker, 127.0.0.1 as the
//! real client), for the per-address limits. std cannot bind a socket before it
//! connects, so the socket is made with rustix: socket, bind, connect.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};

use rustix::net::{AddressFamily, SocketType};

use crate::common::{client_tls, Client, TestServer, PATIENCE};

/// The attacker's address; the real client connects from 127.0.0.1 as usual.
pub const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A TCP connection to `server` from `source` (any port).
pub fn tcp_from(source: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    rustix::net::bind(&socket, &SocketAddr::V4(SocketAddrV4::new(source, 0))).unwrap();
    rustix::net::connect(&socket, &server).unwrap();
    let tcp = TcpStream::from(socket);
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    tcp.set_write_timeout(Some(PATIENCE)).unwrap();
    tcp
}

/// A wss:// connection to `server` from `source`, as `common::connect` makes one.
pub fn wss_from(source: Ipv4Addr, server: &TestServer) -> Result<Client, tungstenite::Error> {
    let tcp = tcp_from(source, server.addr);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = rustls::ClientConnection::new(client_tls(&server.certs.files.ca), name).unwrap();
    let url = format!("wss://localhost:{}/", server.addr.port());
    tungstenite::client::client(url, rustls::StreamOwned::new(tls, tcp)).map(|(ws, _)| ws).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => panic!("blocking handshake interrupted"),
    })
}

/// Whether the server has hung up on a connection that sent nothing (EOF or reset),
/// without waiting: a connection the server still holds has nothing to read.
pub fn hung_up(tcp: &TcpStream) -> bool {
    tcp.set_nonblocking(true).unwrap();
    let hung_up = match (&*tcp).read(&mut [0u8; 16]) {
        Ok(n) => n == 0,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    tcp.set_nonblocking(false).unwrap();
    hung_up
}
