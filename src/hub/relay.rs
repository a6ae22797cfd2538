//! What the registry tells the other servers of a cluster, when there are any: the
//! seam between this server's rooms and a backplane (`backplane/`, feature `redis`).
//!
//! The registry knows only this trait, and the backplane implements it (and calls the
//! registry to deliver what other servers publish), so the imports point one way.

use std::time::Instant;

use tungstenite::Message as WsMessage;

use crate::ConnectionId;

/// The other servers of a cluster. Every method returns at once: none waits for the
/// network.
pub(crate) trait Relay: Send + Sync {
    /// A message this server published for `room`, or for everyone (`None`), to be
    /// delivered by the other servers to their clients.
    fn publish(&self, room: Option<&str>, message: &WsMessage, except: Option<ConnectionId>);

    /// This server's room memberships changed (called under the registry's lock).
    fn rooms_changed(&self);

    /// How many members `room` has on the other servers.
    fn remote_members(&self, room: &str) -> usize;

    /// The names of the servers alive now, this one first.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn nodes(&self) -> Vec<String>;

    /// The server is shutting down: say goodbye, and let the relay's threads end.
    fn stop(&self);

    /// Waits for the relay's threads to end, until `deadline`.
    fn join(&self, deadline: Instant);
}
