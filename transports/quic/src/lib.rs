//! The QUIC transport for jvpn: [`QuicTransport`] makes [`QuicLink`]s (client side, one QUIC
//! connection) and [`QuicListener`]s (server side, many connections on one UDP socket), built on
//! `quinn` with `rustls` (the `ring` provider) and TLS 1.3 only, as QUIC mandates.
//!
//! What it does:
//! - **one jvpn datagram = one QUIC DATAGRAM frame** (RFC 9221), unreliable and unordered like
//!   UDP ([`LinkInfo::reliable`](jvpn_transport::LinkInfo::reliable) is `false`); QUIC adds
//!   congestion control, keep-alives, connection migration and the look of HTTP/3 (UDP port 443,
//!   ALPN `jvpn/1`) to get through networks that treat unknown UDP badly;
//! - no streams: the peer may open none, so no stream buffers exist;
//! - `recv` on a link and `recv_from` on a listener are **cancel-safe**: the runtime may drop
//!   them inside `tokio::select!` without losing a datagram;
//! - bounded server state: a connection limit, stateless Retry under handshake floods, and an
//!   idle timeout for connections that send no datagram.
//!
//! # Security: the outer TLS is not jvpn's security boundary
//!
//! **jvpn's security comes from the Noise session inside, never from this TLS.** QUIC cannot run
//! without TLS, so the server presents a self-signed certificate generated at start-up
//! (`rcgen`) unless one is configured, and the client accepts **any** certificate unless
//! [`QuicConfig::pin_sha256`] is set. An on-path attacker can thus terminate the outer QUIC
//! connection, but can neither read nor forge jvpn datagrams. Pin the server's certificate
//! ([`QuicListener::cert_sha256`], [`ServerCert::sha256`]) to refuse any other server at the
//! QUIC layer. The client always verifies the server's TLS 1.3 signature against the
//! certificate it presents.
//!
//! # MTU
//!
//! The largest datagram is the connection's **current** `max_datagram_size()`: the path MTU less
//! QUIC's headers and AEAD tag. It starts at about [`GUARANTEED_DATAGRAM_SIZE`] (QUIC's
//! 1200-byte minimum MTU) and grows as quinn's path MTU discovery succeeds (about 1400 on a
//! 1500-byte Ethernet path), or shrinks when a black hole is detected. [`QuicLink`]'s
//! [`LinkInfo`](jvpn_transport::LinkInfo) reports the current value each time it is asked; a
//! datagram above it is refused with [`std::io::ErrorKind::InvalidInput`], never dropped
//! silently. A listener reports the guaranteed floor.
//!
//! What it does not do: resolve more than the first address of a name, reconnect a lost
//! connection (the runtime opens a new link and jvpn reattaches the session), or authenticate
//! anything that matters (Noise does).

mod config;
mod dgram;
mod error;
mod link;
mod listener;
mod socket;
mod tls;

use std::io;
use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;
use jvpn_transport::{Link, Listener, Transport, TransportError, TransportKind, TransportUrl};

pub use config::{ALPN, QuicConfig};
pub use error::QuicError;
pub use link::QuicLink;
pub use listener::QuicListener;
pub use tls::ServerCert;

/// The largest datagram every QUIC connection carries: QUIC's minimum MTU of 1200 bytes less a
/// short header with the longest connection id (1 + 20 bytes), a 4-byte packet number, the
/// 16-byte AEAD tag and a DATAGRAM frame header (9 bytes at most).
pub const GUARANTEED_DATAGRAM_SIZE: usize = 1200 - (1 + 20 + 4 + 16) - 9;

/// The SNI sent when the URL's host is an IP address (TLS carries no IP literal there).
const DEFAULT_SNI: &str = "jvpn";

/// The QUIC [`Transport`]: `quic://host:port` URLs (default port 443).
///
/// - [`connect`](Transport::connect) resolves the host, binds an ephemeral UDP port of the
///   address's family and completes a QUIC handshake with SNI = the host name (`jvpn` for an IP
///   address) and ALPN [`QuicConfig::alpn`].
/// - [`listen`](Transport::listen) binds `host:port` and accepts connections in the background.
///
/// Both must be called within a tokio runtime. The inherent [`connect_quic`](Self::connect_quic)
/// and [`listen_quic`](Self::listen_quic) return the concrete types (e.g. to read
/// [`QuicListener::cert_sha256`]).
#[derive(Debug, Clone, Default)]
pub struct QuicTransport {
    config: QuicConfig,
}

impl QuicTransport {
    /// A QUIC transport with the given settings.
    #[must_use]
    pub fn new(config: QuicConfig) -> Self {
        Self { config }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &QuicConfig {
        &self.config
    }

    /// Like [`Transport::connect`], returning the concrete link.
    ///
    /// # Errors
    /// As [`QuicLink::connect`], plus [`TransportError::KindMismatch`] and
    /// [`TransportError::Resolve`].
    pub async fn connect_quic(&self, url: &TransportUrl) -> Result<QuicLink, TransportError> {
        check_kind(url)?;
        let remote = resolve(url).await?;
        let server_name = if url.host.parse::<IpAddr>().is_ok() {
            DEFAULT_SNI
        } else {
            url.host.as_str()
        };
        QuicLink::connect(remote, server_name, &self.config).await
    }

    /// Like [`Transport::listen`], returning the concrete listener.
    ///
    /// # Errors
    /// As [`QuicListener::bind`], plus [`TransportError::KindMismatch`] and
    /// [`TransportError::Resolve`].
    pub async fn listen_quic(&self, url: &TransportUrl) -> Result<QuicListener, TransportError> {
        check_kind(url)?;
        let local = resolve(url).await?;
        let mut names = vec![DEFAULT_SNI.to_owned()];
        if !local.ip().is_unspecified() && url.host != DEFAULT_SNI {
            names.push(url.host.clone());
        }
        QuicListener::bind(local, names, &self.config)
    }
}

fn check_kind(url: &TransportUrl) -> Result<(), TransportError> {
    if url.kind == TransportKind::Quic {
        Ok(())
    } else {
        Err(TransportError::KindMismatch {
            transport: TransportKind::Quic,
            url: url.clone(),
        })
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
impl Transport for QuicTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Quic
    }

    async fn connect(&self, url: &TransportUrl) -> Result<Box<dyn Link>, TransportError> {
        Ok(Box::new(self.connect_quic(url).await?))
    }

    async fn listen(&self, url: &TransportUrl) -> Result<Box<dyn Listener>, TransportError> {
        Ok(Box::new(self.listen_quic(url).await?))
    }
}
