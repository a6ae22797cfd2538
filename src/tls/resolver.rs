//! [`CertStore`]: the certificates in service, chosen per handshake by server name (SNI),
//! and replaced in place when the files are renewed.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificates in service. rustls asks it once per handshake; a reload replaces an
/// entry under a short write lock, so handshakes that start afterwards get the new
/// certificate while established sessions keep theirs (they never look here again).
#[derive(Default)]
pub(crate) struct CertStore {
    served: RwLock<Served>,
}

#[derive(Default)]
struct Served {
    /// For clients that send no server name, or one no other entry covers.
    default: Option<Arc<CertifiedKey>>,
    /// By lowercase server name; a name may be a wildcard (`*.example.org`).
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl CertStore {
    /// Puts a certificate in service, for `name` or as the default (`None`).
    pub(crate) fn set(&self, name: Option<&str>, key: Arc<CertifiedKey>) {
        let mut served = self.served.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        match name {
            Some(name) => {
                served.by_name.insert(normalize(name), key);
            }
            None => served.default = Some(key),
        }
    }

    /// The certificate for a server name: an exact entry, else a wildcard entry one
    /// label up, else the default.
    pub(crate) fn lookup(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let served = self.served.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let by_name = server_name.map(normalize).and_then(|name| {
            served.by_name.get(&name).or_else(|| {
                let parent = name.split_once('.')?.1;
                served.by_name.get(&format!("*.{parent}"))
            })
        });
        by_name.or(served.default.as_ref()).cloned()
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = self.lookup(hello.server_name());
        if key.is_none() {
            log::debug!("no certificate for server name {:?}", hello.server_name());
        }
        key
    }
}

impl fmt::Debug for CertStore {
    // Names only: a CertifiedKey holds the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let served = self.served.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        f.debug_struct("CertStore")
            .field("default", &served.default.is_some())
            .field("names", &served.by_name.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Arc<CertifiedKey> {
        let pair = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".into()]).unwrap().self_signed(&pair).unwrap();
        let der = rustls_pki_types::PrivateKeyDer::try_from(pair.serialize_der()).unwrap();
        let signer = rustls::crypto::ring::sign::any_supported_type(&der).unwrap();
        Arc::new(CertifiedKey::new(vec![cert.der().clone()], signer))
    }

    #[test]
    fn exact_then_wildcard_then_default() {
        let store = CertStore::default();
        assert!(store.lookup(None).is_none());
        let (default, exact, wildcard) = (key(), key(), key());
        store.set(None, Arc::clone(&default));
        store.set(Some("API.example.org."), Arc::clone(&exact));
        store.set(Some("*.example.org"), Arc::clone(&wildcard));
        let same = |found: Option<Arc<CertifiedKey>>, want: &Arc<CertifiedKey>| Arc::ptr_eq(&found.unwrap(), want);
        assert!(same(store.lookup(Some("api.example.org")), &exact));
        assert!(same(store.lookup(Some("www.example.org")), &wildcard));
        assert!(same(store.lookup(Some("a.b.example.org")), &default), "a wildcard covers one label");
        assert!(same(store.lookup(Some("example.org")), &default));
        assert!(same(store.lookup(None), &default));
    }

    #[test]
    fn set_replaces_in_place() {
        let store = CertStore::default();
        let (old, new) = (key(), key());
        store.set(None, Arc::clone(&old));
        let held = store.lookup(None).unwrap();
        store.set(None, Arc::clone(&new));
        assert!(Arc::ptr_eq(&store.lookup(None).unwrap(), &new));
        assert!(Arc::ptr_eq(&held, &old), "a session holding the old key keeps it");
    }
}
