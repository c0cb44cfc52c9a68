//! Runs a bounded breadth-first check and summarises it.

use std::fmt;

use stateright::{Checker, Expectation, HasDiscoveries, Model};

use crate::properties::PROPERTIES;
use crate::{ModelCfg, model};

/// The outcome of one property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyResult {
    /// `Always` or `Sometimes`.
    pub expectation: Expectation,
    /// Its name (as in [`PROPERTIES`]).
    pub name: &'static str,
    /// `Always`: a counterexample was found (a violation). `Sometimes`: an example was found.
    pub discovered: bool,
    /// The actions leading to the discovery, one per line (empty when none).
    pub trace: String,
}

impl PropertyResult {
    /// Whether the property holds: no counterexample for `Always`, an example for `Sometimes`.
    pub fn holds(&self) -> bool {
        match self.expectation {
            Expectation::Sometimes => self.discovered,
            _ => !self.discovered,
        }
    }
}

/// A summary of one bounded check.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The configuration checked.
    pub cfg: ModelCfg,
    /// The depth bound given.
    pub depth_bound: usize,
    /// Distinct states explored.
    pub unique_states: usize,
    /// States generated, repeats included.
    pub states: usize,
    /// The deepest level reached.
    pub max_depth: usize,
    /// Every property, in [`PROPERTIES`] order.
    pub properties: Vec<PropertyResult>,
}

impl CheckReport {
    /// The `Always` properties with a counterexample.
    pub fn violations(&self) -> Vec<&PropertyResult> {
        self.properties
            .iter()
            .filter(|p| p.expectation == Expectation::Always && p.discovered)
            .collect()
    }

    /// Whether every property holds.
    pub fn all_hold(&self) -> bool {
        self.properties.iter().all(PropertyResult::holds)
    }

    /// The result of the property named `name`.
    pub fn property(&self, name: &str) -> Option<&PropertyResult> {
        self.properties.iter().find(|p| p.name == name)
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "jvpn-model {:?}: depth bound {}, reached {}, {} unique states ({} generated)",
            self.cfg, self.depth_bound, self.max_depth, self.unique_states, self.states
        )?;
        for p in &self.properties {
            let verdict = match (p.holds(), &p.expectation) {
                (true, Expectation::Sometimes) => "example found",
                (true, _) => "holds",
                (false, Expectation::Sometimes) => "NO EXAMPLE within the bound",
                (false, _) => "VIOLATED",
            };
            writeln!(f, "  {:?} {:<80} {verdict}", p.expectation, p.name)?;
            if p.expectation != Expectation::Sometimes && p.discovered {
                writeln!(f, "{}", p.trace)?;
            }
        }
        Ok(())
    }
}

/// Explores `cfg`'s model breadth-first up to `depth` steps on `threads` threads and checks
/// every property in every state. Stops early once every `Always` property has a
/// counterexample and every `Sometimes` one an example (never, for a correct model).
pub fn check(cfg: ModelCfg, depth: usize, threads: usize) -> CheckReport {
    run(cfg, depth, threads, HasDiscoveries::All)
}

/// Like [`check`], but stops at the first counterexample: for the deliberately broken
/// variants, whose check must fail.
pub fn find_violation(cfg: ModelCfg, depth: usize, threads: usize) -> CheckReport {
    run(cfg, depth, threads, HasDiscoveries::AnyFailures)
}

fn run(cfg: ModelCfg, depth: usize, threads: usize, finish_when: HasDiscoveries) -> CheckReport {
    let checker = model(cfg)
        .checker()
        .threads(threads.max(1))
        .target_max_depth(depth)
        .finish_when(finish_when)
        .spawn_bfs()
        .join();
    let properties = PROPERTIES
        .iter()
        .map(|(expectation, name, _)| {
            let path = checker.discovery(name);
            let trace = path
                .map(|p| {
                    p.into_actions()
                        .iter()
                        .enumerate()
                        .map(|(i, a)| format!("    {:>2}. {a:?}", i + 1))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            PropertyResult {
                expectation: expectation.clone(),
                name,
                discovered: checker.discovery(name).is_some(),
                trace,
            }
        })
        .collect();
    CheckReport {
        cfg,
        depth_bound: depth,
        unique_states: checker.unique_state_count(),
        states: checker.state_count(),
        max_depth: checker.max_depth(),
        properties,
    }
}
