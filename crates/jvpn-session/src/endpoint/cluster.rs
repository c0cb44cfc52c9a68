//! The endpoint's side of the ownership store: claims that carry the sealed session snapshot
//! (first attach, CAS #1 on an accepted reattach, CAS #2 on PATH_CONFIRM), sessions rebuilt
//! from the store for a reattach that reaches a node without them (another node's session, or
//! this node's after a restart), and fencing (ownership checks and the lease).

use std::time::Instant;

use jvpn_wire::SessionId;

use super::{Endpoint, SessionHandle};
use crate::session::snapshot::Snapshot;
use crate::{NodeId, OwnershipError, PathId, Reason, Session, Version};

/// What the endpoint counted of its dealings with the ownership store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// Sessions rebuilt from the store whose reattach was accepted here (kept).
    pub adopted: u64,
    /// Sessions rebuilt from the store and forgotten again: the reattach failed a check after
    /// the proof of possession, or its pending reattach expired unconfirmed. Nothing of them
    /// stays on this node, and the store is not written.
    pub adoptions_discarded: u64,
    /// Snapshots that did not open (another key, corruption), named another session, or named
    /// a client this node does not accept. The session is treated as unknown.
    pub snapshots_rejected: u64,
    /// Store reads that failed (the store was unavailable).
    pub store_read_failures: u64,
    /// Claims whose outcome was unknown (then re-read to decide).
    pub claims_unknown: u64,
    /// Of those, claims the re-read showed applied (treated as success).
    pub claims_unknown_applied: u64,
    /// Commits (CAS #2 on PATH_CONFIRM) whose claim failed: the session ended here
    /// (`OwnershipLost`), never bound.
    pub commits_lost: u64,
    /// Ownership checks that read the store.
    pub checks: u64,
    /// Sessions ended because the record moved on to another node's validated binding, or
    /// disappeared (`OwnershipLost`).
    pub fenced: u64,
    /// Sessions ended at their lease deadline because the store could not confirm their
    /// ownership in time (`StoreUnavailable`).
    pub leases_expired: u64,
}

impl Endpoint {
    /// Claims `session_id` at `expected`, writing `sealed`. An unknown outcome (S16) is never
    /// assumed: the record is re-read, and the claim counts as applied only if it shows this
    /// node at a newer version with exactly the snapshot written; otherwise it is reported as
    /// the failure the record shows: `Conflict` if it moved on, `Missing` if it is gone, and
    /// `Unavailable` (nothing changed) if it is unchanged or the store cannot say.
    pub(super) fn claim_record(
        &mut self,
        session_id: SessionId,
        expected: Option<Version>,
        sealed: &[u8],
    ) -> Result<Version, OwnershipError> {
        match self
            .ownership
            .claim(session_id, self.node, expected, sealed)
        {
            Err(OwnershipError::Unknown) => {}
            other => return other,
        }
        self.counters.cluster.claims_unknown += 1;
        match self.ownership.read(session_id) {
            Ok(Some(record))
                if record.owner == self.node
                    && expected.is_none_or(|e| record.version > e)
                    && record.snapshot == sealed =>
            {
                self.counters.cluster.claims_unknown_applied += 1;
                Ok(record.version)
            }
            // Unchanged: the claim never applied. Nothing changed; the caller may retry.
            Ok(Some(record)) if Some(record.version) == expected => {
                Err(OwnershipError::Unavailable)
            }
            Ok(Some(record)) => Err(OwnershipError::Conflict {
                owner: record.owner,
                current: record.version,
            }),
            Ok(None) if expected.is_some() => Err(OwnershipError::Missing),
            Ok(None) | Err(_) => Err(OwnershipError::Unavailable),
        }
    }

    /// Reads and opens the record of `session_id`: its snapshot, version and owner. `None`
    /// (counted) if there is no record, the store cannot be read, or the snapshot does not
    /// open for this session.
    pub(super) fn read_snapshot(
        &mut self,
        session_id: SessionId,
    ) -> Option<(Snapshot, Version, NodeId)> {
        let record = match self.ownership.read(session_id) {
            Ok(record) => record?,
            Err(_) => {
                self.counters.cluster.store_read_failures += 1;
                return None;
            }
        };
        match Snapshot::open(&self.token_key, session_id, &record.snapshot) {
            Ok(snapshot) => Some((snapshot, record.version, record.owner)),
            Err(_) => {
                self.counters.cluster.snapshots_rejected += 1;
                None
            }
        }
    }

    /// Rebuilds the session of `snapshot` (read at `version`) for a reattach on `path`, and
    /// holds it under a new handle until the reattach is decided ([`settle_adopted`]). `None`
    /// (counted) if the snapshot names a client this node does not accept, or one whose
    /// newer session lives here.
    ///
    /// [`settle_adopted`]: Self::settle_adopted
    pub(super) fn adopt(
        &mut self,
        snapshot: Snapshot,
        version: Version,
        path: PathId,
        now: Instant,
    ) -> Option<SessionHandle> {
        let Some(peer) = self.peers.get(&snapshot.client_static) else {
            self.counters.cluster.snapshots_rejected += 1;
            return None;
        };
        let newer_here = peer.session.is_some_and(|h| {
            self.sessions.get(&h).is_some_and(|s| {
                !s.state().is_terminated() && s.session_id() != Some(snapshot.session_id)
            })
        });
        if newer_here {
            return None;
        }
        let session = Session::restore(
            &self.policy,
            self.clock,
            self.limits,
            snapshot,
            version,
            path,
            now,
        );
        let handle = SessionHandle(self.next_handle);
        self.next_handle = self.next_handle.saturating_add(1);
        self.sessions.insert(handle, session);
        Some(handle)
    }

    /// After a reattach answered for an adopted session: kept if a reattach is pending (it was
    /// answered OK and claimed), otherwise forgotten, its answer (an authenticated error status)
    /// still sent.
    pub(super) fn settle_adopted(&mut self, handle: SessionHandle, now: Instant) {
        let Some(session) = self.sessions.get_mut(&handle) else {
            return;
        };
        if session.record_mut().is_some_and(|r| r.pending.is_some()) {
            self.counters.cluster.adopted += 1;
            let peer_static = *session.peer_static();
            if let Some(peer) = self.peers.get_mut(&peer_static) {
                peer.session = Some(handle);
            }
            self.arm_ownership_check(now);
            return;
        }
        for frame in session.take_handshake_frames() {
            if self.replies_out.len() < self.dos_limits.cookie_queue {
                self.replies_out.push_back(frame);
            }
        }
        self.discard(handle);
    }

    /// Forgets an adopted session that never committed here: no transition, no release (the
    /// record belongs to whichever node holds the validated binding).
    pub(super) fn discard(&mut self, handle: SessionHandle) {
        if let Some(mut session) = self.sessions.remove(&handle) {
            self.reaped_violations = self.reaped_violations.saturating_add(session.violations());
            for index in session.take_retired_indices() {
                if self.registry.index.get(&index) == Some(&handle) {
                    self.registry.index.remove(&index);
                }
            }
        }
        self.registry.index.retain(|_, h| *h != handle);
        self.registry.tx_ready.remove(&handle);
        self.registry.ev_ready.remove(&handle);
        self.registry.terminated.remove(&handle);
        self.pending_reattaches.remove(&handle);
        for peer in self.peers.values_mut() {
            if peer.session == Some(handle) {
                peer.session = None;
            }
        }
        self.counters.cluster.adoptions_discarded += 1;
    }

    /// CAS #2: a PATH_CONFIRM proved the pending reattach of `handle`. The binding commits only
    /// if the claim of the record (with the post-commit snapshot) succeeds; otherwise the
    /// session ends here with `OwnershipLost`, never bound.
    pub(super) fn finish_commit(
        &mut self,
        handle: SessionHandle,
        challenge: [u8; 16],
        now: Instant,
    ) {
        let Some(session) = self.sessions.get_mut(&handle) else {
            return;
        };
        let (Some(snapshot), Some(session_id)) =
            (session.snapshot_after_commit(now), session.session_id())
        else {
            // The switch budget refuses the commit: it ends the session itself.
            session.commit_reattach(challenge, now);
            return;
        };
        let expected = session.record_mut().and_then(|r| r.ownership);
        let sealed = snapshot.seal(&self.token_key, &mut self.rng);
        let claimed = self.claim_record(session_id, expected, &sealed);
        let Some(session) = self.sessions.get_mut(&handle) else {
            return;
        };
        match claimed {
            Ok(version) => {
                if let Some(record) = session.record_mut() {
                    record.ownership = Some(version);
                    record.store_ok_at = Some(now);
                }
                session.commit_reattach(challenge, now);
            }
            Err(_) => {
                self.counters.cluster.commits_lost += 1;
                session.terminate(Reason::OwnershipLost, now);
            }
        }
    }

    /// Reads the store for every live session and ends those whose record moved on: to
    /// another node's validated binding (a pending claim elsewhere does not displace a
    /// validated binding), or away (no record) — `OwnershipLost`. A successful read renews the
    /// session's lease. The runtime need not call it: `handle_timeout` runs it every
    /// `Policy::ownership_check`; call it directly for an immediate check.
    pub fn check_ownership(&mut self, now: Instant) {
        self.expire_leases(now);
        let live: Vec<(SessionHandle, SessionId, Version)> = self
            .sessions
            .iter_mut()
            .filter(|(_, s)| !s.state().is_terminated())
            .filter_map(|(&h, s)| {
                let id = s.session_id()?;
                let version = s.record_mut()?.ownership?;
                Some((h, id, version))
            })
            .collect();
        for (handle, session_id, version) in live {
            self.check_one(handle, session_id, version, now);
        }
        self.next_ownership_check = self
            .sessions
            .values()
            .any(|s| !s.state().is_terminated())
            .then(|| now + self.policy.ownership_check);
    }

    /// A watch on the store reported a change of `session_id`'s record: check it now (the
    /// record is read again; nothing in the notification is trusted).
    pub fn ownership_changed(&mut self, session_id: SessionId, now: Instant) {
        self.expire_leases(now);
        let found = self.sessions.iter_mut().find_map(|(&h, s)| {
            let live = !s.state().is_terminated() && s.session_id() == Some(session_id);
            let version = s.record_mut()?.ownership?;
            live.then_some((h, version))
        });
        if let Some((handle, version)) = found {
            self.check_one(handle, session_id, version, now);
        }
    }

    pub(super) fn check_one(
        &mut self,
        handle: SessionHandle,
        session_id: SessionId,
        version: Version,
        now: Instant,
    ) {
        self.counters.cluster.checks += 1;
        let verdict = match self.ownership.read(session_id) {
            Err(_) => {
                self.counters.cluster.store_read_failures += 1;
                return;
            }
            Ok(None) => false,
            Ok(Some(record)) if record.owner == self.node => record.version == version,
            Ok(Some(record)) if record.version > version => {
                // Another node claimed a reattach. Until it commits (its snapshot says
                // bound) our validated binding stands; a snapshot that does not open is
                // ambiguity, which resolves to termination.
                match Snapshot::open(&self.token_key, session_id, &record.snapshot) {
                    Ok(snapshot) => !snapshot.bound,
                    Err(_) => {
                        self.counters.cluster.snapshots_rejected += 1;
                        false
                    }
                }
            }
            Ok(Some(_)) => false,
        };
        let Some(session) = self.sessions.get_mut(&handle) else {
            return;
        };
        // Deadlines that passed first take effect first: a session whose recovery window ran
        // out before this (late) check ends at its own deadline, not fenced at `now`.
        if session.poll_timeout().is_some_and(|at| at <= now) {
            session.handle_timeout(now);
            self.registry.touched(handle, session);
        }
        if session.state().is_terminated() {
            return;
        }
        if verdict {
            if let Some(record) = session.record_mut() {
                record.store_ok_at = Some(now);
            }
        } else {
            self.counters.cluster.fenced += 1;
            session.terminate(Reason::OwnershipLost, now);
            self.registry.touched(handle, session);
        }
    }

    /// Ends every live session whose lease ran out (the store did not confirm its ownership
    /// for `Policy::ownership_lease`), at the lease deadline itself.
    pub(super) fn expire_leases(&mut self, now: Instant) {
        let lease = self.policy.ownership_lease;
        for (&handle, session) in &mut self.sessions {
            if session.state().is_terminated() {
                continue;
            }
            let Some(deadline) = session
                .record_mut()
                .and_then(|r| r.store_ok_at)
                .map(|at| at + lease)
            else {
                continue;
            };
            if deadline <= now {
                // Deadlines that passed first take effect first: a recovery window that ran
                // out before the lease ends the session at its own deadline.
                if session.poll_timeout().is_some_and(|at| at <= deadline) {
                    session.handle_timeout(deadline);
                }
                if !session.state().is_terminated() {
                    self.counters.cluster.leases_expired += 1;
                    session.terminate(Reason::StoreUnavailable, deadline);
                }
                self.registry.touched(handle, session);
            }
        }
    }

    /// The earliest ownership deadline: the next check, or a lease running out.
    pub(super) fn ownership_timeout(&self) -> Option<Instant> {
        let lease = self.policy.ownership_lease;
        let leases = self
            .sessions
            .values()
            .filter(|s| !s.state().is_terminated())
            .filter_map(|s| s.store_ok_at())
            .map(|at| at + lease)
            .min();
        [self.next_ownership_check, leases]
            .into_iter()
            .flatten()
            .min()
    }

    /// Schedules an ownership check one interval after `now`, unless one is scheduled.
    pub(super) fn arm_ownership_check(&mut self, now: Instant) {
        if self.next_ownership_check.is_none() {
            self.next_ownership_check = Some(now + self.policy.ownership_check);
        }
    }
}
