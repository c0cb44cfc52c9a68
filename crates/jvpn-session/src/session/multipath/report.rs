//! What `Session::paths` says about each candidate.

use std::time::{Duration, Instant};

use crate::{PathId, PathKind, PathState, PathStats, Policy, ScoreClass, score};

/// One candidate path as the session sees it (for `jvpn status`).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct PathReport {
    /// The path.
    pub path: PathId,
    /// Its transport kind.
    pub kind: PathKind,
    /// Its position in the user's `--transports` list (0 first).
    pub preference_rank: u8,
    /// Whether the session is bound to it now.
    pub active: bool,
    /// Whether its link is up (no `path_down` since the last `path_up`).
    pub up: bool,
    /// The prober's verdict.
    pub state: PathState,
    /// Its score class.
    pub class: ScoreClass,
    /// Smoothed round-trip time of its probes, once one was answered.
    pub rtt: Option<Duration>,
    /// RTT variation (RFC 6298 RTTVAR), once one probe was answered.
    pub jitter: Option<Duration>,
    /// Lost probes over the loss window, in whole percent.
    pub loss_percent: u32,
    /// When the last authenticated packet arrived on it.
    pub last_seen: Option<Instant>,
}

impl PathReport {
    pub(super) fn new(path: PathId, stats: &PathStats, active: bool, policy: &Policy) -> Self {
        PathReport {
            path,
            kind: stats.kind().clone(),
            preference_rank: stats.preference_rank(),
            active,
            up: stats.is_up(),
            state: stats.state(),
            class: score(stats, stats.preference_rank(), policy).class(),
            rtt: stats.srtt(),
            jitter: stats.srtt().map(|_| stats.jitter()),
            loss_percent: stats.loss_percent(),
            last_seen: stats.last_seen(),
        }
    }
}
