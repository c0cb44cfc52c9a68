//! The six formal properties of the design, checked after every transition.
//!
//! A violation is a bug in this crate (or its caller), never a peer's doing: it trips a
//! `debug_assert!` in debug builds and is counted in release builds (never a panic there),
//! so a production fleet can alert on a non-zero [`violations`](crate::StateMachine::violations).
//!
//! 1. at most one active binding: a binding exists exactly in the bound states, at the
//!    current epoch;
//! 2. the session id and the peer's static key never change once set;
//! 3. the version strictly increases with every transition; the epoch increases by one with
//!    every rebind and never otherwise;
//! 4. RECOVERING lasts at most the recovery window;
//! 5. rebinds stay within the switch budget, planned switches respect the minimum interval;
//! 6. TERMINATED is final.

use std::time::{Duration, Instant};

use crate::budget::SwitchBudget;
use crate::{Policy, Reason, State, state};

/// Which property was violated.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Violation {
    /// Property 1: a binding outside the bound states, none inside them, or at a stale epoch.
    Binding,
    /// Property 2: the session id or the peer's static key changed.
    IdentityChanged,
    /// Property 3: the version did not increase, or the epoch moved without a rebind.
    Monotonicity,
    /// Property 4: RECOVERING outlived the recovery window.
    RecoveryTooLong,
    /// Property 5: a rebind without a switch-budget token, or a planned switch too soon.
    SwitchBudget,
    /// Property 6: something left TERMINATED.
    LeftTerminated,
}

/// What the checker sees after one transition.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Observation<'a> {
    pub(crate) from: State,
    pub(crate) to: State,
    pub(crate) reason: Reason,
    pub(crate) version: u64,
    pub(crate) epoch: u64,
    /// The binding's epoch, if a binding exists.
    pub(crate) binding_epoch: Option<u64>,
    pub(crate) session_id: Option<&'a str>,
    pub(crate) peer_static: Option<&'a [u8; 32]>,
    pub(crate) now: Instant,
}

/// Independent bookkeeping that re-derives what the state machine should look like.
#[derive(Clone, Debug)]
pub(crate) struct Invariants {
    assert_on_violation: bool,
    violations: u64,
    last_violation: Option<Violation>,
    last_version: u64,
    last_epoch: u64,
    session_id: Option<String>,
    peer_static: Option<[u8; 32]>,
    terminated: bool,
    recovering_since: Option<Instant>,
    recovery_window: Duration,
    budget: SwitchBudget,
    min_switch_interval: Duration,
    last_binding_change: Option<Instant>,
}

impl Invariants {
    pub(crate) fn new(policy: &Policy) -> Self {
        Invariants {
            assert_on_violation: cfg!(debug_assertions),
            violations: 0,
            last_violation: None,
            last_version: 0,
            last_epoch: 0,
            session_id: None,
            peer_static: None,
            terminated: false,
            recovering_since: None,
            recovery_window: policy.recovery_window,
            budget: SwitchBudget::from_policy(policy),
            min_switch_interval: policy.min_switch_interval,
            last_binding_change: None,
        }
    }

    /// A checker for a machine restored in RECOVERING at `version` and `epoch` (see
    /// `StateMachine::restore_recovering`).
    pub(crate) fn restored(
        policy: &Policy,
        version: u64,
        epoch: u64,
        session_id: &str,
        peer_static: [u8; 32],
        recovering_since: Instant,
    ) -> Self {
        Invariants {
            last_version: version,
            last_epoch: epoch,
            session_id: Some(session_id.to_owned()),
            peer_static: Some(peer_static),
            recovering_since: Some(recovering_since),
            ..Self::new(policy)
        }
    }

    /// A checker that only counts (so tests can provoke violations in debug builds).
    #[cfg(test)]
    pub(crate) fn counting_only(policy: &Policy) -> Self {
        Invariants {
            assert_on_violation: false,
            ..Self::new(policy)
        }
    }

    pub(crate) fn violations(&self) -> u64 {
        self.violations
    }

    pub(crate) fn last_violation(&self) -> Option<Violation> {
        self.last_violation
    }

    /// Property 2 outside transitions: an attempt to change the identity.
    pub(crate) fn identity_change_attempted(&mut self) {
        self.violate(Violation::IdentityChanged);
    }

    pub(crate) fn observe(&mut self, obs: &Observation<'_>) {
        self.check_binding(obs);
        self.check_identity(obs);
        self.check_monotonic(obs);
        self.check_recovery(obs);
        self.check_switch(obs);
        self.check_final(obs);
    }

    fn check_binding(&mut self, obs: &Observation<'_>) {
        let ok = match obs.binding_epoch {
            Some(epoch) => obs.to.is_bound() && epoch == obs.epoch,
            None => !obs.to.is_bound(),
        };
        if !ok {
            self.violate(Violation::Binding);
        }
    }

    fn check_identity(&mut self, obs: &Observation<'_>) {
        if let Some(now) = obs.session_id {
            match &self.session_id {
                Some(first) if first != now => self.violate(Violation::IdentityChanged),
                Some(_) => {}
                None => self.session_id = Some(now.to_owned()),
            }
        } else if self.session_id.is_some() {
            self.violate(Violation::IdentityChanged);
        }
        if let Some(now) = obs.peer_static {
            match &self.peer_static {
                Some(first) if first != now => self.violate(Violation::IdentityChanged),
                Some(_) => {}
                None => self.peer_static = Some(*now),
            }
        } else if self.peer_static.is_some() {
            self.violate(Violation::IdentityChanged);
        }
    }

    fn check_monotonic(&mut self, obs: &Observation<'_>) {
        let expected_epoch = if state::is_rebind(obs.from, obs.to) {
            self.last_epoch.checked_add(1)
        } else {
            Some(self.last_epoch)
        };
        if obs.version <= self.last_version || expected_epoch != Some(obs.epoch) {
            self.violate(Violation::Monotonicity);
        }
        self.last_version = self.last_version.max(obs.version);
        self.last_epoch = self.last_epoch.max(obs.epoch);
    }

    fn check_recovery(&mut self, obs: &Observation<'_>) {
        if obs.from == State::Recovering {
            let since = self.recovering_since.take();
            let lasted = since.map(|s| obs.now.saturating_duration_since(s));
            if lasted.is_none_or(|d| d > self.recovery_window) {
                self.violate(Violation::RecoveryTooLong);
            }
        }
        if obs.to == State::Recovering {
            self.recovering_since = Some(obs.now);
        }
    }

    fn check_switch(&mut self, obs: &Observation<'_>) {
        if obs.reason == Reason::PlannedSwitch {
            let too_soon = self
                .last_binding_change
                .is_some_and(|at| obs.now.saturating_duration_since(at) < self.min_switch_interval);
            if too_soon {
                self.violate(Violation::SwitchBudget);
            }
        }
        if obs.from == State::Recovering
            && obs.to == State::Attached
            && !self.budget.try_take(obs.now)
        {
            self.violate(Violation::SwitchBudget);
        }
        if state::is_rebind(obs.from, obs.to) {
            self.last_binding_change = Some(obs.now);
        }
    }

    fn check_final(&mut self, obs: &Observation<'_>) {
        if self.terminated || obs.from == State::Terminated {
            self.violate(Violation::LeftTerminated);
        }
        if obs.to == State::Terminated {
            self.terminated = true;
        }
    }

    fn violate(&mut self, which: Violation) {
        self.violations = self.violations.saturating_add(1);
        self.last_violation = Some(which);
        debug_assert!(
            !self.assert_on_violation,
            "session invariant violated: {which:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Instant {
        #[expect(
            clippy::disallowed_methods,
            reason = "test needs one real instant as a base"
        )]
        Instant::now()
    }

    fn obs(
        from: State,
        to: State,
        reason: Reason,
        version: u64,
        epoch: u64,
    ) -> Observation<'static> {
        Observation {
            from,
            to,
            reason,
            version,
            epoch,
            binding_epoch: to.is_bound().then_some(epoch),
            session_id: None,
            peer_static: None,
            now: base(),
        }
    }

    #[test]
    fn a_legal_sequence_reports_no_violation() {
        let mut inv = Invariants::counting_only(&Policy::default());

        inv.observe(&obs(
            State::Birth,
            State::Attached,
            Reason::HandshakeComplete,
            1,
            1,
        ));
        inv.observe(&obs(
            State::Attached,
            State::Terminated,
            Reason::Closed,
            2,
            1,
        ));

        assert_eq!(inv.violations(), 0);
    }

    #[test]
    fn a_version_that_does_not_increase_is_counted() {
        let mut inv = Invariants::counting_only(&Policy::default());
        inv.observe(&obs(
            State::Birth,
            State::Attached,
            Reason::HandshakeComplete,
            1,
            1,
        ));

        inv.observe(&obs(
            State::Attached,
            State::Volatile,
            Reason::ProbeLost,
            1,
            1,
        ));

        assert_eq!(inv.violations(), 1);
        assert_eq!(inv.last_violation(), Some(Violation::Monotonicity));
    }

    #[test]
    fn an_epoch_bump_without_rebind_is_counted() {
        let mut inv = Invariants::counting_only(&Policy::default());
        inv.observe(&obs(
            State::Birth,
            State::Attached,
            Reason::HandshakeComplete,
            1,
            1,
        ));

        inv.observe(&obs(
            State::Attached,
            State::Volatile,
            Reason::ProbeLost,
            2,
            2,
        ));

        assert_eq!(inv.last_violation(), Some(Violation::Monotonicity));
    }

    #[test]
    fn a_binding_in_recovering_is_counted() {
        let mut inv = Invariants::counting_only(&Policy::default());
        let mut bad = obs(
            State::Attached,
            State::Recovering,
            Reason::TransportDead,
            1,
            0,
        );
        bad.binding_epoch = Some(0);

        inv.observe(&bad);

        assert_eq!(inv.last_violation(), Some(Violation::Binding));
    }

    #[test]
    fn a_changed_session_id_is_counted() {
        let mut inv = Invariants::counting_only(&Policy::default());
        let mut first = obs(
            State::Birth,
            State::Attached,
            Reason::HandshakeComplete,
            1,
            1,
        );
        first.session_id = Some("aa");
        inv.observe(&first);
        let mut second = obs(State::Attached, State::Volatile, Reason::ProbeLost, 2, 1);
        second.session_id = Some("bb");

        inv.observe(&second);

        assert_eq!(inv.violations(), 1);
        assert_eq!(inv.last_violation(), Some(Violation::IdentityChanged));
    }

    #[test]
    fn recovering_longer_than_the_window_is_counted() {
        let policy = Policy::default();
        let mut inv = Invariants::counting_only(&policy);
        let t0 = base();
        let mut enter = obs(
            State::Attached,
            State::Recovering,
            Reason::TransportDead,
            1,
            0,
        );
        enter.now = t0;
        inv.observe(&enter);
        let mut leave = obs(
            State::Recovering,
            State::Terminated,
            Reason::RecoveryWindowExceeded,
            2,
            0,
        );
        leave.now = t0 + policy.recovery_window + Duration::from_millis(1);

        inv.observe(&leave);

        assert_eq!(inv.last_violation(), Some(Violation::RecoveryTooLong));
    }

    #[test]
    fn rebinds_beyond_the_budget_are_counted() {
        let policy = Policy {
            switch_budget_burst: 1,
            ..Policy::default()
        };
        let mut inv = Invariants::counting_only(&policy);
        let mut version = 0;
        let mut epoch = 0;
        for _ in 0..2 {
            version += 1;
            inv.observe(&obs(
                State::Attached,
                State::Recovering,
                Reason::TransportDead,
                version,
                epoch,
            ));
            version += 1;
            epoch += 1;
            inv.observe(&obs(
                State::Recovering,
                State::Attached,
                Reason::ReattachAccepted,
                version,
                epoch,
            ));
        }

        assert_eq!(inv.violations(), 1);
        assert_eq!(inv.last_violation(), Some(Violation::SwitchBudget));
    }

    #[test]
    fn leaving_terminated_is_counted() {
        let mut inv = Invariants::counting_only(&Policy::default());
        inv.observe(&obs(State::Birth, State::Terminated, Reason::Closed, 1, 0));

        inv.observe(&obs(
            State::Terminated,
            State::Attached,
            Reason::HandshakeComplete,
            2,
            1,
        ));

        assert!(inv.violations() >= 1);
        assert_eq!(inv.last_violation(), Some(Violation::LeftTerminated));
    }
}
