//! The switch budget: a token bucket that bounds how often a session may rebind.

use std::time::{Duration, Instant};

use crate::Policy;

/// A token bucket: `burst` tokens at most, one more every `refill_per`.
///
/// Every rebind (a new binding after RECOVERING) takes one token; with none left the
/// session ends with `SwitchBudgetExhausted` instead of flapping forever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchBudget {
    burst: u32,
    refill_per: Duration,
    tokens: u32,
    /// The instant from which the next token accrues; `None` until first used.
    refilled_at: Option<Instant>,
}

impl SwitchBudget {
    /// A full bucket. A zero `refill_per` means "never refills" (validated policies forbid it).
    pub fn new(burst: u32, refill_per: Duration) -> Self {
        SwitchBudget {
            burst,
            refill_per,
            tokens: burst,
            refilled_at: None,
        }
    }

    /// A full bucket sized by the policy's `switch_budget_burst` / `switch_budget_refill_per`.
    pub fn from_policy(policy: &Policy) -> Self {
        Self::new(policy.switch_budget_burst, policy.switch_budget_refill_per)
    }

    /// Tokens available at `now`.
    pub fn available(&mut self, now: Instant) -> u32 {
        self.refill(now);
        self.tokens
    }

    /// Takes one token if one is available at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    fn refill(&mut self, now: Instant) {
        let Some(since) = self.refilled_at else {
            self.refilled_at = Some(now);
            return;
        };
        if self.tokens >= self.burst {
            self.refilled_at = Some(now);
            return;
        }
        let elapsed = now.saturating_duration_since(since);
        let period = self.refill_per.as_nanos();
        if period == 0 {
            return;
        }
        let earned = elapsed.as_nanos() / period;
        if earned == 0 {
            return;
        }
        let earned_u32 = u32::try_from(earned).unwrap_or(u32::MAX);
        self.tokens = self.tokens.saturating_add(earned_u32).min(self.burst);
        if self.tokens >= self.burst {
            self.refilled_at = Some(now);
        } else {
            // Keep the fractional progress toward the next token.
            let used = self.refill_per.saturating_mul(earned_u32);
            self.refilled_at = Some(since + used);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Instant {
        #[expect(
            clippy::disallowed_methods,
            reason = "test needs one real instant as a base"
        )]
        Instant::now()
    }

    #[test]
    fn a_full_bucket_allows_exactly_burst_takes() {
        let t0 = base();
        let mut budget = SwitchBudget::new(3, Duration::from_secs(60));

        let taken = (0..5).filter(|_| budget.try_take(t0)).count();

        assert_eq!(taken, 3);
    }

    #[test]
    fn one_token_returns_per_refill_period() {
        let t0 = base();
        let mut budget = SwitchBudget::new(2, Duration::from_secs(60));
        assert!(budget.try_take(t0) && budget.try_take(t0));

        let before = budget.available(t0 + Duration::from_secs(59));
        let after = budget.available(t0 + Duration::from_secs(60));
        let later = budget.available(t0 + Duration::from_secs(600));

        assert_eq!((before, after, later), (0, 1, 2));
    }

    #[test]
    fn partial_progress_toward_a_token_is_kept() {
        let t0 = base();
        let mut budget = SwitchBudget::new(3, Duration::from_secs(10));
        for _ in 0..3 {
            assert!(budget.try_take(t0));
        }

        assert_eq!(budget.available(t0 + Duration::from_secs(15)), 1);
        assert_eq!(budget.available(t0 + Duration::from_secs(20)), 2);
    }
}
