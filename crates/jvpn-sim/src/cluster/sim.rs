//! One cluster run: building the network of the scenario, the per-step checks and the report.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jvpn_session::{
    ClientConfig, ClockAnchor, ClusterConfig, Endpoint, NodeId as StoreNode, PathKind, PeerConfig,
    ServerConfig, Session, SessionHandle, Version,
};
use jvpn_wire::{Psk, SessionId, StaticSecret, TokenKey};

use super::attacker::{self, AttackerNode, Ledger};
use super::guard::{GuardedClient, GuardedServer, StartEndpoint, StartSession};
use super::linear;
use super::scenario::{PathPlan, Scenario, sim_policy};
use super::store::FaultyStore;
use super::{Failure, FaultFigures, RunReport};
use crate::adapters::{ClientNode, Feed, path_of};
use crate::impair::{Blackhole, Delay, Duplicate, Impairment, Loss, Reorder};
use crate::network::{Network, SimError, Step};
use crate::node::{LinkId, NodeId};
use crate::seed::Seed;
use crate::workload::{DeliveryLog, Workload};

/// A fixed wall-clock anchor, so that timestamps and audit records replay exactly.
const ANCHOR_UNIX_NANOS: u64 = 1_700_000_000_000_000_000;
const TRANSPORTS: &[u8] = b"udp,quic,wss";
const MS: Duration = Duration::from_millis(1);

/// What the checks remember of one of the client's session ids.
#[derive(Debug, Default)]
struct SidTrack {
    last_version: Option<Version>,
    released: bool,
}

/// A bound server session as last seen: its id and the epochs it was first and last bound at.
#[derive(Debug)]
struct Binding {
    sid: SessionId,
    first_epoch: u64,
    last_epoch: u64,
}

pub(super) struct Sim {
    seed: Seed,
    scenario: Scenario,
    net: Network,
    client: NodeId,
    servers: Vec<NodeId>,
    client_links: Vec<LinkId>,
    store: FaultyStore,
    ledger: Rc<RefCell<Ledger>>,
    to_server: DeliveryLog,
    to_client: DeliveryLog,
    client_sids: BTreeMap<SessionId, SidTrack>,
    bindings: BTreeMap<(usize, u32, SessionHandle), Binding>,
    births: u64,
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

fn link(i: usize) -> LinkId {
    LinkId(u32::try_from(i).unwrap_or(u32::MAX))
}

/// The keys every node and the client share, from the seed.
struct Keys {
    client: StaticSecret,
    server: StaticSecret,
    psk: Psk,
    token: TokenKey,
}

impl Keys {
    fn draw(seed: Seed) -> Self {
        Self {
            client: StaticSecret::generate(&mut seed.rng("client-static", 0)),
            server: StaticSecret::generate(&mut seed.rng("server-static", 0)),
            psk: Psk::generate(&mut seed.rng("psk", 0)),
            token: TokenKey::generate(&mut seed.rng("token-key", 0)),
        }
    }
}

/// The client's `n`th session: same keys and paths, its own random stream.
fn start_session(seed: Seed, scenario: &Scenario, keys: &Keys, base: Instant) -> StartSession {
    let config = ClientConfig {
        local_key: keys.client.clone(),
        server_key: keys.server.public_key(),
        psk: keys.psk.clone(),
        policy: sim_policy(),
        clock: anchor(base, scenario.client_skew_ms),
        offered_transports: TRANSPORTS.to_vec(),
    };
    let paths = scenario.paths.len();
    Box::new(move |n, now| {
        let mut session = Session::connect(
            config.clone(),
            path_of(LinkId(0)),
            now,
            Box::new(seed.rng("client", n)),
        )
        .map_err(|e| format!("client config: {e}"))?;
        let kinds = [PathKind::Udp, PathKind::Quic, PathKind::Wss];
        for (i, kind) in kinds.iter().take(paths).enumerate() {
            let rank = u8::try_from(i).unwrap_or(u8::MAX);
            session.add_path(path_of(link(i)), kind.clone(), rank, now);
        }
        Ok(session)
    })
}

/// Node `i`'s endpoint in its `n`th life: same keys, node id, token key and store; a fresh
/// random stream (a restarted process does not replay its randomness).
fn start_endpoint(
    seed: Seed,
    i: usize,
    skew_ms: i64,
    keys: &Keys,
    store: &FaultyStore,
    base: Instant,
) -> StartEndpoint {
    let config = ServerConfig {
        local_key: keys.server.clone(),
        peers: vec![PeerConfig {
            public_key: keys.client.public_key(),
            psk: keys.psk.clone(),
        }],
        policy: sim_policy(),
        clock: anchor(base, skew_ms),
        offered_transports: TRANSPORTS.to_vec(),
        cluster: ClusterConfig {
            node: StoreNode(i as u64 + 1),
            ownership: Some(Arc::new(store.clone())),
            token_key: Some(keys.token.clone()),
        },
    };
    Box::new(move |n| {
        let rng = if n == 0 {
            seed.rng("server", i as u64)
        } else {
            seed.rng("server-restart", ((i as u64) << 32) | u64::from(n))
        };
        Endpoint::new(config.clone(), Box::new(rng)).map_err(|e| format!("server config: {e}"))
    })
}

impl Sim {
    pub(super) fn new(seed: Seed, base: Instant) -> Result<Self, String> {
        let scenario = Scenario::draw(seed);
        let keys = Keys::draw(seed);
        let store = FaultyStore::new(scenario.faults.store.clone(), seed);
        let ledger = Rc::new(RefCell::new(Ledger::default()));
        let mut net = Network::new(seed, base);

        // Node ids: client 0, servers 1.., attacker last. Links: client paths first (so the
        // client's PathId(n) is LinkId(n)), then the attacker's.
        let client = NodeId(0);
        let servers: Vec<NodeId> = (1..=scenario.nodes)
            .map(|i| NodeId(u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        let attacker = NodeId(u32::try_from(scenario.nodes + 1).unwrap_or(u32::MAX));

        let start = start_session(seed, &scenario, &keys, base);
        let up = Workload::new(seed, "client->server", 50, 8, 1200);
        let down = Workload::new(seed, "server->client", 50, 8, 1200);
        let client_node =
            ClientNode::new(start(0, base)?).with_feed(Feed::new(up.clone(), base, 300 * MS, 1));
        let added = net.add_node(Box::new(GuardedClient::new(
            client_node,
            start,
            ledger.clone(),
        )));
        debug_assert_eq!(added, client);

        for (i, skew) in scenario.node_skew_ms.iter().enumerate() {
            let feed = (i == 0).then(|| Feed::new(down.clone(), base, 300 * MS, 1));
            let outages: VecDeque<(Instant, Instant)> = scenario
                .faults
                .outages
                .iter()
                .filter(|o| o.node == i)
                .map(|o| (base + o.down_at, base + o.up_at))
                .collect();
            let server = GuardedServer::new(
                start_endpoint(seed, i, *skew, &keys, &store, base),
                feed,
                i,
                ledger.clone(),
                base,
                store.clone(),
                outages,
            )?;
            net.add_node(Box::new(server));
        }
        let attacker_links: Vec<LinkId> = (0..scenario.nodes)
            .map(|i| link(scenario.paths.len() + i))
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
            client_sids: BTreeMap::new(),
            bindings: BTreeMap::new(),
            births: 0,
            terminated: false,
        })
    }

    pub(super) fn fail(&self, what: String) -> Failure {
        Failure {
            seed: self.seed,
            at: self.net.elapsed(),
            what,
            scenario: Box::new(self.scenario.clone()),
        }
    }

    /// Every invariant, after one step.
    fn check(&mut self) -> Result<(), String> {
        if let Some(what) = self.ledger.borrow().violations.first() {
            return Err(what.clone());
        }
        self.check_client()?;
        let bound = self.check_servers()?;
        for (sid, nodes) in &bound {
            if nodes.len() > 1 {
                return Err(format!("dual binding: nodes {nodes:?} both bound {sid:?}"));
            }
        }
        self.check_store()?;
        if let Some(fault) = self.to_server.faults().first() {
            return Err(format!("client->server delivery: {fault:?}"));
        }
        if let Some(fault) = self.to_client.faults().first() {
            return Err(format!("server->client delivery: {fault:?}"));
        }
        Ok(())
    }

    fn check_client(&mut self) -> Result<(), String> {
        let client = self
            .net
            .node_mut::<GuardedClient>(self.client)
            .ok_or_else(|| "the client node is missing".to_owned())?;
        let inbox = client.inner.take_inbox();
        let births = client.reconnects;
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
        if births != self.births {
            // A new BIRTH: a new session, whose TERMINATED is still to come.
            self.births = births;
            self.terminated = false;
        }
        if self.terminated && !state.is_terminated() {
            return Err(format!("client left TERMINATED for {state}"));
        }
        self.terminated = state.is_terminated();
        if let Some(sid) = sid {
            self.client_sids.entry(sid).or_default();
        }
        Ok(())
    }

    /// The per-node checks; returns the nodes that hold each bound session id (a dead node
    /// holds none).
    fn check_servers(&mut self) -> Result<BTreeMap<SessionId, Vec<usize>>, String> {
        let mut bound: BTreeMap<SessionId, Vec<usize>> = BTreeMap::new();
        let mut changed = Vec::new();
        for (i, &id) in self.servers.iter().enumerate() {
            let server = self
                .net
                .node_mut::<GuardedServer>(id)
                .ok_or_else(|| format!("server node {i} is missing"))?;
            for (_, inner) in server.take_inbox() {
                self.to_server.record(&inner);
            }
            let incarnation = server.incarnation();
            let Some(node) = server.node() else {
                continue;
            };
            let endpoint = node.endpoint();
            if endpoint.violations() != 0 {
                return Err(format!("node {i} violations: {}", endpoint.violations()));
            }
            for (handle, history) in node.histories() {
                if let Some(fault) = history.faults().first() {
                    return Err(format!("node {i} {handle} history: {fault}"));
                }
            }
            for (handle, s) in endpoint.sessions() {
                let Some(sid) = s.session_id().filter(|_| s.state().is_bound()) else {
                    continue;
                };
                bound.entry(sid).or_default().push(i);
                if self.client_sids.contains_key(&sid)
                    && let Some(path) = s.bound_path()
                    && !self.client_links.iter().any(|l| path_of(*l) == path)
                {
                    return Err(format!(
                        "node {i} bound the client's session to {path:?}, not a client path"
                    ));
                }
                let epoch = s.epoch();
                let binding = self
                    .bindings
                    .entry((i, incarnation, handle))
                    .or_insert_with(|| {
                        changed.push((i, sid));
                        Binding {
                            sid,
                            first_epoch: epoch,
                            last_epoch: epoch,
                        }
                    });
                if epoch > binding.last_epoch {
                    binding.last_epoch = epoch;
                    changed.push((i, sid));
                }
            }
        }
        for (i, sid) in changed {
            self.check_committed(i, sid)?;
        }
        Ok(bound)
    }

    /// S15: a node binds (or rebinds) a session only on a claim the store committed and
    /// answered: every binding a node made of `sid` used up one such claim.
    fn check_committed(&self, i: usize, sid: SessionId) -> Result<(), String> {
        let made: u64 = self
            .bindings
            .iter()
            .filter(|((node, _, _), b)| *node == i && b.sid == sid)
            .map(|(_, b)| b.last_epoch.saturating_sub(b.first_epoch) + 1)
            .sum();
        let committed = self.store.ok_claims(StoreNode(i as u64 + 1), sid);
        if made > committed {
            return Err(format!(
                "node {i} bound {sid:?} {made} times on {committed} committed claims \
                 (an ownership change without a committed claim)"
            ));
        }
        Ok(())
    }

    /// The store's record of every session id the client had: the version never goes back,
    /// and a released id is never claimed again.
    fn check_store(&mut self) -> Result<(), String> {
        for (sid, track) in &mut self.client_sids {
            match (self.store.peek(*sid), track.last_version) {
                (Some((_, v)), _) if track.released => {
                    return Err(format!(
                        "released session id {sid:?} claimed again at {v:?}"
                    ));
                }
                (Some((_, v)), Some(last)) if v < last => {
                    return Err(format!(
                        "store version of {sid:?} went back from {last:?} to {v:?}"
                    ));
                }
                (Some((_, v)), _) => track.last_version = Some(v),
                (None, Some(_)) => track.released = true,
                (None, None) => {}
            }
        }
        Ok(())
    }

    pub(super) fn run(&mut self) -> Result<(), Failure> {
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

    pub(super) fn report(&mut self) -> Result<RunReport, Failure> {
        let mut faults = FaultFigures::default();
        let mut accepted = 0;
        let mut refused = 0;
        for id in self.servers.clone() {
            let server = self
                .net
                .node::<GuardedServer>(id)
                .ok_or_else(|| self.fail("server node missing".to_owned()))?;
            let figures = server.figures();
            accepted += figures.reattach_accepted;
            refused += figures.reattach_replays_refused;
            faults.restarts += figures.restarts;
            faults.lost_while_down += figures.lost_while_down;
            faults.reattach_refused_after_restart += figures.reattach_refused_after_restart;
            faults.adopted_after_restart += figures.adopted_after_restart;
        }
        let (final_state, epoch, final_reason) = match self.net.node::<GuardedClient>(self.client) {
            Some(client) => {
                faults.reconnects = client.reconnects;
                faults.sessions_reestablished = client.reestablished;
                let session = client.inner.session();
                (session.state(), session.epoch(), session.last_reason())
            }
            None => return Err(self.fail("the client node is missing".to_owned())),
        };
        self.store.final_reads();
        let linear = linear::check(&self.store.history())
            .map_err(|anomaly| self.fail(anomaly.to_string()))?;
        let ledger = self.ledger.borrow();
        Ok(RunReport {
            trace: self.net.trace_hash(),
            steps: self.net.stats().steps,
            final_state,
            epoch,
            final_reason,
            reattach_accepted: accepted,
            reattach_replays_refused: refused,
            attack: ledger.figures.clone(),
            faulty: self.scenario.faults.is_faulty(),
            faults,
            store: self.store.figures(),
            linear,
            nonces: ledger.nonces.figures.clone(),
        })
    }
}
