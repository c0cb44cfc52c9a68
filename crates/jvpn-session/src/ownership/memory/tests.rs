use std::collections::BTreeSet;

use super::*;

const SID: SessionId = SessionId([4; 16]);

type State = Option<(NodeId, Version)>;

fn apply_claim(state: State, node: NodeId, expected: Option<Version>) -> Option<State> {
    match (state, expected) {
        (None, None) => Some(Some((node, Version(1)))),
        (Some((_, current)), Some(want)) if current == want => {
            Some(Some((node, Version(current.0 + 1))))
        }
        _ => None,
    }
}

/// Checks a history of one session against a sequential model of the record, where a claim
/// whose outcome is unknown may or may not have applied (the set of possible states branches).
/// The memory store serialises operations, so each invoke is followed by its return; a
/// concurrent backend needs a full Wing–Gong search instead.
fn linearizable(history: &[StoreEvent]) -> Result<(), String> {
    let mut possible: BTreeSet<State> = BTreeSet::from([None]);
    for pair in history.chunks(2) {
        let (call, outcome) = match pair {
            [
                StoreEvent::Invoke { op: a, call },
                StoreEvent::Return { op: b, outcome },
            ] if a == b => (call, outcome),
            other => return Err(format!("not an invoke/return pair: {other:?}")),
        };
        let next: BTreeSet<State> = possible
            .iter()
            .flat_map(|&state| step(state, call, outcome))
            .collect();
        if next.is_empty() {
            return Err(format!(
                "{call:?} -> {outcome:?} fits no state in {possible:?}"
            ));
        }
        possible = next;
    }
    Ok(())
}

fn step(state: State, call: &StoreCall, outcome: &StoreOutcome) -> Vec<State> {
    match (call, outcome) {
        (_, StoreOutcome::Failed(OwnershipError::Unavailable)) => vec![state],
        (StoreCall::Claim { node, expected, .. }, StoreOutcome::Claimed(v)) => {
            apply_claim(state, *node, *expected)
                .filter(|next| next.map(|(_, got)| got) == Some(*v))
                .into_iter()
                .collect()
        }
        (
            StoreCall::Claim { node, expected, .. },
            StoreOutcome::Failed(OwnershipError::Unknown),
        ) => std::iter::once(state)
            .chain(apply_claim(state, *node, *expected))
            .collect(),
        (StoreCall::Claim { expected, .. }, StoreOutcome::Failed(err)) => {
            let fits = match (err, state) {
                (OwnershipError::Missing, None) => expected.is_some(),
                (OwnershipError::Conflict { owner, current }, Some(s)) => {
                    s == (*owner, *current) && *expected != Some(*current)
                }
                _ => false,
            };
            if fits { vec![state] } else { vec![] }
        }
        (StoreCall::Read { .. }, StoreOutcome::Read(seen)) if *seen == state => vec![state],
        (StoreCall::Release { node, version, .. }, StoreOutcome::Released(done)) => {
            let owned = state == Some((*node, *version));
            match (owned, done) {
                (true, true) => vec![None],
                (false, false) => vec![state],
                _ => vec![],
            }
        }
        _ => vec![],
    }
}

#[test]
fn the_first_claim_creates_version_one_and_a_second_first_claim_conflicts() {
    let store = MemoryOwnershipStore::new();

    let first = store.claim(SID, NodeId(1), None, b"a");
    let second = store.claim(SID, NodeId(2), None, b"b");

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
fn a_claim_writes_its_snapshot_atomically_with_owner_and_version() {
    let store = MemoryOwnershipStore::new();
    let v1 = store.claim(SID, NodeId(1), None, b"first").unwrap();

    let v2 = store.claim(SID, NodeId(2), Some(v1), b"second").unwrap();
    let refused = store.claim(SID, NodeId(3), Some(v1), b"third");

    let record = store.read(SID).unwrap().unwrap();
    assert_eq!(
        (record.owner, record.version, record.snapshot.as_slice()),
        (NodeId(2), v2, &b"second"[..])
    );
    assert!(refused.is_err());
}

#[test]
fn two_clones_racing_on_one_version_have_exactly_one_winner() {
    let a = MemoryOwnershipStore::new();
    let b = a.clone();
    let v1 = a.claim(SID, NodeId(1), None, b"").unwrap();

    let won_a = a.claim(SID, NodeId(1), Some(v1), b"").is_ok();
    let won_b = b.claim(SID, NodeId(2), Some(v1), b"").is_ok();

    assert!(won_a ^ won_b);
    assert_eq!(b.owner(SID), Ok(Some((NodeId(1), Version(2)))));
}

#[test]
fn release_only_removes_the_record_of_its_owner_at_its_version() {
    let store = MemoryOwnershipStore::new();
    let v1 = store.claim(SID, NodeId(1), None, b"").unwrap();

    assert!(!store.release(SID, NodeId(2), v1));
    assert!(store.release(SID, NodeId(1), v1));
    assert_eq!(store.owner(SID), Ok(None));
}

#[test]
fn an_unavailable_store_fails_every_operation_and_changes_nothing() {
    let store = MemoryOwnershipStore::new();
    let v1 = store.claim(SID, NodeId(1), None, b"").unwrap();
    store.set_available(false);

    let claim = store.claim(SID, NodeId(2), Some(v1), b"");
    let read = store.read(SID);
    let released = store.release(SID, NodeId(1), v1);
    store.set_available(true);

    assert_eq!(claim, Err(OwnershipError::Unavailable));
    assert_eq!(read, Err(OwnershipError::Unavailable));
    assert!(!released);
    assert_eq!(store.owner(SID), Ok(Some((NodeId(1), v1))));
}

#[test]
fn an_unknown_outcome_may_hide_an_applied_claim_or_one_that_never_applied() {
    let store = MemoryOwnershipStore::new();
    let v1 = store.claim(SID, NodeId(1), None, b"").unwrap();
    store.inject(StoreFault::UnknownNotApplied);
    store.inject(StoreFault::UnknownApplied);

    let lost_request = store.claim(SID, NodeId(2), Some(v1), b"x");
    let after_lost_request = store.owner(SID);
    let lost_reply = store.claim(SID, NodeId(2), Some(v1), b"y");

    assert_eq!(lost_request, Err(OwnershipError::Unknown));
    assert_eq!(after_lost_request, Ok(Some((NodeId(1), v1))));
    assert_eq!(lost_reply, Err(OwnershipError::Unknown));
    assert_eq!(store.owner(SID), Ok(Some((NodeId(2), Version(2)))));
    assert_eq!(store.claims_applied(), 2);
}

#[test]
fn the_recorded_history_of_races_and_faults_is_linearizable() {
    let store = MemoryOwnershipStore::recording();
    let v1 = store.claim(SID, NodeId(1), None, b"").unwrap();
    let _ = store.claim(SID, NodeId(2), Some(v1), b"");
    let _ = store.claim(SID, NodeId(3), Some(v1), b"");
    store.inject(StoreFault::UnknownApplied);
    let _ = store.claim(SID, NodeId(3), Some(Version(2)), b"");
    let _ = store.read(SID);
    store.set_available(false);
    let _ = store.claim(SID, NodeId(1), Some(Version(3)), b"");
    store.set_available(true);
    let _ = store.release(SID, NodeId(3), Version(3));

    let history = store.history();

    assert_eq!(history.len(), 14);
    assert_eq!(linearizable(&history), Ok(()));
    assert_eq!(store.owner(SID), Ok(None));
}

#[test]
fn the_checker_refuses_a_history_where_two_claims_won_one_version() {
    let claim = |op, node| StoreEvent::Invoke {
        op,
        call: StoreCall::Claim {
            session: SID,
            node: NodeId(node),
            expected: Some(Version(1)),
        },
    };
    let won = |op| StoreEvent::Return {
        op,
        outcome: StoreOutcome::Claimed(Version(2)),
    };
    let first = [
        StoreEvent::Invoke {
            op: 0,
            call: StoreCall::Claim {
                session: SID,
                node: NodeId(1),
                expected: None,
            },
        },
        StoreEvent::Return {
            op: 0,
            outcome: StoreOutcome::Claimed(Version(1)),
        },
    ];
    let history = [
        first.to_vec(),
        vec![claim(1, 1), won(1), claim(2, 2), won(2)],
    ]
    .concat();

    assert!(linearizable(&history).is_err());
}

#[test]
fn a_store_made_with_new_keeps_no_history() {
    let store = MemoryOwnershipStore::new();

    let _ = store.claim(SID, NodeId(1), None, b"");

    assert!(store.history().is_empty());
}
