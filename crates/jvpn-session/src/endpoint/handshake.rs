//! Answering HANDSHAKE_INIT: cheapest check first, silence on failure.

use std::time::Instant;

use jvpn_wire::frame::handshake_resp_len;
use jvpn_wire::payload::RESP_PAYLOAD_LEN;
use jvpn_wire::{HandshakeError, InitPayload, MAX_HANDSHAKE_PAYLOAD, RespPayload, SessionId};

use super::{Endpoint, EndpointInbound, SessionHandle};
use crate::session::{Accepted, ResumePlan};
use crate::{DropReason, PathId, Reason, Session};

/// Tries at drawing an unused receiver index before giving up on the handshake.
const INDEX_TRIES: usize = 16;

impl Endpoint {
    /// Order: MAC1 and Noise (inside `Responder::read_init`, MAC1 before any DH), known peer,
    /// payload, freshness (timestamp), then the session decision.
    pub(super) fn handle_init(
        &mut self,
        path: PathId,
        buf: &[u8],
        now: Instant,
    ) -> EndpointInbound {
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

        let (handle, plan, session_id, epoch) = match live {
            Some(handle) => {
                let Some(session) = self.sessions.get_mut(&handle) else {
                    return self.drop_here(DropReason::UnknownReceiver);
                };
                let plan = session.plan_resume(path, now);
                let epoch = session.epoch() + u64::from(plan == ResumePlan::Rebind);
                let session_id = session.session_id().unwrap_or_default();
                self.registry.touched(handle, session);
                if plan == ResumePlan::Refuse {
                    self.counters.resumes_refused = self.counters.resumes_refused.saturating_add(1);
                    return EndpointInbound::Dropped(DropReason::Terminated);
                }
                (Some(handle), Some(plan), session_id, epoch)
            }
            None => (None, None, SessionId::random(&mut self.rng), 1),
        };

        let resp = RespPayload {
            session_id,
            epoch,
            server_unix_nanos: self.clock.unix_nanos_at(now),
        };
        let mut resp_buf = [0u8; RESP_PAYLOAD_LEN];
        let Ok(resp_len) = resp.emit(&mut resp_buf) else {
            return self.drop_here(DropReason::Malformed);
        };
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

        match (handle, plan) {
            (Some(handle), Some(plan)) => {
                if let Some(session) = self.sessions.get_mut(&handle) {
                    session.accept_resume(plan, keys, frame, path, now);
                    self.registry.index.insert(local_index, handle);
                    self.registry.touched(handle, session);
                }
                let counter = match plan {
                    ResumePlan::Rekey => &mut self.counters.rekeys,
                    _ => &mut self.counters.rebinds,
                };
                *counter = counter.saturating_add(1);
            }
            _ => {
                let accepted = Accepted {
                    peer_static,
                    session_id,
                    keys,
                    response: frame,
                    path,
                };
                self.insert_session(accepted, local_index, now);
            }
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
    fn allocate_index(&mut self) -> Option<u32> {
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
