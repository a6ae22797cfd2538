//! TLS: loading and checking certificates, choosing one per handshake (SNI), client
//! certificates, and the rustls server configuration.
//!
//! ```text
//!  PEM files ──load::load_pair──► checks (errors / warnings) ──► CertStore (per SNI name + default)
//!      ▲ reload.rs: content changed? reload, check, swap                 │ resolve() per handshake
//!      └──────────────────────────────────────────── rustls::ServerConfig (shared, never rebuilt)
//! ```

mod client_auth;
mod der;
mod dev_cert;
mod info;
mod load;
mod reload;
mod resolver;
mod settings;

use std::sync::Arc;

use rustls::version::{TLS12, TLS13};

pub(crate) use dev_cert::ensure as make_development_certificate;
pub use dev_cert::DevelopmentCertificate;
pub use info::CertificateInfo;
pub(crate) use load::PemPair;
#[cfg(feature = "redis")]
pub(crate) use load::{load_certificates, read_file};
pub(crate) use reload::Reloader;
pub use settings::ClientAuth;
pub(crate) use settings::{DefaultIdentity, TlsSettings};

use reload::Identity;
use resolver::CertStore;

use crate::Error;

/// What a built [`Config`](crate::Config) holds for TLS: nothing in plain `ws://` mode.
#[derive(Clone, Debug)]
pub(crate) struct Setup {
    /// Shared by every connection; its certificate resolver is the reloadable store.
    pub(crate) server_config: Option<Arc<rustls::ServerConfig>>,
    /// Watches the certificate files and swaps renewed certificates in.
    pub(crate) reloader: Option<Arc<Reloader>>,
}

impl Setup {
    /// Whether connections speak plain `ws://` (behind a TLS-terminating proxy).
    pub(crate) fn is_plain(&self) -> bool {
        self.server_config.is_none()
    }
}

impl TlsSettings {
    /// Loads and checks every certificate, key and CA file, and builds the rustls
    /// configuration. The crypto provider is passed explicitly (ring): nothing depends on
    /// a process-wide default that another crate in the program might have installed.
    pub(crate) fn build(self) -> Result<Setup, Error> {
        if self.plain {
            return self.plain_setup();
        }
        let default = default_files(self.default)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let checks = load::Checks { expiry_warning: self.expiry_warning };
        let mut identities = vec![Identity { name: None, files: default, host: self.public_host }];
        for (name, files) in self.by_name {
            identities.push(Identity { host: Some(name.clone()), name: Some(name), files });
        }
        let store = Arc::new(CertStore::default());
        let reloader =
            Reloader::start(Arc::clone(&provider), Arc::clone(&store), identities, checks, self.reload_interval)?;
        let verifier = client_auth::verifier(&provider, self.client_auth.as_ref())?;
        let versions: &[_] = if self.tls13_only { &[&TLS13] } else { &[&TLS13, &TLS12] };
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| Error::Config(format!("tls versions: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(store);
        // Browsers offer h2 and http/1.1; the WebSocket Upgrade (RFC 6455) needs HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Setup { server_config: Some(Arc::new(config)), reloader: Some(Arc::new(reloader)) })
    }

    fn plain_setup(self) -> Result<Setup, Error> {
        if self.default.is_some() || !self.by_name.is_empty() || self.client_auth.is_some() {
            return Err(Error::Config(
                "plain_ws_behind_proxy(true) serves no TLS: remove tls_pem_files, development_certificate, \
                 sni_pem_files and client_auth, or keep TLS and drop plain_ws_behind_proxy"
                    .into(),
            ));
        }
        Ok(Setup { server_config: None, reloader: None })
    }
}

/// The files of the default identity; a development certificate is made first if needed.
fn default_files(default: Option<DefaultIdentity>) -> Result<PemPair, Error> {
    match default {
        Some(DefaultIdentity::Files(files)) => Ok(files),
        Some(DefaultIdentity::Development { dir, make }) => {
            let files = make(&dir)?;
            Ok(PemPair { cert: files.cert, key: files.key })
        }
        None => Err(Error::Config(
            "no TLS identity: call tls_pem_files(certificate, key), development_certificate(folder) \
             on this machine, or plain_ws_behind_proxy(true) when a reverse proxy terminates TLS"
                .into(),
        )),
    }
}

/// The verified client certificate of a session, described (mutual TLS only).
pub(crate) fn client_certificate(tls: &rustls::ServerConnection) -> Option<Box<CertificateInfo>> {
    tls.peer_certificates()?.first().and_then(|der| CertificateInfo::from_der(der)).map(Box::new)
}
