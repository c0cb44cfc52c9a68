//! Sans-IO tests: a client `Session` and a server `Endpoint` wired in memory, virtual time.

mod cluster;
mod confused_deputy;
mod datapath;
mod dos;
mod garbage;
mod handshake;
mod multipath;
mod reattach;
mod recovery;
mod rekey;
mod reset;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use jvpn_wire::{Psk, PublicKey, StaticSecret};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::{
    AuditRecord, ClientConfig, ClockAnchor, ClusterConfig, Endpoint, EndpointInbound, Event,
    Inbound, PathId, PeerConfig, Policy, Reason, ServerConfig, Session, SessionHandle, State,
};

/// Wall time at the anchor: 2023-11-14T22:13:20Z.
const ANCHOR_UNIX_NANOS: u64 = 1_700_000_000_000_000_000;
/// The client's name for its one path.
const CLIENT_PATH: PathId = PathId(1);
/// The server's name for the client's path.
const SERVER_PATH: PathId = PathId(10);
const TRANSPORTS: &[u8] = b"udp";

fn base_instant() -> Instant {
    #[expect(
        clippy::disallowed_methods,
        reason = "tests need one real instant as a base"
    )]
    Instant::now()
}

fn rng(seed: u64) -> Box<ChaCha20Rng> {
    Box::new(ChaCha20Rng::seed_from_u64(seed))
}

fn secret(seed: u64) -> StaticSecret {
    StaticSecret::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

/// Keys and configs for one client and one server.
struct Keys {
    client: StaticSecret,
    server: StaticSecret,
    psk: Psk,
}

impl Keys {
    fn new() -> Self {
        Keys {
            client: secret(1),
            server: secret(2),
            psk: Psk::from_bytes([9; 32]),
        }
    }

    fn client_config(&self, clock: ClockAnchor, server_key: PublicKey) -> ClientConfig {
        ClientConfig {
            local_key: self.client.clone(),
            server_key,
            psk: self.psk.clone(),
            policy: Policy::default(),
            clock,
            offered_transports: TRANSPORTS.to_vec(),
        }
    }

    fn server_config(&self, clock: ClockAnchor, peer: PublicKey) -> ServerConfig {
        ServerConfig {
            local_key: self.server.clone(),
            peers: vec![PeerConfig {
                public_key: peer,
                psk: self.psk.clone(),
            }],
            policy: Policy::default(),
            clock,
            offered_transports: TRANSPORTS.to_vec(),
            cluster: ClusterConfig::default(),
        }
    }
}

/// A client and a server, two in-memory wires and a virtual clock.
struct Harness {
    t0: Instant,
    now: Instant,
    clock: ClockAnchor,
    client: Session,
    server: Endpoint,
    /// In flight to the server, with the client path it left on.
    to_server: VecDeque<(PathId, Vec<u8>)>,
    /// In flight to the client, with the server path it left on.
    to_client: VecDeque<(PathId, Vec<u8>)>,
    /// Drop everything in flight, both ways.
    blackhole: bool,
    /// Client paths whose datagrams (both ways) are lost.
    dead_paths: std::collections::BTreeSet<PathId>,
    /// Deliver client datagrams to the server as if from this path.
    server_sees_path: PathId,
    client_events: Vec<Event>,
    server_events: Vec<(SessionHandle, Event)>,
    client_received: Vec<Vec<u8>>,
    server_received: Vec<(SessionHandle, Vec<u8>)>,
    server_drops: Vec<EndpointInbound>,
    client_drops: Vec<Inbound>,
    /// Every datagram the client sent, in order (for replay tests).
    client_sent: Vec<Vec<u8>>,
    /// Every datagram the server sent, in order.
    server_sent: Vec<Vec<u8>>,
}

impl Harness {
    /// A matching client and server (not yet pumped: the client's init is queued).
    fn new() -> Self {
        let keys = Keys::new();
        let server_key = keys.server.public_key();
        let client_key = keys.client.public_key();
        Self::with_configs(
            |clock| keys.client_config(clock, server_key),
            |clock| keys.server_config(clock, client_key),
        )
    }

    fn with_configs(
        client: impl FnOnce(ClockAnchor) -> ClientConfig,
        server: impl FnOnce(ClockAnchor) -> ServerConfig,
    ) -> Self {
        let t0 = base_instant();
        let clock = ClockAnchor {
            instant: t0,
            unix_nanos: ANCHOR_UNIX_NANOS,
        };
        let server = Endpoint::new(server(clock), rng(20)).expect("valid server config");
        let client =
            Session::connect(client(clock), CLIENT_PATH, t0, rng(10)).expect("valid client config");
        Harness {
            t0,
            now: t0,
            clock,
            client,
            server,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            blackhole: false,
            dead_paths: std::collections::BTreeSet::new(),
            server_sees_path: SERVER_PATH,
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_received: Vec::new(),
            server_received: Vec::new(),
            server_drops: Vec::new(),
            client_drops: Vec::new(),
            client_sent: Vec::new(),
            server_sent: Vec::new(),
        }
    }

    /// A harness whose handshake has completed.
    fn attached() -> Self {
        let mut h = Self::new();
        h.pump();
        assert_eq!(h.client.state(), State::Attached);
        h
    }

    /// Moves every queued datagram both ways until the wires are quiet; drains events.
    fn pump(&mut self) {
        let mut buf = Vec::new();
        loop {
            while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
                let datagram = buf[..t.len].to_vec();
                self.client_sent.push(datagram.clone());
                if !self.blackhole && !self.dead_paths.contains(&t.path) {
                    self.to_server.push_back((t.path, datagram));
                }
            }
            while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
                let datagram = buf[..t.len].to_vec();
                self.server_sent.push(datagram.clone());
                let client_path = self.client_path_of(t.path);
                if !self.blackhole && !self.dead_paths.contains(&client_path) {
                    self.to_client.push_back((t.path, datagram));
                }
            }
            if self.to_server.is_empty() && self.to_client.is_empty() {
                break;
            }
            while let Some((path, mut datagram)) = self.to_server.pop_front() {
                let server_path = self.server_path_of(path);
                self.deliver_to_server_on(server_path, &mut datagram);
            }
            while let Some((path, mut datagram)) = self.to_client.pop_front() {
                let client_path = self.client_path_of(path);
                self.deliver_to_client_on(client_path, &mut datagram);
            }
        }
        self.drain_events();
    }

    /// The server's name for a client path: `CLIENT_PATH` is `server_sees_path`, any other
    /// client path `p` is `p + 100`.
    fn server_path_of(&self, client_path: PathId) -> PathId {
        if client_path == CLIENT_PATH {
            self.server_sees_path
        } else {
            PathId(client_path.0 + 100)
        }
    }

    /// The client's name for a server path (the inverse of `server_path_of`).
    fn client_path_of(&self, server_path: PathId) -> PathId {
        if server_path.0 > 100 {
            PathId(server_path.0 - 100)
        } else {
            CLIENT_PATH
        }
    }

    fn deliver_to_server(&mut self, datagram: &mut [u8]) -> EndpointInbound {
        self.deliver_to_server_on(self.server_sees_path, datagram)
    }

    fn deliver_to_server_on(&mut self, path: PathId, datagram: &mut [u8]) -> EndpointInbound {
        let result = self.server.handle_datagram(path, datagram, self.now);
        match &result {
            EndpointInbound::Inner { session, range } => self
                .server_received
                .push((*session, datagram[range.clone()].to_vec())),
            EndpointInbound::Dropped(_) => self.server_drops.push(result.clone()),
            _ => {}
        }
        result
    }

    fn deliver_to_client(&mut self, datagram: &mut [u8]) -> Inbound {
        self.deliver_to_client_on(CLIENT_PATH, datagram)
    }

    fn deliver_to_client_on(&mut self, path: PathId, datagram: &mut [u8]) -> Inbound {
        let result = self.client.handle_datagram(path, datagram, self.now);
        match &result {
            Inbound::Inner(range) => self.client_received.push(datagram[range.clone()].to_vec()),
            Inbound::Dropped(_) => self.client_drops.push(result.clone()),
            _ => {}
        }
        result
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.client.poll_event() {
            self.client_events.push(event);
        }
        while let Some(event) = self.server.poll_event() {
            self.server_events.push(event);
        }
    }

    /// Advances virtual time by `d`, firing every timer on its deadline and pumping after each.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = end;
        self.pump();
    }

    /// The only server session.
    fn server_session(&self) -> (SessionHandle, &Session) {
        let mut sessions = self.server.sessions();
        let first = sessions.next().expect("the server has a session");
        assert!(
            sessions.next().is_none(),
            "the server has exactly one session"
        );
        first
    }

    fn client_transitions(&self) -> Vec<(State, State, Reason)> {
        transitions(self.client_events.iter())
    }

    fn server_transitions(&self) -> Vec<(State, State, Reason)> {
        transitions(self.server_events.iter().map(|(_, e)| e))
    }

    fn client_records(&self) -> Vec<&AuditRecord> {
        records(self.client_events.iter())
    }

    fn assert_no_violations(&self) {
        assert_eq!(self.client.violations(), 0, "client invariant violations");
        assert_eq!(self.server.violations(), 0, "server invariant violations");
    }
}

fn records<'a>(events: impl Iterator<Item = &'a Event>) -> Vec<&'a AuditRecord> {
    events
        .filter_map(|e| match e {
            Event::Transition(record) => Some(record),
            _ => None,
        })
        .collect()
}

fn transitions<'a>(events: impl Iterator<Item = &'a Event>) -> Vec<(State, State, Reason)> {
    records(events)
        .into_iter()
        .map(|r| (r.from, r.to, r.reason))
        .collect()
}

/// A distinct, recognizable inner packet.
fn packet(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i.wrapping_mul(31) ^ j) as u8).collect()
}

#[test]
fn sessions_and_endpoints_can_move_between_threads() {
    fn assert_send<T: Send>() {}

    assert_send::<Session>();
    assert_send::<Endpoint>();
}
