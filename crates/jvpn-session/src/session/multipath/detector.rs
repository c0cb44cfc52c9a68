//! The fast dead-path detector: silence after sending, confirmed by fast probes.
//!
//! The regular probes find a dead path in `probes_lost_dead × probe_interval` (about 5 s by
//! default): fine for an idle session, far too slow under traffic. Traffic is itself a probe:
//! when inner packets left on the active path and nothing authenticated came back for
//! `silence` (`max(silence_rtt_factor × (SRTT + 4 × jitter), silence_timeout_min)`), the
//! detector raises an alarm and sends a fast PROBE; each fast probe that stays unanswered for
//! `fast` (`max(silence_rtt_factor × (SRTT + 4 × jitter), fast_probe_timeout_min)`) is lost
//! and the next one leaves at once; `fast_probes_lost_dead` losses in a row make the path dead.
//! Any authenticated packet on the active path ends the alarm. Nothing sent, no alarm: an idle
//! session is left to the keepalive and probe rules.

use std::time::{Duration, Instant};

/// What the detector wants at `now`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Silence {
    /// Nothing to do.
    Quiet,
    /// Send a fast probe on the active path now.
    SendFastProbe,
    /// The active path is dead.
    Dead,
}

/// The silence alarm of the active path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct SilenceDetector {
    /// The first inner packet sent since the last authenticated packet received.
    waiting_since: Option<Instant>,
    /// When the latest fast probe left (the alarm is raised).
    last_fast_at: Option<Instant>,
    /// Fast probes lost in a row.
    lost: u32,
}

/// The timeouts, derived from the policy and the active path's RTT estimate.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Timeouts {
    pub(super) silence: Duration,
    pub(super) fast: Duration,
    pub(super) lost_dead: u32,
}

impl SilenceDetector {
    /// An authenticated packet arrived on the active path: it works.
    pub(super) fn on_received(&mut self) {
        *self = SilenceDetector::default();
    }

    /// An inner packet left on the active path.
    pub(super) fn on_data_sent(&mut self, now: Instant) {
        self.waiting_since.get_or_insert(now);
    }

    /// Forget everything (a new active path, or the old one was declared dead).
    pub(super) fn reset(&mut self) {
        *self = SilenceDetector::default();
    }

    /// Whether a fast probe was lost (the path is in distress).
    pub(super) fn suspect(&self) -> bool {
        self.lost > 0
    }

    /// One step at `now`; call once per turn (a late turn sends at most one fast probe).
    pub(super) fn poll(&mut self, now: Instant, t: Timeouts) -> Silence {
        let Some(since) = self.waiting_since else {
            return Silence::Quiet;
        };
        if t.lost_dead == 0 {
            return Silence::Quiet;
        }
        match self.last_fast_at {
            None if now >= since.checked_add(t.silence).unwrap_or(now) => {
                self.last_fast_at = Some(now);
                Silence::SendFastProbe
            }
            Some(at) if now >= at.checked_add(t.fast).unwrap_or(now) => {
                self.lost = self.lost.saturating_add(1);
                if self.lost >= t.lost_dead {
                    self.reset();
                    Silence::Dead
                } else {
                    self.last_fast_at = Some(now);
                    Silence::SendFastProbe
                }
            }
            _ => Silence::Quiet,
        }
    }

    /// When [`poll`](Self::poll) will next act, if nothing is received before.
    pub(super) fn deadline(&self, t: Timeouts) -> Option<Instant> {
        if t.lost_dead == 0 {
            return None;
        }
        let since = self.waiting_since?;
        match self.last_fast_at {
            None => since.checked_add(t.silence),
            Some(at) => at.checked_add(t.fast),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        silence: Duration::from_millis(200),
        fast: Duration::from_millis(100),
        lost_dead: 2,
    };

    fn base() -> Instant {
        #[expect(
            clippy::disallowed_methods,
            reason = "tests need one real instant as a base"
        )]
        Instant::now()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn an_idle_path_never_raises_the_alarm() {
        let t0 = base();
        let mut d = SilenceDetector::default();

        let outcome = d.poll(t0 + Duration::from_secs(60), T);

        assert_eq!(outcome, Silence::Quiet);
        assert_eq!(d.deadline(T), None);
    }

    #[test]
    fn silence_after_sending_probes_then_declares_the_path_dead() {
        let t0 = base();
        let mut d = SilenceDetector::default();
        d.on_data_sent(t0);

        let early = d.poll(t0 + ms(199), T);
        let alarm = d.poll(t0 + ms(200), T);
        let second = d.poll(t0 + ms(300), T);
        let dead = d.poll(t0 + ms(400), T);

        assert_eq!(early, Silence::Quiet);
        assert_eq!(alarm, Silence::SendFastProbe);
        assert_eq!(second, Silence::SendFastProbe);
        assert_eq!(dead, Silence::Dead);
        assert!(!d.suspect(), "reset after the verdict");
    }

    #[test]
    fn an_answer_ends_the_alarm() {
        let t0 = base();
        let mut d = SilenceDetector::default();
        d.on_data_sent(t0);
        d.poll(t0 + ms(200), T);
        d.poll(t0 + ms(300), T);
        assert!(d.suspect());

        d.on_received();

        assert!(!d.suspect());
        assert_eq!(d.poll(t0 + ms(1000), T), Silence::Quiet);
    }

    #[test]
    fn the_deadline_follows_the_next_step() {
        let t0 = base();
        let mut d = SilenceDetector::default();
        d.on_data_sent(t0);
        d.on_data_sent(t0 + ms(50));

        assert_eq!(d.deadline(T), Some(t0 + ms(200)));
        d.poll(t0 + ms(210), T);
        assert_eq!(d.deadline(T), Some(t0 + ms(310)));
    }

    #[test]
    fn a_disabled_detector_stays_quiet() {
        let t0 = base();
        let off = Timeouts { lost_dead: 0, ..T };
        let mut d = SilenceDetector::default();
        d.on_data_sent(t0);

        assert_eq!(d.poll(t0 + Duration::from_secs(10), off), Silence::Quiet);
        assert_eq!(d.deadline(off), None);
    }
}
