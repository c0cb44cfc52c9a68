//! A tiny virtual-time harness: a prober and a switch controller over paths with fixed RTTs and
//! a pluggable drop rule, stepped in 10 ms ticks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::{Decision, PathId, PathKind, PathState, Policy, Prober, SwitchController};

/// The simulation step.
pub(super) const TICK: Duration = Duration::from_millis(10);

/// Whether the `n`-th probe on `path`, sent `at` after the start, is dropped.
pub(super) type DropRule = Box<dyn FnMut(PathId, Duration, u32) -> bool>;

pub(super) struct Sim {
    pub(super) prober: Prober,
    pub(super) controller: SwitchController,
    pub(super) start: Instant,
    pub(super) now: Instant,
    /// Round-trip time per path; change it to make a path better or worse.
    pub(super) rtt: BTreeMap<PathId, Duration>,
    pub(super) drop: DropRule,
    /// Act on switch decisions by calling `on_switched` at once.
    pub(super) auto_switch: bool,
    in_flight: Vec<(Instant, PathId, u32)>,
    sent: BTreeMap<PathId, u32>,
    /// Every decision other than `Stay`, with its time since the start.
    pub(super) log: Vec<(Duration, Decision)>,
    /// Committed switches: time since the start, target.
    pub(super) switches: Vec<(Duration, PathId)>,
}

impl Sim {
    /// Paths as `(id, kind, preference rank, rtt)`, all up at the start; `active` is bound.
    pub(super) fn new(
        policy: &Policy,
        paths: &[(PathId, PathKind, u8, Duration)],
        active: PathId,
    ) -> Self {
        #[expect(
            clippy::disallowed_methods,
            reason = "tests need one real instant as a base"
        )]
        let start = Instant::now();
        let mut prober = Prober::new(policy);
        let mut rtt = BTreeMap::new();
        for (id, kind, rank, path_rtt) in paths {
            prober.add_path(*id, kind.clone(), *rank, start);
            rtt.insert(*id, *path_rtt);
        }
        prober.set_active(Some(active));
        Sim {
            prober,
            controller: SwitchController::new(policy),
            start,
            now: start,
            rtt,
            drop: Box::new(|_, _, _| false),
            auto_switch: true,
            in_flight: Vec::new(),
            sent: BTreeMap::new(),
            log: Vec::new(),
            switches: Vec::new(),
        }
    }

    pub(super) fn elapsed(&self) -> Duration {
        self.now.saturating_duration_since(self.start)
    }

    /// Runs ticks until `until` after the start (inclusive).
    pub(super) fn run_until(&mut self, until: Duration) {
        while self.elapsed() <= until {
            self.step();
            self.now += TICK;
        }
    }

    /// One tick at `self.now`: deliver answers, expire, send probes, decide, maybe switch.
    pub(super) fn step(&mut self) {
        let now = self.now;
        self.in_flight.sort_unstable();
        let due = self.in_flight.partition_point(|&(at, _, _)| at <= now);
        for (_, path, seq) in self.in_flight.drain(..due).collect::<Vec<_>>() {
            self.prober.on_probe_ack(path, seq, now);
        }
        self.prober.handle_timeout(now);
        while let Some((path, seq)) = self.prober.poll_probe(now) {
            self.prober.on_probe_sent(path, seq, now);
            let n = self.sent.entry(path).or_insert(0);
            let nth = *n;
            *n += 1;
            let at = now.saturating_duration_since(self.start);
            if !(self.drop)(path, at, nth) {
                let rtt = self.rtt.get(&path).copied().unwrap_or(Duration::ZERO);
                self.in_flight.push((now + rtt, path, seq));
            }
        }
        let decision = self.controller.decide(&mut self.prober, now);
        if decision == Decision::Stay {
            return;
        }
        let at = self.elapsed();
        self.log.push((at, decision));
        let target = match decision {
            Decision::Recover { to: Some(to), .. } | Decision::PlannedSwitch { to, .. } => to,
            _ => return,
        };
        let stats = self.prober.stats(target).expect("target is a known path");
        assert!(
            stats.is_up() && stats.state() == PathState::Alive,
            "switch to a path that is not alive: {target} {stats:?}"
        );
        assert_ne!(
            Some(target),
            self.prober.active(),
            "switch to the active path"
        );
        if self.auto_switch {
            self.controller.on_switched(&mut self.prober, target, now);
            self.switches.push((at, target));
        }
    }

    /// The first logged decision matching `pred`, with its time.
    pub(super) fn first(&self, pred: impl Fn(&Decision) -> bool) -> Option<(Duration, Decision)> {
        self.log.iter().copied().find(|(_, d)| pred(d))
    }
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
