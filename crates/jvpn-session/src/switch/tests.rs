use std::time::Duration;

use proptest::prelude::*;

use super::sim::{Sim, ms, secs};
use crate::{Decision, PathId, PathKind, Policy, SwitchReason};

const A: PathId = PathId(1);
const B: PathId = PathId(2);
const C: PathId = PathId(3);

/// A active (UDP, preferred, slow), B standby (QUIC, fast).
fn slow_active_fast_standby(policy: &Policy) -> Sim {
    Sim::new(
        policy,
        &[
            (A, PathKind::Udp, 0, ms(200)),
            (B, PathKind::Quic, 1, ms(20)),
        ],
        A,
    )
}

fn is_switch(decision: &Decision) -> bool {
    matches!(
        decision,
        Decision::PlannedSwitch { .. } | Decision::Recover { to: Some(_), .. }
    )
}

/// Asserts the S25 hard bounds on a list of committed switches.
fn assert_within_bounds(switches: &[(Duration, PathId)], policy: &Policy) {
    for pair in switches.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= policy.min_switch_interval,
            "two switches {gap:?} apart: {switches:?}"
        );
    }
    for (i, (start, _)) in switches.iter().enumerate() {
        let in_window = switches[i..]
            .iter()
            .take_while(|(at, _)| *at < *start + policy.switch_budget_refill_per)
            .count();
        assert!(
            in_window <= policy.switch_budget_burst as usize,
            "{in_window} switches within {:?} of {start:?}: {switches:?}",
            policy.switch_budget_refill_per
        );
    }
}

// --- planned switches: margin and dwell ---

#[test]
fn a_candidate_better_for_less_than_the_dwell_does_not_trigger_a_switch() {
    let policy = Policy::default();
    let mut sim = slow_active_fast_standby(&policy);

    sim.run_until(ms(3010));

    assert!(sim.switches.is_empty(), "{:?}", sim.log);
    assert_eq!(
        sim.controller
            .dwelling()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
        vec![B]
    );
}

#[test]
fn a_candidate_better_for_the_whole_dwell_triggers_a_planned_switch() {
    let policy = Policy::default();
    let mut sim = slow_active_fast_standby(&policy);

    sim.run_until(secs(10));

    // B answers at 20 ms and qualifies; three more answers (1.02, 2.02, 3.02 s) and 3 s later
    // it has earned the switch.
    assert_eq!(sim.switches, vec![(ms(3020), B)]);
    assert_eq!(
        sim.first(is_switch),
        Some((
            ms(3020),
            Decision::PlannedSwitch {
                to: B,
                reason: SwitchReason::BetterPath
            }
        ))
    );
}

#[test]
fn the_dwell_restarts_when_the_candidate_stops_being_better() {
    let policy = Policy::default();
    let mut sim = slow_active_fast_standby(&policy);
    sim.run_until(ms(1500));
    sim.rtt.insert(B, ms(400)); // B's probe at 2.0 s comes back slow.
    sim.run_until(ms(2500));
    sim.rtt.insert(B, ms(20));

    let mut since_at_switch = None;
    while sim.elapsed() <= secs(120) && sim.switches.is_empty() {
        let since = sim.controller.dwelling().find(|(id, _)| *id == B);
        sim.step();
        if !sim.switches.is_empty() {
            since_at_switch = since.map(|(_, at)| at - sim.start);
        }
        sim.now += super::sim::TICK;
    }

    let (switched_at, to) = sim.switches[0];
    let since = since_at_switch.expect("B was dwelling when the switch came");
    assert_eq!(to, B);
    assert!(
        since > ms(2400),
        "the dwell restarted after the dip: {since:?}"
    );
    assert!(
        switched_at - since >= policy.dwell,
        "{since:?} → {switched_at:?}"
    );
}

#[test]
fn a_preferred_transport_coming_back_moves_back_up_after_the_dwell_plus_one_probe_period() {
    let policy = Policy::default();
    let (udp, wss) = (A, C);
    let mut sim = Sim::new(
        &policy,
        &[
            (udp, PathKind::Udp, 0, ms(30)),
            (wss, PathKind::Wss, 2, ms(35)),
        ],
        wss,
    );
    sim.prober.path_down(udp, sim.start);
    sim.run_until(ms(9990));
    let back_at = sim.elapsed();

    sim.prober.path_up(udp, sim.now);
    sim.run_until(secs(60));

    let (switched_at, to) = sim.switches[0];
    assert_eq!(to, udp);
    assert!(switched_at >= back_at + policy.dwell);
    assert!(switched_at <= back_at + policy.dwell + policy.probe_interval);
    assert_eq!(
        sim.switches.len(),
        1,
        "no move back down: {:?}",
        sim.switches
    );
    assert!(sim.log.contains(&(
        switched_at,
        Decision::PlannedSwitch {
            to: udp,
            reason: SwitchReason::PreferredPathBack
        }
    )));
}

#[test]
fn a_candidate_that_never_answers_is_never_switched_to() {
    let policy = Policy::default();
    let mut sim = slow_active_fast_standby(&policy);
    sim.drop = Box::new(|path, _, _| path == B);

    sim.run_until(secs(60));

    assert!(sim.log.is_empty(), "{:?}", sim.log);
}

// --- recovery ---

#[test]
fn a_dead_active_path_recovers_at_once_even_inside_the_min_switch_interval() {
    let policy = Policy::default();
    let mut sim = Sim::new(
        &policy,
        &[
            (A, PathKind::Udp, 0, ms(20)),
            (B, PathKind::Quic, 1, ms(50)),
        ],
        A,
    );
    sim.drop = Box::new(|path, at, _| path == A && at >= secs(10));
    sim.run_until(ms(14490));
    // A switch (a rebind on A) was just committed: planned switches must wait until 16.5 s.
    sim.controller.on_switched(&mut sim.prober, A, sim.now);

    sim.run_until(secs(20));

    // A's probes from 10 s on are lost at 11, 12, 13 (suspect), 14 and 15 s (dead).
    assert_eq!(
        sim.first(is_switch),
        Some((
            secs(15),
            Decision::Recover {
                to: Some(B),
                reason: SwitchReason::TransportDead
            }
        ))
    );
    assert_eq!(sim.switches, vec![(secs(15), B)]);
}

#[test]
fn a_dead_active_path_with_no_alive_candidate_recovers_without_a_target() {
    let policy = Policy::default();
    let mut sim = Sim::new(
        &policy,
        &[
            (A, PathKind::Udp, 0, ms(20)),
            (B, PathKind::Quic, 1, ms(50)),
        ],
        A,
    );
    sim.drop = Box::new(|path, at, _| path == A && at >= secs(10));
    sim.run_until(secs(12));
    sim.prober.path_down(B, sim.now);

    sim.run_until(secs(20));

    assert!(sim.switches.is_empty());
    assert_eq!(
        sim.log.first(),
        Some(&(
            secs(15),
            Decision::Recover {
                to: None,
                reason: SwitchReason::TransportDead
            }
        ))
    );
}

// --- hard bounds ---

#[test]
fn a_planned_switch_waits_for_the_min_switch_interval() {
    let policy = Policy {
        min_switch_interval: secs(10),
        ..Policy::default()
    };
    let mut sim = slow_active_fast_standby(&policy);
    sim.run_until(ms(3500));
    assert_eq!(sim.switches, vec![(ms(3020), B)]);

    sim.rtt.insert(B, ms(400)); // now A is better by far
    sim.run_until(secs(20));

    assert_eq!(sim.switches, vec![(ms(3020), B), (ms(13020), A)]);
}

#[test]
fn an_exhausted_budget_degrades_with_flap_limit_and_stays_until_a_token_returns() {
    let policy = Policy {
        switch_budget_burst: 1,
        ..Policy::default()
    };
    let mut sim = slow_active_fast_standby(&policy);
    sim.run_until(ms(3500));
    sim.rtt.insert(B, ms(400));

    sim.run_until(secs(70));

    let (degraded_at, decision) = sim
        .first(|d| matches!(d, Decision::Degrade { .. }))
        .expect("a degrade decision");
    assert_eq!(
        decision,
        Decision::Degrade {
            reason: SwitchReason::FlapLimit
        }
    );
    assert!(degraded_at < secs(10), "{degraded_at:?}");
    assert_eq!(sim.switches[0], (ms(3020), B));
    // The only token came back 60 s after it was taken.
    assert_eq!(sim.switches[1], (ms(63020), A));
}

#[test]
fn a_dead_path_with_an_exhausted_budget_waits_with_flap_limit() {
    let policy = Policy {
        switch_budget_burst: 1,
        ..Policy::default()
    };
    let mut sim = slow_active_fast_standby(&policy);
    sim.run_until(ms(3500));
    sim.drop = Box::new(|path, at, _| path == B && at >= secs(4));

    sim.run_until(secs(20));

    assert_eq!(sim.switches, vec![(ms(3020), B)]);
    assert!(sim.log.iter().any(|(_, d)| *d
        == Decision::Recover {
            to: None,
            reason: SwitchReason::FlapLimit
        }));
}

#[test]
fn probes_dropped_alternately_on_two_paths_stay_within_the_switch_bounds() {
    let policy = Policy::default();
    let mut sim = Sim::new(
        &policy,
        &[
            (A, PathKind::Udp, 0, ms(20)),
            (B, PathKind::Quic, 1, ms(25)),
        ],
        A,
    );
    // S25: the attacker blackholes A's probes for 7 s, then B's for 7 s, and so on.
    sim.drop = Box::new(|path, at, _| {
        let phase = (at.as_millis() / 7000) % 2;
        (path == A && phase == 0) || (path == B && phase == 1)
    });

    sim.run_until(secs(120));

    assert!(!sim.switches.is_empty());
    assert_within_bounds(&sim.switches, &policy);
}

// --- determinism and the adversarial property ---

/// Drops probe `n` on `path` when `patterns[path][n % len] < thresholds[path]`.
fn pattern_rule(patterns: Vec<Vec<u8>>, thresholds: Vec<u8>) -> super::sim::DropRule {
    Box::new(move |path, _, n| {
        let i = (path.0 as usize - 1) % patterns.len();
        let pattern = &patterns[i];
        pattern[n as usize % pattern.len()] < thresholds[i]
    })
}

fn three_paths(policy: &Policy, count: usize, rtts: &[u64]) -> Sim {
    let all = [
        (A, PathKind::Udp, 0, ms(rtts[0])),
        (B, PathKind::Quic, 1, ms(rtts[1])),
        (C, PathKind::Wss, 2, ms(rtts[2])),
    ];
    Sim::new(policy, &all[..count], A)
}

#[test]
fn the_same_inputs_give_the_same_decisions() {
    let policy = Policy::default();
    let patterns: Vec<Vec<u8>> = (0..3)
        .map(|p| {
            (0..64u32)
                .map(|i| ((i * 37 + p * 11) % 100) as u8)
                .collect()
        })
        .collect();
    let run = || {
        let mut sim = three_paths(&policy, 3, &[30, 40, 50]);
        sim.drop = pattern_rule(patterns.clone(), vec![50, 40, 30]);
        sim.run_until(secs(120));
        (sim.log, sim.switches)
    };

    let (first, second) = (run(), run());

    assert!(!first.0.is_empty());
    assert_eq!(first, second);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// S25: whatever the drop schedule, at most one switch per 2 s, at most 6 per 60 s, and
    /// never a switch to a path that is not alive (asserted by the harness on every switch).
    #[test]
    fn adversarial_drop_schedules_never_break_the_switch_bounds(
        count in 2usize..=3,
        rtts in proptest::collection::vec(5u64..300, 3),
        patterns in proptest::collection::vec(proptest::collection::vec(0u8..100, 8..200), 3),
        thresholds in proptest::collection::vec(0u8..=100, 3),
    ) {
        let policy = Policy::default();
        let mut sim = three_paths(&policy, count, &rtts);
        sim.drop = pattern_rule(patterns, thresholds);

        sim.run_until(secs(120));

        assert_within_bounds(&sim.switches, &policy);
        for (at, decision) in &sim.log {
            if let Decision::Degrade { reason } = decision {
                prop_assert_eq!(*reason, SwitchReason::FlapLimit, "at {:?}", at);
            }
        }
    }
}
