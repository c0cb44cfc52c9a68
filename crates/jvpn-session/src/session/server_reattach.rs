//! Server: staging a reattach the endpoint accepted, and committing it on PATH_CONFIRM.

use std::time::Instant;

use jvpn_wire::control::PATH_TOKEN_LEN;
use jvpn_wire::frame::DataPacket;
use jvpn_wire::{ControlMessage, MessageType};

use super::record::{Pending, ResumptionRecord};
use super::snapshot::Snapshot;
use super::{DropReason, Inbound, RoleState, Session};
use crate::{PathId, Reason, State, TimerKind};

impl Session {
    /// Server: the resumption record.
    pub(crate) fn record_mut(&mut self) -> Option<&mut ResumptionRecord> {
        match &mut self.role {
            RoleState::Server(server) => server.record.as_deref_mut(),
            RoleState::Client(_) => None,
        }
    }

    /// Server: the last time the ownership store confirmed this node's ownership.
    pub(crate) fn store_ok_at(&self) -> Option<std::time::Instant> {
        match &self.role {
            RoleState::Server(server) => server.record.as_ref().and_then(|r| r.store_ok_at),
            RoleState::Client(_) => None,
        }
    }

    /// Server: takes the queued handshake-layer answers (an adopted session that is forgotten
    /// hands its authenticated error status to the endpoint to send).
    pub(crate) fn take_handshake_frames(&mut self) -> Vec<(PathId, Vec<u8>)> {
        self.handshake_out.drain(..).collect()
    }

    /// Server: whether the state and the switch budget allow a reattach now (no token taken:
    /// the commit takes it).
    pub(crate) fn reattach_allowed(&mut self, now: Instant) -> bool {
        let state = self.sm.state();
        (state.is_bound() || state == State::Recovering) && self.sm.switch_available(now)
    }

    /// Server: the end of the recovery window as the REATTACH_RESP states it (ms since the Unix
    /// epoch): the current deadline while RECOVERING, else a full window from now.
    pub(crate) fn recovery_deadline_unix_ms(&self, now: Instant) -> u64 {
        let at = self
            .sm
            .recovery_deadline()
            .unwrap_or(now + self.policy.recovery_window);
        self.clock.unix_ms_at(at)
    }

    /// Counts a drop the endpoint decided on this session's behalf.
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.stats.drops.count(reason);
    }

    /// Server: queues a handshake-layer answer (a REATTACH_RESP with an error status).
    pub(crate) fn queue_handshake(&mut self, path: PathId, frame: Vec<u8>) {
        self.handshake_out.push_back((path, frame));
    }

    /// Server: a reattach was answered OK. Its keys wait for PATH_CONFIRM; until then nothing
    /// but `response` goes to `pending.path`, and the old binding (if any) stays as it is.
    /// A newer reattach replaces an older pending one.
    pub(crate) fn stage_reattach(&mut self, pending: Pending, response: Vec<u8>) {
        let path = pending.path;
        let RoleState::Server(server) = &mut self.role else {
            return;
        };
        let Some(record) = server.record.as_deref_mut() else {
            return;
        };
        if let Some(old) = record.pending.replace(pending) {
            self.keys.retire_index(old.keys.recv.local_index());
        }
        self.handshake_out.push_back((path, response));
    }

    /// Server: a frame under the keys of a pending reattach. Only a PATH_CONFIRM on the pending
    /// path that echoes the challenge is accepted; it makes the commit ready
    /// ([`take_confirm_ready`](Self::take_confirm_ready)): the endpoint claims the record
    /// (CAS #2) and only then commits the binding. `None`: the frame is not for the pending
    /// keys.
    pub(super) fn try_pending_frame(
        &mut self,
        path: PathId,
        buf: &mut [u8],
        _now: Instant,
    ) -> Option<Inbound> {
        let index = DataPacket::new_checked(&*buf).ok()?.receiver_index();
        let RoleState::Server(server) = &mut self.role else {
            return None;
        };
        let pending = server.record.as_deref_mut()?.pending.as_mut()?;
        if pending.keys.recv.local_index() != index {
            return None;
        }
        if pending.path != path {
            return Some(Inbound::Dropped(DropReason::WrongPath));
        }
        let (ty, range) = match pending.keys.recv.open(buf) {
            Ok(opened) => opened,
            Err(_) => return Some(Inbound::Dropped(DropReason::AuthenticationFailed)),
        };
        let confirm = match (ty, ControlMessage::parse(&buf[range])) {
            (
                MessageType::Control,
                Ok(ControlMessage::PathConfirm {
                    response,
                    challenge,
                }),
            ) if response == pending.challenge => challenge,
            // Data or anything else before the confirmation: the binding is not committed.
            _ => return Some(Inbound::Dropped(DropReason::NotAttached)),
        };
        if let Some(record) = server.record.as_deref_mut() {
            record.confirm_ready = Some(confirm);
        }
        Some(Inbound::Consumed)
    }

    /// Server: the client's challenge of a PATH_CONFIRM that proved the pending reattach, if
    /// one arrived since the last call. The caller claims the record, then calls
    /// [`commit_reattach`](Self::commit_reattach) or ends the session.
    pub(crate) fn take_confirm_ready(&mut self) -> Option<[u8; PATH_TOKEN_LEN]> {
        self.record_mut()?.confirm_ready.take()
    }

    /// Server: the snapshot the commit of the pending reattach will leave: `RS'` current, the
    /// token floor past every older batch, epoch + 1, the version after the commit's
    /// transitions, a validated binding. `None` if nothing is pending or the switch budget
    /// would refuse the commit.
    pub(crate) fn snapshot_after_commit(&mut self, now: Instant) -> Option<Snapshot> {
        if !self.sm.switch_available(now) || self.sm.state().is_terminated() {
            return None;
        }
        let transitions = if self.sm.state().is_bound() { 2 } else { 1 };
        let record = self.record_mut()?.snapshot_after_commit()?;
        let mut snapshot = self.snapshot(true)?;
        snapshot.record = record;
        snapshot.epoch = snapshot.epoch.saturating_add(1);
        snapshot.sm_version = snapshot.sm_version.saturating_add(transitions);
        snapshot.recovery_deadline_unix_ms = None;
        Some(snapshot)
    }

    /// Server: PATH_CONFIRM proved keys and path and the record is claimed: epoch + 1, fresh
    /// keys current, the old keys fenced, `RS'` current, PATH_RESPONSE queued.
    pub(crate) fn commit_reattach(&mut self, client_challenge: [u8; PATH_TOKEN_LEN], now: Instant) {
        let RoleState::Server(server) = &mut self.role else {
            return;
        };
        let Some(record) = server.record.as_deref_mut() else {
            return;
        };
        let Some(pending) = record.commit() else {
            return;
        };
        record.confirmed = Some((pending.challenge, client_challenge));
        server.rekey_requested = false;
        // The PATH_CONFIRM opened under these keys: the client holds them.
        server.keys_confirmed = true;
        if !self.sm.try_take_switch(now) {
            self.terminate(Reason::SwitchBudgetExhausted, now);
            return;
        }
        if self.sm.state().is_bound() {
            // Every new binding passes through RECOVERING: one rebind, one epoch.
            self.enter_recovering(Reason::ReattachRequested, now);
        }
        if self.sm.state() != State::Recovering {
            return;
        }
        self.keys
            .install_fencing(pending.keys, now + self.policy.rekey_grace);
        self.timers.stop(TimerKind::RecoveryDeadline);
        self.path = pending.path;
        self.after_handshake(now);
        self.rebind(pending.path, now);
        self.control_out.push_back(ControlMessage::PathResponse {
            response: client_challenge,
        });
    }

    /// Server: a PATH_CONFIRM under the current keys — the client resent it because our
    /// PATH_RESPONSE was lost. Answer it again if it is the committed one.
    pub(super) fn on_repeated_path_confirm(
        &mut self,
        response: [u8; PATH_TOKEN_LEN],
        challenge: [u8; PATH_TOKEN_LEN],
    ) {
        let confirmed = match &self.role {
            RoleState::Server(server) => server.record.as_ref().and_then(|r| r.confirmed),
            RoleState::Client(_) => None,
        };
        if confirmed == Some((response, challenge)) {
            self.control_out.push_back(ControlMessage::PathResponse {
                response: challenge,
            });
        }
    }
}
