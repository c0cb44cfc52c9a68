//! Multipath client sessions: candidate paths, probing on every path, the fast dead-path
//! detector, and the switch controller's decisions mapped onto the state table.
//!
//! Nothing here runs until the first [`Session::add_path`]: a session with one path behaves
//! exactly as before. Once enabled, every turn (`handle_datagram`, `handle_timeout`, path
//! changes) runs [`Session::drive_multipath`]:
//!
//! 1. the fast detector ([`detector`]) steps on the active path (fast probe, or dead);
//! 2. the [`SwitchController`] decides from the [`Prober`]'s measurements; `Recover` and
//!    `PlannedSwitch` call `start_rebind`, `Degrade` is DEGRADED (`FlapLimit`);
//! 3. the active path's quality moves the state between ATTACHED, VOLATILE and DEGRADED;
//! 4. the probes the prober schedules are queued, each on its own path.
//!
//! Probe sequence numbers of this module have the top bit set; [`Session::probe`]'s have it
//! clear, so the two never answer each other's probes.

mod detector;
mod report;

use std::time::{Duration, Instant};

use jvpn_wire::ControlMessage;

use detector::{Silence, SilenceDetector, Timeouts};
pub use report::PathReport;

use super::{Event, RoleState, Session};
use crate::{
    Decision, PathId, PathKind, PathState, Policy, Prober, Reason, State, SwitchController,
    SwitchReason,
};

/// Set in the sequence numbers of the prober's probes.
pub(super) const PROBER_SEQ_BIT: u32 = 1 << 31;
/// Probes and probe answers waiting to be sealed, per session (older ones are dropped).
pub(super) const PATH_OUT_CAP: usize = 32;
/// Tokens a planned switch leaves in the budget: the last one is kept for a recovery from a
/// dead path, so a flapping preferred path ends in DEGRADED, never in a recovery with no
/// token (which would terminate the session).
const RESERVED_TOKENS: u32 = 1;

/// A rebind in progress, started by `start_rebind` from a decision.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct PendingSwitch {
    to: PathId,
    reason: SwitchReason,
    /// When the rebind towards `to` started (see [`Multipath::attempt_deadline`]).
    since: Instant,
}

/// Everything a multipath client holds.
#[derive(Debug)]
pub(crate) struct Multipath {
    prober: Prober,
    controller: SwitchController,
    detector: SilenceDetector,
    policy: Policy,
    next_seq: u32,
    pending: Option<PendingSwitch>,
    last_switch: Option<(SwitchReason, PathId)>,
    /// DEGRADED because the budget forbade a switch: stays so until a token is back.
    flap_limited: bool,
}

impl Multipath {
    fn new(policy: &Policy) -> Self {
        Multipath {
            prober: Prober::new(policy),
            controller: SwitchController::new(policy),
            detector: SilenceDetector::default(),
            policy: policy.clone(),
            next_seq: 0,
            pending: None,
            last_switch: None,
            flap_limited: false,
        }
    }

    fn wire_seq(&mut self) -> u32 {
        let seq = self.next_seq | PROBER_SEQ_BIT;
        self.next_seq = self.next_seq.wrapping_add(1) & !PROBER_SEQ_BIT;
        seq
    }

    /// The fast detector's timeouts for the active path's RTT estimate.
    fn timeouts(&self) -> Timeouts {
        let estimate = self
            .prober
            .active()
            .and_then(|id| self.prober.stats(id))
            .and_then(|s| s.srtt().map(|srtt| srtt.saturating_add(s.jitter() * 4)))
            .unwrap_or(Duration::ZERO)
            .saturating_mul(self.policy.silence_rtt_factor);
        Timeouts {
            silence: estimate.max(self.policy.silence_timeout_min),
            fast: estimate.max(self.policy.fast_probe_timeout_min),
            lost_dead: self.policy.fast_probes_lost_dead,
        }
    }

    /// When a rebind towards the pending target is given up for the next candidate:
    /// `max(reattach_retry, silence_rtt_factor × (SRTT + 4 × jitter))` of the target after it
    /// started. A candidate that answered probes a few seconds ago can be dead by now (all
    /// UDP blocked takes QUIC down with plain UDP), and waiting for the prober's slow standby
    /// verdict would stretch the blackout by seconds.
    fn attempt_deadline(&self) -> Option<Instant> {
        let pending = self.pending?;
        let estimate = self
            .prober
            .stats(pending.to)
            .and_then(|s| s.srtt().map(|srtt| srtt.saturating_add(s.jitter() * 4)))
            .unwrap_or(Duration::ZERO)
            .saturating_mul(self.policy.silence_rtt_factor);
        pending
            .since
            .checked_add(estimate.max(self.policy.reattach_retry))
    }

    /// Why the active path is volatile, if it is.
    fn volatile_reason(&self, active: PathId) -> Option<Reason> {
        let stats = self.prober.stats(active)?;
        if self.detector.suspect() || stats.state() == PathState::Suspect {
            return Some(Reason::ProbeLost);
        }
        // One lost probe is forgiven, as in the score: a single loss never makes a path
        // volatile, whatever the window's length.
        let window = stats.window_len();
        let forgiven = stats.window_losses().saturating_sub(1);
        if window > 0 && forgiven * 100 / window > self.policy.loss_volatile_percent {
            return Some(Reason::LossSpike);
        }
        if let (Some(latest), Some(srtt)) = (stats.latest_rtt(), stats.srtt())
            && latest > srtt.saturating_mul(self.policy.rtt_spike_factor)
        {
            return Some(Reason::RttSpike);
        }
        None
    }
}

impl Session {
    /// Client: adds (or replaces) a candidate path. `preference_rank` is its position in the
    /// user's `--transports` list (0 first). The first call turns multipath on: from then on
    /// every candidate is probed and the switch controller may move the session. Add every
    /// candidate, the path given to `connect` included: while the bound path is not a
    /// candidate, no switch decision is taken. No effect on a server session.
    pub fn add_path(&mut self, path: PathId, kind: PathKind, preference_rank: u8, now: Instant) {
        if !matches!(self.role, RoleState::Client(_)) {
            return;
        }
        self.set_path_kind(path, kind.as_str());
        let bound = self.bound_path();
        let mp = self
            .multipath
            .get_or_insert_with(|| Box::new(Multipath::new(&self.policy)));
        mp.prober.add_path(path, kind, preference_rank, now);
        if bound == Some(path) {
            mp.prober.set_active(Some(path));
        }
        self.drive_multipath(now);
    }

    /// Client: forgets a candidate path. If it carried the session, the session recovers at
    /// once to the best live candidate (RECOVERING `TransportDead`). No effect on a server
    /// session.
    pub fn remove_path(&mut self, path: PathId, now: Instant) {
        let Some(mp) = self.multipath.as_mut() else {
            return;
        };
        mp.prober.path_down(path, now);
        self.drive_multipath(now);
        if let Some(mp) = self.multipath.as_mut() {
            mp.prober.remove_path(path);
        }
        self.drive_multipath(now);
    }

    /// Client: the runtime's link for `path` is usable (again): its measurements start over
    /// and it is probed at once. No effect on a server session.
    pub fn path_up(&mut self, path: PathId, now: Instant) {
        let Some(mp) = self.multipath.as_mut() else {
            return;
        };
        mp.prober.path_up(path, now);
        self.drive_multipath(now);
    }

    /// Client: the runtime's link for `path` failed or closed: it is dead and not probed until
    /// [`path_up`](Self::path_up). If it carried the session, the session recovers at once to
    /// the best live candidate. No effect on a server session.
    pub fn path_down(&mut self, path: PathId, now: Instant) {
        let Some(mp) = self.multipath.as_mut() else {
            return;
        };
        mp.prober.path_down(path, now);
        self.drive_multipath(now);
    }

    /// Every candidate path with its measurements, in `PathId` order (empty without
    /// [`add_path`](Self::add_path)).
    pub fn paths(&self) -> Vec<PathReport> {
        let Some(mp) = self.multipath.as_ref() else {
            return Vec::new();
        };
        let bound = self.bound_path();
        mp.prober
            .paths()
            .map(|(id, stats)| PathReport::new(id, stats, bound == Some(id), &self.policy))
            .collect()
    }

    /// Why the active path is the active one: the reason of the last committed switch (the
    /// first attach counts, as `NoActivePath`) and its path. `None` without multipath.
    pub fn last_switch(&self) -> Option<(SwitchReason, PathId)> {
        self.multipath.as_ref().and_then(|mp| mp.last_switch)
    }

    /// An authenticated packet arrived on `path`.
    pub(super) fn mp_on_received(&mut self, path: PathId, now: Instant) {
        let bound = self.bound_path();
        if let Some(mp) = self.multipath.as_mut() {
            mp.prober.on_packet_received(path, now);
            if bound == Some(path) {
                mp.detector.on_received();
            }
        }
    }

    /// An inner packet left on the bound path.
    pub(super) fn mp_on_data_sent(&mut self, now: Instant) {
        if self.bound_is_active_candidate()
            && let Some(mp) = self.multipath.as_mut()
        {
            mp.detector.on_data_sent(now);
        }
    }

    /// Whether the session is bound to a candidate that is the prober's active path: the
    /// detector and the quality rules look at it only then.
    fn bound_is_active_candidate(&self) -> bool {
        let Some(mp) = self.multipath.as_ref() else {
            return false;
        };
        let bound = self.bound_path();
        bound.is_some()
            && mp.prober.active() == bound
            && bound.is_some_and(|p| mp.prober.stats(p).is_some())
    }

    /// Whether `decide` runs: RECOVERING, or bound to a candidate.
    fn decisions_run(&self) -> bool {
        let Some(mp) = self.multipath.as_ref() else {
            return false;
        };
        let state = self.sm.state();
        state == State::Recovering
            || (state.is_bound()
                && self
                    .bound_path()
                    .is_some_and(|p| mp.prober.stats(p).is_some()))
    }

    /// A PROBE_ACK with a prober sequence number arrived on `path`.
    pub(super) fn mp_on_probe_ack(&mut self, path: PathId, seq: u32, now: Instant) {
        if let Some(mp) = self.multipath.as_mut() {
            mp.prober.on_probe_ack(path, seq, now);
        }
    }

    /// Client: a PROBE_ACK_OFF_BINDING arrived on the bound `path` (`reason` TransportDead): the
    /// server sees this path from another address (NAT rebinding, a new source address), so
    /// its traffic to us goes to the old one and is lost while probes keep succeeding; or a
    /// matching stateless reset (`reason` StatelessReset): the server lost our index.
    /// Revalidate at once with a reattach on the same path; the server's binding moves only on
    /// its PATH_CONFIRM. Once RECOVERING nothing is bound, so further signals start nothing new.
    pub(super) fn revalidate_bound_path(&mut self, path: PathId, reason: Reason, now: Instant) {
        if !matches!(self.role, RoleState::Client(_)) || self.bound_path() != Some(path) {
            return;
        }
        if let Some(mp) = self.multipath.as_mut() {
            // A recovery like a dead path's: the commit takes a budget token, and a reattach
            // that goes unanswered gives the path up for the next live candidate.
            mp.pending = Some(PendingSwitch {
                to: path,
                reason: SwitchReason::TransportDead,
                since: now,
            });
        }
        self.start_rebind(path, reason, now);
    }

    /// Whether `path` is a candidate (PROBE_ACKs are accepted on candidates only).
    pub(super) fn mp_is_candidate(&self, path: PathId) -> bool {
        self.multipath
            .as_ref()
            .is_some_and(|mp| mp.prober.stats(path).is_some())
    }

    /// The binding committed on `path` (first attach or rebind).
    pub(super) fn mp_on_rebound(&mut self, path: PathId, first: bool, now: Instant) {
        let Some(mp) = self.multipath.as_mut() else {
            return;
        };
        let from = mp.prober.active();
        let reason = if first {
            mp.prober.set_active(Some(path));
            SwitchReason::NoActivePath
        } else {
            let reason = mp
                .pending
                .filter(|p| p.to == path)
                .map_or(SwitchReason::TransportDead, |p| p.reason);
            mp.controller.on_switched(&mut mp.prober, path, now);
            reason
        };
        mp.pending = None;
        mp.flap_limited = false;
        mp.detector.reset();
        mp.last_switch = Some((reason, path));
        self.events.push_back(Event::PathSwitched {
            from: if first { None } else { from },
            to: path,
            reason,
        });
    }

    /// The earliest instant at which the multipath logic must run again.
    pub(super) fn mp_timeout(&self) -> Option<Instant> {
        let mp = self.multipath.as_ref()?;
        let state = self.sm.state();
        if state.is_terminated() || self.keys.current.is_none() {
            return None;
        }
        // Only deadlines that a turn will act on: a stale one would make the shell spin.
        let armed = self.bound_is_active_candidate();
        let volatile_until = (armed && state == State::Volatile)
            .then(|| self.sm.entered_at())
            .flatten()
            .and_then(|at| at.checked_add(self.policy.degraded_dwell));
        [
            mp.prober.poll_timeout(),
            mp.controller
                .poll_timeout()
                .filter(|_| self.decisions_run()),
            mp.detector.deadline(mp.timeouts()).filter(|_| armed),
            volatile_until,
            mp.attempt_deadline().filter(|_| state == State::Recovering),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// One turn of the multipath logic (see the module docs). A no-op without multipath.
    pub(super) fn drive_multipath(&mut self, now: Instant) {
        if self.multipath.is_none()
            || self.sm.state().is_terminated()
            || self.keys.current.is_none()
        {
            return;
        }
        self.step_detector(now);
        if let Some(mp) = self.multipath.as_mut() {
            mp.prober.handle_timeout(now);
        }
        self.give_up_unanswered_target(now);
        self.decide(now);
        self.update_quality(now);
        self.queue_scheduled_probes(now);
    }

    /// RECOVERING towards a target that has not answered by its attempt deadline: the target
    /// counts as dead (it is probed again with the dead backoff and comes back by answering),
    /// so `decide` picks the next live candidate. With none left, attempts go on where they
    /// are (`recover` with no target).
    fn give_up_unanswered_target(&mut self, now: Instant) {
        if self.sm.state() != State::Recovering {
            return;
        }
        let Some(mp) = self.multipath.as_mut() else {
            return;
        };
        if let (Some(pending), Some(deadline)) = (mp.pending, mp.attempt_deadline())
            && now >= deadline
        {
            mp.prober.declare_dead(pending.to, now);
            mp.pending = None;
        }
    }

    fn step_detector(&mut self, now: Instant) {
        if !self.bound_is_active_candidate() {
            if let Some(mp) = self.multipath.as_mut() {
                mp.detector.reset();
            }
            return;
        }
        let Some(bound) = self.bound_path() else {
            return;
        };
        let Some(mp) = self.multipath.as_mut() else {
            return;
        };
        let timeouts = mp.timeouts();
        match mp.detector.poll(now, timeouts) {
            Silence::Quiet => {}
            Silence::SendFastProbe => self.queue_probe(bound, now),
            Silence::Dead => mp.prober.declare_dead(bound, now),
        }
    }

    fn decide(&mut self, now: Instant) {
        if !self.decisions_run() {
            return;
        }
        let Some(mp) = self.multipath.as_mut() else {
            return;
        };
        match mp.controller.decide(&mut mp.prober, now) {
            Decision::Stay => {
                if mp.flap_limited && mp.controller.budget_available(now) > RESERVED_TOKENS {
                    mp.flap_limited = false;
                }
            }
            Decision::Recover { to, reason } => self.recover(to, reason, now),
            Decision::PlannedSwitch { to, reason } => self.planned_switch(to, reason, now),
            Decision::Degrade { .. } => self.flap_limit(now),
        }
    }

    fn recover(&mut self, to: Option<PathId>, reason: SwitchReason, now: Instant) {
        let state = self.sm.state();
        let Some(mp) = self.multipath.as_mut() else {
            return;
        };
        // A target still alive keeps its handshake going: a better one appearing mid-way is
        // not worth starting over.
        let in_flight = mp.pending.is_some_and(|p| {
            mp.prober
                .stats(p.to)
                .is_some_and(|s| s.is_up() && s.state() == PathState::Alive)
        });
        match to {
            Some(to) if state.is_bound() || !in_flight => {
                mp.pending = Some(PendingSwitch {
                    to,
                    reason,
                    since: now,
                });
                self.start_rebind(to, Reason::TransportDead, now);
            }
            None if state.is_bound() => {
                // No live standby: keep trying where we were. The path may come back, and a
                // restarted server is only discovered by asking it (SessionLost at once).
                mp.pending = None;
                let path = self.path;
                self.start_rebind(path, Reason::TransportDead, now);
            }
            _ => {}
        }
    }

    fn planned_switch(&mut self, to: PathId, reason: SwitchReason, now: Instant) {
        if !self.sm.state().is_bound() {
            return;
        }
        let Some(mp) = self.multipath.as_mut() else {
            return;
        };
        if mp.controller.budget_available(now) <= RESERVED_TOKENS {
            self.flap_limit(now);
            return;
        }
        // Make-before-break: only to a path that is up and has answered a probe.
        let proven = mp
            .prober
            .stats(to)
            .is_some_and(|s| s.is_up() && s.state() == PathState::Alive && s.last_ack().is_some());
        if !proven {
            return;
        }
        mp.pending = Some(PendingSwitch {
            to,
            reason,
            since: now,
        });
        self.start_rebind(to, Reason::PlannedSwitch, now);
    }

    fn flap_limit(&mut self, now: Instant) {
        if let Some(mp) = self.multipath.as_mut() {
            mp.flap_limited = true;
        }
        if matches!(self.sm.state(), State::Attached | State::Volatile) {
            self.transition(State::Degraded, Reason::FlapLimit, now);
        }
    }

    fn update_quality(&mut self, now: Instant) {
        if !self.bound_is_active_candidate() {
            return;
        }
        let state = self.sm.state();
        let Some(bound) = self.bound_path() else {
            return;
        };
        let Some(mp) = self.multipath.as_ref() else {
            return;
        };
        if mp.prober.stats(bound).is_none() {
            return;
        }
        let volatile = mp.volatile_reason(bound);
        let flap_limited = mp.flap_limited;
        match (state, volatile) {
            (State::Attached, Some(reason)) => {
                self.transition(State::Volatile, reason, now);
            }
            (State::Volatile, None) => {
                self.transition(State::Attached, Reason::QualityRestored, now);
            }
            (State::Volatile, Some(_)) => {
                let dwell_over = self
                    .sm
                    .entered_at()
                    .and_then(|at| at.checked_add(self.policy.degraded_dwell))
                    .is_some_and(|until| now >= until);
                if dwell_over {
                    self.transition(State::Degraded, Reason::QualityBelowPolicy, now);
                }
            }
            (State::Degraded, None) if !flap_limited => {
                self.transition(State::Attached, Reason::QualityRestored, now);
            }
            _ => {}
        }
    }

    fn queue_scheduled_probes(&mut self, now: Instant) {
        let Some(mp) = self.multipath.as_mut() else {
            return;
        };
        let mut due = Vec::new();
        while let Some((path, _)) = mp.prober.poll_probe(now) {
            due.push(path);
        }
        for path in due {
            self.queue_probe(path, now);
        }
    }

    /// Queues a prober PROBE on `path` and records it as sent.
    fn queue_probe(&mut self, path: PathId, now: Instant) {
        let sent_micros = self.micros_at(now);
        let Some(mp) = self.multipath.as_mut() else {
            return;
        };
        let seq = mp.wire_seq();
        mp.prober.on_probe_sent(path, seq, now);
        self.queue_on_path(path, ControlMessage::Probe { seq, sent_micros });
    }

    /// Queues a control message for `path` (bounded: the oldest is dropped when full).
    pub(super) fn queue_on_path(&mut self, path: PathId, msg: ControlMessage) {
        if self.path_out.len() >= PATH_OUT_CAP {
            self.path_out.pop_front();
        }
        self.path_out.push_back((path, msg));
    }
}
