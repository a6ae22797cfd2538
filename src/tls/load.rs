//! Loading a certificate chain and its key from PEM files, with a diagnosis for each
//! way it commonly goes wrong: an error that names the file and the fix, or a warning.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::info::{days_between, utc, CertificateInfo};
use crate::{CertProblem, Error};

/// Text that the development certificates in `certs/` carry in their subject, so the
/// server can warn when one of them is about to face real users.
const DEV_CERT_MARKER: &str = "tinywss development";

/// What the checks that only warn compare against.
#[derive(Clone, Debug)]
pub(crate) struct Checks {
    /// Warn when the certificate expires sooner than this.
    pub(crate) expiry_warning: Duration,
}

/// A certificate/key pair that passed every check that is an error.
pub(crate) struct Loaded {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) leaf: CertificateInfo,
    /// Problems that do not stop the server, each a complete message naming the file.
    pub(crate) warnings: Vec<String>,
}

/// Loads and checks one certificate chain and key. `host` is the name clients will use
/// (a SNI name or the configured public host name), if known.
pub(crate) fn load_pair(
    provider: &CryptoProvider,
    cert_path: &Path,
    key_path: &Path,
    host: Option<&str>,
    checks: &Checks,
    now: SystemTime,
) -> Result<Loaded, Error> {
    let chain = load_chain(cert_path)?;
    let infos = describe_chain(cert_path, &chain)?;
    let leaf = infos[0].clone();
    check_validity(cert_path, &leaf, now)?;
    let key = load_key(key_path)?;
    let signing_key = provider.key_provider.load_private_key(key).map_err(|e| Error::TlsFile {
        path: key_path.into(),
        kind: CertProblem::UnsupportedKey,
        source: None,
        problem: format!(
            "unsupported private key ({e}); use an ECDSA P-256/P-384, Ed25519 or RSA (2048+ bits) key, \
             e.g. `openssl ecparam -genkey -name prime256v1 -noout | openssl pkcs8 -topk8 -nocrypt`"
        ),
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    check_key_matches(&certified, cert_path, key_path)?;
    let mut warnings = Vec::new();
    warn_expiry(&mut warnings, cert_path, &infos, checks, now);
    if let Some(host) = host {
        warn_host(&mut warnings, cert_path, &certified, &leaf, host);
    }
    warn_chain(&mut warnings, cert_path, &infos);
    Ok(Loaded { key: Arc::new(certified), leaf, warnings })
}

pub(crate) fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        let (kind, problem) = match e.kind() {
            std::io::ErrorKind::NotFound => (CertProblem::NotFound, format!("{what} file not found; check the path")),
            std::io::ErrorKind::PermissionDenied => {
                (CertProblem::Unreadable, format!("{what} file not readable by this user; check its permissions"))
            }
            _ => (CertProblem::Unreadable, format!("cannot read the {what} file: {e}")),
        };
        Error::TlsFile { path: path.into(), kind, problem, source: Some(e) }
    })
}

/// Every certificate in a PEM file; an error when there is none.
pub(crate) fn load_certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read_file(path, what)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::tls_file(path, CertProblem::MalformedPem, format!("malformed PEM: {e}")))?;
    if chain.is_empty() {
        return Err(Error::tls_file(
            path,
            CertProblem::NoCertificate,
            "no certificate in this file; expected a PEM block \
             \"-----BEGIN CERTIFICATE-----\" (did you pass the key file as the certificate?)",
        ));
    }
    Ok(chain)
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    load_certificates(path, "certificate")
}

fn describe_chain(path: &Path, chain: &[CertificateDer<'_>]) -> Result<Vec<CertificateInfo>, Error> {
    let infos: Vec<_> = chain.iter().map(|c| CertificateInfo::from_der(c)).collect();
    match infos.iter().position(Option::is_none) {
        Some(i) => Err(Error::TlsFile {
            path: path.into(),
            kind: CertProblem::InvalidCertificate,
            source: None,
            problem: format!(
                "certificate #{} in this file is not a valid X.509 certificate (damaged PEM?); \
                 download or copy the file again",
                i + 1
            ),
        }),
        None => Ok(infos.into_iter().flatten().collect()),
    }
}

fn check_validity(path: &Path, leaf: &CertificateInfo, now: SystemTime) -> Result<(), Error> {
    let name = leaf.short_name();
    if now < leaf.not_before {
        let days = days_between(now, leaf.not_before);
        return Err(Error::TlsFile {
            path: path.into(),
            kind: CertProblem::NotYetValid,
            source: None,
            problem: format!(
                "the certificate for {name} is not valid yet: it starts on {} (in {days} days); \
                 check this machine's clock (it says {}) or use the current certificate",
                utc(leaf.not_before),
                utc(now)
            ),
        });
    }
    if now > leaf.not_after {
        let days = -days_between(now, leaf.not_after);
        return Err(Error::TlsFile {
            path: path.into(),
            kind: CertProblem::Expired,
            source: None,
            problem: format!(
                "the certificate for {name} expired on {} ({days} days ago); renew it (e.g. `certbot renew`) \
                 and point the server at the new files",
                utc(leaf.not_after)
            ),
        });
    }
    Ok(())
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let pem = read_file(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => Error::tls_file(
            path,
            CertProblem::NoPrivateKey,
            "no private key in this file; expected a PEM block \
             \"-----BEGIN PRIVATE KEY-----\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" \
             (did you pass the certificate as the key?)",
        ),
        other => Error::tls_file(path, CertProblem::MalformedPem, format!("malformed PEM: {other}")),
    })
}

fn check_key_matches(certified: &CertifiedKey, cert_path: &Path, key_path: &Path) -> Result<(), Error> {
    match certified.keys_match() {
        Ok(()) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(Error::KeyMismatch { cert: cert_path.into(), key: key_path.into() })
        }
        // The key cannot tell its public half: nothing to compare, rustls will sign anyway.
        Err(rustls::Error::InconsistentKeys(_)) => Ok(()),
        Err(e) => Err(Error::tls_file(
            cert_path,
            CertProblem::Unusable,
            format!("the certificate cannot be used for TLS: {e}"),
        )),
    }
}

fn warn_expiry(warnings: &mut Vec<String>, path: &Path, chain: &[CertificateInfo], checks: &Checks, now: SystemTime) {
    let leaf = &chain[0];
    if let Ok(left) = leaf.not_after.duration_since(now) {
        if left < checks.expiry_warning {
            warnings.push(format!(
                "{}: the certificate for {} expires on {} (in {} days); renew it soon \
                 (the server picks up the renewed files without a restart)",
                path.display(),
                leaf.short_name(),
                utc(leaf.not_after),
                left.as_secs() / 86_400
            ));
        }
    }
    for (i, ca) in chain.iter().enumerate().skip(1) {
        if now > ca.not_after {
            warnings.push(format!(
                "{}: certificate #{} in the chain ({}) expired on {}; many clients will refuse the chain: \
                 get the current chain from your certificate authority",
                path.display(),
                i + 1,
                ca.subject,
                utc(ca.not_after)
            ));
        }
    }
}

fn warn_host(warnings: &mut Vec<String>, path: &Path, certified: &CertifiedKey, leaf: &CertificateInfo, host: &str) {
    // A wildcard server name stands for any name below it.
    let probe = match host.strip_prefix("*.") {
        Some(parent) => format!("tinywss-probe.{parent}"),
        None => host.to_owned(),
    };
    let Ok(name) = ServerName::try_from(probe.as_str()) else {
        return warnings.push(format!("{}: {host:?} is not a valid host name to check against", path.display()));
    };
    let matches = certified
        .end_entity_cert()
        .ok()
        .and_then(|der| ParsedCertificate::try_from(der).ok())
        .is_some_and(|cert| rustls::client::verify_server_name(&cert, &name).is_ok());
    if !matches {
        let names = leaf.alt_names();
        let covered = if names.is_empty() { "no names at all".to_owned() } else { names.join(", ") };
        warnings.push(format!(
            "{}: the certificate does not cover the host name {host} (it covers {covered}); \
             clients connecting to wss://{host}/ will refuse it: get a certificate that includes {host}",
            path.display()
        ));
    }
}

fn warn_chain(warnings: &mut Vec<String>, path: &Path, chain: &[CertificateInfo]) {
    let leaf = &chain[0];
    if leaf.subject.contains(DEV_CERT_MARKER) {
        // Its CA is meant to be installed by hand in each client, so no intermediate.
        return warnings.push(format!(
            "{}: this is a tinywss development certificate (made by examples/dev_certs): \
             fine on this machine, never in production",
            path.display()
        ));
    }
    if chain.len() == 1 && !leaf.is_self_issued() {
        warnings.push(format!(
            "{}: the chain is incomplete: this file holds only the server certificate, issued by {}, \
             without that issuer's certificate; clients that do not already have it fail with \
             \"unknown issuer\": use the full chain file (e.g. fullchain.pem, not cert.pem)",
            path.display(),
            leaf.issuer
        ));
    }
    for (i, pair) in chain.windows(2).enumerate() {
        if pair[0].issuer != pair[1].subject {
            warnings.push(format!(
                "{}: certificate #{} ({}) is not the issuer of certificate #{} (issued by {}); \
                 put the chain in order: server certificate first, then each issuer",
                path.display(),
                i + 2,
                pair[1].subject,
                i + 1,
                pair[0].issuer
            ));
        }
    }
}

/// The files of one TLS identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PemPair {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}
