//! Client certificates (mutual TLS): the verifier built from the configured CA file.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use super::info::CertificateInfo;
use super::load::load_certificates;
use super::settings::ClientAuth;
use crate::{CertProblem, Error};

/// The verifier for the configured mode; one that asks for nothing when there is no CA.
pub(crate) fn verifier(
    provider: &Arc<CryptoProvider>,
    setting: Option<&(std::path::PathBuf, ClientAuth)>,
) -> Result<Arc<dyn ClientCertVerifier>, Error> {
    let Some((ca_file, mode)) = setting else {
        return Ok(WebPkiClientVerifier::no_client_auth());
    };
    let roots = load_roots(ca_file)?;
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let builder = match mode {
        ClientAuth::Required => builder,
        ClientAuth::Optional => builder.allow_unauthenticated(),
    };
    builder.build().map_err(|e| {
        Error::tls_file(
            ca_file,
            CertProblem::Unusable,
            format!("cannot verify client certificates with this CA file: {e}"),
        )
    })
}

fn load_roots(path: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in load_certificates(path, "client CA")?.into_iter().enumerate() {
        let name = CertificateInfo::from_der(&cert).map_or_else(|| format!("#{}", i + 1), |info| info.subject);
        roots.add(cert).map_err(|e| {
            Error::tls_file(
                path,
                CertProblem::Unusable,
                format!("certificate {name} cannot serve as a CA to verify clients: {e}"),
            )
        })?;
        log::debug!("client certificates signed by {name} ({}) are accepted", path.display());
    }
    Ok(roots)
}
