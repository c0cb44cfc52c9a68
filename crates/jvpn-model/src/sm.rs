//! The session state machine of the model, driven by jvpn-session's own transition table.
//!
//! Every state change in the model goes through [`Sm::transition`] (client) or
//! [`transition_is_legal`] (store record), which ask `jvpn_session::is_allowed` and
//! `jvpn_session::is_rebind`: the model cannot take a transition the real table forbids, and a
//! change to the table changes the model.

use jvpn_session::{Reason, State, is_allowed, is_rebind};

/// One session state machine: state, version (one per transition), binding epoch.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sm {
    /// The current state.
    pub state: State,
    /// Strictly increasing, + 1 per transition.
    pub version: u8,
    /// + 1 per rebind (`BIRTH → ATTACHED`, `RECOVERING → ATTACHED`).
    pub epoch: u8,
    /// The reason of the last transition.
    pub last_reason: Option<Reason>,
    /// Ghost: some code asked for a transition the table forbids (it was refused).
    pub illegal: bool,
    /// Ghost: the machine has been TERMINATED once (it must stay so).
    pub was_terminated: bool,
}

impl Sm {
    /// A machine in BIRTH.
    pub const fn new() -> Self {
        Sm {
            state: State::Birth,
            version: 0,
            epoch: 0,
            last_reason: None,
            illegal: false,
            was_terminated: false,
        }
    }

    /// Takes `state → to` for `reason` if the table allows it; otherwise records the attempt in
    /// the ghost flag `illegal` and changes nothing. Returns whether it moved.
    pub fn transition(&mut self, to: State, reason: Reason) -> bool {
        if !is_allowed(self.state, to, reason) {
            self.illegal = true;
            return false;
        }
        if is_rebind(self.state, to) {
            self.epoch = self.epoch.saturating_add(1);
        }
        self.version = self.version.saturating_add(1);
        self.state = to;
        self.last_reason = Some(reason);
        if to.is_terminated() {
            self.was_terminated = true;
        }
        true
    }
}

impl Default for Sm {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether the store may replace a record in state `from` (epoch `from_epoch`) by one in state
/// `to` (epoch `to_epoch`): a listed transition with its reason and the epoch rule, or (no
/// reason) the same non-final state and epoch.
pub fn transition_is_legal(
    from: State,
    from_epoch: u8,
    to: State,
    to_epoch: u8,
    reason: Option<Reason>,
) -> bool {
    match reason {
        Some(reason) => {
            let expected_epoch = if is_rebind(from, to) {
                from_epoch.saturating_add(1)
            } else {
                from_epoch
            };
            is_allowed(from, to, reason) && to_epoch == expected_epoch
        }
        None => from == to && !from.is_terminated() && from_epoch == to_epoch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transition_the_table_forbids_is_refused_and_flagged() {
        let mut sm = Sm::new();

        let moved = sm.transition(State::Recovering, Reason::TransportDead);

        assert!(!moved);
        assert!(sm.illegal);
        assert_eq!((sm.state, sm.version, sm.epoch), (State::Birth, 0, 0));
    }

    #[test]
    fn a_rebind_bumps_the_epoch_and_every_transition_the_version() {
        let mut sm = Sm::new();

        assert!(sm.transition(State::Attached, Reason::HandshakeComplete));
        assert!(sm.transition(State::Recovering, Reason::TransportDead));
        assert!(sm.transition(State::Attached, Reason::ReattachAccepted));

        assert_eq!((sm.version, sm.epoch), (3, 2));
        assert!(!sm.illegal);
    }

    #[test]
    fn nothing_leaves_terminated() {
        let mut sm = Sm::new();
        assert!(sm.transition(State::Terminated, Reason::HandshakeTimeout));

        let moved = sm.transition(State::Attached, Reason::HandshakeComplete);

        assert!(!moved);
        assert!(sm.was_terminated && sm.illegal);
        assert_eq!(sm.state, State::Terminated);
    }

    #[test]
    fn the_store_refuses_a_rebind_without_its_epoch_bump() {
        let with_bump = transition_is_legal(
            State::Recovering,
            1,
            State::Attached,
            2,
            Some(Reason::ReattachAccepted),
        );
        let without_bump = transition_is_legal(
            State::Recovering,
            1,
            State::Attached,
            1,
            Some(Reason::ReattachAccepted),
        );

        assert!(with_bump);
        assert!(!without_bump);
    }

    #[test]
    fn a_write_without_a_reason_must_keep_a_live_state() {
        assert!(transition_is_legal(
            State::Recovering,
            1,
            State::Recovering,
            1,
            None
        ));
        assert!(!transition_is_legal(
            State::Recovering,
            1,
            State::Attached,
            2,
            None
        ));
        assert!(!transition_is_legal(
            State::Terminated,
            1,
            State::Terminated,
            1,
            None
        ));
    }
}
