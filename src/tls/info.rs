//! [`CertificateInfo`]: what a certificate says about its holder, for people and logs.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::der;

/// What an X.509 certificate says: who it names, who issued it, when it is valid.
///
/// The server describes the client certificate of a connection with it
/// ([`ConnectionInfo::client_certificate`](crate::ConnectionInfo)). It is a description
/// only: whether a certificate is trusted is decided by the TLS layer before any
/// `CertificateInfo` exists.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateInfo {
    /// The subject name, e.g. `CN=alice, O=Example` (attributes in encoded order).
    pub subject: String,
    /// The subject's common name (`CN`), if it has one.
    pub common_name: Option<String>,
    /// The issuer's name, in the same form as `subject`.
    pub issuer: String,
    /// DNS names among the subject alternative names.
    pub dns_names: Vec<String>,
    /// IP addresses among the subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// E-mail addresses (rfc822Name) among the subject alternative names.
    pub emails: Vec<String>,
    /// URIs among the subject alternative names (e.g. SPIFFE ids).
    pub uris: Vec<String>,
    /// The start of the validity period.
    pub not_before: SystemTime,
    /// The end of the validity period.
    pub not_after: SystemTime,
    /// The SHA-256 fingerprint of the DER certificate, as colon-separated uppercase hex
    /// (the form browsers and `openssl x509 -fingerprint -sha256` show).
    pub sha256_fingerprint: String,
    self_issued: bool,
}

impl CertificateInfo {
    /// Describes a DER-encoded certificate; `None` when the bytes are not one.
    pub fn from_der(der: &[u8]) -> Option<CertificateInfo> {
        let parsed = der::parse_certificate(der)?;
        Some(CertificateInfo {
            subject: parsed.subject,
            common_name: parsed.common_name,
            issuer: parsed.issuer,
            dns_names: parsed.dns_names,
            ip_addresses: parsed.ip_addresses,
            emails: parsed.emails,
            uris: parsed.uris,
            not_before: system_time(parsed.not_before),
            not_after: system_time(parsed.not_after),
            sha256_fingerprint: sha256_fingerprint(der),
            self_issued: parsed.self_issued,
        })
    }

    /// Whether the issuer is the subject itself (a self-signed certificate or a root CA).
    pub fn is_self_issued(&self) -> bool {
        self.self_issued
    }

    /// Every subject alternative name as text: DNS names, then IP addresses, e-mails, URIs.
    pub fn alt_names(&self) -> Vec<String> {
        let ips = self.ip_addresses.iter().map(IpAddr::to_string);
        self.dns_names
            .iter()
            .cloned()
            .chain(ips)
            .chain(self.emails.iter().cloned())
            .chain(self.uris.iter().cloned())
            .collect()
    }

    /// A short name for messages: the common name, else the first alternative name,
    /// else the whole subject.
    pub(crate) fn short_name(&self) -> String {
        self.common_name.clone().or_else(|| self.alt_names().into_iter().next()).unwrap_or_else(|| self.subject.clone())
    }
}

impl fmt::Display for CertificateInfo {
    /// `subject (issued by issuer), valid from .. until ..`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (issued by {}), valid from {} until {}",
            self.subject,
            self.issuer,
            utc(self.not_before),
            utc(self.not_after)
        )
    }
}

fn system_time(unix: i64) -> SystemTime {
    let magnitude = Duration::from_secs(unix.unsigned_abs());
    let time = if unix >= 0 { UNIX_EPOCH.checked_add(magnitude) } else { UNIX_EPOCH.checked_sub(magnitude) };
    time.unwrap_or(UNIX_EPOCH)
}

/// `YYYY-MM-DD HH:MM:SS UTC`, for messages.
pub(crate) fn utc(time: SystemTime) -> String {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX / 2),
    };
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = der::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest / 60 % 60, rest % 60)
}

/// Whole days from `now` to `then` (negative when `then` is past), rounded toward zero.
pub(crate) fn days_between(now: SystemTime, then: SystemTime) -> i64 {
    match then.duration_since(now) {
        Ok(ahead) => (ahead.as_secs() / 86_400) as i64,
        Err(behind) => -((behind.duration().as_secs() / 86_400) as i64),
    }
}

pub(crate) fn sha256_fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(system_time(1_709_251_199)), "2024-02-29 23:59:59 UTC");
        assert_eq!(utc(system_time(-1)), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn days_between_rounds_toward_zero() {
        let now = system_time(1_000_000);
        assert_eq!(days_between(now, system_time(1_000_000 + 86_400 * 3 + 5)), 3);
        assert_eq!(days_between(now, system_time(1_000_000 - 86_400 * 2 - 5)), -2);
    }

    #[test]
    fn fingerprint_of_known_input() {
        // SHA-256 of the empty string.
        assert!(sha256_fingerprint(b"").starts_with("E3:B0:C4:42:98:FC:1C:14"));
    }
}
