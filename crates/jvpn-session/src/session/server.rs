//! The server role: sessions created and resumed by an `Endpoint`'s handshakes.

use std::time::Instant;

use jvpn_wire::{DataKeys, PublicKey, SessionId};

use super::keys::{ActiveKeys, KeyLimits};
use super::record::ResumptionRecord;
use super::{DropReason, RoleState, Session};
use crate::{ClockAnchor, PathId, Policy, Reason};

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
    /// What reattaches are checked against (`None` only in a session never accepted).
    pub(crate) record: Option<Box<ResumptionRecord>>,
}

/// What a new server session starts from (a completed handshake).
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) peer_static: PublicKey,
    pub(crate) session_id: SessionId,
    pub(crate) keys: DataKeys,
    pub(crate) response: Vec<u8>,
    pub(crate) path: PathId,
    pub(crate) record: ResumptionRecord,
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
        let role = RoleState::Server(ServerRole {
            record: Some(Box::new(accepted.record)),
            ..ServerRole::default()
        });
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
        session
            .handshake_out
            .push_back((accepted.path, accepted.response));
        session.after_handshake(now);
        session.rebind(accepted.path, now);
        session
    }

    /// Whether a resume (`resume: Some(id)`, a HANDSHAKE_INIT) arriving on `path` may rekey
    /// this session: only on the bound path of a bound session. A resume never moves a binding
    /// (only a REATTACH does); otherwise the reason to drop it.
    pub(crate) fn plan_resume(&self, path: PathId) -> Result<(), DropReason> {
        if !self.sm.state().is_bound() {
            return Err(DropReason::NotAttached);
        }
        if self.bound_path() != Some(path) {
            return Err(DropReason::WrongPath);
        }
        Ok(())
    }

    /// Stages the keys of an accepted rekey and queues its response. The client may not have
    /// the response yet: the current keys keep sending until it proves it has the new ones.
    pub(crate) fn accept_rekey(
        &mut self,
        keys: DataKeys,
        response: Vec<u8>,
        path: PathId,
        now: Instant,
    ) {
        self.keys.stage_next(ActiveKeys::new(keys, now));
        self.handshake_out.push_back((path, response));
    }
}
