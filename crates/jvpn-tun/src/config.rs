//! `TunConfig`: what the TUN device should look like.

use std::net::IpAddr;

use crate::error::TunError;
use crate::mtu::check_mtu;
use crate::prefix::IpPrefix;

/// Longest interface name Linux accepts (`IFNAMSIZ` - 1).
const MAX_NAME_LEN: usize = 15;

/// The TUN device to create: name, inner addresses, MTU and the routes into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunConfig {
    /// Interface name; `None` lets the kernel pick `jvpn0`, `jvpn1`, … (pattern `jvpn%d`).
    /// A pattern with `%d` is also accepted.
    pub name: Option<String>,
    /// Inner addresses with their subnet (`10.77.0.1/24`, `fd00::1/64`). The kernel routes each
    /// address's subnet into the device by itself.
    pub addresses: Vec<IpPrefix>,
    /// Device MTU; see [`mtu_for`](crate::mtu_for). At least 1280 if any address is IPv6.
    pub mtu: u16,
    /// Allowed IPs routed into the device (host bits ignored). Never replaces an existing route:
    /// a prefix already routed elsewhere (e.g. `0.0.0.0/0` while a default route exists) is an
    /// error, not a silent hijack.
    pub routes: Vec<IpPrefix>,
}

impl TunConfig {
    /// Checks the configuration without touching the system: the name, each address, the MTU
    /// against the configured families. [`Tun::create`](crate::Tun::create) calls it first.
    pub fn validate(&self) -> Result<(), TunError> {
        if let Some(name) = &self.name {
            validate_name(name)?;
        }
        for &address in &self.addresses {
            validate_address(address)?;
        }
        let ipv6 = self.addresses.iter().any(IpPrefix::is_ipv6);
        check_mtu(self.mtu, ipv6)?;
        Ok(())
    }
}

fn validate_name(name: &str) -> Result<(), TunError> {
    let invalid = |reason| TunError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid(
            "it is empty; leave it unset to let the kernel pick one",
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("it is longer than 15 bytes"));
    }
    if name == "." || name == ".." {
        return Err(invalid("it is a reserved name"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let pattern_ok = match name.split_once('%') {
        None => true,
        Some((head, tail)) => tail.starts_with('d') && !tail[1..].contains('%') && !head.is_empty(),
    };
    if !pattern_ok || !name.replace("%d", "").chars().all(allowed) {
        return Err(invalid(
            "use only letters, digits, '-', '_' or '.', optionally with one %d for the kernel's number",
        ));
    }
    Ok(())
}

fn validate_address(address: IpPrefix) -> Result<(), TunError> {
    let ip = address.addr();
    let reason = match ip {
        _ if ip.is_unspecified() => Some("the unspecified address cannot be an interface address"),
        _ if ip.is_loopback() => Some("a loopback address cannot be a VPN address"),
        _ if ip.is_multicast() => Some("a multicast address cannot be an interface address"),
        IpAddr::V4(v4) if v4.is_broadcast() => {
            Some("the broadcast address cannot be an interface address")
        }
        _ => None,
    };
    match reason {
        Some(reason) => Err(TunError::InvalidAddress {
            address,
            device: String::new(),
            reason: reason.into(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TunConfig {
        TunConfig {
            name: Some("jvpn0".into()),
            addresses: vec!["10.77.0.2/32".parse().unwrap()],
            mtu: 1420,
            routes: vec!["10.77.0.0/24".parse().unwrap()],
        }
    }

    #[test]
    fn a_plain_ipv4_config_is_valid() {
        assert!(config().validate().is_ok());
    }

    #[test]
    fn names_are_checked_before_touching_the_system() {
        for bad in [
            "",
            "averyveryverylongname",
            "a b",
            "x/y",
            "%d",
            "a%s",
            "a%d%d",
        ] {
            let cfg = TunConfig {
                name: Some(bad.into()),
                ..config()
            };
            assert!(
                matches!(cfg.validate(), Err(TunError::InvalidName { .. })),
                "{bad:?} should be refused"
            );
        }
        for good in ["jvpn%d", "wg-test_1.0", "tun0"] {
            let cfg = TunConfig {
                name: Some(good.into()),
                ..config()
            };
            assert!(cfg.validate().is_ok(), "{good:?} should be accepted");
        }
    }

    #[test]
    fn ipv6_address_with_small_mtu_is_refused() {
        let cfg = TunConfig {
            addresses: vec!["fd00::2/128".parse().unwrap()],
            mtu: 1200,
            ..config()
        };
        assert!(matches!(
            cfg.validate(),
            Err(TunError::InvalidMtu { minimum: 1280, .. })
        ));
    }

    #[test]
    fn unusable_addresses_are_refused() {
        for bad in [
            "0.0.0.0/0",
            "127.0.0.1/8",
            "224.0.0.1/32",
            "::/0",
            "ff02::1/128",
        ] {
            let cfg = TunConfig {
                addresses: vec![bad.parse().unwrap()],
                ..config()
            };
            assert!(
                matches!(cfg.validate(), Err(TunError::InvalidAddress { .. })),
                "{bad} should be refused"
            );
        }
    }
}
