use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn alive(rtt_ms: u64, jitter_ms: u64, losses: u32) -> PathStats {
    PathStats::for_test(
        PathState::Alive,
        Some(ms(rtt_ms)),
        ms(jitter_ms),
        losses,
        16,
    )
}

fn scored(stats: &PathStats, rank: u8) -> Score {
    score(stats, rank, &Policy::default())
}

#[test]
fn alive_sorts_before_suspect_before_unmeasured_before_dead() {
    let alive = scored(&alive(300, 50, 4), 2);
    let suspect = scored(
        &PathStats::for_test(PathState::Suspect, Some(ms(10)), ms(0), 3, 16),
        0,
    );
    let unmeasured = scored(
        &PathStats::for_test(PathState::Unknown, None, ms(0), 0, 0),
        0,
    );
    let dead = scored(
        &PathStats::for_test(PathState::Dead, Some(ms(5)), ms(0), 5, 16),
        0,
    );

    let mut ranked = [dead, unmeasured, alive, suspect];
    ranked.sort_unstable_by(|a, b| b.cmp(a));

    assert_eq!(ranked, [alive, suspect, unmeasured, dead]);
    assert_eq!(unmeasured.class(), ScoreClass::Unmeasured);
}

#[test]
fn an_unmeasured_path_sorts_after_a_slow_measured_one_even_if_preferred() {
    let slow = scored(&alive(900, 100, 0), 5);
    let unmeasured = scored(
        &PathStats::for_test(PathState::Unknown, None, ms(0), 0, 0),
        0,
    );

    assert!(slow > unmeasured);
    assert_eq!(unmeasured.latency_bucket(), u32::MAX);
}

#[test]
fn a_lower_loss_bucket_beats_a_lower_latency() {
    let lossless_slow = scored(&alive(200, 0, 0), 1);
    let lossy_fast = scored(&alive(20, 0, 4), 0);

    assert!(lossless_slow > lossy_fast);
    assert_eq!(
        (lossless_slow.loss_bucket(), lossy_fast.loss_bucket()),
        (0, 2)
    );
}

#[test]
fn a_single_lost_probe_is_forgiven_even_in_a_short_window() {
    let clean = scored(
        &PathStats::for_test(PathState::Alive, Some(ms(50)), ms(0), 0, 4),
        0,
    );
    let one_loss = scored(
        &PathStats::for_test(PathState::Alive, Some(ms(50)), ms(0), 1, 4),
        0,
    );
    let two_losses = scored(&alive(50, 0, 2), 0);

    assert_eq!(clean, one_loss);
    assert_eq!(two_losses.loss_bucket(), 1);
}

#[test]
fn latency_noise_within_a_bucket_does_not_reorder_and_preference_breaks_the_tie() {
    let udp = scored(&alive(41, 1, 0), 0);
    let wss = scored(&alive(40, 0, 0), 2);

    assert_eq!(udp.latency_bucket(), wss.latency_bucket());
    assert!(udp > wss);
}

#[test]
fn jitter_counts_four_times_in_the_latency_cost() {
    let steady = scored(&alive(100, 0, 0), 0);
    let jittery = scored(&alive(60, 20, 0), 0);

    assert_eq!(
        (steady.latency_bucket(), jittery.latency_bucket()),
        (10, 14)
    );
    assert!(steady > jittery);
}

#[test]
fn better_by_margin_needs_the_full_hysteresis() {
    let current = scored(&alive(200, 0, 0), 0);
    let not_enough = scored(&alive(170, 0, 0), 1);
    let enough = scored(&alive(160, 0, 0), 1);

    assert!(!better_by_margin(&not_enough, &current, 20));
    assert!(better_by_margin(&enough, &current, 20));
}

#[test]
fn a_better_class_or_loss_bucket_is_better_by_margin_whatever_the_latency() {
    let suspect = scored(
        &PathStats::for_test(PathState::Suspect, Some(ms(10)), ms(0), 3, 16),
        0,
    );
    let lossy = scored(&alive(10, 0, 5), 0);
    let slow = scored(&alive(500, 0, 0), 1);

    assert!(better_by_margin(&slow, &suspect, 20));
    assert!(better_by_margin(&slow, &lossy, 20));
    assert!(!better_by_margin(&lossy, &slow, 20));
}

#[test]
fn equal_paths_are_never_better_by_margin_even_with_zero_hysteresis() {
    let a = scored(&alive(30, 0, 0), 0);
    let b = scored(&alive(30, 0, 0), 1);
    let unmeasured = scored(
        &PathStats::for_test(PathState::Unknown, None, ms(0), 0, 0),
        0,
    );

    assert!(!better_by_margin(&a, &b, 0));
    assert!(!better_by_margin(&unmeasured, &unmeasured, 0));
}

#[test]
fn within_margin_accepts_a_path_up_to_the_margin_and_the_preference_slack_worse() {
    // 100 ms is bucket 10: the margin allows bucket 12, the slack two more.
    let current = scored(&alive(100, 0, 0), 2);
    let a_bit_worse = scored(&alive(140, 0, 0), 0);
    let too_much_worse = scored(&alive(150, 0, 0), 0);

    assert!(within_margin(&a_bit_worse, &current, 20));
    assert!(!within_margin(&too_much_worse, &current, 20));
}

fn arbitrary_stats() -> impl Strategy<Value = PathStats> {
    (0u8..4, 0u64..2000, 0u64..500, 0u32..=16).prop_map(|(state, rtt, jitter, losses)| {
        let state = [
            PathState::Unknown,
            PathState::Alive,
            PathState::Suspect,
            PathState::Dead,
        ][usize::from(state)];
        let srtt = (state != PathState::Unknown).then_some(ms(rtt));
        PathStats::for_test(state, srtt, ms(jitter), losses, 16)
    })
}

proptest! {
    /// Moving up to a preferred path and straight back down is impossible: no pair of paths
    /// is both "within the margin" one way and "better by the margin" the other way.
    #[test]
    fn moving_up_then_straight_back_down_is_impossible(
        up in arbitrary_stats(),
        down in arbitrary_stats(),
        h in 0u32..=100,
    ) {
        let (preferred, other) = (scored(&up, 0), scored(&down, 1));

        let moves_up = within_margin(&preferred, &other, h);
        let moves_back = better_by_margin(&other, &preferred, h);

        prop_assert!(!(moves_up && moves_back));
    }

    /// The score is a pure function: the same stats give the same score.
    #[test]
    fn scoring_is_deterministic(stats in arbitrary_stats(), rank in 0u8..8) {
        prop_assert_eq!(scored(&stats, rank), scored(&stats.clone(), rank));
    }
}

#[test]
fn within_margin_takes_back_a_preferred_path_up_to_20_ms_slower_than_a_fast_current_one() {
    let current = scored(&alive(5, 0, 0), 2);
    let returning = scored(&alive(25, 0, 0), 0);
    let much_slower = scored(&alive(35, 0, 0), 0);

    assert!(within_margin(&returning, &current, 20));
    assert!(!within_margin(&much_slower, &current, 20));
}
