//! The sans-IO jvpn session core.
//!
//! What it does:
//! - the six session states and the transition table as data ([`TRANSITIONS`]), enforced by
//!   [`StateMachine`] with a typed [`IllegalTransition`] error, a strictly increasing version
//!   and a binding epoch that goes up with every rebind;
//! - reason codes ([`Reason`]) and one [`AuditRecord`] (one JSON line) per transition;
//! - the [`Policy`] with every tunable and its documented default;
//! - one [`TimerTable`] per state machine;
//! - the [`Prober`] (when to probe each candidate path; RTT, jitter, loss, health), the pure
//!   path [`score`], and the rate-limited [`SwitchController`] (recover at once from a dead
//!   path; planned switches only with a margin, a dwell and a budget);
//! - the six formal properties of the design, checked after every transition
//!   (`debug_assert!` in debug builds, a violation counter in release);
//! - [`Session`] (one session, client or server role) and [`Endpoint`] (the server side, many
//!   sessions) in the sans-IO grammar: `handle_datagram` / `send` / `handle_timeout` / `close`
//!   in, `poll_transmit` / `poll_event` / `poll_timeout` out. See their docs for the call order.
//!
//! What it does not do: no sockets, no tokio, no clock reads (`now: Instant` is always an
//! argument, wall time comes from a [`ClockAnchor`]), no OS randomness (an RNG is passed in).
//! The runtime shell (crate `jvpn`) does all IO.

mod audit;
mod budget;
mod clock;
mod config;
mod endpoint;
mod invariants;
mod machine;
mod ownership;
mod path;
mod policy;
mod prober;
mod reason;
mod score;
mod session;
mod state;
mod switch;
mod timer;

#[cfg(test)]
mod tests;

pub use audit::AuditRecord;
pub use budget::SwitchBudget;
pub use clock::ClockAnchor;
pub use config::{
    ClientConfig, ClusterConfig, ConfigError, ConnectError, PeerConfig, ServerConfig, SessionRng,
};
pub use endpoint::{
    ClusterStats, DosLimits, DosStats, Endpoint, EndpointCounters, EndpointInbound,
    MAX_TRACKED_SOURCES, ReattachStats, ResetLimits, ResetStats, SessionHandle,
};
pub use invariants::Violation;
pub use machine::{Binding, IdentityChanged, IllegalTransition, StateMachine, TransitionCtx};
pub use ownership::{
    MemoryOwnershipStore, NodeId, OwnershipError, OwnershipRecord, OwnershipStore, StoreCall,
    StoreEvent, StoreFault, StoreOutcome, Version,
};
pub use path::PathId;
pub use policy::{Policy, PolicyError};
pub use prober::{LOSS_WINDOW, PathKind, PathState, PathStats, Prober};
pub use reason::Reason;
pub use score::{
    LATENCY_BUCKET_MS, LOSS_BUCKET_PERCENT, PREFERENCE_SLACK_BUCKETS, Score, ScoreClass,
    better_by_margin, score, within_margin,
};
pub use session::{
    DropCounts, DropReason, Event, Inbound, PathReport, Role, SendError, Session, SessionStats,
    Transmit,
};
pub use state::{
    ANY_TO_TERMINATED, State, TRANSITIONS, event_state_matrix, is_allowed, is_rebind,
    markdown_table, mermaid_diagram,
};
pub use switch::{Decision, SwitchController, SwitchReason};
pub use timer::{TimerKind, TimerTable};
