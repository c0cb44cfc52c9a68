//! Authenticated probes on the active binding: a PROBE carries a sequence number, its PROBE_ACK
//! echoes it, and the round-trip time is measured against our own record of when it left (the
//! echoed timestamp is informational: a peer cannot make our RTT look better than it is).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use jvpn_wire::ControlMessage;

use super::{Event, Session};

/// How many unanswered probes are remembered; older ones count as lost.
const OUTSTANDING: usize = 8;

/// Probes sent and not yet answered.
#[derive(Debug, Default)]
pub(super) struct ProbeTracker {
    next_seq: u32,
    outstanding: VecDeque<(u32, Instant)>,
}

impl ProbeTracker {
    fn start(&mut self, now: Instant) -> u32 {
        let seq = self.next_seq;
        // The top bit belongs to the multipath prober's probes.
        self.next_seq = self.next_seq.wrapping_add(1) & !super::multipath::PROBER_SEQ_BIT;
        if self.outstanding.len() == OUTSTANDING {
            self.outstanding.pop_front();
        }
        self.outstanding.push_back((seq, now));
        seq
    }

    /// The round-trip time of probe `seq`, if it is outstanding (each answers once).
    fn answer(&mut self, seq: u32, now: Instant) -> Option<Duration> {
        let at = self.outstanding.iter().position(|&(s, _)| s == seq)?;
        let (_, sent) = self.outstanding.remove(at)?;
        Some(now.saturating_duration_since(sent))
    }
}

impl Session {
    /// Queues an authenticated PROBE on the active binding. Its PROBE_ACK produces
    /// [`Event::ProbeAcked`] with the measured round-trip time: an inner round trip through both
    /// ends' keys, which is what "the tunnel works" means. Returns the probe's sequence number,
    /// or `None` when there is no binding to probe.
    pub fn probe(&mut self, now: Instant) -> Option<u32> {
        self.sm.binding()?;
        if self.sm.state().is_terminated() {
            return None;
        }
        let seq = self.probes.start(now);
        let sent_micros = self.micros_at(now);
        self.control_out
            .push_back(ControlMessage::Probe { seq, sent_micros });
        Some(seq)
    }

    /// Microseconds since the clock anchor (a probe's informational timestamp).
    pub(super) fn micros_at(&self, now: Instant) -> u64 {
        u64::try_from(
            now.saturating_duration_since(self.clock.instant)
                .as_micros(),
        )
        .unwrap_or(u64::MAX)
    }

    pub(super) fn handle_probe_ack(&mut self, seq: u32, now: Instant) {
        if let Some(rtt) = self.probes.answer(seq, now) {
            self.events.push_back(Event::ProbeAcked { seq, rtt });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Instant {
        #[expect(
            clippy::disallowed_methods,
            reason = "tests need one real instant as a base"
        )]
        Instant::now()
    }

    #[test]
    fn an_answered_probe_reports_its_round_trip_once() {
        let base = base();
        let mut tracker = ProbeTracker::default();
        let seq = tracker.start(base);
        assert_eq!(
            tracker.answer(seq, base + Duration::from_millis(30)),
            Some(Duration::from_millis(30))
        );
        assert_eq!(tracker.answer(seq, base + Duration::from_millis(40)), None);
    }

    #[test]
    fn an_unknown_or_evicted_probe_is_ignored() {
        let base = base();
        let mut tracker = ProbeTracker::default();
        let first = tracker.start(base);
        for _ in 0..OUTSTANDING {
            tracker.start(base);
        }
        assert_eq!(tracker.answer(first, base), None, "evicted");
        assert_eq!(tracker.answer(9999, base), None, "never sent");
    }
}
