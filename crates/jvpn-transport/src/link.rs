//! The plug-in traits: [`Transport`] makes [`Link`]s and [`Listener`]s.

use std::io;
use std::net::SocketAddr;

use async_trait::async_trait;

use crate::{TransportError, TransportKind, TransportUrl};

/// What a link (or listener) is: which transport, which addresses, how big a datagram may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// The transport carrying the link.
    pub kind: TransportKind,
    /// The local socket address, when the transport has one.
    pub local_addr: Option<SocketAddr>,
    /// The remote socket address, when the transport knows it (a proxy may hide it).
    pub remote_addr: Option<SocketAddr>,
    /// The largest jvpn datagram one `send` carries without error or fragmentation.
    pub max_datagram_size: usize,
    /// Whether the transport retransmits lost datagrams itself (e.g. WebSocket over TCP).
    /// The session uses this to tune probing; it never relies on it for security.
    pub reliable: bool,
}

/// One remote peer of a [`Listener`].
///
/// `conn` is 0 on connectionless transports (UDP), where the address alone names the remote;
/// connection-oriented transports give every connection its own id, because two connections may
/// share an address (behind a proxy) and one address may reconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Remote {
    /// The remote's socket address (as seen by the listener).
    pub addr: SocketAddr,
    /// Connection id; 0 for connectionless transports.
    pub conn: u64,
}

impl Remote {
    /// A remote on a connectionless transport: `conn` is 0.
    #[must_use]
    pub fn connectionless(addr: SocketAddr) -> Self {
        Self { addr, conn: 0 }
    }
}

/// A client-side attachment to one remote, carrying whole jvpn datagrams.
///
/// Contract:
/// - one [`send`](Link::send) carries one whole datagram of at most
///   [`LinkInfo::max_datagram_size`] bytes; the peer's `recv` yields exactly those bytes or nothing;
/// - [`recv`](Link::recv) writes one whole datagram into `buf` and returns its length; a datagram
///   longer than `buf` is an [`io::ErrorKind::InvalidData`] error, never a partial datagram;
/// - delivery may be lossy, duplicated and reordered (unless [`LinkInfo::reliable`]);
/// - methods take `&self`, so one task may send while another receives.
#[async_trait]
pub trait Link: Send + Sync + std::fmt::Debug + 'static {
    /// What this link is.
    fn info(&self) -> LinkInfo;

    /// Sends one whole datagram.
    async fn send(&self, datagram: &[u8]) -> io::Result<()>;

    /// Receives one whole datagram into `buf`, returning its length.
    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Sends without waiting if the transport can; [`io::ErrorKind::WouldBlock`] otherwise (the
    /// default), in which case the caller falls back to [`send`](Link::send).
    fn try_send(&self, datagram: &[u8]) -> io::Result<()> {
        let _ = datagram;
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// Shuts the link down gracefully where the transport has a notion of it (the default does
    /// nothing; dropping the link must release its resources anyway).
    async fn close(&self) {}
}

/// A server-side socket that receives datagrams from many remotes and answers them.
///
/// Same datagram contract as [`Link`]. A listener keeps no state per remote beyond what its
/// transport needs (a connection): sessions are demultiplexed above it, so spoofed sources
/// cannot make it grow.
#[async_trait]
pub trait Listener: Send + Sync + std::fmt::Debug + 'static {
    /// The address the listener is bound to (with the actual port if 0 was asked).
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// The transport of this listener.
    fn kind(&self) -> TransportKind;

    /// The largest datagram one `send_to` carries.
    fn max_datagram_size(&self) -> usize;

    /// Receives one whole datagram into `buf`, returning its length and sender.
    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, Remote)>;

    /// Sends one whole datagram to `to` (a [`Remote`] returned by `recv_from`).
    async fn send_to(&self, datagram: &[u8], to: Remote) -> io::Result<()>;

    /// Sends without waiting if the transport can; [`io::ErrorKind::WouldBlock`] otherwise (the
    /// default).
    fn try_send_to(&self, datagram: &[u8], to: Remote) -> io::Result<()> {
        let _ = (datagram, to);
        Err(io::ErrorKind::WouldBlock.into())
    }
}

/// A transport: makes [`Link`]s to a remote and [`Listener`]s for remotes to reach.
#[async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug + 'static {
    /// The kind of URLs this transport handles.
    fn kind(&self) -> TransportKind;

    /// Opens a link to `url`.
    async fn connect(&self, url: &TransportUrl) -> Result<Box<dyn Link>, TransportError>;

    /// Listens on `url` (`host` is the local address to bind, port 0 for an ephemeral one).
    async fn listen(&self, url: &TransportUrl) -> Result<Box<dyn Listener>, TransportError>;
}
