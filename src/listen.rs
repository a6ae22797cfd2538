//! The addresses a server listens on, and binding them: one listening socket each.

use std::io;
use std::net::TcpListener;

use crate::Error;

/// Both loopback addresses: `localhost` reaches the server whichever of the two a
/// client tries first, and nothing outside this machine does.
const DEFAULT: [&str; 2] = ["127.0.0.1:8443", "[::1]:8443"];

/// The addresses to listen on, in the order given.
#[derive(Clone, Debug)]
pub(crate) struct Addresses {
    list: Vec<String>,
    /// Whether the application named them; the default's IPv6 address may be missing.
    chosen: bool,
}

impl Addresses {
    /// The addresses given, or the default when none was.
    pub(crate) fn new(list: Vec<String>) -> Addresses {
        if list.is_empty() {
            Addresses { list: DEFAULT.iter().map(|a| a.to_string()).collect(), chosen: false }
        } else {
            Addresses { list, chosen: true }
        }
    }

    pub(crate) fn as_slice(&self) -> &[String] {
        &self.list
    }

    /// A listening socket for each address, non-blocking. Every address given must bind;
    /// of the default, IPv4 must, and IPv6 is skipped (with a log line) on a machine
    /// without it.
    pub(crate) fn bind(&self) -> Result<Vec<TcpListener>, Error> {
        let mut listeners = Vec::with_capacity(self.list.len());
        for (i, addr) in self.list.iter().enumerate() {
            match TcpListener::bind(addr.as_str()).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
                Ok(listener) => listeners.push(listener),
                Err(e) if !self.chosen && i > 0 && no_such_address(&e) => {
                    log::info!("not listening on {addr}: {e} (no IPv6 on this machine?)");
                }
                Err(source) => return Err(Error::Bind { addr: addr.clone(), source }),
            }
        }
        Ok(listeners)
    }
}

/// The address does not exist here, or its family is off (IPv6 disabled).
fn no_such_address(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AddrNotAvailable
        || e.raw_os_error() == Some(rustix::io::Errno::AFNOSUPPORT.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_goes_without_ipv6_where_there_is_none() {
        // ::2 is not an address of this machine: it stands for an IPv6 loopback that is off.
        let missing = Addresses { list: vec!["127.0.0.1:0".into(), "[::2]:0".into()], chosen: false };
        let listeners = missing.bind().unwrap();
        assert_eq!(listeners.len(), 1);
        assert!(listeners[0].local_addr().unwrap().is_ipv4());
    }

    #[test]
    fn an_address_given_must_bind() {
        let given = Addresses::new(vec!["127.0.0.1:0".into(), "[::2]:0".into()]);
        assert!(matches!(given.bind(), Err(Error::Bind { addr, .. }) if addr == "[::2]:0"));
    }

    #[test]
    fn none_given_means_both_loopbacks() {
        assert_eq!(Addresses::new(Vec::new()).as_slice(), ["127.0.0.1:8443", "[::1]:8443"]);
        assert_eq!(Addresses::new(vec!["0.0.0.0:443".into()]).as_slice(), ["0.0.0.0:443"]);
    }
}
