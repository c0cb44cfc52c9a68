//! Anti-replay sliding window (RFC 6479): a ring of 64-bit blocks indexed by counter.
//!
//! The ring holds 128 blocks (8192 bits); one block is kept as the "redundant" block that is
//! cleared as the window slides, so the usable window is [`WINDOW_SIZE`] = 8128 counters below the
//! highest counter seen, as in WireGuard.
//!
//! Use: [`ReplayWindow::check`] before decrypting (cheap, no state change), and
//! [`ReplayWindow::commit`] only after the AEAD tag verified, so that forged frames can never move
//! the window.

const BLOCK_BITS: u64 = 64;
const BLOCK_BITS_LOG: u32 = 6;
const BLOCKS: usize = 128;

/// Number of counters below the highest one seen that are still tracked: `128 * 64 - 64`.
pub const WINDOW_SIZE: u64 = (BLOCKS as u64 - 1) * BLOCK_BITS;

/// RFC 6479 replay window.
#[derive(Clone)]
pub struct ReplayWindow {
    /// Highest counter committed so far (0 before the first, which is then not marked).
    last: u64,
    bitmap: [u64; BLOCKS],
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// An empty window: every counter is acceptable once.
    pub const fn new() -> Self {
        Self {
            last: 0,
            bitmap: [0; BLOCKS],
        }
    }

    fn position(counter: u64) -> (usize, u64) {
        // The cast keeps the low 7 bits only: the modulo of the ring.
        let block = ((counter >> BLOCK_BITS_LOG) % BLOCKS as u64) as usize;
        let bit = 1u64 << (counter & (BLOCK_BITS - 1));
        (block, bit)
    }

    /// Whether `counter` would be accepted: newer than the highest, or inside the window and not
    /// yet seen. Does not change the window.
    pub fn check(&self, counter: u64) -> bool {
        if counter > self.last {
            return true;
        }
        if self.last - counter > WINDOW_SIZE {
            return false;
        }
        let (block, bit) = Self::position(counter);
        self.bitmap[block] & bit == 0
    }

    /// Marks `counter` as received, sliding the window forward if it is the newest. Returns false
    /// (and changes nothing) if it was too old or already marked.
    pub fn commit(&mut self, counter: u64) -> bool {
        if counter > self.last {
            let current = self.last >> BLOCK_BITS_LOG;
            let target = counter >> BLOCK_BITS_LOG;
            // Clear the blocks the window slides over; after a full turn everything is stale.
            let slide = (target - current).min(BLOCKS as u64);
            for step in 1..=slide {
                let block = ((current + step) % BLOCKS as u64) as usize;
                self.bitmap[block] = 0;
            }
            self.last = counter;
        } else if self.last - counter > WINDOW_SIZE {
            return false;
        }
        let (block, bit) = Self::position(counter);
        let old = self.bitmap[block];
        self.bitmap[block] = old | bit;
        old & bit == 0
    }

    /// The highest counter committed so far (0 if none).
    pub fn highest(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Reference model: a set of every accepted counter plus the window rule.
    #[derive(Default)]
    struct Oracle {
        seen: BTreeSet<u64>,
        highest: u64,
    }

    impl Oracle {
        fn accept(&mut self, counter: u64) -> bool {
            let fresh = !self.seen.contains(&counter)
                && (counter > self.highest || self.highest - counter <= WINDOW_SIZE);
            if fresh {
                self.seen.insert(counter);
                self.highest = self.highest.max(counter);
            }
            fresh
        }
    }

    /// Checks then commits, asserting the two agree, as the data plane uses them.
    fn accept(window: &mut ReplayWindow, counter: u64) -> bool {
        let checked = window.check(counter);
        let committed = window.commit(counter);
        assert_eq!(checked, committed, "check and commit disagree at {counter}");
        committed
    }

    #[test]
    fn window_size_is_127_blocks_of_64_and_at_least_2048() {
        assert_eq!(WINDOW_SIZE, 8128);
        const { assert!(WINDOW_SIZE >= 2048) };
    }

    #[test]
    fn counter_zero_is_accepted_once() {
        let mut window = ReplayWindow::new();

        assert!(accept(&mut window, 0));
        assert!(!accept(&mut window, 0));
    }

    #[test]
    fn boundaries_around_the_window_edge_are_exact() {
        let top = 100_000;
        let mut window = ReplayWindow::new();
        window.commit(top);

        assert!(window.check(top - (WINDOW_SIZE - 1)));
        assert!(window.check(top - WINDOW_SIZE));
        assert!(!window.check(top - (WINDOW_SIZE + 1)));
        assert!(accept(&mut window, top - WINDOW_SIZE));
        assert!(!accept(&mut window, top - WINDOW_SIZE - 1));
    }

    #[test]
    fn check_does_not_change_the_window() {
        let mut window = ReplayWindow::new();
        window.commit(5);

        assert!(window.check(50_000));
        assert!(window.check(4));
        assert_eq!(window.highest(), 5);
    }

    #[test]
    fn a_big_jump_forgets_everything_older_than_the_window() {
        let mut window = ReplayWindow::new();
        for counter in 0..200 {
            window.commit(counter);
        }

        assert!(accept(&mut window, 1 << 40));
        assert!(!accept(&mut window, 199));
        assert!(accept(&mut window, (1 << 40) - 1));
        assert!(accept(&mut window, (1 << 40) - WINDOW_SIZE));
    }

    #[test]
    fn counters_near_u64_max_do_not_overflow() {
        let mut window = ReplayWindow::new();

        assert!(accept(&mut window, u64::MAX - 1));
        assert!(accept(&mut window, u64::MAX));
        assert!(!accept(&mut window, u64::MAX));
        assert!(accept(&mut window, u64::MAX - WINDOW_SIZE));
        assert!(!accept(&mut window, u64::MAX - WINDOW_SIZE - 1));
        assert!(!accept(&mut window, 0));
    }

    /// The sequence of wireguard-go's replay_test.go (itself from the Linux kernel), restated:
    /// the same counters, in the same order, with the same verdicts.
    #[test]
    fn wireguard_reference_sequence_gives_the_same_verdicts() {
        let lim = WINDOW_SIZE + 1;
        // wireguard-go also rejects counters >= its reject limit; our data plane does that in
        // RecvKey::open, so here the high end is exercised with a plain large value.
        let big = (1u64 << 60) - 1;
        let cases = [
            (0, true),
            (1, true),
            (1, false),
            (9, true),
            (8, true),
            (7, true),
            (7, false),
            (lim, true),
            (lim - 1, true),
            (lim - 1, false),
            (lim - 2, true),
            (2, true),
            (2, false),
            (lim + 16, true),
            (3, false),
            (lim + 16, false),
            (lim * 4, true),
            (lim * 4 - (lim - 1), true),
            (10, false),
            (lim * 4 - lim, false),
            (lim * 4 - (lim + 1), false),
            (lim * 4 - (lim - 2), true),
            (lim * 4 + 1 - lim, false),
            (0, false),
            (big - 1, true),
            (big - 1, false),
            (big - 2, true),
            (big - 2, false),
            (big - 3, true),
            (0, false),
        ];
        let mut window = ReplayWindow::new();

        for (n, (counter, expected)) in cases.into_iter().enumerate() {
            assert_eq!(accept(&mut window, counter), expected, "case {}", n + 1);
        }
    }

    #[test]
    fn wireguard_bulk_sequences_give_the_same_verdicts() {
        // Bulk 1: 1..=W ascending, then 0 is still inside the window.
        let mut w = ReplayWindow::new();
        assert!((1..=WINDOW_SIZE).all(|c| accept(&mut w, c)));
        assert!(accept(&mut w, 0));
        assert!(!accept(&mut w, 0));

        // Bulk 2: 2..=W+1 ascending, then 1 is in, 0 is just out.
        let mut w = ReplayWindow::new();
        assert!((2..=WINDOW_SIZE + 1).all(|c| accept(&mut w, c)));
        assert!(accept(&mut w, 1));
        assert!(!accept(&mut w, 0));

        // Bulk 3: W+1 down to 1.
        let mut w = ReplayWindow::new();
        assert!((1..=WINDOW_SIZE + 1).rev().all(|c| accept(&mut w, c)));

        // Bulk 4: W+2 down to 2, then 0 is out.
        let mut w = ReplayWindow::new();
        assert!((2..=WINDOW_SIZE + 2).rev().all(|c| accept(&mut w, c)));
        assert!(!accept(&mut w, 0));

        // Bulk 5: W down to 1, then W+1, then 0 is out.
        let mut w = ReplayWindow::new();
        assert!((1..=WINDOW_SIZE).rev().all(|c| accept(&mut w, c)));
        assert!(accept(&mut w, WINDOW_SIZE + 1));
        assert!(!accept(&mut w, 0));

        // Bulk 6: W down to 1, then 0, then W+1.
        let mut w = ReplayWindow::new();
        assert!((1..=WINDOW_SIZE).rev().all(|c| accept(&mut w, c)));
        assert!(accept(&mut w, 0));
        assert!(accept(&mut w, WINDOW_SIZE + 1));
    }

    fn counters() -> impl Strategy<Value = Vec<u64>> {
        // Mostly clustered counters (duplicates and window edges are likely), some far jumps.
        let near = 0u64..3 * WINDOW_SIZE;
        let far = prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>(), 0u64..1 << 20];
        prop::collection::vec(prop_oneof![8 => near, 1 => far], 0..600)
    }

    proptest! {
        #[test]
        fn random_sequences_match_the_set_oracle(seq in counters()) {
            let mut window = ReplayWindow::new();
            let mut oracle = Oracle::default();
            for counter in seq {
                prop_assert_eq!(accept(&mut window, counter), oracle.accept(counter), "counter {}", counter);
            }
        }

        #[test]
        fn sorted_sequences_match_the_set_oracle(mut seq in counters(), descending in any::<bool>()) {
            seq.sort_unstable();
            if descending {
                seq.reverse();
            }
            let mut window = ReplayWindow::new();
            let mut oracle = Oracle::default();
            for counter in seq {
                prop_assert_eq!(accept(&mut window, counter), oracle.accept(counter), "counter {}", counter);
            }
        }

        #[test]
        fn a_sliding_burst_with_reordering_matches_the_oracle(
            start in 0u64..1 << 40,
            jitter in prop::collection::vec(0u64..2 * WINDOW_SIZE, 1..2000),
        ) {
            let mut window = ReplayWindow::new();
            let mut oracle = Oracle::default();
            for (i, j) in jitter.into_iter().enumerate() {
                let counter = start + i as u64 * 4 + j;
                prop_assert_eq!(accept(&mut window, counter), oracle.accept(counter));
            }
        }
    }
}
