//! Who may come in: the acceptor's count of connections and handshakes in progress, in
//! total and per address, and which handshake gives way when they are all in use.
//!
//! A connection that sends nothing holds its handshake until the deadline. Counted only
//! against `max_connections`, a few hundred of them lock every real client out, and a
//! trickle of new ones keeps it so. Handshakes therefore have a bound of their own,
//! `max_handshakes`, and when it (or `max_connections`) is reached a new client takes
//! the place of the oldest unfinished handshake: a real handshake takes milliseconds, so
//! the oldest is almost always one that stalls. Per address, connections are bounded
//! too, and so are handshakes when the slots are all in use: one host can neither take
//! the whole server nor push everyone else's handshakes out, while a burst of clients
//! behind one NAT address (all reconnecting after a restart) still gets in when there
//! is room.
//!
//! Only the acceptor thread reads and changes this. Connection threads report through
//! their [`Slot`](crate::connection::Slot) on a channel that is drained before each
//! decision; every step is O(1) (amortized), whatever the number of connections.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Weak};

use crossbeam_channel::{Receiver, Sender};

use crate::config::Limits;
use crate::connection::{Departure, Slot};
use crate::hub::Control;
use crate::ConnectionId;

/// The acceptor's bookkeeping of who is in.
#[derive(Debug)]
pub(crate) struct Admission {
    bounds: Bounds,
    departures: Receiver<Departure>,
    slots: Sender<Departure>,
    /// Connection threads started and not yet over.
    connections: usize,
    /// Handshakes in progress; `true` once shed (asked to give up, not yet over).
    handshakes: HashMap<ConnectionId, bool>,
    /// How many of `handshakes` were shed.
    shedding: usize,
    /// Handshakes in accept order, oldest first, to shed from the front. Those over
    /// are skipped there, and swept out when they make up most of it.
    queue: VecDeque<(ConnectionId, Weak<Control>)>,
    per_address: HashMap<IpAddr, Counts>,
}

#[derive(Debug, Clone, Copy)]
struct Bounds {
    connections: usize,
    handshakes: usize,
    connections_per_ip: usize,
    handshakes_per_ip: usize,
}

/// One address's connections, and how many of them are in their handshake.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    connections: usize,
    handshakes: usize,
}

/// What [`Admission::decide`] says about a new client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// There is room.
    Admit,
    /// There is room now: this handshake, the oldest unfinished, was asked to give up.
    AdmitShedding(ConnectionId),
    /// No room.
    Refuse(Refusal),
}

/// Why a client was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Every connection is taken and no handshake can give way.
    Full,
    /// Its address has `max_connections_per_ip` connections.
    ConnectionsPerIp,
    /// Its address has `max_handshakes_per_ip` handshakes in progress, and the others'
    /// would have to give way.
    HandshakesPerIp,
}

impl Refusal {
    /// Whether a per-address limit refused it.
    pub(crate) fn per_ip(self) -> bool {
        self != Refusal::Full
    }

    /// The limit that refused it, for the log.
    pub(crate) fn limit(self) -> &'static str {
        match self {
            Refusal::Full => "max_connections, with no handshake to shed",
            Refusal::ConnectionsPerIp => "max_connections_per_ip",
            Refusal::HandshakesPerIp => "max_handshakes_per_ip, with every handshake slot in use",
        }
    }
}

/// The address a client is counted under: an IPv4 address mapped into IPv6 as itself,
/// an IPv6 address as its /64 network (one host or household gets a whole /64, and could
/// otherwise use a new address for each connection).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
        v4 => v4,
    }
}

impl Admission {
    pub(crate) fn new(limits: &Limits) -> Admission {
        let (slots, departures) = crossbeam_channel::unbounded();
        let bounds = Bounds {
            connections: limits.max_connections,
            handshakes: limits.max_handshakes,
            connections_per_ip: limits.max_connections_per_ip.unwrap_or(usize::MAX),
            handshakes_per_ip: limits.max_handshakes_per_ip.unwrap_or(usize::MAX),
        };
        Admission {
            bounds,
            departures,
            slots,
            connections: 0,
            handshakes: HashMap::new(),
            shedding: 0,
            queue: VecDeque::new(),
            per_address: HashMap::new(),
        }
    }

    /// Whether a new client from `address` (an [`address_key`]) may come in, shedding
    /// the oldest unfinished handshake to make room if need be. If it comes in, call
    /// [`admitted`](Self::admitted) next.
    pub(crate) fn decide(&mut self, address: IpAddr) -> Verdict {
        self.drain();
        let counts = self.per_address.get(&address).copied().unwrap_or_default();
        if counts.connections >= self.bounds.connections_per_ip {
            return Verdict::Refuse(Refusal::ConnectionsPerIp);
        }
        // Those asked to give up are as good as gone.
        let handshakes = self.handshakes.len() - self.shedding;
        let connections = self.connections - self.shedding;
        if handshakes < self.bounds.handshakes && connections < self.bounds.connections {
            return Verdict::Admit;
        }
        // Someone must give way. Only so many may be winding down at once, so that the
        // threads stay bounded under any flood.
        if handshakes == 0 || self.shedding >= self.bounds.handshakes {
            return Verdict::Refuse(Refusal::Full);
        }
        // An address with its share of handshakes in progress may not push others' out.
        if counts.handshakes >= self.bounds.handshakes_per_ip {
            return Verdict::Refuse(Refusal::HandshakesPerIp);
        }
        self.shed_oldest().map_or(Verdict::Refuse(Refusal::Full), Verdict::AdmitShedding)
    }

    /// A client came in: counts it, and returns the [`Slot`] its thread reports through.
    /// Call it before the thread starts, so that a thread that cannot start (its slot
    /// dropped) is counted out again.
    pub(crate) fn admitted(&mut self, id: ConnectionId, address: IpAddr, control: &Arc<Control>) -> Slot {
        self.connections += 1;
        self.handshakes.insert(id, false);
        self.queue.push_back((id, Arc::downgrade(control)));
        let counts = self.per_address.entry(address).or_default();
        counts.connections += 1;
        counts.handshakes += 1;
        Slot::new(id, address, self.slots.clone())
    }

    /// Takes in what the connection threads reported since the last call.
    fn drain(&mut self) {
        while let Ok(departure) = self.departures.try_recv() {
            if departure.thread_over {
                self.connections -= 1;
                self.count_out(departure.address, |counts| &mut counts.connections);
            } else {
                if self.handshakes.remove(&departure.id) == Some(true) {
                    self.shedding -= 1;
                }
                self.count_out(departure.address, |counts| &mut counts.handshakes);
            }
        }
        if self.queue.len() > 2 * self.handshakes.len() + 16 {
            let handshakes = &self.handshakes;
            self.queue.retain(|(id, _)| handshakes.get(id) == Some(&false));
        }
    }

    fn count_out(&mut self, address: IpAddr, field: impl Fn(&mut Counts) -> &mut usize) {
        if let Some(counts) = self.per_address.get_mut(&address) {
            *field(counts) -= 1;
            if counts.connections == 0 {
                self.per_address.remove(&address);
            }
        }
    }

    /// Asks the oldest handshake still in progress to give up; its connection thread
    /// then ends at once.
    fn shed_oldest(&mut self) -> Option<ConnectionId> {
        while let Some((id, control)) = self.queue.pop_front() {
            let Some(shed @ false) = self.handshakes.get_mut(&id) else { continue };
            // Its thread holds the control until it ends, so this fails only if the
            // thread is ending anyway.
            let Some(control) = control.upgrade() else { continue };
            *shed = true;
            self.shedding += 1;
            control.request_close(1013, "too many handshakes in progress");
            return Some(id);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::outbox;
    use crate::wait::Waker;

    struct Client {
        slot: Slot,
        control: Arc<Control>,
    }

    fn limits(handshakes: usize, connections: usize, per_ip: Option<usize>) -> Limits {
        Limits {
            max_handshakes: handshakes,
            max_connections: connections,
            max_connections_per_ip: per_ip,
            max_handshakes_per_ip: per_ip,
            ..Limits::default()
        }
    }

    fn admit(admission: &mut Admission, id: u64, address: IpAddr) -> (Verdict, Option<Client>) {
        let verdict = admission.decide(address);
        if matches!(verdict, Verdict::Refuse(_)) {
            return (verdict, None);
        }
        let (sender, _outbox) = outbox(Waker::new().unwrap());
        let control = Arc::clone(sender.control());
        let slot = admission.admitted(ConnectionId(id), address, &control);
        (verdict, Some(Client { slot, control }))
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn full_handshake_slots_shed_the_oldest_in_accept_order() {
        let mut admission = Admission::new(&limits(2, 100, None));
        let mut clients: Vec<Option<Client>> = (1..=2).map(|id| admit(&mut admission, id, A).1).collect();
        for id in 3..=6 {
            let (verdict, client) = admit(&mut admission, id, A);
            let oldest = id as usize - 3;
            assert_eq!(verdict, Verdict::AdmitShedding(ConnectionId(id - 2)));
            assert!(clients[oldest].as_ref().unwrap().control.is_closing());
            assert!(!clients[oldest + 1].as_ref().unwrap().control.is_closing(), "a newer one was shed");
            // Its thread ends, and gives its place back.
            clients[oldest] = None;
            clients.push(client);
        }
    }

    #[test]
    fn finished_handshakes_are_not_shed_and_free_their_slot() {
        let mut admission = Admission::new(&limits(2, 100, None));
        let (mut first, second) = (admit(&mut admission, 1, A).1.unwrap(), admit(&mut admission, 2, A).1.unwrap());
        first.slot.handshake_over();
        let (verdict, _third) = admit(&mut admission, 3, A);
        assert_eq!(verdict, Verdict::Admit);
        let (verdict, _fourth) = admit(&mut admission, 4, A);
        assert_eq!(verdict, Verdict::AdmitShedding(ConnectionId(2)));
        assert!(!first.control.is_closing() && second.control.is_closing());
    }

    #[test]
    fn a_full_server_sheds_a_handshake_or_refuses() {
        let mut admission = Admission::new(&limits(10, 2, None));
        let mut open = admit(&mut admission, 1, A).1.unwrap();
        open.slot.handshake_over();
        let (_, _handshaking) = admit(&mut admission, 2, A);
        let (verdict, third) = admit(&mut admission, 3, B);
        assert_eq!(verdict, Verdict::AdmitShedding(ConnectionId(2)));
        let mut third = third.unwrap();
        third.slot.handshake_over();
        // Two connections past their handshakes, and none left to shed.
        assert_eq!(admit(&mut admission, 4, B).0, Verdict::Refuse(Refusal::Full));
    }

    #[test]
    fn shedding_stops_while_too_many_are_winding_down() {
        let mut admission = Admission::new(&limits(2, 100, None));
        let mut clients: Vec<_> = (1..=4).filter_map(|id| admit(&mut admission, id, A).1).collect();
        // Two shed, still running: no more shedding until one of them is over.
        assert_eq!(admit(&mut admission, 5, A).0, Verdict::Refuse(Refusal::Full));
        drop(clients.remove(0));
        let (verdict, _sixth) = admit(&mut admission, 6, A);
        assert_eq!(verdict, Verdict::AdmitShedding(ConnectionId(3)));
    }

    #[test]
    fn per_address_connections_refuse_that_address_only() {
        let mut admission = Admission::new(&limits(100, 100, Some(2)));
        let mut clients: Vec<_> = (1..=2).filter_map(|id| admit(&mut admission, id, A).1).collect();
        assert_eq!(admit(&mut admission, 3, A).0, Verdict::Refuse(Refusal::ConnectionsPerIp));
        assert_eq!(admit(&mut admission, 4, B).0, Verdict::Admit);
        drop(clients.pop());
        let (verdict, _fifth) = admit(&mut admission, 5, A);
        assert_eq!(verdict, Verdict::Admit);
        drop(clients);
        admission.drain();
        assert_eq!(admission.per_address.len(), 1, "{:?}", admission.per_address);
    }

    #[test]
    fn an_address_with_its_share_of_handshakes_pushes_no_one_out() {
        let limits = Limits { max_handshakes_per_ip: Some(2), ..limits(4, 100, None) };
        let mut admission = Admission::new(&limits);
        // While the slots are not all in use, one address may use them all...
        let held: Vec<_> = (1..=4).filter_map(|id| admit(&mut admission, id, A).1).collect();
        assert_eq!(held.len(), 4);
        // ...but not push anyone out for more; another address may.
        assert_eq!(admit(&mut admission, 5, A).0, Verdict::Refuse(Refusal::HandshakesPerIp));
        let (verdict, _b) = admit(&mut admission, 6, B);
        assert_eq!(verdict, Verdict::AdmitShedding(ConnectionId(1)));
    }

    #[test]
    fn addresses_are_counted_by_host() {
        let v4 = "192.0.2.7".parse().unwrap();
        assert_eq!(address_key("::ffff:192.0.2.7".parse().unwrap()), v4);
        assert_eq!(address_key(v4), v4);
        let a = address_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        assert_eq!(a, address_key("2001:db8:1:2:bbbb::2".parse().unwrap()));
        assert_ne!(a, address_key("2001:db8:1:3::1".parse().unwrap()));
    }

    #[test]
    fn the_queue_stays_short_when_handshakes_finish_behind_a_stalled_one() {
        let mut admission = Admission::new(&limits(4, 10_000, None));
        let _stalled = admit(&mut admission, 0, A);
        for id in 1..1000 {
            let (_, client) = admit(&mut admission, id, A);
            drop(client);
        }
        assert!(admission.queue.len() < 40, "{} entries", admission.queue.len());
    }
}
