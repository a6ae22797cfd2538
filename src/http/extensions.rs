//! `Sec-WebSocket-Extensions` negotiation for permessage-deflate (RFC 7692 §5, §7.1).
//!
//! The client lists offers in order of preference, each an extension name and its
//! parameters:
//!
//! ```text
//! Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=10,
//!                           permessage-deflate; client_max_window_bits
//! ```
//!
//! The server accepts at most one offer and answers with the parameters both sides will
//! use; an offer it cannot honour, or one that breaks the grammar, is declined (§7.1:
//! unknown or repeated parameters, bad values), and the next offer is tried. No answer
//! at all means no compression: the connection works as plain RFC 6455.

use std::fmt;

/// What the server is willing to do, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeflateSettings {
    /// Keep the compression state between messages (better ratio, memory per connection).
    pub(crate) context_takeover: bool,
    /// The largest LZ77 window the server will use or ask for, 9 to 15.
    pub(crate) window_bits: u8,
}

/// The parameters both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeflateParams {
    /// The server resets its compressor after each message.
    pub(crate) server_no_context_takeover: bool,
    /// The client resets its compressor after each message, so our inflater may too.
    pub(crate) client_no_context_takeover: bool,
    /// The window the server compresses with.
    pub(crate) server_max_window_bits: u8,
    /// The largest window the client may compress with, so the one we inflate with.
    pub(crate) client_max_window_bits: u8,
    /// Whether the answer names client_max_window_bits (only when the client offered it).
    announce_client_window: bool,
    /// Whether the answer names server_max_window_bits.
    announce_server_window: bool,
}

/// The extension's name in the header.
const NAME: &str = "permessage-deflate";

/// The smallest window we compress with: zlib's deflate cannot use 8 bits (256 bytes)
/// with a raw stream, so an offer that demands it is declined (§7.1.2.1 allows that).
const MIN_SERVER_WINDOW: u8 = 9;

/// Picks the first acceptable permessage-deflate offer among the header values.
pub(crate) fn negotiate<'a>(
    offers: impl Iterator<Item = &'a str>,
    ours: Option<DeflateSettings>,
) -> Option<DeflateParams> {
    let ours = ours?;
    offers.filter_map(|offer| parse_offer(offer).ok().flatten()).find_map(|offer| accept(&offer, ours))
}

/// One permessage-deflate offer, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: offered without a value ("I can limit my window if you ask").
    client_max_window_bits: Option<Option<u8>>,
}

/// `Ok(None)` for another extension; `Err` for a permessage-deflate offer that breaks
/// the grammar (the reason, for the tests).
fn parse_offer(offer: &str) -> Result<Option<Offer>, &'static str> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next().is_some_and(|name| name.eq_ignore_ascii_case(NAME)) {
        return Ok(None);
    }
    let mut parsed = Offer::default();
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(unquote(value.trim())?)),
            None => (param, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if !parsed.server_no_context_takeover => {
                parsed.server_no_context_takeover = true
            }
            ("client_no_context_takeover", None) if !parsed.client_no_context_takeover => {
                parsed.client_no_context_takeover = true
            }
            ("server_max_window_bits", Some(value)) if parsed.server_max_window_bits.is_none() => {
                parsed.server_max_window_bits = Some(window_bits(value)?)
            }
            ("client_max_window_bits", value) if parsed.client_max_window_bits.is_none() => {
                parsed.client_max_window_bits = Some(value.map(window_bits).transpose()?)
            }
            _ => return Err("an unknown, repeated or malformed parameter"),
        }
    }
    Ok(Some(parsed))
}

/// A quoted-string value (RFC 7230 §3.2.6) means the same as the bare token (§7.1).
fn unquote(value: &str) -> Result<&str, &'static str> {
    match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').filter(|v| !v.contains(['"', '\\'])).ok_or("a broken quoted value"),
        None => Ok(value),
    }
}

/// A window size: a decimal 8 to 15 without leading zeros (§7.1.2.1).
fn window_bits(value: &str) -> Result<u8, &'static str> {
    match value.parse::<u8>() {
        Ok(bits @ 8..=15) if !value.starts_with(['0', '+']) => Ok(bits),
        _ => Err("a window size that is not 8 to 15"),
    }
}

/// The parameters we answer an acceptable offer with, or `None` to decline it.
fn accept(offer: &Offer, ours: DeflateSettings) -> Option<DeflateParams> {
    let server_window = ours.window_bits.min(offer.server_max_window_bits.unwrap_or(15));
    if server_window < MIN_SERVER_WINDOW {
        return None;
    }
    // With context takeover we keep the client's window between messages: ask for the
    // smaller window when the client said it can limit it; otherwise 32 KiB it is.
    let client_window = match offer.client_max_window_bits {
        Some(limit) if ours.context_takeover => limit.unwrap_or(15).min(ours.window_bits),
        Some(limit) => limit.unwrap_or(15),
        None => 15,
    };
    Some(DeflateParams {
        server_no_context_takeover: !ours.context_takeover || offer.server_no_context_takeover,
        // §7.1.1.2: the server may ask this of any client; without context takeover we
        // keep no inflate state between messages either.
        client_no_context_takeover: !ours.context_takeover || offer.client_no_context_takeover,
        server_max_window_bits: server_window,
        client_max_window_bits: client_window,
        announce_client_window: ours.context_takeover && offer.client_max_window_bits.is_some(),
        announce_server_window: offer.server_max_window_bits.is_some() || server_window < 15,
    })
}

/// The `Sec-WebSocket-Extensions` value of the 101 response.
impl fmt::Display for DeflateParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NAME)?;
        if self.server_no_context_takeover {
            f.write_str("; server_no_context_takeover")?;
        }
        if self.client_no_context_takeover {
            f.write_str("; client_no_context_takeover")?;
        }
        if self.announce_server_window {
            write!(f, "; server_max_window_bits={}", self.server_max_window_bits)?;
        }
        if self.announce_client_window {
            write!(f, "; client_max_window_bits={}", self.client_max_window_bits)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_TAKEOVER: DeflateSettings = DeflateSettings { context_takeover: false, window_bits: 15 };
    const TAKEOVER_10: DeflateSettings = DeflateSettings { context_takeover: true, window_bits: 10 };
    const TAKEOVER_15: DeflateSettings = DeflateSettings { context_takeover: true, window_bits: 15 };

    /// The answer to a header value, split the way the request splits header lists.
    fn answer(header: &str, ours: DeflateSettings) -> Option<String> {
        negotiate(header.split(',').map(str::trim), Some(ours)).map(|p| p.to_string())
    }

    #[test]
    fn rfc_7692_examples() {
        // §7.1.3 and §8.2.x: the plain offer, accepted as it is.
        assert_eq!(answer("permessage-deflate", TAKEOVER_15).as_deref(), Some("permessage-deflate"));
        // §5.2: two offers; the first is acceptable, so it is the one answered.
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits", TAKEOVER_15)
                .as_deref(),
            Some("permessage-deflate; server_max_window_bits=10; client_max_window_bits=15")
        );
        // §7.1.2.2: client_max_window_bits without a value; we may name a smaller one.
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits", TAKEOVER_10).as_deref(),
            Some("permessage-deflate; server_max_window_bits=10; client_max_window_bits=10")
        );
        // §7.1.1.1: the client asks the server not to keep its context.
        assert_eq!(
            answer("permessage-deflate; server_no_context_takeover", TAKEOVER_15).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    #[test]
    fn no_context_takeover_resets_both_directions() {
        // What browsers, Python websockets and Node ws send by default.
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits", NO_TAKEOVER).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
        let params = negotiate(["permessage-deflate"].into_iter(), Some(NO_TAKEOVER)).unwrap();
        assert!(params.server_no_context_takeover && params.client_no_context_takeover);
        assert_eq!((params.server_max_window_bits, params.client_max_window_bits), (15, 15));
    }

    #[test]
    fn a_smaller_server_window_is_honoured() {
        let params = negotiate(["permessage-deflate; server_max_window_bits=12"].into_iter(), Some(TAKEOVER_15));
        assert_eq!(params.unwrap().server_max_window_bits, 12);
        assert_eq!(
            answer("permessage-deflate; server_max_window_bits=\"12\"", TAKEOVER_10).as_deref(),
            Some("permessage-deflate; server_max_window_bits=10")
        );
    }

    #[test]
    fn malformed_offers_are_declined_and_the_next_one_tried() {
        for bad in [
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=x",
            "permessage-deflate; client_max_window_bits=\"9",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits=9; client_max_window_bits=10",
            "permessage-deflate; foo=1",
            "permessage-deflate; ",
        ] {
            assert!(parse_offer(bad).is_err(), "{bad}");
            assert_eq!(answer(bad, TAKEOVER_15), None, "{bad}");
            let with_fallback = format!("{bad}, permessage-deflate");
            assert_eq!(answer(&with_fallback, TAKEOVER_15).as_deref(), Some("permessage-deflate"), "{bad}");
        }
    }

    #[test]
    fn declined_without_an_offer_or_when_off() {
        assert_eq!(answer("x-webkit-deflate-frame", TAKEOVER_15), None);
        assert_eq!(answer("", TAKEOVER_15), None);
        assert_eq!(negotiate(["permessage-deflate"].into_iter(), None), None);
        // A window of 8 bits cannot be honoured by the compressor: declined, not lied about.
        assert_eq!(answer("permessage-deflate; server_max_window_bits=8", TAKEOVER_15), None);
        // Other extensions before ours are skipped; names are case-insensitive.
        assert_eq!(answer("foo; bar=1, Permessage-Deflate", TAKEOVER_15).as_deref(), Some("permessage-deflate"));
    }
}
