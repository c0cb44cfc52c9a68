//! Answering REATTACH_INIT in the order of docs/protocol.md §13 (ATTACKS.md §3.4): cheapest
//! check first, nothing written and nothing sent before the proof of possession, silence on
//! every failure before it.

use std::time::Instant;

use jvpn_wire::payload::{PATH_CHALLENGE_LEN, REATTACH_TOKENS};
use jvpn_wire::{
    REATTACH_INIT_LEN, ReattachError, ReattachRespPayload, ReattachStatus, ResumptionSecret,
    TOKEN_LEN,
};

use super::dos::Gate;
use super::{Endpoint, EndpointInbound};
use crate::session::keys::ActiveKeys;
use crate::session::record::{Pending, TokenRefusal};
use crate::session::transport_name;
use crate::{DropReason, OwnershipError, PathId, Reason};

impl Endpoint {
    /// parse → MAC1 → token (expiry, floor, batch) → exact-replay filter → record → pending
    /// cap → DoS gate (under load: MAC2 or a cookie reply, then the source's bucket) → Noise
    /// (PoP) → counter → clock window → policy → ownership CAS → REATTACH_RESP.
    pub(super) fn handle_reattach(
        &mut self,
        path: PathId,
        source: &[u8],
        buf: &[u8],
        now: Instant,
    ) -> EndpointInbound {
        let Ok(view) = self.reattach.parse(buf) else {
            return self.drop_here(DropReason::Malformed);
        };
        let verified = match self.reattach.verify_mac1(&view) {
            Ok(verified) => verified,
            Err(ReattachError::Mac1Invalid) => return self.drop_here(DropReason::Mac1Invalid),
            Err(_) => return self.drop_here(DropReason::Malformed),
        };
        let Ok(token) = self.reattach.open_token(&self.token_key, &verified) else {
            return self.drop_here(DropReason::TokenRejected);
        };
        let claims = *token.claims();
        let unix_nanos = self.clock.unix_nanos_at(now);
        if claims.is_expired(unix_nanos / 1_000_000_000) {
            self.counters.reattach.token_expired += 1;
            return self.drop_here(DropReason::TokenRejected);
        }
        let Some(handle) = self.find(claims.session_id) else {
            self.counters.reattach.unknown_session += 1;
            return self.drop_here(DropReason::UnknownSession);
        };
        let window = self.policy.reattach_clock_window;
        let Some(session) = self.sessions.get_mut(&handle) else {
            return self.drop_here(DropReason::UnknownSession);
        };
        // Deadlines that passed first take effect first: no revival after the window.
        session.handle_timeout(now);
        self.registry.touched(handle, session);
        let expired = session.state().is_terminated();
        if expired && session.last_reason() != Some(Reason::RecoveryWindowExceeded) {
            self.counters.reattach.unknown_session += 1;
            return self.drop_here(DropReason::UnknownSession);
        }
        let peer_static = *session.peer_static();
        let epoch = session.epoch();
        let Some(record) = session.record_mut() else {
            return self.drop_here(DropReason::UnknownSession);
        };
        let (psk, psk_epoch) = match record.psk_for(&claims) {
            Ok(found) => found,
            Err(TokenRefusal::Reused | TokenRefusal::Unknown) => {
                self.counters.reattach.token_reused += 1;
                return self.drop_here(DropReason::TokenRejected);
            }
        };
        let ephemeral = token.ephemeral();
        if record.seen(&ephemeral, now, window.saturating_mul(2)) {
            self.counters.reattach.replays += 1;
            return self.drop_here(DropReason::ReattachReplay);
        }
        // Bounded half-open state: a session holds at most one pending reattach (a newer one
        // replaces it) and the endpoint at most `max_pending_reattaches`.
        if !self.pending_slot_available(handle, now) {
            self.counters.dos.pending_cap += 1;
            return self.drop_here(DropReason::RateLimited);
        }
        match self.dh_gate(path, source, buf, now) {
            Gate::Proceed => {}
            Gate::Cookie => return EndpointInbound::Consumed,
            Gate::RateLimited => return self.drop_here(DropReason::RateLimited),
        }
        let incoming =
            match self
                .reattach
                .read_init(&token, &peer_static, &psk, &self.prologue, &mut self.rng)
            {
                Ok(incoming) => incoming,
                Err(_) => return self.drop_here(DropReason::HandshakeFailed),
            };
        // Proof of possession passed: from here on the sender holds the session's keys.
        let Some(session) = self.sessions.get_mut(&handle) else {
            return self.drop_here(DropReason::UnknownSession);
        };
        let allowed = session.reattach_allowed(now);
        let deadline_ms = session.recovery_deadline_unix_ms(now);
        let Some(record) = session.record_mut() else {
            return self.drop_here(DropReason::UnknownSession);
        };
        record.remember(ephemeral, now, window.saturating_mul(2));
        let payload = incoming.payload;
        if payload.rc <= record.last_rc {
            self.counters.reattach.stale_counter += 1;
            return self.drop_here(DropReason::ReattachReplay);
        }
        let skew = u128::from(unix_nanos.abs_diff(payload.client_unix_nanos));
        let transport_ok = transport_name(payload.transport_kind).is_none_or(|name| {
            self.offered_transports
                .split(|&b| b == b',')
                .any(|t| t == name.as_bytes())
        });
        let status = if expired {
            ReattachStatus::Expired
        } else if skew > window.as_nanos() {
            ReattachStatus::Clock
        } else if !allowed || !transport_ok {
            ReattachStatus::Policy
        } else {
            match self
                .ownership
                .claim(claims.session_id, self.node, record.ownership)
            {
                Ok(version) => {
                    record.ownership = Some(version);
                    ReattachStatus::Ok
                }
                Err(OwnershipError::Unavailable) => ReattachStatus::StoreUnavailable,
                Err(_) => ReattachStatus::Superseded,
            }
        };

        let Some(local_index) = self.allocate_index() else {
            return self.drop_here(DropReason::Malformed);
        };
        let mut resp = ReattachRespPayload {
            status,
            epoch,
            tokens: [[0u8; TOKEN_LEN]; REATTACH_TOKENS],
            next_resumption_secret: ResumptionSecret::from_bytes([0; 32]),
            path_challenge: [0; PATH_CHALLENGE_LEN],
            server_unix_nanos: unix_nanos,
            recovery_deadline_unix_ms: deadline_ms,
            reset_token: Some(self.resets.token(local_index)),
        };
        let mut batch_first_seq = 0;
        if status == ReattachStatus::Ok {
            let rs = ResumptionSecret::generate(&mut self.rng);
            self.rng.fill_bytes(&mut resp.path_challenge);
            let Some(record) = self.sessions.get_mut(&handle).and_then(|s| s.record_mut()) else {
                return self.drop_here(DropReason::UnknownSession);
            };
            record.last_rc = payload.rc;
            let (first, tokens) = record.issue(
                &self.token_key,
                claims.session_id,
                rs.clone(),
                psk_epoch.saturating_add(1),
                unix_nanos / 1_000_000_000,
                &mut self.rng,
            );
            batch_first_seq = first;
            resp.tokens = tokens;
            resp.next_resumption_secret = rs;
            resp.epoch = epoch.saturating_add(1);
        }
        let mut frame = vec![0u8; REATTACH_INIT_LEN];
        let (len, keys) = match incoming.write_resp(local_index, &resp, &mut frame) {
            Ok(done) => done,
            Err(_) => return self.drop_here(DropReason::HandshakeFailed),
        };
        frame.truncate(len);
        let Some(session) = self.sessions.get_mut(&handle) else {
            return self.drop_here(DropReason::UnknownSession);
        };
        let counters = &mut self.counters.reattach;
        match status {
            ReattachStatus::Ok => {
                counters.accepted += 1;
                let pending = Pending {
                    path,
                    keys: ActiveKeys::new(keys, now),
                    challenge: resp.path_challenge,
                    batch_first_seq,
                    psk_epoch: psk_epoch.saturating_add(1),
                    rs: resp.next_resumption_secret.clone(),
                };
                session.stage_reattach(pending, frame);
                self.registry.index.insert(local_index, handle);
                let expiry = now + self.dos_limits.pending_reattach_ttl;
                self.pending_reattaches.insert(handle, expiry);
            }
            other => {
                match other {
                    ReattachStatus::Clock => counters.clock += 1,
                    ReattachStatus::Expired => counters.expired += 1,
                    ReattachStatus::Policy => counters.policy += 1,
                    ReattachStatus::Superseded => counters.superseded += 1,
                    _ => counters.store_unavailable += 1,
                }
                if other == ReattachStatus::Superseded {
                    // Another node owns the session now; the answer still goes out.
                    session.terminate(Reason::OwnershipLost, now);
                }
                session.queue_handshake(path, frame);
            }
        }
        self.registry.touched(handle, session);
        EndpointInbound::Consumed
    }
}
