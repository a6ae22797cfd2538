//! The connection checker behind `tinywss check` and `examples/check.rs`: connects to a
//! `wss://` (or `ws://`) URL the way a client does and reports each step, stopping at the first that fails
//! with a message that says what is wrong and where to fix it.
//!
//! Steps: URL, DNS, TCP, TLS (version, cipher suite, ALPN), certificate chain (each
//! certificate's subject, issuer, validity, names, fingerprint; trusted or not), host
//! name, HTTP Upgrade, subprotocol, ping round trip, close handshake.
//!
//! To show the chain even when it is refused, the TLS client uses a verifier that records
//! what the server sent and then asks rustls' standard (webpki) verifier.

// The program, the example and the tests each use a different part of this module.
#![allow(dead_code)]

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tinywss::CertificateInfo;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

// The crate root declares it: the program's logger uses it too.
use crate::civil_date;

/// Where to find CA certificates when no `--ca` is given, most common first.
const SYSTEM_CA_BUNDLES: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/// What to check, and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// `wss://host[:port]/path` or `ws://...`.
    pub url: String,
    /// CA certificates to trust; empty: `$SSL_CERT_FILE` or the system bundle.
    pub ca_files: Vec<PathBuf>,
    /// A client certificate chain and key, for servers that ask for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Subprotocols to offer, most preferred first.
    pub subprotocols: Vec<String>,
    /// Offer only this TLS version (`"1.2"` or `"1.3"`); both when `None`.
    pub tls_version: Option<String>,
    /// Limit for each network step.
    pub timeout: Duration,
    /// Warn when the server certificate expires within this many days.
    pub expiry_warning_days: u64,
}

impl Options {
    pub fn new(url: &str) -> Options {
        Options {
            url: url.to_owned(),
            ca_files: Vec::new(),
            client_cert: None,
            subprotocols: Vec::new(),
            tls_version: None,
            timeout: Duration::from_secs(10),
            expiry_warning_days: 14,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Warning,
    Failed,
}

/// One step of the check: its name, how it went, and what it found.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: &'static str,
    pub outcome: Outcome,
    pub lines: Vec<String>,
}

/// Every step that ran, in order; the last one failed if any did.
#[derive(Debug, Default)]
pub struct Report {
    pub steps: Vec<Step>,
}

impl Report {
    /// The step that failed, if one did.
    pub fn failed_step(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.outcome == Outcome::Failed)
    }

    /// A step by name.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    fn push(&mut self, name: &'static str, outcome: Outcome, lines: Vec<String>) {
        self.steps.push(Step { name, outcome, lines });
    }

    fn ok(&mut self, name: &'static str, line: String) {
        self.push(name, Outcome::Ok, vec![line]);
    }

    /// Records a failure, for `return Err(report.fail(..))`.
    fn fail(&mut self, name: &'static str, line: String) -> Failed {
        self.push(name, Outcome::Failed, vec![line]);
        Failed
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            let mark = match step.outcome {
                Outcome::Ok => " ok ",
                Outcome::Warning => "WARN",
                Outcome::Failed => "FAIL",
            };
            let mut lines = step.lines.iter();
            writeln!(f, "[{mark}] {:<13} {}", step.name, lines.next().map_or("", String::as_str))?;
            for line in lines {
                writeln!(f, "       {:<13} {line}", "")?;
            }
        }
        match self.failed_step() {
            Some(step) => write!(f, "=> failed at step \"{}\"", step.name),
            None => write!(f, "=> all steps passed"),
        }
    }
}

/// Marks a step as failed; the report holds the details.
#[derive(Debug)]
pub struct Failed;

/// The usage line of `tinywss check` and `cargo run --example check`.
pub const USAGE: &str = "usage: check wss://HOST[:PORT]/PATH [--ca PEM]... [--cert PEM --key PEM] \
                         [--protocol NAME]... [--tls 1.2|1.3] [--timeout SECS]";

/// Parses the checker's arguments; `Err("")` asks for the usage.
pub fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options::new("");
    let (mut cert, mut key) = (None, None);
    while let Some(arg) = argv.next() {
        if arg == "--help" || arg == "-h" {
            return Err(String::new());
        }
        if !arg.starts_with("--") {
            options.url = arg;
            continue;
        }
        let value = argv.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--ca" => options.ca_files.push(value.into()),
            "--cert" => cert = Some(value.into()),
            "--key" => key = Some(value.into()),
            "--protocol" => options.subprotocols.push(value),
            "--tls" => options.tls_version = Some(value),
            "--timeout" => {
                let secs = value.parse().map_err(|_| format!("--timeout: {value:?} is not a number of seconds"))?;
                options.timeout = Duration::from_secs(secs);
            }
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    options.client_cert = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--cert and --key go together".into()),
    };
    if options.url.is_empty() {
        return Err("no URL given".into());
    }
    Ok(options)
}

/// The checker as a command: parses `args`, checks, prints the report. Returns the exit
/// status: 0 when every step passed, 1 when one failed, 2 for bad arguments.
pub fn main(args: impl Iterator<Item = String>) -> i32 {
    let options = match parse_args(args) {
        Ok(options) => options,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("check: {e}\n{USAGE}");
            return 2;
        }
    };
    println!("checking {}", options.url);
    let report = check(&options);
    println!("{report}");
    i32::from(report.failed_step().is_some())
}

/// Runs every step until one fails.
pub fn check(options: &Options) -> Report {
    let mut report = Report::default();
    let _ = run(options, &mut report);
    report
}

fn run(options: &Options, report: &mut Report) -> Result<(), Failed> {
    let target = parse_url(&options.url).map_err(|e| report.fail("URL", e))?;
    report.ok("URL", format!("{} host {} port {} path {}", target.scheme, target.host, target.port, target.path));
    // The files named on the command line are read before any connection: a typo in a
    // path is not a network problem.
    let tls_config = match target.tls {
        true => Some(client_config(options).map_err(|(step, e)| report.fail(step, e))?),
        false => None,
    };
    let addrs = resolve(&target, report)?;
    let tcp = connect(&addrs, options.timeout, report)?;
    if let Some(config) = tls_config {
        let tls = tls_handshake(&target, options, config, tcp, report)?;
        websocket(&target, options, rustls::StreamOwned::new(tls.0, tls.1), report)
    } else {
        report.ok("TLS", "none: ws:// is plain text (use wss:// on the public internet)".into());
        websocket(&target, options, tcp, report)
    }
}

struct Target {
    scheme: &'static str,
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, String> {
    let (scheme, tls, rest) = if let Some(rest) = url.strip_prefix("wss://") {
        ("wss", true, rest)
    } else if let Some(rest) = url.strip_prefix("ws://") {
        ("ws", false, rest)
    } else {
        return Err(format!("{url:?} is not a WebSocket URL: it must start with wss:// (or ws://)"));
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            (host, port.parse::<u16>().map_err(|_| format!("{port:?} is not a port number"))?)
        }
        _ => (authority, if tls { 443 } else { 80 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("no host name in {url:?}"));
    }
    let path = if path.is_empty() { "/" } else { path };
    // Both go into the request head as they are.
    if let Some(bad) = [host, path].into_iter().find(|part| !part.bytes().all(|b| b.is_ascii_graphic())) {
        return Err(format!(
            "{bad:?} has spaces, control or non-ASCII characters: percent-encode them (or use the IDNA form \
             of the host name)"
        ));
    }
    Ok(Target { scheme, tls, host: host.to_owned(), port, path: path.to_owned() })
}

fn resolve(target: &Target, report: &mut Report) -> Result<Vec<SocketAddr>, Failed> {
    let started = Instant::now();
    match (target.host.as_str(), target.port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            let list: Vec<_> = addrs.iter().map(|a| a.ip().to_string()).collect();
            report.ok("DNS", format!("{} -> {} ({})", target.host, list.join(", "), ms(started.elapsed())));
            Ok(addrs)
        }
        Err(e) => Err(report.fail(
            "DNS",
            format!("cannot resolve {}: {e}; check the spelling, or the DNS record (A/AAAA) of the host", target.host),
        )),
    }
}

fn connect(addrs: &[SocketAddr], timeout: Duration, report: &mut Report) -> Result<TcpStream, Failed> {
    let mut errors = Vec::new();
    for addr in addrs {
        let started = Instant::now();
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(tcp) => {
                let _ = tcp.set_read_timeout(Some(timeout));
                let _ = tcp.set_write_timeout(Some(timeout));
                let _ = tcp.set_nodelay(true);
                report.ok("TCP", format!("connected to {addr} in {}", ms(started.elapsed())));
                return Ok(tcp);
            }
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Err(report.fail(
        "TCP",
        format!(
            "cannot connect ({}); is the server running and listening on this address and port, \
             and does a firewall let the port through?",
            errors.join("; ")
        ),
    ))
}

type Tls = (rustls::ClientConnection, TcpStream);

fn tls_handshake(
    target: &Target,
    options: &Options,
    setup: ClientSetup,
    mut tcp: TcpStream,
    report: &mut Report,
) -> Result<Tls, Failed> {
    let ClientSetup { config, recorder, trusted } = setup;
    let name = ServerName::try_from(target.host.clone())
        .map_err(|_| report.fail("TLS", format!("{:?} is not a valid host name for TLS", target.host)))?;
    let mut tls = rustls::ClientConnection::new(config, name.clone()).map_err(|e| report.fail("TLS", e.to_string()))?;
    let started = Instant::now();
    let result = (|| {
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp)?;
        }
        Ok::<_, std::io::Error>(())
    })();
    let seen = recorder.seen.lock().unwrap().take();
    match result {
        Ok(()) => {
            report.ok("TLS", describe_session(&tls, started.elapsed()));
            if let Some((chain, _)) = &seen {
                report_chain(chain, Ok(()), &trusted, options, report)?;
                report_name(&chain[0], &name, report)?;
            }
            Ok((tls, tcp))
        }
        Err(e) => Err(tls_failure(e, seen, &trusted, &name, options, report)),
    }
}

fn describe_session(tls: &rustls::ClientConnection, took: Duration) -> String {
    let version = tls.protocol_version().map_or("?".into(), |v| format!("{v:?}"));
    let suite = tls.negotiated_cipher_suite().map_or("?".into(), |s| format!("{:?}", s.suite()));
    let alpn = tls.alpn_protocol().map_or("none".into(), |p| String::from_utf8_lossy(p).into_owned());
    format!("{version}, {suite}, ALPN {alpn} ({})", ms(took))
}

/// Explains a failed handshake: at the certificate steps when the server's certificate
/// was refused, else at the TLS step.
fn tls_failure(
    e: std::io::Error,
    seen: Option<Seen>,
    trusted: &str,
    name: &ServerName<'_>,
    options: &Options,
    report: &mut Report,
) -> Failed {
    if let Some((chain, verdict)) = seen {
        report.ok("TLS", "the server sent its certificate chain; checking it".into());
        if let Err(error) = &verdict {
            if is_name_error(error) {
                let _ = report_chain(&chain, Ok(()), trusted, options, report);
                return report_name(&chain[0], name, report).err().unwrap_or(Failed);
            }
        }
        if report_chain(&chain, verdict, trusted, options, report).is_err() {
            return Failed;
        }
    }
    report.fail("TLS", explain_tls_error(&e))
}

fn explain_tls_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let hint = if e.kind() == std::io::ErrorKind::UnexpectedEof || e.kind() == std::io::ErrorKind::ConnectionReset {
        "the server closed the connection during the TLS handshake: it may not speak TLS on this port \
         (a plain ws:// server? try ws://), or it refused this client (a client certificate may be required: \
         --cert and --key)"
    } else if text.contains("CertificateRequired") {
        "the server requires a client certificate: pass --cert and --key"
    } else if text.contains("ProtocolVersion") {
        "no TLS version in common: the server may accept only TLS 1.3 (or only older versions)"
    } else if text.contains("HandshakeFailure") {
        "no cipher suite or signature scheme in common, or the server has no certificate for this name (SNI)"
    } else if text.contains("InvalidContentType") || text.contains("corrupt message") {
        "the server did not answer in TLS: it may speak plain HTTP on this port (try ws://)"
    } else if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut {
        "no answer in time: is this a TLS port?"
    } else {
        "the TLS handshake failed"
    };
    format!("{hint} ({text})")
}

fn is_name_error(error: &rustls::Error) -> bool {
    matches!(
        error,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    )
}

/// Reports each certificate of the chain, then the verdict on it.
fn report_chain(
    chain: &[CertificateDer<'static>],
    verdict: Result<(), rustls::Error>,
    trusted: &str,
    options: &Options,
    report: &mut Report,
) -> Result<(), Failed> {
    let now = SystemTime::now();
    let infos: Vec<_> = chain.iter().map(|c| CertificateInfo::from_der(c)).collect();
    let mut lines = Vec::new();
    for (i, info) in infos.iter().enumerate() {
        match info {
            Some(info) => lines.extend(describe_certificate(i + 1, info, now)),
            None => lines.push(format!("#{} (not a readable X.509 certificate)", i + 1)),
        }
    }
    let leaf = infos.first().cloned().flatten();
    let (outcome, verdict_line) = match verdict {
        Ok(()) => expiry_verdict(leaf.as_ref(), trusted, options, now),
        Err(error) => (Outcome::Failed, chain_error(&error, &infos, trusted)),
    };
    lines.insert(0, verdict_line);
    report.push("certificate", outcome, lines);
    if outcome == Outcome::Failed {
        return Err(Failed);
    }
    Ok(())
}

fn describe_certificate(n: usize, info: &CertificateInfo, now: SystemTime) -> Vec<String> {
    let days = days_until(now, info.not_after);
    let left = if days < 0 { format!("EXPIRED {} days ago", -days) } else { format!("expires in {days} days") };
    let names = info.alt_names();
    vec![
        format!("#{n} {}", info.subject),
        format!("   issuer  {}", info.issuer),
        format!("   valid   {} .. {} ({left})", utc(info.not_before), utc(info.not_after)),
        format!("   names   {}", if names.is_empty() { "(none)".into() } else { names.join(", ") }),
        format!("   sha256  {}", info.sha256_fingerprint),
    ]
}

fn expiry_verdict(
    leaf: Option<&CertificateInfo>,
    trusted: &str,
    options: &Options,
    now: SystemTime,
) -> (Outcome, String) {
    let days = leaf.map_or(i64::MAX, |l| days_until(now, l.not_after));
    if days < options.expiry_warning_days as i64 {
        let line = format!("trusted ({trusted}), but it expires in {days} days: the server should renew it now");
        return (Outcome::Warning, line);
    }
    (Outcome::Ok, format!("trusted ({trusted})"))
}

/// Why the chain was refused, and what to do about it.
fn chain_error(error: &rustls::Error, infos: &[Option<CertificateInfo>], trusted: &str) -> String {
    let leaf = infos.first().cloned().flatten();
    let when = |time: Option<SystemTime>| time.map(utc).unwrap_or_default();
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            format!(
                "the server certificate expired on {}: the server must renew it (e.g. certbot renew) and reload it",
                when(leaf.map(|l| l.not_after))
            )
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => format!(
            "the server certificate is not valid before {}: check the clock of this machine and of the server",
            when(leaf.map(|l| l.not_before))
        ),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => unknown_issuer(infos, trusted),
        rustls::Error::InvalidCertificate(CertificateError::BadSignature) => {
            "a certificate in the chain is not signed by the next one: the chain file is mixed up".into()
        }
        other => format!("the certificate chain was refused: {other}"),
    }
}

fn unknown_issuer(infos: &[Option<CertificateInfo>], trusted: &str) -> String {
    let Some(Some(leaf)) = infos.first() else { return "the chain does not lead to a trusted CA".into() };
    let top = infos.iter().flatten().last().unwrap_or(leaf);
    if infos.len() == 1 && leaf.is_self_issued() {
        format!("the server certificate is self-signed and not in the trusted set ({trusted}): trust it with --ca")
    } else if infos.len() == 1 {
        format!(
            "not issued by a trusted CA ({trusted}): the issuer is {}. If that is an intermediate CA, the server \
             sends an incomplete chain (configure fullchain.pem, not cert.pem); if it is your own CA, pass it with --ca",
            leaf.issuer
        )
    } else {
        format!("the chain ends at {}, which is not a trusted CA ({trusted}); pass the right CA with --ca", top.issuer)
    }
}

fn report_name(leaf: &CertificateDer<'_>, name: &ServerName<'_>, report: &mut Report) -> Result<(), Failed> {
    let shown = name.to_str();
    let parsed = rustls::server::ParsedCertificate::try_from(leaf);
    let matches = parsed.as_ref().is_ok_and(|cert| rustls::client::verify_server_name(cert, name).is_ok());
    if matches {
        report.ok("host name", format!("{shown} is covered by the certificate"));
        return Ok(());
    }
    let names = CertificateInfo::from_der(leaf).map(|i| i.alt_names()).unwrap_or_default();
    Err(report.fail(
        "host name",
        format!(
            "the certificate does not cover {shown}: it covers {}. Connect with a name it covers, \
             or give the server a certificate that includes {shown}",
            if names.is_empty() { "no names".into() } else { names.join(", ") }
        ),
    ))
}

/// The certificate chain the server sent and what the standard verifier said of it.
type Seen = (Vec<CertificateDer<'static>>, Result<(), rustls::Error>);

/// Records the chain, then lets rustls' standard verifier decide.
#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<Seen>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        let chain = std::iter::once(end_entity).chain(intermediates).map(|c| c.clone().into_owned()).collect();
        *self.seen.lock().unwrap() = Some((chain, result.as_ref().map(|_| ()).map_err(Clone::clone)));
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client side of the TLS step, ready before connecting.
struct ClientSetup {
    config: Arc<rustls::ClientConfig>,
    recorder: Arc<Recorder>,
    /// What it trusts, in words.
    trusted: String,
}

/// The client configuration; on failure, the step at fault (`CA file`, `client
/// certificate` or `TLS`) and what is wrong.
fn client_config(options: &Options) -> Result<ClientSetup, (&'static str, String)> {
    let (roots, trusted) = trust_roots(&options.ca_files).map_err(|e| ("CA file", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .build()
        .map_err(|e| ("CA file", format!("cannot build the certificate verifier: {e}")))?;
    let recorder = Arc::new(Recorder { inner, seen: Mutex::new(None) });
    let versions: &[&rustls::SupportedProtocolVersion] = match options.tls_version.as_deref() {
        None => rustls::ALL_VERSIONS,
        Some("1.3") => &[&rustls::version::TLS13],
        Some("1.2") => &[&rustls::version::TLS12],
        Some(other) => return Err(("TLS", format!("TLS version {other:?}: use 1.2 or 1.3"))),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| ("TLS", e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&recorder) as Arc<dyn ServerCertVerifier>);
    let mut config = match &options.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => client_auth(builder, cert, key).map_err(|e| ("client certificate", e))?,
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ClientSetup { config: Arc::new(config), recorder, trusted })
}

fn client_auth(
    builder: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
    cert: &Path,
    key: &Path,
) -> Result<rustls::ClientConfig, String> {
    let chain = read_certs(cert, "--cert path")?;
    let pem = read_file(key, "--key path")?;
    let key =
        PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("{}: no usable private key ({e})", key.display()))?;
    builder.with_client_auth_cert(chain, key).map_err(|e| e.to_string())
}

fn trust_roots(ca_files: &[PathBuf]) -> Result<(rustls::RootCertStore, String), String> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let (files, given_by): (Vec<PathBuf>, &str) = if !ca_files.is_empty() {
        (ca_files.to_vec(), "--ca path")
    } else if let Some(file) = from_env {
        (vec![file], "SSL_CERT_FILE variable")
    } else {
        let system = SYSTEM_CA_BUNDLES.iter().map(PathBuf::from).find(|p| p.exists());
        (system.into_iter().collect(), "system CA bundle")
    };
    if files.is_empty() {
        return Err("no CA certificates to trust: pass --ca FILE (no system bundle found)".into());
    }
    let mut roots = rustls::RootCertStore::empty();
    for file in &files {
        let (added, _ignored) = roots.add_parsable_certificates(read_certs(file, given_by)?);
        if added == 0 {
            return Err(format!("{}: no usable CA certificate in this file", file.display()));
        }
    }
    let names: Vec<_> = files.iter().map(|f| f.display().to_string()).collect();
    Ok((roots, format!("CA file {}", names.join(", "))))
}

/// The certificates in a PEM file; `given_by` says where its name came from, for the fix.
fn read_certs(path: &Path, given_by: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(path, given_by)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: malformed PEM ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in this file (expected \"-----BEGIN CERTIFICATE-----\"); check the {given_by}",
            path.display()
        ));
    }
    Ok(certs)
}

fn read_file(path: &Path, given_by: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{}: file not found; check the {given_by}", path.display()),
        _ => format!("{}: cannot read it ({e}); check the {given_by}", path.display()),
    })
}

fn websocket<S: Read + Write>(
    target: &Target,
    options: &Options,
    stream: S,
    report: &mut Report,
) -> Result<(), Failed> {
    let mut ws = upgrade(target, options, stream, report)?;
    ping(&mut ws, report)?;
    close(&mut ws, report)
}

/// The largest response head read: a 101 is a few hundred bytes, so anything near this
/// is not a WebSocket server's answer.
const MAX_HEAD: usize = 16 * 1024;
/// How much of an error response's body is read and shown.
const MAX_BODY: usize = 1024;
/// The HTTP Upgrade, written by hand rather than with tungstenite's client handshake
/// (which brings `http`, `sha1` and `data-encoding`, 69,808 B of the program): each
/// check below then fails with a message that says what the server got wrong.
fn upgrade<S: Read + Write>(
    target: &Target,
    options: &Options,
    mut stream: S,
    report: &mut Report,
) -> Result<WebSocket<S>, Failed> {
    if let Some(bad) = options.subprotocols.iter().find(|p| !is_token(p)) {
        return Err(report.fail(
            "HTTP Upgrade",
            format!("bad subprotocol {bad:?}: a subprotocol name is a token (letters, digits and !#$%&'*+-.^_`|~)"),
        ));
    }
    let key = client_key().map_err(|e| report.fail("HTTP Upgrade", e))?;
    let started = Instant::now();
    let deadline = started + options.timeout;
    let request = upgrade_request(target, options, &key);
    let sent = stream.write_all(request.as_bytes()).and_then(|()| stream.flush());
    let (response, rest) =
        sent.and_then(|()| read_head(&mut stream, deadline)).map_err(|e| upgrade_io_failure(&e, options, report))?;
    if response.status != 101 {
        let body = read_body(&mut stream, rest, response.content_length(), deadline);
        return Err(report.fail("HTTP Upgrade", status_failure(&response, &body)));
    }
    let accept = verify_switch(&response, &key).map_err(|e| report.fail("HTTP Upgrade", e))?;
    report.ok(
        "HTTP Upgrade",
        format!(
            "HTTP/1.{} {} {} ({}), Sec-WebSocket-Accept {accept} (valid)",
            response.version,
            response.status,
            response.reason,
            ms(started.elapsed())
        ),
    );
    let chosen = verify_subprotocol(&response, options).map_err(|e| report.fail("subprotocol", e))?;
    report.ok("subprotocol", chosen);
    // Frames the server sent right behind its 101 arrived with the head: they are the
    // start of the WebSocket stream.
    Ok(WebSocket::from_partially_read(stream, rest, Role::Client, None))
}

/// A subprotocol name as RFC 6455 §4.1 wants it: an HTTP token, which also keeps the
/// request head free of spaces and line breaks.
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `Sec-WebSocket-Key`: 16 random bytes in base64 (RFC 6455 §4.1), from rustls' crypto
/// provider, which the TLS step uses too.
fn client_key() -> Result<String, String> {
    let mut nonce = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut nonce)
        .map_err(|_| "the system gave no random bytes for Sec-WebSocket-Key".to_string())?;
    Ok(tinywss::websocket_key(&nonce))
}

/// The GET request that asks for the switch (RFC 6455 §4.1). The URL step let through
/// only visible ASCII in the host and path, so nothing here can break the head.
fn upgrade_request(target: &Target, options: &Options, key: &str) -> String {
    // An IPv6 address goes in brackets.
    let host = if target.host.contains(':') { format!("[{}]", target.host) } else { target.host.clone() };
    // As browsers do: the port only when it is not the scheme's own.
    let port = match (target.tls, target.port) {
        (true, 443) | (false, 80) => String::new(),
        (_, port) => format!(":{port}"),
    };
    let mut head = format!(
        "GET {} HTTP/1.1\r\nHost: {host}{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n",
        target.path
    );
    if !options.subprotocols.is_empty() {
        head.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n", options.subprotocols.join(", ")));
    }
    head.push_str("\r\n");
    head
}

/// The server's response head, owned.
struct Response {
    /// The minor version: 1 for HTTP/1.1.
    version: u8,
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
}

impl Response {
    /// The first value of a header, by case-insensitive name.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header has `token`, in any case.
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    fn content_length(&self) -> Option<usize> {
        self.header("Content-Length").and_then(|v| v.trim().parse().ok())
    }
}

/// Reads until the response head is complete, for at most [`MAX_HEAD`] bytes and until
/// `deadline` (each read also stops at the socket's timeout). Returns the head and the
/// bytes that came after it.
fn read_head<S: Read>(stream: &mut S, deadline: Instant) -> std::io::Result<(Response, Vec<u8>)> {
    use std::io::{Error, ErrorKind};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        if let Some((response, len)) = parse_head(&buf)? {
            return Ok((response, buf.split_off(len)));
        }
        if buf.len() > MAX_HEAD {
            let e = format!("the answer's head is over {} KiB, far more than a 101's", MAX_HEAD / 1024);
            return Err(Error::new(ErrorKind::InvalidData, e));
        }
        if Instant::now() >= deadline {
            return Err(ErrorKind::TimedOut.into());
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The response head at the start of `buf` and its length; `None` while incomplete.
fn parse_head(buf: &[u8]) -> std::io::Result<Option<(Response, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            let e = format!("the answer is not an HTTP/1.1 response head ({e})");
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        }
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let response = Response {
        version: parsed.version.unwrap_or(1),
        status: parsed.code.unwrap_or(0),
        reason: parsed.reason.unwrap_or("").to_owned(),
        headers: parsed.headers.iter().map(|h| (h.name.to_owned(), text(h.value))).collect(),
    };
    Ok(Some((response, len)))
}

/// The start of an error response's body: what came with the head, then up to
/// `Content-Length` (at most [`MAX_BODY`] bytes) until `deadline`. Without a length, only
/// what came with the head: the server may keep the connection open.
fn read_body<S: Read>(stream: &mut S, mut body: Vec<u8>, length: Option<usize>, deadline: Instant) -> String {
    let want = length.unwrap_or(0).min(MAX_BODY);
    let mut chunk = [0u8; 1024];
    while body.len() < want && Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(MAX_BODY);
    String::from_utf8_lossy(&body).into_owned()
}

/// What a status other than 101 means, with the server's own explanation.
fn status_failure(response: &Response, body: &str) -> String {
    let hint = match response.status {
        400 if body.contains("TLS") => "the server expects TLS: use wss://",
        404 => "wrong path: check the URL's path",
        401 | 403 => "the server (or a proxy) refused access",
        426 => "the server wants a different WebSocket version",
        300..=399 => "the server redirects (WebSocket clients do not follow redirects): use the URL it names",
        502..=504 => "a reverse proxy could not reach the WebSocket server behind it",
        _ => "the server did not switch to WebSocket",
    };
    let status = response.status.to_string();
    let location = response.header("Location").map(|l| format!(" (Location: {l})")).unwrap_or_default();
    // Servers (tinywss among them) often begin the body with the status again.
    let body = body.trim();
    let body = body.strip_prefix(status.as_str()).map_or(body, str::trim_start);
    let body = if body.is_empty() { String::new() } else { format!(": {body}") };
    format!("{hint}: HTTP {status} {}{location}{body}", response.reason)
}

/// The checks of RFC 6455 §4.1 on a 101 answer; returns its `Sec-WebSocket-Accept`.
fn verify_switch<'a>(response: &'a Response, key: &str) -> Result<&'a str, String> {
    // Reverse proxies drop these two hop-by-hop headers unless told to pass them on.
    const PROXY: &str = "a reverse proxy in front must pass Upgrade and Connection on \
                         (nginx: proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\")";
    if !response.has_token("Upgrade", "websocket") {
        let got = response.header("Upgrade").map_or("no Upgrade header".into(), |v| format!("Upgrade: {v}"));
        return Err(format!("the server answered 101 with {got}, not \"Upgrade: websocket\"; {PROXY}"));
    }
    if !response.has_token("Connection", "upgrade") {
        let got = response.header("Connection").map_or("no Connection header".into(), |v| format!("Connection: {v}"));
        return Err(format!("the server answered 101 with {got}, not \"Connection: Upgrade\"; {PROXY}"));
    }
    let expected = tinywss::accept_key(key);
    let accept = match response.header("Sec-WebSocket-Accept").map(str::trim) {
        None => return Err("the server answered 101 without Sec-WebSocket-Accept: not a WebSocket server".into()),
        Some(accept) if accept != expected => {
            return Err(format!(
                "Sec-WebSocket-Accept is {accept:?}, not {expected:?} (base64 of the SHA-1 of the key sent and \
                 the RFC 6455 GUID): the server computes it wrongly, or a cache answered with an old response"
            ))
        }
        Some(accept) => accept,
    };
    // The checker offers no extension, so the server may turn none on (§4.1, step 5).
    match response.header("Sec-WebSocket-Extensions").map(str::trim) {
        Some(extensions) if !extensions.is_empty() => Err(format!(
            "the server turned on extensions that were not offered (Sec-WebSocket-Extensions: {extensions})"
        )),
        _ => Ok(accept),
    }
}

/// The subprotocol the server chose, which must be one of those offered, if any were.
fn verify_subprotocol(response: &Response, options: &Options) -> Result<String, String> {
    let offered = options.subprotocols.join(", ");
    match response.header("Sec-WebSocket-Protocol").map(str::trim) {
        None if options.subprotocols.is_empty() => Ok("none (none offered)".into()),
        None => Err(format!("the server agreed to none of the subprotocols offered ({offered})")),
        Some(chosen) if options.subprotocols.iter().any(|p| p == chosen) => Ok(chosen.to_owned()),
        Some(chosen) if options.subprotocols.is_empty() => {
            Err(format!("the server chose the subprotocol {chosen:?}, but none was offered"))
        }
        Some(chosen) => Err(format!("the server chose the subprotocol {chosen:?}, which was not offered ({offered})")),
    }
}

/// Explains a failure to send the request or to read the answer's head.
fn upgrade_io_failure(e: &std::io::Error, options: &Options, report: &mut Report) -> Failed {
    use std::io::ErrorKind;
    if e.to_string().contains("alert") {
        let e = explain_tls_error(e);
        return report.fail("TLS", format!("{e} (the server refused this client after the handshake)"));
    }
    let line = match e.kind() {
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset => {
            "the server closed the connection without answering the Upgrade; is this a WebSocket endpoint?".into()
        }
        ErrorKind::TimedOut | ErrorKind::WouldBlock => format!(
            "no complete answer to the Upgrade within {} s; is this a WebSocket (HTTP) endpoint?",
            options.timeout.as_secs()
        ),
        _ => format!("{e}; is this a WebSocket endpoint?"),
    };
    report.fail("HTTP Upgrade", line)
}

fn ping<S: Read + Write>(ws: &mut WebSocket<S>, report: &mut Report) -> Result<(), Failed> {
    let payload =
        format!("tinywss-check {}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
    let started = Instant::now();
    ws.send(Message::Ping(payload.clone().into_bytes().into())).map_err(|e| report.fail("ping", e.to_string()))?;
    loop {
        match ws.read() {
            Ok(Message::Pong(data)) if data.as_ref() == payload.as_bytes() => break,
            Ok(_) => continue,
            Err(e) => return Err(report.fail("ping", format!("no pong: {e}"))),
        }
    }
    report.ok("ping", format!("pong after {}", ms(started.elapsed())));
    Ok(())
}

fn close<S: Read + Write>(ws: &mut WebSocket<S>, report: &mut Report) -> Result<(), Failed> {
    let frame = tungstenite::protocol::CloseFrame { code: 1000.into(), reason: "check done".into() };
    let _ = ws.close(Some(frame));
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => {
                let code = frame.map_or("no code".into(), |f| u16::from(f.code).to_string());
                report.ok("close", format!("the server answered the close handshake ({code})"));
                return Ok(());
            }
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => {
                report.ok("close", "the server answered the close handshake".into());
                return Ok(());
            }
            Err(e) => {
                report.push("close", Outcome::Warning, vec![format!("no clean close handshake: {e}")]);
                return Ok(());
            }
        }
    }
}

/// Milliseconds with one decimal, in integers: nothing else in the program formats
/// floating-point numbers, and their formatting code is 18 KB of it.
fn ms(d: Duration) -> String {
    let tenths = (d.as_micros() + 50) / 100;
    format!("{}.{} ms", tenths / 10, tenths % 10)
}

fn days_until(now: SystemTime, then: SystemTime) -> i64 {
    match then.duration_since(now) {
        Ok(ahead) => (ahead.as_secs() / 86_400) as i64,
        Err(behind) => -((behind.duration().as_secs() / 86_400) as i64),
    }
}

/// `YYYY-MM-DD HH:MM UTC`.
fn utc(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_date::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rest / 3600, rest / 60 % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_are_16_random_bytes() {
        let (a, b) = (client_key().unwrap(), client_key().unwrap());
        assert_eq!((a.len(), &a[22..]), (24, "=="), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn a_response_head_keeps_what_follows() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n";
        assert!(parse_head(&head[..20]).unwrap().is_none());
        let mut stream = std::io::Cursor::new([&head[..], b"\x81\x02hi"].concat());
        let (response, rest) = read_head(&mut stream, Instant::now() + Duration::from_secs(1)).unwrap();
        assert_eq!((response.version, response.status, response.reason.as_str()), (1, 101, "Switching Protocols"));
        assert!(response.has_token("connection", "upgrade") && response.has_token("UPGRADE", "WebSocket"));
        assert_eq!(rest, b"\x81\x02hi");
        assert!(parse_head(b"\x16\x03\x01\x02\x00").is_err(), "TLS is not HTTP");
    }

    #[test]
    fn milliseconds_have_one_rounded_decimal() {
        let shown: Vec<_> = [0, 49, 50, 1_234, 10_960].iter().map(|&us| ms(Duration::from_micros(us))).collect();
        assert_eq!(shown, ["0.0 ms", "0.0 ms", "0.1 ms", "1.2 ms", "11.0 ms"]);
    }

    #[test]
    fn only_visible_ascii_reaches_the_request() {
        assert!(parse_url("ws://localhost/a b").is_err());
        assert!(parse_url("ws://local\rhost/").is_err());
        let target = parse_url("wss://[::1]:8443/chat?room=1").unwrap();
        let options = Options { subprotocols: vec!["a".into(), "b".into()], ..Options::new("") };
        let head = upgrade_request(&target, &options, "KEY");
        assert!(head.starts_with("GET /chat?room=1 HTTP/1.1\r\nHost: [::1]:8443\r\n"), "{head}");
        assert!(head.ends_with("Sec-WebSocket-Key: KEY\r\nSec-WebSocket-Protocol: a, b\r\n\r\n"), "{head}");
        assert!(!is_token("a b") && !is_token("") && is_token("chat.v2"));
    }
}
