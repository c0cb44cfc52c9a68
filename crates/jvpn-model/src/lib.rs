//! Model checking of jvpn's session + REATTACH protocol with [stateright].
//!
//! # What is modelled
//!
//! Four actors on stateright's unordered network: every message may be delivered late and in
//! any order; optionally (`duplicating`, `lossy`) any number of times or never.
//!
//! - **client** (actor 0): BIRTH → ATTACHED through node 1 (ATTACH_INIT / ATTACH_RESP); when
//!   its transport dies, RECOVERING and at once a REATTACH_INIT to either node, then retries;
//!   every REATTACH_INIT has a strictly increasing counter `rc` and a single-use token;
//!   PATH_CONFIRM echoes the challenge of an OK REATTACH_RESP; ATTACHED again on the
//!   PATH_RESPONSE; TERMINATED at its handshake timeout or recovery deadline, or on an
//!   authenticated EXPIRED / POLICY answer;
//! - **two server nodes** (actors 1, 2): the first attach creates the ownership record (CAS on
//!   version 0, ownership v1, tokens granted); a REATTACH_INIT runs ATTACKS.md 3.4 d–h: token
//!   floor, `rc > last_rc`, recovery window (record not TERMINATED), switch budget, then CAS #1
//!   (claim, expected version) → REATTACH_RESP with a challenge; on a matching PATH_CONFIRM,
//!   CAS #2 (commit) → PATH_RESPONSE. A failed compare re-reads and retries once (SUPERSEDED when
//!   a higher `rc` is in the record). A node fences its binding when it sees a newer record that
//!   does not name it (store reply or watch event);
//! - **ownership store** (actor 3): one linearizable CAS register on a version, watch events to
//!   the other node after each write, and the record's two deadlines (dead peer releases the
//!   binding, recovery deadline terminates the record);
//! - **replaying attacker** (`attacker`): it captures every client message on the wire and holds
//!   one replay for each node: the copies sit in the network and may be delivered at any later
//!   moment, interleaved with everything else, or never. It cannot forge: only the client creates
//!   ATTACH_INIT, REATTACH_INIT and PATH_CONFIRM (Noise + AEAD abstracted).
//!
//! The client's and the store record's state changes go through `jvpn_session`'s own
//! transition table ([`jvpn_session::is_allowed`], [`jvpn_session::is_rebind`]), so the model
//! cannot drift from the table: a transition the table forbids is refused and flagged.
//!
//! # What is abstracted
//!
//! - Cryptography: keys, ephemerals, MACs, cookies and AEAD are "only the client can create
//!   this message"; the challenge is `(node, rc)` (unique because `rc` is claimed once);
//!   tokens are used in order, so the token of attempt `rc` has sequence `rc`.
//! - Time: no clock. Deadlines are timers that may fire at any moment, which covers every
//!   ordering of "the window ran out" against message arrivals; the recovery window check of a
//!   node is "the record is not TERMINATED" (the store terminates it at its deadline).
//! - The client timestamp window `W`, the exact-replay filter on `e`, cookies, rate limits,
//!   anti-amplification, rekeying, data packets and probes are not modelled (DST and fuzzing
//!   cover them); VOLATILE / DEGRADED behave as ATTACHED for reattach and are left out.
//! - Node crashes and store outages are not modelled; a lost store reply is (lossy network),
//!   and the watch event completes a commit whose reply was lost (ATTACKS.md S16).
//!
//! # What it does not do
//!
//! It checks the design, not the code of `jvpn-session` (only the transition table is shared).
//! Depths are bounded: see `docs/model-checking.md` for the figures and the commands.

use stateright::actor::{ActorModel, Id, LossyNetwork, Network};

pub mod actor;
mod check;
pub mod client;
pub mod msg;
pub mod node;
pub mod properties;
pub mod sm;
pub mod store;

pub use check::{CheckReport, PropertyResult, check, find_violation};

/// The client's actor index.
pub const CLIENT: usize = 0;
/// Server node 1's actor index.
pub const NODE1: usize = 1;
/// Server node 2's actor index.
pub const NODE2: usize = 2;
/// The ownership store's actor index.
pub const STORE: usize = 3;

/// The stateright id of actor index `ix`.
pub fn id(ix: usize) -> Id {
    Id::from(ix)
}

/// The actor id of node `n` (1 or 2).
pub(crate) fn node_id(n: msg::NodeNo) -> Id {
    id(usize::from(n))
}

/// The node number of actor `id`, if it is a node.
pub(crate) fn node_no(id: Id) -> Option<msg::NodeNo> {
    match usize::from(id) {
        1 => Some(1),
        2 => Some(2),
        _ => None,
    }
}

/// Which protocol the nodes run.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The design (ATTACKS.md 3.4).
    Design,
    /// Deliberately broken: a node binds on REATTACH_INIT, with neither CAS nor PATH_CONFIRM.
    CommitOnInit,
    /// Deliberately broken: a node skips the token-floor and `rc > last_rc` checks.
    NoFreshnessCheck,
}

/// The bounds and options of one model.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelCfg {
    /// The highest reattach counter the client uses (number of reattach attempts).
    pub max_rc: u8,
    /// Rebinds the record allows (the switch budget).
    pub switch_budget: u8,
    /// Tokens granted by ATTACH_RESP and by each OK REATTACH_RESP.
    pub tokens_per_grant: u8,
    /// The protocol the nodes run.
    pub variant: Variant,
    /// Whether the attacker replays client messages (one held copy per node per message).
    pub attacker: bool,
    /// Whether the network also redelivers every message any number of times (stateright's
    /// duplicating network; much larger state space).
    pub duplicating: bool,
    /// Whether the network may also lose messages.
    pub lossy: bool,
}

impl Default for ModelCfg {
    fn default() -> Self {
        ModelCfg {
            max_rc: 2,
            switch_budget: 2,
            tokens_per_grant: 2,
            variant: Variant::Design,
            attacker: true,
            duplicating: false,
            lossy: false,
        }
    }
}

/// The stateright model type.
pub type JvpnModel = ActorModel<actor::JvpnActor, ModelCfg>;

/// Builds the model: client, two nodes, store, attacker, and every property of
/// [`properties::PROPERTIES`].
pub fn model(cfg: ModelCfg) -> JvpnModel {
    let mut m = ActorModel::new(cfg, ())
        .actor(actor::JvpnActor::Client(cfg))
        .actor(actor::JvpnActor::Node(cfg, 1))
        .actor(actor::JvpnActor::Node(cfg, 2))
        .actor(actor::JvpnActor::Store(cfg))
        .init_network(if cfg.duplicating {
            Network::new_unordered_duplicating([])
        } else {
            Network::new_unordered_nonduplicating([])
        })
        .lossy_network(if cfg.lossy {
            LossyNetwork::Yes
        } else {
            LossyNetwork::No
        });
    for (expectation, name, condition) in properties::PROPERTIES {
        m = m.property(expectation.clone(), name, *condition);
    }
    m
}
