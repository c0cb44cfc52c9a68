//! Anti-amplification (docs/protocol.md §5, ATTACKS.md S20 and §3.1(4)): until a path is
//! validated, the endpoint sends it at most [`AMPLIFICATION_FACTOR`] times the bytes it received
//! from it; what would go beyond is withheld (dropped and counted), never queued.
//!
//! A path is validated when a session accepts an authenticated frame that arrived on it while it
//! is (or, for a PATH_CONFIRM, becomes) that session's bound path: the sender held keys that only
//! a reply sent to that path could have given it (the HANDSHAKE_RESP or REATTACH_RESP), so the
//! address really receives there. An off-binding PROBE opens under the session's keys too, but
//! proves nothing about its source address (an on-path attacker can re-send it from anywhere):
//! it does not validate; its PROBE_ACK_OFF_BINDING is no larger than the probe anyway.
//!
//! Memory is bounded: at most `DosLimits::amplification_table` unvalidated paths are tracked
//! (the least recently used one is forgotten; a forgotten path has no budget left, so its next
//! reply needs new bytes from it first), and at most one validated path per live session.

use std::collections::BTreeMap;

#[cfg(test)]
use super::Endpoint;
use super::SessionHandle;
use crate::PathId;

/// An unvalidated path gets at most this many times the bytes it sent (QUIC's factor, RFC 9000
/// §8.1).
pub(super) const AMPLIFICATION_FACTOR: u64 = 3;

#[derive(Debug, Clone, Copy)]
struct Budget {
    received: u64,
    sent: u64,
    /// Position in the least-recently-used order.
    stamp: u64,
}

/// The per-path byte accounting.
#[derive(Debug, Default)]
pub(super) struct AmplificationGuard {
    budgets: BTreeMap<PathId, Budget>,
    /// Unvalidated paths by last use (stamp → path), oldest first.
    order: BTreeMap<u64, PathId>,
    next_stamp: u64,
    /// Validated paths and the session that validated each.
    validated: BTreeMap<PathId, SessionHandle>,
    /// The one validated path of each session.
    by_session: BTreeMap<SessionHandle, PathId>,
}

impl AmplificationGuard {
    /// Counts `len` bytes received on `path` (nothing to count on a validated path). `table` is
    /// the most unvalidated paths tracked.
    pub(super) fn on_received(&mut self, path: PathId, len: usize, table: usize) {
        if self.validated.contains_key(&path) {
            return;
        }
        let stamp = self.next_stamp;
        self.next_stamp = self.next_stamp.wrapping_add(1);
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        if let Some(budget) = self.budgets.get_mut(&path) {
            self.order.remove(&budget.stamp);
            budget.stamp = stamp;
            budget.received = budget.received.saturating_add(len);
        } else {
            while self.budgets.len() >= table.max(1) {
                let Some((_, oldest)) = self.order.pop_first() else {
                    break;
                };
                self.budgets.remove(&oldest);
            }
            self.budgets.insert(
                path,
                Budget {
                    received: len,
                    sent: 0,
                    stamp,
                },
            );
        }
        self.order.insert(stamp, path);
    }

    /// Whether `len` more bytes may be sent to `path` now; if so they are counted against its
    /// budget. Always true on a validated path.
    pub(super) fn allow(&mut self, path: PathId, len: usize) -> bool {
        if self.validated.contains_key(&path) {
            return true;
        }
        let Some(budget) = self.budgets.get_mut(&path) else {
            return false;
        };
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        let limit = budget.received.saturating_mul(AMPLIFICATION_FACTOR);
        let after = budget.sent.saturating_add(len);
        if after > limit {
            return false;
        }
        budget.sent = after;
        true
    }

    /// `session` accepted an authenticated frame on its bound `path`: the path is validated
    /// (and the session's previously validated path, if another, no longer is).
    pub(super) fn validate(&mut self, path: PathId, session: SessionHandle) {
        // The common case on the per-packet path: already validated by this session.
        if self.validated.get(&path) == Some(&session)
            && self.by_session.get(&session) == Some(&path)
        {
            return;
        }
        if let Some(old) = self.by_session.insert(session, path)
            && old != path
            && self.validated.get(&old) == Some(&session)
        {
            self.validated.remove(&old);
        }
        self.validated.insert(path, session);
        if let Some(budget) = self.budgets.remove(&path) {
            self.order.remove(&budget.stamp);
        }
    }

    /// `session` is gone: the path it validated is no longer validated by it.
    pub(super) fn forget_session(&mut self, session: SessionHandle) {
        if let Some(path) = self.by_session.remove(&session)
            && self.validated.get(&path) == Some(&session)
        {
            self.validated.remove(&path);
        }
    }

    /// Whether `path` is validated.
    #[cfg(test)]
    pub(super) fn is_validated(&self, path: PathId) -> bool {
        self.validated.contains_key(&path)
    }

    /// Unvalidated paths tracked.
    #[cfg(test)]
    pub(super) fn tracked(&self) -> usize {
        self.budgets.len()
    }
}

#[cfg(test)]
impl Endpoint {
    /// Queues `datagram` for `path` as a stateless reply (test only: no message of the protocol
    /// makes the endpoint send an unvalidated path more than it received, so the guard's limit
    /// is exercised with this).
    pub(crate) fn queue_stateless_for_test(&mut self, path: PathId, datagram: Vec<u8>) {
        self.cookie_out.push_back((path, datagram));
    }

    /// Whether the anti-amplification guard holds `path` as validated.
    pub(crate) fn path_validated(&self, path: PathId) -> bool {
        self.amplification.is_validated(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: PathId = PathId(7);

    #[test]
    fn an_unvalidated_path_gets_exactly_three_times_what_it_sent() {
        let mut guard = AmplificationGuard::default();
        guard.on_received(P, 100, 16);

        let first = guard.allow(P, 200);
        let exactly_to_the_limit = guard.allow(P, 100);
        let one_byte_more = guard.allow(P, 1);

        assert!(first);
        assert!(exactly_to_the_limit);
        assert!(!one_byte_more);
    }

    #[test]
    fn a_path_never_heard_from_gets_nothing() {
        let mut guard = AmplificationGuard::default();

        assert!(!guard.allow(P, 1));
    }

    #[test]
    fn more_bytes_received_raise_the_budget() {
        let mut guard = AmplificationGuard::default();
        guard.on_received(P, 10, 16);
        assert!(guard.allow(P, 30));

        guard.on_received(P, 10, 16);

        assert!(guard.allow(P, 30));
        assert!(!guard.allow(P, 1));
    }

    #[test]
    fn validation_lifts_the_limit_and_a_rebind_moves_it() {
        let mut guard = AmplificationGuard::default();
        let (a, b) = (PathId(1), PathId(2));
        let session = SessionHandle(1);

        guard.validate(a, session);
        let on_a = guard.allow(a, 1 << 20);
        guard.validate(b, session);

        assert!(on_a);
        assert!(guard.is_validated(b));
        assert!(!guard.is_validated(a), "one validated path per session");
        assert!(!guard.allow(a, 1));
    }

    #[test]
    fn a_reaped_session_leaves_no_validated_path_behind_but_a_newer_validator_keeps_it() {
        let mut guard = AmplificationGuard::default();
        let (old, new) = (SessionHandle(1), SessionHandle(2));
        guard.validate(P, old);
        guard.validate(PathId(9), new);
        guard.validate(P, new);

        guard.forget_session(old);
        let kept = guard.is_validated(P);
        guard.forget_session(new);

        assert!(kept);
        assert!(!guard.is_validated(P));
    }

    #[test]
    fn the_unvalidated_table_stays_bounded_and_forgets_the_least_recently_used() {
        let mut guard = AmplificationGuard::default();
        guard.on_received(PathId(0), 100, 8);
        for i in 1..100 {
            guard.on_received(PathId(i), 100, 8);
            // Path 0 keeps being heard from: it stays.
            guard.on_received(PathId(0), 1, 8);
        }

        assert_eq!(guard.tracked(), 8);
        assert!(guard.allow(PathId(0), 300));
        assert!(!guard.allow(PathId(1), 1), "forgotten: no budget");
    }
}
