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
        let sent = self.socket.send(datagram).await?;
        check_sent(sent, datagram.len())
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        recv::recv(&self.socket, buf).await
    }

    fn try_send(&self, datagram: &[u8]) -> io::Result<()> {
        check_size(datagram.len(), self.info.max_datagram_size)?;
        let sent = self.socket.try_send(datagram)?;
        check_sent(sent, datagram.len())
    }
}
