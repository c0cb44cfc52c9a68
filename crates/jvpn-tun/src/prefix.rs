//! `IpPrefix`: an IP address with a prefix length, e.g. `10.77.0.2/32` or `fd00::2/128`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 address with a prefix length (`10.77.0.1/24`, `fd00::1/64`).
///
/// The address keeps its host bits: as an interface address `10.77.0.1/24` means "address
/// 10.77.0.1 on the subnet 10.77.0.0/24". [`IpPrefix::network`] clears them, which is what a
/// route or an [`AllowedIps`](crate::AllowedIps) entry uses.
///
/// Invariant: `prefix_len() <= 32` for IPv4 and `<= 128` for IPv6 (checked by [`IpPrefix::new`]
/// and `FromStr`, so every accessor is total).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

/// Why a prefix could not be built or parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixError {
    /// The text has no `/`: write the prefix length too, e.g. `10.77.0.2/32` or `fd00::2/128`.
    #[error(
        "{input:?} has no prefix length: write ADDRESS/LENGTH, e.g. 10.77.0.2/32 or fd00::2/128"
    )]
    MissingLength {
        /// The text as given.
        input: String,
    },
    /// The part before `/` is not an IPv4 or IPv6 address: fix the address.
    #[error("{input:?}: {addr:?} is not an IPv4 or IPv6 address (e.g. 10.77.0.2/32, fd00::2/128)")]
    BadAddress {
        /// The text as given.
        input: String,
        /// The part before the `/`.
        addr: String,
    },
    /// The part after `/` is not a number from 0 to 255: write a decimal prefix length.
    #[error(
        "{input:?}: prefix length {len:?} is not a decimal number from 0 to 32 (IPv4) or 128 (IPv6)"
    )]
    BadLength {
        /// The text as given.
        input: String,
        /// The part after the `/`.
        len: String,
    },
    /// The prefix length is larger than the address has bits (32 for IPv4, 128 for IPv6).
    #[error("prefix length /{len} is too long for {addr}: at most /{max}")]
    LengthTooLong {
        /// The address.
        addr: IpAddr,
        /// The length given.
        len: u8,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
}

impl IpPrefix {
    /// Builds a prefix; fails if `len` exceeds the address's bit count (32 or 128).
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, PrefixError> {
        let max = max_len(addr);
        if len > max {
            return Err(PrefixError::LengthTooLong { addr, len, max });
        }
        Ok(Self { addr, len })
    }

    /// A host prefix (`/32` or `/128`) for one address.
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            len: max_len(addr),
        }
    }

    /// The address as given, host bits included.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True for an IPv6 prefix.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// The same prefix with the host bits cleared (`10.77.0.1/24` → `10.77.0.0/24`).
    pub fn network(&self) -> Self {
        let addr = match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(self.len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(self.len))),
        };
        Self {
            addr,
            len: self.len,
        }
    }

    /// True if `ip` is inside this prefix; an IPv4 prefix never contains an IPv6 address and
    /// vice versa (IPv4-mapped IPv6 addresses are IPv6 here).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.len);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.len);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// 32 for IPv4, 128 for IPv6.
fn max_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The netmask of an IPv4 prefix length (`len` is at most 32 by the type's invariant; larger
/// values saturate to all ones).
pub(crate) fn mask_v4(len: u8) -> u32 {
    // `checked_shl` because a shift by 32 is an overflow, and /0 must give an empty mask.
    u32::MAX
        .checked_shl(32u32.saturating_sub(u32::from(len)))
        .unwrap_or(0)
}

/// The netmask of an IPv6 prefix length (`len` is at most 128; larger values saturate).
pub(crate) fn mask_v6(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128u32.saturating_sub(u32::from(len)))
        .unwrap_or(0)
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((addr_text, len_text)) = s.trim().split_once('/') else {
            return Err(PrefixError::MissingLength { input: s.into() });
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| PrefixError::BadAddress {
            input: s.into(),
            addr: addr_text.into(),
        })?;
        let all_digits = !len_text.is_empty() && len_text.bytes().all(|b| b.is_ascii_digit());
        let len: u8 = len_text
            .parse()
            .ok()
            .filter(|_| all_digits)
            .ok_or_else(|| PrefixError::BadLength {
                input: s.into(),
                len: len_text.into(),
            })?;
        Self::new(addr, len)
    }
}

impl From<IpAddr> for IpPrefix {
    fn from(addr: IpAddr) -> Self {
        Self::host(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ipv4_and_ipv6_prefixes_parse_and_display_identically() {
        for text in [
            "10.77.0.2/32",
            "fd00::2/128",
            "0.0.0.0/0",
            "::/0",
            "10.77.0.1/24",
        ] {
            let prefix: IpPrefix = text.parse().expect(text);
            assert_eq!(prefix.to_string(), text);
        }
    }

    #[test]
    fn network_clears_host_bits() {
        let prefix: IpPrefix = "10.77.3.9/16".parse().unwrap();
        assert_eq!(prefix.network().to_string(), "10.77.0.0/16");
        let prefix: IpPrefix = "fd00:1:2:3::9/48".parse().unwrap();
        assert_eq!(prefix.network().to_string(), "fd00:1:2::/48");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let missing = "10.77.0.2".parse::<IpPrefix>().unwrap_err();
        assert!(matches!(missing, PrefixError::MissingLength { .. }));
        assert!(missing.to_string().contains("ADDRESS/LENGTH"));

        let bad_addr = "10.77.0.300/32".parse::<IpPrefix>().unwrap_err();
        assert!(matches!(bad_addr, PrefixError::BadAddress { .. }));

        let bad_len = "10.77.0.2/+3".parse::<IpPrefix>().unwrap_err();
        assert!(matches!(bad_len, PrefixError::BadLength { .. }));

        let too_long = "10.77.0.2/33".parse::<IpPrefix>().unwrap_err();
        assert_eq!(
            too_long,
            PrefixError::LengthTooLong {
                addr: "10.77.0.2".parse().unwrap(),
                len: 33,
                max: 32
            }
        );
        assert!("fd00::2/129".parse::<IpPrefix>().is_err());
    }

    #[test]
    fn contains_respects_family_and_mask() {
        let v4: IpPrefix = "10.77.0.0/24".parse().unwrap();
        assert!(v4.contains("10.77.0.200".parse().unwrap()));
        assert!(!v4.contains("10.77.1.1".parse().unwrap()));
        assert!(!v4.contains("::ffff:10.77.0.1".parse().unwrap()));
        let all: IpPrefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,60}") {
            let _ = text.parse::<IpPrefix>();
        }

        #[test]
        fn valid_prefixes_round_trip_through_text(bits in any::<u128>(), len in 0u8..=128, v6 in any::<bool>()) {
            let (addr, len) = if v6 {
                (IpAddr::V6(Ipv6Addr::from(bits)), len)
            } else {
                (IpAddr::V4(Ipv4Addr::from(bits as u32)), len % 33)
            };
            let prefix = IpPrefix::new(addr, len).unwrap();
            prop_assert_eq!(prefix.to_string().parse::<IpPrefix>().unwrap(), prefix);
            prop_assert!(prefix.contains(addr));
        }
    }
}
