//! Loading the TLS identity from PEM files, with a clear message for each way it goes wrong.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// Text that the development certificates in `certs/` carry in their subject, so the
/// server can warn when one of them is about to face real users.
pub(crate) const DEV_CERT_MARKER: &str = "tinywss development";

/// Builds the rustls server configuration from a certificate chain file and a key file.
///
/// The crypto provider is passed explicitly (ring): nothing depends on a process-wide
/// default that another crate in the program might have installed differently.
pub(crate) fn server_config(cert_path: &Path, key_path: &Path) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = load_certified_key(&provider, cert_path, key_path)?;
    if is_development_certificate(&certified) {
        log::warn!(
            "{} is a tinywss development certificate: fine on this machine, never in production",
            cert_path.display()
        );
    }
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("tls versions: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCert(Arc::new(certified))));
    // Browsers offer h2 and http/1.1; the WebSocket Upgrade (RFC 6455) needs HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn load_certified_key(provider: &CryptoProvider, cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, Error> {
    let chain = load_chain(cert_path)?;
    let key = load_key(key_path)?;
    let signing_key = provider.key_provider.load_private_key(key).map_err(|e| Error::TlsFile {
        path: key_path.into(),
        problem: format!("unsupported private key ({e}); use an ECDSA P-256/P-384, Ed25519 or RSA key"),
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|_| Error::KeyMismatch { cert: cert_path.into(), key: key_path.into() })?;
    Ok(certified)
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::TlsFile {
        path: path.into(),
        problem: match e.kind() {
            std::io::ErrorKind::NotFound => format!("{what} file not found; check the path"),
            std::io::ErrorKind::PermissionDenied => {
                format!("{what} file not readable by this user; check its permissions")
            }
            _ => format!("cannot read the {what} file: {e}"),
        },
    })
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read_file(path, "certificate")?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::TlsFile { path: path.into(), problem: format!("malformed PEM: {e}") })?;
    if chain.is_empty() {
        return Err(Error::TlsFile {
            path: path.into(),
            problem: "no certificate in this file; expected a PEM block \
                      \"-----BEGIN CERTIFICATE-----\" (did you pass the key file as the certificate?)"
                .into(),
        });
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let pem = read_file(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| Error::TlsFile {
        path: path.into(),
        problem: match e {
            rustls_pki_types::pem::Error::NoItemsFound => "no private key in this file; expected a PEM block \
                 \"-----BEGIN PRIVATE KEY-----\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\""
                .into(),
            other => format!("malformed PEM: {other}"),
        },
    })
}

fn is_development_certificate(certified: &CertifiedKey) -> bool {
    let marker = DEV_CERT_MARKER.as_bytes();
    certified.cert.first().is_some_and(|leaf| leaf.as_ref().windows(marker.len()).any(|w| w == marker))
}

/// Serves the same certificate to every client.
#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}
