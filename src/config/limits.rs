//! The limit and timeout setters of [`ConfigBuilder`]: everything a client can make the
//! server spend is bounded here. The defaults are in `Limits::default`.

use std::time::Duration;

use super::{ConfigBuilder, SlowConsumerPolicy};

/// Limits and timeouts.
impl ConfigBuilder {
    /// The most clients served at once, handshakes included. When they are all in use,
    /// a new client takes the place of the oldest unfinished handshake, if there is one
    /// (see [`max_handshakes`](Self::max_handshakes)); otherwise it is refused right
    /// after `accept`, before any TLS work, and counted in [`Stats::refused`](crate::Stats).
    ///
    /// Defaults to `256`.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.limits.max_connections = n;
        self
    }

    /// The most handshakes (TLS and HTTP Upgrade) in progress at once. A client that
    /// connects and sends nothing holds a handshake until the
    /// [`handshake_timeout`](Self::handshake_timeout); without a bound of their own, a
    /// few hundred such connections would fill [`max_connections`](Self::max_connections)
    /// and lock every real client out. When this many are in progress, a new client
    /// takes the place of the oldest: that handshake is asked to give up (its socket is
    /// closed) and counted in [`Stats::handshakes_shed`](crate::Stats). A real handshake
    /// takes a round trip or two, so the oldest is almost always a client that stalls.
    ///
    /// Defaults to `64`: enough for hundreds of new clients a second; in a larger burst
    /// the oldest of them give way and reconnect. Each handshake in progress holds two
    /// threads (about 35 KiB). While shed handshakes wind down (microseconds), up to
    /// twice as many may be in progress; past that, new clients are refused.
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.limits.max_handshakes = n.max(1);
        self
    }

    /// The most connections from one address at once (IPv6: from one /64 network, the
    /// block one household or host is given; an IPv4 address mapped into IPv6 counts as
    /// itself). Past it, a new connection from that address is refused right after
    /// `accept`, before any TLS work, and counted in [`Stats::refused`](crate::Stats) and
    /// [`Stats::refused_per_ip`](crate::Stats). `None` lifts the limit.
    ///
    /// Defaults to `Some(64)`, a quarter of the default
    /// [`max_connections`](Self::max_connections): one host (a client stuck in a
    /// reconnect loop, say) cannot take the whole server, while an office behind one
    /// NAT address still gets 64 connections. Behind a TCP proxy that hides the clients'
    /// addresses, use `None`; with [`plain_ws_behind_proxy`](Self::plain_ws_behind_proxy)
    /// every client has the proxy's address, so there it defaults to `None` unless set.
    pub fn max_connections_per_ip(mut self, n: Option<usize>) -> Self {
        self.limits.max_connections_per_ip = n.map(|n| n.max(1));
        self.per_ip_chosen = true;
        self
    }

    /// How many handshakes in progress one address may hold when every handshake slot
    /// ([`max_handshakes`](Self::max_handshakes)) is in use, counted as
    /// [`max_connections_per_ip`](Self::max_connections_per_ip) counts. A new client from
    /// an address that holds this many is then refused (counted in the same way) instead
    /// of taking the place of another client's handshake: one host can use the slots
    /// nobody else needs, but cannot keep them from others or push their handshakes out.
    /// While slots are free it does not apply, so a burst of clients behind one NAT
    /// address, all reconnecting after a restart, gets in. `None` lifts the limit.
    ///
    /// Defaults to `Some(16)`, a quarter of the default `max_handshakes`; `None` with
    /// [`plain_ws_behind_proxy`](Self::plain_ws_behind_proxy) unless set.
    pub fn max_handshakes_per_ip(mut self, n: Option<usize>) -> Self {
        self.limits.max_handshakes_per_ip = n.map(|n| n.max(1));
        self.per_ip_chosen = true;
        self
    }

    /// The largest message a client may send, after reassembly of fragments. A larger
    /// one closes the connection with 1009 (Message Too Big).
    ///
    /// Defaults to 1 MiB. Each connection may hold up to this much while a message arrives.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.limits.max_message_size = bytes;
        self
    }

    /// The largest single frame a client may send. The limit is checked on the frame
    /// header, before any payload is buffered. A larger frame closes with 1009.
    ///
    /// Defaults to 1 MiB. A frame can never be larger than a message: the smaller of
    /// the two limits applies to frames.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.limits.max_frame_size = bytes;
        self
    }

    /// How many bytes each connection reads from TLS at a time. This buffer is held for
    /// the life of the connection, idle or not.
    ///
    /// Defaults to 1 KiB (tungstenite's own default of 128 KiB costs ~180 KiB per idle
    /// client). A larger one saves no system calls: the bytes are copied from rustls'
    /// buffer of decrypted data, and a message longer than the buffer is read into one
    /// of its own size.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.limits.read_buffer_size = bytes.max(256);
        self
    }

    /// How many bytes of outgoing frames are gathered before they are handed to TLS;
    /// larger batches mean fewer TLS records when many small messages are queued.
    ///
    /// It also bounds what may wait for a client whose socket is full: this buffer plus
    /// one message and rustls' 64 KiB of records. Past that the server reads nothing more
    /// from the client (each Ping read would add a Pong) until it takes its output, and
    /// no more queued messages move here; TCP pushes back on the client.
    ///
    /// Defaults to 8 KiB.
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.limits.write_buffer_size = bytes;
        self
    }

    /// How many outgoing messages may wait for one client whose socket is full (it
    /// reads too slowly). Then the [`slow_consumer_policy`](Self::slow_consumer_policy)
    /// applies: one slow client never holds back the application or the others. While
    /// the client's socket still takes bytes, the connection thread is only waiting for
    /// a CPU, and up to four times as many may wait (the byte bound,
    /// [`outbound_queue_bytes`](Self::outbound_queue_bytes), holds either way).
    ///
    /// Defaults to `64`.
    pub fn outbound_queue(mut self, messages: usize) -> Self {
        self.limits.outbound_queue = messages.max(1);
        self
    }

    /// How many payload bytes may wait for one client, whether or not its socket is
    /// full: this bounds the memory a client can hold. A message larger than this is
    /// still accepted when the client's queue is empty, so any message can be sent once.
    ///
    /// Defaults to 1 MiB.
    pub fn outbound_queue_bytes(mut self, bytes: usize) -> Self {
        self.limits.outbound_queue_bytes = bytes;
        self
    }

    /// Whether, in events mode, the thread that sends a message may encrypt and write it
    /// to the client itself when the client's thread is asleep with nothing queued, the
    /// events channel is empty and the message is at most 16 KiB (see
    /// [`Handle::send`](crate::Handle::send)). That saves the client's thread a wake-up:
    /// measured in `BENCHMARKS.md` on two cores, a broadcast to 1,000 clients costs half
    /// the server CPU and arrives in a third of the time, and the broadcasting thread
    /// spends less time in the call too (11 µs per client against 15–16, since the
    /// threads that queueing wakes take the CPU from it). The encryption is then the
    /// sender's work, though: on a machine with many cores to spare for the clients'
    /// threads, a frame loop broadcasting to thousands may return sooner with this off.
    /// [`Stats::messages_written_through`](crate::Stats) counts the messages written
    /// this way.
    ///
    /// Defaults to `true`. Handler mode always queues: its connections' threads are
    /// busy in the handler, not asleep.
    pub fn write_through(mut self, enabled: bool) -> Self {
        self.limits.write_through = enabled;
        self
    }

    /// What happens to a client whose outbound queue is full.
    ///
    /// Defaults to [`SlowConsumerPolicy::Close`].
    pub fn slow_consumer_policy(mut self, policy: SlowConsumerPolicy) -> Self {
        self.limits.slow_consumer = policy;
        self
    }

    /// How long a write to a client may make no progress at all (the client's TCP
    /// window stays closed) before the connection is dropped and counted in
    /// [`Stats::limit_closes`](crate::Stats). A client that takes its output slowly is
    /// kept: while its socket is full nothing more is read from it or written for it
    /// (see [`write_buffer_size`](Self::write_buffer_size)), so it costs no more memory.
    ///
    /// Defaults to 10 seconds.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.limits.write_timeout = timeout;
        self
    }

    /// How many events may wait for the application in [`Server::events`](crate::Server::events).
    /// When the application falls behind, connection threads wait (and TCP slows the
    /// clients down); nothing is dropped. Each connection may fill at most an eighth (see
    /// [`events_bytes`](Self::events_bytes)). The channel allocates its slots up front
    /// (96 bytes each); too small a channel makes busy connection threads wait
    /// one event at a time (measured: 256 instead of 1,024 cut pipelined echo throughput
    /// by more than half).
    ///
    /// Defaults to `1024`.
    pub fn events_capacity(mut self, events: usize) -> Self {
        self.limits.events_capacity = events.max(1);
        self
    }

    /// How many payload bytes of messages may wait for the application in
    /// [`Server::events`](crate::Server::events), from all connections together: with
    /// [`events_capacity`](Self::events_capacity), how far behind a slow application
    /// can fall. Past it, connection threads wait and TCP slows their clients down;
    /// nothing is dropped, and each wait is counted in
    /// [`Stats::events_throttled`](crate::Stats).
    ///
    /// Both bounds are shared: one connection may have at most an eighth of either
    /// waiting. A client that floods then waits for its own backlog while the others'
    /// messages still go straight in, behind at most an eighth of the channel per flooding
    /// client instead of the whole of it; when more than eight clients flood, they take
    /// turns for the room the application frees. A message larger than its share still
    /// goes when nothing else of its connection waits, so at most one message per
    /// connection ([`max_message_size`](Self::max_message_size)) comes on top of this bound.
    ///
    /// Defaults to 4 MiB (each connection 512 KiB).
    pub fn events_bytes(mut self, bytes: usize) -> Self {
        self.limits.events_bytes = bytes;
        self
    }

    /// The largest HTTP Upgrade request head accepted, in bytes; a larger one gets
    /// HTTP 431.
    ///
    /// Defaults to 8 KiB.
    pub fn max_request_head(mut self, bytes: usize) -> Self {
        self.limits.max_request_head = bytes;
        self
    }

    /// One deadline for the TLS handshake and the HTTP Upgrade together, counted from
    /// `accept`. A client that is slower (or sends nothing) is disconnected. The
    /// [authentication hook](Self::authenticate)'s time counts too: a client it accepts
    /// after the deadline gets HTTP 503.
    ///
    /// Defaults to 10 seconds.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.limits.handshake_timeout = timeout;
        self
    }

    /// After this long without any frame from a client, the server sends a Ping;
    /// `None` disables keepalive pings.
    ///
    /// Defaults to 30 seconds, below the idle timeouts of common NAT routers and proxies.
    pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.limits.ping_interval = interval;
        self
    }

    /// How long the server waits for any frame (normally the Pong) after a keepalive
    /// Ping before it gives the client up for dead.
    ///
    /// Defaults to 10 seconds.
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.limits.pong_timeout = timeout;
        self
    }

    /// Closes (1000, "idle timeout") a connection that sent no data message for this
    /// long, even if it answers pings. `None` disables it.
    ///
    /// Defaults to `None`: push-only clients legitimately never send, and keepalive
    /// already finds dead peers.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// How long the server waits for the client's Close reply, and then as long again
    /// for the last bytes (its own Close frame among them) to leave, before it drops the
    /// TCP connection anyway. Messages sent to a connection that is closing are refused
    /// and counted in [`Stats::dropped`](crate::Stats).
    ///
    /// Defaults to 3 seconds.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.limits.close_timeout = timeout;
        self
    }

    /// How long [`Handle::shutdown`](crate::Handle::shutdown) waits for every
    /// connection thread to finish its close handshake.
    ///
    /// Defaults to 5 seconds.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.limits.shutdown_timeout = timeout;
        self
    }

    /// The stack size of the handshake workers, the threads that run each client's TLS
    /// and HTTP handshake, the deepest work of a connection; the connection thread that
    /// then serves the WebSocket gets 64 KiB more (so that it never reuses the stack of a
    /// worker that ended, see `connection::stack_size`). Only the pages a thread touches
    /// cost memory; the size bounds the worst case.
    ///
    /// Defaults to 256 KiB (a debug build's TLS handshake needs more than 128 KiB).
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.limits.thread_stack_size = bytes.max(64 << 10);
        self
    }
}
