use std::time::{Duration, Instant};

use super::*;

const A: PathId = PathId(1);
const B: PathId = PathId(2);
const C: PathId = PathId(3);

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

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Records probe `seq` as sent on `path` at `at`.
fn send(prober: &mut Prober, path: PathId, seq: u32, at: Instant) {
    prober.on_probe_sent(path, seq, at);
}

/// A prober with one path whose RTT samples are `rtts` (one probe each, answered in order).
fn measured(rtts: &[u64]) -> PathStats {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    let mut now = t0;
    for (seq, rtt) in (0u32..).zip(rtts) {
        send(&mut prober, A, seq, now);
        now += ms(*rtt);
        prober.on_probe_ack(A, seq, now);
    }
    prober.stats(A).expect("path A").clone()
}

/// Drives the prober in 10 ms ticks until `until`; `answer(path, sent_at)` gives the RTT of a
/// probe or `None` to drop it. Returns every probe sent as (path, time since `t0`).
fn drive(
    prober: &mut Prober,
    t0: Instant,
    until: Duration,
    mut answer: impl FnMut(PathId, Duration) -> Option<Duration>,
) -> Vec<(PathId, Duration)> {
    let mut sent = Vec::new();
    let mut acks: Vec<(Instant, PathId, u32)> = Vec::new();
    let mut now = t0;
    while now - t0 <= until {
        acks.sort_unstable();
        let due = acks.partition_point(|&(at, _, _)| at <= now);
        for (_, path, seq) in acks.drain(..due).collect::<Vec<_>>() {
            prober.on_probe_ack(path, seq, now);
        }
        prober.handle_timeout(now);
        while let Some((path, seq)) = prober.poll_probe(now) {
            prober.on_probe_sent(path, seq, now);
            sent.push((path, now - t0));
            if let Some(rtt) = answer(path, now - t0) {
                acks.push((now + rtt, path, seq));
            }
        }
        now += ms(10);
    }
    sent
}

fn times(sent: &[(PathId, Duration)], path: PathId) -> Vec<u64> {
    sent.iter()
        .filter(|(p, _)| *p == path)
        .map(|(_, at)| u64::try_from(at.as_millis()).unwrap())
        .collect()
}

// --- RTT and jitter ---

#[test]
fn the_first_rtt_sample_sets_the_srtt_and_a_zero_jitter() {
    let stats = measured(&[100]);

    assert_eq!(stats.srtt(), Some(ms(100)));
    assert_eq!(stats.jitter(), Duration::ZERO);
    assert_eq!(stats.latest_rtt(), Some(ms(100)));
}

#[test]
fn srtt_and_jitter_follow_the_rfc_6298_update_rules_on_a_known_sequence() {
    // 100: S = 100, V = 0
    // 200: V = (3·0 + |100 − 200|)/4 = 25,        S = (7·100 + 200)/8 = 112.5
    // 100: V = (3·25 + |112.5 − 100|)/4 = 21.875, S = (7·112.5 + 100)/8 = 110.9375
    let stats = measured(&[100, 200, 100]);

    assert_eq!(
        stats.srtt(),
        Some(Duration::from_micros(110_937) + Duration::from_nanos(500))
    );
    assert_eq!(stats.jitter(), Duration::from_micros(21_875));
}

#[test]
fn a_steady_rtt_keeps_the_jitter_at_zero() {
    let stats = measured(&[40; 20]);

    assert_eq!(
        (stats.srtt(), stats.jitter()),
        (Some(ms(40)), Duration::ZERO)
    );
}

// --- loss window and states ---

#[test]
fn the_loss_window_holds_the_last_sixteen_outcomes() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    let mut now = t0;
    let mut seq = 0;
    let mut probe = |prober: &mut Prober, answered: bool| {
        send(prober, A, seq, now);
        if answered {
            prober.on_probe_ack(A, seq, now + ms(10));
        } else {
            prober.handle_timeout(now + secs(1));
        }
        seq += 1;
        now += secs(2);
    };
    for _ in 0..4 {
        probe(&mut prober, false);
    }
    for _ in 0..12 {
        probe(&mut prober, true);
    }
    let full = prober.stats(A).unwrap().clone();
    for _ in 0..4 {
        probe(&mut prober, true);
    }
    let slid = prober.stats(A).unwrap().clone();

    assert_eq!((full.window_len(), full.window_losses()), (16, 4));
    assert_eq!(full.loss_percent(), 25);
    assert_eq!((slid.window_len(), slid.window_losses()), (16, 0));
    assert_eq!((slid.probes_lost(), slid.probes_answered()), (4, 16));
}

#[test]
fn a_path_is_suspect_after_exactly_three_consecutive_losses_not_two() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    send(&mut prober, A, 0, t0);
    prober.on_probe_ack(A, 0, t0 + ms(10));
    for seq in 1..=3 {
        send(&mut prober, A, seq, t0 + secs(u64::from(seq)));
    }

    prober.handle_timeout(t0 + secs(3)); // probes 1 and 2 are lost, 3 is not due yet
    let after_two = prober.stats(A).unwrap().state();
    prober.handle_timeout(t0 + secs(4));
    let after_three = prober.stats(A).unwrap().state();

    assert_eq!(after_two, PathState::Alive);
    assert_eq!(after_three, PathState::Suspect);
    assert_eq!(prober.stats(A).unwrap().consecutive_losses(), 3);
}

#[test]
fn a_path_is_dead_after_probes_lost_dead_consecutive_losses() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    for seq in 0..5 {
        send(&mut prober, A, seq, t0 + secs(u64::from(seq)));
    }

    prober.handle_timeout(t0 + secs(4));
    let after_four = prober.stats(A).unwrap().state();
    prober.handle_timeout(t0 + secs(5));

    assert_eq!(after_four, PathState::Suspect);
    assert_eq!(prober.stats(A).unwrap().state(), PathState::Dead);
}

#[test]
fn one_answer_makes_a_suspect_path_alive_again() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    for seq in 0..4 {
        send(&mut prober, A, seq, t0 + secs(u64::from(seq)));
    }
    prober.handle_timeout(t0 + ms(3500));
    assert_eq!(prober.stats(A).unwrap().state(), PathState::Suspect);

    prober.on_probe_ack(A, 3, t0 + ms(3600));

    let stats = prober.stats(A).unwrap();
    assert_eq!(
        (stats.state(), stats.consecutive_losses()),
        (PathState::Alive, 0)
    );
    assert_eq!(stats.srtt(), Some(ms(600)));
}

#[test]
fn unknown_duplicate_and_cross_path_answers_are_ignored() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    prober.add_path(B, PathKind::Quic, 1, t0);
    send(&mut prober, A, 7, t0);
    prober.on_probe_ack(A, 7, t0 + ms(50));

    prober.on_probe_ack(A, 7, t0 + ms(60)); // duplicate
    prober.on_probe_ack(A, 99, t0 + ms(70)); // never sent
    prober.on_probe_ack(B, 7, t0 + ms(80)); // sent on A, not B

    let (a, b) = (prober.stats(A).unwrap(), prober.stats(B).unwrap());
    assert_eq!((a.probes_answered(), a.srtt()), (1, Some(ms(50))));
    assert_eq!((b.probes_answered(), b.state()), (0, PathState::Unknown));
}

#[test]
fn an_answer_after_the_timeout_is_ignored_and_the_probe_counts_as_lost() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    send(&mut prober, A, 0, t0);

    prober.on_probe_ack(A, 0, t0 + secs(1));

    let stats = prober.stats(A).unwrap();
    assert_eq!((stats.probes_lost(), stats.probes_answered()), (1, 0));
    assert_eq!(stats.srtt(), None);
}

#[test]
fn the_probe_timeout_is_three_srtt_with_a_floor_of_probe_timeout_min() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    send(&mut prober, A, 0, t0);
    prober.on_probe_ack(A, 0, t0 + ms(500)); // SRTT 500 ms → timeout 1.5 s
    send(&mut prober, A, 1, t0 + secs(1));

    prober.handle_timeout(t0 + ms(2490));
    let before = prober.stats(A).unwrap().probes_lost();
    prober.handle_timeout(t0 + ms(2500));
    let after = prober.stats(A).unwrap().probes_lost();

    assert_eq!((before, after), (0, 1));
}

#[test]
fn packets_other_than_answers_only_update_last_seen() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);

    prober.on_packet_received(A, t0 + ms(5));

    let stats = prober.stats(A).unwrap();
    assert_eq!(stats.last_seen(), Some(t0 + ms(5)));
    assert_eq!(stats.state(), PathState::Unknown);
}

// --- scheduling ---

#[test]
fn the_active_path_is_probed_every_probe_interval_and_a_standby_every_five() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    prober.add_path(B, PathKind::Quic, 1, t0);
    prober.set_active(Some(A));

    let sent = drive(&mut prober, t0, secs(10), |_, _| Some(ms(20)));

    let a: Vec<u64> = (0..=10).map(|s| s * 1000).collect();
    assert_eq!(times(&sent, A), a);
    assert_eq!(times(&sent, B), vec![0, 5000, 10000]);
}

#[test]
fn a_dead_standby_path_backs_off_exponentially_up_to_the_cap() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    prober.add_path(B, PathKind::Quic, 1, t0);
    prober.set_active(Some(A));

    let sent = drive(&mut prober, t0, secs(100), |path, _| {
        (path == A).then_some(ms(20))
    });

    // Every 5 s until the fifth loss (at 21 s) makes B dead; then 5, 10, 20, 20, … s.
    assert_eq!(
        times(&sent, B),
        vec![
            0, 5000, 10000, 15000, 20000, 25000, 30000, 40000, 60000, 80000, 100000
        ]
    );
    assert_eq!(prober.stats(B).unwrap().state(), PathState::Dead);
}

#[test]
fn standby_paths_are_probed_at_the_active_rate_while_the_active_path_is_suspect() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    prober.add_path(B, PathKind::Quic, 1, t0);
    prober.set_active(Some(A));

    let sent = drive(&mut prober, t0, secs(12), |path, at| {
        (path == B || at < secs(5)).then_some(ms(20))
    });

    // A's probes from 5 s are lost at 6, 7 and 8 s: suspect at 8 s, B probed each second.
    assert_eq!(
        times(&sent, B),
        vec![0, 5000, 8000, 9000, 10000, 11000, 12000]
    );
}

#[test]
fn a_watched_standby_path_is_probed_at_the_active_rate() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    prober.add_path(B, PathKind::Quic, 1, t0);
    prober.set_active(Some(A));
    prober.set_watched(B, true);

    let sent = drive(&mut prober, t0, secs(3), |_, _| Some(ms(20)));

    assert_eq!(times(&sent, B), vec![0, 1000, 2000, 3000]);
}

#[test]
fn path_down_stops_probing_and_path_up_probes_at_once_from_scratch() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    prober.set_active(Some(A));
    let first = drive(&mut prober, t0, secs(2), |_, _| Some(ms(20)));
    let t1 = t0 + secs(3);

    prober.path_down(A, t1);
    let while_down = prober.poll_probe(t1 + secs(10));
    let down = prober.stats(A).unwrap().clone();
    prober.path_up(A, t1 + ms(10_500));
    let after_up = prober.poll_probe(t1 + ms(10_500));

    assert_eq!(times(&first, A), vec![0, 1000, 2000]);
    assert_eq!(while_down, None);
    assert_eq!((down.state(), down.is_up()), (PathState::Dead, false));
    assert!(matches!(after_up, Some((A, _))));
    let up = prober.stats(A).unwrap();
    assert_eq!(
        (up.state(), up.srtt(), up.window_len()),
        (PathState::Unknown, None, 0)
    );
}

#[test]
fn poll_timeout_is_the_earliest_due_probe_or_probe_timeout() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(A, PathKind::Udp, 0, t0);
    prober.set_active(Some(A));
    let (path, seq) = prober.poll_probe(t0).unwrap();
    prober.on_probe_sent(path, seq, t0);

    let next = prober.poll_timeout();
    prober.on_probe_ack(A, seq, t0 + ms(30));
    let after_ack = prober.poll_timeout();

    // The probe's timeout (1 s) and the next probe (1 s) coincide; after the answer only the
    // next probe remains.
    assert_eq!(next, Some(t0 + secs(1)));
    assert_eq!(after_ack, Some(t0 + secs(1)));
    assert_eq!(prober.poll_probe(t0 + ms(999)), None);
}

#[test]
fn paths_are_listed_in_path_id_order() {
    let t0 = base();
    let mut prober = Prober::new(&Policy::default());
    prober.add_path(C, PathKind::Wss, 2, t0);
    prober.add_path(A, PathKind::Udp, 0, t0);
    prober.add_path(B, PathKind::Quic, 1, t0);

    let ids: Vec<PathId> = prober.paths().map(|(id, _)| id).collect();
    let first_probes: Vec<PathId> =
        std::iter::from_fn(|| prober.poll_probe(t0).map(|(p, _)| p)).collect();

    assert_eq!(ids, vec![A, B, C]);
    assert_eq!(first_probes, vec![A, B, C]);
}
