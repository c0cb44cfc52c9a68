//! The authenticated REATTACH: rebinding a live session to another path (docs/protocol.md §13).

use std::sync::Arc;
use std::time::Duration;

use jvpn_wire::{MessageType, peek_type};

use super::*;
use crate::{DropReason, MemoryOwnershipStore, NodeId, OwnershipStore, Transmit, Version};

/// The client's second path, and the server's name for it.
pub(super) const NEW_PATH: PathId = PathId(2);
pub(super) const NEW_SERVER_PATH: PathId = PathId(102);

pub(super) fn retry() -> Duration {
    Policy::default().reattach_retry
}

/// Every datagram `poll` yields, with its path.
pub(super) fn drain(
    mut poll: impl FnMut(&mut Vec<u8>) -> Option<Transmit>,
) -> Vec<(PathId, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(t) = poll(&mut buf) {
        out.push((t.path, buf[..t.len].to_vec()));
    }
    out
}

/// Every datagram the client has to send now, with its path.
pub(super) fn client_out(h: &mut Harness) -> Vec<(PathId, Vec<u8>)> {
    let now = h.now;
    drain(|buf| h.client.poll_transmit(now, buf))
}

/// Every datagram the server has to send now, with its path.
pub(super) fn server_out(h: &mut Harness) -> Vec<(PathId, Vec<u8>)> {
    let now = h.now;
    drain(|buf| h.server.poll_transmit(now, buf))
}

pub(super) fn only(mut datagrams: Vec<(PathId, Vec<u8>)>) -> (PathId, Vec<u8>) {
    assert_eq!(datagrams.len(), 1, "exactly one datagram");
    datagrams.remove(0)
}

/// Lets the policy's minimum interval between planned switches pass.
pub(super) fn settle(h: &mut Harness) {
    h.advance(Policy::default().min_switch_interval);
}

/// Starts a planned rebind to `path` after the minimum switch interval, sending nothing yet.
pub(super) fn start_rebind(h: &mut Harness, path: PathId) {
    settle(h);
    h.client.start_rebind(path, Reason::PlannedSwitch, h.now);
}

/// Starts a planned rebind to `path` (after the minimum switch interval) and runs it to the end
/// (INIT, RESP, PATH_CONFIRM, PATH_RESPONSE).
pub(super) fn rebind(h: &mut Harness, path: PathId) {
    start_rebind(h, path);
    h.pump();
}

/// Starts a planned rebind to [`NEW_PATH`] and returns its REATTACH_INIT, not yet delivered.
pub(super) fn first_init(h: &mut Harness) -> Vec<u8> {
    start_rebind(h, NEW_PATH);
    only(client_out(h)).1
}

/// The server session's bound path and epoch, as `(path, epoch)`.
fn server_binding(h: &Harness) -> (Option<PathId>, u64) {
    let (_, server) = h.server_session();
    (server.bound_path(), server.epoch())
}

/// A server config for `keys` whose sessions are claimed in `store`.
fn owned_server_config(
    keys: &Keys,
    store: &MemoryOwnershipStore,
    clock: ClockAnchor,
) -> ServerConfig {
    let mut cfg = keys.server_config(clock, keys.client.public_key());
    cfg.cluster.ownership = Some(Arc::new(store.clone()));
    cfg
}

/// A client and a server whose sessions are claimed in `store`, not yet attached.
fn harness_with_store(keys: &Keys, store: &MemoryOwnershipStore) -> Harness {
    Harness::with_configs(
        |clock| keys.client_config(clock, keys.server.public_key()),
        |clock| owned_server_config(keys, store, clock),
    )
}

#[test]
fn the_first_attach_delivers_a_resumption_grant() {
    let h = Harness::attached();

    assert!(h.client.has_grant());
    let init_len = h.client_sent[0].len();
    let resp_len = h.server_sent[0].len();
    assert!(resp_len <= init_len, "{resp_len} > {init_len}");
}

#[test]
fn a_rebind_on_a_new_path_commits_on_the_server_only_after_path_confirm() {
    let mut h = Harness::attached();
    start_rebind(&mut h, NEW_PATH);

    let (path, mut init) = only(client_out(&mut h));
    assert_eq!(
        (path, peek_type(&init)),
        (NEW_PATH, Ok(MessageType::ReattachInit))
    );
    assert_eq!(h.client.state(), State::Recovering);
    assert_eq!(
        h.deliver_to_server_on(NEW_SERVER_PATH, &mut init),
        EndpointInbound::Consumed
    );
    let (_, server) = h.server_session();
    let before_confirm = (server.state(), server.bound_path(), server.epoch());
    let (resp_path, mut resp) = only(server_out(&mut h));
    h.deliver_to_client_on(NEW_PATH, &mut resp);
    let (confirm_path, mut confirm) = client_out(&mut h).remove(0);
    let (_, server) = h.server_session();
    let still_before = (server.bound_path(), server.epoch());
    h.deliver_to_server_on(NEW_SERVER_PATH, &mut confirm);
    h.pump();

    assert_eq!(
        before_confirm,
        (State::Attached, Some(SERVER_PATH), 1),
        "the claim alone moves nothing"
    );
    assert_eq!(resp_path, NEW_SERVER_PATH);
    assert!(resp.len() <= init.len(), "no amplification");
    assert_eq!(confirm_path, NEW_PATH);
    assert_eq!(still_before, (Some(SERVER_PATH), 1));
    let (_, server) = h.server_session();
    assert_eq!(server.bound_path(), Some(NEW_SERVER_PATH));
    assert_eq!((h.client.epoch(), server.epoch()), (2, 2));
    assert_eq!(h.client.bound_path(), Some(NEW_PATH));
    assert_eq!(
        h.server_transitions()[1..],
        [
            (
                State::Attached,
                State::Recovering,
                Reason::ReattachRequested
            ),
            (State::Recovering, State::Attached, Reason::ReattachAccepted),
        ]
    );
    assert_eq!(
        h.client_transitions()[1..],
        [
            (State::Attached, State::Recovering, Reason::PlannedSwitch),
            (State::Recovering, State::Attached, Reason::ReattachAccepted),
        ]
    );
    assert_eq!(h.server.counters().rebinds, 1);
    h.assert_no_violations();
}

#[test]
fn data_flows_both_ways_after_a_rebind_and_path_confirm_is_not_resent_once_answered() {
    let mut h = Harness::attached();
    rebind(&mut h, NEW_PATH);
    let sent_after_rebind = h.client_sent.len();

    h.advance(retry() * 4);
    h.client.send(b"up", h.now).unwrap();
    let (handle, _) = h.server_session();
    h.server.send(handle, b"down", h.now).unwrap();
    h.pump();

    assert_eq!(h.client_sent.len(), sent_after_rebind + 1, "only the data");
    assert_eq!(
        h.server_received.last().map(|(_, p)| p.as_slice()),
        Some(&b"up"[..])
    );
    assert_eq!(
        h.client_received.last().map(Vec::as_slice),
        Some(&b"down"[..])
    );
    h.assert_no_violations();
}

#[test]
fn frames_of_the_old_binding_are_dropped_and_counted_after_the_commit() {
    let mut h = Harness::attached();
    h.client.send(b"old keys", h.now).unwrap();
    let (_, mut old_frame) = only(client_out(&mut h));

    rebind(&mut h, NEW_PATH);
    let fenced = h.deliver_to_server_on(SERVER_PATH, &mut old_frame);
    h.client.send(b"new keys, old path", h.now).unwrap();
    let (_, mut new_frame) = only(client_out(&mut h));
    let wrong_path = h.deliver_to_server_on(SERVER_PATH, &mut new_frame);

    assert_eq!(fenced, EndpointInbound::Dropped(DropReason::Fenced));
    assert_eq!(wrong_path, EndpointInbound::Dropped(DropReason::WrongPath));
    let (_, server) = h.server_session();
    assert_eq!(server.stats().drops.get(DropReason::Fenced), 1);
    assert_eq!(server.bound_path(), Some(NEW_SERVER_PATH));
}

#[test]
fn a_replayed_reattach_init_is_rejected_and_counted() {
    let mut h = Harness::attached();
    let init = first_init(&mut h);
    h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());
    h.pump();
    let dh_before = h.server.counters().reattach.wire.dh_started;

    let replay = h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());

    assert_eq!(replay, EndpointInbound::Dropped(DropReason::TokenRejected));
    let before_commit = {
        // Replayed before the commit: the ephemeral filter stops it before any DH.
        let mut h = Harness::attached();
        let init = first_init(&mut h);
        h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());
        let dh = h.server.counters().reattach.wire.dh_started;
        let result = h.deliver_to_server_on(NEW_SERVER_PATH, &mut init.clone());
        (
            result,
            h.server.counters().reattach.replays,
            h.server.counters().reattach.wire.dh_started - dh,
        )
    };
    assert_eq!(
        before_commit,
        (EndpointInbound::Dropped(DropReason::ReattachReplay), 1, 0)
    );
    assert_eq!(h.server.counters().reattach.wire.dh_started, dh_before);
    assert_eq!(h.server.counters().reattach.token_reused, 1);
    assert_eq!(server_binding(&h), (Some(NEW_SERVER_PATH), 2));
}

#[test]
fn a_reused_token_is_rejected_after_a_commit() {
    let mut h = Harness::attached();
    start_rebind(&mut h, NEW_PATH);
    let spent = h.client.last_token().expect("the attempt used a token");
    h.pump();

    h.client.force_next_token(spent);
    start_rebind(&mut h, CLIENT_PATH);
    let (_, mut init) = only(client_out(&mut h));
    let result = h.deliver_to_server(&mut init);

    assert_eq!(result, EndpointInbound::Dropped(DropReason::TokenRejected));
    assert_eq!(h.server.counters().reattach.token_reused, 1);
    assert_eq!(
        h.server.counters().reattach.wire.dh_started,
        1,
        "no DH spent"
    );
}

#[test]
fn a_reattach_with_a_stale_counter_is_rejected() {
    let mut h = Harness::attached();
    start_rebind(&mut h, NEW_PATH);
    let (_, mut first) = only(client_out(&mut h));
    h.now += retry();
    h.client.handle_timeout(h.now);
    let (_, mut second) = only(client_out(&mut h));

    let newer = h.deliver_to_server_on(NEW_SERVER_PATH, &mut second);
    let older = h.deliver_to_server_on(NEW_SERVER_PATH, &mut first);

    assert_eq!(newer, EndpointInbound::Consumed);
    assert_eq!(older, EndpointInbound::Dropped(DropReason::ReattachReplay));
    assert_eq!(h.server.counters().reattach.stale_counter, 1);
    assert_eq!(h.server.counters().reattach.accepted, 1);
}

/// ATTACKS.md S4, hold and release: an attacker keeps the first REATTACH_INIT back; the
/// client's retry gets through and binds. Released later, inside the clock window or after it,
/// the held one is refused before any Diffie-Hellman (its token belongs to the batch the commit
/// retired; its counter is below the bound one's too): the binding, the epoch and the version
/// stay as the retry left them.
#[test]
fn a_held_reattach_released_later_never_moves_the_binding() {
    let window = Policy::default().reattach_clock_window;
    for held_for in [
        window - Duration::from_secs(1),
        window + Duration::from_secs(1),
    ] {
        let mut h = Harness::attached();
        let held = first_init(&mut h);
        h.advance(retry());
        h.pump();
        let bound = (server_binding(&h), h.server_session().1.version());
        let dh = h.server.counters().reattach.wire.dh_started;
        h.advance(held_for);
        let before = (server_binding(&h), h.server_session().1.version());

        let released = h.deliver_to_server_on(NEW_SERVER_PATH, &mut held.clone());
        h.pump();

        assert_eq!(bound.0, (Some(NEW_SERVER_PATH), 2), "the retry bound");
        assert_eq!(
            released,
            EndpointInbound::Dropped(DropReason::TokenRejected),
            "held for {held_for:?}"
        );
        assert_eq!(h.server.counters().reattach.token_reused, 1);
        assert_eq!(h.server.counters().reattach.wire.dh_started, dh);
        assert_eq!(h.server.counters().reattach.accepted, 1);
        assert_eq!((server_binding(&h), h.server_session().1.version()), before);
        assert_eq!(before.0, bound.0);
        h.assert_no_violations();
    }
}

#[test]
fn a_timestamp_outside_the_window_gets_clock_then_succeeds_after_resync() {
    let keys = Keys::new();
    let server_key = keys.server.public_key();
    let client_key = keys.client.public_key();
    let mut h = Harness::with_configs(
        |clock| {
            let skewed = ClockAnchor {
                instant: clock.instant,
                unix_nanos: clock.unix_nanos + 600_000_000_000,
            };
            keys.client_config(skewed, server_key)
        },
        |clock| keys.server_config(clock, client_key),
    );
    h.pump();

    rebind(&mut h, NEW_PATH);

    assert_eq!(h.server.counters().reattach.clock, 1);
    assert_eq!(h.server.counters().reattach.accepted, 1);
    assert_eq!(h.client.state(), State::Attached);
    assert_eq!(h.client.bound_path(), Some(NEW_PATH));
    assert_eq!(h.server_session().1.epoch(), 2);
    h.assert_no_violations();
}

#[test]
fn a_reattach_after_the_recovery_window_does_not_revive_the_session() {
    let mut h = Harness::attached();
    h.blackhole = true;
    h.advance(Policy::default().dead_after + Duration::from_secs(1));
    let recovering_at = h
        .client_records()
        .last()
        .and_then(|r| r.at)
        .expect("RECOVERING record");
    let late_init = h.client_sent.last().cloned().expect("an attempt was sent");

    h.advance(Policy::default().recovery_window);
    h.blackhole = false;
    let result = h.deliver_to_server(&mut late_init.clone());

    assert_eq!(peek_type(&late_init), Ok(MessageType::ReattachInit));
    assert_eq!(result, EndpointInbound::Dropped(DropReason::UnknownSession));
    assert_eq!(h.server.session_count(), 0);
    let last = h.client_records().last().map(|r| (r.reason, r.at));
    assert_eq!(
        last,
        Some((
            Reason::RecoveryWindowExceeded,
            Some(recovering_at + Policy::default().recovery_window)
        ))
    );
    h.assert_no_violations();
}

#[test]
fn two_endpoints_sharing_one_ownership_store_bind_exactly_one_session() {
    let keys = Keys::new();
    let store = MemoryOwnershipStore::new();
    let mut h = harness_with_store(&keys, &store);
    // The twin draws the same randomness: it would create the very same session.
    let mut twin = Endpoint::new(owned_server_config(&keys, &store, h.clock), rng(20)).unwrap();
    let (_, init) = only(client_out(&mut h));

    let first = h.deliver_to_server(&mut init.clone());
    let second = twin.handle_datagram(SERVER_PATH, &mut init.clone(), h.now);

    assert_eq!(first, EndpointInbound::Consumed);
    assert_eq!(second, EndpointInbound::Dropped(DropReason::NotOwner));
    assert_eq!(twin.counters().ownership_conflicts, 1);
    assert_eq!(twin.session_count(), 0);
}

#[test]
fn a_reattach_whose_ownership_claim_loses_is_superseded_and_ends_both_sides() {
    let keys = Keys::new();
    let store = MemoryOwnershipStore::new();
    let mut h = harness_with_store(&keys, &store);
    h.pump();
    let sid = h.client.session_id().unwrap();
    start_rebind(&mut h, NEW_PATH);
    // Another node takes the session over between our last ownership check and the claim.
    store
        .claim(sid, NodeId(9), Some(Version(1)), b"not a snapshot")
        .unwrap();

    h.pump();

    assert_eq!(h.server.counters().reattach.superseded, 1);
    assert_eq!(
        h.client_transitions().last(),
        Some(&(State::Recovering, State::Terminated, Reason::Superseded))
    );
    assert_eq!(
        h.server_transitions().last(),
        Some(&(State::Attached, State::Terminated, Reason::OwnershipLost))
    );
    assert_eq!(store.owner(sid), Ok(Some((NodeId(9), Version(2)))));
    h.assert_no_violations();
}

#[test]
fn a_resume_handshake_on_another_path_no_longer_rebinds() {
    let mut h = Harness::attached();
    h.advance(Policy::default().rekey_after - Duration::from_secs(1));
    h.dead_paths.insert(CLIENT_PATH);
    h.advance(Duration::from_secs(1));
    let mut resume = h
        .client_sent
        .iter()
        .rev()
        .find(|d| peek_type(d) == Ok(MessageType::HandshakeInit))
        .cloned()
        .expect("a rekey initiation was sent");
    assert_eq!(peek_type(&resume), Ok(MessageType::HandshakeInit));

    let result = h.deliver_to_server_on(PathId(11), &mut resume);

    assert_eq!(result, EndpointInbound::Dropped(DropReason::WrongPath));
    assert_eq!(h.server.counters().resumes_refused, 1);
    assert_eq!(server_binding(&h), (Some(SERVER_PATH), 1));
}

/// Found by the cluster simulation (seed 7980): the copy of a resume refused on a wrong path,
/// relayed onto the bound path once the exact-replay filter had forgotten it, became a rekey.
#[test]
fn a_resume_refused_on_another_path_is_not_accepted_later_on_the_bound_path() {
    let mut h = Harness::attached();
    h.server.set_dos_limits(crate::DosLimits {
        replay_ttl: Duration::from_millis(1),
        ..crate::DosLimits::default()
    });
    h.advance(Policy::default().rekey_after - Duration::from_secs(1));
    h.dead_paths.insert(CLIENT_PATH);
    h.advance(Duration::from_secs(1));
    let resume = h
        .client_sent
        .iter()
        .rev()
        .find(|d| peek_type(d) == Ok(MessageType::HandshakeInit))
        .cloned()
        .expect("a rekey initiation was sent");
    let refused = h.deliver_to_server_on(PathId(11), &mut resume.clone());
    h.now += Duration::from_millis(5);
    let rekeys = h.server.counters().rekeys;

    let relayed = h.deliver_to_server_on(SERVER_PATH, &mut resume.clone());

    assert_eq!(refused, EndpointInbound::Dropped(DropReason::WrongPath));
    assert_eq!(
        relayed,
        EndpointInbound::Dropped(DropReason::HandshakeReplay)
    );
    assert_eq!(h.server.counters().rekeys, rekeys);
}

#[test]
fn a_rekey_after_a_reattach_keeps_the_binding_and_replenishes_tokens() {
    let mut h = Harness::attached();
    rebind(&mut h, NEW_PATH);

    h.advance(Policy::default().rekey_after + Duration::from_secs(1));

    assert!(
        h.client_events
            .iter()
            .any(|e| matches!(e, Event::Rekeyed { epoch: 2, .. }))
    );
    assert_eq!(h.client.bound_path(), Some(NEW_PATH));
    assert_eq!(h.server_session().1.epoch(), 2);
    rebind(&mut h, CLIENT_PATH);
    assert_eq!((h.client.epoch(), h.server_session().1.epoch()), (3, 3));
    h.assert_no_violations();
}

#[test]
fn a_lost_reattach_resp_is_retried_and_succeeds() {
    let mut h = Harness::attached();
    let mut init = first_init(&mut h);
    h.deliver_to_server_on(NEW_SERVER_PATH, &mut init);
    let lost = server_out(&mut h);

    h.advance(retry());

    assert_eq!(lost.len(), 1);
    assert_eq!(h.server.counters().reattach.accepted, 2);
    assert_eq!(h.client.bound_path(), Some(NEW_PATH));
    assert_eq!(server_binding(&h), (Some(NEW_SERVER_PATH), 2));
    h.assert_no_violations();
}

#[test]
fn a_lost_path_confirm_is_resent_until_the_server_commits() {
    let mut h = Harness::attached();
    let mut init = first_init(&mut h);
    h.deliver_to_server_on(NEW_SERVER_PATH, &mut init);
    let (_, mut resp) = only(server_out(&mut h));
    h.deliver_to_client_on(NEW_PATH, &mut resp);
    let lost_confirm = client_out(&mut h);

    h.advance(retry());

    assert_eq!(lost_confirm.len(), 1);
    assert_eq!(server_binding(&h), (Some(NEW_SERVER_PATH), 2));
    h.assert_no_violations();
}

#[test]
fn six_reattaches_in_a_row_work_and_the_seventh_is_refused_by_the_switch_budget() {
    let mut h = Harness::attached();
    let paths = [NEW_PATH, CLIENT_PATH];

    for i in 0..6 {
        rebind(&mut h, paths[i % 2]);
        h.advance(Duration::from_millis(100));
        assert_eq!(h.client.state(), State::Attached, "reattach {i}");
    }
    rebind(&mut h, NEW_PATH);

    assert_eq!(h.server_session().1.epoch(), 7);
    assert_eq!(h.server.counters().reattach.policy, 1);
    assert_eq!(
        h.client_transitions().last(),
        Some(&(
            State::Recovering,
            State::Terminated,
            Reason::ReattachRejected
        ))
    );
    h.assert_no_violations();
}
