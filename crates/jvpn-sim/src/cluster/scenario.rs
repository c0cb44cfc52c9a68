//! What one seed decides about a cluster run: paths, clocks, the attacker, and the faults
//! (node restarts, a failing store).

use std::ops::Range;
use std::time::Duration;

use jvpn_session::Policy;
use rand::Rng;

use super::attacker::AttackPlan;
use super::store::StorePlan;
use crate::seed::Seed;

const MS: Duration = Duration::from_millis(1);

/// Share of seeds with node restarts, with store unavailability, and with lost CAS replies
/// (drawn independently).
const RESTART_SEEDS: f64 = 0.2;
const UNAVAILABLE_SEEDS: f64 = 0.1;
const LOST_REPLY_SEEDS: f64 = 0.1;

/// One client path as drawn from the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct PathPlan {
    /// Which server node the path reaches (0 or 1).
    pub node: usize,
    /// Loss probability, each direction.
    pub loss: f64,
    /// Duplication probability, each direction.
    pub duplicate: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Uniform jitter on top.
    pub jitter: Duration,
    /// Fraction of datagrams held back to be overtaken.
    pub reorder: f64,
    /// Both directions dark during this window, if any.
    pub blackhole: Option<Range<Duration>>,
}

/// A node kill and restart: at `down_at` the node's endpoint is dropped with every node-local
/// cache (sessions, replay filters, cookies); datagrams to it are lost until `up_at`, when a
/// fresh endpoint starts with the same static key, token key, node id and store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    /// The server node (index into the scenario's nodes).
    pub node: usize,
    /// When it dies (virtual time since the start).
    pub down_at: Duration,
    /// When it is back.
    pub up_at: Duration,
}

/// The faults of one run: node restarts and the ownership store's failures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    /// Node kills and restarts, per node in time order and not overlapping.
    pub outages: Vec<Outage>,
    /// The store's unavailability and lost replies.
    pub store: StorePlan,
}

impl FaultPlan {
    /// The faults of `seed` for a run of `nodes` server nodes lasting `run_for`. Drawn from
    /// their own random stream, so the rest of a seed's scenario does not depend on them.
    #[must_use]
    pub fn draw(seed: Seed, nodes: usize, run_for: Duration) -> Self {
        let mut rng = seed.sim_rng("cluster-faults", 0);
        let run_ms = u32::try_from(run_for.as_millis())
            .unwrap_or(u32::MAX)
            .max(2);
        let mut outages = Vec::new();
        if rng.random_bool(RESTART_SEEDS) {
            for _ in 0..rng.random_range(1..=2u32) {
                let node = rng.random_range(0..nodes.max(1));
                let down_at = MS * rng.random_range(500..run_ms.saturating_sub(1_000).max(501));
                let up_at = down_at + MS * rng.random_range(50..4_000u32);
                let overlaps = outages
                    .iter()
                    .any(|o: &Outage| o.node == node && o.down_at <= up_at && down_at <= o.up_at);
                if !overlaps {
                    outages.push(Outage {
                        node,
                        down_at,
                        up_at,
                    });
                }
            }
            outages.sort_by_key(|o| (o.node, o.down_at));
        }
        let mut store = StorePlan::healthy();
        if rng.random_bool(UNAVAILABLE_SEEDS) {
            for _ in 0..rng.random_range(1..=2u32) {
                let start = MS * rng.random_range(0..run_ms);
                store
                    .unavailable
                    .push(start..start + MS * rng.random_range(100..3_000u32));
            }
        }
        if rng.random_bool(LOST_REPLY_SEEDS) {
            store.lost_reply_p = 0.1;
            store.delayed_p = 0.3;
            store.max_delay = MS * rng.random_range(1..2_000u32);
        }
        Self { outages, store }
    }

    /// Whether the run has any fault.
    #[must_use]
    pub fn is_faulty(&self) -> bool {
        !self.outages.is_empty() || self.store.is_faulty()
    }
}

/// Everything one seed decides about a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Server nodes (1 or 2).
    pub nodes: usize,
    /// The client's paths (the first is the one it connects on).
    pub paths: Vec<PathPlan>,
    /// Client wall clock minus the reference, in ms (inside the reattach clock window).
    pub client_skew_ms: i64,
    /// Each node's wall clock minus the reference, in ms (|skew| ≤ 1 s).
    pub node_skew_ms: Vec<i64>,
    /// The attacker.
    pub attack: AttackPlan,
    /// Node restarts and store faults.
    pub faults: FaultPlan,
    /// Virtual time the run lasts.
    pub run_for: Duration,
}

/// The policy of every simulated session: the default with an 8 s recovery window, so that
/// long blackholes end sessions inside a short run.
#[must_use]
pub fn sim_policy() -> Policy {
    Policy {
        recovery_window: Duration::from_secs(8),
        ..Policy::default()
    }
}

impl Scenario {
    /// The scenario of `seed`.
    #[must_use]
    pub fn draw(seed: Seed) -> Self {
        let mut rng = seed.sim_rng("cluster-scenario", 0);
        let nodes = rng.random_range(1..=2usize);
        let path_count = rng.random_range(2..=3usize);
        let run_for = Duration::from_secs(15);
        let paths = (0..path_count)
            .map(|i| PathPlan {
                node: if i == 0 {
                    0
                } else {
                    rng.random_range(0..nodes)
                },
                loss: rng.random_range(0.0..0.2),
                duplicate: rng.random_range(0.0..0.05),
                delay: MS * rng.random_range(5..60u32),
                jitter: MS * rng.random_range(0..20u32),
                reorder: rng.random_range(0.0..0.2),
                blackhole: rng.random_bool(0.5).then(|| {
                    let start = MS * rng.random_range(0..8_000u32);
                    start..start + MS * rng.random_range(1_000..12_000u32)
                }),
            })
            .collect();
        let window_ms = i64::try_from(sim_policy().reattach_clock_window.as_millis())
            .unwrap_or(i64::MAX)
            .saturating_sub(1_000);
        let client_skew_ms = rng.random_range(-window_ms..=window_ms);
        let node_skew_ms = (0..nodes)
            .map(|_| rng.random_range(-1_000..=1_000))
            .collect();
        let attack = AttackPlan {
            inject_p: rng.random_range(0.0..0.15),
            hold_p: rng.random_range(0.0..0.05),
            hold_max: MS * rng.random_range(0..20_000u32),
            forge_p: rng.random_range(0.0..0.5),
            own_gap: MS * rng.random_range(50..2_000u32),
        };
        Self {
            nodes,
            paths,
            client_skew_ms,
            node_skew_ms,
            attack,
            faults: FaultPlan::draw(seed, nodes, run_for),
            run_for,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_stays_inside_the_clock_window_and_has_two_or_three_paths() {
        for n in 0..200 {
            let s = Scenario::draw(Seed(n));
            assert!((2..=3).contains(&s.paths.len()));
            assert!(s.client_skew_ms.unsigned_abs() < 60_000);
            assert!(s.node_skew_ms.iter().all(|k| k.unsigned_abs() <= 1_000));
            assert!(s.paths.iter().all(|p| p.node < s.nodes));
        }
    }

    #[test]
    fn outages_name_existing_nodes_end_after_they_start_and_never_overlap_on_one_node() {
        let mut with_outages = 0;
        for n in 0..500 {
            let s = Scenario::draw(Seed(n));
            let outages = &s.faults.outages;
            with_outages += u32::from(!outages.is_empty());

            assert!(
                outages
                    .iter()
                    .all(|o| o.node < s.nodes && o.down_at < o.up_at)
            );
            assert!(
                outages
                    .windows(2)
                    .all(|w| w[0].node != w[1].node || w[0].up_at < w[1].down_at)
            );
        }
        assert!((50..200).contains(&with_outages), "{with_outages} of 500");
    }

    #[test]
    fn only_a_fraction_of_seeds_have_store_faults() {
        let faulty = (0..1_000)
            .filter(|&n| Scenario::draw(Seed(n)).faults.store.is_faulty())
            .count();

        assert!((100..350).contains(&faulty), "{faulty} of 1000");
    }
}
