//! The send side of [`Server::events`](crate::Server::events): how connection threads
//! hand events to the application.

use std::sync::Arc;

use crossbeam_channel::{select, Receiver, Sender, TrySendError};

use crate::stats::{bump, Counters};
use crate::Event;

/// The events channel as the connection threads see it.
#[derive(Debug)]
pub(crate) struct EventSink {
    events: Sender<Event>,
    /// Never receives; disconnects when shutdown begins, to unblock event sends.
    shutdown: Receiver<()>,
    stats: Arc<Counters>,
}

impl EventSink {
    pub(crate) fn new(events: Sender<Event>, shutdown: Receiver<()>, stats: Arc<Counters>) -> EventSink {
        EventSink { events, shutdown, stats }
    }

    /// Hands an event to the application, waiting while its channel is full (this is
    /// the backpressure that slows clients down) unless the server is shutting down.
    pub(crate) fn emit(&self, event: Event) -> bool {
        let event = match self.events.try_send(event) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(event)) => event,
        };
        select! {
            send(self.events, event) -> sent => sent.is_ok(),
            recv(self.shutdown) -> _ => {
                bump(&self.stats.dropped);
                false
            }
        }
    }
}
