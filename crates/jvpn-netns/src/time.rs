//! Bounded waiting. Every loop in a namespace test goes through one of these so that nothing can hang
//! a CI run: conditions are polled until a deadline, closures run on a thread that is abandoned when
//! it overruns.
//!
//! These helpers read the wall clock; they are test infrastructure, not decision code, and the clock
//! is read in exactly one function ([`now`]).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{NetnsError, TimedOut};

/// The one clock read of this crate.
#[expect(
    clippy::disallowed_methods,
    reason = "test infrastructure bounds real commands and processes in real time"
)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// A point in time after which a loop must give up.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    end: Instant,
}

impl Deadline {
    /// A deadline `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        let start = now();
        Self {
            start,
            end: start + timeout,
        }
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        now() >= self.end
    }

    /// Time left (zero once expired).
    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(now())
    }

    /// Time since the deadline was created.
    pub fn elapsed(&self) -> Duration {
        now().saturating_duration_since(self.start)
    }

    /// `Err(TimedOut)` naming `what` once the deadline has passed; use it as the guard of a loop.
    pub fn check(&self, what: &str) -> Result<(), TimedOut> {
        if self.expired() {
            Err(TimedOut {
                what: what.to_owned(),
                waited: self.elapsed(),
            })
        } else {
            Ok(())
        }
    }

    /// Sleeps for `interval` or until the deadline, whichever comes first.
    pub fn sleep(&self, interval: Duration) {
        std::thread::sleep(interval.min(self.remaining()));
    }
}

/// Polls `condition` every `poll_interval` until it returns `true` or `timeout` has passed. The
/// condition is always evaluated at least once, and once more at the deadline.
pub fn wait_until(
    timeout: Duration,
    poll_interval: Duration,
    mut condition: impl FnMut() -> bool,
) -> Result<(), TimedOut> {
    wait_for(timeout, poll_interval, "a condition", || {
        condition().then_some(())
    })
}

/// Polls `probe` every `poll_interval` until it yields a value or `timeout` has passed; `what` names
/// the awaited thing in the error.
pub fn wait_for<T>(
    timeout: Duration,
    poll_interval: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T, TimedOut> {
    let deadline = Deadline::after(timeout);
    loop {
        let was_expired = deadline.expired();
        if let Some(value) = probe() {
            return Ok(value);
        }
        if was_expired {
            return Err(TimedOut {
                what: what.to_owned(),
                waited: deadline.elapsed(),
            });
        }
        deadline.sleep(poll_interval);
    }
}

/// Runs `f` on its own thread and returns its result, or `TimedOut` if it has not finished within
/// `timeout`. An overrunning thread cannot be stopped: it is abandoned (detached), so `f` should still
/// bound its own blocking calls (socket timeouts); this only guarantees the caller moves on.
pub fn bounded<T, F>(timeout: Duration, what: &str, f: F) -> Result<T, NetnsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name(format!("bounded: {what}"))
        .spawn(move || {
            // The receiver is gone only if the caller already timed out; nothing left to tell.
            let _ = tx.send(f());
        })
        .map_err(|e| NetnsError::io(format!("spawn a thread for {what}"), e))?;
    match rx.recv_timeout(timeout) {
        Ok(value) => {
            let _ = handle.join();
            Ok(value)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Err(TimedOut {
            what: what.to_owned(),
            waited: timeout,
        }
        .into()),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(NetnsError::Panicked(what.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_returns_once_the_condition_holds() {
        let mut calls = 0;
        let result = wait_until(Duration::from_secs(5), Duration::from_millis(1), || {
            calls += 1;
            calls == 3
        });
        assert_eq!(result, Ok(()));
        assert_eq!(calls, 3);
    }

    #[test]
    fn wait_until_gives_up_with_timed_out() {
        let result = wait_until(Duration::from_millis(20), Duration::from_millis(5), || {
            false
        });
        assert!(result.is_err());
    }

    #[test]
    fn wait_for_evaluates_the_probe_even_with_a_zero_timeout() {
        let value = wait_for(Duration::ZERO, Duration::from_millis(1), "seven", || {
            Some(7)
        });
        assert_eq!(value, Ok(7));
    }

    #[test]
    fn bounded_returns_the_closure_result() {
        let value = bounded(Duration::from_secs(5), "add", || 2 + 2).unwrap();
        assert_eq!(value, 4);
    }

    #[test]
    fn bounded_abandons_a_closure_that_overruns() {
        let result = bounded(Duration::from_millis(10), "sleeper", || {
            std::thread::sleep(Duration::from_millis(500));
        });
        assert!(matches!(result, Err(NetnsError::TimedOut(_))));
    }

    #[test]
    fn bounded_reports_a_panicking_closure() {
        let result: Result<(), _> = bounded(Duration::from_secs(5), "boom", || panic!("boom"));
        assert!(matches!(result, Err(NetnsError::Panicked(_))));
    }
}
