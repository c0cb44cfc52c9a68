use std::time::Duration;

use super::*;
use crate::TRANSITIONS;

fn t0() -> Instant {
    #[expect(
        clippy::disallowed_methods,
        reason = "test needs one real instant as a base"
    )]
    Instant::now()
}

fn ctx(now: Instant) -> TransitionCtx {
    TransitionCtx {
        now,
        unix_ms: 1_700_000_000_000,
        path: Some(PathId(1)),
        transport: Some("udp".into()),
    }
}

/// A machine driven along legal transitions into `state`.
fn machine_in(state: State, now: Instant) -> StateMachine {
    let mut sm = StateMachine::new(&Policy::default());
    let path: &[(State, Reason)] = match state {
        State::Birth => &[],
        State::Attached => &[(State::Attached, Reason::HandshakeComplete)],
        State::Volatile => &[
            (State::Attached, Reason::HandshakeComplete),
            (State::Volatile, Reason::ProbeLost),
        ],
        State::Degraded => &[
            (State::Attached, Reason::HandshakeComplete),
            (State::Volatile, Reason::ProbeLost),
            (State::Degraded, Reason::QualityBelowPolicy),
        ],
        State::Recovering => &[
            (State::Attached, Reason::HandshakeComplete),
            (State::Recovering, Reason::TransportDead),
        ],
        State::Terminated => &[(State::Terminated, Reason::Closed)],
    };
    for &(to, reason) in path {
        sm.transition(to, reason, ctx(now))
            .expect("setup path is legal");
    }
    assert_eq!(sm.state(), state);
    sm
}

#[test]
fn every_allowed_transition_happens_with_its_reason_and_bumps_the_version() {
    let now = t0();
    for &(from, to, reasons) in TRANSITIONS {
        for &reason in reasons {
            let mut sm = machine_in(from, now);
            let before = sm.version();
            // Later than the setup, as a real session would be (min switch interval).
            let later = now + Duration::from_secs(10);

            let record = sm.transition(to, reason, ctx(later)).unwrap();

            assert_eq!(sm.state(), to, "{from} -> {to} ({reason})");
            assert_eq!(record.version, before + 1);
            assert_eq!((record.from, record.to, record.reason), (from, to, reason));
            assert_eq!(record.epoch, sm.epoch());
            assert_eq!(sm.violations(), 0, "{from} -> {to} ({reason})");
        }
    }
}

#[test]
fn every_other_transition_is_rejected_and_changes_nothing() {
    let now = t0();
    let mut rejected = 0;
    for &from in State::ALL {
        for &to in State::ALL {
            for &reason in Reason::ALL {
                if crate::is_allowed(from, to, reason) {
                    continue;
                }
                let mut sm = machine_in(from, now);
                let (version, epoch, binding) = (sm.version(), sm.epoch(), sm.binding());

                let result = sm.transition(to, reason, ctx(now));

                assert_eq!(result, Err(IllegalTransition { from, to, reason }));
                assert_eq!(sm.state(), from);
                assert_eq!(
                    (sm.version(), sm.epoch(), sm.binding()),
                    (version, epoch, binding)
                );
                rejected += 1;
            }
        }
    }
    assert!(rejected > 0);
}

#[test]
fn first_binding_is_epoch_one_on_the_given_path() {
    let now = t0();
    let mut sm = StateMachine::new(&Policy::default());

    let record = sm.rebind(PathId(9), ctx(now)).unwrap();

    assert_eq!(record.reason, Reason::HandshakeComplete);
    assert_eq!(sm.epoch(), 1);
    assert_eq!(
        sm.binding(),
        Some(Binding {
            path: Some(PathId(9)),
            epoch: 1
        })
    );
}

#[test]
fn rebind_after_recovering_bumps_the_epoch_and_moves_the_binding() {
    let now = t0();
    let mut sm = machine_in(State::Recovering, now);
    assert_eq!(sm.binding(), None);

    let record = sm
        .rebind(PathId(2), ctx(now + Duration::from_secs(1)))
        .unwrap();

    assert_eq!(record.reason, Reason::ReattachAccepted);
    assert_eq!(sm.last_reason(), Some(Reason::ReattachAccepted));
    assert_eq!((record.epoch, record.path), (2, Some(PathId(2))));
    assert_eq!(sm.binding().map(|b| b.path), Some(Some(PathId(2))));
    assert_eq!(sm.violations(), 0);
}

#[test]
fn rebind_while_attached_is_illegal() {
    let now = t0();
    let mut sm = machine_in(State::Attached, now);

    let result = sm.rebind(PathId(3), ctx(now));

    assert_eq!(
        result,
        Err(IllegalTransition {
            from: State::Attached,
            to: State::Attached,
            reason: Reason::ReattachAccepted
        })
    );
    assert_eq!(sm.epoch(), 1);
}

#[test]
fn volatile_and_degraded_keep_the_binding() {
    let now = t0();

    let sm = machine_in(State::Degraded, now);

    assert_eq!(sm.binding().map(|b| b.epoch), Some(1));
}

#[test]
fn recovery_deadline_is_entry_plus_window() {
    let now = t0();
    let sm = machine_in(State::Recovering, now);

    let deadline = sm.recovery_deadline();

    assert_eq!(deadline, Some(now + Policy::default().recovery_window));
}

#[test]
fn identity_is_set_once_and_carried_by_records() {
    let now = t0();
    let mut sm = StateMachine::new(&Policy::default());
    sm.set_identity(&[0xab, 0x01], [7; 32]).unwrap();

    let record = sm.rebind(PathId(1), ctx(now)).unwrap();

    assert_eq!(record.session_id.as_deref(), Some("ab01"));
    assert_eq!(sm.set_identity(&[0xab, 0x01], [7; 32]), Ok(()));
}

#[test]
fn changing_the_identity_is_refused_and_counted() {
    let mut sm = StateMachine::with_invariants(
        &Policy::default(),
        Invariants::counting_only(&Policy::default()),
    );
    sm.set_identity(&[1], [7; 32]).unwrap();

    let result = sm.set_identity(&[2], [7; 32]);

    assert_eq!(result, Err(IdentityChanged));
    assert_eq!(sm.session_id_hex(), Some("01"));
    assert_eq!(sm.violations(), 1);
    assert_eq!(sm.last_violation(), Some(Violation::IdentityChanged));
}

#[test]
fn switch_budget_runs_out_after_the_burst() {
    let now = t0();
    let policy = Policy {
        switch_budget_burst: 2,
        ..Policy::default()
    };
    let mut sm = StateMachine::new(&policy);

    let takes: Vec<bool> = (0..3).map(|_| sm.try_take_switch(now)).collect();

    assert_eq!(takes, [true, true, false]);
}
