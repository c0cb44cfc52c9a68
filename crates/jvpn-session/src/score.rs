//! Path scores: a pure, deterministic ranking of candidate paths.
//!
//! # The rules
//!
//! A [`Score`] compares **greater when the path is better**. Its fields are compared in order:
//!
//! 1. **Class** ([`ScoreClass`]): `Alive` > `Suspect` > `Unmeasured` > `Dead`. A path that never
//!    answered a probe is `Unmeasured` and sorts after every usable measured path; a dead (or
//!    down) path sorts last.
//! 2. **Loss bucket** (fewer is better): the loss over the probe window with one lost probe
//!    forgiven, `(losses − 1) × 100 / window`, is bucket 0 at or below the policy's
//!    `loss_volatile_percent` (5 %); above it, one bucket per [`LOSS_BUCKET_PERCENT`] points.
//!    So a single lost probe never reorders paths, whatever the window's length.
//! 3. **Latency bucket** (lower is better): `SRTT + 4 × jitter` in whole milliseconds, divided
//!    into [`LATENCY_BUCKET_MS`]-wide buckets, so that a few milliseconds of noise never
//!    reorder two paths. Unmeasured paths have the worst latency bucket.
//! 4. **Preference** (lower rank is better): the path's position in the user's `--transports`
//!    list; it only breaks ties of equal quality.
//!
//! Two margin tests, used by the switch controller, look at class and quality only (never at
//! preference):
//!
//! - [`better_by_margin`]: the candidate is in a strictly better class; or in the same class
//!   with a lower loss bucket; or with the same loss bucket and a latency cost `c` that is
//!   strictly lower than the current path's `k` **and** `c ≤ k × (1 − h/100)`.
//! - [`within_margin`]: the candidate is in the same or a better class, its loss bucket is not
//!   higher, and (in the same class and loss bucket) `c ≤ k × (1 + h/100) +`
//!   [`PREFERENCE_SLACK_BUCKETS`]: "no worse than the current path by more than the margin and
//!   20 ms".
//!
//! A planned switch to a *less or equally preferred* path needs [`better_by_margin`]; a switch
//! back *up* to a more preferred path needs only [`within_margin`]. Because
//! `1/(1 + h) > 1 − h` for any `h > 0` (and the tests are strict at `h = 0`), no pair of paths
//! can satisfy both directions at once: moving up and then straight back down is impossible
//! with unchanged measurements.

use std::cmp::Reverse;

use serde::{Deserialize, Serialize};

use crate::{PathState, PathStats, Policy};

/// Width of one loss bucket above the policy's volatile threshold, in percentage points.
pub const LOSS_BUCKET_PERCENT: u32 = 10;
/// Width of one latency bucket (`SRTT + 4 × jitter`), in milliseconds.
pub const LATENCY_BUCKET_MS: u32 = 10;
/// Latency buckets a more preferred path may cost beyond the margin and still be taken back
/// ([`within_margin`]): the user's order outweighs 20 ms. A path that just came back has few
/// RTT samples (standbys are probed once per standby period) and a jitter estimate that is
/// still high, so without this slack a returning preferred path loses to a settled one for
/// many probe periods on a loaded machine.
pub const PREFERENCE_SLACK_BUCKETS: u64 = 2;

/// How usable a path is, worst first (so that the derived order puts better classes higher).
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScoreClass {
    /// Dead or down: never a target.
    Dead,
    /// Up but never answered a probe: nothing is known, so it sorts after measured paths.
    Unmeasured,
    /// Lost `probes_lost_suspect` probes in a row.
    Suspect,
    /// Answered a probe and not suspect.
    Alive,
}

/// The rank of one path; greater is better. See the module docs for the order of the fields.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Score {
    class: ScoreClass,
    loss_bucket: Reverse<u32>,
    latency_bucket: Reverse<u32>,
    preference_rank: Reverse<u8>,
}

impl Score {
    /// The class (compared first).
    pub fn class(&self) -> ScoreClass {
        self.class
    }

    /// The loss bucket; 0 is "at or below the volatile threshold".
    pub fn loss_bucket(&self) -> u32 {
        self.loss_bucket.0
    }

    /// The latency bucket (`(SRTT + 4 × jitter) / LATENCY_BUCKET_MS`); `u32::MAX` if unmeasured.
    pub fn latency_bucket(&self) -> u32 {
        self.latency_bucket.0
    }

    /// The preference rank the score was computed with (0 is the most preferred).
    pub fn preference_rank(&self) -> u8 {
        self.preference_rank.0
    }
}

/// Scores one path. Pure: the same inputs always give the same score.
pub fn score(stats: &PathStats, preference_rank: u8, policy: &Policy) -> Score {
    let class = match stats.state() {
        _ if !stats.is_up() => ScoreClass::Dead,
        PathState::Dead => ScoreClass::Dead,
        PathState::Suspect => ScoreClass::Suspect,
        PathState::Alive => ScoreClass::Alive,
        PathState::Unknown => ScoreClass::Unmeasured,
    };
    let loss = match stats.window_len() {
        0 => 0,
        len => stats.window_losses().saturating_sub(1) * 100 / len,
    };
    let loss_bucket = match loss.checked_sub(policy.loss_volatile_percent) {
        None | Some(0) => 0,
        Some(above) => 1 + (above - 1) / LOSS_BUCKET_PERCENT,
    };
    let latency_bucket = match stats.srtt() {
        None => u32::MAX,
        Some(srtt) => {
            let cost = srtt.saturating_add(stats.jitter().saturating_mul(4));
            let ms = u32::try_from(cost.as_millis()).unwrap_or(u32::MAX);
            ms / LATENCY_BUCKET_MS
        }
    };
    Score {
        class,
        loss_bucket: Reverse(loss_bucket),
        latency_bucket: Reverse(latency_bucket),
        preference_rank: Reverse(preference_rank),
    }
}

/// `candidate` beats `current` by the hysteresis margin (`hysteresis_percent`, 0–100) on class
/// and quality; preference is not considered. See the module docs.
pub fn better_by_margin(candidate: &Score, current: &Score, hysteresis_percent: u32) -> bool {
    if candidate.class != current.class {
        return candidate.class > current.class;
    }
    if candidate.loss_bucket != current.loss_bucket {
        return candidate.loss_bucket > current.loss_bucket;
    }
    let (c, k) = (
        u64::from(candidate.latency_bucket.0),
        u64::from(current.latency_bucket.0),
    );
    let h = u64::from(hysteresis_percent.min(100));
    c < k && c * 100 <= k * (100 - h)
}

/// `candidate` is no worse than `current` by more than the hysteresis margin on class and
/// quality; preference is not considered. See the module docs.
pub fn within_margin(candidate: &Score, current: &Score, hysteresis_percent: u32) -> bool {
    if candidate.class != current.class {
        return candidate.class > current.class;
    }
    if candidate.loss_bucket != current.loss_bucket {
        return candidate.loss_bucket > current.loss_bucket;
    }
    let (c, k) = (
        u64::from(candidate.latency_bucket.0),
        u64::from(current.latency_bucket.0),
    );
    let h = u64::from(hysteresis_percent.min(100));
    c * 100 <= k * (100 + h) + PREFERENCE_SLACK_BUCKETS * 100
}

#[cfg(test)]
mod tests;
