//! The TUN device and routes for jvpn, with the packet helpers the data plane needs.
//!
//! # What it does
//!
//! - [`Tun`]: creates a TUN interface from a [`TunConfig`] (name, IPv4/IPv6 addresses, MTU,
//!   routes for the allowed IPs), brings it up, and moves whole IP packets with
//!   [`Tun::recv`] / [`Tun::send`] without allocating. Dropping it removes the interface and,
//!   with it, its addresses and routes.
//! - [`mtu_for`] / [`check_mtu`]: the inner MTU from the transport's datagram size minus jvpn's
//!   framing, and whether it suits the configured address families.
//! - [`packet_source`] / [`packet_destination`]: the addresses of a raw IPv4/IPv6 packet,
//!   checked, never panicking.
//! - [`AllowedIps`]: a deterministic longest-prefix-match table from prefixes to any value (a
//!   peer handle), which the server uses to pick the peer for an inner packet.
//! - [`capability_check`]: whether this process can create a TUN device at all, with an error
//!   that says how to fix it ([`TunError`]).
//!
//! # What it does not do
//!
//! - No encryption, sessions or transports: it only sees inner IP packets.
//! - No DNS, firewall, NAT or "full tunnel" default-route juggling (no route to the server
//!   outside the tunnel, no `0/1 + 128/1` split); an existing route is never replaced.
//! - Linux only for now: elsewhere [`Tun::create`] and [`capability_check`] return
//!   [`TunError::Unsupported`] (the pure helpers work everywhere).
//! - No multi-queue or GSO/GRO offload yet: one packet per call.
//!
//! Addresses and routes are set over rtnetlink at setup only; nothing shells out and nothing
//! touches the system per packet.

mod allowed_ips;
mod capability;
mod config;
mod error;
#[cfg(target_os = "linux")]
mod linux;
mod mtu;
mod packet;
mod prefix;
mod tun;

pub use allowed_ips::AllowedIps;
pub use capability::capability_check;
pub use config::TunConfig;
pub use error::TunError;
pub use mtu::{IPV4_MIN_MTU, IPV6_MIN_MTU, check_mtu, mtu_for};
pub use packet::{packet_destination, packet_source};
pub use prefix::{IpPrefix, PrefixError};
pub use tun::Tun;
