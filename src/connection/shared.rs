//! Events mode: the frame loop behind a lock, so that the thread answering a message can
//! write the reply to the client itself.
//!
//! Through the outbound queue, a message the application sends costs the connection's
//! thread a wake-up: the sender queues it and rings the waker, the connection thread
//! leaves `poll`, encrypts, writes, and sleeps again. In a request-reply exchange that is
//! one more thread switch per message than a server that answers on the thread that read
//! (measured in `bench/NOTES.md`). So the connection thread holds the session only while
//! it works, and sleeps in `poll` on the bare socket: a `Handle::send` that finds the
//! session free writes the message through it on the sender's own thread
//! ([`Session::write_through`]), when that keeps the order (nothing queued before it)
//! and needs no waiting (the socket takes it). Over TLS the sender seals the message
//! under the session's lock and writes the records after releasing it (`wire.rs`), so
//! the connection thread never waits for a sender's system call to read.
//!
//! It writes through only when the application has taken every event: with events
//! still waiting, more sends are on their way, and the queue lets the connection thread
//! write them in one batch with one system call (woken by the first of them, it lets
//! the application finish its burst first: `Session::woke`). It never waits for the
//! session: a session in use means the connection thread is awake, and will take the
//! queue on its way. (It may wait for the wire while another sender writes: one
//! non-blocking system call.)

use std::io;
use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};

use tungstenite::Message as WsMessage;

use super::context::Context;
use super::session::{Session, Traffic};
use crate::hub::{Control, WriteThrough};
use crate::wait::{wait_ready, Woken};
use crate::CloseReason;

/// A session its connection thread shares with sending threads while it sleeps.
pub(crate) struct Shared {
    session: Mutex<Session>,
    /// The waker, for what a write leaves to the connection thread.
    control: Arc<Control>,
    /// For the events channel: written through only once the application took every event.
    context: Arc<Context>,
}

impl Shared {
    /// Runs the frame loop until the connection is over, then its end (`Session::finish`),
    /// offering the session to sending threads whenever the loop sleeps. Returns why the
    /// connection ended and what it carried.
    ///
    /// The session itself is dropped with the last reference, which may be a sending
    /// thread's for a moment: after `finish` it writes nothing more (it refuses
    /// messages), so all that can happen there is the socket's close.
    pub(crate) fn run(self: Arc<Self>) -> (CloseReason, Traffic) {
        let socket = self.lock().waitable();
        self.frame_loop(&*socket)
    }

    /// Shares `session` with the threads that send to its connection.
    pub(crate) fn offer(session: Session) -> Arc<Shared> {
        let context = Arc::clone(session.context());
        let control = session.shared_control();
        let shared = Arc::new(Shared { session: Mutex::new(session), control, context });
        let frame_loop: Weak<dyn WriteThrough> = Arc::downgrade(&shared) as Weak<Shared>;
        shared.control.offer_write_through(frame_loop);
        shared
    }

    /// `Session::run` then `Session::finish`, with the session locked from each
    /// wake-up until the next sleep.
    fn frame_loop(&self, socket: &dyn AsFd) -> (CloseReason, Traffic) {
        let mut woken: Option<io::Result<Woken>> = None;
        loop {
            let sleep = {
                let mut session = self.lock();
                let end = match woken.take().map(|woken| session.woke(woken)) {
                    Some(Err(end)) => Some(end),
                    _ => session.step(),
                };
                if let Some(end) = end {
                    return (end, session.finish());
                }
                session.sleep(None)
            };
            woken = Some(wait_ready(&socket.as_fd(), sleep.interest, &self.control.waker, sleep.deadline));
        }
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        // A panic in the loop ends the thread: nothing uses the session after it.
        self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl WriteThrough for Shared {
    fn try_write(&self, message: WsMessage) -> Result<(), WsMessage> {
        if !self.context.events.all_taken() {
            return Err(message);
        }
        let mut session = match self.session.try_lock() {
            Ok(session) => session,
            // Busy: the connection thread is awake, and takes the queue before it sleeps.
            // Poisoned: the connection thread panicked (a sender's panic is caught below);
            // the queue counts what it never sends.
            Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => return Err(message),
        };
        // A panic here (a bug: in compression, tungstenite, a logger) is the sender's
        // no more than the connection thread's: caught, it ends this connection alone,
        // and the application's thread carries on.
        let written = catch_unwind(AssertUnwindSafe(|| session.write_through(message)));
        let sealed = match written {
            Ok(written) => written?,
            Err(panic) => {
                session.panicked_writing_through(&*panic);
                return Ok(());
            }
        };
        let Some(sealed) = sealed else { return Ok(()) };
        // The wire before the session goes: the connection thread's next write waits
        // for this one. (It may have to wait for another sender's write first: one
        // non-blocking system call.)
        let mut backlog = sealed.wire.lock();
        drop(session);
        if !sealed.write(&mut backlog) {
            self.control.waker.wake();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::time::Instant;

    use crossbeam_channel::Receiver;

    use super::*;
    use crate::config::Limits;
    use crate::connection::client::Client;
    use crate::connection::session::WRITE_THROUGH_MAX;
    use crate::connection::stream::{PlainStream, Transport};
    use crate::http::Policy;
    use crate::hub::{outbox, EventSink, Registry};
    use crate::wait::Waker;
    use crate::{ConnectionId, Event};

    const ID: ConnectionId = ConnectionId(3);

    /// An open connection over plain TCP, shared as in events mode: the registry to send
    /// through, the client's end of the socket, and the application's end of the events.
    fn shared_connection() -> (Arc<Shared>, Arc<Registry>, TcpStream, Receiver<Event>, crossbeam_channel::Sender<Event>)
    {
        let limits = Limits::default();
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let (_never, shutdown) = crossbeam_channel::bounded(0);
        let stats = Arc::default();
        let registry = Arc::new(Registry::new(Arc::clone(&stats), &limits));
        let events = EventSink::new(events_tx.clone(), shutdown, Arc::clone(&stats), &limits);
        let context = Arc::new(Context::new(limits, Policy::default(), None, events, Arc::clone(&registry), stats));
        let (sender, outbox) = outbox(Waker::new().unwrap());
        registry.register(ID, sender);
        registry.opened(ID);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client_end = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_end, peer) = listener.accept().unwrap();
        server_end.set_nonblocking(true).unwrap();
        let client = Arc::new(Client { id: ID, peer, outbox, context, deadline: Instant::now() });
        let session = Session::new(client, Transport::Plain(PlainStream::new(server_end)), None, Vec::new(), None);
        (Shared::offer(session), registry, client_end, events_rx, events_tx)
    }

    /// The next frame the client receives: an unmasked text frame of under 126 bytes.
    fn text_frame(client_end: &mut TcpStream) -> String {
        let mut head = [0u8; 2];
        client_end.read_exact(&mut head).unwrap();
        assert_eq!(head[0], 0x81, "a final text frame");
        let mut payload = vec![0; usize::from(head[1])];
        client_end.read_exact(&mut payload).unwrap();
        String::from_utf8(payload).unwrap()
    }

    fn sent_through(shared: &Shared, text: &str) -> bool {
        shared.try_write(WsMessage::text(text)).is_ok()
    }

    #[test]
    fn a_send_to_a_sleeping_connection_is_written_by_the_sender() {
        let (shared, registry, mut client_end, _events, _app) = shared_connection();
        registry.send(ID, WsMessage::text("straight")).unwrap();
        assert_eq!(text_frame(&mut client_end), "straight");
        assert!(shared.lock().client().outbox.is_empty(), "nothing was queued");
        registry.broadcast(WsMessage::text("to all")).unwrap();
        assert_eq!(text_frame(&mut client_end), "to all");
        assert_eq!(shared.lock().traffic.messages_out, 2);
    }

    #[test]
    fn a_message_queued_before_keeps_its_place() {
        let (shared, registry, _client_end, _events, _app) = shared_connection();
        // Taken by the queue while the session is busy, the next must follow it there.
        let busy = shared.lock();
        registry.send(ID, WsMessage::text("first")).unwrap();
        drop(busy);
        assert!(!sent_through(&shared, "second"));
        assert_eq!(shared.lock().client().outbox.take(), Some(WsMessage::text("first")));
        assert!(sent_through(&shared, "third"), "the queue is empty again");
    }

    #[test]
    fn no_write_through_while_the_application_has_events_waiting() {
        let (shared, _registry, _client_end, events, app) = shared_connection();
        app.send(Event::Message { conn: ID, message: "unread".into(), data: None }).unwrap();
        assert!(!sent_through(&shared, "reply"), "more replies are on their way: they go in one batch");
        events.recv().unwrap();
        assert!(sent_through(&shared, "reply"));
    }

    #[test]
    fn no_write_through_once_closing_or_for_a_large_message() {
        let (shared, _registry, _client_end, _events, _app) = shared_connection();
        let large = WsMessage::binary(vec![0; WRITE_THROUGH_MAX + 1]);
        assert!(shared.try_write(large).is_err(), "a large message is encrypted by the connection thread");
        assert!(sent_through(&shared, "small"));
        shared.lock().client().outbox.control().request_close(1000, "bye");
        assert!(!sent_through(&shared, "late"));
    }

    #[test]
    fn no_write_through_once_the_server_started_its_close() {
        let (shared, _registry, _client_end, _events, _app) = shared_connection();
        shared.lock().close(4000, "bye");
        assert!(!sent_through(&shared, "after the Close frame"));
    }

    #[test]
    fn a_full_socket_stops_write_through_and_wakes_the_connection_thread() {
        let (shared, _registry, _client_end, _events, _app) = shared_connection();
        let waker_rang = || {
            let session = shared.lock();
            let now = Some(Instant::now());
            crate::wait::wait(&session.waitable().as_fd(), false, &session.client().outbox.control().waker, now)
                .unwrap()
        };
        // The client reads nothing: some write fills its socket, and is still taken.
        let chunk = WsMessage::binary(vec![7; WRITE_THROUGH_MAX]);
        let mut written = 0;
        while shared.try_write(chunk.clone()).is_ok() {
            written += 1;
            assert!(written < 10_000, "the socket never filled");
        }
        assert!(written > 1);
        assert!(waker_rang(), "the connection thread must take over what the socket refused");
        assert!(shared.try_write(WsMessage::text("small")).is_err(), "nothing more until the socket takes it");
    }
}
