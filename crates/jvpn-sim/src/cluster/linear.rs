//! Linearizability of a recorded ownership-store history (ATTACKS.md S17), checked against a
//! sequential compare-and-swap register per session id, Knossos / porcupine style.
//!
//! Every store call is one [`StoreOp`]: when it was invoked, when it returned, what was asked
//! and what the caller was told. A call whose caller was told nothing definite (the store was
//! unavailable, or the reply was lost after the write may have applied: FoundationDB's
//! `commit_unknown_result`) has [`Outcome::Unknown`]: it may take effect at any point after
//! its invocation, or never, and its result is unconstrained.
//!
//! The history is linearizable if, for each session id on its own (ownership records are
//! independent, so the check composes), the calls can be put in one order that respects real
//! time (a call that returned before another was invoked comes first) and in which every
//! definite result is what [`Register::apply`] gives. The search is Wing & Gong's with Lowe's
//! memoization of `(calls linearized, register)`: exhaustive, and fast on the small histories
//! one simulated run produces. An unknown call is only ever placed where it changes the
//! register (placing it where it does not is the same as leaving it out).
//!
//! What it does not do: check liveness, or anything about the nodes' use of the results (that
//! is the cluster run's per-step checks).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use jvpn_session::{NodeId, Version};
use jvpn_wire::SessionId;

/// What a caller asked the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Call {
    /// `claim(session, node, expected)`.
    Claim {
        /// The claiming node.
        node: NodeId,
        /// The version the caller believes current (`None`: no record may exist).
        expected: Option<Version>,
    },
    /// `release(session, node, version)`.
    Release {
        /// The releasing node.
        node: NodeId,
        /// The version it believes it holds.
        version: Version,
    },
    /// `owner(session)`.
    Read,
}

/// What the caller was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Outcome {
    /// The claim won: the new version.
    Claimed(Version),
    /// The claim lost to the record shown.
    Conflict {
        /// The record's owner.
        owner: NodeId,
        /// The record's version.
        current: Version,
    },
    /// The claim expected a version but there was no record.
    Missing,
    /// Whether a release removed the record.
    Released(bool),
    /// The record a read returned.
    Read(Option<(NodeId, Version)>),
    /// Nothing definite: the call may have taken effect at any time after its invocation, or
    /// never.
    Unknown,
}

/// One store call in a history. Times are ticks of one logical clock shared by every call of
/// the history (a call's `returned` is after its `invoked`); `at` is virtual time, for humans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOp {
    /// The session id the call was about.
    pub session: SessionId,
    /// What was asked.
    pub call: Call,
    /// What the caller was told.
    pub outcome: Outcome,
    /// When the call was invoked.
    pub invoked: u64,
    /// When it returned (ignored for [`Outcome::Unknown`]: such a call may take effect later).
    pub returned: u64,
    /// Virtual time of the invocation.
    pub at: Duration,
}

/// The sequential model: one ownership record, the semantics of
/// [`MemoryOwnershipStore`](jvpn_session::MemoryOwnershipStore).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Register(pub Option<(NodeId, Version)>);

impl Register {
    /// The register after `call`, and what `call` returns.
    #[must_use]
    pub fn apply(self, call: Call) -> (Self, Outcome) {
        match call {
            Call::Claim { node, expected } => match (self.0, expected) {
                (None, None) => (Self(Some((node, Version(1)))), Outcome::Claimed(Version(1))),
                (None, Some(_)) => (self, Outcome::Missing),
                (Some((_, current)), Some(want)) if current == want => {
                    let next = Version(current.0.saturating_add(1));
                    (Self(Some((node, next))), Outcome::Claimed(next))
                }
                (Some((owner, current)), _) => (self, Outcome::Conflict { owner, current }),
            },
            Call::Release { node, version } => {
                if self.0 == Some((node, version)) {
                    (Self(None), Outcome::Released(true))
                } else {
                    (self, Outcome::Released(false))
                }
            }
            Call::Read => (self, Outcome::Read(self.0)),
        }
    }
}

/// What a clean check covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Per-session histories checked.
    pub histories: u64,
    /// Calls in them.
    pub ops: u64,
    /// Of which with an unknown outcome.
    pub unknown: u64,
    /// Search states visited (memoized `(calls linearized, register)` pairs).
    pub states: u64,
}

impl Checked {
    /// Adds another check's figures.
    pub fn add(&mut self, other: Self) {
        self.histories += other.histories;
        self.ops += other.ops;
        self.unknown += other.unknown;
        self.states += other.states;
    }
}

/// A history with no linearization: the calls of the offending session id, in invocation order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("store history of {session} is not linearizable ({states} states searched): {}", render(.ops))]
pub struct Anomaly {
    /// The session id whose record misbehaved.
    pub session: SessionId,
    /// Its calls, in invocation order.
    pub ops: Vec<StoreOp>,
    /// Search states visited before giving up.
    pub states: u64,
}

fn render(ops: &[StoreOp]) -> String {
    ops.iter()
        .map(|op| {
            let end = if op.outcome == Outcome::Unknown {
                "?".to_owned()
            } else {
                op.returned.to_string()
            };
            format!(
                "[{}..{end} @{:?}] {:?} -> {:?}",
                op.invoked, op.at, op.call, op.outcome
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks a whole history, one session id at a time.
///
/// # Errors
///
/// [`Anomaly`] for the first session id (in id order) whose calls have no linearization.
pub fn check(ops: &[StoreOp]) -> Result<Checked, Anomaly> {
    let mut by_session: BTreeMap<SessionId, Vec<StoreOp>> = BTreeMap::new();
    for op in ops {
        by_session.entry(op.session).or_default().push(*op);
    }
    let mut checked = Checked::default();
    for (session, mut ops) in by_session {
        ops.sort_by_key(|op| (op.invoked, op.returned));
        let states = check_register(&ops).map_err(|states| Anomaly {
            session,
            ops: ops.clone(),
            states,
        })?;
        checked.add(Checked {
            histories: 1,
            ops: ops.len() as u64,
            unknown: ops.iter().filter(|o| o.outcome == Outcome::Unknown).count() as u64,
            states,
        });
    }
    Ok(checked)
}

/// Checks the calls of one session id (any order). Returns the states visited, or `Err` with
/// the states visited when no linearization exists.
fn check_register(ops: &[StoreOp]) -> Result<u64, u64> {
    let mut search = Search {
        ops,
        seen: BTreeSet::new(),
    };
    let done = vec![0u64; ops.len().div_ceil(64)];
    if search.dfs(done, Register::default()) {
        Ok(search.seen.len() as u64)
    } else {
        Err(search.seen.len() as u64)
    }
}

struct Search<'a> {
    ops: &'a [StoreOp],
    seen: BTreeSet<(Vec<u64>, Register)>,
}

fn is_set(done: &[u64], i: usize) -> bool {
    done[i / 64] & (1 << (i % 64)) != 0
}

fn with(done: &[u64], i: usize) -> Vec<u64> {
    let mut next = done.to_vec();
    next[i / 64] |= 1 << (i % 64);
    next
}

impl Search<'_> {
    fn dfs(&mut self, done: Vec<u64>, register: Register) -> bool {
        let pending = || {
            self.ops
                .iter()
                .enumerate()
                .filter(|&(i, op)| !is_set(&done, i) && op.outcome != Outcome::Unknown)
        };
        // Every definite call placed: the unknown ones left over never took effect.
        let Some(first_return) = pending().map(|(_, op)| op.returned).min() else {
            return true;
        };
        if !self.seen.insert((done.clone(), register)) {
            return false;
        }
        // A call may go next only if no call still to place returned before it was invoked.
        let candidates: Vec<usize> = self
            .ops
            .iter()
            .enumerate()
            .filter(|&(i, op)| !is_set(&done, i) && op.invoked <= first_return)
            .map(|(i, _)| i)
            .collect();
        // Two unknown calls asking the same thing are interchangeable once both may go next
        // (they stay candidates, and neither constrains a result): trying one is enough.
        let mut tried_unknown: Vec<Call> = Vec::new();
        for i in candidates {
            let op = self.ops[i];
            if op.outcome == Outcome::Unknown {
                if tried_unknown.contains(&op.call) {
                    continue;
                }
                tried_unknown.push(op.call);
            }
            let (next, result) = register.apply(op.call);
            let fits = match op.outcome {
                Outcome::Unknown => next != register,
                observed => observed == result,
            };
            if fits && self.dfs(with(&done, i), next) {
                return true;
            }
        }
        false
    }
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} histories, {} calls ({} unknown), {} states",
            self.histories, self.ops, self.unknown, self.states
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: SessionId = SessionId([7; 16]);
    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    fn op(invoked: u64, returned: u64, call: Call, outcome: Outcome) -> StoreOp {
        StoreOp {
            session: SID,
            call,
            outcome,
            invoked,
            returned,
            at: Duration::ZERO,
        }
    }

    fn claim(node: NodeId, expected: Option<u64>) -> Call {
        Call::Claim {
            node,
            expected: expected.map(Version),
        }
    }

    #[test]
    fn a_sequential_history_of_claims_and_a_read_is_linearizable() {
        let history = [
            op(0, 1, claim(A, None), Outcome::Claimed(Version(1))),
            op(2, 3, claim(B, Some(1)), Outcome::Claimed(Version(2))),
            op(
                4,
                5,
                claim(A, Some(1)),
                Outcome::Conflict {
                    owner: B,
                    current: Version(2),
                },
            ),
            op(6, 7, Call::Read, Outcome::Read(Some((B, Version(2))))),
        ];

        let checked = check(&history);

        assert_eq!(checked.map(|c| (c.histories, c.ops)), Ok((1, 4)));
    }

    #[test]
    fn a_zombie_claim_applied_after_a_newer_one_is_not_linearizable() {
        // A claims v1 -> v2; B claims v1 -> v2 later and wins; then a read shows A at v2 again:
        // A's stale claim (expected v1) was applied after B's newer one without the compare.
        let history = [
            op(0, 1, claim(A, None), Outcome::Claimed(Version(1))),
            op(2, 3, claim(B, Some(1)), Outcome::Claimed(Version(2))),
            op(4, 5, claim(A, Some(1)), Outcome::Claimed(Version(2))),
            op(6, 7, Call::Read, Outcome::Read(Some((A, Version(2))))),
        ];

        let anomaly = check(&history).expect_err("a zombie CAS must be caught");

        assert_eq!(anomaly.session, SID);
        assert_eq!(anomaly.ops.len(), 4);
    }

    #[test]
    fn a_zombie_whose_reply_was_lost_may_not_overwrite_a_newer_claim() {
        // A's claim (expected v1) has an unknown outcome; B's claim on v1 won at v2. A read
        // showing A at v3 could only come from A's claim applied with no compare.
        let history = [
            op(0, 1, claim(A, None), Outcome::Claimed(Version(1))),
            op(2, 30, claim(A, Some(1)), Outcome::Unknown),
            op(4, 5, claim(B, Some(1)), Outcome::Claimed(Version(2))),
            op(8, 9, Call::Read, Outcome::Read(Some((A, Version(3))))),
        ];

        assert!(check(&history).is_err());
    }

    #[test]
    fn a_claim_with_a_lost_reply_may_take_effect_before_a_later_read() {
        let history = [
            op(0, 1, claim(A, None), Outcome::Claimed(Version(1))),
            op(2, 3, claim(A, Some(1)), Outcome::Unknown),
            op(
                4,
                5,
                claim(B, Some(1)),
                Outcome::Conflict {
                    owner: A,
                    current: Version(2),
                },
            ),
        ];

        let checked = check(&history).expect("the lost claim applied before B's");

        assert_eq!(checked.unknown, 1);
    }

    #[test]
    fn a_claim_with_a_lost_reply_may_never_take_effect() {
        let history = [
            op(0, 1, claim(A, None), Outcome::Claimed(Version(1))),
            op(2, 3, claim(A, Some(1)), Outcome::Unknown),
            op(4, 5, claim(B, Some(1)), Outcome::Claimed(Version(2))),
            op(6, 7, Call::Read, Outcome::Read(Some((B, Version(2))))),
        ];

        assert!(check(&history).is_ok());
    }

    #[test]
    fn overlapping_claims_may_be_ordered_either_way_but_only_one_wins() {
        let both_won = [
            op(0, 1, claim(A, None), Outcome::Claimed(Version(1))),
            op(2, 6, claim(A, Some(1)), Outcome::Claimed(Version(2))),
            op(3, 5, claim(B, Some(1)), Outcome::Claimed(Version(2))),
        ];
        let b_first = [
            op(0, 1, claim(A, None), Outcome::Claimed(Version(1))),
            op(
                2,
                6,
                claim(A, Some(1)),
                Outcome::Conflict {
                    owner: B,
                    current: Version(2),
                },
            ),
            op(3, 5, claim(B, Some(1)), Outcome::Claimed(Version(2))),
        ];

        assert!(check(&both_won).is_err());
        assert!(check(&b_first).is_ok());
    }

    #[test]
    fn a_read_may_not_see_a_value_before_the_claim_that_wrote_it_was_invoked() {
        let history = [
            op(0, 1, Call::Read, Outcome::Read(Some((A, Version(1))))),
            op(2, 3, claim(A, None), Outcome::Claimed(Version(1))),
        ];

        assert!(check(&history).is_err());
    }

    #[test]
    fn a_release_removes_only_the_record_it_names() {
        let history = [
            op(0, 1, claim(A, None), Outcome::Claimed(Version(1))),
            op(
                2,
                3,
                Call::Release {
                    node: B,
                    version: Version(1),
                },
                Outcome::Released(false),
            ),
            op(
                4,
                5,
                Call::Release {
                    node: A,
                    version: Version(1),
                },
                Outcome::Released(true),
            ),
            op(6, 7, Call::Read, Outcome::Read(None)),
        ];

        assert!(check(&history).is_ok());
    }

    #[test]
    fn many_retried_claims_with_unknown_outcomes_are_searched_without_blowing_up() {
        // A store down for a while: 40 retries of one claim, all unknown, then the truth.
        let mut history = vec![op(0, 1, claim(A, None), Outcome::Claimed(Version(1)))];
        for n in 0..40 {
            history.push(op(
                2 + 2 * n,
                3 + 2 * n,
                claim(A, Some(1)),
                Outcome::Unknown,
            ));
        }
        history.push(op(
            100,
            101,
            Call::Read,
            Outcome::Read(Some((A, Version(2)))),
        ));
        history.push(op(
            102,
            103,
            claim(B, Some(1)),
            Outcome::Conflict {
                owner: A,
                current: Version(2),
            },
        ));

        let checked = check(&history).expect("one of the retries applied");

        assert!(checked.states < 1_000, "{} states", checked.states);
    }

    #[test]
    fn a_read_that_only_two_applied_retries_of_one_claim_could_explain_is_rejected_quickly() {
        let mut history = vec![op(0, 1, claim(A, None), Outcome::Claimed(Version(1)))];
        for n in 0..40 {
            history.push(op(
                2 + 2 * n,
                3 + 2 * n,
                claim(A, Some(1)),
                Outcome::Unknown,
            ));
        }
        history.push(op(
            100,
            101,
            Call::Read,
            Outcome::Read(Some((A, Version(3)))),
        ));

        let anomaly = check(&history).expect_err("a claim on v1 cannot make v3");

        assert!(anomaly.states < 10_000, "{} states", anomaly.states);
    }

    #[test]
    fn session_ids_are_checked_independently() {
        let other = SessionId([8; 16]);
        let mut history = vec![
            op(0, 1, claim(A, None), Outcome::Claimed(Version(1))),
            op(2, 3, claim(B, None), Outcome::Claimed(Version(1))),
        ];
        history[1].session = other;

        let checked = check(&history);

        assert_eq!(checked.map(|c| c.histories), Ok(2));
    }
}
