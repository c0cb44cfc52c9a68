//! Bounded breadth-first checks of the model. Each prints its state count; depths are chosen
//! so that the whole file runs in seconds in a debug build on two cores.

#![allow(
    clippy::print_stdout,
    reason = "the state counts are the figures this test reports"
)]

use jvpn_model::properties::{SysState, terminates_by_deadlines};
use jvpn_model::{CheckReport, ModelCfg, Variant, check, find_violation, model};
use stateright::Model;

const COMMIT_ON_NODE_2: &str = "a reattach commits on node 2";
const ATTACHED_VIA_NODE_2: &str = "the client is attached through node 2 after a reattach";

fn assert_always_holds(report: &CheckReport) {
    let violations: Vec<String> = report
        .violations()
        .iter()
        .map(|p| format!("{}\n{}", p.name, p.trace))
        .collect();
    assert!(
        violations.is_empty(),
        "violated:\n{}",
        violations.join("\n")
    );
}

fn assert_examples(report: &CheckReport, names: &[&str]) {
    for name in names {
        let found = report.property(name).is_some_and(|p| p.discovered);
        assert!(
            found,
            "no example of `{name}` within depth {}",
            report.depth_bound
        );
    }
}

#[test]
fn the_design_holds_against_the_replaying_attacker() {
    let cfg = ModelCfg::default();

    let report = check(cfg, 14, 1);

    println!("{report}");
    assert_always_holds(&report);
    assert_examples(
        &report,
        &[
            COMMIT_ON_NODE_2,
            "a node drops a replayed or stale message",
            "a node fences its binding",
            "a claim or commit loses its compare-and-swap",
            "the client ends by its recovery window",
            "the store ends the record by its recovery deadline",
        ],
    );
    assert!(
        report.unique_states >= 500_000,
        "only {} states",
        report.unique_states
    );
}

#[test]
fn the_client_reaches_a_committed_reattach_on_node_2() {
    let cfg = ModelCfg {
        attacker: false,
        ..ModelCfg::default()
    };

    let report = check(cfg, 19, 1);

    println!("{report}");
    assert_always_holds(&report);
    assert_examples(&report, &[COMMIT_ON_NODE_2, ATTACHED_VIA_NODE_2]);
    assert!(
        report.unique_states >= 150_000,
        "only {} states",
        report.unique_states
    );
}

#[test]
fn the_design_holds_on_a_duplicating_lossy_network() {
    let cfg = ModelCfg {
        duplicating: true,
        lossy: true,
        ..ModelCfg::default()
    };

    let report = check(cfg, 9, 1);

    println!("{report}");
    assert_always_holds(&report);
    assert!(
        report.unique_states >= 100_000,
        "only {} states",
        report.unique_states
    );
}

#[test]
fn committing_on_reattach_init_without_cas_or_path_confirm_is_caught() {
    let cfg = ModelCfg {
        variant: Variant::CommitOnInit,
        ..ModelCfg::default()
    };

    let report = find_violation(cfg, 12, 1);

    println!("{report}");
    let caught: Vec<&str> = report.violations().iter().map(|p| p.name).collect();
    assert!(
        caught.contains(&"every binding a node carries was committed by the store")
            || caught.contains(&"no two nodes carry a binding of the same ownership version"),
        "the broken variant was not caught: {caught:?}"
    );
}

#[test]
fn accepting_a_replayed_reattach_init_is_caught() {
    let cfg = ModelCfg {
        variant: Variant::NoFreshnessCheck,
        ..ModelCfg::default()
    };

    let report = find_violation(cfg, 12, 1);

    println!("{report}");
    let caught: Vec<&str> = report.violations().iter().map(|p| p.name).collect();
    assert!(
        caught.contains(&"a replayed REATTACH_INIT never claims: claimed rc strictly increases"),
        "the broken variant was not caught: {caught:?}"
    );
}

#[test]
fn a_state_without_deadline_timers_fails_the_termination_check() {
    let m = model(ModelCfg::default());
    let mut init: SysState = m.init_states().remove(0);
    assert!(terminates_by_deadlines(&m, &init));

    for timers in &mut init.timers_set {
        timers.cancel_all();
    }

    assert!(!terminates_by_deadlines(&m, &init));
}
