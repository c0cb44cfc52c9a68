//! Reading the source and destination of a raw IP packet as it comes from a TUN device.
//!
//! Pure functions over `&[u8]`: they check the version nibble and every length before reading,
//! and return `None` (never panic) on anything that is not a well-formed IPv4 or IPv6 header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Smallest IPv4 header (IHL = 5).
const IPV4_MIN_HEADER: usize = 20;
/// Fixed IPv6 header.
const IPV6_HEADER: usize = 40;

/// The destination address of an IPv4 or IPv6 packet, or `None` if `packet` is not one.
///
/// Checks: the version nibble is 4 or 6; for IPv4 the header length (IHL ≥ 5) and the total
/// length fit in `packet` and the total length covers the header; for IPv6 the 40-byte header
/// and the payload length fit in `packet`. Trailing bytes after the IP datagram are tolerated.
pub fn packet_destination(packet: &[u8]) -> Option<IpAddr> {
    addresses(packet).map(|(_, dst)| dst)
}

/// The source address of an IPv4 or IPv6 packet, or `None` if `packet` is not one (same checks
/// as [`packet_destination`]).
pub fn packet_source(packet: &[u8]) -> Option<IpAddr> {
    addresses(packet).map(|(src, _)| src)
}

/// `(source, destination)` of a checked IPv4 or IPv6 packet.
fn addresses(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match packet.first()? >> 4 {
        4 => ipv4_addresses(packet),
        6 => ipv6_addresses(packet),
        _ => None,
    }
}

fn ipv4_addresses(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let header: &[u8; IPV4_MIN_HEADER] = packet.get(..IPV4_MIN_HEADER)?.try_into().ok()?;
    let header_len = usize::from(header[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if header_len < IPV4_MIN_HEADER || total_len < header_len || total_len > packet.len() {
        return None;
    }
    let src = Ipv4Addr::new(header[12], header[13], header[14], header[15]);
    let dst = Ipv4Addr::new(header[16], header[17], header[18], header[19]);
    Some((IpAddr::V4(src), IpAddr::V4(dst)))
}

fn ipv6_addresses(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let header: &[u8; IPV6_HEADER] = packet.get(..IPV6_HEADER)?.try_into().ok()?;
    let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    // A payload length of 0 with a Hop-by-Hop jumbo option is legal but cannot come through a
    // TUN of MTU < 65536; it still passes here because the header itself is complete.
    if IPV6_HEADER + payload_len > packet.len() {
        return None;
    }
    let src: [u8; 16] = header[8..24].try_into().ok()?;
    let dst: [u8; 16] = header[24..40].try_into().ok()?;
    Some((
        IpAddr::V6(Ipv6Addr::from(src)),
        IpAddr::V6(Ipv6Addr::from(dst)),
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A minimal IPv4 header (no options) followed by `payload` bytes; checksum left at 0
    /// because the parser does not check it.
    pub(crate) fn ipv4_packet(src: [u8; 4], dst: [u8; 4], payload: usize) -> Vec<u8> {
        let total = u16::try_from(20 + payload).unwrap();
        let mut p = vec![0u8; 20 + payload];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p
    }

    fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, payload: usize) -> Vec<u8> {
        let mut p = vec![0u8; 40 + payload];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&u16::try_from(payload).unwrap().to_be_bytes());
        p[6] = 17;
        p[7] = 64;
        p[8..24].copy_from_slice(&src.octets());
        p[24..40].copy_from_slice(&dst.octets());
        p
    }

    #[test]
    fn ipv4_source_and_destination_are_read() {
        let packet = ipv4_packet([10, 77, 0, 2], [10, 77, 0, 1], 8);
        assert_eq!(packet_source(&packet), Some("10.77.0.2".parse().unwrap()));
        assert_eq!(
            packet_destination(&packet),
            Some("10.77.0.1".parse().unwrap())
        );
    }

    #[test]
    fn ipv6_source_and_destination_are_read() {
        let src: Ipv6Addr = "fd00::2".parse().unwrap();
        let dst: Ipv6Addr = "fd00::1".parse().unwrap();
        let packet = ipv6_packet(src, dst, 8);
        assert_eq!(packet_source(&packet), Some(IpAddr::V6(src)));
        assert_eq!(packet_destination(&packet), Some(IpAddr::V6(dst)));
    }

    #[test]
    fn truncated_packets_are_rejected() {
        let v4 = ipv4_packet([10, 0, 0, 1], [10, 0, 0, 2], 8);
        assert_eq!(packet_destination(&v4[..v4.len() - 1]), None);
        assert_eq!(packet_destination(&v4[..19]), None);
        let v6 = ipv6_packet(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, 8);
        assert_eq!(packet_destination(&v6[..v6.len() - 1]), None);
        assert_eq!(packet_destination(&v6[..39]), None);
        assert_eq!(packet_destination(&[]), None);
    }

    #[test]
    fn bad_version_and_bad_ihl_are_rejected() {
        let mut packet = ipv4_packet([10, 0, 0, 1], [10, 0, 0, 2], 8);
        packet[0] = 0x55;
        assert_eq!(packet_destination(&packet), None);
        packet[0] = 0x44; // IHL 4 words = 16 bytes < 20
        assert_eq!(packet_destination(&packet), None);
        packet[0] = 0x4f; // IHL 60 bytes > total length 28
        assert_eq!(packet_destination(&packet), None);
    }

    #[test]
    fn trailing_bytes_after_the_datagram_are_tolerated() {
        let mut packet = ipv4_packet([10, 0, 0, 1], [10, 0, 0, 2], 8);
        packet.extend_from_slice(&[0xaa; 5]);
        assert_eq!(
            packet_destination(&packet),
            Some("10.0.0.2".parse().unwrap())
        );
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = packet_destination(&bytes);
            let _ = packet_source(&bytes);
        }

        #[test]
        fn any_bytes_with_an_ip_version_nibble_never_panic(
            v6 in any::<bool>(),
            mut bytes in proptest::collection::vec(any::<u8>(), 1..128),
        ) {
            bytes[0] = (bytes[0] & 0x0f) | if v6 { 0x60 } else { 0x40 };
            if let Some(dst) = packet_destination(&bytes) {
                prop_assert_eq!(dst.is_ipv6(), v6);
            }
        }

        #[test]
        fn built_ipv4_packets_yield_their_addresses(src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), payload in 0usize..64) {
            let packet = ipv4_packet(src, dst, payload);
            prop_assert_eq!(packet_source(&packet), Some(IpAddr::V4(src.into())));
            prop_assert_eq!(packet_destination(&packet), Some(IpAddr::V4(dst.into())));
        }
    }
}
