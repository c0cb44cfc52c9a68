//! The UDP socket under a quinn endpoint, created with socket2 for its options.

use std::net::SocketAddr;

use jvpn_transport::TransportError;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::debug;

/// A UDP socket bound to `addr`; `[::]` is made dual-stack where the OS
/// allows.
pub(crate) fn bind(addr: SocketAddr) -> Result<std::net::UdpSocket, TransportError> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6()
        && addr.ip().is_unspecified()
        && let Err(error) = socket.set_only_v6(false)
    {
        debug!(%addr, %error, "could not make the IPv6 socket dual-stack");
    }
    // The kernel's socket buffers are left at their defaults on purpose: QUIC's congestion
    // control reacts to loss in the network (a full socket buffer included) but not to datagrams
    // quinn drops from a full application buffer, so enlarging the socket buffers (as the UDP
    // transport does) measured worse on loopback: fewer kernel drops, far more silent drops.
    socket
        .bind(&addr.into())
        .map_err(|source| TransportError::Bind { addr, source })?;
    Ok(socket.into())
}
