//! A fault-injecting ownership store for the cluster runs (ATTACKS.md S15, S16, S17).
//!
//! [`FaultyStore`] wraps a [`MemoryOwnershipStore`] and, driven by a [`StorePlan`] drawn from
//! the seed: answers every call `Unavailable` during the plan's windows (nothing applied), and
//! BUGGIFY-style loses the reply of some claims after the write applied (the caller is told
//! `Unknown`: the outcome is unknown, and the node must re-read), a few of those applied late (a delayed CAS, compared when
//! it lands, as an etcd `Txn` would be). Every call is recorded as a [`StoreOp`] for the
//! linearizability check ([`super::linear`]). The wrapper stays thin: the record semantics are
//! the inner store's.
//!
//! Virtual time comes from the simulation ([`FaultyStore::set_now`], called by every server
//! node before it runs its endpoint), since the trait's calls carry none.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jvpn_session::{
    MemoryOwnershipStore, NodeId, OwnershipError, OwnershipRecord, OwnershipStore, Version,
};
use jvpn_wire::SessionId;
use rand::Rng;

use super::linear::{Call, Outcome, StoreOp};
use crate::impair::SimRng;
use crate::seed::Seed;

/// The store's faults in one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorePlan {
    /// Windows of virtual time in which every call fails `Unavailable` and nothing applies.
    pub unavailable: Vec<Range<Duration>>,
    /// Chance that a claim's reply is lost after the claim was sent (told `Unknown`).
    pub lost_reply_p: f64,
    /// Of the lost replies, the chance the write lands late instead of at once.
    pub delayed_p: f64,
    /// How late a delayed write lands at most.
    pub max_delay: Duration,
}

impl StorePlan {
    /// No faults.
    #[must_use]
    pub fn healthy() -> Self {
        Self::default()
    }

    /// Whether the plan injects anything.
    #[must_use]
    pub fn is_faulty(&self) -> bool {
        !self.unavailable.is_empty() || self.lost_reply_p > 0.0
    }
}

/// What the store's faults did in one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreFigures {
    /// Calls made (claims, releases, reads by the nodes).
    pub calls: u64,
    /// Calls failed by an unavailable window.
    pub unavailable: u64,
    /// Claims whose reply was lost (the write applied, at once or late).
    pub lost_replies: u64,
    /// Of which applied late.
    pub delayed: u64,
    /// Late writes that found the record moved on (the compare failed when they landed).
    pub delayed_refused: u64,
    /// Claims refused because the record had moved on to the claiming node itself: its own
    /// earlier claim applied though its reply was lost (S16: the node re-reads on `Unknown`,
    /// so this counts a claim made without having re-read).
    pub own_write_conflicts: u64,
}

/// A [`MemoryOwnershipStore`] with seeded faults and a recorded history. Clones share
/// everything (the record table, the clock, the history).
#[derive(Clone, Debug)]
pub struct FaultyStore {
    inner: MemoryOwnershipStore,
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug)]
struct Delayed {
    due: Duration,
    session: SessionId,
    node: NodeId,
    expected: Option<Version>,
    snapshot: Vec<u8>,
}

#[derive(Debug)]
struct Shared {
    plan: StorePlan,
    rng: SimRng,
    now: Duration,
    tick: u64,
    ops: Vec<StoreOp>,
    delayed: Vec<Delayed>,
    ok_claims: BTreeMap<(NodeId, SessionId), u64>,
    figures: StoreFigures,
}

impl Shared {
    fn tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn unavailable(&self) -> bool {
        self.plan.unavailable.iter().any(|w| w.contains(&self.now))
    }

    fn record(&mut self, session: SessionId, call: Call, outcome: Outcome, invoked: u64) {
        let returned = self.tick();
        self.ops.push(StoreOp {
            session,
            call,
            outcome,
            invoked,
            returned,
            at: self.now,
        });
    }

    /// Lands every delayed write that is due, compared against the record as it is now.
    fn land_due(&mut self, inner: &MemoryOwnershipStore) {
        let now = self.now;
        let (due, later): (Vec<Delayed>, Vec<Delayed>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|d| d.due <= now);
        self.delayed = later;
        for write in due {
            if inner
                .claim(write.session, write.node, write.expected, &write.snapshot)
                .is_ok()
            {
                *self
                    .ok_claims
                    .entry((write.node, write.session))
                    .or_insert(0) += 1;
            } else {
                self.figures.delayed_refused += 1;
            }
        }
    }
}

fn outcome_of(result: Result<Version, OwnershipError>) -> Outcome {
    match result {
        Ok(version) => Outcome::Claimed(version),
        Err(OwnershipError::Conflict { owner, current }) => Outcome::Conflict { owner, current },
        Err(OwnershipError::Missing) => Outcome::Missing,
        Err(_) => Outcome::Unknown,
    }
}

impl FaultyStore {
    /// An empty store with the faults of `plan`, its random choices drawn from `seed`.
    #[must_use]
    pub fn new(plan: StorePlan, seed: Seed) -> Self {
        Self {
            inner: MemoryOwnershipStore::new(),
            shared: Arc::new(Mutex::new(Shared {
                plan,
                rng: seed.sim_rng("store-faults", 0),
                now: Duration::ZERO,
                tick: 0,
                ops: Vec::new(),
                delayed: Vec::new(),
                ok_claims: BTreeMap::new(),
                figures: StoreFigures::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Single-threaded simulation: a poisoned lock only follows a panic already failing the
        // test, so its data is as good as any.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the store's clock to `elapsed` (virtual time since the run's base) and lands the
    /// delayed writes due by then.
    pub fn set_now(&self, elapsed: Duration) {
        let mut shared = self.lock();
        shared.now = shared.now.max(elapsed);
        shared.land_due(&self.inner);
    }

    /// The record of `session`, read past the faults and not recorded (for the checks).
    #[must_use]
    pub fn peek(&self, session: SessionId) -> Option<(NodeId, Version)> {
        self.inner.owner(session).ok().flatten()
    }

    /// How many claims by `node` on `session` the store committed, whether or not the answer
    /// reached the node (a node that learns of a lost answer by re-reading may bind on it).
    #[must_use]
    pub fn ok_claims(&self, node: NodeId, session: SessionId) -> u64 {
        self.lock()
            .ok_claims
            .get(&(node, session))
            .copied()
            .unwrap_or(0)
    }

    /// Records one fault-free read of every session id in the history (Jepsen's final read),
    /// so that writes whose outcome nobody learnt are pinned down.
    pub fn final_reads(&self) {
        let mut shared = self.lock();
        let mut sessions: Vec<SessionId> = shared.ops.iter().map(|op| op.session).collect();
        sessions.sort_unstable();
        sessions.dedup();
        for session in sessions {
            let invoked = shared.tick();
            let read = self
                .inner
                .owner(session)
                .map_or(Outcome::Unknown, Outcome::Read);
            shared.record(session, Call::Read, read, invoked);
        }
    }

    /// Every call so far.
    #[must_use]
    pub fn history(&self) -> Vec<StoreOp> {
        self.lock().ops.clone()
    }

    /// What the faults did so far.
    #[must_use]
    pub fn figures(&self) -> StoreFigures {
        self.lock().figures.clone()
    }
}

impl OwnershipStore for FaultyStore {
    fn claim(
        &self,
        session: SessionId,
        node: NodeId,
        expected: Option<Version>,
        snapshot: &[u8],
    ) -> Result<Version, OwnershipError> {
        let mut shared = self.lock();
        shared.land_due(&self.inner);
        shared.figures.calls += 1;
        let invoked = shared.tick();
        let call = Call::Claim { node, expected };
        if shared.unavailable() {
            shared.figures.unavailable += 1;
            shared.record(session, call, Outcome::Unknown, invoked);
            return Err(OwnershipError::Unavailable);
        }
        let p = shared.plan.lost_reply_p;
        if p > 0.0 && shared.rng.random_bool(p.min(1.0)) {
            shared.figures.lost_replies += 1;
            let late = shared.plan.delayed_p;
            if late > 0.0 && shared.rng.random_bool(late.min(1.0)) {
                let max = u64::try_from(shared.plan.max_delay.as_micros()).unwrap_or(u64::MAX);
                let due = shared.now + Duration::from_micros(shared.rng.random_range(0..=max));
                shared.figures.delayed += 1;
                shared.delayed.push(Delayed {
                    due,
                    session,
                    node,
                    expected,
                    snapshot: snapshot.to_vec(),
                });
            } else {
                // Sent and decided by the store; the caller never hears how.
                if self.inner.claim(session, node, expected, snapshot).is_ok() {
                    *shared.ok_claims.entry((node, session)).or_insert(0) += 1;
                }
            }
            shared.record(session, call, Outcome::Unknown, invoked);
            return Err(OwnershipError::Unknown);
        }
        let result = self.inner.claim(session, node, expected, snapshot);
        match result {
            Ok(_) => *shared.ok_claims.entry((node, session)).or_insert(0) += 1,
            Err(OwnershipError::Conflict { owner, .. }) if owner == node => {
                shared.figures.own_write_conflicts += 1;
            }
            Err(_) => {}
        }
        shared.record(session, call, outcome_of(result), invoked);
        result
    }

    fn release(&self, session: SessionId, node: NodeId, version: Version) -> bool {
        let mut shared = self.lock();
        shared.land_due(&self.inner);
        shared.figures.calls += 1;
        let invoked = shared.tick();
        let call = Call::Release { node, version };
        if shared.unavailable() {
            shared.figures.unavailable += 1;
            shared.record(session, call, Outcome::Unknown, invoked);
            return false;
        }
        let removed = self.inner.release(session, node, version);
        shared.record(session, call, Outcome::Released(removed), invoked);
        removed
    }

    fn read(&self, session: SessionId) -> Result<Option<OwnershipRecord>, OwnershipError> {
        let mut shared = self.lock();
        shared.land_due(&self.inner);
        shared.figures.calls += 1;
        let invoked = shared.tick();
        if shared.unavailable() {
            shared.figures.unavailable += 1;
            // A failed read has no effect and tells nothing: nothing to record.
            return Err(OwnershipError::Unavailable);
        }
        let result = self.inner.read(session);
        if let Ok(record) = &result {
            let seen = record.as_ref().map(|r| (r.owner, r.version));
            shared.record(session, Call::Read, Outcome::Read(seen), invoked);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::linear;

    const SID: SessionId = SessionId([3; 16]);
    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    fn store(plan: StorePlan) -> FaultyStore {
        FaultyStore::new(plan, Seed(9))
    }

    #[test]
    fn inside_an_unavailable_window_nothing_applies_and_the_outcome_is_unknown() {
        let store = store(StorePlan {
            unavailable: vec![Duration::from_secs(1)..Duration::from_secs(2)],
            ..StorePlan::healthy()
        });
        store.set_now(Duration::from_millis(1_500));

        let claim = store.claim(SID, A, None, &[]);

        assert_eq!(claim, Err(OwnershipError::Unavailable));
        assert_eq!(store.peek(SID), None);
        assert_eq!(store.history()[0].outcome, Outcome::Unknown);
        assert_eq!(store.figures().unavailable, 1);
    }

    #[test]
    fn a_lost_reply_applies_the_claim_but_tells_the_caller_the_outcome_is_unknown() {
        let store = store(StorePlan {
            lost_reply_p: 1.0,
            ..StorePlan::healthy()
        });

        let claim = store.claim(SID, A, None, &[]);

        assert_eq!(claim, Err(OwnershipError::Unknown));
        assert_eq!(store.peek(SID), Some((A, Version(1))));
        assert_eq!(store.ok_claims(A, SID), 1);
        assert_eq!(store.figures().lost_replies, 1);
    }

    #[test]
    fn a_delayed_claim_lands_later_and_is_compared_when_it_lands() {
        let store = store(StorePlan {
            lost_reply_p: 1.0,
            delayed_p: 1.0,
            max_delay: Duration::from_millis(100),
            ..StorePlan::healthy()
        });
        let healthy = store.inner.clone();
        healthy.claim(SID, A, None, &[]).expect("first claim");

        // A's claim on v1 is delayed; B moves the record to v2 before it lands.
        let zombie = store.claim(SID, A, Some(Version(1)), &[]);
        healthy
            .claim(SID, B, Some(Version(1)), &[])
            .expect("B wins v2");
        store.set_now(Duration::from_secs(1));

        assert_eq!(zombie, Err(OwnershipError::Unknown));
        assert_eq!(store.peek(SID), Some((B, Version(2))));
        assert_eq!(store.figures().delayed_refused, 1);
    }

    #[test]
    fn the_recorded_history_of_a_faulty_store_is_linearizable() {
        let store = store(StorePlan {
            lost_reply_p: 0.5,
            delayed_p: 0.5,
            max_delay: Duration::from_millis(50),
            ..StorePlan::healthy()
        });
        let mut expected = [None, None];
        for step in 0..200u64 {
            store.set_now(Duration::from_millis(step * 10));
            let who = usize::from(step % 3 == 0);
            let node = [A, B][who];
            match store.claim(SID, node, expected[who], &[]) {
                Ok(v) => expected[who] = Some(v),
                Err(OwnershipError::Conflict { current, .. }) => expected[who] = Some(current),
                Err(_) => {}
            }
        }
        store.final_reads();

        let checked = linear::check(&store.history()).expect("linearizable");

        assert_eq!(checked.ops, 201);
        assert!(checked.unknown > 0);
    }
}
