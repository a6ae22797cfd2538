//! Development certificates: a local CA, and a certificate for `localhost`, `127.0.0.1`
//! and `::1` signed by it. Shared by the examples; see `certs/README.md`.
//!
//! Never use these in production: the private key lies unencrypted in the repository
//! folder, and the names it covers are only those of this machine.
//!
//! The two certificates are written out in DER by hand (a few fixed fields) and signed
//! with ring, which the library already links for rustls: a certificate-building crate
//! (rcgen, which the tests use for their more varied certificates) made the stripped
//! `examples/echo` 59 KB larger.

// Each example uses a different part of this module.
#![allow(dead_code)]

// A program that includes both this file and its sibling (dev_certs.rs, check.rs; the
// checker's test does) gets two copies of these few lines: harmless, and simpler than
// making every program declare the module itself.
#[allow(clippy::duplicate_mod)]
#[path = "civil_date.rs"]
mod civil_date;

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

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
    let rng = SystemRandom::new();
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    // ~2 years: Apple platforms reject TLS certificates valid for more than 825 days.
    let validity = seq(&[&time(now - 24 * 3600), &time(now + 800 * 24 * 3600)]);

    let ca_key = Key::generate(&rng)?;
    let ca_name = name("tinywss development CA", "tinywss development (not for production)");
    let ca_extensions = [
        // keyCertSign and cRLSign.
        extension(OID_KEY_USAGE, true, &tlv(BIT_STRING, &[0x01, 0x06])),
        extension(OID_SUBJECT_KEY_ID, false, &tlv(OCTET_STRING, &ca_key.identifier())),
        // cA = true, pathLenConstraint = 0: it signs server certificates only.
        extension(OID_BASIC_CONSTRAINTS, true, &seq(&[&tlv(BOOLEAN, &[0xff]), &tlv(INTEGER, &[0])])),
    ];
    let ca_cert = certificate(&rng, &ca_key, &ca_name, &validity, &ca_name, &ca_key, &ca_extensions)?;

    let server_key = Key::generate(&rng)?;
    let server_name = name("localhost", "tinywss development certificate");
    let alt_names = seq(&[
        &tlv(0x82, b"localhost"),                            // dNSName
        &tlv(0x87, &[127, 0, 0, 1]),                         // iPAddress
        &tlv(0x87, &std::net::Ipv6Addr::LOCALHOST.octets()), // iPAddress
    ]);
    let server_extensions = [extension(OID_SUBJECT_ALT_NAME, false, &alt_names)];
    let server_cert = certificate(&rng, &ca_key, &ca_name, &validity, &server_name, &server_key, &server_extensions)?;

    fs::write(&certs.ca, pem("CERTIFICATE", &ca_cert))?;
    fs::write(&certs.cert, pem("CERTIFICATE", &server_cert))?;
    write_private(&certs.key, &pem("PRIVATE KEY", &server_key.pkcs8))?;
    // The CA key is not kept: a new server certificate means a new CA, so a CA once
    // trusted in a browser cannot be used to sign anything else.
    Ok(certs)
}

/// An ECDSA P-256 key pair, and its PKCS#8 encoding for the key file.
struct Key {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl Key {
    fn generate(rng: &SystemRandom) -> Result<Key, Box<dyn Error>> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, rng)
            .map_err(|_| "cannot generate an ECDSA P-256 key")?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), rng)
            .map_err(|e| format!("cannot read the new key: {e}"))?;
        Ok(Key { pair, pkcs8: pkcs8.as_ref().to_vec() })
    }

    /// SubjectPublicKeyInfo: id-ecPublicKey on prime256v1, and the public point.
    fn public_key_info(&self) -> Vec<u8> {
        seq(&[&seq(&[OID_EC_PUBLIC_KEY, OID_P256]), &bit_string(self.pair.public_key().as_ref())])
    }

    /// The key identifier: the first 20 bytes of the public key's SHA-256 (RFC 7093).
    fn identifier(&self) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA256, self.pair.public_key().as_ref()).as_ref()[..20].to_vec()
    }
}

/// An X.509 v3 certificate for `subject_key`, signed by `issuer_key`.
fn certificate(
    rng: &SystemRandom,
    issuer_key: &Key,
    issuer: &[u8],
    validity: &[u8],
    subject: &[u8],
    subject_key: &Key,
    extensions: &[Vec<u8>],
) -> Result<Vec<u8>, Box<dyn Error>> {
    // A random positive serial number of 16 bytes (the top bit clear, the first byte non-zero).
    let mut serial = [0u8; 16];
    rng.fill(&mut serial).map_err(|_| "no random numbers")?;
    serial[0] = serial[0] & 0x7f | 0x40;
    let extensions: Vec<&[u8]> = extensions.iter().map(Vec::as_slice).collect();
    let tbs = seq(&[
        &tlv(0xa0, &tlv(INTEGER, &[2])), // version: v3
        &tlv(INTEGER, &serial),
        &seq(&[OID_ECDSA_SHA256]),
        issuer,
        validity,
        subject,
        &subject_key.public_key_info(),
        &tlv(0xa3, &seq(&extensions)),
    ]);
    let signature = issuer_key.pair.sign(rng, &tbs).map_err(|_| "cannot sign the certificate")?;
    Ok(seq(&[&tbs, &seq(&[OID_ECDSA_SHA256]), &bit_string(signature.as_ref())]))
}

const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const UTF8_STRING: u8 = 0x0c;

// Object identifiers, DER-encoded with their tag and length.
const OID_ECDSA_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]; // 1.2.840.10045.4.3.2
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]; // 1.2.840.10045.2.1
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]; // 1.2.840.10045.3.1.7
const OID_COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03]; // 2.5.4.3
const OID_ORGANIZATION: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x0a]; // 2.5.4.10
const OID_SUBJECT_KEY_ID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0e]; // 2.5.29.14
const OID_KEY_USAGE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0f]; // 2.5.29.15
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x11]; // 2.5.29.17
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x13]; // 2.5.29.19

/// A DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if content.len() < 0x80 {
        out.push(content.len() as u8);
    } else {
        let len = content.len().to_be_bytes();
        let skip = len.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (len.len() - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A BIT STRING of whole bytes.
fn bit_string(bytes: &[u8]) -> Vec<u8> {
    tlv(BIT_STRING, &[&[0], bytes].concat())
}

/// A distinguished name: common name, then organization.
fn name(common_name: &str, organization: &str) -> Vec<u8> {
    let attribute = |oid: &[u8], value: &str| tlv(0x31, &seq(&[oid, &tlv(UTF8_STRING, value.as_bytes())]));
    seq(&[&attribute(OID_COMMON_NAME, common_name), &attribute(OID_ORGANIZATION, organization)])
}

/// An extension: its identifier, whether it is critical, and its DER value.
fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let critical: &[u8] = if critical { &[BOOLEAN, 1, 0xff] } else { &[] };
    seq(&[oid, critical, &tlv(OCTET_STRING, value)])
}

/// A certificate time: UTCTime up to 2049, GeneralizedTime from 2050 on (RFC 5280).
fn time(unix: u64) -> Vec<u8> {
    let (days, secs) = ((unix / 86_400) as i64, unix % 86_400);
    let (year, month, day) = civil_date::civil_from_days(days);
    let rest = format!("{month:02}{day:02}{:02}{:02}{:02}Z", secs / 3600, secs / 60 % 60, secs % 60);
    if year < 2050 {
        tlv(0x17, format!("{:02}{rest}", year % 100).as_bytes())
    } else {
        tlv(0x18, format!("{year:04}{rest}").as_bytes())
    }
}

/// PEM: base64 in lines of 64 characters between BEGIN and END lines.
fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut base64 = Vec::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            let sextet = (n >> (18 - 6 * i)) as usize & 63;
            base64.push(if i <= chunk.len() { ALPHABET[sextet] } else { b'=' });
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in base64.chunks(64) {
        out.extend(line.iter().map(|&b| char::from(b)));
        out.push('\n');
    }
    out + &format!("-----END {label}-----\n")
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
