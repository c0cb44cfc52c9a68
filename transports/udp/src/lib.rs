//! The UDP transport for jvpn: [`UdpTransport`] makes [`UdpLink`]s (client side, one connected
//! socket) and [`UdpListener`]s (server side, one socket for every remote).
//!
//! Sockets are created with `socket2` (so that the receive and send buffers can be enlarged before
//! the socket is used, and `[::]` listeners accept IPv4 too), then handed to tokio.
//!
//! What it does:
//! - one jvpn datagram per UDP datagram, at most [`MAX_DATAGRAM_V4`] / [`MAX_DATAGRAM_V6`] bytes;
//! - a datagram longer than the caller's buffer is reported as
//!   [`std::io::ErrorKind::InvalidData`] and dropped, never handed up truncated (on Unix the
//!   kernel's `MSG_TRUNC` return flag of `recvmsg(2)` tells; see `recv.rs`);
//! - bind failures become [`TransportError::Bind`] with a message naming the address and the fix.
//!
//! What it does not do: keep state per remote (the server demultiplexes sessions by receiver
//! index above this layer, so spoofed sources cannot grow any table here), retransmit, path MTU
//! discovery, or GSO/GRO batching (yet).

mod link;
mod listener;
mod recv;
mod socket;

use std::io;
use std::net::SocketAddr;

use async_trait::async_trait;
use jvpn_transport::{Link, Listener, Transport, TransportError, TransportKind, TransportUrl};

pub use link::UdpLink;
pub use listener::UdpListener;

/// The largest jvpn datagram over UDP/IPv4: a 1500-byte Ethernet MTU minus the 20-byte IPv4
/// header and the 8-byte UDP header. Larger datagrams would be fragmented by IP (or dropped by
/// middleboxes that drop fragments), so the link refuses them.
pub const MAX_DATAGRAM_V4: usize = 1500 - 20 - 8;

/// The largest jvpn datagram over UDP/IPv6: a 1500-byte MTU minus the 40-byte IPv6 header and
/// the 8-byte UDP header. IPv6 routers never fragment, so a larger datagram would simply be lost.
pub const MAX_DATAGRAM_V6: usize = 1500 - 40 - 8;

/// The largest datagram for a socket of the family of `addr`.
#[must_use]
pub fn max_datagram_size_for(addr: SocketAddr) -> usize {
    if addr.is_ipv4() {
        MAX_DATAGRAM_V4
    } else {
        MAX_DATAGRAM_V6
    }
}

/// Socket settings of the UDP transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpConfig {
    /// Requested `SO_RCVBUF` in bytes (default 4 MiB). Best effort: the OS may clamp it (on Linux to
    /// `net.core.rmem_max`); the clamped value is logged at debug level.
    pub recv_buffer: usize,
    /// Requested `SO_SNDBUF` in bytes (default 4 MiB). Best effort, like `recv_buffer`.
    pub send_buffer: usize,
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self {
            recv_buffer: 4 << 20,
            send_buffer: 4 << 20,
        }
    }
}

/// The UDP [`Transport`]: `udp://host:port` URLs.
///
/// - [`connect`](Transport::connect) resolves the host, binds an ephemeral port of the same
///   address family and connects the socket (so that only the server's datagrams are received).
/// - [`listen`](Transport::listen) binds `host:port`; `udp://[::]:port` also accepts IPv4.
///
/// Both must be called within a tokio runtime with I/O enabled.
#[derive(Debug, Clone, Default)]
pub struct UdpTransport {
    config: UdpConfig,
}

impl UdpTransport {
    /// A UDP transport with the given socket settings.
    #[must_use]
    pub fn new(config: UdpConfig) -> Self {
        Self { config }
    }

    /// The socket settings.
    #[must_use]
    pub fn config(&self) -> &UdpConfig {
        &self.config
    }

    fn check_kind(url: &TransportUrl) -> Result<(), TransportError> {
        if url.kind == TransportKind::Udp {
            Ok(())
        } else {
            Err(TransportError::KindMismatch {
                transport: TransportKind::Udp,
                url: url.clone(),
            })
        }
    }
}

/// Resolves `url`'s host and port to the first address the resolver prefers.
async fn resolve(url: &TransportUrl) -> Result<SocketAddr, TransportError> {
    let resolve_error = |source| TransportError::Resolve {
        host: url.host.clone(),
        source,
    };
    let mut addrs = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(resolve_error)?;
    addrs.next().ok_or_else(|| {
        resolve_error(io::Error::new(
            io::ErrorKind::NotFound,
            "the name has no addresses",
        ))
    })
}

#[async_trait]
impl Transport for UdpTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Udp
    }

    async fn connect(&self, url: &TransportUrl) -> Result<Box<dyn Link>, TransportError> {
        Self::check_kind(url)?;
        let remote = resolve(url).await?;
        let link = UdpLink::connect(remote, &self.config).await?;
        Ok(Box::new(link))
    }

    async fn listen(&self, url: &TransportUrl) -> Result<Box<dyn Listener>, TransportError> {
        Self::check_kind(url)?;
        let local = resolve(url).await?;
        let listener = UdpListener::bind(local, &self.config)?;
        Ok(Box::new(listener))
    }
}
