//! The state machine: current state, version, binding epoch, identity; every move checked
//! against [`TRANSITIONS`](crate::TRANSITIONS) and the invariants.

use std::time::Instant;

use crate::budget::SwitchBudget;
use crate::invariants::{Invariants, Observation, Violation};
use crate::{AuditRecord, ClockAnchor, PathId, Policy, Reason, State, state};

/// Where and when a transition happens (what its audit record will carry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitionCtx {
    /// Monotonic time of the transition.
    pub now: Instant,
    /// Wall time of the transition, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// The path involved; for a rebind, the new binding's path.
    pub path: Option<PathId>,
    /// The transport kind of that path (`"udp"`, …), if known.
    pub transport: Option<String>,
}

impl TransitionCtx {
    /// A context at `now`, with wall time from `clock`, no path and no transport.
    pub fn new(now: Instant, clock: &ClockAnchor) -> Self {
        TransitionCtx {
            now,
            unix_ms: clock.unix_ms_at(now),
            path: None,
            transport: None,
        }
    }

    /// The same context naming `path`.
    pub fn with_path(mut self, path: PathId) -> Self {
        self.path = Some(path);
        self
    }

    /// The same context naming the transport kind.
    pub fn with_transport(mut self, transport: impl Into<String>) -> Self {
        self.transport = Some(transport.into());
        self
    }
}

/// A `(from, to, reason)` that [`TRANSITIONS`](crate::TRANSITIONS) does not list. The state
/// machine is unchanged. This is a bug in the caller's logic: report it; do not retry.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition {from} -> {to} ({reason}): not in the transition table")]
pub struct IllegalTransition {
    /// The current state.
    pub from: State,
    /// The requested state.
    pub to: State,
    /// The reason given.
    pub reason: Reason,
}

/// The session id or the peer's static key was already set to a different value. They never
/// change after BIRTH; the state machine kept the old values. A session that sees this must
/// not continue: terminate it (`PolicyViolation`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the session identity is already set and cannot change")]
pub struct IdentityChanged;

/// The active binding: the one path a session's data goes to, and the epoch it was made in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The bound path (`None` if the rebind named no path).
    pub path: Option<PathId>,
    /// The epoch this binding was made in (equals the machine's epoch while it exists).
    pub epoch: u64,
}

/// The six-state machine of one session.
///
/// - [`transition`](Self::transition) moves along one row of the table or returns
///   [`IllegalTransition`] and changes nothing;
/// - a move BIRTH → ATTACHED or RECOVERING → ATTACHED is a *rebind*: the epoch goes up by
///   one (the first binding is epoch 1) and `ctx.path` becomes the [`Binding`];
/// - leaving the bound states (ATTACHED, VOLATILE, DEGRADED) drops the binding;
/// - the version goes up by one with every transition (the first transition yields 1);
/// - after every transition the invariants are checked ([`violations`](Self::violations)).
#[derive(Clone, Debug)]
pub struct StateMachine {
    state: State,
    version: u64,
    epoch: u64,
    binding: Option<Binding>,
    session_id: Option<String>,
    peer_static: Option<[u8; 32]>,
    entered_at: Option<Instant>,
    last_reason: Option<Reason>,
    recovery_window: std::time::Duration,
    budget: SwitchBudget,
    invariants: Invariants,
}

impl StateMachine {
    /// A machine in BIRTH, version 0, epoch 0, no identity, sized by `policy`.
    pub fn new(policy: &Policy) -> Self {
        Self::with_invariants(policy, Invariants::new(policy))
    }

    fn with_invariants(policy: &Policy, invariants: Invariants) -> Self {
        StateMachine {
            state: State::Birth,
            version: 0,
            epoch: 0,
            binding: None,
            session_id: None,
            peer_static: None,
            entered_at: None,
            last_reason: None,
            recovery_window: policy.recovery_window,
            budget: SwitchBudget::from_policy(policy),
            invariants,
        }
    }

    /// A machine that continues a session another node (or this node before a restart)
    /// carried: RECOVERING since `recovering_since`, at `version` and `epoch`, with the
    /// session's identity set. No transition is recorded for the restore itself; the next one
    /// is `version + 1`, so versions only increase across nodes (the ownership store carries
    /// them in the session snapshot).
    pub fn restore_recovering(
        policy: &Policy,
        version: u64,
        epoch: u64,
        session_id: &[u8],
        peer_static: [u8; 32],
        recovering_since: Instant,
    ) -> Self {
        let hex = to_hex(session_id);
        let invariants =
            Invariants::restored(policy, version, epoch, &hex, peer_static, recovering_since);
        let mut machine = Self::with_invariants(policy, invariants);
        machine.state = State::Recovering;
        machine.version = version;
        machine.epoch = epoch;
        machine.session_id = Some(hex);
        machine.peer_static = Some(peer_static);
        machine.entered_at = Some(recovering_since);
        machine
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The number of transitions so far (0 in a new machine).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The binding epoch: 0 before the first binding, then + 1 per rebind.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The active binding, present exactly in ATTACHED, VOLATILE and DEGRADED.
    pub fn binding(&self) -> Option<Binding> {
        self.binding
    }

    /// The session id in lowercase hex, once set.
    pub fn session_id_hex(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The peer's static public key, once set.
    pub fn peer_static(&self) -> Option<&[u8; 32]> {
        self.peer_static.as_ref()
    }

    /// The reason of the last transition (`None` in a new machine).
    pub fn last_reason(&self) -> Option<Reason> {
        self.last_reason
    }

    /// When the current state was entered (`None` in the initial BIRTH).
    pub fn entered_at(&self) -> Option<Instant> {
        self.entered_at
    }

    /// In RECOVERING: the instant at which the recovery window ends.
    pub fn recovery_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Recovering => self
                .entered_at
                .and_then(|at| at.checked_add(self.recovery_window)),
            _ => None,
        }
    }

    /// Sets the session id and the peer's static key, once. Setting the same values again is
    /// a no-op; different values are refused (and counted as an invariant violation).
    pub fn set_identity(
        &mut self,
        session_id: &[u8],
        peer_static: [u8; 32],
    ) -> Result<(), IdentityChanged> {
        let hex = to_hex(session_id);
        match (&self.session_id, &self.peer_static) {
            (None, None) => {
                self.session_id = Some(hex);
                self.peer_static = Some(peer_static);
                Ok(())
            }
            (Some(id), Some(key)) if *id == hex && *key == peer_static => Ok(()),
            _ => {
                self.invariants.identity_change_attempted();
                Err(IdentityChanged)
            }
        }
    }

    /// Whether a switch-budget token is available at `now` (none is taken).
    pub fn switch_available(&mut self, now: Instant) -> bool {
        self.budget.available(now) > 0
    }

    /// Takes one switch-budget token at `now` (call before accepting a rebind out of
    /// RECOVERING; with `false`, terminate with `SwitchBudgetExhausted` instead).
    pub fn try_take_switch(&mut self, now: Instant) -> bool {
        self.budget.try_take(now)
    }

    /// Moves to `to` for `reason`, or refuses with [`IllegalTransition`] leaving everything
    /// unchanged. Returns the audit record of the move.
    pub fn transition(
        &mut self,
        to: State,
        reason: Reason,
        ctx: TransitionCtx,
    ) -> Result<AuditRecord, IllegalTransition> {
        let from = self.state;
        if !state::is_allowed(from, to, reason) {
            return Err(IllegalTransition { from, to, reason });
        }
        self.state = to;
        self.version = self.version.saturating_add(1);
        self.entered_at = Some(ctx.now);
        self.last_reason = Some(reason);
        if state::is_rebind(from, to) {
            self.epoch = self.epoch.saturating_add(1);
            self.binding = Some(Binding {
                path: ctx.path,
                epoch: self.epoch,
            });
        } else if !to.is_bound() {
            self.binding = None;
        }
        self.invariants.observe(&Observation {
            from,
            to,
            reason,
            version: self.version,
            epoch: self.epoch,
            binding_epoch: self.binding.map(|b| b.epoch),
            session_id: self.session_id.as_deref(),
            peer_static: self.peer_static.as_ref(),
            now: ctx.now,
        });
        Ok(AuditRecord {
            session_id: self.session_id.clone(),
            version: self.version,
            from,
            to,
            reason,
            epoch: self.epoch,
            path: ctx.path,
            transport: ctx.transport,
            unix_ms: ctx.unix_ms,
            at: Some(ctx.now),
        })
    }

    /// Binds the session to `path`: BIRTH → ATTACHED (`HandshakeComplete`, epoch 1) or
    /// RECOVERING → ATTACHED (`ReattachAccepted`, epoch + 1). From any other state it is
    /// an [`IllegalTransition`].
    pub fn rebind(
        &mut self,
        path: PathId,
        ctx: TransitionCtx,
    ) -> Result<AuditRecord, IllegalTransition> {
        let reason = match self.state {
            State::Birth => Reason::HandshakeComplete,
            _ => Reason::ReattachAccepted,
        };
        self.transition(State::Attached, reason, ctx.with_path(path))
    }

    /// The number of invariant violations seen so far (0 unless there is a bug).
    pub fn violations(&self) -> u64 {
        self.invariants.violations()
    }

    /// The last invariant violated, if any.
    pub fn last_violation(&self) -> Option<Violation> {
        self.invariants.last_violation()
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests;
