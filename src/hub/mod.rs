//! What the connection threads and the application share: the routing table, each
//! connection's outbound queue, the rooms, and the events channel.
//!
//! ```text
//!  Handle ──send/broadcast/publish/close──► registry.rs ──push──► outbox.rs ──take──► connection thread
//!                                           (rooms.rs)            (bounds, waker)
//!  connection thread ──emit──► events.rs ──► Server::events ──► the application
//! ```
//!
//! With the Redis backplane (`backplane/`, feature `redis`), `publish` and `broadcast`
//! also hand the message to the other servers of the cluster (`relay.rs`), and the
//! backplane's subscriber delivers theirs through the same registry.
//!
//! Nothing here waits for a client: a full outbox is a slow consumer; only the events
//! channel waits, for the application, which is the backpressure that slows clients: each
//! client by itself, once its share of the channel is waiting.

#[cfg(feature = "redis")]
mod backplane;
mod events;
mod outbox;
mod registry;
mod relay;
mod rooms;

#[cfg(feature = "redis")]
pub(crate) use backplane::Backplane;
pub(crate) use events::EventSink;
pub(crate) use outbox::{outbox, Control, Outbox, WriteThrough};
pub(crate) use registry::Registry;
