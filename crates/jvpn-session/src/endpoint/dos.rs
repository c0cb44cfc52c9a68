//! Denial-of-service defences of the endpoint (docs/protocol.md §5, ATTACKS.md §3.4): the
//! exact-replay filter of HANDSHAKE_INITs, the "under load" detector, the cookie gate, per-source
//! token buckets and the bound on pending reattaches. Every table here is bounded. The
//! anti-amplification budget of unvalidated paths is in `amplification.rs`.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use jvpn_wire::CookieChecker;
use jvpn_wire::frame::COOKIE_REPLY_LEN;
use jvpn_wire::kdf::MAC_LEN;

use super::{Endpoint, SessionHandle};
use crate::PathId;

/// Limits of the endpoint's DoS defences. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DosLimits {
    /// The endpoint is "under load" while at least this many handshake / reattach
    /// Diffie-Hellman operations started in the last second (default 64). Only messages that
    /// passed MAC1 and the exact-replay filter ever reach a DH, so only they count.
    pub under_load_dh_per_sec: usize,
    /// Per-source token bucket, applied under load to messages with a valid MAC2: tokens
    /// refilled per second (default 10).
    pub source_dh_per_sec: u32,
    /// Per-source token bucket size (burst, default 5).
    pub source_burst: u32,
    /// Sources tracked by the buckets (default 4096; the least recently used one is forgotten).
    pub source_table: usize,
    /// HANDSHAKE_INIT MAC1s remembered by the exact-replay filter (default 4096).
    pub replay_table: usize,
    /// How long the exact-replay filter remembers one (default 120 s; older replays still die
    /// at the timestamp rule, after a DH).
    pub replay_ttl: Duration,
    /// Reattaches answered OK and waiting for PATH_CONFIRM, over all sessions (default 1024;
    /// each session holds at most one).
    pub max_pending_reattaches: usize,
    /// A pending reattach without PATH_CONFIRM is forgotten after this long (default 10 s).
    pub pending_reattach_ttl: Duration,
    /// COOKIE_REPLYs queued and not yet polled (default 1024; more are dropped).
    pub cookie_queue: usize,
    /// Unvalidated paths whose bytes in and out the anti-amplification budget tracks (default
    /// 4096; the least recently used one is forgotten, and with it its budget).
    pub amplification_table: usize,
}

impl Default for DosLimits {
    fn default() -> Self {
        DosLimits {
            under_load_dh_per_sec: 64,
            source_dh_per_sec: 10,
            source_burst: 5,
            source_table: 4096,
            replay_table: 4096,
            replay_ttl: Duration::from_secs(120),
            max_pending_reattaches: 1024,
            pending_reattach_ttl: Duration::from_secs(10),
            cookie_queue: 1024,
            amplification_table: 4096,
        }
    }
}

/// What the DoS defences counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DosStats {
    /// HANDSHAKE_INITs dropped as exact replays (same MAC1 seen recently), before any DH.
    pub init_replays: u64,
    /// COOKIE_REPLYs sent (under load, no valid MAC2).
    pub cookie_replies: u64,
    /// Bytes of those replies.
    pub cookie_reply_bytes: u64,
    /// Bytes of the requests they answered (never less than `cookie_reply_bytes`).
    pub cookie_request_bytes: u64,
    /// Requests that deserved a cookie reply but the reply queue was full (dropped).
    pub cookie_queue_full: u64,
    /// Under load with a valid MAC2, dropped by the per-source token bucket.
    pub rate_limited: u64,
    /// Reattaches dropped (before DH) because the global cap of pending reattaches was hit.
    pub pending_cap: u64,
    /// Pending reattaches forgotten because no PATH_CONFIRM came in time.
    pub pending_expired: u64,
    /// Datagrams withheld (dropped, never sent) because they would have taken an unvalidated
    /// path past three times the bytes received from it.
    pub amplification_withheld: u64,
    /// Bytes of those datagrams.
    pub amplification_withheld_bytes: u64,
}

/// What the gate decided for one message that would cost a DH.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Gate {
    /// Spend the DH.
    Proceed,
    /// Under load without a valid MAC2: answer with a cookie.
    Cookie,
    /// Under load, valid MAC2, but the source's bucket is empty.
    RateLimited,
}

/// DH starts in the last second (only as many as needed to know "at least N").
#[derive(Debug, Default)]
pub(super) struct LoadMeter {
    starts: VecDeque<Instant>,
}

impl LoadMeter {
    fn expire(&mut self, now: Instant) {
        while self
            .starts
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.starts.pop_front();
        }
    }

    pub(super) fn under_load(&mut self, now: Instant, threshold: usize) -> bool {
        self.expire(now);
        self.starts.len() >= threshold
    }

    pub(super) fn record(&mut self, now: Instant, threshold: usize) {
        self.expire(now);
        self.starts.push_back(now);
        while self.starts.len() > threshold.max(1) {
            self.starts.pop_front();
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens in thousandths.
    milli: u64,
    last: Instant,
}

/// Per-source token buckets, at most `source_table` of them (least recently used evicted).
#[derive(Debug, Default)]
pub(super) struct SourceBuckets {
    buckets: BTreeMap<Vec<u8>, Bucket>,
}

impl SourceBuckets {
    /// Takes one token for `source`; false if its bucket is empty.
    pub(super) fn take(&mut self, source: &[u8], now: Instant, limits: &DosLimits) -> bool {
        let cap = u64::from(limits.source_burst).saturating_mul(1000);
        if !self.buckets.contains_key(source) && self.buckets.len() >= limits.source_table.max(1) {
            let oldest = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.buckets.remove(&oldest);
            }
        }
        let bucket = self.buckets.entry(source.to_vec()).or_insert(Bucket {
            milli: cap,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last);
        let refill = elapsed
            .as_millis()
            .saturating_mul(u128::from(limits.source_dh_per_sec));
        bucket.milli = cap.min(
            bucket
                .milli
                .saturating_add(u64::try_from(refill).unwrap_or(u64::MAX)),
        );
        bucket.last = now;
        if bucket.milli >= 1000 {
            bucket.milli -= 1000;
            true
        } else {
            false
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// The exact-replay filter of HANDSHAKE_INITs, keyed by MAC1 (which covers every byte before
/// it, the ephemeral included), bounded in size and time.
#[derive(Debug, Default)]
pub(super) struct InitReplayFilter {
    seen: BTreeMap<[u8; MAC_LEN], Instant>,
    order: VecDeque<([u8; MAC_LEN], Instant)>,
}

impl InitReplayFilter {
    /// True if `mac1` was seen within `ttl`; otherwise remembers it and returns false.
    pub(super) fn check_and_insert(
        &mut self,
        mac1: [u8; MAC_LEN],
        now: Instant,
        limits: &DosLimits,
    ) -> bool {
        while let Some(&(old, at)) = self.order.front() {
            let stale = now.saturating_duration_since(at) >= limits.replay_ttl;
            if !stale && self.order.len() < limits.replay_table.max(1) {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&old) == Some(&at) {
                self.seen.remove(&old);
            }
        }
        if self.seen.contains_key(&mac1) {
            return true;
        }
        self.seen.insert(mac1, now);
        self.order.push_back((mac1, now));
        false
    }
}

impl Endpoint {
    /// The gate before any Diffie-Hellman: not under load → proceed; under load without a valid
    /// MAC2 for `source` → a COOKIE_REPLY is queued on `path`; with one → the source's bucket.
    /// A `Proceed` is recorded as a DH start (the caller spends it at once).
    pub(super) fn dh_gate(
        &mut self,
        path: PathId,
        source: &[u8],
        frame: &[u8],
        now: Instant,
    ) -> Gate {
        let threshold = self.dos_limits.under_load_dh_per_sec;
        let gate = if !self.load.under_load(now, threshold) {
            Gate::Proceed
        } else {
            let server = self.responder.public_key();
            let checker = self
                .cookie
                .get_or_insert_with(|| CookieChecker::new(server, now, &mut self.rng));
            if !checker.verify_mac2(frame, source, now, &mut self.rng) {
                self.queue_cookie(path, source, frame, now);
                Gate::Cookie
            } else if self.buckets.take(source, now, &self.dos_limits) {
                Gate::Proceed
            } else {
                self.counters.dos.rate_limited += 1;
                Gate::RateLimited
            }
        };
        if gate == Gate::Proceed {
            self.load.record(now, threshold);
        }
        gate
    }

    fn queue_cookie(&mut self, path: PathId, source: &[u8], frame: &[u8], now: Instant) {
        if self.cookie_out.len() >= self.dos_limits.cookie_queue {
            self.counters.dos.cookie_queue_full += 1;
            return;
        }
        let Some(checker) = self.cookie.as_mut() else {
            return;
        };
        let mut reply = vec![0u8; COOKIE_REPLY_LEN];
        let Ok(len) = checker.write_reply(frame, source, now, &mut self.rng, &mut reply) else {
            return;
        };
        // Never larger than the request: a spoofed source is never amplified.
        if len > frame.len() {
            return;
        }
        reply.truncate(len);
        let stats = &mut self.counters.dos;
        stats.cookie_replies += 1;
        stats.cookie_reply_bytes = stats.cookie_reply_bytes.saturating_add(len as u64);
        stats.cookie_request_bytes = stats
            .cookie_request_bytes
            .saturating_add(frame.len() as u64);
        self.cookie_out.push_back((path, reply));
    }

    /// Forgets pending reattaches past their expiry (the session keeps its old binding), and
    /// entries of sessions whose pending reattach is gone (committed, replaced or ended).
    pub(super) fn expire_pending(&mut self, now: Instant) {
        let sessions = &mut self.sessions;
        let registry = &mut self.registry;
        let stats = &mut self.counters.dos;
        let mut unconfirmed_adoptions = Vec::new();
        self.pending_reattaches.retain(|handle, expiry| {
            let Some(record) = sessions.get_mut(handle).and_then(|s| s.record_mut()) else {
                return false;
            };
            if record.pending.is_none() {
                return false;
            }
            if *expiry > now {
                return true;
            }
            if let Some(pending) = record.pending.take() {
                let index = pending.keys.recv.local_index();
                if registry.index.get(&index) == Some(handle) {
                    registry.index.remove(&index);
                }
                stats.pending_expired += 1;
            }
            if record.adopted {
                unconfirmed_adoptions.push(*handle);
            }
            false
        });
        // A session rebuilt from the store only for that reattach leaves nothing behind.
        for handle in unconfirmed_adoptions {
            self.discard(handle);
        }
    }

    /// Whether a reattach for `handle` may become pending: it already holds one (a newer one
    /// replaces it), or the global cap is not reached.
    pub(super) fn pending_slot_available(&mut self, handle: SessionHandle, now: Instant) -> bool {
        self.expire_pending(now);
        self.pending_reattaches.contains_key(&handle)
            || self.pending_reattaches.len() < self.dos_limits.max_pending_reattaches
    }

    /// Sessions holding a pending reattach (test only).
    #[cfg(test)]
    pub(crate) fn pending_reattach_count(&self) -> usize {
        self.pending_reattaches.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[expect(
        clippy::disallowed_methods,
        reason = "tests need one arbitrary base instant"
    )]
    fn base() -> Instant {
        Instant::now()
    }

    #[test]
    fn a_source_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limits = DosLimits::default();
        let mut buckets = SourceBuckets::default();
        let t0 = base();

        let burst = (0..10).filter(|_| buckets.take(b"a", t0, &limits)).count();
        let after_100ms = buckets.take(b"a", t0 + Duration::from_millis(100), &limits);
        let other = buckets.take(b"b", t0, &limits);

        assert_eq!(burst, 5);
        assert!(after_100ms);
        assert!(other);
    }

    #[test]
    fn the_source_table_stays_bounded() {
        let limits = DosLimits {
            source_table: 8,
            ..DosLimits::default()
        };
        let mut buckets = SourceBuckets::default();
        let t0 = base();

        for i in 0u32..100 {
            buckets.take(
                &i.to_be_bytes(),
                t0 + Duration::from_millis(i.into()),
                &limits,
            );
        }

        assert_eq!(buckets.len(), 8);
    }

    #[test]
    fn the_replay_filter_catches_a_repeat_and_forgets_after_its_ttl() {
        let limits = DosLimits::default();
        let mut filter = InitReplayFilter::default();
        let t0 = base();

        let first = filter.check_and_insert([1; 16], t0, &limits);
        let again = filter.check_and_insert([1; 16], t0, &limits);
        let later = filter.check_and_insert([1; 16], t0 + limits.replay_ttl, &limits);

        assert!(!first);
        assert!(again);
        assert!(!later);
    }

    #[test]
    fn the_load_meter_counts_the_last_second_only() {
        let mut meter = LoadMeter::default();
        let t0 = base();
        for _ in 0..3 {
            meter.record(t0, 3);
        }

        assert!(meter.under_load(t0, 3));
        assert!(!meter.under_load(t0 + Duration::from_secs(1), 3));
    }
}
