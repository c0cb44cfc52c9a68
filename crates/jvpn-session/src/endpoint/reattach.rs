//! Answering REATTACH_INIT in the order of docs/protocol.md §13 (ATTACKS.md §3.4): cheapest
//! check first, nothing written and nothing sent before the proof of possession, silence on
//! every failure before it.
//!
//! The session a reattach is checked against is this endpoint's own copy or, when the
//! endpoint has none (the session lives on another node, or this node restarted), one rebuilt
//! from the sealed snapshot in the ownership store. A rebuilt session is forgotten again
//! unless the reattach is accepted and claimed: a replay or a forgery leaves nothing behind,
//! and the store's `last_rc` refuses a replay that another node (or this node before a
//! restart) already accepted.

use std::time::Instant;

use jvpn_wire::payload::{PATH_CHALLENGE_LEN, REATTACH_TOKENS};
use jvpn_wire::{
    REATTACH_INIT_LEN, ReattachError, ReattachRespPayload, ReattachStatus, ResumptionSecret,
    TOKEN_LEN, TokenClaims,
};

use super::dos::Gate;
use super::{Endpoint, EndpointInbound, SessionHandle};
use crate::session::keys::ActiveKeys;
use crate::session::record::{Pending, TokenRefusal};
use crate::session::transport_name;
use crate::{DropReason, OwnershipError, PathId, Reason};

/// The session a reattach is checked against.
#[derive(Copy, Clone, Debug)]
struct Target {
    handle: SessionHandle,
    /// Rebuilt from the store for this reattach (forgotten unless it is accepted).
    adopted: bool,
}

/// What CAS #1 decided.
struct Claimed {
    status: ReattachStatus,
    /// For OK: the pending `RS'` the claimed snapshot carries.
    rs: Option<ResumptionSecret>,
    /// The record already holds this very counter: the attempt is a replay of one another
    /// node (or this one before a restart) accepted. Dropped silently, like a stale counter.
    replay: bool,
    /// SUPERSEDED because another node holds a validated binding: end our copy.
    fence: bool,
}

/// What a re-read after a lost claim showed.
enum Reread {
    /// Our counter is newer: the target now is a session rebuilt from the record; retry.
    Retry,
    /// A newer counter won (`fence`: with a validated binding elsewhere, or an unreadable
    /// record).
    Superseded { fence: bool },
    /// The record holds our counter already.
    Replay,
}

impl Endpoint {
    /// parse → MAC1 → token (expiry) → session (own copy, or rebuilt from the store) → token
    /// floor and batch → exact-replay filter → pending cap → DoS gate (under load: MAC2 or a
    /// cookie reply, then the source's bucket) → Noise (PoP) → counter → clock window →
    /// policy → ownership CAS (with the snapshot) → REATTACH_RESP.
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
        let mut target = match self.reattach_target(&claims, path, now) {
            Ok(target) => target,
            Err(dropped) => return dropped,
        };
        let ctx = Attempt {
            path,
            source,
            buf,
            token: &token,
            claims,
            unix_nanos,
            now,
        };
        let result = self.answer_reattach(&mut target, &ctx);
        if target.adopted {
            self.settle_adopted(target.handle, now);
        }
        result
    }

    /// The endpoint's own copy of the session (live, or ended by its recovery window: that
    /// one answers EXPIRED), or else one rebuilt from the store (also when the own copy was
    /// fenced: the session may live on elsewhere). A live copy that does not know the token's
    /// batch checks its ownership at once: the session may have moved on to a node that
    /// issued it.
    fn reattach_target(
        &mut self,
        claims: &TokenClaims,
        path: PathId,
        now: Instant,
    ) -> Result<Target, EndpointInbound> {
        let session_id = claims.session_id;
        if let Some(handle) = self.find(session_id)
            && let Some(session) = self.sessions.get_mut(&handle)
        {
            // Deadlines that passed first take effect first: no revival after the window.
            session.handle_timeout(now);
            self.registry.touched(handle, session);
            let foreign_token = session.record_mut().and_then(|r| {
                let unknown = matches!(r.psk_for(claims), Err(TokenRefusal::Unknown));
                r.ownership.filter(|_| unknown)
            });
            if let (false, Some(version)) = (session.state().is_terminated(), foreign_token) {
                self.check_one(handle, session_id, version, now);
            }
            let Some(session) = self.sessions.get(&handle) else {
                return Err(self.drop_here(DropReason::UnknownSession));
            };
            match (session.state().is_terminated(), session.last_reason()) {
                (false, _) | (true, Some(Reason::RecoveryWindowExceeded)) => {
                    return Ok(Target {
                        handle,
                        adopted: false,
                    });
                }
                (true, Some(Reason::OwnershipLost | Reason::StoreUnavailable)) => {}
                _ => {
                    self.counters.reattach.unknown_session += 1;
                    return Err(self.drop_here(DropReason::UnknownSession));
                }
            }
        }
        let adopted = self
            .read_snapshot(session_id)
            .and_then(|(snapshot, version, _)| self.adopt(snapshot, version, path, now));
        match adopted {
            Some(handle) => Ok(Target {
                handle,
                adopted: true,
            }),
            None => {
                self.counters.reattach.unknown_session += 1;
                Err(self.drop_here(DropReason::UnknownSession))
            }
        }
    }

    fn answer_reattach(&mut self, target: &mut Target, a: &Attempt<'_, '_>) -> EndpointInbound {
        let (path, now, claims) = (a.path, a.now, a.claims);
        let window = self.policy.reattach_clock_window;
        let Some(session) = self.sessions.get_mut(&target.handle) else {
            return self.drop_here(DropReason::UnknownSession);
        };
        let expired = session.state().is_terminated();
        let peer_static = *session.peer_static();
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
        let ephemeral = a.token.ephemeral();
        if record.seen(&ephemeral, now, window.saturating_mul(2)) {
            self.counters.reattach.replays += 1;
            return self.drop_here(DropReason::ReattachReplay);
        }
        // Bounded half-open state: a session holds at most one pending reattach (a newer one
        // replaces it) and the endpoint at most `max_pending_reattaches`.
        if !self.pending_slot_available(target.handle, now) {
            self.counters.dos.pending_cap += 1;
            return self.drop_here(DropReason::RateLimited);
        }
        match self.dh_gate(path, a.source, a.buf, now) {
            Gate::Proceed => {}
            Gate::Cookie => return EndpointInbound::AnsweredStatelessly,
            Gate::RateLimited => return self.drop_here(DropReason::RateLimited),
        }
        let incoming = match self.reattach.read_init(
            a.token,
            &peer_static,
            &psk,
            &self.prologue,
            &mut self.rng,
        ) {
            Ok(incoming) => incoming,
            Err(_) => return self.drop_here(DropReason::HandshakeFailed),
        };
        // Proof of possession passed: from here on the sender holds the session's keys.
        let Some(session) = self.sessions.get_mut(&target.handle) else {
            return self.drop_here(DropReason::UnknownSession);
        };
        let allowed = session.reattach_allowed(now);
        let Some(record) = session.record_mut() else {
            return self.drop_here(DropReason::UnknownSession);
        };
        record.remember(ephemeral, now, window.saturating_mul(2));
        let payload = incoming.payload;
        // The record's counter is the store's on a rebuilt session: a replay another node (or
        // this one before a restart) accepted stops here, with no store write.
        if payload.rc <= record.last_rc {
            self.counters.reattach.stale_counter += 1;
            return self.drop_here(DropReason::ReattachReplay);
        }
        let skew = u128::from(a.unix_nanos.abs_diff(payload.client_unix_nanos));
        let transport_ok = transport_name(payload.transport_kind).is_none_or(|name| {
            self.offered_transports
                .split(|&b| b == b',')
                .any(|t| t == name.as_bytes())
        });
        let claimed = if expired {
            Claimed::status(ReattachStatus::Expired)
        } else if skew > window.as_nanos() {
            Claimed::status(ReattachStatus::Clock)
        } else if !allowed || !transport_ok {
            Claimed::status(ReattachStatus::Policy)
        } else {
            self.claim_reattach(target, a, psk.as_bytes(), psk_epoch, payload.rc)
        };
        if claimed.replay {
            self.counters.reattach.stale_counter += 1;
            return self.drop_here(DropReason::ReattachReplay);
        }
        let status = claimed.status;

        let Some(local_index) = self.allocate_index() else {
            return self.drop_here(DropReason::Malformed);
        };
        let Some(session) = self.sessions.get_mut(&target.handle) else {
            return self.drop_here(DropReason::UnknownSession);
        };
        let epoch = session.epoch();
        let deadline_ms = session.recovery_deadline_unix_ms(now);
        let mut resp = ReattachRespPayload {
            status,
            epoch,
            tokens: [[0u8; TOKEN_LEN]; REATTACH_TOKENS],
            next_resumption_secret: ResumptionSecret::from_bytes([0; 32]),
            path_challenge: [0; PATH_CHALLENGE_LEN],
            server_unix_nanos: a.unix_nanos,
            recovery_deadline_unix_ms: deadline_ms,
            reset_token: Some(self.resets.token(local_index)),
        };
        let mut batch_first_seq = 0;
        if let (ReattachStatus::Ok, Some(rs)) = (status, claimed.rs) {
            self.rng.fill_bytes(&mut resp.path_challenge);
            let Some(record) = self
                .sessions
                .get_mut(&target.handle)
                .and_then(|s| s.record_mut())
            else {
                return self.drop_here(DropReason::UnknownSession);
            };
            record.last_rc = payload.rc;
            let (first, tokens) = record.issue(
                &self.token_key,
                claims.session_id,
                rs.clone(),
                psk_epoch.saturating_add(1),
                a.unix_nanos / 1_000_000_000,
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
        let Some(session) = self.sessions.get_mut(&target.handle) else {
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
                self.registry.index.insert(local_index, target.handle);
                let expiry = now + self.dos_limits.pending_reattach_ttl;
                self.pending_reattaches.insert(target.handle, expiry);
            }
            other => {
                match other {
                    ReattachStatus::Clock => counters.clock += 1,
                    ReattachStatus::Expired => counters.expired += 1,
                    ReattachStatus::Policy => counters.policy += 1,
                    ReattachStatus::Superseded => counters.superseded += 1,
                    _ => counters.store_unavailable += 1,
                }
                if claimed.fence && !target.adopted {
                    // Another node holds the session now; the answer still goes out.
                    session.terminate(Reason::OwnershipLost, now);
                }
                session.queue_handshake(path, frame);
            }
        }
        self.registry.touched(target.handle, session);
        EndpointInbound::Consumed
    }

    /// CAS #1: claims the record for this node with the snapshot the accepted reattach will
    /// leave (`last_rc = rc`, a new batch under a fresh pending `RS'`). If the record moved
    /// on, it is re-read: a counter at or above ours means SUPERSEDED (newest wins); an older
    /// one means the claim is retried once against a session rebuilt from that record (the
    /// proof of possession holds: the token names the same PSK there). A store that cannot be
    /// reached, or whose answer stays unknown, means STORE_UNAVAILABLE and nothing changed.
    fn claim_reattach(
        &mut self,
        target: &mut Target,
        a: &Attempt<'_, '_>,
        psk: &[u8; 32],
        psk_epoch: u64,
        rc: u64,
    ) -> Claimed {
        let session_id = a.claims.session_id;
        let rs = ResumptionSecret::generate(&mut self.rng);
        for retry in [false, true] {
            let Some(session) = self.sessions.get_mut(&target.handle) else {
                return Claimed::status(ReattachStatus::Superseded);
            };
            let Some(mut snapshot) = session.snapshot(false) else {
                return Claimed::status(ReattachStatus::Superseded);
            };
            let expected = session.record_mut().and_then(|r| r.ownership);
            snapshot.record.last_rc = rc;
            snapshot
                .record
                .issue(rs.clone(), psk_epoch.saturating_add(1));
            let sealed = snapshot.seal(&self.token_key, &mut self.rng);
            match self.claim_record(session_id, expected, &sealed) {
                Ok(version) => {
                    if let Some(record) = self
                        .sessions
                        .get_mut(&target.handle)
                        .and_then(|s| s.record_mut())
                    {
                        record.ownership = Some(version);
                        record.store_ok_at = Some(a.now);
                    }
                    return Claimed {
                        rs: Some(rs),
                        ..Claimed::status(ReattachStatus::Ok)
                    };
                }
                Err(OwnershipError::Conflict { .. } | OwnershipError::Missing) if !retry => {
                    match self.retarget(target, a, psk, psk_epoch, rc) {
                        Reread::Retry => {}
                        Reread::Superseded { fence } => {
                            return Claimed {
                                fence,
                                ..Claimed::status(ReattachStatus::Superseded)
                            };
                        }
                        Reread::Replay => {
                            return Claimed {
                                replay: true,
                                ..Claimed::status(ReattachStatus::Superseded)
                            };
                        }
                    }
                }
                Err(OwnershipError::Conflict { .. } | OwnershipError::Missing) => {
                    return Claimed::status(ReattachStatus::Superseded);
                }
                Err(_) => return Claimed::status(ReattachStatus::StoreUnavailable),
            }
        }
        Claimed::status(ReattachStatus::Superseded)
    }

    /// The record moved on under our claim: re-reads it and, if its counter is older than
    /// `rc` and the token names the same PSK in it, switches `target` to a session rebuilt from
    /// it (ending our stale copy, or forgetting the stale rebuilt one) for one retry.
    fn retarget(
        &mut self,
        target: &mut Target,
        a: &Attempt<'_, '_>,
        psk: &[u8; 32],
        psk_epoch: u64,
        rc: u64,
    ) -> Reread {
        let Some((snapshot, version, _)) = self.read_snapshot(a.claims.session_id) else {
            return Reread::Superseded { fence: true };
        };
        if snapshot.record.last_rc == rc {
            return Reread::Replay;
        }
        if snapshot.record.last_rc > rc {
            return Reread::Superseded {
                fence: snapshot.bound,
            };
        }
        let old = *target;
        let Some(handle) = self.adopt(snapshot, version, a.path, a.now) else {
            return Reread::Superseded { fence: false };
        };
        let usable = self.sessions.get_mut(&handle).is_some_and(|s| {
            !s.state().is_terminated()
                && s.reattach_allowed(a.now)
                && s.record_mut().is_some_and(|r| {
                    r.psk_for(&a.claims)
                        .is_ok_and(|(p, e)| e == psk_epoch && p.as_bytes() == psk)
                })
        });
        if !usable {
            self.discard(handle);
            return Reread::Superseded { fence: false };
        }
        if old.adopted {
            self.discard(old.handle);
        } else if let Some(session) = self.sessions.get_mut(&old.handle) {
            session.terminate(Reason::OwnershipLost, a.now);
            self.registry.touched(old.handle, session);
        }
        *target = Target {
            handle,
            adopted: true,
        };
        Reread::Retry
    }
}

/// One REATTACH_INIT being answered.
struct Attempt<'a, 'b> {
    path: PathId,
    source: &'a [u8],
    buf: &'a [u8],
    token: &'a jvpn_wire::TokenVerified<'b>,
    claims: TokenClaims,
    unix_nanos: u64,
    now: Instant,
}

impl Claimed {
    fn status(status: ReattachStatus) -> Self {
        Claimed {
            status,
            rs: None,
            replay: false,
            fence: false,
        }
    }
}
