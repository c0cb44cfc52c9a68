//! Who owns a session: a compare-and-swap record per session id, so that two nodes racing to
//! bind one session cannot both win (no dual-active binding).
//!
//! A record is `{owner node, version, sealed snapshot}`, written atomically by one claim. The
//! version is a fencing token: it strictly increases with every claim, and a node whose
//! version is no longer current has lost the session. The snapshot is opaque bytes to the
//! store (sealed under a key derived from the cluster token key, see `docs/protocol.md`): it
//! is everything another node needs to verify a reattach and rebuild the server side of the
//! session, so the anti-replay state that matters cluster-wide (the last reattach counter,
//! the token floor) lives in the record, and node caches are only an optimisation.
//!
//! This module defines the trait and the in-memory reference store; a distributed backend
//! (etcd: a transaction on `mod_revision`) implements the same trait.

mod memory;

pub use memory::{MemoryOwnershipStore, StoreCall, StoreEvent, StoreFault, StoreOutcome};

use std::fmt;

use jvpn_wire::SessionId;

/// A server node's identity in the ownership store.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

/// The version of one session's ownership record (the fencing token). Starts at 1.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64);

/// One session's ownership record as the store holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnershipRecord {
    /// The node that made the last successful claim.
    pub owner: NodeId,
    /// The version that claim produced.
    pub version: Version,
    /// The sealed session snapshot that claim wrote (opaque to the store).
    pub snapshot: Vec<u8>,
}

impl fmt::Debug for OwnershipRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnershipRecord")
            .field("owner", &self.owner)
            .field("version", &self.version)
            .field("snapshot_len", &self.snapshot.len())
            .finish()
    }
}

/// A claim or a read failed.
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
    /// The claim was sent but its answer was lost (a timeout after sending): the write may or
    /// may not have applied. Never assume either: re-read the record and decide from what it
    /// shows (FoundationDB's `commit_unknown_result`).
    #[error("ownership claim outcome unknown")]
    Unknown,
}

/// A compare-and-swap record of which node owns which session, carrying a sealed snapshot.
pub trait OwnershipStore: fmt::Debug + Send + Sync {
    /// Claims `session` for `node` if the record is at `expected` (`None`: no record may exist
    /// yet, the first attach), writing `snapshot` in the same atomic step. Returns the new
    /// version, strictly greater than any before.
    fn claim(
        &self,
        session: SessionId,
        node: NodeId,
        expected: Option<Version>,
        snapshot: &[u8],
    ) -> Result<Version, OwnershipError>;

    /// Forgets `session` if `node` still owns it at `version` (the session ended). Returns
    /// whether the record was removed.
    fn release(&self, session: SessionId, node: NodeId, version: Version) -> bool;

    /// The current record (owner, version and sealed snapshot), if any.
    fn read(&self, session: SessionId) -> Result<Option<OwnershipRecord>, OwnershipError>;

    /// The current owner and version, if any.
    fn owner(&self, session: SessionId) -> Result<Option<(NodeId, Version)>, OwnershipError> {
        Ok(self.read(session)?.map(|r| (r.owner, r.version)))
    }
}
