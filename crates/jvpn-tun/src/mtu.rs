//! Inner MTU arithmetic.
//!
//! A jvpn DATA datagram carries one inner IP packet plus jvpn's framing (header + AEAD tag,
//! `jvpn_wire::DATA_OVERHEAD`, 32 bytes today). The transport says how large one datagram may
//! be (`LinkInfo::max_datagram_size`, already net of its own IP/UDP/QUIC headers). So:
//!
//! ```text
//! inner MTU = max_datagram_size - overhead
//! e.g. UDP over a 1500-byte IPv4 path: 1500 - 20 (IPv4) - 8 (UDP) = 1472 datagram
//!      1472 - 32 (jvpn DATA) = 1440 inner MTU
//! ```
//!
//! IPv6 requires every link to carry 1280-byte packets (RFC 8200 §5); the kernel disables IPv6
//! on an interface whose MTU is lower. A configuration with IPv6 inner addresses therefore needs
//! an inner MTU of at least 1280 ([`check_mtu`] refuses it otherwise, since raising the MTU
//! above what the transport carries would silently drop large packets). IPv4 needs 68 (RFC 791).

use crate::error::TunError;

/// The smallest MTU IPv6 allows (RFC 8200 §5).
pub const IPV6_MIN_MTU: u16 = 1280;
/// The smallest MTU IPv4 allows (RFC 791).
pub const IPV4_MIN_MTU: u16 = 68;

/// The inner (TUN) MTU for a transport whose datagrams hold at most `max_datagram_size` bytes
/// when each carries `overhead` bytes of jvpn framing: `max_datagram_size - overhead`,
/// saturating at 0 and at `u16::MAX` (65535, the largest IP packet without jumbograms).
///
/// The result is not checked against the IP minimums: pass it to [`check_mtu`] (which
/// [`Tun::create`](crate::Tun::create) does) to learn whether it is usable.
pub fn mtu_for(max_datagram_size: usize, overhead: usize) -> u16 {
    u16::try_from(max_datagram_size.saturating_sub(overhead)).unwrap_or(u16::MAX)
}

/// Checks that `mtu` is usable: at least 68, and at least 1280 when IPv6 addresses are
/// configured (`ipv6`). Returns the MTU unchanged, or [`TunError::InvalidMtu`].
pub fn check_mtu(mtu: u16, ipv6: bool) -> Result<u16, TunError> {
    if ipv6 && mtu < IPV6_MIN_MTU {
        return Err(TunError::InvalidMtu {
            mtu,
            minimum: IPV6_MIN_MTU,
            why: "IPv6 needs 1280-byte packets; use a transport with larger datagrams or remove the IPv6 addresses",
        });
    }
    if mtu < IPV4_MIN_MTU {
        return Err(TunError::InvalidMtu {
            mtu,
            minimum: IPV4_MIN_MTU,
            why: "IPv4 needs 68-byte packets; the transport's datagrams are too small to carry jvpn traffic",
        });
    }
    Ok(mtu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn udp_over_ethernet_leaves_1440_bytes_inside() {
        assert_eq!(mtu_for(1472, 32), 1440);
    }

    #[test]
    fn tiny_datagrams_saturate_at_zero_and_are_refused() {
        assert_eq!(mtu_for(20, 32), 0);
        assert!(check_mtu(mtu_for(20, 32), false).is_err());
    }

    #[test]
    fn huge_datagrams_saturate_at_the_largest_ip_packet() {
        assert_eq!(mtu_for(1 << 20, 32), u16::MAX);
    }

    #[test]
    fn ipv6_needs_1280_but_ipv4_does_not() {
        let mtu = mtu_for(1300, 32);
        assert_eq!(mtu, 1268);
        assert!(matches!(
            check_mtu(mtu, true),
            Err(TunError::InvalidMtu { minimum: 1280, .. })
        ));
        assert_eq!(check_mtu(mtu, false).unwrap(), 1268);
        assert_eq!(check_mtu(1280, true).unwrap(), 1280);
    }

    proptest! {
        #[test]
        fn mtu_never_exceeds_the_datagram_minus_overhead(size in any::<usize>(), overhead in any::<usize>()) {
            let mtu = mtu_for(size, overhead);
            prop_assert!(usize::from(mtu) <= size.saturating_sub(overhead));
        }
    }
}
