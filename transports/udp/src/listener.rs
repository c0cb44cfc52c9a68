//! [`UdpListener`]: one UDP socket serving every remote.

use std::io;
use std::net::SocketAddr;

use async_trait::async_trait;
use jvpn_transport::{Listener, Remote, TransportError, TransportKind};
use tokio::net::UdpSocket;

use crate::recv::{check_sent, check_size};
use crate::{UdpConfig, max_datagram_size_for, recv, socket};

/// A server-side UDP socket. Remotes are named by address (`Remote { addr, conn: 0 }`); the
/// listener keeps no per-remote state, so a flood of spoofed sources costs it nothing.
#[derive(Debug)]
pub struct UdpListener {
    socket: UdpSocket,
    max_datagram_size: usize,
}

impl UdpListener {
    /// Binds `addr` (port 0 for an ephemeral one; `[::]` accepts IPv4 too where the OS allows).
    ///
    /// # Errors
    /// [`TransportError::Bind`] naming the address and the fix (e.g. address in use).
    pub fn bind(addr: SocketAddr, config: &UdpConfig) -> Result<Self, TransportError> {
        let socket = socket::bind(addr, config)?;
        Ok(Self {
            socket,
            max_datagram_size: max_datagram_size_for(addr),
        })
    }
}

#[async_trait]
impl Listener for UdpListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Udp
    }

    fn max_datagram_size(&self) -> usize {
        self.max_datagram_size
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, Remote)> {
        let (len, from) = recv::recv_from(&self.socket, buf).await?;
        Ok((len, Remote::connectionless(from)))
    }

    async fn send_to(&self, datagram: &[u8], to: Remote) -> io::Result<()> {
        check_size(datagram.len(), self.max_datagram_size)?;
        let sent = self.socket.send_to(datagram, to.addr).await?;
        check_sent(sent, datagram.len())
    }

    fn try_send_to(&self, datagram: &[u8], to: Remote) -> io::Result<()> {
        check_size(datagram.len(), self.max_datagram_size)?;
        let sent = self.socket.try_send_to(datagram, to.addr)?;
        check_sent(sent, datagram.len())
    }
}
