//! One inner MTU for the whole session, whatever transport carries it.
//!
//! The TUN device is created once, before any link is up, and the inner TCP connections that
//! run through it learn its MTU (their MSS) once. If the MTU followed the transport of the moment,
//! a jump from WSS (65 503-byte datagrams) to UDP (1 472) would leave every inner connection
//! sending segments the new transport cannot carry: they would stall until path MTU discovery
//! inside the tunnel noticed, which is exactly the blackout jvpn exists to avoid. So the MTU is
//! pinned to the **smallest datagram any candidate can carry** (less jvpn's overhead): every
//! transport the session may jump to carries every inner packet. `--mtu` may lower it, never
//! raise it above what a candidate carries.
//!
//! What a candidate "can carry" is known before connecting, from its kind and address: UDP the
//! 1500-byte Ethernet MTU less the IP and UDP headers (IPv4 1472; IPv6, or a name that may
//! resolve to IPv6, 1452), QUIC the datagram every QUIC connection is guaranteed
//! ([`jvpn_transport_quic::GUARANTEED_DATAGRAM_SIZE`], QUIC's 1200-byte minimum less its headers),
//! WSS one WebSocket message ([`jvpn_transport_wss::MAX_DATAGRAM`]). A custom transport says
//! nothing before it connects, so it does not take part.

use std::net::Ipv4Addr;

use jvpn_transport::{TransportKind, TransportUrl};
use jvpn_wire::DATA_OVERHEAD;

/// Why no inner MTU fits the candidates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MtuError {
    /// The MTU asked for is larger than what one candidate carries. Lower `--mtu` to at most
    /// `max`, or drop that candidate.
    #[error(
        "--mtu {requested} is larger than {url} can carry (at most {max} inner bytes): use \
         --mtu {max} or less, or leave that transport out"
    )]
    TooLarge {
        /// The MTU asked for.
        requested: u16,
        /// The candidate that cannot carry it.
        url: String,
        /// The largest inner MTU that candidate carries.
        max: u16,
    },
}

/// The largest jvpn datagram `url`'s transport is known to carry, before connecting; `None` for
/// custom transports.
#[must_use]
pub fn datagram_floor(url: &TransportUrl) -> Option<usize> {
    match url.kind {
        TransportKind::Udp => Some(if url.host.parse::<Ipv4Addr>().is_ok() {
            1500 - 20 - 8
        } else {
            // An IPv6 address, or a name that may resolve to one.
            1500 - 40 - 8
        }),
        TransportKind::Quic => Some(quic_floor()),
        TransportKind::Wss => Some(wss_floor()),
        _ => None,
    }
}

#[cfg(feature = "quic")]
fn quic_floor() -> usize {
    jvpn_transport_quic::GUARANTEED_DATAGRAM_SIZE
}

#[cfg(not(feature = "quic"))]
fn quic_floor() -> usize {
    // QUIC's 1200-byte minimum less its largest short header, AEAD tag and DATAGRAM frame header.
    1200 - (1 + 20 + 4 + 16) - 9
}

#[cfg(feature = "wss")]
fn wss_floor() -> usize {
    jvpn_transport_wss::MAX_DATAGRAM
}

#[cfg(not(feature = "wss"))]
fn wss_floor() -> usize {
    65_535
}

/// The inner MTU `url` carries, `None` when its transport says nothing before connecting.
#[must_use]
pub fn inner_mtu_of(url: &TransportUrl) -> Option<u16> {
    datagram_floor(url).map(|size| jvpn_tun::mtu_for(size, DATA_OVERHEAD))
}

/// The session's inner MTU: `requested` if every candidate carries it, else an error naming the
/// candidate that does not; without `requested`, the smallest any candidate carries. With no
/// candidate that says (only custom transports), `fallback` — what the first link reported.
///
/// # Errors
/// [`MtuError::TooLarge`] when `requested` exceeds what some candidate carries.
pub fn session_mtu(
    candidates: &[TransportUrl],
    requested: Option<u16>,
    fallback: impl FnOnce() -> u16,
) -> Result<u16, MtuError> {
    let smallest = candidates
        .iter()
        .filter_map(|url| inner_mtu_of(url).map(|mtu| (mtu, url)))
        .min_by_key(|(mtu, _)| *mtu);
    match (requested, smallest) {
        (Some(requested), Some((max, url))) if requested > max => Err(MtuError::TooLarge {
            requested,
            url: url.to_string(),
            max,
        }),
        (Some(requested), _) => Ok(requested),
        (None, Some((mtu, _))) => Ok(mtu),
        (None, None) => Ok(fallback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<TransportUrl> {
        list.iter()
            .map(|u| u.parse().expect("a valid URL"))
            .collect()
    }

    #[test]
    fn the_pinned_mtu_is_the_smallest_any_candidate_carries() {
        let udp_only = urls(&["udp://10.0.0.1:51820"]);
        let all = urls(&[
            "wss://10.0.0.1:443/jvpn",
            "udp://10.0.0.1:51820",
            "quic://10.0.0.1:443",
        ]);

        assert_eq!(session_mtu(&udp_only, None, || 9000), Ok(1440));
        assert_eq!(
            session_mtu(&all, None, || 9000),
            Ok(inner_mtu_of(&all[2]).expect("quic has a floor"))
        );
        assert!(inner_mtu_of(&all[2]) < inner_mtu_of(&all[1]));
    }

    #[test]
    fn a_udp_name_is_pinned_for_ipv6_because_it_may_resolve_to_it() {
        let by_name = urls(&["udp://vpn.example.com:51820"]);
        let by_v6 = urls(&["udp://[::1]:51820"]);

        assert_eq!(session_mtu(&by_name, None, || 0), Ok(1420));
        assert_eq!(session_mtu(&by_v6, None, || 0), Ok(1420));
    }

    #[test]
    fn a_requested_mtu_above_a_candidate_is_refused_naming_it() {
        let list = urls(&["wss://10.0.0.1:443/jvpn", "udp://10.0.0.1:51820"]);

        let error = session_mtu(&list, Some(1500), || 0).unwrap_err();

        assert_eq!(
            error,
            MtuError::TooLarge {
                requested: 1500,
                url: "udp://10.0.0.1:51820".into(),
                max: 1440
            }
        );
        assert!(error.to_string().contains("--mtu 1440 or less"), "{error}");
        assert_eq!(session_mtu(&list, Some(1280), || 0), Ok(1280));
    }

    #[test]
    fn only_custom_candidates_fall_back_to_the_first_link() {
        let list = vec![TransportUrl::parse_custom("pigeon://10.0.0.1:7").expect("custom URL")];

        assert_eq!(session_mtu(&list, None, || 1234), Ok(1234));
    }
}
