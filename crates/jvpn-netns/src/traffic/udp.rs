//! A fixed-interval UDP stream and a receiver that measures inter-arrival gaps: the blackout meter.
//!
//! The sender sends one small datagram (a sequence number) every `interval` (5 ms by default); it
//! never bursts to catch up after a stall, so the receiver sees a steady rate whenever the path works.
//! The receiver timestamps every arrival and keeps every gap of at least a threshold; the largest
//! gap that covers an event is that event's blackout (last packet before → first packet after), with
//! a resolution of one interval.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Deadline;
use crate::time::now;

/// The default interval of the stream: 200 datagrams per second, a 5 ms blackout resolution.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(5);
/// Gaps at least this long are kept one by one (shorter ones are scheduling noise on a loaded
/// machine and only count towards the maximum).
pub const DEFAULT_GAP_THRESHOLD: Duration = Duration::from_millis(50);
/// At most this many gaps are kept (a stream that is down most of the time would otherwise grow
/// the list without bound); the maximum is still exact.
const MAX_KEPT_GAPS: usize = 10_000;
/// How long one blocking socket call may wait before the loop looks at its stop flag and deadline.
const STEP: Duration = Duration::from_millis(50);
/// Magic prefix of the stream's datagrams, so stray datagrams are not counted.
const MAGIC: [u8; 4] = *b"jvbo";
const DATAGRAM_LEN: usize = 12;

/// Sends the stream until stopped or until its deadline.
#[derive(Debug)]
pub struct UdpStreamSender {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<SenderReport>,
}

/// What a sender did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SenderReport {
    /// Datagrams handed to the kernel.
    pub sent: u64,
    /// `send_to` calls that failed (e.g. no route while a path is cut); the stream carries on.
    pub send_errors: u64,
}

impl UdpStreamSender {
    /// Starts sending from `socket` to `to`, one datagram every `interval`, on a new thread.
    pub fn start(
        socket: UdpSocket,
        to: SocketAddr,
        interval: Duration,
        deadline: Deadline,
    ) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("udp-stream-send".into())
            .spawn(move || send_loop(&socket, to, interval, deadline, &flag))?;
        Ok(Self { stop, handle })
    }

    /// Stops the stream and returns what was sent.
    pub fn stop(self) -> SenderReport {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or(SenderReport {
            sent: 0,
            send_errors: 0,
        })
    }
}

fn send_loop(
    socket: &UdpSocket,
    to: SocketAddr,
    interval: Duration,
    deadline: Deadline,
    stop: &AtomicBool,
) -> SenderReport {
    let mut report = SenderReport {
        sent: 0,
        send_errors: 0,
    };
    let mut datagram = [0u8; DATAGRAM_LEN];
    datagram[..4].copy_from_slice(&MAGIC);
    let mut next = now();
    while !stop.load(Ordering::Relaxed) && !deadline.expired() {
        datagram[4..].copy_from_slice(&report.sent.to_be_bytes());
        match socket.send_to(&datagram, to) {
            Ok(_) => report.sent += 1,
            Err(_) => report.send_errors += 1,
        }
        next += interval;
        let current = now();
        if next > current {
            std::thread::sleep(next - current);
        } else if current - next > interval * 2 {
            // Descheduled for a while: carry on at the normal rate instead of bursting.
            next = current;
        }
    }
    report
}

/// One silence of the stream: no datagram arrived for `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Gap {
    /// When the last datagram before the gap arrived, since the receiver started.
    pub start: Duration,
    /// Time from that datagram to the next one.
    pub length: Duration,
    /// Sequence number of the last datagram before the gap.
    pub before_seq: u64,
    /// Sequence number of the first datagram after it.
    pub after_seq: u64,
}

impl Gap {
    /// When the first datagram after the gap arrived, since the receiver started.
    pub fn end(&self) -> Duration {
        self.start + self.length
    }
}

/// What a receiver has seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamReport {
    /// Datagrams of the stream received.
    pub received: u64,
    /// Sequence numbers that never arrived (up to the highest one received).
    pub lost: u64,
    /// Every gap of at least the threshold, oldest first.
    pub gaps: Vec<Gap>,
    /// The longest inter-arrival time over the whole stream (threshold or not).
    pub max_gap: Duration,
    /// When the last datagram arrived, since the receiver started.
    pub last_arrival: Option<Duration>,
    /// How long since the last datagram (or since the start when none came), when the report was
    /// taken: a silence still going on, which no gap shows yet.
    pub silent_for: Duration,
}

impl StreamReport {
    /// The longest gap that ends after `at` (since the receiver started), i.e. the blackout of an
    /// event at `at` and anything after it. `None` if no gap above the threshold ended since.
    pub fn largest_gap_after(&self, at: Duration) -> Option<Gap> {
        self.gaps
            .iter()
            .filter(|g| g.end() > at)
            .max_by_key(|g| g.length)
            .copied()
    }

    /// The longest gap that ends within `[from, to]`.
    pub fn largest_gap_between(&self, from: Duration, to: Duration) -> Option<Gap> {
        self.gaps
            .iter()
            .filter(|g| g.end() > from && g.end() <= to)
            .max_by_key(|g| g.length)
            .copied()
    }
}

#[derive(Debug)]
struct Meter {
    started: Instant,
    threshold: Duration,
    received: u64,
    highest: Option<u64>,
    last: Option<(Instant, u64)>,
    gaps: Vec<Gap>,
    max_gap: Duration,
}

impl Meter {
    fn record(&mut self, seq: u64, at: Instant) {
        if let Some((last_at, last_seq)) = self.last {
            let length = at.saturating_duration_since(last_at);
            self.max_gap = self.max_gap.max(length);
            if length >= self.threshold && self.gaps.len() < MAX_KEPT_GAPS {
                self.gaps.push(Gap {
                    start: last_at.saturating_duration_since(self.started),
                    length,
                    before_seq: last_seq,
                    after_seq: seq,
                });
            }
        }
        self.last = Some((at, seq));
        self.received += 1;
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
    }

    fn report(&self, at: Instant) -> StreamReport {
        let expected = self.highest.map_or(0, |h| h + 1);
        let last_at = self.last.map(|(t, _)| t);
        StreamReport {
            received: self.received,
            lost: expected.saturating_sub(self.received),
            gaps: self.gaps.clone(),
            max_gap: self.max_gap,
            last_arrival: last_at.map(|t| t.saturating_duration_since(self.started)),
            silent_for: at.saturating_duration_since(last_at.unwrap_or(self.started)),
        }
    }
}

/// Receives the stream on its own thread and measures it.
#[derive(Debug)]
pub struct UdpStreamReceiver {
    stop: Arc<AtomicBool>,
    meter: Arc<Mutex<Meter>>,
    handle: JoinHandle<()>,
}

impl UdpStreamReceiver {
    /// Starts receiving on `socket` (already bound); gaps of at least `threshold` are kept.
    pub fn start(socket: UdpSocket, threshold: Duration, deadline: Deadline) -> io::Result<Self> {
        socket.set_read_timeout(Some(STEP))?;
        let started = now();
        let meter = Arc::new(Mutex::new(Meter {
            started,
            threshold,
            received: 0,
            highest: None,
            last: None,
            gaps: Vec::new(),
            max_gap: Duration::ZERO,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, shared) = (Arc::clone(&stop), Arc::clone(&meter));
        let handle = std::thread::Builder::new()
            .name("udp-stream-recv".into())
            .spawn(move || receive_loop(&socket, deadline, &flag, &shared))?;
        Ok(Self {
            stop,
            meter,
            handle,
        })
    }

    /// Time since the receiver started: the time base of [`Gap::start`]. Take it when an event
    /// happens (e.g. right before blocking UDP) to find the event's gap later.
    pub fn elapsed(&self) -> Duration {
        let started = self.lock().started;
        now().saturating_duration_since(started)
    }

    /// What the receiver has seen so far.
    pub fn snapshot(&self) -> StreamReport {
        self.lock().report(now())
    }

    /// Stops receiving and returns the final report.
    pub fn stop(self) -> StreamReport {
        self.stop.store(true, Ordering::Relaxed);
        // The thread only exits; nothing to recover from a panic there but the meter itself.
        let _ = self.handle.join();
        self.meter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .report(now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Meter> {
        self.meter.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn receive_loop(socket: &UdpSocket, deadline: Deadline, stop: &AtomicBool, meter: &Mutex<Meter>) {
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) && !deadline.expired() {
        match socket.recv_from(&mut buf) {
            Ok((n, _)) if n == DATAGRAM_LEN && buf[..4] == MAGIC => {
                let at = now();
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&buf[4..DATAGRAM_LEN]);
                meter
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .record(u64::from_be_bytes(seq), at);
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            // E.g. ECONNREFUSED from an earlier ICMP error: not fatal to a measurement.
            Err(_) => std::thread::sleep(STEP),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(threshold_ms: u64) -> (Meter, Instant) {
        let started = now();
        (
            Meter {
                started,
                threshold: Duration::from_millis(threshold_ms),
                received: 0,
                highest: None,
                last: None,
                gaps: Vec::new(),
                max_gap: Duration::ZERO,
            },
            started,
        )
    }

    #[test]
    fn a_silence_between_two_datagrams_is_one_gap_with_its_sequence_numbers() {
        let (mut m, t0) = meter(50);
        m.record(0, t0 + Duration::from_millis(5));
        m.record(1, t0 + Duration::from_millis(10));
        m.record(60, t0 + Duration::from_millis(310));

        let report = m.report(t0 + Duration::from_millis(320));

        assert_eq!(report.received, 3);
        assert_eq!(report.lost, 58);
        assert_eq!(report.max_gap, Duration::from_millis(300));
        let gap = report
            .largest_gap_after(Duration::from_millis(100))
            .unwrap();
        assert_eq!(gap.start, Duration::from_millis(10));
        assert_eq!(gap.end(), Duration::from_millis(310));
        assert_eq!((gap.before_seq, gap.after_seq), (1, 60));
        assert_eq!(report.silent_for, Duration::from_millis(10));
    }

    #[test]
    fn gaps_below_the_threshold_count_for_the_maximum_only() {
        let (mut m, t0) = meter(50);
        m.record(0, t0);
        m.record(1, t0 + Duration::from_millis(40));

        let report = m.report(t0 + Duration::from_millis(40));

        assert!(report.gaps.is_empty());
        assert_eq!(report.max_gap, Duration::from_millis(40));
        assert_eq!(report.largest_gap_after(Duration::ZERO), None);
    }

    #[test]
    fn a_gap_that_ended_before_the_event_is_not_its_blackout() {
        let (mut m, t0) = meter(50);
        m.record(0, t0);
        m.record(1, t0 + Duration::from_millis(500));
        m.record(2, t0 + Duration::from_millis(505));
        m.record(3, t0 + Duration::from_millis(605));

        let report = m.report(t0 + Duration::from_millis(605));

        let gap = report
            .largest_gap_after(Duration::from_millis(502))
            .unwrap();
        assert_eq!(gap.length, Duration::from_millis(100));
        let early = report
            .largest_gap_between(Duration::ZERO, Duration::from_millis(501))
            .unwrap();
        assert_eq!(early.length, Duration::from_millis(500));
    }

    #[test]
    fn a_stream_over_loopback_arrives_with_small_gaps() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let deadline = Deadline::after(Duration::from_secs(10));
        let receiver = UdpStreamReceiver::start(rx, DEFAULT_GAP_THRESHOLD, deadline).unwrap();
        let sender = UdpStreamSender::start(tx, to, DEFAULT_INTERVAL, deadline).unwrap();

        crate::wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
            receiver.snapshot().received >= 20
        })
        .unwrap();
        let sent = sender.stop();
        let report = receiver.stop();

        assert!(sent.sent >= 20);
        assert!(report.received >= 20);
        assert!(report.received <= sent.sent);
    }
}
