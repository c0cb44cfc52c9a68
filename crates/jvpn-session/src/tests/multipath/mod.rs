//! Multipath client sessions: probing standbys, answering probes off the binding, the fast
//! dead-path detector, switching back up, flapping, and the end of recovery.

mod events_props;
mod net;
mod rebinding;

use std::time::Duration;

use net::Net;

use crate::{DropReason, EndpointInbound, PathState, Policy, Reason, State, SwitchReason};

const ONE_WAY: Duration = Duration::from_millis(10);
const TRAFFIC_EVERY: Duration = Duration::from_millis(10);
/// Long enough after attaching for every path to answer probes.
const SETTLE: Duration = Duration::from_secs(6);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Attached on path 0 with `links` candidates, continuous traffic, settled.
fn busy(links: usize) -> Net {
    let mut net = Net::attached(links, SETTLE);
    net.traffic = Some(TRAFFIC_EVERY);
    net.run_for(Duration::from_secs(1));
    net
}

/// The longest blackout the default policy allows on these links: the fast detector's time,
/// plus the rebind's round trip and the first packet each way after it, plus one traffic
/// interval on either side.
fn blackout_bound(policy: &Policy) -> Duration {
    policy.fast_detection_time().expect("fast detector on") + ONE_WAY * 4 + TRAFFIC_EVERY * 2
}

#[test]
fn standby_paths_are_probed_and_reported_with_rtt_and_loss() {
    let net = Net::attached(3, SETTLE);

    let reports = net.client.paths();

    assert_eq!(reports.len(), 3);
    assert!(reports[0].active && !reports[1].active && !reports[2].active);
    for (i, report) in reports.iter().enumerate() {
        assert_eq!(report.path, net.path(i));
        assert_eq!(report.preference_rank as usize, i);
        assert!(report.up);
        assert_eq!(report.state, PathState::Alive, "{report:?}");
        assert_eq!(report.rtt, Some(ONE_WAY * 2));
        assert_eq!(report.jitter, Some(Duration::ZERO));
        assert_eq!(report.loss_percent, 0);
        assert!(report.last_seen.is_some());
        assert!(net.sent_on[i].0 > 0, "path {i} was probed");
    }
    assert_eq!(
        net.client.last_switch(),
        Some((SwitchReason::NoActivePath, net.path(0)))
    );
    net.assert_no_violations();
}

#[test]
fn the_server_answers_probes_on_a_standby_path_without_moving_its_binding() {
    let net = Net::attached(2, SETTLE);

    let server = net.server_session();

    assert_eq!(server.bound_path(), Some(net.server_path(0)));
    assert_eq!(server.epoch(), 1);
    let (probes, answers) = net.sent_on[1];
    assert!(
        answers > 0 && answers <= probes,
        "{probes} probes, {answers} answers"
    );
    let (probe_bytes, answer_bytes) = net.bytes_on[1];
    assert!(answer_bytes <= probe_bytes, "no amplification");
    assert!(net.server_drops.is_empty(), "{:?}", net.server_drops);
    net.assert_no_violations();
}

#[test]
fn data_on_a_standby_path_is_still_dropped_by_the_server() {
    let mut net = Net::attached(2, SETTLE);
    // Deliver the client's next data frame as if it came from the standby path.
    net.links[0].server = net.server_path(1);
    net.client.send(b"elsewhere", net.now).unwrap();

    net.run_for(ms(5));
    net.run_for(ms(10));

    assert!(net.server_rx.is_empty());
    assert!(
        net.server_drops
            .iter()
            .any(|(_, d)| *d == EndpointInbound::Dropped(DropReason::WrongPath))
    );
    assert_eq!(net.server_session().epoch(), 1);
}

#[test]
fn a_blackholed_active_path_under_traffic_moves_to_the_standby_within_the_policy_bound() {
    let mut net = busy(2);
    let policy = Policy::default();
    let cut = net.now;

    net.set_dropped(0, true);
    net.run_for(Duration::from_secs(3));

    let blackout = net.longest_gap_after(cut);
    assert!(
        blackout <= blackout_bound(&policy),
        "blackout {blackout:?} > {:?}",
        blackout_bound(&policy)
    );
    assert!(blackout_bound(&policy) < Duration::from_secs(1));
    assert_eq!(net.client.bound_path(), Some(net.path(1)));
    assert_eq!(net.server_session().bound_path(), Some(net.server_path(1)));
    let after: Vec<_> = net
        .client_transitions()
        .into_iter()
        .filter(|t| t.0 >= cut)
        .map(|(_, from, to, reason)| (from, to, reason))
        .collect();
    assert_eq!(
        after,
        [
            (State::Attached, State::Volatile, Reason::ProbeLost),
            (State::Volatile, State::Recovering, Reason::TransportDead),
            (State::Recovering, State::Attached, Reason::ReattachAccepted),
        ]
    );
    assert_eq!(
        net.switches().last().map(|s| (s.1, s.2, s.3)),
        Some((Some(net.path(0)), net.path(1), SwitchReason::TransportDead))
    );
    assert_eq!(
        net.client.last_switch(),
        Some((SwitchReason::TransportDead, net.path(1)))
    );
    net.assert_no_violations();
}

#[test]
fn an_idle_session_is_not_flagged_by_the_silence_detector() {
    let mut net = Net::attached(2, SETTLE);

    net.run_for(Duration::from_secs(60));

    assert_eq!(net.client.state(), State::Attached);
    assert_eq!(net.client.bound_path(), Some(net.path(0)));
    assert_eq!(net.client_transitions().len(), 1);
    assert_eq!(net.switches().len(), 1, "the first attach only");
}

#[test]
fn the_preferred_path_that_comes_back_is_used_again_after_dwell_and_one_probe_period() {
    let mut net = busy(2);
    let policy = Policy::default();
    net.set_dropped(0, true);
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.client.bound_path(), Some(net.path(1)));
    let restored = net.now;

    net.set_dropped(0, false);
    net.run_for(Duration::from_secs(40));

    let (back_at, from, to, reason) = *net.switches().last().expect("switched back");
    assert_eq!(
        (from, to, reason),
        (
            Some(net.path(1)),
            net.path(0),
            SwitchReason::PreferredPathBack
        )
    );
    let first_answer = *net.client_rx_on[0]
        .iter()
        .find(|&&t| t > restored)
        .expect("path 0 answered a probe");
    assert!(
        back_at >= first_answer + policy.dwell,
        "not before the dwell"
    );
    assert!(
        back_at <= first_answer + policy.dwell + policy.probe_interval + ONE_WAY * 4,
        "dwell + one probe period: answered at {:?}, back at {:?}",
        first_answer - restored,
        back_at - restored
    );
    assert!(
        back_at - restored
            <= policy.standby_probe_max_interval + policy.dwell + policy.probe_interval,
        "the dead standby's backoff bounds the wait"
    );
    assert_eq!(net.client.bound_path(), Some(net.path(0)));
    assert_eq!(net.server_session().bound_path(), Some(net.server_path(0)));
    let planned = net
        .client_transitions()
        .into_iter()
        .any(|t| t.2 == State::Recovering && t.3 == Reason::PlannedSwitch);
    assert!(planned, "the move back up is a planned switch");
    net.assert_no_violations();
}

#[test]
fn a_preferred_path_flapping_every_500_ms_stays_within_the_switch_budget() {
    let mut net = busy(2);
    let policy = Policy::default();
    let start = net.now;

    for i in 0..40 {
        net.set_dropped(0, i % 2 == 0);
        net.run_for(ms(500));
    }
    net.set_dropped(0, false);
    let settled = net.now + Duration::from_secs(5);
    net.run_for(Duration::from_secs(10));

    let switches = net.switches().iter().filter(|s| s.0 > start).count();
    assert!(
        (1..=policy.switch_budget_burst as usize).contains(&switches),
        "{switches} switches"
    );
    assert!(
        net.client_transitions()
            .iter()
            .all(|t| t.2 != State::Terminated),
        "never terminated"
    );
    assert!(net.max_bindings <= 1, "never two bindings at once");
    assert!(net.client.state().is_bound());
    assert!(
        net.longest_gap_after(settled) <= TRAFFIC_EVERY * 2,
        "traffic flows"
    );
    net.assert_no_violations();
}

#[test]
fn a_preferred_path_that_keeps_failing_after_its_dwell_ends_degraded_by_the_switch_budget() {
    let mut net = busy(2);
    let policy = Policy::default();
    let start = net.now;

    // Down 1 s, up 9 s: long enough to pass the dwell every time, then fail again.
    for _ in 0..4 {
        net.set_dropped(0, true);
        net.run_for(Duration::from_secs(1));
        net.set_dropped(0, false);
        net.run_for(Duration::from_secs(9));
    }

    let transitions = net.client_transitions();
    let degraded = transitions
        .iter()
        .any(|t| t.2 == State::Degraded && t.3 == Reason::FlapLimit);
    assert!(degraded, "{transitions:?}");
    let switches = net.switches().iter().filter(|s| s.0 > start).count();
    assert!(
        switches <= policy.switch_budget_burst as usize,
        "{switches} switches"
    );
    assert!(transitions.iter().all(|t| t.2 != State::Terminated));
    assert!(net.max_bindings <= 1, "never two bindings at once");
    assert_eq!(net.client.state(), State::Degraded);
    assert_eq!(net.client.bound_path(), Some(net.path(1)));
    net.assert_no_violations();
}

#[test]
fn all_paths_dead_longer_than_the_recovery_window_terminate_at_the_deadline() {
    let mut net = busy(2);
    let policy = Policy::default();

    net.set_dropped(0, true);
    net.set_dropped(1, true);
    net.run_for(policy.recovery_window + Duration::from_secs(30));

    let transitions = net.client_transitions();
    let recovering_at = transitions
        .iter()
        .find(|t| t.2 == State::Recovering)
        .map(|t| t.0)
        .expect("recovering");
    let last = *transitions.last().expect("transitions");
    assert_eq!(
        (last.1, last.2, last.3),
        (
            State::Recovering,
            State::Terminated,
            Reason::RecoveryWindowExceeded
        )
    );
    assert_eq!(last.0, recovering_at + policy.recovery_window);
    net.assert_no_violations();
}

#[test]
fn path_down_of_the_active_path_triggers_recovery_at_once() {
    let mut net = Net::attached(2, SETTLE);
    let now = net.now;

    net.client.path_down(net.path(0), now);

    assert_eq!(net.client.state(), State::Recovering);
    assert_eq!(net.client.last_reason(), Some(Reason::TransportDead));
    net.run_for(ONE_WAY * 3);
    assert_eq!(net.client.bound_path(), Some(net.path(1)));
    assert_eq!(
        net.client.last_switch(),
        Some((SwitchReason::TransportDead, net.path(1)))
    );
    net.assert_no_violations();
}

#[test]
fn a_dead_standby_is_reported_with_its_loss() {
    let mut net = Net::attached(2, SETTLE);

    net.set_dropped(1, true);
    net.run_for(Duration::from_secs(60));

    let standby = &net.client.paths()[1];
    assert_eq!(standby.state, PathState::Dead);
    assert!(standby.loss_percent > 0);
    assert_eq!(net.client.state(), State::Attached);
    assert_eq!(net.client.bound_path(), Some(net.path(0)));
}

#[test]
fn a_bound_path_that_is_not_a_candidate_takes_no_decision_and_never_spins() {
    let mut h = super::Harness::attached();
    let mut now = h.now;
    let mut buf = Vec::new();
    h.client
        .add_path(crate::PathId(7), crate::PathKind::Wss, 1, now);

    for _ in 0..50 {
        h.client.send(b"data", now).unwrap();
        while h.client.poll_transmit(now, &mut buf).is_some() {}
        let next = h.client.poll_timeout().expect("timers armed");
        assert!(
            next > now,
            "a deadline in the past would make the shell spin"
        );
        now = next.min(now + ms(100));
        h.client.handle_timeout(now);
    }

    assert_eq!(h.client.state(), State::Attached);
    assert_eq!(h.client.last_switch(), None);
    assert_eq!(h.client.paths().len(), 1);
}

#[test]
fn a_session_without_candidates_reports_no_paths() {
    let h = super::Harness::attached();

    assert!(h.client.paths().is_empty());
    assert_eq!(h.client.last_switch(), None);
}

#[test]
fn a_restarted_server_ends_a_single_path_multipath_client_with_session_lost() {
    let mut net = busy(1);
    net.restart_server();

    net.run_for(Policy::default().handshake_retry + Duration::from_secs(2));

    assert_eq!(net.client.state(), State::Terminated);
    assert_eq!(net.client.last_reason(), Some(Reason::SessionLost));
}

#[test]
fn when_the_best_standby_died_with_the_active_path_the_next_live_one_takes_over_within_a_second() {
    // All UDP blocked: the active UDP path and the QUIC standby (also UDP) die together; only
    // the third candidate (WSS, over TCP) still works, and the prober has not noticed yet
    // that the QUIC standby is gone.
    let mut net = busy(3);
    let policy = Policy::default();
    let cut = net.now;

    net.set_dropped(0, true);
    net.set_dropped(1, true);
    net.run_for(Duration::from_secs(3));

    let blackout = net.longest_gap_after(cut);
    let bound = blackout_bound(&policy) + policy.reattach_retry;
    assert!(blackout <= bound, "blackout {blackout:?} > {bound:?}");
    assert!(bound < Duration::from_secs(1));
    assert_eq!(net.client.bound_path(), Some(net.path(2)));
    assert_eq!(net.server_session().bound_path(), Some(net.server_path(2)));
    net.assert_no_violations();
}
