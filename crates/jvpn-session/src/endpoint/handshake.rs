//! Answering HANDSHAKE_INIT: cheapest check first, silence on failure.

use std::time::Instant;

use jvpn_wire::frame::handshake_resp_len;
use jvpn_wire::payload::{GRANT_EXTENSION_LEN, RESP_PAYLOAD_LEN};
use jvpn_wire::reset::RESET_TOKEN_EXTENSION_LEN;
use jvpn_wire::{
    HandshakeError, InitPayload, MAX_HANDSHAKE_PAYLOAD, RespPayload, ResumptionSecret, SessionId,
};
use zeroize::Zeroizing;

use jvpn_wire::cookie::request_mac1;

use super::dos::Gate;
use super::{Endpoint, EndpointInbound, SessionHandle};
use crate::session::Accepted;
use crate::session::record::ResumptionRecord;
use crate::session::snapshot::Snapshot;
use crate::{DropReason, PathId, Reason, Session};

/// Tries at drawing an unused receiver index before giving up on the handshake.
const INDEX_TRIES: usize = 16;

impl Endpoint {
    /// Order: shape and MAC1 (no DH), the exact-replay filter, the DoS gate (under load: MAC2
    /// or a cookie reply, then the source's bucket), Noise, known peer, payload, freshness
    /// (timestamp), then the session decision.
    pub(super) fn handle_init(
        &mut self,
        path: PathId,
        source: &[u8],
        buf: &[u8],
        now: Instant,
    ) -> EndpointInbound {
        if let Err(err) = self.responder.check_init(buf) {
            return self.drop_here(init_drop(err));
        }
        let Some(mac1) = request_mac1(buf) else {
            return self.drop_here(DropReason::Malformed);
        };
        if self
            .init_replays
            .check_and_insert(mac1, now, &self.dos_limits)
        {
            self.counters.dos.init_replays += 1;
            return self.drop_here(DropReason::HandshakeReplay);
        }
        match self.dh_gate(path, source, buf, now) {
            Gate::Proceed => {}
            Gate::Cookie => return EndpointInbound::AnsweredStatelessly,
            Gate::RateLimited => return self.drop_here(DropReason::RateLimited),
        }
        let mut payload = [0u8; MAX_HANDSHAKE_PAYLOAD];
        let incoming =
            match self
                .responder
                .read_init(buf, &self.prologue, &mut payload, &mut self.rng)
            {
                Ok(incoming) => incoming,
                Err(err) => return self.drop_here(init_drop(err)),
            };
        let Some(peer) = self.peers.get(&incoming.peer_static) else {
            self.counters.unknown_peer = self.counters.unknown_peer.saturating_add(1);
            return self.drop_here(DropReason::UnknownPeer);
        };
        let Ok(init) = InitPayload::parse(&payload[..incoming.payload_len]) else {
            return self.drop_here(DropReason::Malformed);
        };
        if peer
            .last_init_nanos
            .is_some_and(|last| init.unix_nanos <= last)
        {
            self.counters.handshake_replays = self.counters.handshake_replays.saturating_add(1);
            return self.drop_here(DropReason::HandshakeReplay);
        }
        // Deadlines that passed first take effect first: a resume that arrives after the
        // recovery window finds the session ended (and gets a new one), never revives it.
        if let Some(handle) = peer.session
            && let Some(session) = self.sessions.get_mut(&handle)
        {
            session.handle_timeout(now);
            self.registry.touched(handle, session);
        }
        let live = init.resume.and_then(|id| {
            peer.session.filter(|h| {
                self.sessions
                    .get(h)
                    .is_some_and(|s| s.session_id() == Some(id) && !s.state().is_terminated())
            })
        });
        let peer_static = incoming.peer_static;
        let psk = peer.psk.clone();
        let Some(local_index) = self.allocate_index() else {
            return self.drop_here(DropReason::Malformed);
        };
        let unix_nanos = self.clock.unix_nanos_at(now);
        let unix_secs = unix_nanos / 1_000_000_000;

        // A resume rekeys a live session on its bound path; it never moves a binding (only a
        // REATTACH does). A new session claims its ownership first.
        let (session_id, epoch, grant, record) = match live {
            Some(handle) => {
                let Some(session) = self.sessions.get_mut(&handle) else {
                    return self.drop_here(DropReason::UnknownReceiver);
                };
                if let Err(reason) = session.plan_resume(path) {
                    self.counters.resumes_refused = self.counters.resumes_refused.saturating_add(1);
                    session.count_drop(reason);
                    // The timestamp is authenticated (only the peer's key could write it):
                    // consuming it stops a copy of this initiation, relayed onto the bound path
                    // after the exact-replay filter forgot it, from becoming a rekey.
                    if let Some(peer) = self.peers.get_mut(&peer_static) {
                        peer.last_init_nanos = Some(init.unix_nanos);
                    }
                    return EndpointInbound::Dropped(reason);
                }
                let session_id = session.session_id().unwrap_or_default();
                let epoch = session.epoch();
                let Some(record) = session.record_mut() else {
                    return self.drop_here(DropReason::UnknownSession);
                };
                let grant = record.grant(&self.token_key, session_id, unix_secs, &mut self.rng);
                (session_id, epoch, grant, None)
            }
            None => {
                let session_id = SessionId::random(&mut self.rng);
                let rs = ResumptionSecret::generate(&mut self.rng);
                let mut record = ResumptionRecord::new(rs, None);
                let grant = record.grant(&self.token_key, session_id, unix_secs, &mut self.rng);
                // The record carries the session from its first claim on: any node holding
                // the token key can then answer its reattaches.
                let snapshot = Snapshot {
                    session_id,
                    client_static: peer_static,
                    sm_version: 1,
                    epoch: 1,
                    bound: true,
                    recovery_deadline_unix_ms: None,
                    record: record.snapshot(),
                };
                let sealed = snapshot.seal(&self.token_key, &mut self.rng);
                let version = match self.claim_record(session_id, None, &sealed) {
                    Ok(version) => version,
                    Err(_) => {
                        self.counters.ownership_conflicts =
                            self.counters.ownership_conflicts.saturating_add(1);
                        return self.drop_here(DropReason::NotOwner);
                    }
                };
                record.ownership = Some(version);
                record.store_ok_at = Some(now);
                (session_id, 1, grant, Some(record))
            }
        };

        let resp = RespPayload {
            session_id,
            epoch,
            server_unix_nanos: unix_nanos,
        };
        let mut resp_buf = Zeroizing::new(
            [0u8; RESP_PAYLOAD_LEN + GRANT_EXTENSION_LEN + RESET_TOKEN_EXTENSION_LEN],
        );
        let Ok(fixed) = resp.emit(&mut resp_buf[..]) else {
            return self.drop_here(DropReason::Malformed);
        };
        let Ok(ext) = grant.emit_extension(&mut resp_buf[fixed..]) else {
            return self.drop_here(DropReason::Malformed);
        };
        // The token of the index this response creates: the client honours a reset only with it.
        let reset_token = self.resets.token(local_index);
        let Ok(reset_ext) = reset_token.emit_extension(&mut resp_buf[fixed + ext..]) else {
            return self.drop_here(DropReason::Malformed);
        };
        let resp_len = fixed + ext + reset_ext;
        let mut frame = vec![0u8; handshake_resp_len(resp_len)];
        let (len, keys) =
            match incoming.write_resp(&psk, local_index, &resp_buf[..resp_len], &mut frame) {
                Ok(done) => done,
                Err(_) => return self.drop_here(DropReason::HandshakeFailed),
            };
        frame.truncate(len);
        if let Some(peer) = self.peers.get_mut(&peer_static) {
            peer.last_init_nanos = Some(init.unix_nanos);
        }

        match (live, record) {
            (Some(handle), _) => {
                if let Some(session) = self.sessions.get_mut(&handle) {
                    session.accept_rekey(keys, frame, path, now);
                    self.registry.index.insert(local_index, handle);
                    self.registry.touched(handle, session);
                }
                self.counters.rekeys = self.counters.rekeys.saturating_add(1);
            }
            (None, Some(record)) => {
                let accepted = Accepted {
                    peer_static,
                    session_id,
                    keys,
                    response: frame,
                    path,
                    record,
                };
                self.insert_session(accepted, local_index, now);
                self.arm_ownership_check(now);
            }
            (None, None) => {}
        }
        EndpointInbound::Consumed
    }

    fn insert_session(&mut self, accepted: Accepted, local_index: u32, now: Instant) {
        let handle = SessionHandle(self.next_handle);
        self.next_handle = self.next_handle.saturating_add(1);
        let peer_static = accepted.peer_static;
        let mut session = Session::accept(&self.policy, self.clock, self.limits, accepted, now);
        self.registry.index.insert(local_index, handle);
        self.registry.touched(handle, &mut session);
        self.sessions.insert(handle, session);
        self.counters.sessions_created = self.counters.sessions_created.saturating_add(1);
        let older = self
            .peers
            .get_mut(&peer_static)
            .and_then(|peer| peer.session.replace(handle));
        if let Some(older) = older {
            if self
                .sessions
                .get(&older)
                .is_some_and(|s| !s.state().is_terminated())
            {
                self.counters.sessions_superseded =
                    self.counters.sessions_superseded.saturating_add(1);
            }
            self.terminate_session(older, Reason::Superseded, now);
        }
    }

    /// A random receiver index no session owns (0 is never used).
    pub(super) fn allocate_index(&mut self) -> Option<u32> {
        (0..INDEX_TRIES)
            .map(|_| self.rng.next_u32())
            .find(|&i| i != 0 && !self.registry.index.contains_key(&i))
    }
}

fn init_drop(err: HandshakeError) -> DropReason {
    match err {
        HandshakeError::Mac1Invalid => DropReason::Mac1Invalid,
        HandshakeError::Malformed(_)
        | HandshakeError::Mac2Invalid
        | HandshakeError::BufferTooSmall { .. } => DropReason::Malformed,
        _ => DropReason::HandshakeFailed,
    }
}
