//! What each timer does when it fires.

use std::time::Instant;

use jvpn_wire::ControlMessage;

use super::{RoleState, Session};
use crate::{Reason, State, TimerKind};

impl Session {
    pub(super) fn run_timers(&mut self, now: Instant) {
        for kind in self.timers.expired(now) {
            if self.sm.state().is_terminated() {
                break;
            }
            // A shell wakes at or after a deadline, never exactly on it. Limits that end the
            // session take effect at their deadline, so the record says when the limit was
            // reached, not when the process noticed (found by fuzzing: late timers made
            // RECOVERING look longer than the recovery window).
            let due = self.timers.get(kind).map_or(now, |at| at.min(now));
            // Fired timers are one-shot; handlers re-arm what must repeat.
            self.timers.stop(kind);
            self.on_timer(kind, now, due);
        }
    }

    fn on_timer(&mut self, kind: TimerKind, now: Instant, due: Instant) {
        let state = self.sm.state();
        match kind {
            TimerKind::HandshakeTimeout => {
                if state == State::Birth {
                    self.terminate(Reason::HandshakeTimeout, due);
                }
            }
            TimerKind::RecoveryDeadline => {
                if state == State::Recovering {
                    self.terminate(Reason::RecoveryWindowExceeded, due);
                }
            }
            TimerKind::DeadPeer => {
                if state.is_bound() {
                    match self.role {
                        RoleState::Client(_) => {
                            let path = self.bound_path().unwrap_or(self.path);
                            self.start_rebind(path, Reason::TransportDead, now);
                        }
                        RoleState::Server(_) => self.enter_recovering(Reason::TransportDead, now),
                    }
                }
            }
            TimerKind::KeyExpiry => self.on_key_expiry(now),
            TimerKind::HandshakeRetry => {
                // BIRTH: the next initiation; bound: the rekey's; RECOVERING: the lost-session
                // probe (a resume a server that lost the session answers with a new id).
                // A failure re-arms the retry inside; nothing else to do.
                let _ = self.start_handshake(now);
            }
            TimerKind::Reattach => self.on_reattach_timer(now),
            TimerKind::Rekey => self.start_rekey(now),
            TimerKind::PreviousKeyExpiry => {
                self.keys.expire_graces(now);
                if let Some(until) = self.keys.next_grace_end() {
                    self.timers.set(TimerKind::PreviousKeyExpiry, until);
                }
            }
            TimerKind::Keepalive => {
                if state.is_bound() {
                    self.control_out.push_back(ControlMessage::Keepalive);
                    self.timers
                        .set(TimerKind::Keepalive, now + self.policy.keepalive_interval);
                }
            }
        }
    }

    /// Bound → RECOVERING: the binding is released, the recovery deadline armed. (A client
    /// gets here through `start_rebind`, which then sends the REATTACH_INIT.)
    pub(super) fn enter_recovering(&mut self, reason: Reason, now: Instant) {
        if !self.transition(State::Recovering, reason, now) {
            return;
        }
        self.timers.stop(TimerKind::Keepalive);
        self.timers.stop(TimerKind::Rekey);
        self.timers.stop(TimerKind::DeadPeer);
        self.control_out.clear();
        match self.sm.recovery_deadline() {
            Some(deadline) => self.timers.set(TimerKind::RecoveryDeadline, deadline),
            None => self.terminate(Reason::RecoveryWindowExceeded, now),
        }
    }

    /// The current key reached its hard age: it is never used again.
    fn on_key_expiry(&mut self, now: Instant) {
        self.keys.drop_all();
        self.timers.stop(TimerKind::PreviousKeyExpiry);
        let bound = self.sm.state().is_bound();
        match self.role {
            // A client can always rekey; dead-peer detection covers a server that no longer
            // answers.
            RoleState::Client(_) if bound => self.start_rekey(now),
            // A server cannot start a handshake: a bound session without keys is useless.
            RoleState::Server(_) if bound => self.terminate(Reason::KeyExhausted, now),
            _ => {}
        }
    }
}
