//! Tests of the network harness itself, with trivial nodes (no session core involved).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use jvpn_sim::impair::{
    self, Blackhole, Datagram, Delay, Duplicate, Fate, Impairment, Loss, Reorder, Tap,
};
use jvpn_sim::{
    CopyKind, DropCause, LinkId, Network, Node, NodeId, SEED_ENV, Seed, SimError, Step,
    base_instant,
};

/// Sends `count` numbered datagrams, one every `interval`, on one link; records what comes back.
#[derive(Debug)]
struct Pinger {
    link: LinkId,
    count: u64,
    sent: u64,
    interval: Duration,
    next_send: Option<Instant>,
    queued: VecDeque<Vec<u8>>,
    received: Vec<u64>,
}

impl Pinger {
    fn new(link: LinkId, count: u64, interval: Duration, start: Instant) -> Self {
        Self {
            link,
            count,
            sent: 0,
            interval,
            next_send: Some(start),
            queued: VecDeque::new(),
            received: Vec::new(),
        }
    }
}

impl Node for Pinger {
    fn handle_datagram(&mut self, _: LinkId, data: &mut [u8], _: Instant) {
        self.received
            .push(u64::from_le_bytes(data[..8].try_into().unwrap()));
    }

    fn handle_timeout(&mut self, now: Instant) {
        // Everything due is sent in one go, so a zero interval is one burst, not a livelock.
        while self.next_send.is_some_and(|t| t <= now) {
            let mut packet = self.sent.to_le_bytes().to_vec();
            packet.extend_from_slice(&[0xab; 24]);
            self.queued.push_back(packet);
            self.sent += 1;
            self.next_send =
                (self.sent < self.count).then(|| self.next_send.unwrap() + self.interval);
        }
    }

    fn poll_transmit(&mut self, _: Instant) -> Option<(LinkId, Vec<u8>)> {
        self.queued.pop_front().map(|p| (self.link, p))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.next_send
    }
}

/// Sends every datagram it receives back on the same link.
#[derive(Debug, Default)]
struct Echo {
    queued: VecDeque<(LinkId, Vec<u8>)>,
    received: u64,
}

impl Node for Echo {
    fn handle_datagram(&mut self, link: LinkId, data: &mut [u8], _: Instant) {
        self.received += 1;
        self.queued.push_back((link, data.to_vec()));
    }

    fn handle_timeout(&mut self, _: Instant) {}

    fn poll_transmit(&mut self, _: Instant) -> Option<(LinkId, Vec<u8>)> {
        self.queued.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

const MS: Duration = Duration::from_millis(1);

fn typical() -> Vec<Box<dyn Impairment>> {
    impair::lossy(
        0.05,
        0.05,
        Delay {
            base: 10 * MS,
            jitter: 2 * MS,
        },
        Reorder {
            p: 0.1,
            max_extra: 20 * MS,
        },
    )
}

/// A pinger and an echo over one link impaired both ways; returns the network after the run.
fn echo_run(seed: Seed, count: u64) -> (Network, NodeId, NodeId) {
    let base = base_instant();
    let mut net = Network::new(seed, base);
    let link = net.next_link_id();
    let pinger = net.add_node(Box::new(Pinger::new(link, count, MS, base)));
    let echo = net.add_node(Box::new(Echo::default()));
    net.add_link(pinger, echo, typical(), typical());
    net.run_for(Duration::from_secs(60)).unwrap();
    (net, pinger, echo)
}

/// `k` standard deviations of a binomial(n, p) count, plus one for rounding.
fn binomial_margin(n: u64, p: f64, k: f64) -> f64 {
    k * (n as f64 * p * (1.0 - p)).sqrt() + 1.0
}

#[test]
fn the_same_seed_gives_the_same_trace_hash() {
    let seed = Seed::from_env_or_random(SEED_ENV);

    let (first, ..) = echo_run(seed, 2_000);
    let (second, ..) = echo_run(seed, 2_000);

    assert_eq!(first.trace_hash(), second.trace_hash());
    assert_eq!(first.stats(), second.stats());
}

#[test]
fn different_seeds_give_different_trace_hashes() {
    let seed = Seed::from_env_or_random(SEED_ENV);

    let (first, ..) = echo_run(seed, 2_000);
    let (second, ..) = echo_run(seed.nth(1), 2_000);

    assert_ne!(first.trace_hash(), second.trace_hash());
}

#[test]
fn echo_round_trips_most_datagrams_through_an_impaired_link() {
    let seed = Seed::from_env_or_random(SEED_ENV);

    let (net, pinger, echo) = echo_run(seed, 2_000);

    let pinger = net.node::<Pinger>(pinger).unwrap();
    let echo = net.node::<Echo>(echo).unwrap();
    assert_eq!(pinger.sent, 2_000);
    assert!(echo.received > 1_800, "echo received {}", echo.received);
    assert!(
        pinger.received.len() > 1_600,
        "pinger received {}",
        pinger.received.len()
    );
    assert!(pinger.received.iter().all(|&i| i < 2_000));
}

#[test]
fn loss_rate_over_100k_datagrams_is_within_six_sigma_of_the_configured_rate() {
    let seed = Seed::from_env_or_random(SEED_ENV);
    let (n, p) = (100_000u64, 0.1);
    let base = base_instant();
    let mut net = Network::new(seed, base);
    let link = net.next_link_id();
    let pinger = net.add_node(Box::new(Pinger::new(
        link,
        n,
        Duration::from_micros(10),
        base,
    )));
    let sink = net.add_node(Box::new(Sink::default()));
    net.add_link(pinger, sink, vec![Box::new(Loss { p })], vec![]);

    net.run_for(Duration::from_secs(10)).unwrap();

    let lost = net.stats().dropped(DropCause::Loss);
    let expected = n as f64 * p;
    let margin = binomial_margin(n, p, 6.0);
    assert!(
        (lost as f64 - expected).abs() <= margin,
        "lost {lost}, expected {expected} ± {margin}"
    );
    assert_eq!(net.node::<Sink>(sink).unwrap().received, n - lost);
}

#[test]
fn duplication_delivers_extra_copies_at_the_configured_rate() {
    let seed = Seed::from_env_or_random(SEED_ENV);
    let (n, p) = (20_000u64, 0.2);
    let base = base_instant();
    let mut net = Network::new(seed, base);
    let link = net.next_link_id();
    let pinger = net.add_node(Box::new(Pinger::new(
        link,
        n,
        Duration::from_micros(10),
        base,
    )));
    let sink = net.add_node(Box::new(Sink::default()));
    net.add_link(pinger, sink, vec![Box::new(Duplicate { p })], vec![]);

    net.run_for(Duration::from_secs(10)).unwrap();

    let copies = net.stats().created(CopyKind::Duplicate);
    let margin = binomial_margin(n, p, 6.0);
    assert!(
        (copies as f64 - n as f64 * p).abs() <= margin,
        "{copies} copies"
    );
    let sink = net.node::<Sink>(sink).unwrap();
    assert_eq!(sink.received, n + copies);
    assert_eq!(sink.distinct(), n);
}

#[test]
fn reordering_makes_later_datagrams_overtake_earlier_ones() {
    let seed = Seed::from_env_or_random(SEED_ENV);
    let base = base_instant();
    let mut net = Network::new(seed, base);
    let link = net.next_link_id();
    let pinger = net.add_node(Box::new(Pinger::new(link, 1_000, MS, base)));
    let sink = net.add_node(Box::new(Sink::default()));
    let reorder = Reorder {
        p: 0.1,
        max_extra: 50 * MS,
    };
    net.add_link(pinger, sink, vec![Box::new(reorder)], vec![]);

    net.run_for(Duration::from_secs(10)).unwrap();

    let sink = net.node::<Sink>(sink).unwrap();
    let inversions = sink.order.windows(2).filter(|w| w[1] < w[0]).count();
    assert_eq!(sink.received, 1_000);
    assert!(inversions > 10, "only {inversions} inversions");
}

#[test]
fn a_blackhole_drops_everything_sent_inside_its_window_and_nothing_outside() {
    let seed = Seed::from_env_or_random(SEED_ENV);
    let base = base_instant();
    let mut net = Network::new(seed, base);
    let link = net.next_link_id();
    let pinger = net.add_node(Box::new(Pinger::new(link, 1_000, MS, base)));
    let sink = net.add_node(Box::new(Sink::default()));
    let hole = Blackhole::during(100 * MS..300 * MS);
    net.add_link(pinger, sink, vec![Box::new(hole)], vec![]);

    net.run_for(Duration::from_secs(10)).unwrap();

    assert_eq!(net.stats().dropped(DropCause::Blackhole), 200);
    let sink = net.node::<Sink>(sink).unwrap();
    assert!(sink.order.iter().all(|&i| !(100..300).contains(&i)));
    assert_eq!(sink.received, 800);
}

#[test]
fn a_tap_records_drops_and_injects_frames() {
    let seed = Seed::from_env_or_random(SEED_ENV);
    let base = base_instant();
    let mut net = Network::new(seed, base);
    let link = net.next_link_id();
    let pinger = net.add_node(Box::new(Pinger::new(link, 100, MS, base)));
    let sink = net.add_node(Box::new(Sink::default()));
    let recorded = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&recorded);
    // The attacker swallows datagram 7 and replays datagram 3 twice.
    let tap = Tap::new(move |cx, datagram: &mut Datagram| {
        log.borrow_mut().push(datagram.data.clone());
        let index = u64::from_le_bytes(datagram.data[..8].try_into().unwrap());
        if index == 3 {
            for _ in 0..2 {
                cx.create(CopyKind::Injected, datagram.clone());
            }
        }
        if index == 7 {
            Fate::Drop(DropCause::Tap)
        } else {
            Fate::Pass
        }
    });
    net.add_link(pinger, sink, vec![Box::new(tap)], vec![]);

    net.run_for(Duration::from_secs(1)).unwrap();

    assert_eq!(recorded.borrow().len(), 100);
    assert_eq!(net.stats().dropped(DropCause::Tap), 1);
    assert_eq!(net.stats().created(CopyKind::Injected), 2);
    let sink = net.node::<Sink>(sink).unwrap();
    assert_eq!(sink.order.iter().filter(|&&i| i == 3).count(), 3);
    assert!(!sink.order.contains(&7));
}

#[test]
fn datagrams_arriving_at_the_same_instant_are_delivered_in_send_order() {
    let base = base_instant();
    let mut net = Network::new(Seed(1), base);
    let link = net.next_link_id();
    let pinger = net.add_node(Box::new(Pinger::new(link, 500, Duration::ZERO, base)));
    let sink = net.add_node(Box::new(Sink::default()));
    net.add_link(
        pinger,
        sink,
        vec![Box::new(Delay {
            base: MS,
            jitter: Duration::ZERO,
        })],
        vec![],
    );

    net.run_for(Duration::from_secs(1)).unwrap();

    let sink = net.node::<Sink>(sink).unwrap();
    assert_eq!(sink.order, (0..500).collect::<Vec<_>>());
}

#[test]
fn a_node_whose_timeout_never_moves_hits_the_step_limit_instead_of_hanging() {
    let base = base_instant();
    let mut net = Network::new(Seed(1), base);
    net.add_node(Box::new(Stuck { at: base + MS }));
    net.set_step_limit(10_000);

    let result = net.run_for(Duration::from_secs(1));

    assert!(
        matches!(result, Err(SimError::StepLimit { limit: 10_000, .. })),
        "{result:?}"
    );
    assert_eq!(net.elapsed(), MS);
}

#[test]
fn a_node_that_never_stops_transmitting_hits_the_step_limit_instead_of_hanging() {
    let base = base_instant();
    let mut net = Network::new(Seed(1), base);
    let link = net.next_link_id();
    let flood = net.add_node(Box::new(Flood { link }));
    let sink = net.add_node(Box::new(Sink::default()));
    net.add_link(flood, sink, vec![], vec![]);
    net.set_step_limit(10_000);

    let result = net.step();

    assert!(
        matches!(result, Err(SimError::StepLimit { .. })),
        "{result:?}"
    );
}

#[test]
fn an_idle_network_reports_idle_and_run_until_moves_time_to_the_deadline() {
    let base = base_instant();
    let mut net = Network::new(Seed(1), base);
    net.add_node(Box::new(Echo::default()));

    let step = net.step().unwrap();
    net.run_for(Duration::from_secs(3)).unwrap();

    assert_eq!(step, Step::Idle);
    assert_eq!(net.elapsed(), Duration::from_secs(3));
}

#[test]
fn transmitting_on_a_link_the_node_is_not_on_is_counted_as_misrouted() {
    let base = base_instant();
    let mut net = Network::new(Seed(1), base);
    let pinger = net.add_node(Box::new(Pinger::new(LinkId(1), 1, MS, base)));
    let a = net.add_node(Box::new(Sink::default()));
    let b = net.add_node(Box::new(Sink::default()));
    net.add_link(pinger, a, vec![], vec![]);
    net.add_link(a, b, vec![], vec![]);

    net.run_for(Duration::from_secs(1)).unwrap();

    assert_eq!(net.stats().dropped(DropCause::Misrouted), 1);
    assert_eq!(net.stats().delivered, 0);
}

/// Counts and orders what it receives; never sends.
#[derive(Debug, Default)]
struct Sink {
    received: u64,
    order: Vec<u64>,
}

impl Sink {
    fn distinct(&self) -> u64 {
        let mut seen = self.order.clone();
        seen.sort_unstable();
        seen.dedup();
        seen.len() as u64
    }
}

impl Node for Sink {
    fn handle_datagram(&mut self, _: LinkId, data: &mut [u8], _: Instant) {
        self.received += 1;
        self.order
            .push(u64::from_le_bytes(data[..8].try_into().unwrap()));
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_transmit(&mut self, _: Instant) -> Option<(LinkId, Vec<u8>)> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

/// A buggy node: its timeout stays in the past after firing.
#[derive(Debug)]
struct Stuck {
    at: Instant,
}

impl Node for Stuck {
    fn handle_datagram(&mut self, _: LinkId, _: &mut [u8], _: Instant) {}
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_transmit(&mut self, _: Instant) -> Option<(LinkId, Vec<u8>)> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.at)
    }
}

/// A buggy node: `poll_transmit` never returns `None`.
#[derive(Debug)]
struct Flood {
    link: LinkId,
}

impl Node for Flood {
    fn handle_datagram(&mut self, _: LinkId, _: &mut [u8], _: Instant) {}
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_transmit(&mut self, _: Instant) -> Option<(LinkId, Vec<u8>)> {
        Some((self.link, vec![0; 8]))
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}
