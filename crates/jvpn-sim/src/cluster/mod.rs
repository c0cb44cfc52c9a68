//! The cluster scenario: one multipath client, one or two server nodes sharing an ownership
//! store and a token key, impaired paths and an attacker, all drawn from one seed; checked
//! after every step.
//!
//! Per seed ([`Scenario::draw`]): 2–3 client paths, each to node 0 or node 1, each with its
//! own loss, duplication, delay and jitter, reordering and blackhole window; client clock skew
//! within the policy's reattach clock window, node-to-node skew up to 1 s; an attacker that
//! captures every frame on the client's paths, holds some back and releases them later,
//! replays captured frames right behind live traffic (on any path, hence to the same or the
//! other node) and from its own links to both nodes, and flips one bit in some (forgeries).
//!
//! Checked after every step ([`run`]): `violations()` of the client and of every endpoint,
//! every transition a legal table move with version +1 and epoch +1 exactly on a rebind (the
//! checked [`History`](crate::adapters::History)), one session id per session, at most one
//! node with a bound session per session id, no bound server session on a path that is not
//! the client's, the store's version for the client's session never going back and a released
//! session id never claimed again, TERMINATED final, every inner datagram delivered intact and
//! at most once; and per datagram: no replayed REATTACH_INIT accepted, no HANDSHAKE_INIT
//! accepted twice by one node, no forged frame past the drop path.
//!
//! Not modelled: node kill/restart, a store that fails or loses CAS replies, several clients.

mod attacker;
mod guard;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jvpn_session::{
    ClientConfig, ClockAnchor, ClusterConfig, Endpoint, MemoryOwnershipStore, NodeId as StoreNode,
    OwnershipStore, PathKind, PeerConfig, Policy, ServerConfig, Session, State, Version,
};
use jvpn_wire::{Psk, StaticSecret, TokenKey};
use rand::Rng;

pub use attacker::{AttackFigures, AttackPlan};
use attacker::{AttackerNode, Ledger};
use guard::{GuardedClient, GuardedServer};

use crate::adapters::{ClientNode, Feed, ServerNode, path_of};
use crate::impair::{Blackhole, Delay, Duplicate, Impairment, Loss, Reorder};
use crate::network::{Network, SimError, Step};
use crate::node::{LinkId, NodeId};
use crate::seed::{SEED_ENV, Seed};
use crate::trace::TraceHash;
use crate::workload::{DeliveryLog, Workload};

/// A fixed wall-clock anchor, so that timestamps and audit records replay exactly.
const ANCHOR_UNIX_NANOS: u64 = 1_700_000_000_000_000_000;
const TRANSPORTS: &[u8] = b"udp,quic,wss";
const MS: Duration = Duration::from_millis(1);

/// One client path as drawn from the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct PathPlan {
    /// Which server node the path reaches (0 or 1).
    pub node: usize,
    /// Loss probability, each direction.
    pub loss: f64,
    /// Duplication probability, each direction.
    pub duplicate: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Uniform jitter on top.
    pub jitter: Duration,
    /// Fraction of datagrams held back to be overtaken.
    pub reorder: f64,
    /// Both directions dark during this window, if any.
    pub blackhole: Option<std::ops::Range<Duration>>,
}

/// Everything one seed decides about a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Server nodes (1 or 2).
    pub nodes: usize,
    /// The client's paths (the first is the one it connects on).
    pub paths: Vec<PathPlan>,
    /// Client wall clock minus the reference, in ms (inside the reattach clock window).
    pub client_skew_ms: i64,
    /// Each node's wall clock minus the reference, in ms (|skew| ≤ 1 s).
    pub node_skew_ms: Vec<i64>,
    /// The attacker.
    pub attack: AttackPlan,
    /// Virtual time the run lasts.
    pub run_for: Duration,
}

/// The policy of every simulated session: the default with an 8 s recovery window, so that
/// long blackholes end sessions inside a short run.
#[must_use]
pub fn sim_policy() -> Policy {
    Policy {
        recovery_window: Duration::from_secs(8),
        ..Policy::default()
    }
}

impl Scenario {
    /// The scenario of `seed`.
    #[must_use]
    pub fn draw(seed: Seed) -> Self {
        let mut rng = seed.sim_rng("cluster-scenario", 0);
        let nodes = rng.random_range(1..=2usize);
        let path_count = rng.random_range(2..=3usize);
        let run_for = Duration::from_secs(15);
        let paths = (0..path_count)
            .map(|i| PathPlan {
                node: if i == 0 {
                    0
                } else {
                    rng.random_range(0..nodes)
                },
                loss: rng.random_range(0.0..0.2),
                duplicate: rng.random_range(0.0..0.05),
                delay: MS * rng.random_range(5..60u32),
                jitter: MS * rng.random_range(0..20u32),
                reorder: rng.random_range(0.0..0.2),
                blackhole: rng.random_bool(0.5).then(|| {
                    let start = MS * rng.random_range(0..8_000u32);
                    start..start + MS * rng.random_range(1_000..12_000u32)
                }),
            })
            .collect();
        let window_ms = i64::try_from(sim_policy().reattach_clock_window.as_millis())
            .unwrap_or(i64::MAX)
            .saturating_sub(1_000);
        let client_skew_ms = rng.random_range(-window_ms..=window_ms);
        let node_skew_ms = (0..nodes)
            .map(|_| rng.random_range(-1_000..=1_000))
            .collect();
        let attack = AttackPlan {
            inject_p: rng.random_range(0.0..0.15),
            hold_p: rng.random_range(0.0..0.05),
            hold_max: MS * rng.random_range(0..20_000u32),
            forge_p: rng.random_range(0.0..0.5),
            own_gap: MS * rng.random_range(50..2_000u32),
        };
        Self {
            nodes,
            paths,
            client_skew_ms,
            node_skew_ms,
            attack,
            run_for,
        }
    }
}

/// A run that broke an invariant (or livelocked): what, when, and how to replay it.
#[derive(Debug, thiserror::Error)]
#[error(
    "jvpn-sim cluster: seed {seed} failed at {at:?}: {what}\n  replay: \
     JVPN_SIM_SEED={seed} cargo test -p jvpn-sim --test cluster -- --nocapture\n  {scenario:?}"
)]
pub struct Failure {
    /// The seed of the run.
    pub seed: Seed,
    /// Virtual time of the failing step.
    pub at: Duration,
    /// What was broken.
    pub what: String,
    /// The scenario the seed drew.
    pub scenario: Box<Scenario>,
}

/// What a clean run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// The trace hash (same seed, same hash).
    pub trace: TraceHash,
    /// Steps the network took.
    pub steps: u64,
    /// The client's final state.
    pub final_state: State,
    /// The client's final binding epoch.
    pub epoch: u64,
    /// REATTACH_INITs answered OK over all nodes.
    pub reattach_accepted: u64,
    /// Reattach attempts refused as replays over all nodes (filter + stale counter).
    pub reattach_replays_refused: u64,
    /// What the attacker did.
    pub attack: AttackFigures,
}

struct Sim {
    seed: Seed,
    scenario: Scenario,
    net: Network,
    client: NodeId,
    servers: Vec<NodeId>,
    client_links: Vec<LinkId>,
    store: MemoryOwnershipStore,
    ledger: Rc<RefCell<Ledger>>,
    to_server: DeliveryLog,
    to_client: DeliveryLog,
    last_version: Option<Version>,
    released: bool,
    terminated: bool,
}

fn anchor(base: Instant, skew_ms: i64) -> ClockAnchor {
    ClockAnchor {
        instant: base,
        unix_nanos: ANCHOR_UNIX_NANOS.saturating_add_signed(skew_ms.saturating_mul(1_000_000)),
    }
}

fn path_impairments(plan: &PathPlan) -> Vec<Box<dyn Impairment>> {
    let mut stages: Vec<Box<dyn Impairment>> = Vec::new();
    if let Some(window) = &plan.blackhole {
        stages.push(Box::new(Blackhole::during(window.clone())));
    }
    stages.push(Box::new(Loss { p: plan.loss }));
    stages.push(Box::new(Duplicate { p: plan.duplicate }));
    stages.push(Box::new(Delay {
        base: plan.delay,
        jitter: plan.jitter,
    }));
    stages.push(Box::new(Reorder {
        p: plan.reorder,
        max_extra: 50 * MS,
    }));
    stages
}

impl Sim {
    fn new(seed: Seed, base: Instant) -> Result<Self, String> {
        let scenario = Scenario::draw(seed);
        let policy = sim_policy();
        let client_key = StaticSecret::generate(&mut seed.rng("client-static", 0));
        let server_key = StaticSecret::generate(&mut seed.rng("server-static", 0));
        let psk = Psk::generate(&mut seed.rng("psk", 0));
        let token_key = TokenKey::generate(&mut seed.rng("token-key", 0));
        let store = MemoryOwnershipStore::new();
        let ledger = Rc::new(RefCell::new(Ledger::default()));
        let mut net = Network::new(seed, base);

        // Node ids: client 0, servers 1.., attacker last. Links: client paths first (so the
        // client's PathId(n) is LinkId(n)), then the attacker's.
        let client = NodeId(0);
        let servers: Vec<NodeId> = (1..=scenario.nodes)
            .map(|i| NodeId(u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        let attacker = NodeId(u32::try_from(scenario.nodes + 1).unwrap_or(u32::MAX));

        let session = Session::connect(
            ClientConfig {
                local_key: client_key.clone(),
                server_key: server_key.public_key(),
                psk: psk.clone(),
                policy: policy.clone(),
                clock: anchor(base, scenario.client_skew_ms),
                offered_transports: TRANSPORTS.to_vec(),
            },
            path_of(LinkId(0)),
            base,
            Box::new(seed.rng("client", 0)),
        )
        .map_err(|e| format!("client config: {e}"))?;
        let up = Workload::new(seed, "client->server", 50, 8, 1200);
        let down = Workload::new(seed, "server->client", 50, 8, 1200);
        let mut client_node =
            ClientNode::new(session).with_feed(Feed::new(up.clone(), base, 300 * MS, 1));
        let kinds = [PathKind::Udp, PathKind::Quic, PathKind::Wss];
        for (i, kind) in kinds.iter().take(scenario.paths.len()).enumerate() {
            let link = LinkId(u32::try_from(i).unwrap_or(u32::MAX));
            let rank = u8::try_from(i).unwrap_or(u8::MAX);
            client_node
                .session_mut()
                .add_path(path_of(link), kind.clone(), rank, base);
        }
        let added = net.add_node(Box::new(GuardedClient::new(client_node, ledger.clone())));
        debug_assert_eq!(added, client);

        for (i, skew) in scenario.node_skew_ms.iter().enumerate() {
            let endpoint = Endpoint::new(
                ServerConfig {
                    local_key: server_key.clone(),
                    peers: vec![PeerConfig {
                        public_key: client_key.public_key(),
                        psk: psk.clone(),
                    }],
                    policy: policy.clone(),
                    clock: anchor(base, *skew),
                    offered_transports: TRANSPORTS.to_vec(),
                    cluster: ClusterConfig {
                        node: StoreNode(i as u64 + 1),
                        ownership: Some(Arc::new(store.clone())),
                        token_key: Some(token_key.clone()),
                    },
                },
                Box::new(seed.rng("server", i as u64)),
            )
            .map_err(|e| format!("server config: {e}"))?;
            let mut node = ServerNode::new(endpoint);
            if i == 0 {
                node = node.with_feed(Feed::new(down.clone(), base, 300 * MS, 1));
            }
            net.add_node(Box::new(GuardedServer::new(node, i, ledger.clone())));
        }
        let attacker_links: Vec<LinkId> = (0..scenario.nodes)
            .map(|i| LinkId(u32::try_from(scenario.paths.len() + i).unwrap_or(u32::MAX)))
            .collect();
        net.add_node(Box::new(AttackerNode::new(
            ledger.clone(),
            attacker_links,
            scenario.attack,
            seed.sim_rng("attacker", 0),
            base,
        )));

        let mut client_links = Vec::new();
        for plan in &scenario.paths {
            let link = net.next_link_id();
            let mut up_stages = vec![attacker::tap(ledger.clone(), link, true, scenario.attack)];
            up_stages.extend(path_impairments(plan));
            let mut down_stages = vec![attacker::tap(ledger.clone(), link, false, scenario.attack)];
            down_stages.extend(path_impairments(plan));
            net.add_link(client, servers[plan.node], up_stages, down_stages);
            client_links.push(link);
        }
        for &server in &servers {
            let delay = || -> Vec<Box<dyn Impairment>> {
                vec![Box::new(Delay {
                    base: 10 * MS,
                    jitter: 10 * MS,
                })]
            };
            net.add_link(attacker, server, delay(), delay());
        }
        Ok(Self {
            seed,
            scenario,
            net,
            client,
            servers,
            client_links,
            store,
            ledger,
            to_server: DeliveryLog::new(up),
            to_client: DeliveryLog::new(down),
            last_version: None,
            released: false,
            terminated: false,
        })
    }

    fn fail(&self, what: String) -> Failure {
        Failure {
            seed: self.seed,
            at: self.net.elapsed(),
            what,
            scenario: Box::new(self.scenario.clone()),
        }
    }

    fn client(&mut self) -> Result<&mut GuardedClient, String> {
        self.net
            .node_mut::<GuardedClient>(self.client)
            .ok_or_else(|| "the client node is missing".to_owned())
    }

    /// Every invariant, after one step.
    fn check(&mut self) -> Result<(), String> {
        if let Some(what) = self.ledger.borrow().violations.first() {
            return Err(what.clone());
        }
        let client = self.client()?;
        let inbox = client.inner.take_inbox();
        let session = client.inner.session();
        let sid = session.session_id();
        let state = session.state();
        if session.violations() != 0 {
            return Err(format!("client violations: {}", session.violations()));
        }
        if let Some(fault) = client.inner.history().faults().first() {
            return Err(format!("client history: {fault}"));
        }
        for inner in inbox {
            self.to_client.record(&inner);
        }
        if self.terminated && !state.is_terminated() {
            return Err(format!("client left TERMINATED for {state}"));
        }
        self.terminated = state.is_terminated();

        let mut bound_nodes = Vec::new();
        for (i, &id) in self.servers.clone().iter().enumerate() {
            let server = self
                .net
                .node_mut::<GuardedServer>(id)
                .ok_or_else(|| format!("server node {i} is missing"))?;
            let inbox = server.inner.take_inbox();
            let endpoint = server.inner.endpoint();
            if endpoint.violations() != 0 {
                return Err(format!("node {i} violations: {}", endpoint.violations()));
            }
            for (handle, history) in server.inner.histories() {
                if let Some(fault) = history.faults().first() {
                    return Err(format!("node {i} {handle} history: {fault}"));
                }
            }
            for (_, s) in endpoint.sessions() {
                if !s.state().is_bound() {
                    continue;
                }
                if s.session_id().is_some() && s.session_id() == sid {
                    bound_nodes.push(i);
                    if let Some(path) = s.bound_path()
                        && !self.client_links.iter().any(|l| path_of(*l) == path)
                    {
                        return Err(format!(
                            "node {i} bound the client's session to {path:?}, not a client path"
                        ));
                    }
                }
            }
            for (_, inner) in inbox {
                self.to_server.record(&inner);
            }
        }
        if bound_nodes.len() > 1 {
            return Err(format!(
                "dual binding: nodes {bound_nodes:?} both bound {sid:?}"
            ));
        }
        if let Some(sid) = sid {
            let owner = self.store.owner(sid).map_err(|e| format!("store: {e}"))?;
            match (owner, self.last_version) {
                (Some((_, v)), _) if self.released => {
                    return Err(format!("released session id claimed again at {v:?}"));
                }
                (Some((_, v)), Some(last)) if v < last => {
                    return Err(format!("store version went back from {last:?} to {v:?}"));
                }
                (Some((_, v)), _) => self.last_version = Some(v),
                (None, Some(_)) => self.released = true,
                (None, None) => {}
            }
        }
        if let Some(fault) = self.to_server.faults().first() {
            return Err(format!("client->server delivery: {fault:?}"));
        }
        if let Some(fault) = self.to_client.faults().first() {
            return Err(format!("server->client delivery: {fault:?}"));
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), Failure> {
        let deadline = self.net.base() + self.scenario.run_for;
        loop {
            let step = self
                .net
                .step_until(deadline)
                .map_err(|e: SimError| self.fail(e.to_string()))?;
            self.check().map_err(|what| self.fail(what))?;
            if matches!(step, Step::Idle | Step::Deadline) {
                return Ok(());
            }
        }
    }

    fn report(&mut self) -> Result<RunReport, Failure> {
        let mut accepted = 0;
        let mut refused = 0;
        for id in self.servers.clone() {
            let server = self
                .net
                .node::<GuardedServer>(id)
                .ok_or_else(|| self.fail("server node missing".to_owned()))?;
            let counters = server.inner.endpoint().counters();
            accepted += counters.reattach.accepted;
            refused += counters.reattach.replays + counters.reattach.stale_counter;
        }
        let (final_state, epoch) = match self.net.node::<GuardedClient>(self.client) {
            Some(client) => (
                client.inner.session().state(),
                client.inner.session().epoch(),
            ),
            None => return Err(self.fail("the client node is missing".to_owned())),
        };
        Ok(RunReport {
            trace: self.net.trace_hash(),
            steps: self.net.stats().steps,
            final_state,
            epoch,
            reattach_accepted: accepted,
            reattach_replays_refused: refused,
            attack: self.ledger.borrow().figures.clone(),
        })
    }
}

/// Runs the cluster scenario of `seed` from `base`, checking every invariant after every step.
///
/// # Errors
///
/// [`Failure`] on the first broken invariant (or a livelock), naming the seed and the one
/// command that replays it.
pub fn run(seed: Seed, base: Instant) -> Result<RunReport, Failure> {
    let mut sim = Sim::new(seed, base).map_err(|what| Failure {
        seed,
        at: Duration::ZERO,
        what,
        scenario: Box::new(Scenario::draw(seed)),
    })?;
    sim.run()?;
    sim.report()
}

/// The default seed count of the CI run and the environment variable that changes it.
pub const CI_SEEDS: u64 = 10_000;

/// Prints how to replay `seed` (see [`Seed::announce`]).
pub fn announce(seed: Seed) {
    seed.announce(SEED_ENV);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_stays_inside_the_clock_window_and_has_two_or_three_paths() {
        for n in 0..200 {
            let s = Scenario::draw(Seed(n));
            assert!((2..=3).contains(&s.paths.len()));
            assert!(s.client_skew_ms.unsigned_abs() < 60_000);
            assert!(s.node_skew_ms.iter().all(|k| k.unsigned_abs() <= 1_000));
            assert!(s.paths.iter().all(|p| p.node < s.nodes));
        }
    }
}
