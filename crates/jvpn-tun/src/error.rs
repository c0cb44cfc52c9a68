//! `TunError`: why a TUN device could not be set up, and what to do about it.

use std::io;

use crate::prefix::IpPrefix;

/// The fix printed for a missing capability.
pub(crate) const CAP_HINT: &str =
    "run as root or grant CAP_NET_ADMIN: sudo setcap cap_net_admin+ep $(which jvpn)";

/// Why [`Tun::create`](crate::Tun::create) or [`capability_check`](crate::capability_check)
/// failed. Every message names the cause and the fix; none contains secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TunError {
    /// The process may not create network devices or change addresses and routes (it lacks
    /// CAP_NET_ADMIN). Run as root, or grant the capability to the binary.
    #[error("creating a TUN device needs CAP_NET_ADMIN ({detail}): {CAP_HINT}")]
    PermissionDenied {
        /// What was refused.
        detail: String,
    },
    /// `/dev/net/tun` is missing or cannot be opened: the `tun` kernel module is not loaded (or,
    /// in a container, the device node was not passed in). Load it with `modprobe tun`.
    #[error("/dev/net/tun is not usable ({source}): load the tun module: modprobe tun")]
    NoTunDevice {
        /// The error from opening the device node.
        #[source]
        source: io::Error,
    },
    /// A network interface with the requested name already exists. Choose another name, leave
    /// the name unset so the kernel picks one, or remove the other device.
    #[error(
        "interface name {name:?} is already in use: choose another name or remove the other device (ip link del {name})"
    )]
    NameInUse {
        /// The requested name.
        name: String,
    },
    /// The requested interface name is not valid on this system (too long, empty, or with
    /// forbidden characters). Use at most 15 bytes of letters, digits, `-`, `_` or `.`.
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidName {
        /// The requested name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An inner address was refused (by validation or by the kernel). Fix the address in the
    /// configuration; the message says why it was refused.
    #[error("cannot set address {address} on {device}: {reason}")]
    InvalidAddress {
        /// The address as configured.
        address: IpPrefix,
        /// The interface name (empty if the device was not created yet).
        device: String,
        /// Why it was refused, with the fix when one is known.
        reason: String,
    },
    /// A route for an allowed-IPs prefix could not be added to the device. Usually another
    /// route for the same prefix exists (`ip route show PREFIX`): remove it or narrow the
    /// allowed IPs.
    #[error("cannot add route {route} dev {device}: {reason}")]
    Route {
        /// The route's prefix (network form).
        route: IpPrefix,
        /// The interface name.
        device: String,
        /// Why it failed, with the fix when one is known.
        reason: String,
    },
    /// The MTU is below what the configured address families need (68 for IPv4, 1280 for IPv6).
    /// Use a transport with larger datagrams, or drop the IPv6 addresses.
    #[error("MTU {mtu} is below the minimum of {minimum}: {why}")]
    InvalidMtu {
        /// The MTU requested.
        mtu: u16,
        /// The minimum required.
        minimum: u16,
        /// Which rule requires it, and what to do.
        why: &'static str,
    },
    /// `Tun::create` was called outside a tokio runtime; the device registers with the runtime's
    /// reactor. Call it from within a tokio runtime (e.g. inside `#[tokio::main]`).
    #[error(
        "Tun::create must be called inside a tokio runtime (the device registers with its reactor)"
    )]
    NoRuntime,
    /// TUN devices are not supported on this platform by jvpn yet (Linux only).
    #[error("TUN devices are not supported on {platform} by jvpn yet (Linux only)")]
    Unsupported {
        /// The target OS.
        platform: &'static str,
    },
    /// Another system call failed while setting the device up; the message names the step.
    #[error("{operation} failed: {source}")]
    Io {
        /// The step that failed.
        operation: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl TunError {
    /// True when the fix is to gain CAP_NET_ADMIN (run as root or `setcap`).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::PermissionDenied { .. })
    }

    /// True when `/dev/net/tun` is missing (`modprobe tun`).
    pub fn is_no_tun_device(&self) -> bool {
        matches!(self, Self::NoTunDevice { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_error_tells_how_to_grant_the_capability() {
        let err = TunError::PermissionDenied {
            detail: "TUNSETIFF: Operation not permitted".into(),
        };
        let text = err.to_string();
        assert!(text.contains("sudo setcap cap_net_admin+ep $(which jvpn)"));
        assert!(err.is_permission_denied());
    }

    #[test]
    fn missing_tun_device_tells_to_load_the_module() {
        let err = TunError::NoTunDevice {
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert!(err.to_string().contains("modprobe tun"));
        assert!(err.is_no_tun_device());
    }
}
