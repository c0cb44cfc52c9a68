//! [`QuicLink`]: the client side, one QUIC connection to one server.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use jvpn_transport::{Link, LinkInfo, TransportError, TransportKind};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{
    ClientConfig, Connection, ConnectionError, Endpoint, EndpointConfig, TokioRuntime, VarInt,
};

use crate::error::{QuicError, hex};
use crate::{QuicConfig, dgram, socket, tls};

/// A client-side QUIC link: its own UDP socket on an ephemeral port and one QUIC connection to
/// the server; every jvpn datagram is one QUIC DATAGRAM frame.
///
/// - [`info`](Link::info) reads the connection's **current** `max_datagram_size()` each time:
///   it starts near 1150 bytes (QUIC's 1200-byte minimum MTU less headers) and grows as quinn
///   discovers a larger path MTU (or shrinks if the path gets worse), so callers that size an
///   MTU should read it again after the link has run a moment.
/// - [`send`](Link::send) never waits: a datagram above the current maximum is an
///   [`io::ErrorKind::InvalidInput`] error; under congestion quinn discards the oldest queued
///   datagrams. [`try_send`](Link::try_send) returns [`io::ErrorKind::WouldBlock`] instead of
///   discarding.
/// - [`recv`](Link::recv) is **cancel-safe**: quinn's `read_datagram` future takes a datagram
///   out of the connection's buffer only in the poll that returns it, so dropping the future
///   (e.g. in `tokio::select!`) loses nothing.
///
/// Dropping the link closes the connection (the server hears a CONNECTION_CLOSE).
#[derive(Debug)]
pub struct QuicLink {
    endpoint: Endpoint,
    conn: Connection,
}

impl QuicLink {
    /// Binds an ephemeral UDP port of `remote`'s family and completes a QUIC handshake with
    /// `remote`, presenting `server_name` as SNI.
    ///
    /// # Errors
    /// [`TransportError::Bind`] if no local port can be bound; [`TransportError::Connect`] if
    /// the server does not answer within the handshake timeout or refuses the connection;
    /// [`TransportError::Other`] with a [`QuicError`] for a pin mismatch, a failed TLS handshake,
    /// a peer without DATAGRAM support or an invalid [`QuicConfig`].
    pub async fn connect(
        remote: SocketAddr,
        server_name: &str,
        config: &QuicConfig,
    ) -> Result<Self, TransportError> {
        let other = |e: QuicError| TransportError::Other(Box::new(e));
        let transport = config.transport_config(true).map_err(other)?;
        let (rustls_config, verifier) =
            tls::client_config(config.pin_sha256, &config.alpn).map_err(other)?;
        let crypto = QuicClientConfig::try_from(Arc::new(rustls_config))
            .map_err(|e| TransportError::Other(Box::new(e)))?;
        let mut client_config = ClientConfig::new(Arc::new(crypto));
        client_config.transport_config(transport);

        let local: SocketAddr = if remote.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let endpoint = Endpoint::new(
            EndpointConfig::default(),
            None,
            socket::bind(local)?,
            Arc::new(TokioRuntime),
        )?;
        let connecting = endpoint
            .connect_with(client_config, remote, server_name)
            .map_err(|e| TransportError::Connect {
                addr: remote,
                source: io::Error::new(io::ErrorKind::InvalidInput, e),
            })?;
        let timeout = config.handshake_timeout();
        let conn = match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(error)) => {
                return Err(handshake_error(remote, error, verifier.mismatch()));
            }
            Err(_) => {
                return Err(TransportError::Connect {
                    addr: remote,
                    source: io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no QUIC answer within {timeout:?}: check that a jvpn server listens \
                             on quic://{remote} and that UDP to that port is not blocked"
                        ),
                    ),
                });
            }
        };
        if conn.max_datagram_size().is_none() {
            conn.close(VarInt::from_u32(0), b"DATAGRAM frames required");
            return Err(other(QuicError::DatagramsUnsupported { addr: remote }));
        }
        Ok(Self { endpoint, conn })
    }

    /// The underlying quinn connection (for statistics such as RTT and congestion window).
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

fn handshake_error(
    addr: SocketAddr,
    error: ConnectionError,
    mismatch: Option<([u8; 32], [u8; 32])>,
) -> TransportError {
    if let Some((expected, actual)) = mismatch {
        return TransportError::Other(Box::new(QuicError::PinMismatch {
            addr,
            expected: hex(&expected),
            actual: hex(&actual),
        }));
    }
    match error {
        ConnectionError::TimedOut => TransportError::Connect {
            addr,
            source: io::Error::new(
                io::ErrorKind::TimedOut,
                "the QUIC handshake timed out: check that a jvpn server listens there and that \
                 UDP to that port is not blocked",
            ),
        },
        ConnectionError::ConnectionClosed(ref close)
            if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
        {
            TransportError::Connect {
                addr,
                source: io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "the QUIC server refused the connection (it may be at its connection limit): \
                     retry later or use another transport",
                ),
            }
        }
        source => TransportError::Other(Box::new(QuicError::Handshake { addr, source })),
    }
}

#[async_trait]
impl Link for QuicLink {
    fn info(&self) -> LinkInfo {
        let local_addr =
            self.endpoint.local_addr().ok().map(|bound| {
                SocketAddr::new(self.conn.local_ip().unwrap_or(bound.ip()), bound.port())
            });
        LinkInfo {
            kind: TransportKind::Quic,
            local_addr,
            remote_addr: Some(self.conn.remote_address()),
            max_datagram_size: self.conn.max_datagram_size().unwrap_or(0),
            reliable: false,
        }
    }

    async fn send(&self, datagram: &[u8]) -> io::Result<()> {
        dgram::send(&self.conn, datagram)
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let datagram = self
            .conn
            .read_datagram()
            .await
            .map_err(|error| crate::error::connection_lost(&error))?;
        dgram::copy_out(&datagram, buf)
    }

    fn try_send(&self, datagram: &[u8]) -> io::Result<()> {
        dgram::try_send(&self.conn, datagram)
    }

    async fn close(&self) {
        self.conn.close(VarInt::from_u32(0), b"closed");
    }
}

impl Drop for QuicLink {
    fn drop(&mut self) {
        // Tell the server now rather than letting it wait for its idle timeout.
        self.conn.close(VarInt::from_u32(0), b"link dropped");
    }
}
