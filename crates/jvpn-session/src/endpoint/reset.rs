//! Server: STATELESS_RESET emission (docs/protocol.md §14). A sealed DATA / CONTROL frame for
//! a receiver index no session owns is answered with a reset carrying that index's token, so a
//! client whose server lost the session (a restart, a reaped session) reattaches at once instead
//! of waiting for `dead_after`.
//!
//! What a spoofed trigger can make the endpoint send is bounded three ways: a reset is strictly
//! shorter than its trigger (nothing at all for a trigger of the minimum size), at most one
//! reset per source every [`ResetLimits::per_source_interval`], and a global rate
//! ([`ResetLimits::global_per_sec`], burst [`ResetLimits::global_burst`]). Memory is bounded by
//! the global rate: a source is remembered only for one interval after a reset was sent to it
//! (and never more than [`MAX_TRACKED_SOURCES`] at once).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use jvpn_wire::reset::RESET_MAX_LEN;
use jvpn_wire::{ResetKey, ResetToken, TokenKey, write_reset};

use super::{Endpoint, EndpointInbound};
use crate::{DropReason, PathId, Transmit};

/// Sources remembered at once by the per-source limit, whatever the limits say.
pub const MAX_TRACKED_SOURCES: usize = 4096;

/// The limits on stateless resets. `Default` gives the documented values.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResetLimits {
    /// At most one reset per source in this interval (default 20 ms, ATTACKS.md §3.3).
    pub per_source_interval: Duration,
    /// Resets per second over all sources (default 256).
    pub global_per_sec: u32,
    /// Resets that may leave back to back before the global rate applies (default 32).
    pub global_burst: u32,
}

impl Default for ResetLimits {
    fn default() -> Self {
        ResetLimits {
            per_source_interval: Duration::from_millis(20),
            global_per_sec: 256,
            global_burst: 32,
        }
    }
}

/// What the endpoint counted of stateless resets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResetStats {
    /// Resets queued for sending.
    pub sent: u64,
    /// Bytes of those resets.
    pub bytes_sent: u64,
    /// Bytes of the datagrams that triggered them (always more than `bytes_sent`).
    pub trigger_bytes: u64,
    /// Triggers too short for a strictly shorter reset: nothing sent.
    pub too_short: u64,
    /// Triggers from a source that got a reset less than the per-source interval ago.
    pub source_limited: u64,
    /// Triggers refused by the global rate (or a full source table).
    pub global_limited: u64,
}

/// The endpoint's reset state: key, limiters and the queue of resets to send.
pub(super) struct Resets {
    key: ResetKey,
    /// When each source last got a reset, and the same entries in time order (for expiry).
    last_sent: BTreeMap<Vec<u8>, Instant>,
    order: VecDeque<(Instant, Vec<u8>)>,
    /// The global limiter as a virtual scheduling time (GCRA): a reset may leave when
    /// `now ≥ tat − burst tolerance`, then `tat = max(tat, now) + emission interval`.
    tat: Option<Instant>,
    out: VecDeque<(PathId, Vec<u8>)>,
}

impl std::fmt::Debug for Resets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resets")
            .field("tracked_sources", &self.last_sent.len())
            .field("queued", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl Resets {
    pub(super) fn new(token_key: &TokenKey) -> Self {
        Resets {
            key: ResetKey::new(token_key),
            last_sent: BTreeMap::new(),
            order: VecDeque::new(),
            tat: None,
            out: VecDeque::new(),
        }
    }

    /// The token of our receive index `index` (sent to the client inside the handshake or
    /// reattach response that created it).
    pub(super) fn token(&self, index: u32) -> ResetToken {
        self.key.token(index)
    }

    /// The next queued reset, written into `buf`.
    pub(super) fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        let (path, reset) = self.out.pop_front()?;
        buf.clear();
        buf.extend_from_slice(&reset);
        Some(Transmit {
            path,
            len: reset.len(),
        })
    }

    /// Forgets sources whose interval is over.
    fn expire(&mut self, now: Instant, interval: Duration) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < interval {
                break;
            }
            if let Some((at, source)) = self.order.pop_front()
                && self.last_sent.get(&source) == Some(&at)
            {
                self.last_sent.remove(&source);
            }
        }
    }

    /// Whether the global limiter lets one more reset leave at `now` (and takes it).
    fn take_global(&mut self, now: Instant, limits: &ResetLimits) -> bool {
        if limits.global_per_sec == 0 {
            return false;
        }
        let interval = Duration::from_secs(1) / limits.global_per_sec;
        let tolerance = interval.saturating_mul(limits.global_burst.saturating_sub(1));
        let tat = self.tat.unwrap_or(now).max(now);
        if tat.saturating_duration_since(now) > tolerance {
            return false;
        }
        self.tat = Some(tat + interval);
        true
    }
}

impl Endpoint {
    /// The limits on stateless resets (see [`ResetLimits`] for the defaults).
    pub fn set_reset_limits(&mut self, limits: ResetLimits) {
        self.reset_limits = limits;
    }

    /// A sealed DATA / CONTROL frame of `trigger_len` bytes from `source` on `path` named
    /// `index`, which no session owns: drop it (counted as `UnknownReceiver`) and answer with
    /// a reset if the size rule and the limits allow.
    pub(super) fn drop_unknown_receiver(
        &mut self,
        path: PathId,
        source: &[u8],
        index: u32,
        trigger_len: usize,
        now: Instant,
    ) -> EndpointInbound {
        self.queue_reset(path, source, index, trigger_len, now);
        self.drop_here(DropReason::UnknownReceiver)
    }

    fn queue_reset(
        &mut self,
        path: PathId,
        source: &[u8],
        index: u32,
        trigger_len: usize,
        now: Instant,
    ) {
        let stats = &mut self.counters.resets;
        let limits = &self.reset_limits;
        let resets = &mut self.resets;
        if trigger_len <= jvpn_wire::RESET_MIN_LEN {
            stats.too_short = stats.too_short.saturating_add(1);
            return;
        }
        resets.expire(now, limits.per_source_interval);
        if resets.last_sent.contains_key(source) {
            stats.source_limited = stats.source_limited.saturating_add(1);
            return;
        }
        if resets.last_sent.len() >= MAX_TRACKED_SOURCES || !resets.take_global(now, limits) {
            stats.global_limited = stats.global_limited.saturating_add(1);
            return;
        }
        let token = resets.token(index);
        let mut reset = vec![0u8; RESET_MAX_LEN];
        let Ok(len) = write_reset(&token, trigger_len, &mut self.rng, &mut reset) else {
            stats.too_short = stats.too_short.saturating_add(1);
            return;
        };
        reset.truncate(len);
        resets.last_sent.insert(source.to_vec(), now);
        resets.order.push_back((now, source.to_vec()));
        resets.out.push_back((path, reset));
        stats.sent = stats.sent.saturating_add(1);
        stats.bytes_sent = stats.bytes_sent.saturating_add(len as u64);
        stats.trigger_bytes = stats.trigger_bytes.saturating_add(trigger_len as u64);
    }
}
