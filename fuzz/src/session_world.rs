//! The session-pair world of the `session_events` and `session_multipath` targets: a client
//! `Session` and a server `Endpoint` after a real in-memory handshake, the datagrams in flight
//! both ways, and the outside checks (see `fuzz_targets/session_events.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::keys;
use arbitrary::Arbitrary;
use jvpn_session::{
    ClientConfig, ClockAnchor, Endpoint, PathId, PeerConfig, Policy, ServerConfig, Session,
    SessionHandle, State,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub const CLIENT_PATHS: u32 = 3;
pub const SERVER_PATH_BASE: u32 = 10;

#[derive(Arbitrary, Debug)]
pub enum Dir {
    ToServer,
    ToClient,
}

#[derive(Arbitrary, Debug)]
pub enum Op {
    /// Deliver the oldest datagram in flight.
    Deliver(Dir),
    /// Deliver the datagram at `at` (wraps) in flight: reordering.
    DeliverOutOfOrder(Dir, u8),
    /// Drop the oldest datagram in flight.
    Drop(Dir),
    /// Deliver the oldest datagram but keep it in flight: duplication.
    Duplicate(Dir),
    /// Deliver everything both ways until quiet.
    Pump,
    /// Arbitrary bytes on path `path` (client paths 1..=3, server paths 10..=13).
    Inject { dir: Dir, path: u8, bytes: Vec<u8> },
    /// Replay a captured datagram (wraps over everything that side ever sent) on a path.
    Replay { dir: Dir, which: u16, path: u8 },
    /// A captured datagram with one byte flipped.
    Mutate {
        dir: Dir,
        which: u16,
        at: u16,
        mask: u8,
        path: u8,
    },
    /// Advance virtual time by `millis` (at most 10 min), firing each timer at its deadline.
    Advance { millis: u32 },
    /// Jump virtual time by `millis` (up to ~49 days) and call `handle_timeout` once: a runtime
    /// that was suspended, or whose timer woke late (with `JVPN_FUZZ_PUNCTUAL=1`: every timer
    /// fires at its deadline, without network in between).
    Jump { millis: u32 },
    /// The client sends an inner packet of `len` bytes (capped at 2 000).
    ClientSend { len: u16 },
    /// The server sends an inner packet of `len` bytes to session `which` (wraps).
    ServerSend { which: u8, len: u16 },
    /// The client probes its path.
    ClientProbe,
    /// The client closes.
    ClientClose,
    /// The server closes session `which`.
    ServerClose { which: u8 },
    /// The server closes every session.
    ServerCloseAll,
    /// The client sends its next handshakes on another path.
    ClientSetPath { path: u8 },
    /// The NAT in front of the client rebinds: the server sees its datagrams on another path.
    Rebind { server_path: u8 },
}

pub fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(|| {
        #[expect(
            clippy::disallowed_methods,
            reason = "the fuzz harness is not a sans-IO core: one real instant anchors virtual time"
        )]
        Instant::now()
    })
}

pub struct World {
    pub now: Instant,
    pub client: Session,
    pub server: Endpoint,
    /// (path the receiver sees, bytes)
    pub to_server: VecDeque<(PathId, Vec<u8>)>,
    pub to_client: VecDeque<(PathId, Vec<u8>)>,
    pub client_sent: Vec<Vec<u8>>,
    pub server_sent: Vec<Vec<u8>>,
    /// What the server sees the client's path `p` as: `p + nat_shift`.
    pub nat_shift: u32,
    /// Outside checks.
    pub client_version: u64,
    pub client_epoch: u64,
    pub client_sid: Option<jvpn_wire::SessionId>,
    pub client_terminated: bool,
    pub server_versions: BTreeMap<SessionHandle, (u64, bool)>,
}

impl World {
    /// The world of `session_events`: both sides offer only `udp`.
    pub fn new() -> World {
        World::offering(crate::TRANSPORTS)
    }

    /// Both sides offer `transports` (e.g. `b"udp,quic,wss"` for multipath).
    pub fn offering(transports: &[u8]) -> World {
        let k = keys();
        let now = base();
        let clock = ClockAnchor {
            instant: now,
            unix_nanos: crate::INIT_UNIX_NANOS,
        };
        let server = Endpoint::new(
            ServerConfig {
                local_key: k.server.clone(),
                peers: vec![PeerConfig {
                    public_key: k.client.public_key(),
                    psk: k.psk.clone(),
                }],
                policy: Policy::default(),
                clock,
                offered_transports: transports.to_vec(),
                cluster: Default::default(),
            },
            Box::new(ChaCha20Rng::seed_from_u64(20)),
        )
        .expect("valid server config");
        let client = Session::connect(
            ClientConfig {
                local_key: k.client.clone(),
                server_key: k.server.public_key(),
                psk: k.psk.clone(),
                policy: Policy::default(),
                clock,
                offered_transports: transports.to_vec(),
            },
            PathId(1),
            now,
            Box::new(ChaCha20Rng::seed_from_u64(10)),
        )
        .expect("valid client config");
        let mut world = World {
            now,
            client,
            server,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            client_sent: Vec::new(),
            server_sent: Vec::new(),
            nat_shift: SERVER_PATH_BASE - 1,
            client_version: 0,
            client_epoch: 0,
            client_sid: None,
            client_terminated: false,
            server_versions: BTreeMap::new(),
        };
        world.pump();
        assert_eq!(
            world.client.state(),
            State::Attached,
            "the in-memory handshake failed"
        );
        world.check();
        world
    }

    /// Moves queued output onto the wires, then drains events.
    pub fn collect(&mut self) {
        let mut buf = Vec::new();
        while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
            let bytes = buf[..t.len].to_vec();
            self.client_sent.push(bytes.clone());
            self.to_server
                .push_back((PathId(t.path.0.wrapping_add(self.nat_shift)), bytes));
        }
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
            let bytes = buf[..t.len].to_vec();
            self.server_sent.push(bytes.clone());
            self.to_client
                .push_back((PathId(t.path.0.wrapping_sub(self.nat_shift)), bytes));
        }
        while self.client.poll_event().is_some() {}
        while self.server.poll_event().is_some() {}
        // Bound the capture: enough for replays, not a memory leak over long inputs.
        for sent in [&mut self.client_sent, &mut self.server_sent] {
            if sent.len() > 512 {
                sent.drain(..256);
            }
        }
    }

    pub fn send_to_server(&mut self, path: PathId, mut bytes: Vec<u8>) {
        let _ = self.server.handle_datagram(path, &mut bytes, self.now);
        self.collect();
    }

    pub fn send_to_client(&mut self, path: PathId, mut bytes: Vec<u8>) {
        let _ = self.client.handle_datagram(path, &mut bytes, self.now);
        self.collect();
    }

    fn deliver(&mut self, dir: &Dir, pick: impl FnOnce(usize) -> Option<usize>, keep: bool) {
        let queue = match dir {
            Dir::ToServer => &mut self.to_server,
            Dir::ToClient => &mut self.to_client,
        };
        let Some(i) = pick(queue.len()) else { return };
        let item = if keep {
            queue.get(i).cloned()
        } else {
            queue.remove(i)
        };
        if let Some((path, bytes)) = item {
            match dir {
                Dir::ToServer => self.send_to_server(path, bytes),
                Dir::ToClient => self.send_to_client(path, bytes),
            }
        }
    }

    pub fn pump(&mut self) {
        self.collect();
        // Bounded: an honest exchange settles in a few rounds.
        for _ in 0..64 {
            if self.to_server.is_empty() && self.to_client.is_empty() {
                return;
            }
            while let Some((path, bytes)) = self.to_server.pop_front() {
                self.send_to_server(path, bytes);
            }
            while let Some((path, bytes)) = self.to_client.pop_front() {
                self.send_to_client(path, bytes);
            }
        }
    }

    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        // Each round fires at least one deadline; keepalives every few seconds bound the count.
        for _ in 0..10_000 {
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
                    self.check();
                }
                _ => break,
            }
        }
        self.now = end;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.pump();
    }

    /// A suspended runtime whose timers still fire at their deadlines (no network in between).
    fn fire_on_time(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..10_000 {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                    self.check();
                }
                _ => break,
            }
        }
        self.now = end;
        self.collect();
    }

    pub fn server_handle(&self, which: u8) -> Option<SessionHandle> {
        let handles: Vec<_> = self.server.sessions().map(|(h, _)| h).collect();
        (!handles.is_empty()).then(|| handles[usize::from(which) % handles.len()])
    }

    pub fn check(&mut self) {
        assert_eq!(self.client.violations(), 0, "client invariant violations");
        assert_eq!(self.server.violations(), 0, "server invariant violations");

        let c = &self.client;
        assert!(
            c.version() >= self.client_version,
            "client version went back"
        );
        assert!(c.epoch() >= self.client_epoch, "client epoch went back");
        if let Some(sid) = self.client_sid {
            assert_eq!(c.session_id(), Some(sid), "client session id changed");
        }
        if self.client_terminated {
            assert_eq!(c.state(), State::Terminated, "client left TERMINATED");
        }
        self.client_version = c.version();
        self.client_epoch = c.epoch();
        self.client_sid = c.session_id();
        self.client_terminated = c.state() == State::Terminated;

        for (handle, s) in self.server.sessions() {
            let terminated = s.state() == State::Terminated;
            if let Some(&(version, was_terminated)) = self.server_versions.get(&handle) {
                assert!(s.version() >= version, "server session version went back");
                assert!(
                    !was_terminated || terminated,
                    "server session left TERMINATED"
                );
            }
            self.server_versions
                .insert(handle, (s.version(), terminated));
        }
    }

    pub fn apply(&mut self, op: Op) {
        match op {
            Op::Deliver(dir) => self.deliver(&dir, |n| (n > 0).then_some(0), false),
            Op::DeliverOutOfOrder(dir, at) => {
                self.deliver(&dir, |n| (n > 0).then(|| usize::from(at) % n), false)
            }
            Op::Drop(dir) => {
                match dir {
                    Dir::ToServer => self.to_server.pop_front(),
                    Dir::ToClient => self.to_client.pop_front(),
                };
            }
            Op::Duplicate(dir) => self.deliver(&dir, |n| (n > 0).then_some(0), true),
            Op::Pump => self.pump(),
            Op::Inject {
                dir,
                path,
                mut bytes,
            } => {
                bytes.truncate(2048);
                match dir {
                    Dir::ToServer => self.send_to_server(server_path(path), bytes),
                    Dir::ToClient => self.send_to_client(client_path(path), bytes),
                }
            }
            Op::Replay { dir, which, path } => match dir {
                Dir::ToServer => {
                    if let Some(bytes) = nth(&self.client_sent, which) {
                        self.send_to_server(server_path(path), bytes);
                    }
                }
                Dir::ToClient => {
                    if let Some(bytes) = nth(&self.server_sent, which) {
                        self.send_to_client(client_path(path), bytes);
                    }
                }
            },
            Op::Mutate {
                dir,
                which,
                at,
                mask,
                path,
            } => {
                let (sent, is_server) = match dir {
                    Dir::ToServer => (&self.client_sent, true),
                    Dir::ToClient => (&self.server_sent, false),
                };
                if let Some(mut bytes) = nth(sent, which) {
                    if !bytes.is_empty() {
                        let i = usize::from(at) % bytes.len();
                        bytes[i] ^= mask;
                    }
                    if is_server {
                        self.send_to_server(server_path(path), bytes);
                    } else {
                        self.send_to_client(client_path(path), bytes);
                    }
                }
            }
            Op::Advance { millis } => {
                self.advance(Duration::from_millis(u64::from(millis % 600_001)));
            }
            Op::Jump { millis } => {
                let d = Duration::from_millis(u64::from(millis));
                if punctual() {
                    self.fire_on_time(d);
                } else {
                    self.now += d;
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                    self.collect();
                }
            }
            Op::ClientSend { len } => {
                let packet = vec![0x45; usize::from(len.min(2000))];
                let _ = self.client.send(&packet, self.now);
                self.collect();
            }
            Op::ServerSend { which, len } => {
                if let Some(h) = self.server_handle(which) {
                    let packet = vec![0x45; usize::from(len.min(2000))];
                    let _ = self.server.send(h, &packet, self.now);
                }
                self.collect();
            }
            Op::ClientProbe => {
                let _ = self.client.probe(self.now);
                self.collect();
            }
            Op::ClientClose => {
                self.client.close(self.now);
                self.collect();
            }
            Op::ServerClose { which } => {
                if let Some(h) = self.server_handle(which) {
                    self.server.close(h, self.now);
                }
                self.collect();
            }
            Op::ServerCloseAll => {
                self.server.close_all(self.now);
                self.collect();
            }
            Op::ClientSetPath { path } => {
                self.client.set_path(client_path(path));
            }
            Op::Rebind { server_path: p } => {
                self.nat_shift = server_path(p).0 - 1;
            }
        }
    }
}

/// `JVPN_FUZZ_PUNCTUAL=1`: `Jump` fires every timer at its own deadline instead of late, for
/// fuzzing around the known late-timer finding (README, "Findings").
fn punctual() -> bool {
    static PUNCTUAL: OnceLock<bool> = OnceLock::new();
    *PUNCTUAL.get_or_init(|| std::env::var_os("JVPN_FUZZ_PUNCTUAL").is_some_and(|v| v == "1"))
}

pub fn client_path(p: u8) -> PathId {
    PathId(1 + u32::from(p) % CLIENT_PATHS)
}

pub fn server_path(p: u8) -> PathId {
    PathId(SERVER_PATH_BASE + u32::from(p) % (CLIENT_PATHS + 1))
}

pub fn nth(sent: &[Vec<u8>], which: u16) -> Option<Vec<u8>> {
    (!sent.is_empty()).then(|| sent[usize::from(which) % sent.len()].clone())
}
