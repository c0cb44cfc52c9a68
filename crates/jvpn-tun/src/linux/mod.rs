//! Linux: the device comes from tun-rs (`/dev/net/tun`, `TUNSETIFF`), addresses and routes are
//! set over rtnetlink ([`netlink`]).

mod netlink;

use std::collections::BTreeSet;
use std::io;

use netlink::Netlink;

use crate::config::TunConfig;
use crate::error::TunError;
use crate::prefix::IpPrefix;

/// The name pattern used when the configuration leaves the name to the kernel.
const DEFAULT_NAME: &str = "jvpn%d";

/// A configured TUN device on Linux.
pub(crate) struct Device {
    pub(crate) device: tun_rs::AsyncDevice,
    pub(crate) name: String,
}

pub(crate) fn create(config: &TunConfig) -> Result<Device, TunError> {
    let mut netlink = Netlink::open().map_err(|e| io_error("opening a netlink socket", e))?;
    let requested = config.name.as_deref().unwrap_or(DEFAULT_NAME);
    // TUNSETIFF on the name of an existing *persistent* TUN device would silently attach to it
    // (and then dropping the `Tun` would not remove it), so a taken name is refused up front.
    if !requested.contains('%') {
        let exists = netlink
            .link_exists(requested)
            .map_err(|e| io_error("looking up the interface name", e))?;
        if exists {
            return Err(TunError::NameInUse {
                name: requested.to_owned(),
            });
        }
    }

    let device = tun_rs::DeviceBuilder::new()
        .name(requested)
        .mtu(config.mtu)
        .enable(true)
        .build_async()
        .map_err(|e| creation_error(requested, e))?;
    // From here on, any early return drops `device`, which closes the fd and so makes the
    // kernel delete the (non-persistent) interface with its addresses and routes.
    let name = device
        .name()
        .map_err(|e| io_error("reading the interface name", e))?;
    let index = device
        .if_index()
        .map_err(|e| io_error("reading the interface index", e))?;

    for &address in &config.addresses {
        netlink
            .add_address(index, address)
            .map_err(|e| address_error(&name, address, e))?;
    }

    // The kernel already routes each address's own subnet to the device (a "proto kernel"
    // route); adding the same prefix again would fail with EEXIST.
    let connected: BTreeSet<IpPrefix> = config.addresses.iter().map(IpPrefix::network).collect();
    let routes: BTreeSet<IpPrefix> = config.routes.iter().map(IpPrefix::network).collect();
    for &route in routes.difference(&connected) {
        netlink
            .add_route(index, route)
            .map_err(|e| route_error(&name, route, e))?;
    }

    tracing::info!(
        device = %name,
        mtu = config.mtu,
        addresses = config.addresses.len(),
        routes = routes.len(),
        "TUN device up"
    );
    Ok(Device { device, name })
}

fn io_error(operation: &'static str, source: io::Error) -> TunError {
    if is_permission_error(&source) {
        return TunError::PermissionDenied {
            detail: format!("{operation}: {source}"),
        };
    }
    TunError::Io { operation, source }
}

fn is_permission_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}

fn creation_error(name: &str, source: io::Error) -> TunError {
    match source.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => TunError::PermissionDenied {
            detail: format!("creating TUN device {name:?}: {source}"),
        },
        Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => TunError::NoTunDevice { source },
        // EBUSY: a TUN device of that name is attached elsewhere; EEXIST: the name is taken.
        Some(libc::EBUSY | libc::EEXIST) => TunError::NameInUse { name: name.into() },
        // EINVAL from TUNSETIFF: a non-TUN interface already has this name.
        Some(libc::EINVAL) if !name.contains('%') => TunError::NameInUse { name: name.into() },
        _ => TunError::Io {
            operation: "creating the TUN device",
            source,
        },
    }
}

fn address_error(device: &str, address: IpPrefix, source: io::Error) -> TunError {
    let hint = match source.raw_os_error() {
        Some(libc::EACCES) if address.is_ipv6() => {
            " (IPv6 is probably disabled: sysctl -w net.ipv6.conf.all.disable_ipv6=0)"
        }
        Some(libc::EPERM) => return io_error("adding an address", source),
        Some(libc::EEXIST) => " (the address is already configured)",
        _ => "",
    };
    TunError::InvalidAddress {
        address,
        device: device.into(),
        reason: format!("{source}{hint}"),
    }
}

fn route_error(device: &str, route: IpPrefix, source: io::Error) -> TunError {
    if matches!(source.raw_os_error(), Some(libc::EPERM)) {
        return io_error("adding a route", source);
    }
    let hint = match source.raw_os_error() {
        Some(libc::EEXIST) => format!(
            " (another route for {route} exists: see `ip route show {route}`; remove it or narrow the allowed IPs)"
        ),
        _ => String::new(),
    };
    TunError::Route {
        route,
        device: device.into(),
        reason: format!("{source}{hint}"),
    }
}
