//! The cluster scenario: one multipath client, one or two server nodes sharing an ownership
//! store and a token key, impaired paths, an attacker, node restarts and a failing store, all
//! drawn from one seed; checked after every step.
//!
//! Per seed ([`Scenario::draw`]): 2–3 client paths, each to node 0 or node 1, each with its
//! own loss, duplication, delay and jitter, reordering and blackhole window; client clock skew
//! within the policy's reattach clock window, node-to-node skew up to 1 s; an attacker that
//! captures every frame on the client's paths, holds some back and releases them later,
//! replays captured frames right behind live traffic (on any path, hence to the same or the
//! other node) and from its own links to both nodes, and flips one bit in some (forgeries).
//! Faults ([`FaultPlan`], from their own random stream): in ~20 % of seeds one or two node
//! [`Outage`]s (the node's `Endpoint` is dropped with every node-local cache, datagrams to it
//! are lost, and after 50 ms–4 s a fresh `Endpoint` starts with the same static key, token key,
//! node id and store but a new random stream); in ~10 % store unavailability windows and in
//! ~10 % lost CAS replies ([`FaultyStore`]: 10 % of claims apply but answer `Unknown`, a
//! third of those landing up to 2 s late, compared when they land). The client, like the
//! runtime, starts a new BIRTH (up to 3) when a server answers that it lost the session.
//!
//! Checked after every step ([`run`]): `violations()` of the client and of every live endpoint,
//! every transition a legal table move with version +1 and epoch +1 exactly on a rebind (the
//! checked [`History`](crate::adapters::History), also of a killed node's sessions and of a
//! lost client session), one session id per session, at most one node with a bound session
//! per session id (I1; a dead node has none), no bound server session of a client session id
//! on a path that is not the client's, for every session id the client had the store's version
//! never going back and a released id never claimed again, no binding without a committed
//! claim (every binding or rebinding a node makes of a session id uses up one claim the store
//! answered with a new version: a lost reply or an unavailable store never moves ownership),
//! TERMINATED final, every inner datagram delivered intact and at most once; per datagram: no
//! replayed REATTACH_INIT accepted (also by a restarted node: S3), no HANDSHAKE_INIT accepted
//! twice by one incarnation of a node, no forged frame past the drop path; per frame sent: no
//! `(key, nonce)` pair twice and no node sealing under a key from before its restart (the
//! nonce ledger, S28). At the end of the run: the store's recorded history is linearizable
//! against a compare-and-swap register per session id ([`linear`], S17).
//!
//! Counted, not failed: HANDSHAKE_INITs a node accepted before its restart and accepts again
//! after it (its timestamp guard lives in memory; each makes an orphan session the attacker
//! cannot use), and claims refused by the node's own earlier claim whose reply was lost (S16:
//! the node answers SUPERSEDED instead of re-reading, ending the session safely).
//!
//! Not modelled: several clients, a client crash, leases (a dead node's sessions are not taken
//! over by the other node: a reattach only succeeds on the node holding the session).

mod attacker;
mod guard;
pub mod linear;
mod nonce;
mod scenario;
mod sim;
mod store;

use std::time::{Duration, Instant};

pub use attacker::{AttackFigures, AttackPlan};
pub use nonce::NonceFigures;
pub use scenario::{FaultPlan, Outage, PathPlan, Scenario, sim_policy};
pub use store::{FaultyStore, StoreFigures, StorePlan};

use jvpn_session::{Reason, State};

use crate::seed::{SEED_ENV, Seed};
use crate::trace::TraceHash;

/// A run that broke an invariant (or livelocked): what, when, and how to replay it.
#[derive(Debug, thiserror::Error)]
#[error(
    "jvpn-sim cluster: seed {seed} failed at {at:?}: {what}\n  replay: \
     JVPN_SIM_SEED={seed} JVPN_SIM_SEEDS=1 cargo test -p jvpn-sim --test cluster -- --nocapture\n  {scenario:?}"
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
    /// The reason of the client session's last transition.
    pub final_reason: Option<Reason>,
    /// REATTACH_INITs answered OK over all nodes.
    pub reattach_accepted: u64,
    /// Reattach attempts refused as replays over all nodes (filter + stale counter).
    pub reattach_replays_refused: u64,
    /// What the attacker did.
    pub attack: AttackFigures,
    /// Whether the seed drew any fault (a restart, store unavailability, lost replies).
    pub faulty: bool,
    /// What the node restarts and the client's reconnects did.
    pub faults: FaultFigures,
    /// What the store's faults did.
    pub store: StoreFigures,
    /// The store history's linearizability check.
    pub linear: linear::Checked,
    /// The nonce ledger.
    pub nonces: NonceFigures,
}

/// What node restarts did over one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultFigures {
    /// Node restarts (each after a kill).
    pub restarts: u64,
    /// Datagrams that reached a node while it was down (lost).
    pub lost_while_down: u64,
    /// REATTACH_INITs a restarted node refused for naming a session it does not hold.
    pub reattach_refused_after_restart: u64,
    /// Sessions a restarted node rebuilt from the store record and kept: the session
    /// survived the restart (docs/protocol.md §13, "Ownership store").
    pub adopted_after_restart: u64,
    /// New BIRTHs the client started because a server had lost its session.
    pub reconnects: u64,
    /// Of which reached a bound state (a session re-established).
    pub sessions_reestablished: u64,
}

/// Runs the cluster scenario of `seed` from `base`, checking every invariant after every step.
///
/// # Errors
///
/// [`Failure`] on the first broken invariant (or a livelock), naming the seed and the one
/// command that replays it.
pub fn run(seed: Seed, base: Instant) -> Result<RunReport, Failure> {
    let mut sim = sim::Sim::new(seed, base).map_err(|what| Failure {
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
