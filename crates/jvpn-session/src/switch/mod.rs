//! The switch controller: which path should carry the session, and when to move.
//!
//! # What the user can rely on
//!
//! The controller reads the [`Prober`]'s measurements and answers one question,
//! [`decide`](SwitchController::decide), with a [`Decision`]:
//!
//! - **Recover at once.** When the active path is dead (`probes_lost_dead` consecutive lost
//!   probes, or its link is down) or there is no active path, the answer is
//!   [`Decision::Recover`] naming the best `Alive` path by [`Score`], without a dwell and
//!   regardless of `min_switch_interval`. With no alive path, or with the switch budget spent,
//!   it names none (`to: None`; reason [`SwitchReason::FlapLimit`] when the budget is the
//!   cause): recover and wait; the controller names a target as soon as one is alive and a
//!   token is available.
//! - **Planned switches are earned.** A candidate *qualifies* while it is `Alive`, its latest
//!   probe was answered (no loss since), and, compared with the active path:
//!   - it is *more preferred* (a lower `--transports` rank) and within the hysteresis margin
//!     of the active path's quality ([`within_margin`]), which is how the session moves back
//!     *up* to a preferred transport that returns; or
//!   - it is not more preferred and better by the hysteresis margin ([`better_by_margin`]:
//!     a better class — e.g. alive versus a suspect active path —, a lower loss bucket, or a
//!     latency cost at least `hysteresis_percent` (20 %) lower).
//!
//!   A candidate must qualify **continuously** for `dwell` (3 s) *and* answer at least
//!   `dwell / probe_interval` (3) probes in that time; if it stops qualifying at any
//!   [`decide`](SwitchController::decide), its dwell starts over. Candidates in their dwell
//!   are *watched*: the prober probes them at the active rate. When several are ready, the best
//!   [`Score`] wins. The answer is then [`Decision::PlannedSwitch`]: make-before-break, the
//!   target has just answered probes.
//! - **Hard bounds.** Planned switches are at least `min_switch_interval` (2 s) apart (inside
//!   it, the answer is [`Decision::Stay`] and the dwell is kept). Every switch — planned or
//!   recovery — takes one token from a bucket of `switch_budget_burst` (6) tokens refilled one
//!   per `switch_budget_refill_per` (60 s), so no more than 6 switches happen in any 60 s.
//!   A planned switch with no token left is [`Decision::Degrade`] with
//!   [`SwitchReason::FlapLimit`]: stay on the current path (DEGRADED) until a token returns.
//! - **Never to a path that is not alive**, and never to the active path.
//! - **Deterministic.** Decisions depend only on the inputs and `now`; ties between equal
//!   scores go to the lowest [`PathId`].
//!
//! The controller does not move anything itself. Call [`decide`](SwitchController::decide)
//! after every prober input (probe answers, timeouts) and at
//! [`poll_timeout`](SwitchController::poll_timeout); act on the decision (the answers are
//! level-triggered: the same decision repeats until the situation changes, so act once); when
//! the new binding is committed, call [`on_switched`](SwitchController::on_switched), which
//! takes the budget token and makes the prober treat the new path as active. A switch that
//! fails costs no token: it moved nothing.

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::score::{Score, ScoreClass, better_by_margin, score, within_margin};
use crate::{PathId, PathState, PathStats, Policy, Prober, SwitchBudget};

/// Why the controller wants to move (or cannot).
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SwitchReason {
    /// The active path is dead (lost probes, or its link is down).
    TransportDead,
    /// There is no active path (none chosen yet, or it was removed).
    NoActivePath,
    /// The active path is suspect and the candidate is alive.
    ActivePathSuspect,
    /// The candidate beats the active path by the hysteresis margin.
    BetterPath,
    /// A more preferred transport is alive again and within the margin of the active path.
    PreferredPathBack,
    /// The switch budget is spent: stay (or, with a dead path, wait) until a token returns.
    FlapLimit,
}

impl SwitchReason {
    /// The `SCREAMING_SNAKE_CASE` spelling (as in audit records and status output).
    pub const fn as_str(self) -> &'static str {
        match self {
            SwitchReason::TransportDead => "TRANSPORT_DEAD",
            SwitchReason::NoActivePath => "NO_ACTIVE_PATH",
            SwitchReason::ActivePathSuspect => "ACTIVE_PATH_SUSPECT",
            SwitchReason::BetterPath => "BETTER_PATH",
            SwitchReason::PreferredPathBack => "PREFERRED_PATH_BACK",
            SwitchReason::FlapLimit => "FLAP_LIMIT",
        }
    }
}

impl fmt::Display for SwitchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the session should do now.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep the active path.
    Stay,
    /// The active path is dead (or there is none): release it (RECOVERING) and move to `to`
    /// at once; with `to: None`, wait for a target (no alive path, or `FlapLimit`).
    Recover {
        /// The best alive path, if one is usable now.
        to: Option<PathId>,
        /// `TransportDead`, `NoActivePath` or `FlapLimit`.
        reason: SwitchReason,
    },
    /// Move to `to`, which is alive and has earned it over the dwell (make-before-break).
    PlannedSwitch {
        /// The target path.
        to: PathId,
        /// `ActivePathSuspect`, `BetterPath` or `PreferredPathBack`.
        reason: SwitchReason,
    },
    /// A switch is due but the budget is spent: stay on the current path (DEGRADED).
    Degrade {
        /// `FlapLimit`.
        reason: SwitchReason,
    },
}

/// A candidate in its dwell.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Dwell {
    since: Instant,
    answered_at_start: u64,
}

/// The rate-limited switch controller. See the module docs for the rules.
#[derive(Clone, Debug)]
pub struct SwitchController {
    policy: Policy,
    dwell_probes: u64,
    budget: SwitchBudget,
    dwelling: BTreeMap<PathId, Dwell>,
    last_switch_at: Option<Instant>,
    switches: u64,
    wakeup: Option<Instant>,
}

impl SwitchController {
    /// A controller with a full switch budget, sized by `policy` (validate the policy first).
    pub fn new(policy: &Policy) -> Self {
        let interval = policy.probe_interval.as_nanos().max(1);
        let dwell_probes = u64::try_from(policy.dwell.as_nanos() / interval)
            .unwrap_or(u64::MAX)
            .max(1);
        SwitchController {
            policy: policy.clone(),
            dwell_probes,
            budget: SwitchBudget::from_policy(policy),
            dwelling: BTreeMap::new(),
            last_switch_at: None,
            switches: 0,
            wakeup: None,
        }
    }

    /// Decides at `now` from `prober`'s measurements and its active path. Updates which
    /// candidates the prober watches (probes at the active rate).
    pub fn decide(&mut self, prober: &mut Prober, now: Instant) -> Decision {
        self.wakeup = None;
        let active = prober
            .active()
            .and_then(|id| prober.stats(id).map(|stats| (id, stats)));
        let decision = match active {
            Some((id, stats)) if stats.is_up() && stats.state() != PathState::Dead => {
                let current = score(stats, stats.preference_rank(), &self.policy);
                self.plan(prober, id, current, now)
            }
            _ => {
                self.dwelling.clear();
                let reason = match active {
                    None => SwitchReason::NoActivePath,
                    Some(_) => SwitchReason::TransportDead,
                };
                self.recover(prober, reason, now)
            }
        };
        prober.watch_only(|id| self.dwelling.contains_key(&id));
        decision
    }

    /// The session committed a switch to `to` at `now`: takes a budget token (if any is left:
    /// the switch happened anyway), starts the `min_switch_interval`, forgets every dwell, and
    /// makes `to` the prober's active path.
    pub fn on_switched(&mut self, prober: &mut Prober, to: PathId, now: Instant) {
        self.budget.try_take(now);
        self.last_switch_at = Some(now);
        self.switches = self.switches.saturating_add(1);
        self.dwelling.clear();
        prober.watch_only(|_| false);
        prober.set_active(Some(to));
    }

    /// When [`decide`](Self::decide) may answer differently with no new input (a dwell ending
    /// or the `min_switch_interval` passing), as of the last `decide`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wakeup
    }

    /// Switches committed so far.
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// When the last switch was committed.
    pub fn last_switch_at(&self) -> Option<Instant> {
        self.last_switch_at
    }

    /// Budget tokens available at `now`.
    pub fn budget_available(&mut self, now: Instant) -> u32 {
        self.budget.available(now)
    }

    /// The candidates in their dwell and since when, in `PathId` order.
    pub fn dwelling(&self) -> impl Iterator<Item = (PathId, Instant)> + '_ {
        self.dwelling.iter().map(|(id, dwell)| (*id, dwell.since))
    }

    fn recover(&mut self, prober: &Prober, reason: SwitchReason, now: Instant) -> Decision {
        let active = prober.active();
        let best = prober
            .paths()
            .filter(|&(id, stats)| Some(id) != active && is_target(stats))
            .map(|(id, stats)| (self.score_of(stats), id))
            .max_by_key(|&(score, id)| (score, std::cmp::Reverse(id)));
        match best {
            None => Decision::Recover { to: None, reason },
            Some(_) if self.budget.available(now) == 0 => Decision::Recover {
                to: None,
                reason: SwitchReason::FlapLimit,
            },
            Some((_, id)) => Decision::Recover {
                to: Some(id),
                reason,
            },
        }
    }

    fn plan(&mut self, prober: &Prober, active: PathId, current: Score, now: Instant) -> Decision {
        let h = self.policy.hysteresis_percent;
        let mut ready: Option<(Score, PathId, SwitchReason)> = None;
        let mut qualifying = Vec::new();
        for (id, stats) in prober.paths() {
            if id == active || !is_target(stats) || stats.consecutive_losses() != 0 {
                continue;
            }
            let candidate = self.score_of(stats);
            if let Some(reason) = qualifies(&candidate, &current, h) {
                qualifying.push((id, stats.probes_answered(), candidate, reason));
            }
        }
        self.dwelling
            .retain(|id, _| qualifying.iter().any(|(q, ..)| q == id));
        for (id, answered, candidate, reason) in qualifying {
            let dwell = *self.dwelling.entry(id).or_insert(Dwell {
                since: now,
                answered_at_start: answered,
            });
            let ends = dwell.since.checked_add(self.policy.dwell);
            let proved = answered.saturating_sub(dwell.answered_at_start) >= self.dwell_probes;
            match ends {
                Some(ends) if ends <= now && proved => {
                    let better = ready.is_none_or(|(best, best_id, _)| {
                        (candidate, std::cmp::Reverse(id)) > (best, std::cmp::Reverse(best_id))
                    });
                    if better {
                        ready = Some((candidate, id, reason));
                    }
                }
                Some(ends) if ends > now => self.wake_at(ends),
                _ => {}
            }
        }
        let Some((_, to, reason)) = ready else {
            return Decision::Stay;
        };
        let earliest = self
            .last_switch_at
            .and_then(|at| at.checked_add(self.policy.min_switch_interval));
        if let Some(earliest) = earliest.filter(|&at| at > now) {
            self.wake_at(earliest);
            return Decision::Stay;
        }
        if self.budget.available(now) == 0 {
            return Decision::Degrade {
                reason: SwitchReason::FlapLimit,
            };
        }
        Decision::PlannedSwitch { to, reason }
    }

    fn score_of(&self, stats: &PathStats) -> Score {
        score(stats, stats.preference_rank(), &self.policy)
    }

    fn wake_at(&mut self, at: Instant) {
        self.wakeup = Some(self.wakeup.map_or(at, |w| w.min(at)));
    }
}

/// A path that may be switched to: up and alive.
fn is_target(stats: &PathStats) -> bool {
    stats.is_up() && stats.state() == PathState::Alive
}

/// Whether an alive `candidate` qualifies against `current`, and why.
fn qualifies(candidate: &Score, current: &Score, h: u32) -> Option<SwitchReason> {
    let preferred = candidate.preference_rank() < current.preference_rank();
    let qualifies = if preferred {
        within_margin(candidate, current, h)
    } else {
        better_by_margin(candidate, current, h)
    };
    if !qualifies {
        return None;
    }
    Some(if current.class() == ScoreClass::Suspect {
        SwitchReason::ActivePathSuspect
    } else if preferred {
        SwitchReason::PreferredPathBack
    } else {
        SwitchReason::BetterPath
    })
}
