//! Deterministic inner-datagram workloads and an at-most-once, byte-exact delivery checker.

use rand::{Rng, RngCore};

use crate::seed::Seed;

/// Bytes at the front of every payload: the index (u32 LE) and the total length (u16 LE).
const HEADER: usize = 6;

/// `count` inner datagrams of varied sizes, each a pure function of `(seed, label, index)`:
/// the index and the length, then random bytes from the index's own stream. The receiver
/// regenerates datagram `i` to check a delivery byte for byte; nothing needs to be stored.
#[derive(Clone, Debug)]
pub struct Workload {
    seed: Seed,
    label: &'static str,
    count: u32,
    min_len: usize,
    max_len: usize,
}

impl Workload {
    /// A workload of `count` datagrams with lengths uniform in `[min_len, max_len]`
    /// (raised to the 6-byte header and to at least `min_len`; capped at `u16::MAX`).
    #[must_use]
    pub fn new(
        seed: Seed,
        label: &'static str,
        count: u32,
        min_len: usize,
        max_len: usize,
    ) -> Self {
        let min_len = min_len.max(HEADER).min(usize::from(u16::MAX));
        let max_len = max_len.clamp(min_len, usize::from(u16::MAX));
        Self {
            seed,
            label,
            count,
            min_len,
            max_len,
        }
    }

    /// How many datagrams the workload has.
    #[must_use]
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Datagram `index`.
    #[must_use]
    pub fn payload(&self, index: u32) -> Vec<u8> {
        let mut rng = self.seed.sim_rng(self.label, u64::from(index));
        let len = rng.random_range(self.min_len..=self.max_len);
        let mut out = vec![0; len];
        out[..4].copy_from_slice(&index.to_le_bytes());
        let len16 = u16::try_from(len).expect("max_len is capped at u16::MAX");
        out[4..HEADER].copy_from_slice(&len16.to_le_bytes());
        rng.fill_bytes(&mut out[HEADER..]);
        out
    }

    /// The index a datagram claims to be, if it is long enough to claim one.
    #[must_use]
    pub fn claimed_index(bytes: &[u8]) -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?))
    }
}

/// What went wrong with one delivery.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryFault {
    /// The bytes name no index of the workload (too short or out of range).
    #[error("a {len}-byte datagram names no index of the workload")]
    Unknown {
        /// Its length.
        len: usize,
    },
    /// The bytes differ from what was sent as that index.
    #[error("datagram {index} arrived corrupted")]
    Corrupt {
        /// The index it claimed.
        index: u32,
    },
    /// That index was already delivered.
    #[error("datagram {index} was delivered twice")]
    Duplicate {
        /// The index delivered again.
        index: u32,
    },
}

/// Records deliveries of a [`Workload`] and finds every fault: unknown, corrupt, twice.
#[derive(Clone, Debug)]
pub struct DeliveryLog {
    workload: Workload,
    seen: Vec<bool>,
    delivered: u32,
    faults: Vec<DeliveryFault>,
}

impl DeliveryLog {
    /// An empty log for `workload`.
    #[must_use]
    pub fn new(workload: Workload) -> Self {
        let seen = vec![false; workload.count as usize];
        Self {
            workload,
            seen,
            delivered: 0,
            faults: Vec::new(),
        }
    }

    /// Checks and records one delivered datagram.
    pub fn record(&mut self, bytes: &[u8]) {
        if let Err(fault) = self.check(bytes) {
            self.faults.push(fault);
        }
    }

    fn check(&mut self, bytes: &[u8]) -> Result<(), DeliveryFault> {
        let unknown = DeliveryFault::Unknown { len: bytes.len() };
        let index = Workload::claimed_index(bytes).ok_or(unknown.clone())?;
        let slot = self.seen.get_mut(index as usize).ok_or(unknown)?;
        if self.workload.payload(index) != bytes {
            return Err(DeliveryFault::Corrupt { index });
        }
        if std::mem::replace(slot, true) {
            return Err(DeliveryFault::Duplicate { index });
        }
        self.delivered += 1;
        Ok(())
    }

    /// Distinct datagrams delivered intact.
    #[must_use]
    pub fn delivered(&self) -> u32 {
        self.delivered
    }

    /// Whether datagram `index` was delivered intact.
    #[must_use]
    pub fn was_delivered(&self, index: u32) -> bool {
        self.seen.get(index as usize).copied().unwrap_or(false)
    }

    /// Every fault seen, in order.
    #[must_use]
    pub fn faults(&self) -> &[DeliveryFault] {
        &self.faults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload::new(Seed(3), "test", 100, 8, 300)
    }

    #[test]
    fn payloads_are_a_pure_function_of_seed_label_and_index() {
        let w = workload();

        assert_eq!(w.payload(5), w.payload(5));
        assert_ne!(w.payload(5), w.payload(6));
        assert_eq!(Workload::claimed_index(&w.payload(42)), Some(42));
        assert!((0..100).all(|i| (8..=300).contains(&w.payload(i).len())));
    }

    #[test]
    fn the_log_flags_duplicates_corruption_and_strangers() {
        let w = workload();
        let mut log = DeliveryLog::new(w.clone());
        let mut flipped = w.payload(2);
        *flipped.last_mut().unwrap() ^= 1;

        log.record(&w.payload(1));
        log.record(&w.payload(1));
        log.record(&flipped);
        log.record(&[1, 2]);
        log.record(&w.payload(100_000));

        assert_eq!(log.delivered(), 1);
        assert_eq!(
            log.faults(),
            [
                DeliveryFault::Duplicate { index: 1 },
                DeliveryFault::Corrupt { index: 2 },
                DeliveryFault::Unknown { len: 2 },
                DeliveryFault::Unknown {
                    len: w.payload(100_000).len()
                },
            ]
        );
    }
}
