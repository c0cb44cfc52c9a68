//! Bounded half-open reattach state (ATTACKS.md S21) and reattaches under load (S18): the global
//! cap of pending reattaches and its expiry, one pending reattach per session, and an honest
//! reattach that meets a loaded server.

use std::collections::VecDeque;

use super::*;
use crate::{
    ClientConfig, ClockAnchor, ClusterConfig, DropReason, PeerConfig, ServerConfig, Session,
    Transmit,
};
use jvpn_wire::StaticSecret;

/// A client's second path, and how the server names it in [`Harness`].
const NEW_PATH: PathId = PathId(2);
const NEW_SERVER_PATH: PathId = PathId(102);

fn retry() -> Duration {
    Policy::default().reattach_retry
}

/// Every datagram `poll` yields, with its path.
fn take_all(mut poll: impl FnMut(&mut Vec<u8>) -> Option<Transmit>) -> Vec<(PathId, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(t) = poll(&mut buf) {
        out.push((t.path, buf[..t.len].to_vec()));
    }
    out
}

/// Several clients of one server, wired in memory. Client `i`'s path `p` is the server's path
/// `1000 * (i + 1) + p`.
struct Fleet {
    now: Instant,
    server: Endpoint,
    clients: Vec<Session>,
}

impl Fleet {
    fn new(clients: usize, limits: DosLimits) -> Self {
        let now = super::super::base_instant();
        let clock = ClockAnchor {
            instant: now,
            unix_nanos: super::super::ANCHOR_UNIX_NANOS,
        };
        let server_key = secret(2);
        let psk = Psk::from_bytes([9; 32]);
        let keys: Vec<StaticSecret> = (0..clients as u64).map(|i| secret(100 + i)).collect();
        let cfg = ServerConfig {
            local_key: server_key.clone(),
            peers: keys
                .iter()
                .map(|k| PeerConfig {
                    public_key: k.public_key(),
                    psk: psk.clone(),
                })
                .collect(),
            policy: Policy::default(),
            clock,
            offered_transports: TRANSPORTS.to_vec(),
            cluster: ClusterConfig::default(),
        };
        let mut server = Endpoint::new(cfg, super::super::rng(20)).expect("valid server config");
        server.set_dos_limits(limits);
        let clients = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let cfg = ClientConfig {
                    local_key: key,
                    server_key: server_key.public_key(),
                    psk: psk.clone(),
                    policy: Policy::default(),
                    clock,
                    offered_transports: TRANSPORTS.to_vec(),
                };
                Session::connect(cfg, PathId(1), now, super::super::rng(30 + i as u64))
                    .expect("valid client config")
            })
            .collect();
        Fleet {
            now,
            server,
            clients,
        }
    }

    fn server_path(client: usize, path: PathId) -> PathId {
        PathId(1000 * (client as u32 + 1) + path.0)
    }

    /// Moves every datagram both ways until the wires are quiet.
    fn pump(&mut self) {
        let now = self.now;
        let mut wire: VecDeque<(usize, PathId, Vec<u8>)> = VecDeque::new();
        loop {
            for (i, client) in self.clients.iter_mut().enumerate() {
                for (path, d) in take_all(|buf| client.poll_transmit(now, buf)) {
                    wire.push_back((i, path, d));
                }
            }
            let mut down = take_all(|buf| self.server.poll_transmit(now, buf));
            while let Some((i, path, mut d)) = wire.pop_front() {
                self.server
                    .handle_datagram(Self::server_path(i, path), &mut d, now);
                down.extend(take_all(|buf| self.server.poll_transmit(now, buf)));
            }
            while self.server.poll_event().is_some() {}
            if down.is_empty() {
                break;
            }
            for (path, mut d) in down {
                let i = (path.0 / 1000) as usize - 1;
                if let Some(client) = self.clients.get_mut(i) {
                    client.handle_datagram(PathId(path.0 % 1000), &mut d, now);
                    while client.poll_event().is_some() {}
                }
            }
        }
    }

    /// Client `i` starts a planned rebind to its path 2 and returns its REATTACH_INIT (not
    /// delivered; anything else it had to send is discarded).
    fn reattach_init(&mut self, i: usize) -> Vec<u8> {
        let now = self.now;
        let client = &mut self.clients[i];
        client.start_rebind(NEW_PATH, Reason::PlannedSwitch, now);
        Self::only_init(client, now)
    }

    /// Client `i`'s retry after its timer fired, not delivered.
    fn reattach_retry(&mut self, i: usize) -> Vec<u8> {
        let now = self.now;
        let client = &mut self.clients[i];
        client.handle_timeout(now);
        Self::only_init(client, now)
    }

    fn only_init(client: &mut Session, now: Instant) -> Vec<u8> {
        let mut inits: Vec<Vec<u8>> = take_all(|buf| client.poll_transmit(now, buf))
            .into_iter()
            .map(|(_, d)| d)
            .filter(|d| peek_type(d) == Ok(MessageType::ReattachInit))
            .collect();
        assert_eq!(inits.len(), 1, "exactly one REATTACH_INIT");
        inits.remove(0)
    }

    fn deliver(&mut self, i: usize, mut init: Vec<u8>) -> EndpointInbound {
        let path = Self::server_path(i, NEW_PATH);
        self.server.handle_datagram(path, &mut init, self.now)
    }
}

#[test]
fn the_global_cap_of_pending_reattaches_refuses_the_next_one_until_expiry_frees_the_slot() {
    let limits = DosLimits {
        max_pending_reattaches: 1,
        pending_reattach_ttl: Duration::from_secs(1),
        ..DosLimits::default()
    };
    let mut fleet = Fleet::new(2, limits);
    fleet.pump();
    assert!(fleet.clients.iter().all(|c| c.state() == State::Attached));
    fleet.now += Policy::default().min_switch_interval;
    let first = fleet.reattach_init(0);
    let second = fleet.reattach_init(1);

    let accepted = fleet.deliver(0, first);
    // Its REATTACH_RESP is lost: no PATH_CONFIRM ever comes, the slot stays taken.
    take_all(|buf| fleet.server.poll_transmit(fleet.now, buf));
    let refused = fleet.deliver(1, second);
    let counted = fleet.server.counters().dos.pending_cap;
    fleet.now += Duration::from_secs(1);
    let retried = fleet.reattach_retry(1);
    let after_expiry = fleet.deliver(1, retried);

    assert_eq!(accepted, EndpointInbound::Consumed);
    assert_eq!(refused, EndpointInbound::Dropped(DropReason::RateLimited));
    assert_eq!(counted, 1);
    assert_eq!(after_expiry, EndpointInbound::Consumed);
    let counters = fleet.server.counters();
    assert_eq!(counters.dos.pending_expired, 1);
    assert_eq!(counters.dos.pending_cap, 1);
    assert_eq!(counters.reattach.accepted, 2);
    assert_eq!(
        counters.reattach.wire.dh_started, 2,
        "no DH for the refused one"
    );
    assert_eq!(fleet.server.pending_reattach_count(), 1);
    fleet.pump();
    assert_eq!(fleet.clients[1].bound_path(), Some(NEW_PATH));
    assert_eq!(fleet.server.violations(), 0);
}

#[test]
fn a_second_reattach_for_the_same_session_replaces_its_pending_one() {
    let mut h = Harness::attached();
    h.server.set_dos_limits(DosLimits {
        max_pending_reattaches: 1,
        ..DosLimits::default()
    });
    h.advance(Policy::default().min_switch_interval);
    h.client
        .start_rebind(NEW_PATH, Reason::PlannedSwitch, h.now);
    let mut first = take_all(|buf| h.client.poll_transmit(h.now, buf))
        .remove(0)
        .1;
    h.now += retry();
    h.client.handle_timeout(h.now);
    let mut second = take_all(|buf| h.client.poll_transmit(h.now, buf))
        .remove(0)
        .1;

    let a = h.deliver_to_server_on(NEW_SERVER_PATH, &mut first);
    let lost_resp = take_all(|buf| h.server.poll_transmit(h.now, buf));
    let pending_after_first = h.server.pending_reattach_count();
    let b = h.deliver_to_server_on(NEW_SERVER_PATH, &mut second);
    let pending_after_second = h.server.pending_reattach_count();
    h.pump();

    assert_eq!(
        (a, b),
        (EndpointInbound::Consumed, EndpointInbound::Consumed)
    );
    assert_eq!(lost_resp.len(), 1);
    assert_eq!((pending_after_first, pending_after_second), (1, 1));
    let counters = h.server.counters();
    assert_eq!(counters.reattach.accepted, 2);
    assert_eq!(counters.dos.pending_cap, 0, "its own slot, not a new one");
    assert_eq!(counters.rebinds, 1);
    assert_eq!(h.server_session().1.bound_path(), Some(NEW_SERVER_PATH));
    assert_eq!(h.server_session().1.epoch(), 2);
    h.assert_no_violations();
}

#[test]
fn an_honest_reattach_under_load_passes_after_one_cookie_reply() {
    let mut h = Harness::attached();
    h.server.set_dos_limits(limits(4));
    h.advance(Policy::default().min_switch_interval);
    flood(&mut h.server, 1, 4, h.now);
    drain(&mut h.server, h.now);

    // The first attempt meets a loaded server: a cookie, no DH, nothing pending.
    h.client
        .start_rebind(NEW_PATH, Reason::PlannedSwitch, h.now);
    h.pump();
    let first = (
        h.server.counters().dos.cookie_replies,
        h.server.counters().reattach.wire.dh_started,
        h.client.state(),
    );
    // Still loaded (the flood's DHs are within the last second) when the retry, carrying MAC2,
    // arrives.
    h.advance(retry());

    assert_eq!(first, (1, 0, State::Recovering));
    let counters = h.server.counters();
    assert_eq!(
        counters.dos.cookie_replies, 1,
        "one cookie for the honest client"
    );
    assert_eq!(counters.dos.rate_limited, 0);
    assert_eq!(counters.reattach.accepted, 1);
    assert_eq!(h.client.state(), State::Attached);
    assert_eq!(h.client.bound_path(), Some(NEW_PATH));
    assert_eq!(h.server_session().1.epoch(), 2);
    h.assert_no_violations();
}
