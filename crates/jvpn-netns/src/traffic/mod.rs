//! Measured inner traffic for the transport-jump scenarios, the blackout benchmark and the demo.
//!
//! - [`udp`]: a fixed-interval UDP stream (one sequence-numbered datagram every few milliseconds)
//!   and a receiver that records every inter-arrival gap above a threshold. The largest gap around
//!   an event (a firewall starts dropping UDP, a path disappears) is the **blackout**: the time from
//!   the last inner packet before the event to the first one after it, as an application sees it.
//! - [`tcp`]: a checksummed bulk TCP transfer whose receiver reports its progress while it runs and
//!   the **longest receive stall** (the longest time between two reads that returned data).
//!
//! Sockets are created by the caller, usually inside a namespace with
//! [`Namespace::run_in`](crate::Namespace::run_in) (a socket stays in the namespace it was created
//! in), and handed to these helpers, which run them on their own threads. Every blocking call has a
//! short timeout and every loop ends at a [`Deadline`](crate::Deadline) or when told to stop.
//!
//! Not here: throughput measurement (use iperf3), several concurrent streams per helper.

pub mod tcp;
pub mod udp;

/// Deterministic bytes from a seed (splitmix64): fast, and identical on every machine, so both ends
/// of a transfer (and `jvpn-xfer`) agree on the data without sending a copy.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds of `d` as a float, for reports.
pub fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_bytes_in_chunks_of_whole_words() {
        let mut whole = vec![0u8; 37];
        SplitMix(9).fill(&mut whole);
        let mut a = SplitMix(9);
        let mut first = vec![0u8; 16];
        let mut second = vec![0u8; 21];
        a.fill(&mut first);
        a.fill(&mut second);

        assert_eq!(&whole[..16], &first[..]);
        assert_eq!(&whole[16..], &second[..]);
    }
}
