//! The central thread: the only owner of routing state.
//!
//! It knows every connection thread by id and routes the application's commands to
//! their bounded outbound queues. It never blocks: a full queue means a slow client,
//! which is closed (1013) and counted instead of waited for.
//!
//! Events do not pass through here. Each connection thread sends its own `Open`,
//! `Message` and `Close` events straight to the application's bounded channel, which
//! keeps them in order per connection and lets a slow application push back on the
//! clients (through TCP) without ever stalling the dispatcher.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tungstenite::Message as WsMessage;

use crate::config::{Limits, SlowConsumerPolicy};
use crate::rooms::Rooms;
use crate::stats::{bump, Counters};
use crate::wait::Waker;
use crate::ConnectionId;

/// What the dispatcher is asked to do, by the acceptor, connection threads and handles.
#[derive(Debug)]
pub(crate) enum Command {
    /// A connection thread is starting; route to it from now on (once open).
    Register { id: ConnectionId, link: Link },
    /// Its WebSocket handshake succeeded: it may receive messages.
    Opened { id: ConnectionId },
    /// Its thread is ending: forget it.
    Unregister { id: ConnectionId },
    /// Queue a message for one connection.
    Send { id: ConnectionId, message: WsMessage },
    /// Queue a message for every open connection (the payload is shared, not copied).
    Broadcast { message: WsMessage },
    /// Ask one connection to close with this code and reason.
    Close { id: ConnectionId, code: u16, reason: String },
    /// Add an open connection to a room.
    Join { id: ConnectionId, room: String },
    /// Remove a connection from a room.
    Leave { id: ConnectionId, room: String },
    /// Queue a message for every member of a room, but `except` (the payload is shared).
    Publish { room: String, message: WsMessage, except: Option<ConnectionId> },
    /// Close every connection with 1001 and stop.
    Shutdown,
}

/// The dispatcher's line to one connection thread.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) outbox: Sender<WsMessage>,
    pub(crate) control: Arc<Control>,
}

/// Signals to a connection thread that do not queue behind its messages.
#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) waker: Waker,
    /// The close the connection thread has yet to start.
    close: Mutex<Option<(u16, String)>>,
    /// Set by the first close request and never cleared, so later requests (a slow
    /// client's queue stays full) are not counted or logged again.
    close_requested: AtomicBool,
    /// Payload bytes and messages in the outbound queue: added before a message is
    /// queued, subtracted by the connection thread once it takes the message. The queue
    /// itself is an unbounded channel that allocates only while it holds messages (a
    /// bounded one allocates all its slots up front, 4 KiB per idle connection); these
    /// counts are its bounds.
    queued_bytes: AtomicUsize,
    queued_messages: AtomicUsize,
}

impl Control {
    pub(crate) fn new(waker: Waker) -> Control {
        Control {
            waker,
            close: Mutex::new(None),
            close_requested: AtomicBool::new(false),
            queued_bytes: AtomicUsize::new(0),
            queued_messages: AtomicUsize::new(0),
        }
    }

    /// Asks the connection to close. The first request wins; returns whether this was it.
    pub(crate) fn request_close(&self, code: u16, reason: &str) -> bool {
        if self.close_requested.swap(true, Ordering::SeqCst) {
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

    /// Whether a close was ever requested.
    pub(crate) fn close_requested(&self) -> bool {
        self.close_requested.load(Ordering::SeqCst)
    }

    /// The connection thread took a message of `len` bytes from its queue.
    pub(crate) fn dequeued(&self, len: usize) {
        self.queued_messages.fetch_sub(1, Ordering::SeqCst);
        self.queued_bytes.fetch_sub(len, Ordering::SeqCst);
    }
}

struct Entry {
    link: Link,
    open: bool,
}

/// The dispatcher's state: the registry, the rooms, and how to deliver.
struct Dispatcher {
    conns: HashMap<ConnectionId, Entry>,
    rooms: Rooms,
    router: Router,
}

/// Puts messages in connections' queues (a separate part, so that delivering can go on
/// while the registry is borrowed).
struct Router {
    /// Connections given a message in the current batch, to wake once at its end.
    to_wake: Vec<Arc<Control>>,
    stats: Arc<Counters>,
    max_queued_bytes: usize,
    max_queued_messages: usize,
    policy: SlowConsumerPolicy,
}

/// Runs the dispatcher until [`Command::Shutdown`] (or until every sender is gone).
pub(crate) fn run(commands: Receiver<Command>, stats: Arc<Counters>, limits: &Limits) {
    let mut dispatcher = Dispatcher {
        conns: HashMap::new(),
        rooms: Rooms::default(),
        router: Router {
            to_wake: Vec::new(),
            stats,
            max_queued_bytes: limits.outbound_queue_bytes,
            max_queued_messages: limits.outbound_queue,
            policy: limits.slow_consumer,
        },
    };
    // Commands are taken in batches and the connections they touched are woken once at
    // the end: waking a connection thread per message would let it run (and the two
    // threads take turns on a small machine's core) for every single message.
    while let Ok(first) = commands.recv() {
        let mut running = dispatcher.handle(first);
        for command in commands.try_iter().take(BATCH) {
            if !running {
                break;
            }
            running = dispatcher.handle(command);
        }
        for control in dispatcher.router.to_wake.drain(..) {
            control.waker.wake();
        }
        if !running {
            break;
        }
    }
}

/// Most commands handled before the connections they touched are woken.
const BATCH: usize = 256;

impl Dispatcher {
    /// Carries out one command; false when it is time to stop.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Register { id, link } => {
                self.conns.insert(id, Entry { link, open: false });
            }
            Command::Opened { id } => {
                if let Some(entry) = self.conns.get_mut(&id) {
                    entry.open = true;
                }
            }
            Command::Unregister { id } => {
                self.conns.remove(&id);
                self.rooms.remove_connection(id);
                self.update_room_stats();
            }
            Command::Send { id, message } => match self.conns.get(&id) {
                Some(entry) if entry.open => self.router.deliver(id, entry, message),
                _ => {
                    bump(&self.router.stats.dropped);
                    log::debug!("{id}: not open; message dropped");
                }
            },
            Command::Broadcast { message } => {
                for (id, entry) in self.conns.iter().filter(|(_, e)| e.open) {
                    self.router.deliver(*id, entry, message.clone());
                }
            }
            Command::Close { id, code, reason } => match self.conns.get(&id) {
                Some(entry) => {
                    entry.link.control.request_close(code, &reason);
                }
                None => log::debug!("{id}: close requested, but it is already gone"),
            },
            Command::Join { id, room } => match self.conns.get(&id) {
                Some(entry) if entry.open => {
                    self.rooms.join(id, &room);
                    self.update_room_stats();
                }
                _ => log::debug!("{id}: not open; cannot join {room:?}"),
            },
            Command::Leave { id, room } => {
                self.rooms.leave(id, &room);
                self.update_room_stats();
            }
            Command::Publish { room, message, except } => {
                for id in self.rooms.members(&room).filter(|id| Some(*id) != except) {
                    if let Some(entry) = self.conns.get(&id) {
                        self.router.deliver(id, entry, message.clone());
                    }
                }
            }
            Command::Shutdown => {
                for entry in self.conns.values() {
                    entry.link.control.request_close(1001, "server shutting down");
                }
                log::debug!("dispatcher: asked {} connections to close", self.conns.len());
                return false;
            }
        }
        true
    }

    fn update_room_stats(&self) {
        self.router.stats.rooms.store(self.rooms.count() as u64, Ordering::Relaxed);
        self.router.stats.room_members.store(self.rooms.memberships() as u64, Ordering::Relaxed);
    }
}

impl Router {
    /// Queues without waiting; a full queue (in messages or bytes) is a slow consumer.
    fn deliver(&mut self, id: ConnectionId, entry: &Entry, message: WsMessage) {
        let control = &entry.link.control;
        let len = message.len();
        let before = control.queued_bytes.fetch_add(len, Ordering::SeqCst);
        let count = control.queued_messages.fetch_add(1, Ordering::SeqCst);
        let full = count >= self.max_queued_messages || (before > 0 && before + len > self.max_queued_bytes);
        let result = if full { Err(TrySendError::Full(message)) } else { entry.link.outbox.try_send(message) };
        match result {
            Ok(()) => self.to_wake.push(Arc::clone(control)),
            Err(failed) => {
                control.queued_messages.fetch_sub(1, Ordering::SeqCst);
                control.queued_bytes.fetch_sub(len, Ordering::SeqCst);
                bump(&self.stats.dropped);
                if let TrySendError::Full(_) = failed {
                    self.slow_consumer(id, control);
                }
            }
        }
    }

    fn slow_consumer(&self, id: ConnectionId, control: &Control) {
        match self.policy {
            SlowConsumerPolicy::Close => {
                if control.request_close(1013, "slow consumer: outbound queue full") {
                    bump(&self.stats.slow_consumer_closes);
                    log::warn!("{id}: outbound queue full (client reads too slowly); closing it with 1013");
                }
            }
            SlowConsumerPolicy::DropNewest => {
                log::debug!("{id}: outbound queue full (client reads too slowly); message dropped")
            }
        }
    }
}
