//! Counters every thread bumps, and the [`Stats`] snapshot the application reads.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of the server's counters, from [`Handle::stats`](crate::Handle::stats).
///
/// All counts are totals since the server started, except those that say "now":
/// `connections`, `websockets`, `rooms`, `room_members`, `backplane_connected` and
/// `backplane_nodes`. The `backplane_` counts stay 0 without the Redis backplane
/// ([`ConfigBuilder::redis`](crate::ConfigBuilder), feature `redis`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections being served now: handshakes, plain HTTP requests and WebSockets.
    pub connections: u64,
    /// WebSocket connections open now (past the handshake).
    pub websockets: u64,
    /// TCP connections accepted and given a thread.
    pub accepted: u64,
    /// TCP connections closed right after `accept`, before any TLS work: `max_connections`
    /// were open and no handshake could make way, a per-address limit was reached
    /// (those are also in `refused_per_ip`), or no thread could start.
    pub refused: u64,
    /// TCP connections refused for `max_connections_per_ip` or `max_handshakes_per_ip`
    /// (included in `refused`).
    pub refused_per_ip: u64,
    /// Unfinished handshakes given up to make way for a new client, the oldest first,
    /// when `max_handshakes` (or `max_connections`) were in use.
    pub handshakes_shed: u64,
    /// Handshakes that failed in TLS (bad or no ClientHello, untrusted certificate, ...).
    pub handshakes_failed_tls: u64,
    /// Handshakes that failed in HTTP (not a valid Upgrade request, refused by the
    /// Origin check or the authentication hook, or a hook that panicked).
    pub handshakes_failed_http: u64,
    /// Upgrade requests refused for their `Origin` (403).
    pub origin_refused: u64,
    /// Upgrade requests refused by the authentication hook.
    pub auth_refused: u64,
    /// Plain HTTP responses served: files, the health endpoint, 404s and other errors.
    pub http_responses: u64,
    /// Handshakes that did not finish before the handshake deadline (including those
    /// the authentication hook accepted after it).
    pub handshakes_timed_out: u64,
    /// Data messages received from clients.
    pub messages_in: u64,
    /// Payload bytes received from clients.
    pub bytes_in: u64,
    /// Data messages handed to TLS for clients.
    pub messages_out: u64,
    /// Payload bytes handed to TLS for clients.
    pub bytes_out: u64,
    /// Data messages (counted in `messages_out` too) that the sending thread wrote to
    /// the client itself, the client's thread being asleep, rather than queueing them
    /// (events mode; see [`ConfigBuilder::write_through`](crate::ConfigBuilder::write_through)).
    pub messages_written_through: u64,
    /// Messages that were dropped: for a full outbound queue, a connection that was
    /// closing (a close requested, or a Close frame sent or received) or already gone,
    /// or events the application could not take during shutdown.
    pub dropped: u64,
    /// Connections closed because they did not read fast enough (1013).
    pub slow_consumer_closes: u64,
    /// Times a connection thread waited to hand an event to the application, because
    /// its share of [`Server::events`](crate::Server::events) was waiting there already,
    /// or the channel was full: the application was slower than that client, and TCP
    /// slowed the client down meanwhile. Nothing is dropped.
    pub events_throttled: u64,
    /// Connections closed for a limit: a message or frame too big (1009), no answer to
    /// a keepalive ping, the idle timeout, or a write that made no progress.
    pub limit_closes: u64,
    /// Connections failed for breaking the protocol (1002) or sending invalid UTF-8 (1007).
    pub protocol_errors: u64,
    /// Panics caught on connection threads (each logged at `error`): in the
    /// authentication hook (the request was answered with 500), or anywhere else (a
    /// bug; the connection was dropped, with [`Error::Panicked`](crate::Error::Panicked)
    /// in its close reason).
    pub panics: u64,
    /// Handlers ([`Server::serve`](crate::Server::serve)) that returned an error; each
    /// closed its connection with 1011. (A handler that panics counts in `panics`.)
    pub handler_errors: u64,
    /// Rooms with at least one member, now.
    pub rooms: u64,
    /// Room memberships, now (a connection in three rooms counts three times).
    pub room_members: u64,
    /// 1 while this server is connected to Redis, publishing and subscribed; 0 while
    /// it is not (messages for the other servers are then dropped), now.
    pub backplane_connected: u64,
    /// Servers of the cluster alive now as this one sees them, itself included: those
    /// heard from within three of their heartbeats.
    pub backplane_nodes: u64,
    /// Messages handed to Redis for the other servers (`publish` and `broadcast` calls).
    pub backplane_published: u64,
    /// Messages from the other servers delivered to this server's clients.
    pub backplane_received: u64,
    /// Messages that did not go to the other servers: published while Redis was
    /// unreachable, refused by a full hand-off to Redis (see
    /// [`redis_publish_queue`](crate::ConfigBuilder)), lost in a connection that
    /// failed, or too large to relay. This server's own clients got them.
    pub backplane_dropped: u64,
    /// Messages from Redis skipped as malformed: not an envelope of a known version,
    /// cut short, text that is not UTF-8, or larger than `max_message_size`.
    pub backplane_malformed: u64,
    /// Times the connection to Redis came back after it was lost.
    pub backplane_reconnects: u64,
    /// WebSocket connections that agreed on permessage-deflate
    /// ([`compression`](crate::ConfigBuilder::compression)). The `compressed_` counts
    /// stay 0 without it.
    pub compression_agreed: u64,
    /// Messages that came compressed (also counted in `messages_in`).
    pub compressed_messages_in: u64,
    /// Their payload bytes as they came, compressed (`bytes_in` counts them inflated).
    pub compressed_wire_bytes_in: u64,
    /// What they inflated to: with `compressed_wire_bytes_in`, the inbound saving.
    pub compressed_payload_bytes_in: u64,
    /// Messages sent compressed (also counted in `messages_out`). Messages below the
    /// size threshold or that compression would not shrink go as they are.
    pub compressed_messages_out: u64,
    /// Their payload bytes before compression (as `bytes_out` counts them).
    pub compressed_payload_bytes_out: u64,
    /// Their payload bytes as sent, compressed: with `compressed_payload_bytes_out`, the
    /// outbound saving.
    pub compressed_wire_bytes_out: u64,
}

/// The live counters behind [`Stats`]; relaxed atomics, since each is independent.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) websockets: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) refused_per_ip: AtomicU64,
    pub(crate) handshakes_shed: AtomicU64,
    pub(crate) handshakes_failed_tls: AtomicU64,
    pub(crate) handshakes_failed_http: AtomicU64,
    pub(crate) origin_refused: AtomicU64,
    pub(crate) auth_refused: AtomicU64,
    pub(crate) http_responses: AtomicU64,
    pub(crate) handshakes_timed_out: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) messages_written_through: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) slow_consumer_closes: AtomicU64,
    pub(crate) events_throttled: AtomicU64,
    pub(crate) limit_closes: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) handler_errors: AtomicU64,
    pub(crate) rooms: AtomicU64,
    pub(crate) room_members: AtomicU64,
    pub(crate) backplane_connected: AtomicU64,
    pub(crate) backplane_nodes: AtomicU64,
    pub(crate) backplane_published: AtomicU64,
    pub(crate) backplane_received: AtomicU64,
    pub(crate) backplane_dropped: AtomicU64,
    pub(crate) backplane_malformed: AtomicU64,
    pub(crate) backplane_reconnects: AtomicU64,
    pub(crate) compression_agreed: AtomicU64,
    pub(crate) compressed_messages_in: AtomicU64,
    pub(crate) compressed_wire_bytes_in: AtomicU64,
    pub(crate) compressed_payload_bytes_in: AtomicU64,
    pub(crate) compressed_messages_out: AtomicU64,
    pub(crate) compressed_payload_bytes_out: AtomicU64,
    pub(crate) compressed_wire_bytes_out: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            connections: self.connections.load(Relaxed),
            websockets: self.websockets.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            refused: self.refused.load(Relaxed),
            refused_per_ip: self.refused_per_ip.load(Relaxed),
            handshakes_shed: self.handshakes_shed.load(Relaxed),
            handshakes_failed_tls: self.handshakes_failed_tls.load(Relaxed),
            handshakes_failed_http: self.handshakes_failed_http.load(Relaxed),
            origin_refused: self.origin_refused.load(Relaxed),
            auth_refused: self.auth_refused.load(Relaxed),
            http_responses: self.http_responses.load(Relaxed),
            handshakes_timed_out: self.handshakes_timed_out.load(Relaxed),
            messages_in: self.messages_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            messages_out: self.messages_out.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            messages_written_through: self.messages_written_through.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            slow_consumer_closes: self.slow_consumer_closes.load(Relaxed),
            events_throttled: self.events_throttled.load(Relaxed),
            limit_closes: self.limit_closes.load(Relaxed),
            protocol_errors: self.protocol_errors.load(Relaxed),
            panics: self.panics.load(Relaxed),
            handler_errors: self.handler_errors.load(Relaxed),
            rooms: self.rooms.load(Relaxed),
            room_members: self.room_members.load(Relaxed),
            backplane_connected: self.backplane_connected.load(Relaxed),
            backplane_nodes: self.backplane_nodes.load(Relaxed),
            backplane_published: self.backplane_published.load(Relaxed),
            backplane_received: self.backplane_received.load(Relaxed),
            backplane_dropped: self.backplane_dropped.load(Relaxed),
            backplane_malformed: self.backplane_malformed.load(Relaxed),
            backplane_reconnects: self.backplane_reconnects.load(Relaxed),
            compression_agreed: self.compression_agreed.load(Relaxed),
            compressed_messages_in: self.compressed_messages_in.load(Relaxed),
            compressed_wire_bytes_in: self.compressed_wire_bytes_in.load(Relaxed),
            compressed_payload_bytes_in: self.compressed_payload_bytes_in.load(Relaxed),
            compressed_messages_out: self.compressed_messages_out.load(Relaxed),
            compressed_payload_bytes_out: self.compressed_payload_bytes_out.load(Relaxed),
            compressed_wire_bytes_out: self.compressed_wire_bytes_out.load(Relaxed),
        }
    }
}
