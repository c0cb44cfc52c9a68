//! `capability_check`: can this process create a TUN device here?

use crate::error::TunError;

/// Tells whether a TUN device can be created by this process, without creating one.
///
/// On Linux: `/dev/net/tun` must exist and open read-write, and the process must hold
/// CAP_NET_ADMIN in its effective set (read from `/proc/self/status`; if that file is
/// unreadable the capability is assumed, and `Tun::create` will report the real answer).
/// Elsewhere: [`TunError::Unsupported`].
pub fn capability_check() -> Result<(), TunError> {
    imp::check()
}

/// Bit of CAP_NET_ADMIN in the capability sets (linux/capability.h).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const CAP_NET_ADMIN: u32 = 12;

/// Whether a `/proc/<pid>/status` text grants CAP_NET_ADMIN in `CapEff`; `None` if the line is
/// missing or malformed.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn cap_net_admin_in_status(status: &str) -> Option<bool> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?
        .trim();
    let bits = u64::from_str_radix(hex, 16).ok()?;
    Some(bits & (1 << CAP_NET_ADMIN) != 0)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::OpenOptions;
    use std::io;

    use super::cap_net_admin_in_status;
    use crate::error::TunError;

    pub(super) fn check() -> Result<(), TunError> {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
        {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(TunError::PermissionDenied {
                    detail: format!("opening /dev/net/tun: {e}"),
                });
            }
            Err(source) => return Err(TunError::NoTunDevice { source }),
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if cap_net_admin_in_status(&status) == Some(false) {
            return Err(TunError::PermissionDenied {
                detail: "the process's effective capabilities lack CAP_NET_ADMIN".into(),
            });
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use crate::error::TunError;

    pub(super) fn check() -> Result<(), TunError> {
        Err(TunError::Unsupported {
            platform: std::env::consts::OS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_eff_with_bit_12_grants_net_admin() {
        let root = "Name:\tjvpn\nCapEff:\t000001ffffffffff\n";
        let user = "Name:\tjvpn\nCapEff:\t0000000000000000\n";
        let setcap = "CapEff:\t0000000000001000\n";
        assert_eq!(cap_net_admin_in_status(root), Some(true));
        assert_eq!(cap_net_admin_in_status(user), Some(false));
        assert_eq!(cap_net_admin_in_status(setcap), Some(true));
    }

    #[test]
    fn missing_or_garbled_cap_eff_is_unknown() {
        assert_eq!(cap_net_admin_in_status("Name:\tx\n"), None);
        assert_eq!(cap_net_admin_in_status("CapEff:\tzz\n"), None);
    }
}
