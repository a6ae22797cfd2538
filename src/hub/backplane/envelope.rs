//! The envelope: the bytes of every message the backplane puts on Redis, and their
//! checks on the way back. Binary, so a binary WebSocket message travels as is (no
//! base64), and small: the header of a room message is 14 bytes plus the node's name
//! and the room's.
//!
//! ```text
//!  every envelope   version (1 byte, = 1) │ kind (1) │ node name length n (1) │ node name (n, ASCII)
//!  1 room message   flags (1: bit 0 = binary) │ sender's connection (8, big-endian; 0 = none)
//!                   │ room length r (2) │ room (r, UTF-8) │ payload (the rest)
//!  2 broadcast      flags (1) │ sender's connection (8) │ payload (the rest)
//!  3 heartbeat      presence version (8) │ heartbeat interval in ms (4) │ incarnation (8)
//!  4 presence       version (8) │ replace (1) │ count (4) │ count × [room length (2) │ room │ members (4)]
//!  5 hello          (nothing more: every node answers with its whole presence)
//!  6 goodbye        (nothing more: the node is shutting down)
//! ```
//!
//! Kinds 1 and 2 travel on `PREFIX:messages`, kinds 3 to 6 on `PREFIX:nodes`. A text
//! payload is UTF-8. An envelope of another version, kind or channel, or one cut short,
//! is malformed: skipped and counted, never trusted.

use tungstenite::Message as WsMessage;

use crate::ConnectionId;

/// The only version this code writes and reads.
pub(crate) const VERSION: u8 = 1;

const ROOM: u8 = 1;
const BROADCAST: u8 = 2;
const HEARTBEAT: u8 = 3;
const PRESENCE: u8 = 4;
const HELLO: u8 = 5;
const GOODBYE: u8 = 6;

const BINARY: u8 = 1;

/// A presence envelope holds at most this many bytes of rooms; a larger presence goes
/// in several envelopes, one version each.
pub(crate) const PRESENCE_CHUNK: usize = 32 << 10;

/// The largest envelope accepted on the nodes channel (a presence chunk with its
/// header fits with room to spare).
pub(crate) const MAX_CONTROL: usize = 64 << 10;

/// What a received envelope says. It borrows the received bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    pub(crate) node: &'a str,
    pub(crate) body: Body<'a>,
}

/// The part that depends on the kind.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    /// For the members of `room` (`None`: for every client).
    Message {
        room: Option<&'a str>,
        except: Option<ConnectionId>,
        payload: Payload<'a>,
    },
    Heartbeat {
        version: u64,
        interval_ms: u32,
        incarnation: u64,
    },
    Presence {
        version: u64,
        replace: bool,
        rooms: Vec<(&'a str, u32)>,
    },
    Hello,
    Goodbye,
}

/// A WebSocket message's payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Payload<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl Payload<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Payload::Text(text) => text.len(),
            Payload::Binary(data) => data.len(),
        }
    }

    pub(crate) fn to_ws(&self) -> WsMessage {
        match self {
            Payload::Text(text) => WsMessage::text(*text),
            Payload::Binary(data) => WsMessage::binary(data.to_vec()),
        }
    }
}

impl Body<'_> {
    /// Whether it belongs on the messages channel (or on the nodes channel).
    pub(crate) fn is_message(&self) -> bool {
        matches!(self, Body::Message { .. })
    }
}

/// Appends a room message or a broadcast (`room` = `None`) to `out`; `false` (and
/// nothing appended) when the room name is too long for the envelope.
pub(crate) fn write_message(
    out: &mut Vec<u8>,
    node: &str,
    room: Option<&str>,
    except: Option<ConnectionId>,
    message: &WsMessage,
) -> bool {
    let (flags, payload): (u8, &[u8]) = match message {
        WsMessage::Text(text) => (0, text.as_bytes()),
        WsMessage::Binary(data) => (BINARY, data),
        _ => return false,
    };
    let room_len = match room.map(|room| u16::try_from(room.len())) {
        Some(Err(_)) => return false,
        Some(Ok(n)) => Some(n),
        None => None,
    };
    header(out, if room.is_some() { ROOM } else { BROADCAST }, node);
    out.push(flags);
    out.extend_from_slice(&except.map_or(0, ConnectionId::as_u64).to_be_bytes());
    if let (Some(room), Some(len)) = (room, room_len) {
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(room.as_bytes());
    }
    out.extend_from_slice(payload);
    true
}

/// How long the envelope of a message is, before it is written.
pub(crate) fn message_len(node: &str, room: Option<&str>, payload_len: usize) -> usize {
    3 + node.len() + 1 + 8 + room.map_or(0, |room| 2 + room.len()) + payload_len
}

pub(crate) fn heartbeat(node: &str, version: u64, interval_ms: u32, incarnation: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + node.len() + 20);
    header(&mut out, HEARTBEAT, node);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&interval_ms.to_be_bytes());
    out.extend_from_slice(&incarnation.to_be_bytes());
    out
}

pub(crate) fn hello(node: &str) -> Vec<u8> {
    let mut out = Vec::new();
    header(&mut out, HELLO, node);
    out
}

pub(crate) fn goodbye(node: &str) -> Vec<u8> {
    let mut out = Vec::new();
    header(&mut out, GOODBYE, node);
    out
}

/// Presence in envelopes of at most [`PRESENCE_CHUNK`] bytes of rooms: the first
/// carries version `first_version` and `replace`, each next one the next version and
/// adds to it. At least one envelope, so that an empty replacement is sent too. Rooms
/// whose names do not fit a chunk are left out.
pub(crate) fn presence(node: &str, first_version: u64, replace: bool, rooms: &[(String, u32)]) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut rest = rooms.iter().filter(|(room, _)| room.len() + 6 <= PRESENCE_CHUNK).peekable();
    loop {
        let version = first_version + chunks.len() as u64;
        let mut entries = Vec::new();
        let mut count = 0u32;
        while let Some((room, members)) = rest.next_if(|(room, _)| entries.len() + room.len() + 6 <= PRESENCE_CHUNK) {
            entries.extend_from_slice(&(room.len() as u16).to_be_bytes());
            entries.extend_from_slice(room.as_bytes());
            entries.extend_from_slice(&members.to_be_bytes());
            count += 1;
        }
        let mut out = Vec::with_capacity(3 + node.len() + 13 + entries.len());
        header(&mut out, PRESENCE, node);
        out.extend_from_slice(&version.to_be_bytes());
        out.push(u8::from(replace && chunks.is_empty()));
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&entries);
        chunks.push(out);
        if rest.peek().is_none() {
            return chunks;
        }
    }
}

fn header(out: &mut Vec<u8>, kind: u8, node: &str) {
    out.extend_from_slice(&[VERSION, kind, node.len() as u8]);
    out.extend_from_slice(node.as_bytes());
}

/// Why an envelope was refused.
pub(crate) type Malformed = &'static str;

/// Reads an envelope, checking every length against the bytes that are there.
pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope<'_>, Malformed> {
    let mut r = Reader(bytes);
    if r.u8()? != VERSION {
        return Err("unknown envelope version");
    }
    let kind = r.u8()?;
    let name_len = r.u8()? as usize;
    let node = node_name(r.take(name_len)?)?;
    let body = match kind {
        ROOM | BROADCAST => {
            let flags = r.u8()?;
            let except = Some(r.u64()?).filter(|&id| id != 0).map(ConnectionId);
            let room = if kind == ROOM { Some(r.str()?) } else { None };
            let payload = if flags & BINARY != 0 {
                Payload::Binary(r.0)
            } else {
                Payload::Text(std::str::from_utf8(r.0).map_err(|_| "text that is not UTF-8")?)
            };
            return Ok(Envelope { node, body: Body::Message { room, except, payload } });
        }
        HEARTBEAT => Body::Heartbeat { version: r.u64()?, interval_ms: r.u32()?, incarnation: r.u64()? },
        PRESENCE => presence_body(&mut r)?,
        HELLO => Body::Hello,
        GOODBYE => Body::Goodbye,
        _ => return Err("unknown envelope kind"),
    };
    if !r.0.is_empty() {
        return Err("bytes after the end of the envelope");
    }
    Ok(Envelope { node, body })
}

fn presence_body<'a>(r: &mut Reader<'a>) -> Result<Body<'a>, Malformed> {
    let version = r.u64()?;
    let replace = r.u8()? != 0;
    let count = r.u32()? as usize;
    // Each entry takes at least 6 bytes: a count larger than that is a lie, and must
    // not size an allocation.
    if count > r.0.len() / 6 {
        return Err("more presence entries announced than sent");
    }
    let mut rooms = Vec::with_capacity(count);
    for _ in 0..count {
        rooms.push((r.str()?, r.u32()?));
    }
    Ok(Body::Presence { version, replace, rooms })
}

/// A node name must be printable ASCII: other nodes' names go into log lines.
fn node_name(bytes: &[u8]) -> Result<&str, Malformed> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err("a node name that is empty or not printable ASCII");
    }
    std::str::from_utf8(bytes).map_err(|_| "a node name that is not ASCII")
}

/// The unread rest of an envelope.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err("an envelope cut short");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| "an envelope cut short")?))
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| "an envelope cut short")?))
    }

    /// A string with a 2-byte length before it.
    fn str(&mut self) -> Result<&'a str, Malformed> {
        let len = u16::from_be_bytes([self.u8()?, self.u8()?]) as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| "a room name that is not UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(room: Option<&str>, except: Option<ConnectionId>, message: &WsMessage) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(write_message(&mut out, "node-1", room, except, message));
        assert_eq!(out.len(), message_len("node-1", room, message.len()));
        out
    }

    #[test]
    fn messages_round_trip() {
        let text = message(Some("lobby"), Some(ConnectionId(7)), &WsMessage::text("héllo"));
        let decoded = decode(&text).unwrap();
        assert_eq!(decoded.node, "node-1");
        let payload = Payload::Text("héllo");
        assert_eq!(decoded.body, Body::Message { room: Some("lobby"), except: Some(ConnectionId(7)), payload });
        let binary = message(None, None, &WsMessage::binary(vec![0, 159, 146, 150]));
        let payload = Payload::Binary(&[0, 159, 146, 150]);
        assert_eq!(decode(&binary).unwrap().body, Body::Message { room: None, except: None, payload });
    }

    #[test]
    fn control_round_trips() {
        let beat = heartbeat("n", 42, 5000, 9);
        assert_eq!(decode(&beat).unwrap().body, Body::Heartbeat { version: 42, interval_ms: 5000, incarnation: 9 });
        assert_eq!(decode(&hello("n")).unwrap().body, Body::Hello);
        assert_eq!(decode(&goodbye("n")).unwrap().body, Body::Goodbye);
        let rooms = vec![("a".to_string(), 1), ("b".to_string(), 0)];
        let chunks = presence("n", 5, true, &rooms);
        assert_eq!(chunks.len(), 1);
        let body = decode(&chunks[0]).unwrap().body;
        assert_eq!(body, Body::Presence { version: 5, replace: true, rooms: vec![("a", 1), ("b", 0)] });
        let empty = presence("n", 1, true, &[]);
        assert_eq!(decode(&empty[0]).unwrap().body, Body::Presence { version: 1, replace: true, rooms: vec![] });
    }

    #[test]
    fn a_large_presence_goes_in_chunks_of_consecutive_versions() {
        let rooms: Vec<_> = (0..5000).map(|i| (format!("room-number-{i:05}"), i)).collect();
        let chunks = presence("n", 10, true, &rooms);
        assert!(chunks.len() > 1 && chunks.iter().all(|c| c.len() <= PRESENCE_CHUNK + 20));
        let mut seen = 0;
        for (i, chunk) in chunks.iter().enumerate() {
            let Body::Presence { version, replace, rooms } = decode(chunk).unwrap().body else { panic!() };
            assert_eq!((version, replace), (10 + i as u64, i == 0));
            seen += rooms.len();
        }
        assert_eq!(seen, 5000);
    }

    #[test]
    fn a_room_name_too_long_for_the_envelope_is_refused() {
        let mut out = Vec::new();
        assert!(!write_message(&mut out, "n", Some(&"r".repeat(70_000)), None, &WsMessage::text("x")));
        assert!(out.is_empty());
    }

    #[test]
    fn malformed_envelopes_are_refused_whatever_their_bytes() {
        let good = message(Some("lobby"), None, &WsMessage::text("hello"));
        for cut in 0..good.len() - "hello".len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_name = good.clone();
        bad_name[3] = b'\n';
        assert!(decode(&bad_name).is_err());
        let mut not_utf8 = good.clone();
        *not_utf8.last_mut().unwrap() = 0xff;
        assert_eq!(decode(&not_utf8), Err("text that is not UTF-8"));
        let mut lying = presence("n", 1, true, &[("a".into(), 1)]).remove(0);
        lying[3 + 1 + 9..3 + 1 + 13].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&lying), Err("more presence entries announced than sent"));
        // Every byte string of up to 3 bytes, and a sweep over longer ones: no panic.
        for len in 0..4usize {
            for n in 0..(1u32 << (8 * len.min(2))) {
                let bytes: Vec<u8> = (0..len).map(|i| (n >> (8 * (i % 2))) as u8).collect();
                let _ = decode(&bytes);
            }
        }
        for seed in 0..2000u32 {
            let bytes: Vec<u8> =
                (0..(seed % 64)).map(|i| (seed.wrapping_mul(2654435761).rotate_left(i)) as u8).collect();
            let mut with_header = vec![VERSION, (seed % 8) as u8, 1, b'x'];
            with_header.extend_from_slice(&bytes);
            let _ = decode(&with_header);
        }
    }
}
