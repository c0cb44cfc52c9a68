//! Dead paths: RECOVERING, reattach, the recovery window, a lost session.

use std::time::Duration;

use super::*;

fn dead_after() -> Duration {
    Policy::default().dead_after
}

#[test]
fn a_dead_path_goes_recovering_then_reattaches_with_epoch_two_and_the_same_session_id() {
    let mut h = Harness::attached();
    let sid = h.client.session_id();
    h.blackhole = true;

    h.advance(dead_after() + Duration::from_secs(1));
    let client_state = h.client.state();
    let server_state = h.server_session().1.state();
    h.blackhole = false;
    h.advance(Policy::default().reattach_retry);

    assert_eq!(
        (client_state, server_state),
        (State::Recovering, State::Recovering)
    );
    let (handle, server) = h.server_session();
    assert_eq!(h.client.state(), State::Attached);
    assert_eq!(server.state(), State::Attached);
    assert_eq!(h.client.session_id(), sid);
    assert_eq!(server.session_id(), sid);
    assert_eq!((h.client.epoch(), server.epoch()), (2, 2));
    assert_eq!(
        h.client_transitions(),
        [
            (State::Birth, State::Attached, Reason::HandshakeComplete),
            (State::Attached, State::Recovering, Reason::TransportDead),
            (State::Recovering, State::Attached, Reason::ReattachAccepted),
        ]
    );
    h.client.send(b"after recovery", h.now).unwrap();
    h.server.send(handle, b"and back", h.now).unwrap();
    h.pump();
    assert_eq!(
        h.server_received.last().map(|(_, p)| p.as_slice()),
        Some(&b"after recovery"[..])
    );
    assert_eq!(
        h.client_received.last().map(Vec::as_slice),
        Some(&b"and back"[..])
    );
    h.assert_no_violations();
}

#[test]
fn a_reattach_from_another_path_moves_the_server_binding() {
    let mut h = Harness::attached();
    h.blackhole = true;
    h.advance(dead_after() + Duration::from_secs(1));
    h.blackhole = false;
    h.server_sees_path = PathId(11);

    h.advance(Policy::default().reattach_retry);

    let (_, server) = h.server_session();
    assert_eq!(server.bound_path(), Some(PathId(11)));
    assert_eq!(server.epoch(), 2);
    assert_eq!(h.server.counters().rebinds, 1);
    h.assert_no_violations();
}

#[test]
fn recovery_window_exceeded_terminates_exactly_at_the_deadline() {
    let mut h = Harness::attached();
    h.blackhole = true;

    h.advance(dead_after() + Policy::default().recovery_window + Duration::from_secs(10));

    assert_eq!(h.client.state(), State::Terminated);
    let records = h.client_records();
    let recovering = records
        .iter()
        .find(|r| r.to == State::Recovering)
        .expect("entered RECOVERING");
    let terminated = records.last().unwrap();
    assert_eq!(terminated.reason, Reason::RecoveryWindowExceeded);
    let entered = recovering.at.unwrap();
    assert_eq!(
        terminated.at,
        Some(entered + Policy::default().recovery_window)
    );
    assert_eq!(
        terminated.unix_ms,
        h.clock
            .unix_ms_at(entered + Policy::default().recovery_window)
    );
    assert_eq!(
        h.server.session_count(),
        0,
        "the server session ended the same way"
    );
    h.assert_no_violations();
}

#[test]
fn a_server_that_lost_the_session_ends_the_client_with_session_lost() {
    let mut h = Harness::attached();
    let keys = Keys::new();
    let restarted = keys.server_config(h.clock, keys.client.public_key());
    h.server = Endpoint::new(restarted, rng(21)).unwrap();

    h.advance(dead_after() + Policy::default().handshake_retry + Duration::from_secs(1));

    // Its tokens no longer open (REATTACH_INIT goes unanswered); the lost-session probe (a
    // resume handshake) gets a new session id.
    assert!(h.server.counters().reattach.wire.token_rejected > 0);
    assert_eq!(h.client.state(), State::Terminated);
    assert_eq!(
        h.client_transitions().last(),
        Some(&(State::Recovering, State::Terminated, Reason::SessionLost))
    );
    assert_eq!(h.client.violations(), 0);
}

#[test]
fn a_shell_that_wakes_late_still_terminates_at_the_recovery_deadline_without_a_violation() {
    let mut h = Harness::attached();
    h.blackhole = true;
    h.advance(dead_after() + Duration::from_secs(1));
    assert_eq!(h.client.state(), State::Recovering);
    let deadline = h
        .client_records()
        .last()
        .and_then(|r| r.at)
        .expect("the RECOVERING record has its instant")
        + Policy::default().recovery_window;

    // One wake-up a minute after the deadline (a suspended laptop, a busy runtime).
    let late = deadline + Duration::from_secs(60);
    h.client.handle_timeout(late);
    h.drain_events();

    assert_eq!(h.client.state(), State::Terminated);
    let last = h.client_records().last().map(|r| (r.reason, r.at));
    assert_eq!(
        last,
        Some((Reason::RecoveryWindowExceeded, Some(deadline))),
        "the record says when the limit was reached"
    );
    assert_eq!(h.client.violations(), 0);
}

#[test]
fn a_late_datagram_after_the_recovery_deadline_does_not_revive_the_session() {
    let mut h = Harness::attached();
    h.blackhole = true;
    h.advance(dead_after() + Duration::from_secs(1));
    let recovering_at = h.now;
    let mut junk = vec![0u8; 64];

    let inbound = h.client.handle_datagram(
        CLIENT_PATH,
        &mut junk,
        recovering_at + Policy::default().recovery_window + Duration::from_secs(5),
    );

    assert!(matches!(inbound, Inbound::Dropped(_)));
    assert_eq!(h.client.state(), State::Terminated);
    assert_eq!(h.client.violations(), 0);
}
