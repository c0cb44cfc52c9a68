//! A small in-memory network for multipath tests: one client `Session`, one server
//! `Endpoint`, several paths with a one-way delay and a drop switch each, a virtual clock and
//! optional continuous traffic both ways.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::super::{ANCHOR_UNIX_NANOS, Keys, base_instant, rng};
use crate::{
    ClockAnchor, Endpoint, EndpointInbound, Event, Inbound, PathId, PathKind, Policy, Reason,
    Session, SessionHandle, State, SwitchReason,
};

/// One path between the client and the server.
#[derive(Clone, Debug)]
pub(super) struct Link {
    /// The client's name for it.
    pub(super) client: PathId,
    /// The server's name for it.
    pub(super) server: PathId,
    /// One-way delay.
    pub(super) delay: Duration,
    /// Everything on it is lost (checked when a datagram is delivered).
    pub(super) dropped: bool,
}

#[derive(Debug)]
struct Flight {
    to_server: bool,
    link: usize,
    data: Vec<u8>,
}

/// The network, its two ends, and what they observed.
pub(super) struct Net {
    server_cfg: crate::ServerConfig,
    pub(super) now: Instant,
    pub(super) client: Session,
    pub(super) server: Endpoint,
    pub(super) links: Vec<Link>,
    flights: BTreeMap<(Instant, u64), Flight>,
    flight_seq: u64,
    /// Send one inner packet each way every this long (when set and attached).
    pub(super) traffic: Option<Duration>,
    next_traffic: Option<Instant>,
    sent_packets: usize,
    /// When the client received an inner packet.
    pub(super) client_rx: Vec<Instant>,
    /// When the server received an inner packet.
    pub(super) server_rx: Vec<Instant>,
    /// When the client received any datagram, per link.
    pub(super) client_rx_on: Vec<Vec<Instant>>,
    pub(super) client_events: Vec<(Instant, Event)>,
    pub(super) server_events: Vec<(Instant, SessionHandle, Event)>,
    /// Datagrams the server dropped, with the path they came from.
    pub(super) server_drops: Vec<(PathId, EndpointInbound)>,
    pub(super) client_drops: Vec<(PathId, Inbound)>,
    /// Datagrams sent by each side per link (client, server).
    pub(super) sent_on: Vec<(usize, usize)>,
    /// Bytes sent by each side per link (client, server).
    pub(super) bytes_on: Vec<(usize, usize)>,
    /// The highest number of bound server sessions seen at once.
    pub(super) max_bindings: usize,
    /// Server sends to a path no link carries (a rebound link's old address): lost.
    pub(super) server_sent_nowhere: Vec<PathId>,
    /// Every datagram the client sent, with its link, when set (for replay tests).
    pub(super) capture: Option<Vec<(usize, Vec<u8>)>>,
}

impl Net {
    /// A client connected on the first of `delays.len()` links (one-way delays), with every
    /// link added as a candidate (rank = index, kinds UDP, QUIC, WSS, …), under `policy`.
    /// Replaces the server by a fresh endpoint with the same keys: a server restart that
    /// forgot every session.
    pub(super) fn restart_server(&mut self) {
        self.server = Endpoint::new(self.server_cfg.clone(), rng(21)).expect("valid server config");
    }

    pub(super) fn new(policy: Policy, delays: &[Duration]) -> Self {
        let keys = Keys::new();
        let t0 = base_instant();
        let clock = ClockAnchor {
            instant: t0,
            unix_nanos: ANCHOR_UNIX_NANOS,
        };
        let mut server_cfg = keys.server_config(clock, keys.client.public_key());
        server_cfg.policy = policy.clone();
        server_cfg.offered_transports = b"udp,quic,wss".to_vec();
        let mut client_cfg = keys.client_config(clock, keys.server.public_key());
        client_cfg.policy = policy;
        client_cfg.offered_transports = b"udp,quic,wss".to_vec();
        let server = Endpoint::new(server_cfg.clone(), rng(20)).expect("valid server config");
        let links: Vec<Link> = (0..delays.len())
            .map(|i| {
                let n = u32::try_from(i).expect("few links") + 1;
                Link {
                    client: PathId(n),
                    server: PathId(100 + n),
                    delay: delays[i],
                    dropped: false,
                }
            })
            .collect();
        let client =
            Session::connect(client_cfg, links[0].client, t0, rng(10)).expect("valid config");
        let mut net = Net {
            server_cfg,
            now: t0,
            client,
            server,
            sent_on: vec![(0, 0); links.len()],
            client_rx_on: vec![Vec::new(); links.len()],
            bytes_on: vec![(0, 0); links.len()],
            links,
            flights: BTreeMap::new(),
            flight_seq: 0,
            traffic: None,
            next_traffic: None,
            sent_packets: 0,
            client_rx: Vec::new(),
            server_rx: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            server_drops: Vec::new(),
            client_drops: Vec::new(),
            max_bindings: 0,
            server_sent_nowhere: Vec::new(),
            capture: None,
        };
        let kinds = [PathKind::Udp, PathKind::Quic, PathKind::Wss];
        for (i, link) in net.links.clone().iter().enumerate() {
            let kind = kinds
                .get(i)
                .cloned()
                .unwrap_or(PathKind::Custom("x".into()));
            let rank = u8::try_from(i).expect("few links");
            net.client.add_path(link.client, kind, rank, t0);
        }
        net
    }

    /// Two links of 10 ms one way, default policy, attached and measured for `settle`.
    pub(super) fn attached(links: usize, settle: Duration) -> Self {
        let mut net = Net::new(Policy::default(), &vec![Duration::from_millis(10); links]);
        net.run_for(settle);
        assert_eq!(net.client.state(), State::Attached);
        net
    }

    fn link_of_client(&self, path: PathId) -> usize {
        self.links
            .iter()
            .position(|l| l.client == path)
            .expect("client sends on a known path")
    }

    fn link_of_server(&self, path: PathId) -> Option<usize> {
        self.links.iter().position(|l| l.server == path)
    }

    fn schedule(&mut self, to_server: bool, link: usize, data: Vec<u8>) {
        let at = self.now + self.links[link].delay;
        self.flight_seq += 1;
        self.flights.insert(
            (at, self.flight_seq),
            Flight {
                to_server,
                link,
                data,
            },
        );
    }

    /// Drains both sides' output onto the links, and their events.
    fn flush(&mut self) {
        let mut buf = Vec::new();
        while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
            let link = self.link_of_client(t.path);
            self.sent_on[link].0 += 1;
            self.bytes_on[link].0 += t.len;
            if let Some(capture) = self.capture.as_mut() {
                capture.push((link, buf[..t.len].to_vec()));
            }
            self.schedule(true, link, buf[..t.len].to_vec());
        }
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
            let Some(link) = self.link_of_server(t.path) else {
                self.server_sent_nowhere.push(t.path);
                continue;
            };
            self.sent_on[link].1 += 1;
            self.bytes_on[link].1 += t.len;
            self.schedule(false, link, buf[..t.len].to_vec());
        }
        while let Some(event) = self.client.poll_event() {
            self.client_events.push((self.now, event));
        }
        while let Some((handle, event)) = self.server.poll_event() {
            self.server_events.push((self.now, handle, event));
        }
        let bound = self
            .server
            .sessions()
            .filter(|(_, s)| s.state().is_bound())
            .count();
        self.max_bindings = self.max_bindings.max(bound);
    }

    fn deliver(&mut self, flight: Flight) {
        let link = self.links[flight.link].clone();
        if link.dropped {
            return;
        }
        let mut data = flight.data;
        if flight.to_server {
            let result = self
                .server
                .handle_datagram(link.server, &mut data, self.now);
            match result {
                EndpointInbound::Inner { .. } => self.server_rx.push(self.now),
                EndpointInbound::Dropped(_) => self.server_drops.push((link.server, result)),
                _ => {}
            }
        } else {
            self.client_rx_on[flight.link].push(self.now);
            let result = self
                .client
                .handle_datagram(link.client, &mut data, self.now);
            match result {
                Inbound::Inner(_) => self.client_rx.push(self.now),
                Inbound::Dropped(_) => self.client_drops.push((link.client, result)),
                _ => {}
            }
        }
    }

    fn send_traffic(&mut self) {
        self.sent_packets += 1;
        let payload = [self.sent_packets as u8; 200];
        // A full queue (while recovering) drops the packet, as IP would.
        let _ = self.client.send(&payload, self.now);
        let handles: Vec<SessionHandle> = self.server.sessions().map(|(h, _)| h).collect();
        for handle in handles {
            let _ = self.server.send(handle, &payload, self.now);
        }
    }

    /// Runs the network until `end`, every event at its instant.
    pub(super) fn run_until(&mut self, end: Instant) {
        loop {
            self.flush();
            if self.traffic.is_some() && self.next_traffic.is_none() {
                self.next_traffic = Some(self.now);
            }
            if self.traffic.is_none() {
                self.next_traffic = None;
            }
            let next = [
                self.flights.keys().next().map(|(at, _)| *at),
                self.client.poll_timeout(),
                self.server.poll_timeout(),
                self.next_traffic,
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(at) = next.filter(|&at| at <= end) else {
                break;
            };
            self.now = self.now.max(at);
            while let Some(entry) = self.flights.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let flight = entry.remove();
                self.deliver(flight);
            }
            if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
                self.client.handle_timeout(self.now);
            }
            if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
                self.server.handle_timeout(self.now);
            }
            if let (Some(due), Some(every)) = (self.next_traffic, self.traffic)
                && due <= self.now
            {
                self.send_traffic();
                self.next_traffic = Some(due + every);
            }
        }
        self.now = end;
        self.flush();
    }

    pub(super) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end);
    }

    /// Sets the drop switch of link `i` (both directions).
    pub(super) fn set_dropped(&mut self, i: usize, dropped: bool) {
        self.links[i].dropped = dropped;
    }

    /// NAT rebinding of link `i`: from now on the server sees the client's datagrams on it
    /// under a new server-side path (returned), and what the server sends to the old one is
    /// lost. The client's name for the link does not change.
    pub(super) fn rebind(&mut self, i: usize) -> PathId {
        let old = self.links[i].server;
        let new = PathId(old.0 + 100);
        assert!(self.link_of_server(new).is_none(), "one rebinding per link");
        self.links[i].server = new;
        new
    }

    pub(super) fn path(&self, i: usize) -> PathId {
        self.links[i].client
    }

    pub(super) fn server_path(&self, i: usize) -> PathId {
        self.links[i].server
    }

    /// The only server session.
    pub(super) fn server_session(&self) -> &Session {
        let mut sessions = self.server.sessions();
        let (_, session) = sessions.next().expect("the server has a session");
        assert!(sessions.next().is_none(), "exactly one server session");
        session
    }

    /// The client's transitions with their instants.
    pub(super) fn client_transitions(&self) -> Vec<(Instant, State, State, Reason)> {
        self.client_events
            .iter()
            .filter_map(|(at, e)| match e {
                Event::Transition(r) => Some((r.at.unwrap_or(*at), r.from, r.to, r.reason)),
                _ => None,
            })
            .collect()
    }

    /// The client's committed switches with their instants.
    pub(super) fn switches(&self) -> Vec<(Instant, Option<PathId>, PathId, SwitchReason)> {
        self.client_events
            .iter()
            .filter_map(|(at, e)| match e {
                Event::PathSwitched { from, to, reason } => Some((*at, *from, *to, *reason)),
                _ => None,
            })
            .collect()
    }

    /// The longest gap between two inner packets received (by either side) after `from`,
    /// counted from the last one received at or before `from`.
    pub(super) fn longest_gap_after(&self, from: Instant) -> Duration {
        let gap = |rx: &[Instant]| {
            let start = rx
                .iter()
                .rev()
                .find(|&&t| t <= from)
                .copied()
                .unwrap_or(from);
            let mut prev = start;
            let mut longest = Duration::ZERO;
            for &t in rx.iter().filter(|&&t| t > from) {
                longest = longest.max(t - prev);
                prev = t;
            }
            longest
        };
        gap(&self.client_rx).max(gap(&self.server_rx))
    }

    pub(super) fn assert_no_violations(&self) {
        assert_eq!(self.client.violations(), 0, "client invariant violations");
        assert_eq!(self.server.violations(), 0, "server invariant violations");
    }
}
