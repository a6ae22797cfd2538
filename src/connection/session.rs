//! The frame loop of an open WebSocket connection.
//!
//! Each wake-up is handled as a batch: read every frame that is available, queue every
//! outbound message that is waiting, then flush once. Control frames are answered here
//! (tungstenite queues pongs and close replies; the next flush sends them), timers are
//! checked here, and the close handshake ends here.
//!
//! Everything the server writes for the client (messages, pongs, close replies) waits in
//! one place while the client's socket is full, and while it waits nothing more is added:
//! queued messages stay in the bounded outbound queue, and the client's input stays
//! unread (each Ping read would queue a Pong), so TCP pushes back on the client. What
//! waits is then at most tungstenite's write buffer plus one message and a control frame
//! or two, and rustls' 64 KiB of ciphertext; and, in front of it, what senders writing
//! through left when the socket filled (`wire.rs`: at most two messages of 16 KiB). A
//! client that takes nothing for `write_timeout` is dropped; one that takes its output
//! slowly is served slowly.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;

use tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message as WsMessage, WebSocket};

use super::client::Client;
use super::context::Context;
use super::deflate::{Bounds, Deflate};
use super::stream::{tls_error, would_block, Transport};
use super::trace::Logged;
use super::wire::Sealed;
use crate::config::Limits;
use crate::http::DeflateParams;
use crate::hub::Control;
use crate::stats::{add, bump};
use crate::wait::{wait_for, wait_ready, Interest, Woken};
use crate::{AppData, CloseReason, Error, Event, Message, Timeout};

/// Most messages read per wake-up before queued output gets its turn.
const READ_BUDGET: usize = 256;

/// How many payload bytes the handler's inbox takes in one batch before reading stops
/// until the handler has taken them: with `READ_BUDGET`, what one connection holds for
/// its handler is at most this plus one message.
const INBOX_BYTES: usize = 64 << 10;

/// Where the messages a client sends go.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// To the application, through the events channel (events mode).
    Events,
    /// To the handler on this thread, through an inbox it takes them from (handler mode).
    Inbox(Inbox),
    /// Nowhere: the handler has returned; what still arrives is counted as dropped.
    Discard,
}

/// The messages read for the handler and not yet taken, in order.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    messages: VecDeque<Message>,
    bytes: usize,
}

impl Inbox {
    fn push(&mut self, message: Message) {
        self.bytes += message.len();
        self.messages.push_back(message);
    }

    fn pop(&mut self) -> Option<Message> {
        let message = self.messages.pop_front()?;
        self.bytes -= message.len();
        Some(message)
    }

    /// Whether reading should wait for the handler to take what is here.
    fn full(&self) -> bool {
        self.bytes >= INBOX_BYTES
    }
}

/// What the handler's wait for a message came to.
#[derive(Debug)]
pub(crate) enum Next {
    Message(Message),
    /// The time given ran out first.
    TimedOut,
    /// The connection is over.
    Ended,
}

/// The largest message another thread writes to the client itself (`write_through`):
/// one TLS record. A larger one goes through the queue, so that a sender never spends
/// long encrypting for a client.
pub(crate) const WRITE_THROUGH_MAX: usize = 16 << 10;

/// The reason tungstenite puts in its Close reply when the client's close code may not be sent.
const TUNGSTENITE_BAD_CODE_REASON: &str = "Protocol violation";

/// Data messages and payload bytes each way, for one connection, and how often its
/// input waited for its output.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Traffic {
    pub(crate) messages_in: u64,
    pub(crate) bytes_in: u64,
    pub(crate) messages_out: u64,
    pub(crate) bytes_out: u64,
    /// Times reading stopped because the client's socket was full.
    pub(crate) read_pauses: u64,
}

impl std::fmt::Display for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "received {} messages ({} bytes), sent {} messages ({} bytes)",
            self.messages_in, self.bytes_in, self.messages_out, self.bytes_out
        )?;
        if self.read_pauses > 0 {
            write!(f, "; reading paused {} times for output to leave", self.read_pauses)?;
        }
        Ok(())
    }
}

/// What the frame loop sleeps on: the socket's readiness (the waker always counts),
/// until the deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sleep {
    pub(crate) interest: Interest,
    pub(crate) deadline: Option<Instant>,
}

/// A close the server started, and when to stop waiting for the client's reply.
struct Closing {
    code: u16,
    reason: String,
    deadline: Instant,
}

/// The frame loop of an open connection.
pub(crate) struct Session {
    client: Arc<Client>,
    ws: WebSocket<Deflate>,
    /// When any frame last arrived (keepalive).
    last_frame: Instant,
    /// When a data message last arrived (idle timeout).
    last_message: Instant,
    ping_sent: Option<Instant>,
    closing: Option<Closing>,
    /// The close code and reason the client sent first, if it started the close.
    client_close: Option<(u16, String)>,
    /// Whether the last read was skipped because the client's socket was full.
    reading_paused: bool,
    /// Since when output has been waiting without the socket taking a single byte,
    /// and how many bytes it had taken then.
    stalled: Option<(Instant, u64)>,
    /// What the authentication hook attached; sent with every event.
    data: Option<AppData>,
    /// This connection's traffic, for the summary logged at close.
    pub(crate) traffic: Traffic,
    /// Frames may be waiting in rustls or tungstenite after the read budget ran out.
    more_to_read: bool,
    /// The last read found nothing, and no wait since has seen the socket readable: a
    /// read now would only cost a system call to learn the same (a handler's next
    /// `recv` comes straight after the read that ran dry; a connection woken for a
    /// push in events mode has nothing new to read either).
    input_dry: bool,
    /// Where the client's messages go.
    delivery: Delivery,
    /// Why the connection ended, once it has: in handler mode the handler may still be
    /// running and asking; in events mode a sending thread's write (`write_through`)
    /// found the connection broken, and the connection thread's next step ends it.
    ended: Option<CloseReason>,
}

impl Session {
    /// Serves the WebSocket on `stream`, with permessage-deflate if it was agreed.
    /// `leftover`: what the client sent behind its request.
    pub(crate) fn new(
        client: Arc<Client>,
        stream: Transport,
        deflate: Option<DeflateParams>,
        leftover: Vec<u8>,
        data: Option<AppData>,
    ) -> Self {
        let limits = &client.context.limits;
        // The frame log watches the wire, under the inflater: compressed frames are
        // logged as the client sent them.
        let logged = Logged::new(stream, client.id, &leftover);
        let bounds = Bounds::of(limits);
        let (stream, leftover) = Deflate::new(logged, deflate, bounds, client.id, &client.context.stats, leftover);
        let config = WebSocketConfig::default()
            .read_buffer_size(limits.read_buffer_size)
            .write_buffer_size(limits.write_buffer_size)
            // Unbounded here because the loop bounds it: while the socket takes nothing,
            // no message moves into this buffer and no frame is read (so no pong or close
            // reply is added), so it holds at most write_buffer_size plus one message and
            // a control frame or two. (A finite limit would leave a message larger than it
            // stuck forever.)
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(limits.max_message_size))
            .max_frame_size(Some(limits.max_frame_size.min(limits.max_message_size)));
        let now = Instant::now();
        Session {
            client,
            ws: WebSocket::from_partially_read(stream, leftover, Role::Server, Some(config)),
            last_frame: now,
            last_message: now,
            ping_sent: None,
            closing: None,
            client_close: None,
            reading_paused: false,
            stalled: None,
            data,
            traffic: Traffic::default(),
            more_to_read: false,
            input_dry: false,
            delivery: Delivery::Events,
            ended: None,
        }
    }

    /// Sends the client's messages to `delivery` from now on.
    pub(crate) fn deliver_to(&mut self, delivery: Delivery) {
        self.delivery = delivery;
    }

    fn limits(&self) -> &Limits {
        &self.client.context.limits
    }

    /// The signals another thread uses to wake this connection's handler.
    pub(crate) fn shared_control(&self) -> std::sync::Arc<Control> {
        self.client.outbox.shared_control()
    }

    fn control(&self) -> &Control {
        self.client.outbox.control()
    }

    /// Runs until the connection is over; returns why.
    pub(crate) fn run(&mut self) -> CloseReason {
        loop {
            if let Some(end) = self.step() {
                return end;
            }
            if let Err(end) = self.wait(None) {
                return end;
            }
        }
    }

    /// Sleeps until there is work: the socket is ready, the waker rang, or a timer (or
    /// `until`) is due.
    fn wait(&mut self, until: Option<Instant>) -> Result<(), CloseReason> {
        let sleep = self.sleep(until);
        let woken = wait_ready(&self.ws.get_ref().sock(), sleep.interest, &self.control().waker, sleep.deadline);
        self.woke(woken)
    }

    /// What the next sleep waits for, and until when.
    pub(crate) fn sleep(&self, until: Option<Instant>) -> Sleep {
        let full = self.socket_full();
        // Do not sleep on work already in hand: frames left by the read budget or by a
        // pause, or messages still queued, as long as the socket takes bytes.
        let more_to_write = !self.client.outbox.is_empty() && self.ws.can_write();
        let more_to_read = self.more_to_read && !self.inbox_full();
        let ready = !full && (more_to_read || more_to_write);
        let deadline = if ready { Some(Instant::now()) } else { earliest(self.next_deadline(), until) };
        // While the socket is full only writability matters: input stays unread, and
        // waiting for it would return at once while the client keeps sending.
        let interest = Interest { read: !full && !self.inbox_full(), write: full };
        Sleep { interest, deadline }
    }

    /// Takes in what the sleep ended with.
    pub(crate) fn woke(&mut self, woken: io::Result<Woken>) -> Result<(), CloseReason> {
        match woken {
            Ok(woken) => {
                if woken.waker {
                    self.let_the_application_finish_its_burst();
                    self.control().waker.reset();
                }
                // Poll looks at the socket on entry: input that came after it ran dry
                // shows here, so none is ever left unread behind a sleep.
                if woken.socket {
                    self.input_dry = false;
                }
                Ok(())
            }
            Err(e) => Err(CloseReason::Error(Error::Io(e))),
        }
    }

    /// Events mode, woken (by a send, usually) while the application still has events to
    /// take, from any connection: more sends are likely on their way. On a shared core
    /// this thread would otherwise run at once, take the one message queued so far, write
    /// it and sleep, to be woken again by the next send. Giving the core back once lets
    /// the application queue the rest of its burst, which this thread then writes in one
    /// go (measured in `bench/NOTES.md`). Meanwhile the waker stays rung, so those sends
    /// ring nothing, and (in the write-through loop) the session stays locked, so they
    /// queue. A thread with a core to itself returns from the yield at once.
    fn let_the_application_finish_its_burst(&self) {
        if matches!(self.delivery, Delivery::Events) && !self.client.context.events.all_taken() {
            std::thread::yield_now();
        }
    }

    /// The handler's next message: read in a batch, with the other work of the loop
    /// (queued pushes, timers, the close handshake) done meanwhile, and one flush of what
    /// the handler sent before sleeping. Waits until `until` at most.
    pub(crate) fn next_message(&mut self, until: Option<Instant>) -> Next {
        // Whether this call has polled the socket: see below, before it returns empty-handed.
        let mut looked = false;
        loop {
            if let Delivery::Inbox(inbox) = &mut self.delivery {
                if let Some(message) = inbox.pop() {
                    return Next::Message(message);
                }
            }
            if self.ended.is_some() {
                return Next::Ended;
            }
            if let Some(end) = self.step() {
                self.ended = Some(end);
                continue;
            }
            if self.inbox_len() > 0 {
                continue;
            }
            // Only a bounded wait returns for a wake-up: `recv` has no way to report one.
            let woken = until.is_some() && self.control().handler_woken();
            if woken || until.is_some_and(|until| Instant::now() >= until) {
                // Before returning empty-handed, a call that has not polled yet looks at
                // a socket whose input ran dry, without waiting: else a zero timeout, or
                // wake-ups coming faster than the handler looks, would keep the client's
                // messages (and its Close, its pongs) unread for good. A wake-up stays
                // pending for the next call if this look finds a message.
                if !looked && self.input_dry {
                    looked = true;
                    if let Err(end) = self.look_if_dry() {
                        self.ended = Some(end);
                    }
                    continue;
                }
                self.control().take_handler_wake();
                return Next::TimedOut;
            }
            if let Err(end) = self.wait(until) {
                self.ended = Some(end);
            }
            looked = true;
        }
    }

    /// Sends one message for the handler: into tungstenite's buffer, which reaches the
    /// socket when it fills or at the next flush. When the client's socket is full, waits
    /// until it takes bytes again (the write timeout still applies): the handler feels the
    /// client's pace, and its output cannot pile up.
    pub(crate) fn send(&mut self, message: WsMessage) -> Result<(), Error> {
        // A close asked for by another thread (Handle::close, shutdown) ends the sending
        // of a handler that never calls recv too; what was queued before it goes first.
        if let Some((code, reason)) = self.control().take_close_request() {
            self.write_queued();
            self.start_close(code, reason);
        }
        if self.ended.is_some() || self.closing.is_some() || !self.ws.can_write() {
            bump(&self.client.context.stats.dropped);
            return Err(Error::Closed);
        }
        self.write(message);
        if self.socket_full() {
            self.drain()?;
        }
        Ok(())
    }

    /// Writes one message for another thread, straight to the client, when that keeps
    /// the order and needs no waiting: nothing queued before it, no output waiting for
    /// the socket, not closing, and small enough to encrypt on the sender's time. Gives
    /// the message back otherwise.
    ///
    /// Over TLS the message is only sealed here: the records come back for the caller
    /// to write once it has let the session go (`wire.rs` says why). Over plain TCP it
    /// is written here. Whatever the socket does not take, or a failure, is left for
    /// the connection thread, which is woken for it.
    pub(crate) fn write_through(&mut self, message: WsMessage) -> Result<Option<Sealed>, WsMessage> {
        let writable = self.ws.can_write() && !self.socket_full() && self.ended.is_none();
        let in_order = self.client.outbox.is_empty() && self.closing.is_none() && !self.control().is_closing();
        if !(writable && in_order) || message.len() > WRITE_THROUGH_MAX {
            return Err(message);
        }
        let sealing = self.ws.get_mut().seal();
        if self.write(message) {
            bump(&self.client.context.stats.messages_written_through);
        }
        if sealing {
            // Into the sealed records: nothing reaches the socket, nothing can block.
            let flushed = self.ws.flush();
            let sealed = self.ws.get_mut().sealed();
            if let Err(e) = flushed {
                self.ended = Some(CloseReason::Error(Error::Protocol(e.to_string())));
                self.control().waker.wake();
            }
            return Ok(sealed);
        }
        self.ended = self.flush();
        if self.ended.is_some() || self.socket_full() {
            self.control().waker.wake();
        }
        Ok(None)
    }

    #[cfg(test)]
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// A sending thread panicked in [`write_through`](Session::write_through) (caught
    /// there): the message is counted as dropped, the panic as a panic, and the
    /// connection thread, woken, ends the connection. Records half sealed are discarded.
    pub(crate) fn panicked_writing_through(&mut self, payload: &(dyn std::any::Any + Send)) {
        let _ = self.ws.get_mut().sealed();
        bump(&self.client.context.stats.dropped);
        let message = self.client.panicked("a write-through", "closing the connection", payload);
        self.ended = Some(CloseReason::Error(Error::Panicked(message)));
        self.control().waker.wake();
    }

    /// The server-wide state this connection works with.
    pub(crate) fn context(&self) -> &Arc<Context> {
        &self.client.context
    }

    /// The socket, to wait on while another thread may be writing to it.
    pub(crate) fn waitable(&self) -> Arc<dyn AsFd + Send + Sync> {
        self.ws.get_ref().waitable()
    }

    /// Does the loop's work without waiting for input (the client's frames into the
    /// inbox, what other threads queued, close requests, timers), sends what the handler
    /// has written, and waits until the socket has taken it: a handler that only sends
    /// keeps the connection alive by calling this.
    pub(crate) fn flush_all(&mut self) -> Result<(), Error> {
        if self.ended.is_none() {
            // As `next_message` does: a step, and if the input is dry after it, a look at
            // the socket and another step for what that look found. Looking first would
            // miss input behind a read batch that stopped early (budget, full inbox).
            let mut end = self.step();
            if end.is_none() && self.input_dry {
                end = self.look_if_dry().err().or_else(|| self.step());
            }
            if let Some(end) = end {
                self.ended = Some(end);
            }
        }
        if self.ended.is_some() {
            return Err(Error::Closed);
        }
        self.drain()
    }

    /// Polls the socket without waiting when its input ran dry: `step` reads only while
    /// the input is not dry, and only a poll says it is not any more. For the calls of
    /// the handler that return without waiting.
    fn look_if_dry(&mut self) -> Result<(), CloseReason> {
        if !self.input_dry {
            return Ok(());
        }
        self.wait(Some(Instant::now()))
    }

    /// Flushes, waiting for the socket while it is full; `Err` when the connection ended.
    fn drain(&mut self) -> Result<(), Error> {
        loop {
            if let Some(end) = self.flush() {
                self.ended = Some(end);
                return Err(Error::Closed);
            }
            if !self.socket_full() {
                return Ok(());
            }
            // Only the write timeout matters while the socket is full (`flush` judges it):
            // the other timers are `step`'s, and one past due would make this wait spin.
            let deadline = self.stalled.map(|(since, _)| since + self.limits().write_timeout);
            if let Err(e) = self.wait_writable(deadline) {
                self.ended = Some(CloseReason::Error(Error::Io(e)));
                return Err(Error::Closed);
            }
        }
    }

    /// Sleeps until the socket takes bytes again or `deadline` passes. A wake-up rung
    /// meanwhile is consumed: what it announced (a push, a close request) is for the
    /// next step, or, once the connection is closing, for nobody.
    fn wait_writable(&self, deadline: Option<Instant>) -> io::Result<()> {
        let waker = &self.control().waker;
        if wait_for(&self.ws.get_ref().sock(), Interest::WRITE, waker, deadline)? {
            waker.reset();
        }
        Ok(())
    }

    /// The handler has returned (`failed`: with an error, or by panicking). A
    /// connection still open is closed, 1000 or 1011, and its close handshake run to the
    /// end; messages the handler did not take are counted as dropped. Returns why the
    /// connection ended.
    pub(crate) fn after_handler(&mut self, failed: bool) -> CloseReason {
        let untaken = self.inbox_len();
        if untaken > 0 {
            add(&self.client.context.stats.dropped, untaken);
            log::debug!("{}: the handler left {untaken} messages untaken", self.client.id);
        }
        self.delivery = Delivery::Discard;
        if let Some(end) = self.ended.take() {
            return end;
        }
        if failed {
            self.start_close(1011, "internal error".into());
        } else {
            self.start_close(1000, String::new());
        }
        self.run()
    }

    /// The handler closes its connection.
    pub(crate) fn close(&mut self, code: u16, reason: &str) {
        if self.ended.is_none() {
            self.start_close(code, reason.to_owned());
        }
    }

    /// Why the connection ended, if it has.
    pub(crate) fn ended(&self) -> Option<&CloseReason> {
        self.ended.as_ref()
    }

    fn inbox_len(&self) -> usize {
        match &self.delivery {
            Delivery::Inbox(inbox) => inbox.messages.len(),
            _ => 0,
        }
    }

    fn inbox_full(&self) -> bool {
        matches!(&self.delivery, Delivery::Inbox(inbox) if inbox.full())
    }

    /// One batch of work: read what has arrived, queue what waits, check the timers,
    /// flush once. `Some` when the connection is over.
    pub(crate) fn step(&mut self) -> Option<CloseReason> {
        // Only events mode steps with an end set: handler mode looks before each step.
        if let Some(end) = self.ended.take() {
            return Some(end);
        }
        // Look at the close request before the queue: a message queued before the
        // request must still go out before the Close frame.
        let close_request = self.control().take_close_request();
        if let Some(end) = self.read_frames() {
            return Some(end);
        }
        self.write_queued();
        if let Some((code, reason)) = close_request {
            self.start_close(code, reason);
        }
        if let Some(end) = self.check_timers() {
            return Some(end);
        }
        self.flush()
    }

    /// Bytes the socket has taken.
    #[cfg(fuzzing)]
    pub(crate) fn bytes_written(&self) -> u64 {
        self.ws.get_ref().bytes_sent()
    }

    /// Reads every frame that is ready (up to the budget, and while the client's socket
    /// takes bytes); `Some` when the connection ended.
    fn read_frames(&mut self) -> Option<CloseReason> {
        if self.input_dry {
            self.more_to_read = false;
            return None;
        }
        // Until the input runs dry, frames may be waiting where poll cannot see them.
        self.more_to_read = true;
        let messages_before = self.traffic.messages_in;
        let (frames, end) = self.read_batch();
        // One clock reading per batch, not per frame (that was 2 % of the server's time
        // in pipelines), taken at the batch's end: in events mode a batch may wait for
        // the application (`EventSink::emit`), and a time from before that wait could
        // end a client that just sent as idle.
        if frames > 0 {
            let now = Instant::now();
            self.last_frame = now;
            if self.traffic.messages_in != messages_before {
                self.last_message = now;
            }
        }
        end
    }

    /// The reading part of `read_frames`: how many frames it read, and `Some` when the
    /// connection ended.
    fn read_batch(&mut self) -> (usize, Option<CloseReason>) {
        for frames in 0..READ_BUDGET {
            if self.inbox_full() {
                return (frames, None);
            }
            if self.socket_full() {
                self.pause_reading();
                return (frames, None);
            }
            self.reading_paused = false;
            match self.ws.read() {
                Ok(message) => {
                    self.ping_sent = None;
                    self.on_message(message);
                }
                Err(WsError::Io(e)) if would_block(&e) => {
                    self.more_to_read = false;
                    self.input_dry = true;
                    return (frames, None);
                }
                Err(e) => return (frames, Some(self.on_read_error(e))),
            }
        }
        (READ_BUDGET, None)
    }

    /// Reading stops while the client's socket is full: its pongs and close replies would
    /// pile up behind output that is not leaving. Logged the first time, counted for the
    /// summary at close.
    fn pause_reading(&mut self) {
        if self.reading_paused {
            return;
        }
        self.reading_paused = true;
        self.traffic.read_pauses += 1;
        if self.traffic.read_pauses == 1 {
            log::debug!("{}: the client is not taking its output; not reading from it until it does", self.client.id);
        }
    }

    /// Whether the socket refused the last bytes written to it: output is waiting for
    /// the client to read.
    fn socket_full(&self) -> bool {
        self.ws.get_ref().socket_full()
    }

    fn on_message(&mut self, message: WsMessage) {
        let id = self.client.id;
        let context = &self.client.context;
        let message = match message {
            WsMessage::Text(text) => Message::Text(text.as_str().to_owned()),
            WsMessage::Binary(data) => Message::Binary(data.into()),
            WsMessage::Ping(_) => return log::trace!("{id}: ping received; pong queued"),
            WsMessage::Pong(_) => return log::trace!("{id}: pong received"),
            WsMessage::Close(frame) => return self.on_close_frame(frame),
            WsMessage::Frame(_) => return,
        };
        bump(&context.stats.messages_in);
        add(&context.stats.bytes_in, message.len());
        self.traffic.messages_in += 1;
        self.traffic.bytes_in += message.len() as u64;
        log::trace!("{id}: {} message of {} bytes received", kind(&message), message.len());
        match &mut self.delivery {
            Delivery::Events => {
                context.events.emit(Event::Message { conn: id, message, data: self.data.clone() });
            }
            Delivery::Inbox(inbox) => inbox.push(message),
            Delivery::Discard => {
                bump(&context.stats.dropped);
                log::trace!("{id}: the handler has returned; message dropped");
            }
        }
    }

    fn on_close_frame(&mut self, frame: Option<CloseFrame>) {
        self.refuse_messages();
        let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.as_str().to_owned()));
        if code == 1002 && reason == TUNGSTENITE_BAD_CODE_REASON && self.closing.is_none() {
            // tungstenite replaced a close code that may not be sent (RFC 6455 §7.4) with
            // 1002 and echoes that: the server is the one failing the connection.
            log::debug!("{}: the client sent an invalid close code; replying 1002", self.client.id);
            bump(&self.client.context.stats.protocol_errors);
            let reason = "invalid close code".to_owned();
            self.closing = Some(Closing { code, reason, deadline: Instant::now() + self.limits().close_timeout });
            return;
        }
        if self.closing.is_some() {
            log::trace!("{}: client acknowledged our close with {code}", self.client.id);
        } else {
            // tungstenite has queued the echo of this Close frame; the next flush sends it.
            log::trace!("{}: client closes with {code} {reason:?}; replying", self.client.id);
            self.client_close = Some((code, reason));
        }
    }

    /// Maps a read error to the end of the connection, failing it with the RFC's close
    /// code where the client broke the protocol.
    fn on_read_error(&mut self, error: WsError) -> CloseReason {
        match error {
            WsError::ConnectionClosed | WsError::AlreadyClosed => self.clean_end(),
            // We started the close; a client that hangs up instead of replying still
            // ends the connection the way the server asked for.
            WsError::Io(_) | WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)
                if self.closing.is_some() =>
            {
                self.clean_end()
            }
            WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
                CloseReason::Error(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the client closed the connection without a close handshake",
                )))
            }
            WsError::Io(e) => CloseReason::Error(tls_error(e)),
            WsError::Capacity(e) => self.fail(1009, &format!("{e}")),
            WsError::Utf8(_) => self.fail(1007, "invalid UTF-8 in a text message"),
            WsError::Protocol(e) => self.fail(1002, &format!("{e}")),
            other => CloseReason::Error(Error::Protocol(other.to_string())),
        }
    }

    /// The close handshake finished: report who started it.
    fn clean_end(&mut self) -> CloseReason {
        if let Some(closing) = self.closing.take() {
            CloseReason::Server { code: closing.code, reason: closing.reason }
        } else if let Some((code, reason)) = self.client_close.take() {
            CloseReason::Client { code, reason }
        } else {
            CloseReason::Error(Error::Io(io::ErrorKind::UnexpectedEof.into()))
        }
    }

    /// _Fail the WebSocket Connection_ (RFC 6455 §7.1.7): send a Close frame with the
    /// code, then drop the connection without waiting for a reply.
    fn fail(&mut self, code: u16, reason: &str) -> CloseReason {
        log::debug!("{}: failing the connection with {code}: {reason}", self.client.id);
        let stats = &self.client.context.stats;
        bump(if code == 1009 { &stats.limit_closes } else { &stats.protocol_errors });
        self.refuse_messages();
        // Control frames carry at most 125 bytes: 2 for the code, the rest for the reason.
        let reason = truncate_utf8(reason, 123).to_owned();
        let _ = self.ws.close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.clone().into() }));
        CloseReason::Server { code, reason }
    }

    /// Moves queued messages into tungstenite while the socket takes them. Nothing moves
    /// while the socket is full: the messages wait in the bounded outbound queue, where a
    /// slow client is noticed, not in tungstenite's buffer.
    fn write_queued(&mut self) {
        while !self.socket_full() && self.ws.can_write() {
            let Some(message) = self.client.outbox.take() else { break };
            self.write(message);
        }
    }

    /// Hands one message to tungstenite; `false` when it could not take it (counted as
    /// dropped).
    fn write(&mut self, message: WsMessage) -> bool {
        let len = message.len();
        let stats = &self.client.context.stats;
        let message = self.ws.get_mut().compress(message);
        match self.ws.write(message) {
            Ok(()) => {}
            // Buffered in tungstenite; the stream has noted that the socket is full.
            Err(WsError::Io(e)) if would_block(&e) => {}
            Err(e) => {
                bump(&stats.dropped);
                log::debug!("{}: message not sent: {e}", self.client.id);
                return false;
            }
        }
        bump(&stats.messages_out);
        add(&stats.bytes_out, len);
        self.traffic.messages_out += 1;
        self.traffic.bytes_out += len as u64;
        log::trace!("{}: message of {len} bytes queued for the client", self.client.id);
        true
    }

    /// Starts the close handshake, unless one is already under way.
    fn start_close(&mut self, code: u16, reason: String) {
        if self.closing.is_some() || !self.ws.can_write() {
            return;
        }
        log::debug!("{}: closing with {code} {reason:?}", self.client.id);
        self.refuse_messages();
        let frame = CloseFrame { code: CloseCode::from(code), reason: truncate_utf8(&reason, 123).to_owned().into() };
        let deadline = Instant::now() + self.limits().close_timeout;
        self.closing = Some(Closing { code, reason, deadline });
        // The frame is queued even when the socket is full (WouldBlock); flush sends it.
        let _ = self.ws.close(Some(frame));
    }

    /// Keepalive, idle and close deadlines; `Some` when the connection must end now. (The
    /// write timeout is judged by `flush`, which sees whether the socket took anything.)
    fn check_timers(&mut self) -> Option<CloseReason> {
        let now = Instant::now();
        if self.closing.as_ref().is_some_and(|c| now >= c.deadline) {
            log::debug!("{}: no close reply from the client in time", self.client.id);
            return Some(self.clean_end());
        }
        let limits = self.limits();
        let (pong_timeout, ping_interval, idle_timeout) =
            (limits.pong_timeout, limits.ping_interval, limits.idle_timeout);
        match (self.ping_sent, ping_interval) {
            (Some(sent), _) if now >= sent + pong_timeout => {
                return Some(self.limit_end(Timeout::Pong));
            }
            (None, Some(interval)) if now >= self.last_frame + interval && self.closing.is_none() => {
                log::trace!("{}: quiet for {interval:?}; sending a keepalive ping", self.client.id);
                self.ping_sent = Some(now);
                let _ = self.ws.write(WsMessage::Ping(Default::default()));
            }
            _ => {}
        }
        if let Some(idle) = idle_timeout {
            if now >= self.last_message + idle && self.closing.is_none() {
                bump(&self.client.context.stats.limit_closes);
                self.start_close(1000, "idle timeout".into());
            }
        }
        None
    }

    /// Ends a connection that broke a time limit; no close handshake, the client is
    /// not listening.
    fn limit_end(&self, which: Timeout) -> CloseReason {
        bump(&self.client.context.stats.limit_closes);
        log::debug!("{}: {which}", self.client.id);
        CloseReason::Error(Error::Timeout(which))
    }

    /// When the loop must wake up even if nothing arrives.
    fn next_deadline(&self) -> Option<Instant> {
        let limits = self.limits();
        let keepalive = match self.ping_sent {
            Some(sent) => Some(sent + limits.pong_timeout),
            None => limits.ping_interval.map(|i| self.last_frame + i),
        };
        let idle = limits.idle_timeout.map(|i| self.last_message + i);
        let close = self.closing.as_ref().map(|c| c.deadline);
        let stall = self.stalled.map(|(since, _)| since + limits.write_timeout);
        [keepalive, idle, close, stall].into_iter().flatten().min()
    }

    /// Writes everything buffered; `Some` when that ended the connection.
    fn flush(&mut self) -> Option<CloseReason> {
        let flushed = self.ws.flush();
        // The registry judges slow consumers by it.
        self.control().set_socket_full(self.socket_full());
        match flushed {
            Ok(()) => {
                self.stalled = None;
                None
            }
            Err(WsError::Io(e)) if would_block(&e) => self.check_progress(),
            // The server wrote the last Close frame of the handshake.
            Err(WsError::ConnectionClosed) => Some(self.clean_end()),
            // We started the close; a client that hangs up instead of reading it (its
            // input is not read while its socket is full) ends the connection the way
            // the server asked for, as in `on_read_error`.
            Err(WsError::Io(_)) if self.closing.is_some() => Some(self.clean_end()),
            Err(WsError::Io(e)) => Some(CloseReason::Error(tls_error(e))),
            Err(e) => Some(CloseReason::Error(Error::Protocol(e.to_string()))),
        }
    }

    /// Output is waiting: ends the connection if the socket has taken nothing for the
    /// write timeout. Judged here, right after a write, so that a client that reads
    /// slowly counts as progressing even when the socket never had room enough to
    /// report itself writable.
    fn check_progress(&mut self) -> Option<CloseReason> {
        let (now, sent) = (Instant::now(), self.ws.get_ref().bytes_sent());
        match self.stalled {
            Some((since, before)) if before == sent => {
                (now >= since + self.limits().write_timeout).then(|| self.limit_end(Timeout::Write))
            }
            _ => {
                self.stalled = Some((now, sent));
                None
            }
        }
    }

    /// No message queued from now on can be sent (tungstenite sends nothing after a
    /// Close frame): the registry refuses and counts them instead of waking this thread.
    fn refuse_messages(&self) {
        self.control().set_closing();
    }

    /// Sends what is still buffered in tungstenite and in TLS (a Close frame, usually),
    /// then TLS `close_notify`, then closes TCP: within the close timeout, because the
    /// client may be gone. Meanwhile the thread wakes only when the socket takes bytes
    /// or the time is up: no message can wake it, and input is not read any more.
    /// Returns what the connection carried, for the summary at close.
    pub(crate) fn finish(&mut self) -> Traffic {
        self.refuse_messages();
        let deadline = Instant::now() + self.limits().close_timeout;
        while self.flush_remaining() && Instant::now() < deadline {
            if self.wait_writable(Some(deadline)).is_err() {
                break;
            }
        }
        let stream: &mut Transport = self.ws.get_mut();
        stream.close_notify();
        stream.shutdown();
        self.traffic
    }

    /// Writes what tungstenite and TLS hold; returns whether some of it must wait for
    /// the socket.
    fn flush_remaining(&mut self) -> bool {
        match self.ws.flush() {
            // tungstenite flushed TLS too.
            Ok(()) => false,
            Err(WsError::Io(e)) => would_block(&e),
            // tungstenite has written its last frame (the close handshake is over) or
            // cannot write: what TLS holds may still go.
            Err(_) => matches!(self.ws.get_mut().flush(), Err(e) if would_block(&e)),
        }
    }
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    [a, b].into_iter().flatten().min()
}

fn kind(message: &Message) -> &'static str {
    match message {
        Message::Text(_) => "text",
        Message::Binary(_) => "binary",
    }
}

/// The longest prefix of `text` that fits in `max` bytes without splitting a character.
fn truncate_utf8(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate_utf8;

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }
}
