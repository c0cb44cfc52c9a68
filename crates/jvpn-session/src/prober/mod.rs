//! The prober: when to probe each candidate path, and what the answers say about it.
//!
//! # What the user can rely on
//!
//! - **Active path:** probed every `probe_interval` (default 1 s).
//! - **Standby paths:** probed every `standby_probe_factor × probe_interval` (default 5 s). A
//!   standby path that is dead backs off: after each probe sent while it is dead the interval
//!   doubles (5 s, 10 s, 20 s, …) up to `standby_probe_max_interval` (default 20 s).
//! - **Hurry:** while the active path is suspect or dead, or there is no active path, every up
//!   path is probed every `probe_interval`, dead or not, so that a replacement is known fast.
//!   A path the switch controller is *watching* (a candidate in its dwell) is also probed every
//!   `probe_interval`, so that the dwell rests on answered probes, not on one old sample.
//! - **New or restored link:** probed at once (`add_path`, `path_up`). A link the shell reports
//!   down (`path_down`) is dead and not probed until `path_up`.
//! - **Loss:** a probe counts as lost when it is still unanswered
//!   `max(probe_timeout_min, min(3 × SRTT, 10 s))` after it was sent (the timeout is fixed when
//!   it is sent; `probe_timeout_min` is 1 s by default). An answer at or after that instant is
//!   ignored: the probe already counted as lost. At most [`LOSS_WINDOW`] probes are outstanding
//!   per path; sending one more counts the oldest as lost.
//! - **RTT:** measured against our own record of when the probe left, matched exactly by
//!   `(path, seq)`; unknown, late and duplicate answers are ignored. SRTT and RTTVAR follow
//!   RFC 6298's update rules (α = 1/8, β = 1/4); the first sample sets SRTT = R and the jitter
//!   (RTTVAR) to 0, not R/2 as an RTO would: the score wants a neutral start.
//! - **Loss window:** the outcome of the last [`LOSS_WINDOW`] (16) resolved probes. A `Dead`
//!   path that answers a probe starts a new window (its old losses are forgotten).
//! - **State:** `Unknown` until a probe is answered; one answer makes an up path `Alive`;
//!   `probes_lost_suspect` (3) consecutive losses make it `Suspect`, `probes_lost_dead` (5)
//!   make it `Dead`. Packets other than probe answers update `last_seen` only: only a probe
//!   round trip proves that a path works in both directions.
//!
//! Sans-IO: `now` is always passed in. Drive it like the rest of the core: after any input,
//! drain [`poll_probe`](Prober::poll_probe) (send each probe, then call
//! [`on_probe_sent`](Prober::on_probe_sent)), then sleep until
//! [`poll_timeout`](Prober::poll_timeout) and call [`handle_timeout`](Prober::handle_timeout).

mod stats;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use stats::{LOSS_WINDOW, PathKind, PathState, PathStats};

use crate::{PathId, Policy};

/// Longest probe timeout derived from the RTT (`probe_timeout_min` may still be longer).
const PROBE_TIMEOUT_RTT_CAP: Duration = Duration::from_secs(10);
/// Shortest gap between two probes on one path, whatever the policy says, so that draining
/// `poll_probe` at one instant always ends.
const MIN_PROBE_GAP: Duration = Duration::from_millis(1);
/// Largest backoff exponent (the cap is reached long before with any sane policy).
const MAX_BACKOFF_SHIFT: u32 = 16;

/// Probe scheduling and per-path measurements for a set of candidate paths.
#[derive(Clone, Debug)]
pub struct Prober {
    probe_interval: Duration,
    standby_interval: Duration,
    standby_cap: Duration,
    timeout_min: Duration,
    lost_suspect: u32,
    lost_dead: u32,
    paths: BTreeMap<PathId, PathStats>,
    active: Option<PathId>,
    next_seq: u32,
}

impl Prober {
    /// An empty prober sized by `policy` (validate the policy first).
    pub fn new(policy: &Policy) -> Self {
        let probe_interval = policy.probe_interval.max(MIN_PROBE_GAP);
        let standby_interval = probe_interval.saturating_mul(policy.standby_probe_factor.max(1));
        Prober {
            probe_interval,
            standby_interval,
            standby_cap: policy.standby_probe_max_interval.max(standby_interval),
            timeout_min: policy.probe_timeout_min,
            lost_suspect: policy.probes_lost_suspect.max(1),
            lost_dead: policy
                .probes_lost_dead
                .max(policy.probes_lost_suspect.saturating_add(1)),
            paths: BTreeMap::new(),
            active: None,
            next_seq: 0,
        }
    }

    /// Adds a candidate path (or replaces one with the same id) in state `Unknown`, up, and
    /// due for a probe at once. `preference_rank` is its position in `--transports` (0 first).
    pub fn add_path(&mut self, path: PathId, kind: PathKind, preference_rank: u8, now: Instant) {
        self.paths
            .insert(path, PathStats::new(kind, preference_rank, now));
    }

    /// Forgets a path. If it was the active path, there is no active path any more.
    pub fn remove_path(&mut self, path: PathId) {
        self.paths.remove(&path);
        if self.active == Some(path) {
            self.active = None;
        }
    }

    /// The shell (re)established the link of a known path: its measurements start over
    /// (`Unknown`) and it is probed at once. Unknown ids are ignored.
    pub fn path_up(&mut self, path: PathId, now: Instant) {
        if let Some(stats) = self.paths.get_mut(&path) {
            let fresh = PathStats {
                watched: stats.watched,
                ..PathStats::new(stats.kind.clone(), stats.preference_rank, now)
            };
            *stats = fresh;
        }
    }

    /// The shell lost the link of a path: it is `Dead`, its outstanding probes are forgotten
    /// (not counted), and it is not probed until [`path_up`](Self::path_up).
    pub fn path_down(&mut self, path: PathId, now: Instant) {
        self.expire(now);
        if let Some(stats) = self.paths.get_mut(&path) {
            stats.up = false;
            stats.state = PathState::Dead;
            stats.outstanding.clear();
        }
    }

    /// Another detector (the session's fast silence detector) proved `path` dead at `now`:
    /// it is `Dead` as if `probes_lost_dead` probes had been lost, stays up, and is probed
    /// from now on with the dead backoff (its outstanding probes still resolve normally).
    pub(crate) fn declare_dead(&mut self, path: PathId, now: Instant) {
        self.expire(now);
        let lost_dead = self.lost_dead;
        if let Some(stats) = self.paths.get_mut(&path)
            && stats.up
        {
            stats.state = PathState::Dead;
            stats.consecutive_losses = stats.consecutive_losses.max(lost_dead);
            stats.last_probe_at = Some(now);
            stats.dead_probes = stats.dead_probes.max(1);
        }
    }

    /// Makes `path` the active path (probed every `probe_interval`); `None` while there is none.
    pub fn set_active(&mut self, path: Option<PathId>) {
        self.active = path;
    }

    /// The active path, if any.
    pub fn active(&self) -> Option<PathId> {
        self.active
    }

    /// Marks a standby path as watched (probed every `probe_interval`) or not. The switch
    /// controller watches the candidates in their dwell.
    pub fn set_watched(&mut self, path: PathId, watched: bool) {
        if let Some(stats) = self.paths.get_mut(&path) {
            stats.watched = watched;
        }
    }

    /// Watches exactly the paths for which `watched` is true (the switch controller's dwell set).
    pub(crate) fn watch_only(&mut self, watched: impl Fn(PathId) -> bool) {
        for (id, stats) in &mut self.paths {
            stats.watched = watched(*id);
        }
    }

    /// The measurements of one path.
    pub fn stats(&self, path: PathId) -> Option<&PathStats> {
        self.paths.get(&path)
    }

    /// Every path with its measurements, in `PathId` order.
    pub fn paths(&self) -> impl Iterator<Item = (PathId, &PathStats)> + '_ {
        self.paths.iter().map(|(id, stats)| (*id, stats))
    }

    /// The next probe to send at `now`: its path and the sequence number to put in it. The
    /// path's next probe is scheduled from `now` on. Call until `None`, sending each probe
    /// and reporting it with [`on_probe_sent`](Self::on_probe_sent).
    pub fn poll_probe(&mut self, now: Instant) -> Option<(PathId, u32)> {
        self.expire(now);
        let hurry = self.hurry();
        let (path, _) = self
            .paths
            .iter()
            .filter_map(|(id, stats)| {
                let due = self.due(*id, stats, hurry)?;
                (due <= now).then_some((*id, due))
            })
            .min_by_key(|&(id, due)| (due, id))?;
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let stats = self.paths.get_mut(&path)?;
        stats.last_probe_at = Some(now);
        if stats.state == PathState::Dead {
            stats.dead_probes = stats.dead_probes.saturating_add(1);
        }
        Some((path, seq))
    }

    /// The probe `seq` left on `path` at `now`: it is outstanding until answered or lost.
    /// `seq` is normally the one [`poll_probe`](Self::poll_probe) returned; if the wire
    /// assigns its own sequence numbers, pass that one: answers are matched against it.
    pub fn on_probe_sent(&mut self, path: PathId, seq: u32, now: Instant) {
        self.expire(now);
        let (lost_suspect, lost_dead) = (self.lost_suspect, self.lost_dead);
        let timeout = self.timeout_for(path);
        let Some(stats) = self.paths.get_mut(&path) else {
            return;
        };
        if !stats.up {
            return;
        }
        if stats.outstanding.len() >= LOSS_WINDOW as usize {
            stats.outstanding.pop_front();
            lose(stats, lost_suspect, lost_dead);
        }
        let lost_at = now.checked_add(timeout).unwrap_or(now);
        stats.outstanding.push_back((seq, now, lost_at));
        stats.probes_sent = stats.probes_sent.saturating_add(1);
    }

    /// The answer to probe `seq` arrived on `path` at `now`. Only an outstanding probe counts
    /// (exact `(path, seq)` match, once); anything else is ignored.
    pub fn on_probe_ack(&mut self, path: PathId, seq: u32, now: Instant) {
        self.expire(now);
        let Some(stats) = self.paths.get_mut(&path) else {
            return;
        };
        let Some(at) = stats.outstanding.iter().position(|&(s, _, _)| s == seq) else {
            return;
        };
        let Some((_, sent, _)) = stats.outstanding.remove(at) else {
            return;
        };
        if stats.state == PathState::Dead {
            // A dead path that answers again starts a new loss window: the losses that made
            // it dead say nothing about its new life (as after `path_up`), and the dwell, not
            // an old window, decides whether it has proved itself.
            stats.history = 0;
            stats.history_len = 0;
        }
        stats.sample_rtt(now.saturating_duration_since(sent));
        stats.record_outcome(false);
        stats.consecutive_losses = 0;
        stats.dead_probes = 0;
        stats.probes_answered = stats.probes_answered.saturating_add(1);
        stats.last_ack = Some(now);
        stats.last_seen = Some(now);
        if stats.up {
            stats.state = PathState::Alive;
        }
    }

    /// An authenticated packet arrived on `path` at `now` (updates `last_seen` only).
    pub fn on_packet_received(&mut self, path: PathId, now: Instant) {
        if let Some(stats) = self.paths.get_mut(&path) {
            stats.last_seen = Some(now);
        }
    }

    /// Counts the probes whose timeout has passed as lost.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
    }

    /// The next instant at which a probe is due or an outstanding probe times out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let hurry = self.hurry();
        self.paths
            .iter()
            .flat_map(|(id, stats)| {
                let lost_at = stats.outstanding.iter().map(|&(_, _, at)| at).min();
                [self.due(*id, stats, hurry), lost_at]
            })
            .flatten()
            .min()
    }

    /// When the next probe on `path` is due (`None`: not probed).
    fn due(&self, path: PathId, stats: &PathStats, hurry: bool) -> Option<Instant> {
        if !stats.up {
            return None;
        }
        let Some(last) = stats.last_probe_at else {
            return Some(stats.up_at);
        };
        let interval = if self.active == Some(path) || hurry || stats.watched {
            self.probe_interval
        } else if stats.state == PathState::Dead {
            let shift = stats.dead_probes.saturating_sub(1).min(MAX_BACKOFF_SHIFT);
            self.standby_interval
                .saturating_mul(1 << shift)
                .min(self.standby_cap)
        } else {
            self.standby_interval
        };
        last.checked_add(interval)
    }

    /// Standby paths are probed at the active rate while the active path is in distress.
    fn hurry(&self) -> bool {
        match self.active.and_then(|id| self.paths.get(&id)) {
            None => true,
            Some(stats) => matches!(stats.state, PathState::Suspect | PathState::Dead),
        }
    }

    fn timeout_for(&self, path: PathId) -> Duration {
        let from_rtt = self
            .paths
            .get(&path)
            .and_then(|stats| stats.srtt)
            .map_or(Duration::ZERO, |srtt| {
                srtt.saturating_mul(3).min(PROBE_TIMEOUT_RTT_CAP)
            });
        from_rtt.max(self.timeout_min)
    }

    fn expire(&mut self, now: Instant) {
        let (lost_suspect, lost_dead) = (self.lost_suspect, self.lost_dead);
        for stats in self.paths.values_mut() {
            // Timeouts differ per probe (they follow the SRTT), so expired probes need not be
            // at the front.
            let before = stats.outstanding.len();
            stats.outstanding.retain(|&(_, _, lost_at)| lost_at > now);
            for _ in stats.outstanding.len()..before {
                lose(stats, lost_suspect, lost_dead);
            }
        }
    }
}

/// One probe on `stats` is lost: record it and demote the path if the streak is long enough.
fn lose(stats: &mut PathStats, lost_suspect: u32, lost_dead: u32) {
    stats.record_outcome(true);
    stats.consecutive_losses = stats.consecutive_losses.saturating_add(1);
    stats.probes_lost = stats.probes_lost.saturating_add(1);
    if stats.consecutive_losses >= lost_dead {
        stats.state = PathState::Dead;
    } else if stats.consecutive_losses >= lost_suspect {
        stats.state = PathState::Suspect;
    }
}
