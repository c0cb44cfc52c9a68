//! The six session states and the transition table, as data.
//!
//! [`TRANSITIONS`] is the single source of truth: [`is_allowed`] reads it, the
//! [`StateMachine`](crate::StateMachine) enforces it, the snapshot test freezes the whole
//! event × state matrix, and [`mermaid_diagram`] renders it into `docs/state-machine.md`.

use std::fmt;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::Reason;

/// The lifecycle state of one session.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// The first-attach handshake is in progress; no keys, no binding yet.
    Birth,
    /// Bound to one path with healthy quality; data flows.
    Attached,
    /// Still bound, but the path shows distress (lost probes, loss or RTT spike).
    Volatile,
    /// Still bound, but quality stayed below policy for the degraded dwell; a switch is due.
    Degraded,
    /// No active binding: the session (keys, id, counters) waits for a reattach, at most the
    /// policy's recovery window.
    Recovering,
    /// Final. Nothing leaves this state.
    Terminated,
}

impl State {
    /// Every state, in lifecycle order.
    pub const ALL: &'static [State] = &[
        State::Birth,
        State::Attached,
        State::Volatile,
        State::Degraded,
        State::Recovering,
        State::Terminated,
    ];

    /// The audit spelling (`SCREAMING_SNAKE_CASE`), identical to the serde form.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Birth => "BIRTH",
            State::Attached => "ATTACHED",
            State::Volatile => "VOLATILE",
            State::Degraded => "DEGRADED",
            State::Recovering => "RECOVERING",
            State::Terminated => "TERMINATED",
        }
    }

    /// Whether the session has an active binding (a path its data goes to) in this state.
    pub const fn is_bound(self) -> bool {
        matches!(self, State::Attached | State::Volatile | State::Degraded)
    }

    /// Whether this is the final state.
    pub const fn is_terminated(self) -> bool {
        matches!(self, State::Terminated)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reasons that end a session from any non-final state.
pub const ANY_TO_TERMINATED: &[Reason] = &[
    Reason::Closed,
    Reason::PeerClosed,
    Reason::PolicyViolation,
    Reason::OwnershipLost,
    Reason::StoreUnavailable,
    Reason::Superseded,
    Reason::KeyExhausted,
];

/// Reasons that release the active binding (bound → RECOVERING).
const UNBIND: &[Reason] = &[
    Reason::TransportDead,
    Reason::PlannedSwitch,
    Reason::ReattachRequested,
    Reason::StatelessReset,
];

/// The transition table: `(from, to, allowed reasons)`. Anything not listed is illegal.
///
/// Several rows may share a `(from, to)` pair (the per-state rows and the
/// [`ANY_TO_TERMINATED`] rows); a transition is allowed when any row lists its reason.
/// TERMINATED appears only as a target: it is final.
pub const TRANSITIONS: &[(State, State, &[Reason])] = &[
    (State::Birth, State::Attached, &[Reason::HandshakeComplete]),
    (
        State::Birth,
        State::Terminated,
        &[Reason::HandshakeTimeout, Reason::AuthFailed],
    ),
    (
        State::Attached,
        State::Volatile,
        &[Reason::ProbeLost, Reason::LossSpike, Reason::RttSpike],
    ),
    (State::Volatile, State::Attached, &[Reason::QualityRestored]),
    (
        State::Volatile,
        State::Degraded,
        &[Reason::QualityBelowPolicy, Reason::FlapLimit],
    ),
    (State::Attached, State::Degraded, &[Reason::FlapLimit]),
    (State::Degraded, State::Attached, &[Reason::QualityRestored]),
    (State::Attached, State::Recovering, UNBIND),
    (State::Volatile, State::Recovering, UNBIND),
    (State::Degraded, State::Recovering, UNBIND),
    (
        State::Recovering,
        State::Attached,
        &[Reason::ReattachAccepted],
    ),
    (
        State::Recovering,
        State::Terminated,
        &[
            Reason::RecoveryWindowExceeded,
            Reason::ReattachRejected,
            Reason::SwitchBudgetExhausted,
            Reason::SessionLost,
        ],
    ),
    (State::Attached, State::Terminated, &[Reason::SessionLost]),
    (State::Volatile, State::Terminated, &[Reason::SessionLost]),
    (State::Degraded, State::Terminated, &[Reason::SessionLost]),
    (State::Birth, State::Terminated, ANY_TO_TERMINATED),
    (State::Attached, State::Terminated, ANY_TO_TERMINATED),
    (State::Volatile, State::Terminated, ANY_TO_TERMINATED),
    (State::Degraded, State::Terminated, ANY_TO_TERMINATED),
    (State::Recovering, State::Terminated, ANY_TO_TERMINATED),
];

/// Whether `from → to` with `reason` is listed in [`TRANSITIONS`].
pub fn is_allowed(from: State, to: State, reason: Reason) -> bool {
    TRANSITIONS
        .iter()
        .any(|&(f, t, reasons)| f == from && t == to && reasons.contains(&reason))
}

/// Whether `from → to` creates a new binding (and so bumps the binding epoch).
pub const fn is_rebind(from: State, to: State) -> bool {
    matches!(
        (from, to),
        (State::Birth, State::Attached) | (State::Recovering, State::Attached)
    )
}

/// Every allowed `(from, to)` edge with its reasons merged across rows, in table order.
fn merged_edges() -> Vec<(State, State, Vec<Reason>)> {
    let mut edges: Vec<(State, State, Vec<Reason>)> = Vec::new();
    for &(from, to, reasons) in TRANSITIONS {
        match edges.iter_mut().find(|(f, t, _)| *f == from && *t == to) {
            Some((_, _, merged)) => merged.extend_from_slice(reasons),
            None => edges.push((from, to, reasons.to_vec())),
        }
    }
    edges
}

/// The state diagram in Mermaid syntax, generated from [`TRANSITIONS`].
///
/// `docs/state-machine.md` holds exactly this text between its generated-section markers;
/// a test fails when they drift (run it with `JVPN_BLESS=1` to rewrite the section).
pub fn mermaid_diagram() -> String {
    let mut out = String::from("```mermaid\nstateDiagram-v2\n");
    let _ = writeln!(out, "    [*] --> {}", State::Birth);
    for (from, to, reasons) in merged_edges() {
        let labels: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        let _ = writeln!(out, "    {from} --> {to}: {}", labels.join(", "));
    }
    let _ = writeln!(out, "    {} --> [*]", State::Terminated);
    out.push_str("```\n");
    out
}

/// The transition table as a Markdown table (one row per `(from, to)` edge), generated
/// from [`TRANSITIONS`] for `docs/state-machine.md`.
pub fn markdown_table() -> String {
    let mut out = String::from("| from | to | reasons |\n| --- | --- | --- |\n");
    for (from, to, reasons) in merged_edges() {
        let labels: Vec<String> = reasons.iter().map(|r| format!("`{r}`")).collect();
        let _ = writeln!(out, "| {from} | {to} | {} |", labels.join(", "));
    }
    out
}

/// The full event × state matrix: one line per `(to, reason)` event, one column per
/// `from` state, each cell `ok` or `illegal`. Snapshot-tested so that any table change is
/// reviewed as a diff.
pub fn event_state_matrix() -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<40}", "event (to / reason) \\ from");
    for from in State::ALL {
        let _ = write!(out, " {:<10}", from.as_str());
    }
    out.push('\n');
    for &to in State::ALL {
        for &reason in Reason::ALL {
            let event = format!("{to} / {reason}");
            let _ = write!(out, "{event:<40}");
            for &from in State::ALL {
                let cell = if is_allowed(from, to, reason) {
                    "ok"
                } else {
                    "illegal"
                };
                let _ = write!(out, " {cell:<10}");
            }
            // Trailing spaces make snapshot diffs noisy.
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const BEGIN: &str = "<!-- BEGIN GENERATED -->";
    const END: &str = "<!-- END GENERATED -->";

    fn generated_section() -> String {
        format!(
            "{BEGIN}\n\n{}\n{}\n{END}",
            mermaid_diagram(),
            markdown_table()
        )
    }

    #[test]
    fn nothing_leaves_terminated() {
        let leaving = TRANSITIONS
            .iter()
            .filter(|(from, _, _)| *from == State::Terminated)
            .count();

        assert_eq!(leaving, 0);
    }

    #[test]
    fn every_non_final_state_can_be_terminated_by_every_any_reason() {
        for &from in State::ALL.iter().filter(|s| !s.is_terminated()) {
            for &reason in ANY_TO_TERMINATED {
                assert!(
                    is_allowed(from, State::Terminated, reason),
                    "{from} {reason}"
                );
            }
        }
    }

    #[test]
    fn every_reason_is_used_by_some_transition() {
        for reason in Reason::ALL {
            let used = TRANSITIONS.iter().any(|(_, _, rs)| rs.contains(reason));

            assert!(used, "{reason} is in no row of TRANSITIONS");
        }
    }

    #[test]
    fn display_and_serde_spell_every_state_the_same_way() {
        for state in State::ALL {
            let json = serde_json::to_string(state).unwrap();

            assert_eq!(json, format!("\"{state}\""));
            assert_eq!(serde_json::from_str::<State>(&json).unwrap(), *state);
        }
    }

    #[test]
    fn event_state_matrix_matches_snapshot() {
        let matrix = event_state_matrix();

        insta::assert_snapshot!("event_state_matrix", matrix);
    }

    #[test]
    fn state_machine_doc_holds_the_generated_diagram() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/state-machine.md");
        let doc = std::fs::read_to_string(&path).expect("docs/state-machine.md exists");
        let expected = generated_section();
        let start = doc.find(BEGIN).expect("BEGIN GENERATED marker present");
        let end = doc.find(END).expect("END GENERATED marker present") + END.len();

        if std::env::var_os("JVPN_BLESS").is_some_and(|v| v == "1") {
            let blessed = format!("{}{expected}{}", &doc[..start], &doc[end..]);
            std::fs::write(&path, blessed).expect("docs/state-machine.md is writable");
            return;
        }

        assert_eq!(
            &doc[start..end],
            expected,
            "docs/state-machine.md is stale: rerun this test with JVPN_BLESS=1"
        );
    }
}
