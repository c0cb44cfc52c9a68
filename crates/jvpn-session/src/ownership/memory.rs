//! The in-memory reference [`OwnershipStore`]: one table behind a mutex, shared by clones, with
//! fault injection (unavailable, outcome unknown) and an optional append-only history of every
//! operation for linearizability checks (ATTACKS.md S17).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use jvpn_wire::SessionId;

use super::{NodeId, OwnershipError, OwnershipRecord, OwnershipStore, Version};

/// One operation as a client of the store invoked it.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreCall {
    /// [`OwnershipStore::claim`] (the snapshot is not recorded, only its length).
    Claim {
        /// The session.
        session: SessionId,
        /// The claiming node.
        node: NodeId,
        /// The version the claim expected.
        expected: Option<Version>,
    },
    /// [`OwnershipStore::release`].
    Release {
        /// The session.
        session: SessionId,
        /// The releasing node.
        node: NodeId,
        /// The version it released.
        version: Version,
    },
    /// [`OwnershipStore::read`] (or `owner`).
    Read {
        /// The session.
        session: SessionId,
    },
}

/// What an operation returned to its caller.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    /// A claim succeeded with this version.
    Claimed(Version),
    /// A release returned this.
    Released(bool),
    /// A read saw this owner and version (`None`: no record).
    Read(Option<(NodeId, Version)>),
    /// The operation failed. [`OwnershipError::Unknown`] means the caller cannot tell whether
    /// the claim applied: a checker must allow both.
    Failed(OwnershipError),
}

/// One entry of the history: an invocation or the matching return (`op` pairs them).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// An operation started.
    Invoke {
        /// The operation's number (unique in this store).
        op: u64,
        /// What was asked.
        call: StoreCall,
    },
    /// An operation returned.
    Return {
        /// The operation's number.
        op: u64,
        /// What it returned.
        outcome: StoreOutcome,
    },
}

/// A fault the next claim suffers (tests and the simulator inject them).
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StoreFault {
    /// The claim applies, but its caller gets [`OwnershipError::Unknown`] (the reply was lost).
    UnknownApplied,
    /// The claim does not apply, and its caller gets [`OwnershipError::Unknown`] (the request
    /// was lost).
    UnknownNotApplied,
}

#[derive(Debug, Default)]
struct Table {
    records: BTreeMap<SessionId, OwnershipRecord>,
    unavailable: bool,
    faults: VecDeque<StoreFault>,
    recording: bool,
    history: Vec<StoreEvent>,
    next_op: u64,
    claims_applied: u64,
}

impl Table {
    fn invoke(&mut self, call: StoreCall) -> u64 {
        let op = self.next_op;
        self.next_op = self.next_op.saturating_add(1);
        if self.recording {
            self.history.push(StoreEvent::Invoke { op, call });
        }
        op
    }

    fn finish(&mut self, op: u64, outcome: StoreOutcome) {
        if self.recording {
            self.history.push(StoreEvent::Return { op, outcome });
        }
    }

    fn claim(
        &mut self,
        session: SessionId,
        node: NodeId,
        expected: Option<Version>,
        snapshot: &[u8],
    ) -> Result<Version, OwnershipError> {
        let current = self.records.get(&session).map(|r| (r.owner, r.version));
        let next = match (current, expected) {
            (None, None) => Version(1),
            (None, Some(_)) => return Err(OwnershipError::Missing),
            (Some((_, current)), Some(want)) if current == want => {
                Version(current.0.saturating_add(1))
            }
            (Some((owner, current)), _) => return Err(OwnershipError::Conflict { owner, current }),
        };
        self.records.insert(
            session,
            OwnershipRecord {
                owner: node,
                version: next,
                snapshot: snapshot.to_vec(),
            },
        );
        self.claims_applied = self.claims_applied.saturating_add(1);
        Ok(next)
    }
}

/// An in-memory [`OwnershipStore`]. Clones share one table, so endpoints given clones of one
/// store race on the same records (exactly one claim per version wins).
///
/// For tests and the simulator it can be made unavailable ([`set_available`]), made to lose
/// the answer of the next claims ([`inject`]), and, when made with [`recording`], keeps an
/// append-only history of every operation ([`history`]) for a linearizability checker.
/// A store made with [`new`] records nothing (its memory stays bounded by the sessions).
///
/// [`set_available`]: Self::set_available
/// [`inject`]: Self::inject
/// [`recording`]: Self::recording
/// [`history`]: Self::history
/// [`new`]: Self::new
#[derive(Clone, Debug, Default)]
pub struct MemoryOwnershipStore {
    table: Arc<Mutex<Table>>,
}

impl MemoryOwnershipStore {
    /// An empty store that keeps no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that records every operation (invoke and return) in its history. The
    /// history grows without bound: for tests and simulations, not for a long-running node.
    pub fn recording() -> Self {
        let store = Self::default();
        store.with(|t| t.recording = true);
        store
    }

    /// Makes every following operation fail with [`OwnershipError::Unavailable`] (`false`) or
    /// work again (`true`), as a partition between the nodes and the store would.
    pub fn set_available(&self, available: bool) {
        self.with(|t| t.unavailable = !available);
    }

    /// Queues a fault for the next claim (faults apply in order, one per claim).
    pub fn inject(&self, fault: StoreFault) {
        self.with(|t| t.faults.push_back(fault));
    }

    /// Every operation so far, in the order the store saw them (empty unless
    /// [`recording`](Self::recording)).
    pub fn history(&self) -> Vec<StoreEvent> {
        self.with(|t| t.history.clone()).unwrap_or_default()
    }

    /// Claims that changed a record so far (whatever their callers were told).
    pub fn claims_applied(&self) -> u64 {
        self.with(|t| t.claims_applied).unwrap_or(0)
    }

    /// Overwrites the sealed snapshot of a record in place, keeping owner and version (tests:
    /// a corrupted or foreign snapshot). Returns whether the record exists.
    pub fn tamper_snapshot(&self, session: SessionId, snapshot: &[u8]) -> bool {
        self.with(|t| match t.records.get_mut(&session) {
            Some(record) => {
                record.snapshot = snapshot.to_vec();
                true
            }
            None => false,
        })
        .unwrap_or(false)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Table) -> T) -> Option<T> {
        // A poisoned lock means another thread panicked mid-update: report the store as down
        // rather than trusting its contents.
        let mut table = self.table.lock().ok()?;
        Some(f(&mut table))
    }
}

impl OwnershipStore for MemoryOwnershipStore {
    fn claim(
        &self,
        session: SessionId,
        node: NodeId,
        expected: Option<Version>,
        snapshot: &[u8],
    ) -> Result<Version, OwnershipError> {
        self.with(|t| {
            let op = t.invoke(StoreCall::Claim {
                session,
                node,
                expected,
            });
            let result = if t.unavailable {
                Err(OwnershipError::Unavailable)
            } else {
                match t.faults.pop_front() {
                    None => t.claim(session, node, expected, snapshot),
                    Some(StoreFault::UnknownApplied) => t
                        .claim(session, node, expected, snapshot)
                        .and(Err(OwnershipError::Unknown)),
                    Some(StoreFault::UnknownNotApplied) => Err(OwnershipError::Unknown),
                }
            };
            let outcome = match result {
                Ok(version) => StoreOutcome::Claimed(version),
                Err(err) => StoreOutcome::Failed(err),
            };
            t.finish(op, outcome);
            result
        })
        .unwrap_or(Err(OwnershipError::Unavailable))
    }

    fn release(&self, session: SessionId, node: NodeId, version: Version) -> bool {
        self.with(|t| {
            let op = t.invoke(StoreCall::Release {
                session,
                node,
                version,
            });
            if t.unavailable {
                t.finish(op, StoreOutcome::Failed(OwnershipError::Unavailable));
                return false;
            }
            let released = t
                .records
                .get(&session)
                .is_some_and(|r| r.owner == node && r.version == version);
            if released {
                t.records.remove(&session);
            }
            t.finish(op, StoreOutcome::Released(released));
            released
        })
        .unwrap_or(false)
    }

    fn read(&self, session: SessionId) -> Result<Option<OwnershipRecord>, OwnershipError> {
        self.with(|t| {
            let op = t.invoke(StoreCall::Read { session });
            if t.unavailable {
                t.finish(op, StoreOutcome::Failed(OwnershipError::Unavailable));
                return Err(OwnershipError::Unavailable);
            }
            let record = t.records.get(&session).cloned();
            let seen = record.as_ref().map(|r| (r.owner, r.version));
            t.finish(op, StoreOutcome::Read(seen));
            Ok(record)
        })
        .unwrap_or(Err(OwnershipError::Unavailable))
    }
}

#[cfg(test)]
mod tests;
