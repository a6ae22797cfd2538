//! What the application receives: [`Event`]s about connections, carrying [`Message`]s.

use std::fmt;
use std::net::SocketAddr;

use crate::{AppData, CertificateInfo, Error};

/// Identifies one client connection for the lifetime of the server.
///
/// Ids are assigned in accept order and never reused, so a stale id can never address
/// a newer connection by accident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub(crate) u64);

impl ConnectionId {
    /// The id as a number (the same number the logs show).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// A map keyed by connection id, for the maps every message passes through (the
/// registry's connections, the events channel's shares). Ids are handed out by the
/// server in sequence, never chosen by a client, so they need no protection against
/// chosen collisions: a multiply spreads them in place of SipHash, which was 1.4% of
/// the server's CPU in events mode at 50 connections x 32 messages in flight.
pub(crate) type IdMap<V> = std::collections::HashMap<ConnectionId, V, std::hash::BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdMap`]: Fibonacci hashing of the id's `u64`.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for a `ConnectionId`; anything else still hashes.
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // The multiply mixes the id into the high bits, where the table takes its tag;
        // the low bits, its bucket, stay distinct for ids in sequence.
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A WebSocket data message: the unit the application sends and receives.
///
/// Control frames (ping, pong, close) are handled by the connection thread and never
/// appear here; fragmented messages arrive reassembled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message (opcode 0x1); always valid UTF-8.
    Text(String),
    /// A binary message (opcode 0x2).
    Binary(Vec<u8>),
}

impl Message {
    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(text) => text.len(),
            Message::Binary(data) => data.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload as bytes, whatever the kind.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) => data,
        }
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::Text(text.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Message::Binary(data)
    }
}

impl From<&[u8]> for Message {
    fn from(data: &[u8]) -> Self {
        Message::Binary(data.to_vec())
    }
}

/// What is known about a connection once its WebSocket handshake has succeeded.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection's id.
    pub id: ConnectionId,
    /// The client's address.
    pub peer: SocketAddr,
    /// The request target of the Upgrade request: path and query, e.g. `/chat?room=1`.
    pub path: String,
    /// The subprotocol both sides agreed on (`Sec-WebSocket-Protocol`), if any.
    pub subprotocol: Option<String>,
    /// The host name the client asked for in TLS (SNI), if it sent one.
    pub server_name: Option<String>,
    /// The negotiated TLS version, e.g. `TLSv1_3`; empty for plain `ws://`
    /// ([`ConfigBuilder::plain_ws_behind_proxy`](crate::ConfigBuilder::plain_ws_behind_proxy)).
    pub tls_version: String,
    /// The client's certificate, verified against the configured CA
    /// ([`ConfigBuilder::client_auth`](crate::ConfigBuilder::client_auth)): who the client is.
    /// `None` when client certificates are not asked for, or optional and not given.
    /// (Boxed: most connections have none, and events stay small in the channel.)
    pub client_certificate: Option<Box<CertificateInfo>>,
    /// What the [authentication hook](crate::ConfigBuilder::authenticate) attached, if anything.
    pub data: Option<AppData>,
}

/// Why a connection ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client started the close handshake with this code and reason
    /// (1005, "No Status Received", when its Close frame carried no code).
    Client {
        /// The close code the client sent (RFC 6455 §7.4).
        code: u16,
        /// The reason text the client sent, possibly empty.
        reason: String,
    },
    /// The server started the close handshake: the application closed the connection,
    /// the server shut down (1001), or the client broke a rule (1002 protocol error,
    /// 1007 invalid UTF-8, 1009 message too big, 1013 slow consumer, ...).
    Server {
        /// The close code the server sent.
        code: u16,
        /// The reason text the server sent.
        reason: String,
    },
    /// The connection ended without a close handshake: reset, lost, timed out, or
    /// dropped after a panic on its thread ([`Error::Panicked`]).
    Error(Error),
}

impl CloseReason {
    /// The close code sent in the close handshake, if there was one.
    pub fn code(&self) -> Option<u16> {
        match self {
            CloseReason::Client { code, .. } | CloseReason::Server { code, .. } => Some(*code),
            CloseReason::Error(_) => None,
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Client { code, reason } => write!(f, "closed by client: {code} {reason:?}"),
            CloseReason::Server { code, reason } => write!(f, "closed by server: {code} {reason:?}"),
            CloseReason::Error(e) => write!(f, "connection lost: {e}"),
        }
    }
}

/// Something that happened on a connection, in the order it happened.
///
/// For each connection the application sees exactly one `Open`, then any number of
/// `Message`s, then exactly one `Close`. Connections that fail before the WebSocket
/// handshake completes produce no events (they are logged and counted in
/// [`Stats`](crate::Stats)).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A client completed the TLS and WebSocket handshakes.
    Open {
        /// The new connection.
        conn: ConnectionId,
        /// Where it comes from and what it asked for. Boxed: it is the largest event by
        /// far, and every slot of the events channel is as large as the largest event.
        info: Box<ConnectionInfo>,
    },
    /// A client sent a data message.
    Message {
        /// The sender.
        conn: ConnectionId,
        /// The message, reassembled if it was fragmented.
        message: Message,
        /// What the authentication hook attached to this connection, if anything.
        data: Option<AppData>,
    },
    /// A connection ended; its thread is finishing and the id is no longer routable.
    Close {
        /// The connection that ended.
        conn: ConnectionId,
        /// Who closed it and why.
        reason: CloseReason,
        /// What the authentication hook attached to this connection, if anything.
        data: Option<AppData>,
    },
}

/// Close codes an endpoint may put in a Close frame (RFC 6455 §7.4.1–7.4.2).
pub(crate) fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The tungstenite form of a message, to queue or send.
pub(crate) fn to_ws(message: Message) -> tungstenite::Message {
    match message {
        Message::Text(text) => tungstenite::Message::Text(text.into()),
        Message::Binary(data) => tungstenite::Message::Binary(data.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_close_codes_are_refused() {
        for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(!sendable_close_code(code), "{code}");
        }
        for code in [1000, 1001, 1008, 1011, 1013, 3000, 4999] {
            assert!(sendable_close_code(code), "{code}");
        }
    }
}
