//! Development certificates: a local CA, and a certificate for `localhost`, `127.0.0.1`
//! and `::1` signed by it, made in a folder on first use
//! ([`ConfigBuilder::development_certificate`](crate::ConfigBuilder::development_certificate)).
//!
//! The two certificates are written out in DER by hand (a few fixed fields) and signed
//! with ring, which rustls already links: a certificate-building crate (rcgen, which the
//! tests use for their more varied certificates) made a stripped server 59 KB larger.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

use super::der::civil_from_days;
use super::info::{utc, CertificateInfo};
use super::load::{self, DEV_CA_FILE, DEV_CERT_MARKER};
use crate::{CertProblem, Error};

/// How long a new development certificate is valid: about two years (Apple platforms
/// refuse TLS certificates valid for more than 825 days).
const VALIDITY: Duration = Duration::from_secs(800 * 86_400);

/// A development certificate that expires sooner than this is replaced at start, before
/// clients start refusing it.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// The files of a development certificate: a local certificate authority and a server
/// certificate for `localhost`, `127.0.0.1` and `::1` that it signed.
///
/// For this machine only, never for production: the private key lies unencrypted in the
/// folder, and the certificate names only this machine. A client must trust
/// [`ca`](Self::ca) to connect (`curl --cacert ca.pem`, `NODE_EXTRA_CA_CERTS=ca.pem`, or
/// import it in the browser as an authority). The CA's own key is not kept: trusting it
/// lets it vouch for this one certificate only.
///
/// [`ConfigBuilder::development_certificate`](crate::ConfigBuilder::development_certificate)
/// makes these files on first use and reuses them afterwards; [`generate`](Self::generate)
/// makes new ones. Either holds a lock on the folder (the empty file `.tinywss.lock`
/// there) meanwhile, so that servers starting together on one folder share one
/// certificate rather than write over each other's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DevelopmentCertificate {
    /// The CA certificate (`ca.pem`): what clients must trust.
    pub ca: PathBuf,
    /// The server certificate (`server.pem`).
    pub cert: PathBuf,
    /// The server certificate's private key (`server.key`), readable by its owner only.
    pub key: PathBuf,
}

impl DevelopmentCertificate {
    /// Where the files are in `dir` (whether they exist or not).
    pub fn in_dir(dir: impl AsRef<Path>) -> DevelopmentCertificate {
        let dir = dir.as_ref();
        DevelopmentCertificate { ca: dir.join(DEV_CA_FILE), cert: dir.join("server.pem"), key: dir.join("server.key") }
    }

    /// Makes a new CA and server certificate in `dir` (created if missing), replacing
    /// any there; the key file gets mode 0600 from its first byte on.
    ///
    /// # Errors
    ///
    /// [`Error::TlsFile`] with [`CertProblem::CannotCreate`], naming the folder or file
    /// that cannot be written.
    pub fn generate(dir: impl AsRef<Path>) -> Result<DevelopmentCertificate, Error> {
        let _lock = FolderLock::take(dir.as_ref());
        generate_at(dir.as_ref(), SystemTime::now())
    }

    /// Like [`generate`](Self::generate), with more names in the certificate besides
    /// `localhost`, `127.0.0.1` and `::1`: host names (`pi.local`) or IP addresses
    /// (`192.168.1.20`), for clients on other machines of the network. A renewal by
    /// [`ConfigBuilder::development_certificate`](crate::ConfigBuilder::development_certificate)
    /// (30 days before expiry) makes a certificate for the three defaults only.
    ///
    /// # Errors
    ///
    /// As [`generate`](Self::generate); [`Error::Config`] for a name that is neither an
    /// IP address nor a host name (letters, digits, `-`, `.`, a leading `*.`).
    pub fn generate_for<S: AsRef<str>>(dir: impl AsRef<Path>, names: &[S]) -> Result<DevelopmentCertificate, Error> {
        let names = names.iter().map(|n| alt_name(n.as_ref())).collect::<Result<Vec<_>, _>>()?;
        let _lock = FolderLock::take(dir.as_ref());
        generate_with(dir.as_ref(), SystemTime::now(), &names)
    }

    /// Whether the three files exist (a link counts if it leads to a file).
    fn exist(&self) -> bool {
        [&self.ca, &self.cert, &self.key].iter().all(|path| path.is_file())
    }
}

/// The development certificate in `dir`: the one there if it is usable for another
/// [`RENEW_BEFORE`], else a new one.
///
/// A `server.pem` that is not a development certificate is never replaced: the folder
/// may hold someone's real certificate.
pub(crate) fn ensure(dir: &Path) -> Result<DevelopmentCertificate, Error> {
    // Held from the look at the files to the last one written.
    let _lock = FolderLock::take(dir);
    let files = DevelopmentCertificate::in_dir(dir);
    let now = SystemTime::now();
    let existing = if files.cert.exists() { Some(development_leaf(&files.cert)?) } else { None };
    match existing {
        Some(leaf) if files.exist() && now >= leaf.not_before && leaf.not_after > now + RENEW_BEFORE => Ok(files),
        Some(leaf) if files.exist() => {
            let files = generate_at(dir, now)?;
            log::warn!(
                "{}: the development certificate expires on {}: replaced it with a new one and a new CA; \
                 clients must trust the new {} (and can forget the old one)",
                dir.display(),
                utc(leaf.not_after),
                files.ca.display()
            );
            Ok(files)
        }
        _ => {
            let files = generate_at(dir, now)?;
            log::info!(
                "made a development CA, {}, and a certificate it signed for localhost, 127.0.0.1 and ::1, {}, \
                 valid until {}",
                files.ca.display(),
                files.cert.display(),
                utc(now + VALIDITY)
            );
            Ok(files)
        }
    }
}

/// An exclusive lock on a folder of development certificates, held while its files are
/// looked at and written. Without it, two servers (or test processes) starting at once
/// on one folder would each make a key and certificates, and could write over each
/// other's: one then finds the other's certificate beside its key (or a file renamed
/// away under it). Released when dropped (the lock goes with the file descriptor).
struct FolderLock {
    _file: Option<fs::File>,
}

impl FolderLock {
    /// Waits for the lock on `dir`. Goes on without one where there can be none: a
    /// read-only folder that has no lock file yet (certificates made elsewhere and
    /// mounted), a folder that cannot be made (writing the files then fails with its own
    /// message), a file system without locks. The race it guards against is rare;
    /// refusing to start there would not be.
    fn take(dir: &Path) -> FolderLock {
        // First use: the lock must exist before the files do. A folder that cannot be
        // made is reported by the writing that follows.
        let _ = fs::create_dir_all(dir);
        let path = dir.join(LOCK_FILE);
        // Readable by all, and opened read-only where it cannot be written (a lock needs
        // no write access): another user's server, or a read-only folder, still locks.
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o644)
            .open(&path)
            .or_else(|_| fs::File::open(&path));
        let locked = file.and_then(|file| wait_for_lock(&file, &path).map(|()| file));
        if let Err(e) = &locked {
            log::debug!("{}: no lock ({e}); going on without", path.display());
        }
        FolderLock { _file: locked.ok() }
    }
}

/// Locks `file`, saying so when another process holds it: a server that seems to hang
/// at start is waiting for the one making certificates in the same folder.
fn wait_for_lock(file: &fs::File, path: &Path) -> io::Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => {
            log::info!("{}: another server is making development certificates here; waiting for it", path.display());
            file.lock()
        }
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The lock file in a folder of development certificates (never removed: removing it
/// would let a third process lock a new file while the second holds the old one).
const LOCK_FILE: &str = ".tinywss.lock";

/// The certificate in `path`, if it is a development certificate; an error otherwise.
fn development_leaf(path: &Path) -> Result<CertificateInfo, Error> {
    let chain = load::load_certificates(path, "certificate")?;
    match CertificateInfo::from_der(&chain[0]) {
        Some(leaf) if leaf.subject.contains(DEV_CERT_MARKER) => Ok(leaf),
        _ => Err(Error::tls_file(
            path,
            CertProblem::Unusable,
            "this is not a tinywss development certificate, and development_certificate never replaces \
             another certificate: give development_certificate a folder of its own, or serve this \
             certificate with tls_pem_files",
        )),
    }
}

fn generate_at(dir: &Path, now: SystemTime) -> Result<DevelopmentCertificate, Error> {
    generate_with(dir, now, &[])
}

/// A subjectAltName entry, DER: an IP address, or a host name.
fn alt_name(name: &str) -> Result<Vec<u8>, Error> {
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return Ok(match ip {
            std::net::IpAddr::V4(v4) => tlv(0x87, &v4.octets()),
            std::net::IpAddr::V6(v6) => tlv(0x87, &v6.octets()),
        });
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !valid {
        return Err(Error::Config(format!("{name:?} is neither an IP address nor a host name for a certificate")));
    }
    Ok(tlv(0x82, name.to_ascii_lowercase().as_bytes()))
}

fn generate_with(dir: &Path, now: SystemTime, extra_names: &[Vec<u8>]) -> Result<DevelopmentCertificate, Error> {
    fs::create_dir_all(dir).map_err(|e| cannot_create(dir, "the folder", e))?;
    let files = DevelopmentCertificate::in_dir(dir);
    let rng = SystemRandom::new();
    let no_key = |_| {
        let problem = "cannot generate a key for the development certificate: the system gave no random numbers";
        Error::tls_file(dir, CertProblem::CannotCreate, problem)
    };
    let ca_key = Key::generate(&rng).map_err(no_key)?;
    let server_key = Key::generate(&rng).map_err(no_key)?;
    let (ca, server) = certificates(&rng, &ca_key, &server_key, now, extra_names).map_err(no_key)?;
    // The key first and the CA last: a reader that finds a new CA finds its certificate.
    write_new(&files.key, pem("PRIVATE KEY", &server_key.pkcs8).as_bytes(), 0o600)?;
    write_new(&files.cert, pem("CERTIFICATE", &server).as_bytes(), 0o644)?;
    write_new(&files.ca, pem("CERTIFICATE", &ca).as_bytes(), 0o644)?;
    Ok(files)
}

/// The CA certificate and the server certificate it signs, both DER.
fn certificates(
    rng: &SystemRandom,
    ca_key: &Key,
    server_key: &Key,
    now: SystemTime,
    extra_names: &[Vec<u8>],
) -> Result<(Vec<u8>, Vec<u8>), ring::error::Unspecified> {
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // Valid from a day ago: a client whose clock is a little behind still accepts it.
    let validity = seq(&[&time(now.saturating_sub(86_400)), &time(now + VALIDITY.as_secs())]);
    let ca_name = name("tinywss development CA", "tinywss development (not for production)");
    let ca_extensions = [
        // keyCertSign and cRLSign.
        extension(OID_KEY_USAGE, true, &tlv(BIT_STRING, &[0x01, 0x06])),
        extension(OID_SUBJECT_KEY_ID, false, &tlv(OCTET_STRING, &ca_key.identifier())),
        // cA = true, pathLenConstraint = 0: it signs server certificates only.
        extension(OID_BASIC_CONSTRAINTS, true, &seq(&[&tlv(BOOLEAN, &[0xff]), &tlv(INTEGER, &[0])])),
    ];
    let ca = certificate(rng, ca_key, &ca_name, &validity, &ca_name, ca_key, &ca_extensions)?;
    let server_name = name("localhost", "tinywss development certificate");
    let defaults = [
        tlv(0x82, b"localhost"),                            // dNSName
        tlv(0x87, &[127, 0, 0, 1]),                         // iPAddress
        tlv(0x87, &std::net::Ipv6Addr::LOCALHOST.octets()), // iPAddress
    ];
    let names: Vec<&[u8]> = defaults.iter().chain(extra_names).map(Vec::as_slice).collect();
    let alt_names = seq(&names);
    let server_extensions = [extension(OID_SUBJECT_ALT_NAME, false, &alt_names)];
    let server = certificate(rng, ca_key, &ca_name, &validity, &server_name, server_key, &server_extensions)?;
    Ok((ca, server))
}

/// Writes `path` whole or not at all: into a new file beside it (created with `mode`, so
/// a key is never readable by others, even for a moment), then renamed over it.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let partial = path.with_file_name(format!(".{file_name}.new"));
    let _ = fs::remove_file(&partial);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&partial)
        .and_then(|mut file| file.write_all(contents))
        .and_then(|()| fs::rename(&partial, path));
    written.map_err(|e| {
        let _ = fs::remove_file(&partial);
        cannot_create(path, "this file", e)
    })
}

fn cannot_create(path: &Path, what: &str, e: io::Error) -> Error {
    Error::TlsFile {
        path: path.into(),
        kind: CertProblem::CannotCreate,
        problem: format!(
            "cannot write {what} for the development certificate: {e}; give development_certificate \
             a folder this user can write"
        ),
        source: Some(e),
    }
}

/// An ECDSA P-256 key pair, and its PKCS#8 encoding for the key file.
struct Key {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl Key {
    fn generate(rng: &SystemRandom) -> Result<Key, ring::error::Unspecified> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, rng)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), rng)
            .map_err(|_| ring::error::Unspecified)?;
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
) -> Result<Vec<u8>, ring::error::Unspecified> {
    // A random positive serial number of 16 bytes (the top bit clear, the first byte non-zero).
    let mut serial = [0u8; 16];
    rng.fill(&mut serial)?;
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
    let signature = issuer_key.pair.sign(rng, &tbs)?;
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
    let (year, month, day) = civil_from_days(days);
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn dir(name: &str) -> Dir {
        Dir(std::env::temp_dir().join(format!("tinywss-dev-cert-{name}-{}", std::process::id())))
    }

    #[test]
    fn one_about_to_expire_is_replaced_one_still_good_is_kept() {
        let dir = dir("renew");
        let old = SystemTime::now() - VALIDITY + RENEW_BEFORE / 2;
        let files = generate_at(&dir.0, old).unwrap();
        let expiring = fs::read(&files.ca).unwrap();
        ensure(&dir.0).unwrap();
        let renewed = fs::read(&files.ca).unwrap();
        assert_ne!(renewed, expiring, "a certificate 15 days from expiry must be replaced");
        ensure(&dir.0).unwrap();
        assert_eq!(fs::read(&files.ca).unwrap(), renewed, "a fresh one must be kept");
    }

    #[test]
    fn a_missing_ca_means_new_files() {
        let dir = dir("missing");
        let files = generate_at(&dir.0, SystemTime::now()).unwrap();
        let cert = fs::read(&files.cert).unwrap();
        fs::remove_file(&files.ca).unwrap();
        ensure(&dir.0).unwrap();
        assert!(files.ca.is_file());
        assert_ne!(fs::read(&files.cert).unwrap(), cert, "the old certificate's CA is gone: both are new");
    }

    #[test]
    fn more_names_go_in_after_the_defaults_and_bad_ones_are_refused() {
        let dir = dir("names");
        let files = DevelopmentCertificate::generate_for(&dir.0, &["pi.local", "192.168.1.20", "fd00::7"]).unwrap();
        let leaf = development_leaf(&files.cert).unwrap();
        assert_eq!(leaf.alt_names(), ["localhost", "pi.local", "127.0.0.1", "::1", "192.168.1.20", "fd00::7"]);
        for bad in ["", "a b", "x..y", "évian.fr"] {
            assert!(matches!(DevelopmentCertificate::generate_for(&dir.0, &[bad]), Err(Error::Config(_))), "{bad:?}");
        }
    }

    #[test]
    fn the_certificates_read_back() {
        let dir = dir("read");
        let files = generate_at(&dir.0, SystemTime::now()).unwrap();
        let leaf = development_leaf(&files.cert).unwrap();
        assert_eq!(leaf.alt_names(), ["localhost", "127.0.0.1", "::1"]);
        let ca = load::load_certificates(&files.ca, "CA").unwrap();
        let ca = CertificateInfo::from_der(&ca[0]).unwrap();
        assert_eq!(leaf.issuer, ca.subject);
        assert!(leaf.not_after > SystemTime::now() + VALIDITY - Duration::from_secs(86_400));
    }

    #[test]
    fn servers_starting_together_share_one_certificate() {
        let dir = dir("together");
        let made: Vec<_> = (0..8)
            .map(|_| {
                let dir = dir.0.clone();
                std::thread::spawn(move || ensure(&dir))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect();
        assert!(made.iter().all(Result::is_ok), "{made:?}");
        let files = DevelopmentCertificate::in_dir(&dir.0);
        let leaf = development_leaf(&files.cert).unwrap();
        let ca = load::load_certificates(&files.ca, "CA").unwrap();
        assert_eq!(leaf.issuer, CertificateInfo::from_der(&ca[0]).unwrap().subject);
        // Loads as a server's identity: the key is the certificate's.
        crate::Config::builder().tls_pem_files(&files.cert, &files.key).build().unwrap();
    }

    #[test]
    fn certificates_in_a_folder_that_cannot_take_a_lock_are_still_used() {
        let dir = dir("nolock");
        let files = generate_at(&dir.0, SystemTime::now()).unwrap();
        let cert = fs::read(&files.cert).unwrap();
        // A lock file that cannot be opened for writing, as in a read-only folder (a
        // directory in its place does that even for root).
        let lock = dir.0.join(LOCK_FILE);
        let _ = fs::remove_file(&lock);
        fs::create_dir(&lock).unwrap();
        assert_eq!(ensure(&dir.0).unwrap(), files);
        assert_eq!(fs::read(&files.cert).unwrap(), cert, "the certificate there is kept");
    }

    #[test]
    fn pem_is_base64_in_lines() {
        assert_eq!(pem("X", b"Man"), "-----BEGIN X-----\nTWFu\n-----END X-----\n");
        assert_eq!(pem("X", b"Ma"), "-----BEGIN X-----\nTWE=\n-----END X-----\n");
        let long = pem("X", &[0u8; 60]);
        assert_eq!(long.lines().nth(1).unwrap().len(), 64);
    }

    #[test]
    fn long_lengths_take_several_bytes() {
        assert_eq!(&tlv(0x04, &[0; 200])[..3], &[0x04, 0x81, 200]);
        assert_eq!(&tlv(0x04, &[0; 300])[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
