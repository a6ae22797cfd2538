//! What the TLS setters of [`ConfigBuilder`](crate::ConfigBuilder) collect (in
//! `config/tls.rs`): certificates, SNI, client certificates, versions, renewal, and the
//! plain `ws://` opt-in. `TlsSettings::build` (in `tls/mod.rs`) loads and checks them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::dev_cert::DevelopmentCertificate;
use super::load::PemPair;
use crate::Error;

/// Whether clients must present a certificate; see [`ConfigBuilder::client_auth`](crate::ConfigBuilder::client_auth).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Every client must present a certificate signed by the CA; others fail the TLS
    /// handshake and never reach the application.
    Required,
    /// Clients may present a certificate; one that does must be signed by the CA.
    /// Clients without one connect with
    /// [`ConnectionInfo::client_certificate`](crate::ConnectionInfo) set to `None`.
    Optional,
}

/// Where the default TLS identity comes from.
#[derive(Debug)]
pub(crate) enum DefaultIdentity {
    /// A certificate chain and key the application names.
    Files(PemPair),
    /// A development certificate in `dir`, made by `make` if needed.
    Development { dir: PathBuf, make: MakeDevelopmentCertificate },
}

/// Makes (or finds) the development certificate in a folder. Passed in by the setter
/// rather than called by name, so that only programs that call
/// `development_certificate` link the certificate writer (17 KB of a 1.4 MB server).
pub(crate) type MakeDevelopmentCertificate = fn(&Path) -> Result<DevelopmentCertificate, Error>;

/// The TLS settings as given to the builder; checked and loaded by `TlsSettings::build`.
#[derive(Debug)]
pub(crate) struct TlsSettings {
    pub(crate) default: Option<DefaultIdentity>,
    pub(crate) by_name: Vec<(String, PemPair)>,
    pub(crate) public_host: Option<String>,
    pub(crate) expiry_warning: Duration,
    pub(crate) reload_interval: Option<Duration>,
    pub(crate) tls13_only: bool,
    pub(crate) client_auth: Option<(PathBuf, ClientAuth)>,
    pub(crate) plain: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            default: None,
            by_name: Vec::new(),
            public_host: None,
            expiry_warning: Duration::from_secs(14 * 24 * 3600),
            reload_interval: Some(Duration::from_secs(30)),
            tls13_only: false,
            client_auth: None,
            plain: false,
        }
    }
}
