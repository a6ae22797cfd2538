//! One connection's outbound queue: both of its ends, its bounds and its signals.
//!
//! The registry pushes from the application's threads ([`OutboxSender::push`]); the
//! connection thread takes from the [`Outbox`]. Both ends share a [`Control`]: the
//! queue's counts (payload bytes and messages), the waker that rouses the connection
//! thread, the close request that does not queue behind messages, whether the
//! connection is closing (then nothing more is queued), and whether the client's socket
//! is full. The counts are changed here only: added by `push`, subtracted by `take`,
//! given back by `discard`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crossbeam_channel::{Receiver, Sender};
use tungstenite::Message as WsMessage;

use crate::wait::Waker;

/// How far a connection thread may fall behind its socket before the message count
/// alone makes it a slow consumer: a thread that is merely waiting for a CPU (the
/// client's socket is not full) is given this many times the message bound.
/// The byte bound holds either way.
pub(crate) const BEHIND_FACTOR: usize = 4;

/// A new outbound queue for one connection, with its waker: the registry's end and the
/// connection thread's end.
///
/// The queue is an unbounded channel that allocates only while it holds messages (a
/// bounded one allocates all its slots up front, 4 KiB per idle connection); the
/// counts in [`Control`] are its bounds, checked by [`OutboxSender::push`].
pub(crate) fn outbox(waker: Waker) -> (OutboxSender, Outbox) {
    let control = Arc::new(Control::new(waker));
    let (tx, rx) = crossbeam_channel::unbounded();
    (OutboxSender { tx, control: Arc::clone(&control) }, Outbox { rx, control })
}

/// How much one queue may hold.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub(crate) max_bytes: usize,
    pub(crate) max_messages: usize,
}

/// What became of a pushed message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued: the connection thread must be woken.
    Queued,
    /// Not queued: the queue is over its bounds (a slow consumer).
    Full,
    /// Not queued: the connection is closing and will send no more messages.
    Closing,
    /// Not queued: the connection thread has ended.
    Gone,
}

/// A connection's frame loop as a sending thread may borrow it, to write a message to
/// the client itself rather than queue it and wake the connection's thread (events
/// mode: `connection::shared`).
pub(crate) trait WriteThrough: Send + Sync {
    /// Encrypts and writes `message` now, if that needs no waiting and keeps the order
    /// of what was sent before; gives it back otherwise, for the queue.
    fn try_write(&self, message: WsMessage) -> Result<(), WsMessage>;
}

/// The registry's end of a queue.
#[derive(Debug)]
pub(crate) struct OutboxSender {
    tx: Sender<WsMessage>,
    control: Arc<Control>,
}

impl OutboxSender {
    pub(crate) fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// Queues without waiting, unless the connection is closing or one more message
    /// would overfill the queue.
    pub(crate) fn push(&self, message: WsMessage, bounds: Bounds) -> Pushed {
        let control = &self.control;
        if control.is_closing() {
            return Pushed::Closing;
        }
        let len = message.len();
        let bytes_before = control.queued_bytes.fetch_add(len, Ordering::SeqCst);
        let count_before = control.queued_messages.fetch_add(1, Ordering::SeqCst);
        let pushed = if control.over_bounds(bounds, bytes_before, len, count_before) {
            Pushed::Full
        } else if self.tx.send(message).is_err() {
            Pushed::Gone
        } else {
            return Pushed::Queued;
        };
        control.forget(len);
        pushed
    }
}

/// The connection thread's end of its queue.
#[derive(Debug)]
pub(crate) struct Outbox {
    rx: Receiver<WsMessage>,
    control: Arc<Control>,
}

impl Outbox {
    pub(crate) fn control(&self) -> &Control {
        &self.control
    }

    /// The signals, for a handler's [`Wakeup`](crate::Wakeup), which outlives a borrow.
    pub(crate) fn shared_control(&self) -> Arc<Control> {
        Arc::clone(&self.control)
    }

    /// Takes the oldest queued message, if any.
    pub(crate) fn take(&self) -> Option<WsMessage> {
        let message = self.rx.try_recv().ok()?;
        self.control.forget(message.len());
        Some(message)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Messages in the queue.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.rx.len()
    }

    /// Empties the queue of a connection that ended; returns how many messages it held.
    pub(crate) fn discard(&self) -> usize {
        std::iter::from_fn(|| self.take()).count()
    }
}

/// Signals to a connection thread that do not queue behind its messages, and the
/// counts that bound its queue.
#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) waker: Waker,
    /// The close the connection thread has yet to start.
    close: Mutex<Option<(u16, String)>>,
    /// Set by the first close request, or by the connection thread when it starts or
    /// answers a close handshake or ends, and never cleared. From then on messages are
    /// refused (they could never be sent, and each would wake the thread for nothing),
    /// and later close requests are ignored: not counted or logged again.
    closing: AtomicBool,
    /// Payload bytes and messages in the queue.
    queued_bytes: AtomicUsize,
    queued_messages: AtomicUsize,
    /// Whether the client's socket is full (the last write would have blocked): set and
    /// cleared by the connection thread. A long queue is the client's fault only then.
    socket_full: AtomicBool,
    /// Set by a handler's [`Wakeup`](crate::Wakeup), cleared when the handler's
    /// `recv_timeout` returns because of it.
    handler_woken: AtomicBool,
    /// The frame loop, once its thread offers it to sending threads (events mode).
    write_through: OnceLock<Weak<dyn WriteThrough>>,
}

impl Control {
    fn new(waker: Waker) -> Control {
        Control {
            waker,
            close: Mutex::new(None),
            closing: AtomicBool::new(false),
            queued_bytes: AtomicUsize::new(0),
            queued_messages: AtomicUsize::new(0),
            socket_full: AtomicBool::new(false),
            handler_woken: AtomicBool::new(false),
            write_through: OnceLock::new(),
        }
    }

    /// Writes `message` to the client on this thread, if its connection offers that
    /// and can take it now; gives it back otherwise.
    pub(crate) fn write_through(&self, message: WsMessage) -> Result<(), WsMessage> {
        match self.write_through.get().and_then(Weak::upgrade) {
            Some(frame_loop) => frame_loop.try_write(message),
            None => Err(message),
        }
    }

    /// Lets sending threads write to the client through `frame_loop` from now on.
    pub(crate) fn offer_write_through(&self, frame_loop: Weak<dyn WriteThrough>) {
        let _ = self.write_through.set(frame_loop);
    }

    /// Asks the connection to close. The first request wins, unless the connection is
    /// already closing; returns whether this request was taken.
    pub(crate) fn request_close(&self, code: u16, reason: &str) -> bool {
        if self.closing.swap(true, Ordering::SeqCst) {
            return false;
        }
        *self.close.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((code, reason.to_owned()));
        self.waker.wake();
        true
    }

    /// Takes a pending close request, if any.
    pub(crate) fn take_close_request(&self) -> Option<(u16, String)> {
        self.close.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }

    /// The connection thread started closing on its own (or answered the client's
    /// close, or ended): refuse messages from now on.
    pub(crate) fn set_closing(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    /// Whether the connection is closing: a close was requested, or its thread started one.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Asks the handler to return from `recv_timeout` now. The flag is set before the
    /// waker rings, so a handler that checks it after its wake-up never misses it.
    pub(crate) fn wake_handler(&self) {
        self.handler_woken.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// Whether the handler was woken since it last took the wake-up (which stays).
    pub(crate) fn handler_woken(&self) -> bool {
        self.handler_woken.load(Ordering::SeqCst)
    }

    /// Whether the handler was woken since it last looked (and forgets it).
    pub(crate) fn take_handler_wake(&self) -> bool {
        self.handler_woken.swap(false, Ordering::SeqCst)
    }

    /// The connection thread found the client's socket full (`true`) or drained (`false`).
    pub(crate) fn set_socket_full(&self, full: bool) {
        self.socket_full.store(full, Ordering::Relaxed);
    }

    /// Whether one more message of `len` bytes overfills the queue. The byte bound
    /// always holds (one message larger than it may still go to an empty queue). The
    /// message bound counts against the client only while its socket is full; otherwise
    /// its thread is just waiting for a CPU and gets some slack.
    fn over_bounds(&self, bounds: Bounds, bytes_before: usize, len: usize, count_before: usize) -> bool {
        let bytes_over = bytes_before > 0 && bytes_before + len > bounds.max_bytes;
        let max_messages = if self.socket_full.load(Ordering::Relaxed) {
            bounds.max_messages
        } else {
            bounds.max_messages.saturating_mul(BEHIND_FACTOR)
        };
        bytes_over || count_before >= max_messages
    }

    /// A message of `len` bytes left the queue (or never entered it).
    fn forget(&self, len: usize) {
        self.queued_messages.fetch_sub(1, Ordering::SeqCst);
        self.queued_bytes.fetch_sub(len, Ordering::SeqCst);
    }

    /// Payload bytes and messages queued now.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> (usize, usize) {
        (self.queued_bytes.load(Ordering::SeqCst), self.queued_messages.load(Ordering::SeqCst))
    }
}
