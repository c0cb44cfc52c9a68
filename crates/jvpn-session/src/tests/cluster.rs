//! Cross-node reattach through the ownership store (ATTACKS.md S2, S3, S12–S16): the record
//! carries the sealed session, so any node holding the token key answers a reattach, the
//! store's counter refuses replays across nodes and restarts, and a node whose record moved
//! on (or whose store is unreachable for the lease) stops carrying the session.

use std::sync::Arc;
use std::time::Duration;

use jvpn_wire::{MessageType, TokenKey, kdf, peek_type};

use super::reattach::{
    NEW_PATH, NEW_SERVER_PATH, client_out, first_init, only, rebind, retry, server_out,
    start_rebind,
};
use super::*;
use crate::{DropReason, MemoryOwnershipStore, NodeId, OwnershipStore, StoreFault, Version};

const CLUSTER_KEY: [u8; 32] = [7; 32];

fn node_config(
    keys: &Keys,
    store: &MemoryOwnershipStore,
    node: u64,
    clock: ClockAnchor,
) -> ServerConfig {
    let mut cfg = keys.server_config(clock, keys.client.public_key());
    cfg.cluster = ClusterConfig {
        node: NodeId(node),
        ownership: Some(Arc::new(store.clone())),
        token_key: Some(TokenKey::from_bytes(CLUSTER_KEY)),
    };
    cfg
}

/// A client attached to node 1 (`h.server`), and node 2 (`other`) sharing the store and the
/// token key. [`Cluster::switch`] makes the client's datagrams reach the other node.
struct Cluster {
    h: Harness,
    store: MemoryOwnershipStore,
    other: Endpoint,
}

impl Cluster {
    fn attached() -> Self {
        let keys = Keys::new();
        let store = MemoryOwnershipStore::recording();
        let mut h = Harness::with_configs(
            |clock| keys.client_config(clock, keys.server.public_key()),
            |clock| node_config(&keys, &store, 1, clock),
        );
        h.pump();
        assert_eq!(h.client.state(), State::Attached);
        let other = node(&store, 2, 30, h.clock);
        Cluster { h, store, other }
    }

    /// The client's datagrams now reach the other node (and the first one is paused).
    fn switch(&mut self) {
        std::mem::swap(&mut self.h.server, &mut self.other);
    }

    fn sid(&self) -> jvpn_wire::SessionId {
        self.h.client.session_id().expect("attached")
    }
}

fn node(store: &MemoryOwnershipStore, id: u64, seed: u64, clock: ClockAnchor) -> Endpoint {
    Endpoint::new(node_config(&Keys::new(), store, id, clock), rng(seed)).expect("valid config")
}

fn last_reattach_init(h: &Harness) -> Vec<u8> {
    h.client_sent
        .iter()
        .rev()
        .find(|d| peek_type(d) == Ok(MessageType::ReattachInit))
        .cloned()
        .expect("a REATTACH_INIT was sent")
}

fn only_session(endpoint: &Endpoint) -> &Session {
    let mut sessions = endpoint.sessions();
    let (_, first) = sessions.next().expect("a session");
    assert!(sessions.next().is_none(), "exactly one session");
    first
}

#[test]
fn a_reattach_at_a_second_node_succeeds_and_the_first_detaches_on_its_next_check() {
    let mut c = Cluster::attached();
    let sid = c.sid();
    c.switch();

    rebind(&mut c.h, NEW_PATH);
    let node1 = &mut c.other;
    let check_at = node1.poll_timeout().expect("node 1 checks its ownership");
    node1.handle_timeout(check_at);

    assert_eq!(c.h.client.state(), State::Attached);
    assert_eq!(c.h.client.bound_path(), Some(NEW_PATH));
    let node2_session = only_session(&c.h.server);
    assert_eq!(node2_session.bound_path(), Some(NEW_SERVER_PATH));
    assert_eq!((c.h.client.epoch(), node2_session.epoch()), (2, 2));
    assert_eq!(c.h.server.counters().cluster.adopted, 1);
    assert_eq!(c.store.owner(sid).unwrap().map(|o| o.0), Some(NodeId(2)));
    let node1 = &mut c.other;
    let (handle, old) = node1.sessions().next().expect("node 1's copy");
    assert_eq!(
        (old.state(), old.last_reason()),
        (State::Terminated, Some(Reason::OwnershipLost))
    );
    assert_eq!(node1.counters().cluster.fenced, 1);
    assert_eq!(
        node1.send(handle, b"late", check_at),
        Err(crate::SendError::Terminated)
    );
    let mut buf = Vec::new();
    assert_eq!(
        node1.poll_transmit(check_at, &mut buf),
        None,
        "never sends again"
    );
    c.h.assert_no_violations();
    assert_eq!(c.other.violations(), 0);
}

#[test]
fn a_session_that_moved_on_and_comes_back_is_adopted_at_once_by_its_old_node() {
    let mut c = Cluster::attached();
    c.switch();
    rebind(&mut c.h, NEW_PATH);
    c.switch();
    let fenced_before = c.h.server.counters().cluster.fenced;

    // Back to node 1 before its next ownership check: its stale copy does not know the
    // token node 2 issued, so it checks the store at once.
    c.h.client
        .start_rebind(CLIENT_PATH, Reason::TransportDead, c.h.now);
    c.h.pump();

    assert_eq!(fenced_before, 0);
    assert_eq!(c.h.server.counters().cluster.fenced, 1);
    assert_eq!(c.h.client.state(), State::Attached);
    assert_eq!(c.h.client.bound_path(), Some(CLIENT_PATH));
    let live: Vec<&Session> =
        c.h.server
            .sessions()
            .map(|(_, s)| s)
            .filter(|s| !s.state().is_terminated())
            .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].bound_path(), live[0].epoch()),
        (Some(SERVER_PATH), 3)
    );
    c.h.assert_no_violations();
}

#[test]
fn a_reattach_replayed_to_another_node_after_its_commit_is_refused_by_the_stored_token_floor() {
    let mut c = Cluster::attached();
    let sid = c.sid();
    c.switch();
    rebind(&mut c.h, NEW_PATH);
    let captured = last_reattach_init(&c.h);
    let node1 = &mut c.other;
    let check_at = node1.poll_timeout().expect("node 1 checks its ownership");
    node1.handle_timeout(check_at);
    while node1.poll_event().is_some() {}
    let writes = c.store.claims_applied();
    let owner = c.store.owner(sid);

    let replay = node1.handle_datagram(PathId(66), &mut captured.clone(), check_at);

    assert_eq!(replay, EndpointInbound::Dropped(DropReason::TokenRejected));
    assert_eq!(node1.counters().reattach.token_reused, 1);
    assert_eq!(node1.counters().reattach.wire.dh_started, 0, "no DH spent");
    assert_eq!(node1.session_count(), 0, "nothing left behind");
    assert_eq!(c.store.claims_applied(), writes, "no store write");
    assert_eq!(c.store.owner(sid), owner);
    let mut buf = Vec::new();
    assert_eq!(node1.poll_transmit(check_at, &mut buf), None, "no reply");
}

#[test]
fn a_reattach_another_node_accepted_is_refused_by_the_stored_counter_at_every_other_node() {
    let mut c = Cluster::attached();
    let sid = c.sid();
    c.switch();
    let init = first_init(&mut c.h);
    c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());
    let now = c.h.now;
    let mut node3 = node(&c.store, 3, 50, c.h.clock);
    let writes = c.store.claims_applied();
    let owner = c.store.owner(sid);

    let at_owner = c.other.handle_datagram(PathId(66), &mut init.clone(), now);
    let at_stranger = node3.handle_datagram(PathId(66), &mut init.clone(), now);

    let replay = EndpointInbound::Dropped(DropReason::ReattachReplay);
    assert_eq!((at_owner, at_stranger), (replay.clone(), replay));
    assert_eq!(c.other.counters().reattach.stale_counter, 1);
    assert_eq!(node3.counters().reattach.stale_counter, 1);
    assert_eq!(node3.session_count(), 0, "nothing left behind");
    assert!(
        only_session(&c.other).state().is_bound(),
        "the owner is untouched"
    );
    assert_eq!(c.store.claims_applied(), writes, "no store write");
    assert_eq!(c.store.owner(sid), owner);
    assert!(drain_endpoint(&mut c.other, now).is_empty(), "no reply");
    assert!(drain_endpoint(&mut node3, now).is_empty(), "no reply");
}

#[test]
fn a_restarted_node_refuses_a_replay_accepted_before_the_restart_and_accepts_the_next_reattach() {
    let mut c = Cluster::attached();
    let init = first_init(&mut c.h);
    c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());
    let lost_resp = server_out(&mut c.h);
    // The node restarts: its memory (sessions, replay filters) is gone; the store remains.
    c.h.server = node(&c.store, 1, 40, c.h.clock);
    let writes = c.store.claims_applied();

    let replay = c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());
    let replay_writes = c.store.claims_applied() - writes;
    let refused_sessions = c.h.server.session_count();
    c.h.advance(retry());

    assert_eq!(lost_resp.len(), 1, "the pre-restart attempt was accepted");
    assert_eq!(replay, EndpointInbound::Dropped(DropReason::ReattachReplay));
    assert_eq!((replay_writes, refused_sessions), (0, 0));
    assert_eq!(c.h.client.state(), State::Attached);
    assert_eq!(c.h.client.bound_path(), Some(NEW_PATH));
    let restarted = only_session(&c.h.server);
    assert_eq!(restarted.bound_path(), Some(NEW_SERVER_PATH));
    assert_eq!((c.h.client.epoch(), restarted.epoch()), (2, 2));
    c.h.assert_no_violations();
}

#[test]
fn after_a_restart_a_replay_of_a_committed_reattach_is_refused_by_the_token_floor() {
    let mut c = Cluster::attached();
    rebind(&mut c.h, NEW_PATH);
    let committed = last_reattach_init(&c.h);
    c.h.server = node(&c.store, 1, 40, c.h.clock);
    let writes = c.store.claims_applied();

    let replay =
        c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut committed.clone());
    rebind(&mut c.h, CLIENT_PATH);

    assert_eq!(replay, EndpointInbound::Dropped(DropReason::TokenRejected));
    assert_eq!(
        c.store.claims_applied() - writes,
        2,
        "only the next reattach wrote"
    );
    assert_eq!(c.h.client.bound_path(), Some(CLIENT_PATH));
    assert_eq!(only_session(&c.h.server).epoch(), 3);
    c.h.assert_no_violations();
}

#[test]
fn two_concurrent_reattaches_via_two_nodes_bind_exactly_once_and_the_loser_is_superseded() {
    let mut c = Cluster::attached();
    start_rebind(&mut c.h, NEW_PATH);
    let (_, older) = only(client_out(&mut c.h));
    c.h.now += retry();
    c.h.client.handle_timeout(c.h.now);
    let (_, mut newer) = only(client_out(&mut c.h));
    let now = c.h.now;

    // The newer attempt reaches node 2 first; the older one reaches node 1 (the owner) after.
    c.switch();
    let at_node2 = c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut newer);
    let node2_resp = server_out(&mut c.h);
    let at_node1 = c
        .other
        .handle_datagram(NEW_SERVER_PATH, &mut older.clone(), now);
    let node1_out = drain_endpoint(&mut c.other, now);
    for (_, mut resp) in node2_resp {
        c.h.deliver_to_client_on(NEW_PATH, &mut resp);
    }
    c.h.pump();

    assert_eq!(
        (at_node2, at_node1),
        (EndpointInbound::Consumed, EndpointInbound::Consumed)
    );
    assert_eq!(c.other.counters().reattach.superseded, 1);
    assert_eq!(node1_out.len(), 1, "the loser answers SUPERSEDED");
    let check_at = c.other.poll_timeout().expect("node 1 checks its ownership");
    c.other.handle_timeout(check_at);
    let (_, node1_copy) = c.other.sessions().next().expect("node 1's copy");
    assert_eq!(node1_copy.last_reason(), Some(Reason::OwnershipLost));
    assert_eq!(c.h.client.state(), State::Attached);
    let winner = only_session(&c.h.server);
    assert_eq!(winner.bound_path(), Some(NEW_SERVER_PATH));
    let bound = [node1_copy.bound_path(), winner.bound_path()];
    assert_eq!(bound.iter().flatten().count(), 1, "exactly one binding");
    c.h.assert_no_violations();
}

#[test]
fn the_newer_of_two_reattaches_wins_even_when_the_older_claimed_first() {
    let mut c = Cluster::attached();
    start_rebind(&mut c.h, NEW_PATH);
    let (_, mut older) = only(client_out(&mut c.h));
    c.h.now += retry();
    c.h.client.handle_timeout(c.h.now);
    let (_, mut newer) = only(client_out(&mut c.h));

    let first = c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut older);
    let stale_resp = server_out(&mut c.h);
    c.switch();
    let second = c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut newer);
    c.h.pump();
    let node1 = &mut c.other;
    let check_at = node1.poll_timeout().expect("node 1 checks its ownership");
    node1.handle_timeout(check_at);

    assert_eq!(
        (first, second),
        (EndpointInbound::Consumed, EndpointInbound::Consumed)
    );
    assert_eq!(stale_resp.len(), 1);
    assert_eq!(c.h.client.state(), State::Attached);
    assert_eq!(
        only_session(&c.h.server).bound_path(),
        Some(NEW_SERVER_PATH)
    );
    assert_eq!(
        c.store.owner(c.sid()).unwrap().map(|o| o.0),
        Some(NodeId(2))
    );
    let (_, node1_copy) = c.other.sessions().next().expect("node 1's copy");
    assert_eq!(node1_copy.last_reason(), Some(Reason::OwnershipLost));
    c.h.assert_no_violations();
}

#[test]
fn a_newer_reattach_at_the_old_owner_retries_its_claim_against_the_record_and_wins() {
    let mut c = Cluster::attached();
    start_rebind(&mut c.h, NEW_PATH);
    let (_, mut older) = only(client_out(&mut c.h));
    c.h.now += retry();
    c.h.client.handle_timeout(c.h.now);
    let (_, mut newer) = only(client_out(&mut c.h));
    let now = c.h.now;

    // The older attempt is claimed at node 2 (its answer lost); the newer one reaches node 1,
    // whose own copy is now one version behind the record.
    let at_node2 = c.other.handle_datagram(NEW_SERVER_PATH, &mut older, now);
    let _lost = drain_endpoint(&mut c.other, now);
    let at_node1 = c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut newer);
    c.h.pump();

    assert_eq!(
        (at_node2, at_node1),
        (EndpointInbound::Consumed, EndpointInbound::Consumed)
    );
    assert_eq!(c.h.server.counters().reattach.accepted, 1);
    assert_eq!(c.h.client.state(), State::Attached);
    let live: Vec<&Session> =
        c.h.server
            .sessions()
            .map(|(_, s)| s)
            .filter(|s| !s.state().is_terminated())
            .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].bound_path(), live[0].epoch()),
        (Some(NEW_SERVER_PATH), 2)
    );
    assert_eq!(
        c.store.owner(c.sid()).unwrap(),
        Some((NodeId(1), Version(4)))
    );
    c.h.assert_no_violations();
}

#[test]
fn tokens_a_rekey_granted_after_the_last_snapshot_work_at_every_other_node() {
    let mut c = Cluster::attached();
    c.h.advance(Policy::default().rekey_after + Duration::from_secs(1));
    assert!(
        c.h.client_events
            .iter()
            .any(|e| matches!(e, Event::Rekeyed { .. })),
        "the rekey granted tokens the store does not know"
    );
    c.switch();

    // Node 2 claims the first attempt but its answer is lost; node 3 gets the retry.
    let init = first_init(&mut c.h);
    let at_node2 = c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());
    let _lost = server_out(&mut c.h);
    let accepted_at_node2 = c.h.server.counters().reattach.accepted;
    c.h.server = node(&c.store, 3, 50, c.h.clock);
    c.h.advance(retry());

    assert_eq!(
        (at_node2, accepted_at_node2),
        (EndpointInbound::Consumed, 1)
    );
    assert_eq!(c.h.client.state(), State::Attached);
    assert_eq!(c.h.client.bound_path(), Some(NEW_PATH));
    let node3 = only_session(&c.h.server);
    assert_eq!(
        (node3.bound_path(), node3.epoch()),
        (Some(NEW_SERVER_PATH), 2)
    );
    assert_eq!(
        c.store.owner(c.sid()).unwrap().map(|o| o.0),
        Some(NodeId(3))
    );
    c.h.assert_no_violations();
}

#[test]
fn a_node_that_cannot_reach_the_store_ends_its_session_at_the_lease_deadline_and_not_before() {
    let mut c = Cluster::attached();
    let attached_at = c.h.now;
    c.h.advance(Duration::from_millis(2500));
    let last_ok = c.h.t0 + Duration::from_secs(2);
    c.store.set_available(false);
    let lease = Policy::default().ownership_lease;

    c.h.advance(last_ok + lease - c.h.now - Duration::from_millis(1));
    let just_before = only_session(&c.h.server).state();
    c.h.advance(Duration::from_millis(1));

    assert_eq!(attached_at, c.h.t0);
    assert!(just_before.is_bound(), "alive one tick before the deadline");
    let last = c.h.server_transitions().last().copied();
    assert_eq!(
        last,
        Some((State::Attached, State::Terminated, Reason::StoreUnavailable))
    );
    let ended_at = c.h.server_events.iter().rev().find_map(|(_, e)| match e {
        Event::Transition(r) => r.at,
        _ => None,
    });
    assert_eq!(
        ended_at,
        Some(last_ok + lease),
        "exactly at the lease deadline"
    );
    assert_eq!(c.h.server.counters().cluster.leases_expired, 1);
}

#[test]
fn a_reattach_while_the_store_is_down_gets_store_unavailable_and_changes_nothing() {
    let mut c = Cluster::attached();
    let init = first_init(&mut c.h);
    c.store.set_available(false);
    let writes = c.store.claims_applied();

    c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());
    c.h.pump();

    assert_eq!(c.h.server.counters().reattach.store_unavailable, 1);
    assert_eq!(c.store.claims_applied(), writes);
    let session = only_session(&c.h.server);
    assert_eq!(
        (session.bound_path(), session.epoch()),
        (Some(SERVER_PATH), 1)
    );
    assert_eq!(c.h.client.state(), State::Recovering, "the client retries");
    c.store.set_available(true);
    c.h.advance(retry());
    assert_eq!(c.h.client.bound_path(), Some(NEW_PATH));
}

#[test]
fn an_unknown_claim_outcome_that_applied_is_treated_as_success() {
    let mut c = Cluster::attached();
    c.store.inject(StoreFault::UnknownApplied);

    rebind(&mut c.h, NEW_PATH);

    let cluster = &c.h.server.counters().cluster;
    assert_eq!(
        (cluster.claims_unknown, cluster.claims_unknown_applied),
        (1, 1)
    );
    assert_eq!(c.h.server.counters().reattach.accepted, 1);
    assert_eq!(c.h.client.bound_path(), Some(NEW_PATH));
    assert_eq!(only_session(&c.h.server).epoch(), 2);
    c.h.assert_no_violations();
}

#[test]
fn an_unknown_claim_outcome_that_did_not_apply_is_treated_as_failure_and_the_retry_succeeds() {
    let mut c = Cluster::attached();
    let init = first_init(&mut c.h);
    c.store.inject(StoreFault::UnknownNotApplied);
    let writes = c.store.claims_applied();

    c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());
    c.h.pump();
    let unchanged = (c.store.claims_applied(), server_binding(&c.h));
    c.h.advance(retry());

    let counters = c.h.server.counters();
    assert_eq!(
        (
            counters.cluster.claims_unknown,
            counters.cluster.claims_unknown_applied
        ),
        (1, 0)
    );
    assert_eq!(counters.reattach.store_unavailable, 1);
    assert_eq!(unchanged, (writes, (Some(SERVER_PATH), 1)));
    assert_eq!(c.h.client.bound_path(), Some(NEW_PATH));
    assert_eq!(server_binding(&c.h), (Some(NEW_SERVER_PATH), 2));
    c.h.assert_no_violations();
}

#[test]
fn a_commit_whose_claim_outcome_is_unknown_but_applied_binds() {
    let mut c = Cluster::attached();
    let init = first_init(&mut c.h);
    c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());
    let (_, mut resp) = only(server_out(&mut c.h));
    c.h.deliver_to_client_on(NEW_PATH, &mut resp);
    let (_, mut confirm) = client_out(&mut c.h).remove(0);
    c.store.inject(StoreFault::UnknownApplied);

    c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut confirm);
    c.h.pump();

    assert_eq!(c.h.server.counters().cluster.claims_unknown_applied, 1);
    assert_eq!(server_binding(&c.h), (Some(NEW_SERVER_PATH), 2));
    assert_eq!(
        c.store.owner(c.sid()).unwrap(),
        Some((NodeId(1), Version(3)))
    );
    c.h.assert_no_violations();
}

#[test]
fn a_commit_whose_claim_fails_ends_the_session_and_never_binds() {
    let mut c = Cluster::attached();
    let init = first_init(&mut c.h);
    c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());
    let (_, mut resp) = only(server_out(&mut c.h));
    c.h.deliver_to_client_on(NEW_PATH, &mut resp);
    let (_, mut confirm) = client_out(&mut c.h).remove(0);
    // Another node claims the record between CAS #1 and the PATH_CONFIRM.
    let sid = c.sid();
    let version = c.store.owner(sid).unwrap().map(|o| o.1).unwrap();
    c.store.claim(sid, NodeId(9), Some(version), b"x").unwrap();

    c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut confirm);
    c.h.pump();

    assert_eq!(c.h.server.counters().cluster.commits_lost, 1);
    let transitions = c.h.server_transitions();
    assert_eq!(
        transitions.last(),
        Some(&(State::Attached, State::Terminated, Reason::OwnershipLost))
    );
    assert!(
        !transitions.iter().any(|t| t.2 == Reason::ReattachAccepted),
        "never bound to the new path"
    );
}

#[test]
fn a_corrupted_snapshot_is_refused_as_an_unknown_session_and_counted() {
    let mut c = Cluster::attached();
    let sid = c.sid();
    assert!(c.store.tamper_snapshot(sid, &[0x5a; 400]));
    c.switch();

    start_rebind(&mut c.h, NEW_PATH);
    let (_, mut init) = only(client_out(&mut c.h));
    let result = c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut init);

    assert_eq!(result, EndpointInbound::Dropped(DropReason::UnknownSession));
    let counters = c.h.server.counters();
    assert_eq!(counters.cluster.snapshots_rejected, 1);
    assert_eq!(counters.reattach.unknown_session, 1);
    assert_eq!(counters.reattach.wire.dh_started, 0, "no DH spent");
    assert_eq!(c.h.server.session_count(), 0);
}

#[test]
fn a_rebuilt_session_whose_reattach_fails_the_proof_of_possession_leaves_nothing_behind() {
    let mut c = Cluster::attached();
    let server_key = c.h.server.public_key();
    c.switch();
    let mut forged = first_init(&mut c.h);
    let mac1_at = forged.len() - 2 * kdf::MAC_LEN;
    forged[mac1_at - 1] ^= 1;
    let mac1 = kdf::mac1(&kdf::mac1_key(&server_key), &forged[..mac1_at]);
    forged[mac1_at..mac1_at + kdf::MAC_LEN].copy_from_slice(&mac1);
    let writes = c.store.claims_applied();

    let result = c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut forged);

    assert_eq!(
        result,
        EndpointInbound::Dropped(DropReason::HandshakeFailed)
    );
    assert_eq!(c.h.server.session_count(), 0);
    assert_eq!(c.h.server.counters().cluster.adoptions_discarded, 1);
    assert_eq!(c.store.claims_applied(), writes);
    assert!(server_out(&mut c.h).is_empty(), "silence");
}

#[test]
fn an_unconfirmed_reattach_at_another_node_does_not_displace_the_validated_binding() {
    let mut c = Cluster::attached();
    c.switch();
    let init = first_init(&mut c.h);
    c.h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());
    let _lost = server_out(&mut c.h);
    let now = c.h.now;

    c.other.check_ownership(now);
    let expire = now + crate::DosLimits::default().pending_reattach_ttl;
    c.h.server.handle_timeout(expire);

    let node1 = only_session(&c.other);
    assert!(
        node1.state().is_bound(),
        "node 1 keeps its validated binding"
    );
    assert_eq!(c.other.counters().cluster.fenced, 0);
    assert_eq!(
        c.h.server.session_count(),
        0,
        "the unconfirmed copy is forgotten"
    );
    assert_eq!(
        c.store.owner(c.sid()).unwrap().map(|o| o.1),
        Some(Version(2))
    );
}

fn drain_endpoint(endpoint: &mut Endpoint, now: std::time::Instant) -> Vec<(PathId, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(t) = endpoint.poll_transmit(now, &mut buf) {
        out.push((t.path, buf[..t.len].to_vec()));
    }
    out
}

fn server_binding(h: &Harness) -> (Option<PathId>, u64) {
    let session = only_session(&h.server);
    (session.bound_path(), session.epoch())
}

/// Found by fuzz target `session_events`: a late `handle_timeout` (the process was descheduled
/// past several deadlines) must apply a recovery deadline that passed before the lease ran out
/// at its own time, not end the session at the later lease deadline (RECOVERING would outlast
/// the recovery window: `RecoveryTooLong`).
#[test]
fn a_late_timer_run_ends_a_recovering_session_at_its_recovery_deadline_not_at_its_lease() {
    let mut c = Cluster::attached();
    c.h.blackhole = true;
    let mut waited = Duration::ZERO;
    while only_session(&c.h.server).state() != State::Recovering {
        assert!(waited < Duration::from_secs(60), "the server never noticed");
        c.h.advance(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    // Ownership checks keep renewing the lease until just before the recovery deadline, so
    // the lease deadline lies past it.
    c.h.advance(Policy::default().recovery_window - Duration::from_secs(1));
    assert_eq!(only_session(&c.h.server).state(), State::Recovering);

    let late = c.h.now + Policy::default().ownership_lease * 3;
    c.h.server.handle_timeout(late);

    let session = only_session(&c.h.server);
    assert_eq!(session.state(), State::Terminated);
    assert_eq!(session.last_reason(), Some(Reason::RecoveryWindowExceeded));
    assert_eq!(c.h.server.counters().cluster.leases_expired, 0);
    assert_eq!(c.h.server.violations(), 0);
}
