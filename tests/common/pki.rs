//! Certificates for tests, made with rcgen at test time: CAs, leaves with any names and
//! validity, intermediates, client certificates.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

pub const DAY: Duration = Duration::from_secs(24 * 3600);

/// A certificate authority that can sign leaves and intermediates.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A self-signed root CA named `name`.
    pub fn new(name: &str) -> Ca {
        let params = ca_params(name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, name: &str) -> Ca {
        let params = ca_params(name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A server certificate for `names`, valid from now - 1 day for `valid_for`.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_valid(names, SystemTime::now() - DAY, SystemTime::now() + 90 * DAY)
    }

    /// A server certificate for `names` with the given validity.
    pub fn leaf_valid(&self, names: &[&str], not_before: SystemTime, not_after: SystemTime) -> Leaf {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("no name"));
        (params.not_before, params.not_after) = (not_before.into(), not_after.into());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        sign(params, &self.issuer)
    }

    /// A client certificate for `name` (also an e-mail SAN `name@example.test`).
    pub fn client(&self, name: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.distinguished_name.push(DnType::OrganizationName, "Test Clients");
        let email = format!("{name}@example.test");
        params.subject_alt_names.push(rcgen::SanType::Rfc822Name(email.try_into().unwrap()));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        sign(params, &self.issuer)
    }

    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, &self.pem).unwrap();
        path.to_owned()
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params.not_before, params.not_after) = ((SystemTime::now() - DAY).into(), (SystemTime::now() + 365 * DAY).into());
    params
}

fn sign(params: CertificateParams, issuer: &Issuer<'_, KeyPair>) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Leaf { pem: cert.pem(), der: cert.der().to_vec(), key_pem: key.serialize_pem() }
}

/// A signed certificate and its key.
pub struct Leaf {
    pub pem: String,
    pub der: Vec<u8>,
    pub key_pem: String,
}

impl Leaf {
    /// Writes `<stem>.pem` (the certificate, then `chain`) and `<stem>.key` in `dir`.
    pub fn write(&self, dir: &Path, stem: &str, chain: &[&Ca]) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join(format!("{stem}.pem")), dir.join(format!("{stem}.key")));
        let mut pem = self.pem.clone();
        for ca in chain {
            pem.push_str(&ca.pem);
        }
        std::fs::write(&cert, pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }

    /// The SHA-256 fingerprint, as tinywss shows it.
    pub fn fingerprint(&self) -> String {
        tinywss::CertificateInfo::from_der(&self.der).unwrap().sha256_fingerprint
    }
}
