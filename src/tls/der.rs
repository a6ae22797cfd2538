//! Just enough DER to read what the diagnostics need from an X.509 certificate: names,
//! validity dates and subject alternative names.
//!
//! Signatures and chains are verified by rustls/webpki, never here: this only describes
//! a certificate. Every read is bounds-checked and returns `None` on anything
//! unexpected, so any byte string is safe input (see the mutation test below).
//!
//! ```text
//! Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
//! TBSCertificate ::= SEQUENCE {
//!     [0] version OPTIONAL, serialNumber INTEGER, signature AlgorithmIdentifier,
//!     issuer Name, validity SEQUENCE { notBefore Time, notAfter Time }, subject Name,
//!     subjectPublicKeyInfo, [1] [2] unique ids OPTIONAL, [3] extensions OPTIONAL }
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION: u8 = 0xa0;
const EXTENSIONS: u8 = 0xa3;
/// id-ce-subjectAltName, 2.5.29.17.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// What a certificate says about itself, undecoded names kept as raw bytes for comparison.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) subject: String,
    pub(crate) common_name: Option<String>,
    pub(crate) issuer: String,
    /// Whether subject and issuer are the same name (byte for byte).
    pub(crate) self_issued: bool,
    /// Seconds since the Unix epoch (negative before 1970).
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) dns_names: Vec<String>,
    pub(crate) ip_addresses: Vec<IpAddr>,
    pub(crate) emails: Vec<String>,
    pub(crate) uris: Vec<String>,
}

/// A cursor over DER bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next tag and value. Only low tag numbers and definite lengths up to 4 bytes:
    /// certificates need no more.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
        };
        if rest.len() < len {
            return None;
        }
        let (value, after) = rest.split_at(len);
        self.0 = after;
        Some((tag, value))
    }

    /// The next value, which must carry `tag`.
    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.next()? {
            (t, value) if t == tag => Some(value),
            _ => None,
        }
    }

    /// The next value if it carries `tag`; otherwise nothing is consumed.
    fn optional(&mut self, tag: u8) -> Option<&'a [u8]> {
        if self.0.first() == Some(&tag) {
            self.expect(tag)
        } else {
            None
        }
    }
}

/// Reads a DER certificate; `None` when it is not one (or uses a form certificates do not).
pub(crate) fn parse_certificate(der: &[u8]) -> Option<Parsed> {
    let mut outer = Reader(der);
    let mut cert = Reader(outer.expect(SEQUENCE)?);
    let mut tbs = Reader(cert.expect(SEQUENCE)?);
    tbs.optional(VERSION);
    tbs.expect(INTEGER)?;
    tbs.expect(SEQUENCE)?;
    let issuer = tbs.expect(SEQUENCE)?;
    let mut validity = Reader(tbs.expect(SEQUENCE)?);
    let not_before = read_time(&mut validity)?;
    let not_after = read_time(&mut validity)?;
    let subject = tbs.expect(SEQUENCE)?;
    tbs.expect(SEQUENCE)?;
    let mut parsed = Parsed {
        subject: name_to_string(subject)?,
        common_name: common_name(subject),
        issuer: name_to_string(issuer)?,
        self_issued: subject == issuer,
        not_before,
        not_after,
        ..Parsed::default()
    };
    while !tbs.is_empty() {
        let (tag, value) = tbs.next()?;
        if tag == EXTENSIONS {
            read_extensions(value, &mut parsed)?;
        }
    }
    Some(parsed)
}

fn read_extensions(explicit: &[u8], parsed: &mut Parsed) -> Option<()> {
    let mut list = Reader(Reader(explicit).expect(SEQUENCE)?);
    while !list.is_empty() {
        let mut ext = Reader(list.expect(SEQUENCE)?);
        let oid = ext.expect(OID)?;
        ext.optional(BOOLEAN);
        let value = ext.expect(OCTET_STRING)?;
        if oid == SUBJECT_ALT_NAME {
            read_alt_names(value, parsed)?;
        }
    }
    Some(())
}

/// GeneralNames: rfc822Name [1], dNSName [2], uniformResourceIdentifier [6], iPAddress [7];
/// the other forms are skipped.
fn read_alt_names(value: &[u8], parsed: &mut Parsed) -> Option<()> {
    let mut names = Reader(Reader(value).expect(SEQUENCE)?);
    while !names.is_empty() {
        let (tag, name) = names.next()?;
        let text = || String::from_utf8_lossy(name).into_owned();
        match tag {
            0x81 => parsed.emails.push(text()),
            0x82 => parsed.dns_names.push(text()),
            0x86 => parsed.uris.push(text()),
            0x87 => parsed.ip_addresses.push(ip_address(name)?),
            _ => {}
        }
    }
    Some(())
}

fn ip_address(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::V4(Ipv4Addr::from(v4)))
    } else {
        <[u8; 16]>::try_from(bytes).ok().map(|v6| IpAddr::V6(Ipv6Addr::from(v6)))
    }
}

/// Each attribute of a Name, in the order it is encoded: (type OID, value tag, value).
fn attributes(name: &[u8]) -> impl Iterator<Item = Option<(&[u8], u8, &[u8])>> {
    let mut rdns = Reader(name);
    let mut current = Reader(&[]);
    std::iter::from_fn(move || {
        while current.is_empty() {
            if rdns.is_empty() {
                return None;
            }
            match rdns.expect(SET) {
                Some(set) => current = Reader(set),
                None => return Some(None),
            }
        }
        let mut attribute = || {
            let mut pair = Reader(current.expect(SEQUENCE)?);
            let oid = pair.expect(OID)?;
            let (tag, value) = pair.next()?;
            Some((oid, tag, value))
        };
        let item = attribute();
        if item.is_none() {
            // Stop after a malformed attribute: the caller sees `None` and gives up.
            rdns = Reader(&[]);
            current = Reader(&[]);
        }
        Some(item)
    })
}

/// A Name as `CN=localhost, O=Example`, in encoded order (as `openssl x509 -subject` shows it).
fn name_to_string(name: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    for attribute in attributes(name) {
        let (oid, tag, value) = attribute?;
        parts.push(format!("{}={}", attribute_label(oid), string_value(tag, value)));
    }
    Some(parts.join(", "))
}

/// The last commonName of a Name, if any.
fn common_name(name: &[u8]) -> Option<String> {
    attributes(name)
        .map_while(|a| a)
        .filter(|(oid, _, _)| *oid == [0x55, 0x04, 0x03])
        .last()
        .map(|(_, tag, value)| string_value(tag, value))
}

fn attribute_label(oid: &[u8]) -> String {
    let label = match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        _ => return dotted_oid(oid),
    };
    label.to_owned()
}

/// An OID in dotted form, e.g. `2.5.4.3`; `?` for a malformed one.
fn dotted_oid(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &byte in oid {
        value = match value.checked_mul(128) {
            Some(v) => v | u64::from(byte & 0x7f),
            None => return "?".into(),
        };
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.extend([first, value - first * 40]);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if arcs.is_empty() || oid.last().is_some_and(|b| b & 0x80 != 0) {
        return "?".into();
    }
    arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// The text of a directory string: UTF8String, PrintableString, IA5String and
/// TeletexString (read as Latin-1), BMPString (UTF-16); other types as hex.
fn string_value(tag: u8, value: &[u8]) -> String {
    match tag {
        0x0c | 0x13 | 0x16 => String::from_utf8_lossy(value).into_owned(),
        0x14 => value.iter().map(|&b| char::from(b)).collect(),
        0x1e => {
            let units = value.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
        }
        _ => value.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    }
}

/// UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ` (the only forms DER allows),
/// as seconds since the Unix epoch.
fn read_time(reader: &mut Reader<'_>) -> Option<i64> {
    let (tag, text) = reader.next()?;
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 15) => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest[10] != b'Z' {
        return None;
    }
    let (month, day) = (digits(&rest[0..2])?, digits(&rest[2..4])?);
    let (hour, minute, second) = (digits(&rest[4..6])?, digits(&rest[6..8])?, digits(&rest[8..10])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

fn digits(text: &[u8]) -> Option<i64> {
    text.iter().try_fold(0i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01: (year, month, day).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate() -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(vec!["example.org".into(), "*.example.org".into(), "10.0.0.1".into()])
                .unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "example.org");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Exämple Ltd");
        params.subject_alt_names.push(rcgen::SanType::Rfc822Name("ops@example.org".try_into().unwrap()));
        params.not_before = rcgen::date_time_ymd(2024, 2, 29);
        params.not_after = rcgen::date_time_ymd(2051, 12, 31);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_names_dates_and_alt_names() {
        let parsed = parse_certificate(&certificate()).unwrap();
        assert_eq!(parsed.subject, "CN=example.org, O=Exämple Ltd");
        assert_eq!(parsed.common_name.as_deref(), Some("example.org"));
        assert_eq!(parsed.issuer, parsed.subject);
        assert!(parsed.self_issued);
        // 2024-02-29 (a leap day, UTCTime) and 2051-12-31 (GeneralizedTime after 2049).
        assert_eq!(parsed.not_before, 1_709_164_800);
        assert_eq!(parsed.not_after, 2_587_593_600);
        assert_eq!(parsed.dns_names, ["example.org", "*.example.org"]);
        assert_eq!(parsed.ip_addresses, [IpAddr::from([10, 0, 0, 1])]);
        assert_eq!(parsed.emails, ["ops@example.org"]);
    }

    #[test]
    fn dates_round_trip() {
        for days in [-719_468, -1, 0, 1, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn oids_in_dotted_form() {
        assert_eq!(dotted_oid(&[0x55, 0x04, 0x03]), "2.5.4.3");
        assert_eq!(dotted_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]), "1.2.840.113549");
        assert_eq!(dotted_oid(&[0x2a, 0x86]), "?");
        assert_eq!(dotted_oid(&[0xff; 12]), "?");
    }

    #[test]
    fn rejects_what_is_not_a_certificate() {
        assert_eq!(parse_certificate(b""), None);
        assert_eq!(parse_certificate(b"-----BEGIN CERTIFICATE-----"), None);
        assert_eq!(parse_certificate(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(parse_certificate(&[0x30, 0x80, 0x00, 0x00]), None);
    }

    /// Every truncation and ~100k random corruptions of a real certificate: never a
    /// panic, whatever comes back (a deterministic stand-in for a fuzzer).
    #[test]
    fn any_bytes_are_safe_input() {
        let der = certificate();
        for len in 0..der.len() {
            assert_eq!(parse_certificate(&der[..len]), None, "truncated to {len}");
        }
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut random = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut parsed = 0;
        for _ in 0..100_000 {
            let mut bytes = der.clone();
            for _ in 0..=(random() % 4) {
                let at = (random() % bytes.len() as u64) as usize;
                bytes[at] = random() as u8;
            }
            parsed += usize::from(parse_certificate(&bytes).is_some());
        }
        // Most single-byte changes land in the key or signature and still parse.
        assert!(parsed > 10_000, "{parsed}");
    }
}
