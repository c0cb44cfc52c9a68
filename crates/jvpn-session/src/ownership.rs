//! Who owns a session: a compare-and-swap record per session id, so that two nodes racing to
//! bind one session cannot both win (no dual-active binding).
//!
//! The version returned by a successful claim is a fencing token: it strictly increases with
//! every claim, and a node whose version is no longer current has lost the session. Leases (a
//! dead node's sessions taken over after a deadline) and a distributed backend (etcd) belong to
//! the cluster issue; this module defines the trait and an in-memory store.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use jvpn_wire::SessionId;

/// A server node's identity in the ownership store.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

/// The version of one session's ownership record (the fencing token). Starts at 1.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64);

/// A claim was refused.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OwnershipError {
    /// The record is not at the expected version: another claim won. The caller has lost the
    /// session (answer SUPERSEDED, end the local copy with `OwnershipLost`).
    #[error("ownership record moved on: now owned by {owner:?} at {current:?}")]
    Conflict {
        /// The current owner.
        owner: NodeId,
        /// The current version.
        current: Version,
    },
    /// `expected` named a version but the store has no record for the session (it was
    /// released or the store lost it). Treat as a lost session.
    #[error("no ownership record for the session")]
    Missing,
    /// The store cannot be reached. Nothing changed; retry later (answer STORE_UNAVAILABLE).
    #[error("ownership store unavailable")]
    Unavailable,
}

/// A compare-and-swap record of which node owns which session.
pub trait OwnershipStore: fmt::Debug + Send + Sync {
    /// Claims `session` for `node` if the record is at `expected` (`None`: no record may exist
    /// yet, the first attach). Returns the new version, strictly greater than any before.
    fn claim(
        &self,
        session: SessionId,
        node: NodeId,
        expected: Option<Version>,
    ) -> Result<Version, OwnershipError>;

    /// Forgets `session` if `node` still owns it at `version` (the session ended). Returns
    /// whether the record was removed.
    fn release(&self, session: SessionId, node: NodeId, version: Version) -> bool;

    /// The current owner and version, if any.
    fn owner(&self, session: SessionId) -> Result<Option<(NodeId, Version)>, OwnershipError>;
}

/// An in-memory [`OwnershipStore`]. Clones share one table, so endpoints given clones of one
/// store race on the same records (exactly one claim per version wins).
#[derive(Clone, Debug, Default)]
pub struct MemoryOwnershipStore {
    records: Arc<Mutex<BTreeMap<SessionId, (NodeId, Version)>>>,
}

impl MemoryOwnershipStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<SessionId, (NodeId, Version)>) -> T,
    ) -> Result<T, OwnershipError> {
        // A poisoned lock means another thread panicked mid-update: report the store as down
        // rather than trusting its contents.
        let mut records = self
            .records
            .lock()
            .map_err(|_| OwnershipError::Unavailable)?;
        Ok(f(&mut records))
    }
}

impl OwnershipStore for MemoryOwnershipStore {
    fn claim(
        &self,
        session: SessionId,
        node: NodeId,
        expected: Option<Version>,
    ) -> Result<Version, OwnershipError> {
        self.with(|records| match (records.get(&session).copied(), expected) {
            (None, None) => {
                records.insert(session, (node, Version(1)));
                Ok(Version(1))
            }
            (None, Some(_)) => Err(OwnershipError::Missing),
            (Some((_, current)), Some(want)) if current == want => {
                let next = Version(current.0.saturating_add(1));
                records.insert(session, (node, next));
                Ok(next)
            }
            (Some((owner, current)), _) => Err(OwnershipError::Conflict { owner, current }),
        })?
    }

    fn release(&self, session: SessionId, node: NodeId, version: Version) -> bool {
        self.with(|records| {
            if records.get(&session) == Some(&(node, version)) {
                records.remove(&session);
                true
            } else {
                false
            }
        })
        .unwrap_or(false)
    }

    fn owner(&self, session: SessionId) -> Result<Option<(NodeId, Version)>, OwnershipError> {
        self.with(|records| records.get(&session).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: SessionId = SessionId([4; 16]);

    #[test]
    fn the_first_claim_creates_version_one_and_a_second_first_claim_conflicts() {
        let store = MemoryOwnershipStore::new();

        let first = store.claim(SID, NodeId(1), None);
        let second = store.claim(SID, NodeId(2), None);

        assert_eq!(first, Ok(Version(1)));
        assert_eq!(
            second,
            Err(OwnershipError::Conflict {
                owner: NodeId(1),
                current: Version(1)
            })
        );
    }

    #[test]
    fn two_clones_racing_on_one_version_have_exactly_one_winner() {
        let a = MemoryOwnershipStore::new();
        let b = a.clone();
        let v1 = a.claim(SID, NodeId(1), None).unwrap();

        let won_a = a.claim(SID, NodeId(1), Some(v1)).is_ok();
        let won_b = b.claim(SID, NodeId(2), Some(v1)).is_ok();

        assert!(won_a ^ won_b);
        assert_eq!(b.owner(SID), Ok(Some((NodeId(1), Version(2)))));
    }

    #[test]
    fn release_only_removes_the_record_of_its_owner_at_its_version() {
        let store = MemoryOwnershipStore::new();
        let v1 = store.claim(SID, NodeId(1), None).unwrap();

        assert!(!store.release(SID, NodeId(2), v1));
        assert!(store.release(SID, NodeId(1), v1));
        assert_eq!(store.owner(SID), Ok(None));
    }
}
