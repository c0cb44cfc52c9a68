//! Socket creation: socket2 for the options, then tokio.

use std::io;
use std::net::SocketAddr;

use jvpn_transport::TransportError;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tracing::debug;

use crate::UdpConfig;

/// Creates a non-blocking UDP socket bound to `addr` with the configured buffer sizes.
///
/// Must run within a tokio runtime (tokio registers the socket with its reactor).
pub(crate) fn bind(addr: SocketAddr, config: &UdpConfig) -> Result<UdpSocket, TransportError> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // `[::]` should mean "every address", IPv4 included, whatever the OS default
        // (`net.ipv6.bindv6only`) says. Best effort: some systems have no dual stack.
        if let Err(error) = socket.set_only_v6(false) {
            debug!(%addr, %error, "could not make the IPv6 socket dual-stack; IPv4 peers cannot reach it");
        }
    }
    set_buffers(&socket, addr, config);
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .map_err(|source| TransportError::Bind { addr, source })?;
    Ok(UdpSocket::from_std(socket.into())?)
}

/// Asks for the configured buffer sizes; the OS may grant less, which only costs throughput
/// under bursts, so it is logged and not an error.
fn set_buffers(socket: &Socket, addr: SocketAddr, config: &UdpConfig) {
    if let Err(error) = socket.set_recv_buffer_size(config.recv_buffer) {
        debug!(%addr, %error, "could not set SO_RCVBUF");
    }
    if let Err(error) = socket.set_send_buffer_size(config.send_buffer) {
        debug!(%addr, %error, "could not set SO_SNDBUF");
    }
    // Linux reports twice the value it granted (the doubling covers its bookkeeping), so a
    // value below the request means the request was clamped (raise net.core.rmem_max / wmem_max).
    report_clamp(
        addr,
        "SO_RCVBUF",
        config.recv_buffer,
        socket.recv_buffer_size(),
    );
    report_clamp(
        addr,
        "SO_SNDBUF",
        config.send_buffer,
        socket.send_buffer_size(),
    );
}

fn report_clamp(addr: SocketAddr, option: &str, requested: usize, granted: io::Result<usize>) {
    match granted {
        Ok(granted) if granted < requested => {
            debug!(%addr, option, requested, granted, "the OS clamped the socket buffer size");
        }
        Ok(_) => {}
        Err(error) => debug!(%addr, option, %error, "could not read the socket buffer size"),
    }
}
