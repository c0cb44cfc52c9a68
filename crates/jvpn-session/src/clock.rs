//! Wall time for a core that never reads the clock.

use std::time::Instant;

/// Ties the monotonic clock to wall time: read once by the runtime shell at start-up (a
/// constant in the simulator) and passed in, so that handshake timestamps and audit records
/// carry Unix time without the core ever calling `SystemTime::now`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ClockAnchor {
    /// The monotonic instant at which `unix_nanos` was read.
    pub instant: Instant,
    /// Nanoseconds since the Unix epoch at `instant`.
    pub unix_nanos: u64,
}

impl ClockAnchor {
    /// Unix time in nanoseconds at `now`: `unix_nanos + (now - instant)`, saturating at both
    /// ends (an instant before the anchor yields `unix_nanos` minus the gap, floored at 0).
    pub fn unix_nanos_at(&self, now: Instant) -> u64 {
        match now.checked_duration_since(self.instant) {
            Some(after) => self.unix_nanos.saturating_add(saturating_nanos(after)),
            None => self
                .unix_nanos
                .saturating_sub(saturating_nanos(self.instant.duration_since(now))),
        }
    }

    /// Unix time in milliseconds at `now` (what audit records carry).
    pub fn unix_ms_at(&self, now: Instant) -> u64 {
        self.unix_nanos_at(now) / 1_000_000
    }

    /// The monotonic instant at which Unix time is `unix_ms` milliseconds (the inverse of
    /// [`unix_ms_at`](Self::unix_ms_at)); `None` if it cannot be represented.
    pub fn instant_at_unix_ms(&self, unix_ms: u64) -> Option<Instant> {
        let target = u128::from(unix_ms) * 1_000_000;
        let anchor = u128::from(self.unix_nanos);
        if target >= anchor {
            let after = u64::try_from(target - anchor).ok()?;
            self.instant
                .checked_add(std::time::Duration::from_nanos(after))
        } else {
            let before = u64::try_from(anchor - target).ok()?;
            self.instant
                .checked_sub(std::time::Duration::from_nanos(before))
        }
    }
}

fn saturating_nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn anchor(unix_nanos: u64) -> (ClockAnchor, Instant) {
        #[expect(
            clippy::disallowed_methods,
            reason = "test needs one real instant as a base"
        )]
        let base = Instant::now() + Duration::from_secs(1_000);
        (
            ClockAnchor {
                instant: base,
                unix_nanos,
            },
            base,
        )
    }

    #[test]
    fn time_after_the_anchor_adds_the_elapsed_nanoseconds() {
        let (clock, base) = anchor(1_000);

        let at = clock.unix_nanos_at(base + Duration::from_nanos(234));

        assert_eq!(at, 1_234);
    }

    #[test]
    fn time_before_the_anchor_subtracts_and_saturates_at_zero() {
        let (clock, base) = anchor(1_000);

        assert_eq!(clock.unix_nanos_at(base - Duration::from_nanos(400)), 600);
        assert_eq!(clock.unix_nanos_at(base - Duration::from_secs(1)), 0);
    }

    #[test]
    fn time_far_after_the_anchor_saturates_at_max() {
        let (clock, base) = anchor(u64::MAX - 10);

        assert_eq!(clock.unix_nanos_at(base + Duration::from_secs(1)), u64::MAX);
    }

    #[test]
    fn milliseconds_are_nanoseconds_divided() {
        let (clock, base) = anchor(5_000_000_000);

        assert_eq!(clock.unix_ms_at(base + Duration::from_millis(7)), 5_007);
    }
}
