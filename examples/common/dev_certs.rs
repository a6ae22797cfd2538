//! Development certificates: a local CA, and a certificate for `localhost`, `127.0.0.1`
//! and `::1` signed by it. Shared by the examples; see `certs/README.md`.
//!
//! Never use these in production: the private key lies unencrypted in the repository
//! folder, and the names it covers are only those of this machine.

// Each example uses a different part of this module.
#![allow(dead_code)]

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// Where the development files live.
pub struct DevCerts {
    /// The CA certificate: what a client must trust.
    pub ca: PathBuf,
    /// The server certificate chain.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// The `certs/` folder of this repository, wherever the example runs from.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("certs")
}

impl DevCerts {
    /// The file names inside `dir`.
    pub fn in_dir(dir: &Path) -> DevCerts {
        DevCerts { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") }
    }

    /// Whether all three files exist.
    pub fn exist(&self) -> bool {
        self.ca.exists() && self.cert.exists() && self.key.exists()
    }
}

/// Makes the files in `dir` unless they are all there already; returns their paths.
pub fn ensure(dir: &Path) -> Result<DevCerts, Box<dyn Error>> {
    let certs = DevCerts::in_dir(dir);
    if !certs.exist() {
        generate(dir)?;
    }
    Ok(certs)
}

/// Makes a new CA and server certificate in `dir`, replacing any there.
pub fn generate(dir: &Path) -> Result<DevCerts, Box<dyn Error>> {
    fs::create_dir_all(dir)?;
    let certs = DevCerts::in_dir(dir);
    // ~2 years: Apple platforms reject TLS certificates valid for more than 825 days.
    let not_after = SystemTime::now() + Duration::from_secs(800 * 24 * 3600);
    let not_before = SystemTime::now() - Duration::from_secs(24 * 3600);

    let mut ca = CertificateParams::new(Vec::new())?;
    ca.distinguished_name.push(DnType::CommonName, "tinywss development CA");
    ca.distinguished_name.push(DnType::OrganizationName, "tinywss development (not for production)");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (ca.not_before, ca.not_after) = (not_before.into(), not_after.into());
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let mut server = CertificateParams::new(names)?;
    server.distinguished_name.push(DnType::CommonName, "localhost");
    server.distinguished_name.push(DnType::OrganizationName, "tinywss development certificate");
    (server.not_before, server.not_after) = (not_before.into(), not_after.into());
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &issuer)?;

    fs::write(&certs.ca, ca_cert.pem())?;
    fs::write(&certs.cert, server_cert.pem())?;
    write_private(&certs.key, &server_key.serialize_pem())?;
    // The CA key is not kept: a new server certificate means a new CA, so a CA once
    // trusted in a browser cannot be used to sign anything else.
    Ok(certs)
}

/// Writes a private key readable by its owner only, from the first byte on.
fn write_private(path: &Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write;
    let _ = fs::remove_file(path);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(pem.as_bytes())
}
