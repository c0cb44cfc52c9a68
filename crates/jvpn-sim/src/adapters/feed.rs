//! Paced sending of a workload through a session, in virtual time.

use std::time::{Duration, Instant};

use crate::workload::Workload;

/// Sends a [`Workload`] in bursts of `burst` datagrams every `interval`, starting at `start`,
/// while the session is bound. A datagram the session refuses (queue full) is retried at the
/// next tick; nothing is skipped, so every index is sent exactly once.
#[derive(Clone, Debug)]
pub struct Feed {
    workload: Workload,
    next_index: u32,
    interval: Duration,
    burst: u32,
    next_at: Option<Instant>,
}

impl Feed {
    /// A feed starting at `start`.
    #[must_use]
    pub fn new(workload: Workload, start: Instant, interval: Duration, burst: u32) -> Self {
        let next_at = (workload.count() > 0).then_some(start);
        Self {
            workload,
            next_index: 0,
            interval,
            burst: burst.max(1),
            next_at,
        }
    }

    /// The workload being sent.
    #[must_use]
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// How many datagrams were accepted by the session so far.
    #[must_use]
    pub fn sent(&self) -> u32 {
        self.next_index
    }

    /// When the feed next wants to send, if it is not done.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.next_at
    }

    /// At a tick due by `now`: offers up to `burst` datagrams to `send` (which returns whether
    /// it accepted one) if `bound`, then schedules the next tick.
    pub fn tick(&mut self, now: Instant, bound: bool, mut send: impl FnMut(&[u8]) -> bool) {
        if self.next_at.is_none_or(|at| at > now) {
            return;
        }
        if bound {
            for _ in 0..self.burst {
                if self.next_index >= self.workload.count() {
                    break;
                }
                if !send(&self.workload.payload(self.next_index)) {
                    break;
                }
                self.next_index += 1;
            }
        }
        self.next_at = (self.next_index < self.workload.count()).then(|| now + self.interval);
    }
}
