//! The server role: sessions created and resumed by an `Endpoint`'s handshakes.

use std::time::Instant;

use jvpn_wire::{DataKeys, PublicKey, SessionId};

use super::keys::{ActiveKeys, KeyLimits};
use super::{RoleState, Session};
use crate::{ClockAnchor, PathId, Policy, Reason, State, TimerKind};

/// What only a server session holds.
#[derive(Debug, Default)]
pub(crate) struct ServerRole {
    /// A RekeyRequest was sent for the current send key.
    pub(crate) rekey_requested: bool,
    /// The client has proven it holds the current keys (a frame opened under them). Until
    /// then the server queues data instead of sending it: if the handshake response was lost,
    /// the client will start over and anything sent under these keys would be lost with them
    /// (WireGuard's responder waits for the initiator's first packet for the same reason).
    pub(crate) keys_confirmed: bool,
}

/// How the endpoint answers a valid resume (`resume: Some(id)`) of a live session.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum ResumePlan {
    /// Same path, still bound: new keys, same binding, same epoch, no transition.
    Rekey,
    /// Another path or not bound: a new binding, epoch + 1 (a switch-budget token is taken).
    Rebind,
    /// The switch budget is exhausted: the session was terminated; send no response.
    Refuse,
}

/// What a new server session starts from (a completed handshake).
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) peer_static: PublicKey,
    pub(crate) session_id: SessionId,
    pub(crate) keys: DataKeys,
    pub(crate) response: Vec<u8>,
    pub(crate) path: PathId,
}

impl Session {
    /// A server session for a completed first handshake: BIRTH → ATTACHED
    /// (`HandshakeComplete`) on the path the initiation came from, the response queued.
    pub(crate) fn accept(
        policy: &Policy,
        clock: ClockAnchor,
        limits: KeyLimits,
        accepted: Accepted,
        now: Instant,
    ) -> Session {
        let role = RoleState::Server(ServerRole::default());
        let mut session = Session::base(
            role,
            policy.clone(),
            clock,
            accepted.path,
            accepted.peer_static,
        );
        session.limits = limits;
        session.session_id = Some(accepted.session_id);
        let peer = *accepted.peer_static.as_bytes();
        if session
            .sm
            .set_identity(&accepted.session_id.0, peer)
            .is_err()
        {
            // A fresh machine has no identity yet: unreachable, but never a panic.
            session.terminate(Reason::PolicyViolation, now);
            return session;
        }
        session
            .keys
            .install(ActiveKeys::new(accepted.keys, now), None);
        session.handshake_out = Some((accepted.path, accepted.response));
        session.after_handshake(now);
        session.rebind(accepted.path, now);
        session
    }

    /// Decides how to answer a resume that arrived on `path`. A rebind takes a switch-budget
    /// token now; without one the session ends (`SwitchBudgetExhausted`) and the plan is
    /// `Refuse`.
    pub(crate) fn plan_resume(&mut self, path: PathId, now: Instant) -> ResumePlan {
        let state = self.sm.state();
        if state.is_bound() && self.bound_path() == Some(path) {
            return ResumePlan::Rekey;
        }
        if self.sm.try_take_switch(now) {
            return ResumePlan::Rebind;
        }
        if state.is_bound() {
            self.transition(State::Recovering, Reason::ReattachRequested, now);
        }
        self.terminate(Reason::SwitchBudgetExhausted, now);
        ResumePlan::Refuse
    }

    /// Applies a resume planned by [`plan_resume`](Self::plan_resume) and queues the response.
    pub(crate) fn accept_resume(
        &mut self,
        plan: ResumePlan,
        keys: DataKeys,
        response: Vec<u8>,
        path: PathId,
        now: Instant,
    ) {
        let keys = ActiveKeys::new(keys, now);
        match plan {
            ResumePlan::Refuse => return,
            ResumePlan::Rekey => {
                // The client may not have the response yet: keep sending under the current
                // keys until it proves it has the new ones.
                self.keys.stage_next(keys);
            }
            ResumePlan::Rebind => {
                if self.sm.state().is_bound() {
                    // Every new binding passes through RECOVERING, so the epoch rule stays
                    // "one rebind, one epoch".
                    self.enter_recovering(Reason::ReattachRequested, now);
                }
                if self.sm.state() != State::Recovering {
                    return;
                }
                self.keys.install(keys, None);
                if let RoleState::Server(server) = &mut self.role {
                    server.rekey_requested = false;
                    server.keys_confirmed = false;
                }
                self.timers.stop(TimerKind::RecoveryDeadline);
                self.path = path;
                self.after_handshake(now);
                self.rebind(path, now);
            }
        }
        self.handshake_out = Some((path, response));
    }
}
