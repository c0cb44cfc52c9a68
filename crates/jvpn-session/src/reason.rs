//! Why a transition happened: one enum, strings only at the edges.
//!
//! Reasons serialize (serde and `Display`) as `SCREAMING_SNAKE_CASE`, the same spelling as
//! the states, so that an audit line reads `"from":"ATTACHED","to":"RECOVERING","reason":"TRANSPORT_DEAD"`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The reason code carried by every state transition (and its audit record).
///
/// Which reasons are legal for which `(from, to)` pair is decided by
/// [`TRANSITIONS`](crate::TRANSITIONS), never by the reason alone.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The first-attach handshake finished and both sides hold transport keys (BIRTH → ATTACHED).
    HandshakeComplete,
    /// No valid handshake response within the policy's `handshake_timeout` (BIRTH → TERMINATED).
    HandshakeTimeout,
    /// The peer failed authentication (BIRTH → TERMINATED).
    AuthFailed,
    /// Consecutive probes on the active path went unanswered (ATTACHED → VOLATILE).
    ProbeLost,
    /// Loss over the probe window rose above the policy's threshold (ATTACHED → VOLATILE).
    LossSpike,
    /// The RTT rose above the policy's spike factor times the baseline (ATTACHED → VOLATILE).
    RttSpike,
    /// Path quality is back within policy (VOLATILE or DEGRADED → ATTACHED).
    QualityRestored,
    /// Quality stayed below policy for the degraded dwell (VOLATILE → DEGRADED).
    QualityBelowPolicy,
    /// The switch controller wanted to move but the switch budget (rate and burst) is spent:
    /// the session stays on its current path, marked degraded (ATTACHED or VOLATILE → DEGRADED).
    FlapLimit,
    /// Nothing authenticated arrived for the policy's `dead_after` (bound → RECOVERING).
    TransportDead,
    /// The switch controller moves to a better-scored path (bound → RECOVERING).
    PlannedSwitch,
    /// Server side: the peer proved the session again while it was bound (for example from a
    /// new path), so the old binding is released before the new one commits (bound → RECOVERING).
    ReattachRequested,
    /// Client side: a STATELESS_RESET carrying the exact token of the server index in use
    /// arrived on the bound path: the server (or cluster) no longer knows that index, so the
    /// client reattaches (bound → RECOVERING). Never a termination: an unauthenticated signal
    /// can at most start a recovery.
    StatelessReset,
    /// A new binding was accepted: epoch + 1, fresh keys (RECOVERING → ATTACHED).
    ReattachAccepted,
    /// RECOVERING lasted the whole recovery window (RECOVERING → TERMINATED).
    RecoveryWindowExceeded,
    /// The server refused the reattach (RECOVERING → TERMINATED).
    ReattachRejected,
    /// Rebinding again would exceed the switch budget (RECOVERING → TERMINATED).
    SwitchBudgetExhausted,
    /// The server answered a resume with a different session id: it lost the session (for
    /// example after a restart); the runtime may start a new BIRTH (bound or RECOVERING → TERMINATED).
    SessionLost,
    /// The local side closed the session (any → TERMINATED).
    Closed,
    /// A policy rule forbids the session from continuing (any → TERMINATED).
    PolicyViolation,
    /// Another node owns the session now, or the ownership store no longer has its record
    /// (any → TERMINATED). The node never sends under the session's keys again.
    OwnershipLost,
    /// The ownership store could not confirm this node's ownership for the whole
    /// `Policy::ownership_lease`: the node stops carrying the session at the lease deadline, as
    /// another node may have taken it over meanwhile (any → TERMINATED).
    StoreUnavailable,
    /// The peer closed the session (any → TERMINATED).
    PeerClosed,
    /// Server side: the same client started a new session (a new BIRTH) (any → TERMINATED).
    Superseded,
    /// A key reached its hard limit and no rekey is possible (any → TERMINATED).
    KeyExhausted,
}

impl Reason {
    /// Every reason, in declaration order (used by the exhaustive table tests and the docs).
    pub const ALL: &'static [Reason] = &[
        Reason::HandshakeComplete,
        Reason::HandshakeTimeout,
        Reason::AuthFailed,
        Reason::ProbeLost,
        Reason::LossSpike,
        Reason::RttSpike,
        Reason::QualityRestored,
        Reason::QualityBelowPolicy,
        Reason::FlapLimit,
        Reason::TransportDead,
        Reason::PlannedSwitch,
        Reason::ReattachRequested,
        Reason::StatelessReset,
        Reason::ReattachAccepted,
        Reason::RecoveryWindowExceeded,
        Reason::ReattachRejected,
        Reason::SwitchBudgetExhausted,
        Reason::SessionLost,
        Reason::Closed,
        Reason::PolicyViolation,
        Reason::OwnershipLost,
        Reason::StoreUnavailable,
        Reason::PeerClosed,
        Reason::Superseded,
        Reason::KeyExhausted,
    ];

    /// The wire / audit spelling (`SCREAMING_SNAKE_CASE`), identical to the serde form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::HandshakeComplete => "HANDSHAKE_COMPLETE",
            Reason::HandshakeTimeout => "HANDSHAKE_TIMEOUT",
            Reason::AuthFailed => "AUTH_FAILED",
            Reason::ProbeLost => "PROBE_LOST",
            Reason::LossSpike => "LOSS_SPIKE",
            Reason::RttSpike => "RTT_SPIKE",
            Reason::QualityRestored => "QUALITY_RESTORED",
            Reason::QualityBelowPolicy => "QUALITY_BELOW_POLICY",
            Reason::FlapLimit => "FLAP_LIMIT",
            Reason::TransportDead => "TRANSPORT_DEAD",
            Reason::PlannedSwitch => "PLANNED_SWITCH",
            Reason::ReattachRequested => "REATTACH_REQUESTED",
            Reason::StatelessReset => "STATELESS_RESET",
            Reason::ReattachAccepted => "REATTACH_ACCEPTED",
            Reason::RecoveryWindowExceeded => "RECOVERY_WINDOW_EXCEEDED",
            Reason::ReattachRejected => "REATTACH_REJECTED",
            Reason::SwitchBudgetExhausted => "SWITCH_BUDGET_EXHAUSTED",
            Reason::SessionLost => "SESSION_LOST",
            Reason::Closed => "CLOSED",
            Reason::PolicyViolation => "POLICY_VIOLATION",
            Reason::OwnershipLost => "OWNERSHIP_LOST",
            Reason::StoreUnavailable => "STORE_UNAVAILABLE",
            Reason::PeerClosed => "PEER_CLOSED",
            Reason::Superseded => "SUPERSEDED",
            Reason::KeyExhausted => "KEY_EXHAUSTED",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_serde_spell_every_reason_the_same_way() {
        for reason in Reason::ALL {
            let json = serde_json::to_string(reason).unwrap();

            assert_eq!(json, format!("\"{reason}\""));
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), *reason);
        }
    }

    #[test]
    fn all_lists_every_reason_once_in_order() {
        let mut sorted = Reason::ALL.to_vec();
        sorted.sort();
        sorted.dedup();

        assert_eq!(sorted, Reason::ALL);
    }
}
