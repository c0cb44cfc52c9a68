//! The foundation's simulation test: a client `Session` and a server `Endpoint` over a seeded
//! virtual network with loss, reordering and duplication in both directions.
//!
//! - Replay one seed exactly: `JVPN_SIM_SEED=<n> cargo test -p jvpn-sim --test foundation`
//!   (every run prints `jvpn-sim: seed=<n>`; the test output shows it when a test fails).
//! - Hunt over many seeds: `JVPN_SIM_SEEDS=200 cargo test -p jvpn-sim --test foundation --release`
//!   runs seeds `s, s+1, …` from `JVPN_SIM_SEED` (or a random `s`), announcing each.
//!
//! After every step of the network: no invariant violation in any session, every transition a
//! legal move with version = previous + 1, and every inner datagram delivered so far intact and
//! delivered only once.

use std::ops::Range;
use std::time::{Duration, Instant};

use jvpn_session::{
    AuditRecord, ClientConfig, ClockAnchor, DropReason, Endpoint, PeerConfig, Policy, Reason,
    ServerConfig, Session, State,
};
use jvpn_sim::adapters::{ClientNode, Feed, ServerNode, path_of};
use jvpn_sim::impair::{Blackhole, Delay, Duplicate, Impairment, Loss, Reorder};
use jvpn_sim::workload::{DeliveryLog, Workload};
use jvpn_sim::{
    CopyKind, DropCause, Network, NodeId, SEED_ENV, Seed, Step, TraceHash, base_instant,
    seeds_from_env,
};
use jvpn_wire::{Psk, StaticSecret};

/// A fixed wall-clock anchor, so that handshake timestamps and audit records replay exactly.
const ANCHOR_UNIX_NANOS: u64 = 1_700_000_000_000_000_000;
const TRANSPORTS: &[u8] = b"udp";
const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);

/// One scenario: the network's impairments (the same in both directions) and the traffic.
#[derive(Clone, Debug)]
struct Setup {
    loss: f64,
    duplicate: f64,
    reorder: f64,
    blackhole: Option<Range<Duration>>,
    /// Inner datagrams sent each way.
    count: u32,
    /// Time between two of them.
    interval: Duration,
    run_for: Duration,
}

impl Setup {
    fn lossy() -> Self {
        Self {
            loss: 0.05,
            duplicate: 0.05,
            reorder: 0.10,
            blackhole: None,
            count: 10_000,
            interval: MS,
            run_for: Duration::from_secs(60),
        }
    }

    fn blackhole(window: Range<Duration>, run_for: Duration) -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            blackhole: Some(window),
            count: 500,
            interval: 100 * MS,
            run_for,
        }
    }

    fn impairments(&self) -> Vec<Box<dyn Impairment>> {
        let mut stages: Vec<Box<dyn Impairment>> = Vec::new();
        if let Some(window) = &self.blackhole {
            stages.push(Box::new(Blackhole::during(window.clone())));
        }
        stages.push(Box::new(Loss { p: self.loss }));
        stages.push(Box::new(Duplicate { p: self.duplicate }));
        stages.push(Box::new(Delay {
            base: 20 * MS,
            jitter: 5 * MS,
        }));
        stages.push(Box::new(Reorder {
            p: self.reorder,
            max_extra: 30 * MS,
        }));
        stages
    }
}

/// A built scenario and the delivery logs the checks fill as it runs.
struct Sim {
    net: Network,
    client: NodeId,
    server: NodeId,
    policy: Policy,
    to_server: DeliveryLog,
    to_client: DeliveryLog,
}

impl Sim {
    fn new(seed: Seed, setup: &Setup) -> Self {
        let base = base_instant();
        let policy = Policy::default();
        let clock = ClockAnchor {
            instant: base,
            unix_nanos: ANCHOR_UNIX_NANOS,
        };
        let client_key = StaticSecret::generate(&mut seed.rng("client-static", 0));
        let server_key = StaticSecret::generate(&mut seed.rng("server-static", 0));
        let psk = Psk::generate(&mut seed.rng("psk", 0));
        let endpoint = Endpoint::new(
            ServerConfig {
                local_key: server_key.clone(),
                peers: vec![PeerConfig {
                    public_key: client_key.public_key(),
                    psk: psk.clone(),
                }],
                policy: policy.clone(),
                clock,
                offered_transports: TRANSPORTS.to_vec(),
                cluster: Default::default(),
            },
            Box::new(seed.rng("server", 0)),
        )
        .expect("valid server config");

        let mut net = Network::new(seed, base);
        let link = net.next_link_id();
        let session = Session::connect(
            ClientConfig {
                local_key: client_key,
                server_key: server_key.public_key(),
                psk,
                policy: policy.clone(),
                clock,
                offered_transports: TRANSPORTS.to_vec(),
            },
            path_of(link),
            base,
            Box::new(seed.rng("client", 0)),
        )
        .expect("valid client config");
        let up = Workload::new(seed, "client->server", setup.count, 8, 1200);
        let down = Workload::new(seed, "server->client", setup.count, 8, 1200);
        let client = net.add_node(Box::new(ClientNode::new(session).with_feed(Feed::new(
            up.clone(),
            base,
            setup.interval,
            1,
        ))));
        let server = net.add_node(Box::new(ServerNode::new(endpoint).with_feed(Feed::new(
            down.clone(),
            base,
            setup.interval,
            1,
        ))));
        net.add_link(client, server, setup.impairments(), setup.impairments());
        Sim {
            net,
            client,
            server,
            policy,
            to_server: DeliveryLog::new(up),
            to_client: DeliveryLog::new(down),
        }
    }

    fn client(&self) -> &ClientNode {
        self.net.node(self.client).expect("the client node")
    }

    fn server(&self) -> &ServerNode {
        self.net.node(self.server).expect("the server node")
    }

    /// Runs until both feeds have sent everything, then `drain` more for what is in flight;
    /// fails if that takes longer than `cap`. Keeps the lossy run short: a long idle tail only
    /// adds chances of a (legal) spurious TransportDead.
    fn run_feeds_checked(&mut self, cap: Duration, drain: Duration) {
        let feeding = |sim: &Sim| {
            sim.client().feed().and_then(Feed::deadline).is_some()
                || sim.server().feed().and_then(Feed::deadline).is_some()
        };
        while feeding(self) {
            assert!(self.net.elapsed() < cap, "feeds not done after {cap:?}");
            self.run_checked(self.net.elapsed() + SECOND);
        }
        self.run_checked(self.net.elapsed() + drain);
    }

    /// Runs to `base + span`, checking everything after every step.
    fn run_checked(&mut self, span: Duration) {
        let deadline = self.net.base() + span;
        loop {
            let step = self.net.step_until(deadline).expect("no livelock");
            self.check_step();
            if matches!(step, Step::Idle | Step::Deadline) {
                break;
            }
        }
        self.net.run_until(deadline).expect("no livelock");
    }

    fn check_step(&mut self) {
        let elapsed = self.net.elapsed();
        let client = self
            .net
            .node_mut::<ClientNode>(self.client)
            .expect("the client node");
        for inner in client.take_inbox() {
            self.to_client.record(&inner);
        }
        assert_eq!(
            client.session().violations(),
            0,
            "client violation at {elapsed:?}"
        );
        assert_eq!(
            client.history().faults(),
            [],
            "client history at {elapsed:?}"
        );
        let server = self
            .net
            .node_mut::<ServerNode>(self.server)
            .expect("the server node");
        for (_, inner) in server.take_inbox() {
            self.to_server.record(&inner);
        }
        assert_eq!(
            server.endpoint().violations(),
            0,
            "server violation at {elapsed:?}"
        );
        for (handle, history) in server.histories() {
            assert_eq!(history.faults(), [], "{handle} history at {elapsed:?}");
        }
        assert_eq!(self.to_server.faults(), [], "client->server at {elapsed:?}");
        assert_eq!(self.to_client.faults(), [], "server->client at {elapsed:?}");
    }

    fn server_history(&self) -> Vec<AuditRecord> {
        let histories = self.server().histories();
        assert_eq!(
            histories.len(),
            1,
            "one session on the server: {histories:?}"
        );
        histories
            .values()
            .next()
            .map(|h| h.records().to_vec())
            .unwrap_or_default()
    }
}

/// The fewest deliveries out of `n` tolerated when each is lost independently with
/// probability `p`: the mean minus six standard deviations of the binomial (a false alarm
/// about once in 10^9 runs).
fn delivery_floor(n: u32, p: f64) -> u32 {
    let n = f64::from(n);
    let floor = n * (1.0 - p) - 6.0 * (n * p * (1.0 - p)).sqrt();
    floor.max(0.0) as u32
}

fn at(record: &AuditRecord) -> Instant {
    record
        .at
        .expect("records made in this process carry their instant")
}

fn find(records: &[AuditRecord], to: State, reason: Reason) -> &AuditRecord {
    records
        .iter()
        .find(|r| r.to == to && r.reason == reason)
        .unwrap_or_else(|| panic!("no transition to {to} ({reason}) in {records:#?}"))
}

/// One lossy run: returns its trace hash after checking every delivery property.
fn lossy_run(seed: Seed) -> TraceHash {
    let setup = Setup::lossy();
    let mut sim = Sim::new(seed, &setup);

    sim.run_feeds_checked(setup.run_for, 2 * SECOND);

    let client = sim.client();
    let server = sim.server();
    assert_eq!(
        client.feed().map(Feed::sent),
        Some(setup.count),
        "client sent everything"
    );
    assert_eq!(
        server.feed().map(Feed::sent),
        Some(setup.count),
        "server sent everything"
    );
    let live = client
        .session()
        .session_id()
        .expect("the client has a session id");
    let handle = server
        .endpoint()
        .find(live)
        .expect("the server has the client's session");
    let floor = delivery_floor(setup.count, setup.loss);
    assert!(
        sim.to_server.delivered() >= floor,
        "client->server delivered {} < {floor}",
        sim.to_server.delivered()
    );
    // The endpoint holds a session's data until its client confirms the keys, so a session
    // superseded after a lost handshake response takes at most its queue with it (IP is best
    // effort; the inner TCP retransmits). Everything else went to the session that lived.
    let fed_live = server.fed_to(handle);
    let queue = jvpn_session::Policy::default().send_queue_packets as u32;
    let superseded = server.histories().len().saturating_sub(1) as u32;
    assert!(
        fed_live + superseded * queue >= setup.count,
        "{} datagrams went to {superseded} superseded session(s); at most {queue} each may",
        setup.count - fed_live
    );
    let floor_down = delivery_floor(fed_live, setup.loss);
    assert!(
        sim.to_client.delivered() >= floor_down,
        "server->client delivered {} < {floor_down} (of {fed_live} sent to the live session, \
         {} to superseded ones)",
        sim.to_client.delivered(),
        setup.count - fed_live
    );
    // Duplicates reached both cores and were refused by their replay windows.
    let duplicates = sim.net.stats().created(CopyKind::Duplicate);
    let client_replays = client.session().stats().drops.get(DropReason::Replayed);
    let server_session = server.endpoint().session(handle).expect("the live session");
    let server_replays = server_session.stats().drops.get(DropReason::Replayed);
    assert!(
        client_replays > 0 && server_replays > 0 && client_replays + server_replays <= duplicates,
        "replays refused: client {client_replays}, server {server_replays}; {duplicates} \
         duplicates; client {:?}; server {:?}; endpoint {:?}; {:?}",
        client.session().stats(),
        server_session.stats(),
        server.endpoint().counters(),
        sim.net.stats(),
    );
    assert!(sim.net.stats().dropped(DropCause::Loss) > 0);
    // A spurious TransportDead and its recovery are legal on a lossy link; an end is not.
    assert!(!client.session().state().is_terminated());
    assert_eq!(client.session().session_id(), server_session.session_id());
    sim.net.trace_hash()
}

#[test]
fn ten_thousand_datagrams_each_way_arrive_at_most_once_intact_and_mostly_over_a_lossy_network() {
    for seed in seeds_from_env() {
        seed.announce(SEED_ENV);

        let first = lossy_run(seed);
        let second = lossy_run(seed);

        assert_eq!(first, second, "the same seed must replay the same run");
    }
}

#[test]
fn a_blackhole_past_dead_after_is_recovered_with_the_same_session_id_and_the_next_epoch() {
    for seed in seeds_from_env() {
        seed.announce(SEED_ENV);
        let setup = Setup::blackhole(5 * SECOND..45 * SECOND, Duration::from_secs(120));
        let mut sim = Sim::new(seed, &setup);

        sim.run_checked(setup.run_for);

        let client = sim.client().session();
        let records = sim.client().history().records();
        let attached = find(records, State::Attached, Reason::HandshakeComplete);
        let recovering = find(records, State::Recovering, Reason::TransportDead);
        let reattached = find(records, State::Attached, Reason::ReattachAccepted);
        assert!(at(attached) < at(recovering) && at(recovering) < at(reattached));
        assert!(at(recovering) - sim.net.base() >= 5 * SECOND + sim.policy.dead_after - SECOND);
        assert_eq!(reattached.session_id, attached.session_id);
        assert_eq!((attached.epoch, reattached.epoch), (1, 2));
        assert_eq!(client.state(), State::Attached);
        assert_eq!(client.epoch(), 2);
        let server_records = sim.server_history();
        let server_rebind = find(&server_records, State::Attached, Reason::ReattachAccepted);
        assert_eq!(server_rebind.session_id, attached.session_id);
        // Traffic flows again after the rebind: the last datagrams were sent after it.
        let last = setup.count - 1;
        assert!(
            sim.to_server.was_delivered(last),
            "client->server stalled after recovery"
        );
        assert!(
            sim.to_client.was_delivered(last),
            "server->client stalled after recovery"
        );
    }
}

#[test]
fn a_blackhole_past_the_recovery_window_terminates_exactly_at_the_deadline() {
    for seed in seeds_from_env() {
        seed.announce(SEED_ENV);
        let setup = Setup::blackhole(
            5 * SECOND..Duration::from_secs(3_600),
            Duration::from_secs(400),
        );
        let mut sim = Sim::new(seed, &setup);

        sim.run_checked(setup.run_for);

        let window = sim.policy.recovery_window;
        let records = sim.client().history().records().to_vec();
        let recovering = find(&records, State::Recovering, Reason::TransportDead);
        let terminated = find(&records, State::Terminated, Reason::RecoveryWindowExceeded);
        assert_eq!(at(terminated) - at(recovering), window, "client window");
        assert_eq!(records.last(), Some(terminated), "TERMINATED is final");
        assert_eq!(sim.client().session().state(), State::Terminated);
        let server_records = sim.server_history();
        let recovering = find(&server_records, State::Recovering, Reason::TransportDead);
        let terminated = find(
            &server_records,
            State::Terminated,
            Reason::RecoveryWindowExceeded,
        );
        assert_eq!(at(terminated) - at(recovering), window, "server window");
        assert_eq!(
            sim.server().endpoint().session_count(),
            0,
            "the ended session is removed"
        );
    }
}
