//! Client: the authenticated REATTACH (docs/protocol.md §13) — moving a live session to a path.
//!
//! `start_rebind` leaves the bound state (RECOVERING) and sends REATTACH_INIT on the chosen
//! path, a fresh attempt every `Policy::reattach_retry`. An OK REATTACH_RESP installs fresh
//! keys, queues PATH_CONFIRM as the first frame under them (resent until PATH_RESPONSE) and
//! binds the session there (ATTACHED, `ReattachAccepted`, epoch + 1).

use std::collections::VecDeque;
use std::time::Instant;

use jvpn_wire::control::PATH_TOKEN_LEN;
use jvpn_wire::payload::PATH_CHALLENGE_LEN;
use jvpn_wire::{
    ControlMessage, REATTACH_INIT_LEN, ReattachError, ReattachInitPayload, ReattachInitiator,
    ReattachStatus, ResumptionGrant, ResumptionSecret, TOKEN_LEN, resumption_psk,
};

use super::keys::ActiveKeys;
use super::{DropReason, Inbound, RoleState, Session};
use crate::{PathId, Reason, State, TimerKind};

/// The resumption secret and tokens the client reattaches with.
struct ClientGrant {
    rs: ResumptionSecret,
    psk_epoch: u64,
    /// Unused tokens, lowest sequence first.
    tokens: VecDeque<[u8; TOKEN_LEN]>,
    /// The last token used: reused (linkable, but still accepted until a reattach commits)
    /// when every fresh one went into attempts that were lost.
    last: Option<[u8; TOKEN_LEN]>,
}

/// One REATTACH_INIT in flight.
struct Attempt {
    initiator: ReattachInitiator,
    path: PathId,
    psk_epoch: u64,
}

/// The client's reattach state.
#[derive(Default)]
pub(crate) struct ClientReattach {
    grant: Option<ClientGrant>,
    /// The last reattach counter sent (strictly increasing per session).
    rc: u64,
    attempt: Option<Attempt>,
    /// Server time minus our clock, learned from a CLOCK answer, in nanoseconds.
    clock_offset_nanos: i128,
    /// PATH_CONFIRM sent and not yet answered: `(response, our challenge)`.
    confirm: Option<([u8; PATH_TOKEN_LEN], [u8; PATH_TOKEN_LEN])>,
    /// Transport codes of the paths the runtime named (`set_path_kind`).
    path_kinds: std::collections::BTreeMap<PathId, u8>,
}

impl ClientReattach {
    /// A first-attach or rekey response brought a grant: it replaces the tokens held.
    pub(super) fn store_grant(&mut self, grant: ResumptionGrant) {
        self.grant = Some(ClientGrant {
            rs: grant.resumption_secret,
            psk_epoch: grant.psk_epoch,
            tokens: grant.tokens.into_iter().collect(),
            last: None,
        });
    }

    fn next_token(&mut self) -> Option<(ResumptionSecret, u64, [u8; TOKEN_LEN])> {
        let grant = self.grant.as_mut()?;
        let token = grant.tokens.pop_front().or(grant.last)?;
        grant.last = Some(token);
        Some((grant.rs.clone(), grant.psk_epoch, token))
    }
}

/// The transport code carried in REATTACH_INIT for a path kind name (0: unknown).
pub(crate) fn transport_code(kind: &str) -> u8 {
    match kind {
        "udp" => 1,
        "quic" => 2,
        "wss" => 3,
        _ => 0,
    }
}

/// The name of a transport code, if it names one.
pub(crate) fn transport_name(code: u8) -> Option<&'static str> {
    match code {
        1 => Some("udp"),
        2 => Some("quic"),
        3 => Some("wss"),
        _ => None,
    }
}

impl Session {
    /// Client: moves the session to `path` with an authenticated reattach. If bound, the
    /// session goes RECOVERING for `reason` (`TransportDead`, `PlannedSwitch`, …) first; then
    /// REATTACH_INIT goes out on `path` and is retried every `Policy::reattach_retry` until
    /// answered or the recovery window ends. Without a grant the session cannot reattach: it
    /// ends with `SessionLost` (the runtime starts a new BIRTH). No effect in BIRTH (beyond
    /// choosing the path of the next initiations), TERMINATED, or on a server session.
    pub(crate) fn start_rebind(&mut self, path: PathId, reason: Reason, now: Instant) {
        let RoleState::Client(client) = &mut self.role else {
            return;
        };
        let state = self.sm.state();
        if state == State::Birth {
            self.path = path;
            return;
        }
        if state.is_terminated() {
            return;
        }
        // Already recovering towards this path with an attempt out: its retry timers carry
        // it. Starting over on every call would re-arm them forever (a caller that asks again
        // on each turn would starve both the reattach retry and the lost-session probe).
        if state == State::Recovering
            && self.path == path
            && client.reattach.attempt.is_some()
            && self.timers.is_set(TimerKind::HandshakeRetry)
        {
            return;
        }
        // A rekey in flight belongs to the binding being left.
        client.abandon_handshake();
        client.reattach.confirm = None;
        if state.is_bound() {
            self.enter_recovering(reason, now);
        }
        self.path = path;
        if self.sm.state() == State::Recovering {
            self.send_reattach(now);
            // The lost-session probe: a resume HANDSHAKE_INIT every `handshake_retry`. A server
            // that restarted cannot open our tokens and stays silent to REATTACH_INIT, but
            // answers a resume with a new session id: the session ends `SessionLost` at once
            // (the runtime starts a new BIRTH) instead of at the recovery deadline. A server
            // that has the session refuses the resume (it never moves a binding).
            if !self.timers.is_set(TimerKind::HandshakeRetry) {
                self.timers
                    .set(TimerKind::HandshakeRetry, now + self.policy.handshake_retry);
            }
        }
    }

    /// Client: names the transport kind of `path` (carried in REATTACH_INIT so the server's
    /// policy can check it). Unknown paths are sent as code 0.
    pub(crate) fn set_path_kind(&mut self, path: PathId, kind: &str) {
        if let RoleState::Client(client) = &mut self.role {
            client
                .reattach
                .path_kinds
                .insert(path, transport_code(kind));
        }
    }

    /// Client, RECOVERING: one new REATTACH_INIT on `self.path`; arms the retry.
    fn send_reattach(&mut self, now: Instant) {
        let retry_at = now + self.policy.reattach_retry;
        let last_epoch_seen = self.sm.epoch();
        let path = self.path;
        let local_nanos = i128::from(self.clock.unix_nanos_at(now));
        let session_id = self.session_id;
        let RoleState::Client(client) = &mut self.role else {
            return;
        };
        let (Some(session_id), Some((rs, psk_epoch, token))) =
            (session_id, client.reattach.next_token())
        else {
            self.terminate(Reason::SessionLost, now);
            return;
        };
        self.timers.set(TimerKind::Reattach, retry_at);
        let r = &mut client.reattach;
        r.rc = r.rc.saturating_add(1);
        let unix_nanos = local_nanos.saturating_add(r.clock_offset_nanos);
        let payload = ReattachInitPayload {
            session_id,
            rc: r.rc,
            client_unix_nanos: u64::try_from(unix_nanos.max(0)).unwrap_or(u64::MAX),
            last_epoch_seen,
            last_rx_counter: 0,
            transport_kind: r.path_kinds.get(&path).copied().unwrap_or(0),
            path_id: path.0,
        };
        let psk = resumption_psk(&rs, &session_id, psk_epoch);
        let mut initiator = ReattachInitiator::new(
            &client.local_key,
            &client.server_key,
            &psk,
            &client.prologue,
            &mut client.rng,
        );
        let mut sender_index = 0;
        for _ in 0..8 {
            sender_index = client.rng.next_u32();
            if sender_index != 0 && self.keys.slot_for(sender_index).is_none() {
                break;
            }
        }
        let mut frame = vec![0u8; REATTACH_INIT_LEN];
        // A failure (never expected: fixed sizes) leaves the retry armed.
        if initiator
            .write_init(sender_index, &token, &payload, &mut frame)
            .is_err()
        {
            return;
        }
        client.cookies.stamp(&mut frame, now);
        client.reattach.attempt = Some(Attempt {
            initiator,
            path,
            psk_epoch,
        });
        self.handshake_out.push_back((path, frame));
        self.stats.handshake_messages_sent = self.stats.handshake_messages_sent.saturating_add(1);
    }

    /// Client: the reattach timer — a new attempt while RECOVERING, PATH_CONFIRM again while it
    /// is unanswered.
    pub(super) fn on_reattach_timer(&mut self, now: Instant) {
        let state = self.sm.state();
        let RoleState::Client(client) = &mut self.role else {
            return;
        };
        if state == State::Recovering {
            self.send_reattach(now);
        } else if let (true, Some((response, challenge))) =
            (state.is_bound(), client.reattach.confirm)
        {
            self.control_out.push_front(ControlMessage::PathConfirm {
                response,
                challenge,
            });
            self.timers
                .set(TimerKind::Reattach, now + self.policy.reattach_retry);
        }
    }

    /// Client: REATTACH_RESP.
    pub(super) fn handle_reattach_resp(
        &mut self,
        path: PathId,
        buf: &[u8],
        now: Instant,
    ) -> Inbound {
        let state = self.sm.state();
        let RoleState::Client(client) = &mut self.role else {
            return Inbound::Dropped(DropReason::UnexpectedHandshake);
        };
        let Some(attempt) = client.reattach.attempt.as_ref() else {
            return Inbound::Dropped(DropReason::UnexpectedHandshake);
        };
        if state != State::Recovering {
            return Inbound::Dropped(DropReason::UnexpectedHandshake);
        }
        if let Err(err) = attempt.initiator.check_resp(buf) {
            return Inbound::Dropped(match err {
                ReattachError::Mac1Invalid => DropReason::Mac1Invalid,
                ReattachError::UnexpectedReceiverIndex => DropReason::UnexpectedHandshake,
                _ => DropReason::Malformed,
            });
        }
        if attempt.path != path {
            return Inbound::Dropped(DropReason::WrongPath);
        }
        let Some(attempt) = client.reattach.attempt.take() else {
            return Inbound::Dropped(DropReason::UnexpectedHandshake);
        };
        // On failure the retry timer sends a fresh attempt.
        let Ok(done) = attempt.initiator.read_resp(buf) else {
            return Inbound::Dropped(DropReason::HandshakeFailed);
        };
        let mut resp = done.payload;
        match resp.status {
            ReattachStatus::Ok => {}
            ReattachStatus::Clock => {
                let local = i128::from(self.clock.unix_nanos_at(now));
                client.reattach.clock_offset_nanos = i128::from(resp.server_unix_nanos) - local;
                self.send_reattach(now);
                return Inbound::Consumed;
            }
            ReattachStatus::Superseded => {
                self.terminate(Reason::Superseded, now);
                return Inbound::Consumed;
            }
            ReattachStatus::Expired => {
                self.terminate(Reason::RecoveryWindowExceeded, now);
                return Inbound::Consumed;
            }
            ReattachStatus::Policy => {
                self.terminate(Reason::ReattachRejected, now);
                return Inbound::Consumed;
            }
            // STORE_UNAVAILABLE, REDIRECT (no target yet) and anything newer: the retry timer
            // sends a fresh attempt.
            _ => return Inbound::Consumed,
        }
        if !self.sm.try_take_switch(now) {
            self.terminate(Reason::SwitchBudgetExhausted, now);
            return Inbound::Consumed;
        }
        let mut challenge = [0u8; PATH_CHALLENGE_LEN];
        client.rng.fill_bytes(&mut challenge);
        client.reattach.grant = Some(ClientGrant {
            rs: resp.next_resumption_secret.clone(),
            psk_epoch: attempt.psk_epoch.saturating_add(1),
            tokens: resp.tokens.into_iter().collect(),
            last: None,
        });
        client.reattach.confirm = Some((resp.path_challenge, challenge));
        // A lost-session probe still in flight belongs to no binding: its answer must never
        // install keys as if it were a rekey.
        client.abandon_handshake();
        // A new binding gets fresh keys only: nothing of the old attachment survives.
        self.keys.install(ActiveKeys::new(done.keys, now), None);
        self.store_reset_token(done.peer_index, resp.reset_token.take());
        self.timers.stop(TimerKind::RecoveryDeadline);
        self.timers.stop(TimerKind::HandshakeRetry);
        self.timers
            .set(TimerKind::Reattach, now + self.policy.reattach_retry);
        self.after_handshake(now);
        self.control_out.clear();
        self.control_out.push_front(ControlMessage::PathConfirm {
            response: resp.path_challenge,
            challenge,
        });
        self.path = path;
        self.rebind(path, now);
        Inbound::Consumed
    }

    /// Client: PATH_RESPONSE under the new keys — the server committed and receives on this
    /// path; stop resending PATH_CONFIRM.
    pub(super) fn on_path_response(&mut self, response: [u8; PATH_TOKEN_LEN]) {
        if let RoleState::Client(client) = &mut self.role
            && client
                .reattach
                .confirm
                .is_some_and(|(_, challenge)| challenge == response)
        {
            client.reattach.confirm = None;
            self.timers.stop(TimerKind::Reattach);
        }
    }

    /// Whether the client holds a resumption grant (tests).
    #[cfg(test)]
    pub(crate) fn has_grant(&self) -> bool {
        matches!(&self.role, RoleState::Client(c) if c.reattach.grant.is_some())
    }

    /// Tests: make the next attempt use `token` (a token already spent, for example).
    #[cfg(test)]
    pub(crate) fn force_next_token(&mut self, token: [u8; TOKEN_LEN]) {
        if let RoleState::Client(c) = &mut self.role
            && let Some(grant) = c.reattach.grant.as_mut()
        {
            grant.tokens.push_front(token);
        }
    }

    /// Tests: the token the next attempt will use (still unspent).
    #[cfg(test)]
    pub(crate) fn next_token(&self) -> Option<[u8; TOKEN_LEN]> {
        match &self.role {
            RoleState::Client(c) => c
                .reattach
                .grant
                .as_ref()
                .and_then(|g| g.tokens.front().copied()),
            RoleState::Server(_) => None,
        }
    }

    /// Tests: the token the last attempt used.
    #[cfg(test)]
    pub(crate) fn last_token(&self) -> Option<[u8; TOKEN_LEN]> {
        match &self.role {
            RoleState::Client(c) => c.reattach.grant.as_ref().and_then(|g| g.last),
            RoleState::Server(_) => None,
        }
    }
}
