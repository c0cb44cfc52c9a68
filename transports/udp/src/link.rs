//! [`UdpLink`]: a connected UDP socket.

use std::io;
use std::net::SocketAddr;

use async_trait::async_trait;
use jvpn_transport::{Link, LinkInfo, TransportError, TransportKind};
use tokio::net::UdpSocket;

use crate::recv::{check_sent, check_size};
use crate::{UdpConfig, max_datagram_size_for, recv, socket};

/// A client-side UDP link: a socket on an ephemeral local port, connected to one remote, so the
/// OS drops datagrams from anyone else.
#[derive(Debug)]
pub struct UdpLink {
    socket: UdpSocket,
    info: LinkInfo,
}

impl UdpLink {
    /// Binds an ephemeral port of `remote`'s address family and connects it to `remote`.
    ///
    /// # Errors
    /// [`TransportError::Bind`] if no local port can be bound, [`TransportError::Connect`] if
    /// the OS refuses the remote (e.g. no route).
    pub async fn connect(remote: SocketAddr, config: &UdpConfig) -> Result<Self, TransportError> {
        let local: SocketAddr = if remote.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = socket::bind(local, config)?;
        socket
            .connect(remote)
            .await
            .map_err(|source| TransportError::Connect {
                addr: remote,
                source,
            })?;
        let info = LinkInfo {
            kind: TransportKind::Udp,
            local_addr: socket.local_addr().ok(),
            remote_addr: Some(remote),
            max_datagram_size: max_datagram_size_for(remote),
            reliable: false,
        };
        Ok(Self { socket, info })
    }
}

#[async_trait]
impl Link for UdpLink {
    fn info(&self) -> LinkInfo {
        self.info.clone()
    }

    async fn send(&self, datagram: &[u8]) -> io::Result<()> {
        check_size(datagram.len(), self.info.max_datagram_size)?;
        let sent = match self.socket.send(datagram).await {
            // An earlier datagram's ICMP error, reported (and cleared) by this call instead of
            // sending: send once more, so a spoofed ICMP costs no datagram (ATTACKS.md S27).
            Err(e) if is_icmp_report(&e) => self.socket.send(datagram).await?,
            other => other?,
        };
        check_sent(sent, datagram.len())
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        recv::recv(&self.socket, buf).await
    }

    fn try_send(&self, datagram: &[u8]) -> io::Result<()> {
        check_size(datagram.len(), self.info.max_datagram_size)?;
        let sent = match self.socket.try_send(datagram) {
            Err(e) if is_icmp_report(&e) => self.socket.try_send(datagram)?,
            other => other?,
        };
        check_sent(sent, datagram.len())
    }
}

/// Errors a connected UDP socket reports for an ICMP error that arrived earlier (port or host
/// unreachable, possibly spoofed): on Linux the next `send` returns it instead of sending and
/// clears it, so the datagram of that call was not sent and one retry sends it.
fn is_icmp_report(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}
