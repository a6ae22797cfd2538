//! Loading a certificate chain and its key from PEM files, with a diagnosis for each
//! way it commonly goes wrong: an error that names the file and the fix, or a warning.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustix::fs::OFlags;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::info::{days_between, utc, CertificateInfo};
use crate::{CertProblem, Error};

/// Text that development certificates (`dev_cert.rs`) carry in their subject, so the
/// server can warn when one of them is about to face real users.
pub(crate) const DEV_CERT_MARKER: &str = "tinywss development";

/// The file beside a development certificate that holds the CA clients must trust.
pub(crate) const DEV_CA_FILE: &str = "ca.pem";

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

/// The largest certificate, key or CA file read. A chain is a few KiB and a bundle of
/// every public root CA about 250 KiB: anything larger is the wrong file (a log, a disk
/// image), and reading it in full would cost memory and time for nothing.
const MAX_PEM_FILE: u64 = 1024 * 1024;

#[cfg(test)]
thread_local! {
    /// How many files this thread has opened to read (tests show what is not read again).
    pub(crate) static READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Reads a certificate, key or CA file; the one way this crate reads them, at start and
/// at every reload. It never blocks: the file is opened with `O_NONBLOCK` (opening a
/// FIFO would otherwise wait for a writer), and only a regular file of at most
/// [`MAX_PEM_FILE`] bytes is read, at most that many bytes even when it grows meanwhile.
/// Anything else (a FIFO, a device such as `/dev/zero`, a directory) is refused unread.
pub(crate) fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    #[cfg(test)]
    READS.with(|reads| reads.set(reads.get() + 1));
    let refuse = |kind: CertProblem, problem: String, source: Option<std::io::Error>| Error::TlsFile {
        path: path.into(),
        kind,
        problem,
        source,
    };
    let unreadable =
        |e: std::io::Error| refuse(CertProblem::Unreadable, format!("cannot read the {what} file: {e}"), Some(e));
    let file = open_nonblocking(path).map_err(|e| {
        let (kind, problem) = open_problem(path, &e, what);
        refuse(kind, problem, Some(e))
    })?;
    let metadata = file.metadata().map_err(unreadable)?;
    if let Some(kind) = special_kind(&metadata.file_type()) {
        return Err(refuse(CertProblem::NotARegularFile, not_regular(what, kind), None));
    }
    if metadata.len() > MAX_PEM_FILE {
        return Err(refuse(
            CertProblem::NotARegularFile,
            format!(
                "the {what} file is {} bytes, larger than the {MAX_PEM_FILE} bytes allowed for a PEM file \
             (a certificate chain is a few KiB); is this the right file?",
                metadata.len()
            ),
            None,
        ));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_PEM_FILE + 1).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(refuse(
            CertProblem::NotARegularFile,
            format!(
                "the {what} file grew past the {MAX_PEM_FILE} bytes allowed for a PEM file while being read; \
             is something still writing to it?"
            ),
            None,
        ));
    }
    Ok(bytes)
}

/// Opens `path` for reading without waiting: `O_NONBLOCK` makes opening a FIFO return at
/// once, `O_NOCTTY` keeps a terminal from becoming this process's controlling terminal.
/// Reads from a regular file are not affected by either flag.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let flags = OFlags::NONBLOCK | OFlags::NOCTTY;
    OpenOptions::new().read(true).custom_flags(flags.bits() as i32).open(path)
}

fn open_problem(path: &Path, e: &std::io::Error, what: &str) -> (CertProblem, String) {
    match e.kind() {
        std::io::ErrorKind::NotFound => (CertProblem::NotFound, format!("{what} file not found; check the path")),
        std::io::ErrorKind::PermissionDenied => {
            (CertProblem::Unreadable, format!("{what} file not readable by this user; check its permissions"))
        }
        // Some files cannot even be opened (a Unix socket: ENXIO): say what they are.
        _ => match std::fs::metadata(path).ok().and_then(|metadata| special_kind(&metadata.file_type())) {
            Some(kind) => (CertProblem::NotARegularFile, not_regular(what, kind)),
            None => (CertProblem::Unreadable, format!("cannot read the {what} file: {e}")),
        },
    }
}

fn not_regular(what: &str, kind: &str) -> String {
    format!("cannot read the {what} file: this is {kind}, not a regular file; give the path of the PEM file itself")
}

/// What a file that is not a regular file is, in words; `None` for a regular file.
fn special_kind(file_type: &std::fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        return None;
    }
    Some(if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a named pipe (FIFO)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "a special file"
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
        return warnings.push(development_warning(path, leaf));
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

/// The one line that announces a development certificate: what it is, and the CA
/// clients must trust, where it is.
fn development_warning(path: &Path, leaf: &CertificateInfo) -> String {
    let ca = path.with_file_name(DEV_CA_FILE);
    let trust = if ca.is_file() {
        format!("clients must trust its CA, {}", ca.display())
    } else {
        format!("clients must trust the CA made with it ({DEV_CA_FILE})")
    };
    format!(
        "{}: development certificate for {}, never in production; {trust} (curl --cacert, \
         NODE_EXTRA_CA_CERTS, or import it in the browser as an authority)",
        path.display(),
        leaf.alt_names().join(", ")
    )
}

/// The files of one TLS identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PemPair {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    /// Runs `f` on a thread of its own and returns what it returns; panics when it has
    /// not returned within 5 s (a read that blocks would hang the test otherwise).
    pub(crate) fn promptly<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = mpsc::channel();
        std::thread::spawn(move || done.send(f()));
        result.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| panic!("{what}: still blocked after 5 s"))
    }

    /// Makes a named pipe at `path` (no writer ever opens it).
    pub(crate) fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
        assert!(status.success(), "mkfifo {}", path.display());
    }

    /// A fresh directory for one test, removed on drop.
    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("tinywss-load-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    /// Reads `path` as a certificate file on a thread, bounded; the error's text.
    fn refusal(path: &Path) -> String {
        let owned = path.to_owned();
        match promptly("reading the file", move || read_file(&owned, "certificate")) {
            Err(Error::TlsFile { path: at, problem, kind, .. }) => {
                assert_eq!(at, path, "{problem}");
                assert_eq!(kind, CertProblem::NotARegularFile, "{problem}");
                problem
            }
            Ok(bytes) => panic!("read {} bytes instead of refusing the file", bytes.len()),
            Err(other) => panic!("expected a TlsFile error, got {other:?}"),
        }
    }

    #[test]
    fn a_regular_file_is_read() {
        let dir = dir("regular");
        let path = dir.0.join("cert.pem");
        std::fs::write(&path, "-----BEGIN CERTIFICATE-----\n").unwrap();
        assert_eq!(read_file(&path, "certificate").unwrap(), b"-----BEGIN CERTIFICATE-----\n");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = dir("fifo");
        let path = dir.0.join("cert.pem");
        mkfifo(&path);
        let started = Instant::now();
        let problem = refusal(&path);
        assert!(problem.contains("named pipe (FIFO)") && problem.contains("not a regular file"), "{problem}");
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    }

    #[test]
    fn a_link_to_dev_zero_is_refused_without_reading() {
        let dir = dir("zero");
        let path = dir.0.join("cert.pem");
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let problem = refusal(&path);
        assert!(problem.contains("character device") && problem.contains("not a regular file"), "{problem}");
    }

    #[test]
    fn a_unix_socket_is_refused() {
        let dir = dir("socket");
        let path = dir.0.join("cert.pem");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let problem = refusal(&path);
        assert!(problem.contains("a socket") && problem.contains("not a regular file"), "{problem}");
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = dir("directory");
        let problem = refusal(&dir.0);
        assert!(problem.contains("a directory") && problem.contains("not a regular file"), "{problem}");
    }

    #[test]
    fn a_file_larger_than_any_certificate_is_refused() {
        let dir = dir("large");
        let path = dir.0.join("cert.pem");
        std::fs::write(&path, vec![b'A'; 2 << 20]).unwrap();
        let problem = refusal(&path);
        assert!(problem.contains("2097152 bytes") && problem.contains("larger than"), "{problem}");
    }
}
