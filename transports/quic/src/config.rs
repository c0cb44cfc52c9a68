//! [`QuicConfig`] and the quinn configs built from it.

use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};

use crate::error::QuicError;
use crate::tls::ServerCert;

/// The ALPN protocol id jvpn speaks over QUIC.
pub const ALPN: &[u8] = b"jvpn/1";

/// The smallest datagram receive buffer accepted: a full-MTU datagram must fit.
const MIN_RECEIVE_BUFFER: usize = 2048;

/// Settings of the QUIC transport, for both sides.
///
/// # Security
///
/// The outer TLS is **not** jvpn's security boundary: every jvpn datagram is authenticated and
/// encrypted by the Noise session inside, whatever carries it. QUIC merely needs TLS 1.3 to run,
/// so by default the server uses a self-signed certificate and the client accepts **any**
/// certificate ([`pin_sha256`](Self::pin_sha256) `None`). An on-path attacker can therefore
/// terminate the outer QUIC connection; it still cannot read, forge or replay jvpn traffic, but it
/// learns that QUIC is used and can drop it (as it could drop UDP). Set a pin to make the client
/// refuse every server certificate but one, e.g. to fail fast on a captive portal or a
/// transparent proxy.
#[derive(Debug, Clone)]
pub struct QuicConfig {
    /// The ALPN protocol id offered (client) and required (server). Default [`ALPN`] (`jvpn/1`).
    pub alpn: Vec<u8>,
    /// Server side: the certificate chain and key to present. `None` (the default): a fresh
    /// self-signed certificate is generated each time a listener starts (its fingerprint is
    /// [`QuicListener::cert_sha256`](crate::QuicListener::cert_sha256)).
    pub server_cert: Option<ServerCert>,
    /// Client side: accept the server only if the SHA-256 of its end-entity certificate (DER) is
    /// this. `None` (the default): accept any certificate — see the security note above.
    pub pin_sha256: Option<[u8; 32]>,
    /// How often an idle connection sends a QUIC PING so that it (and NAT bindings) stay up.
    /// Default 10 s. Must be below [`idle_timeout`](Self::idle_timeout).
    pub keep_alive_interval: Duration,
    /// A connection that hears nothing for this long is closed (QUIC's idle timeout). On the
    /// server, a connection that sends no jvpn datagram for this long is closed too (keep-alive
    /// PINGs do not count), so idle attackers cannot hold connection slots. Default 30 s, at most
    /// 2^62 ms.
    pub idle_timeout: Duration,
    /// Bytes of received datagrams buffered per connection before the oldest are dropped; also
    /// the largest DATAGRAM frame this side accepts (advertised as `max_datagram_frame_size`,
    /// capped at 65535). Default 256 KiB; at least 2048 is used.
    pub datagram_receive_buffer: usize,
    /// Server side: the most connections (including handshakes in progress) served at once; more
    /// are refused. Default 4096. Datagram buffers need at most
    /// `max_connections × datagram_receive_buffer` bytes.
    pub max_connections: usize,
    /// Server side: datagrams from all connections wait in one queue of this many for
    /// [`recv_from`](jvpn_transport::Listener::recv_from); when it is full, each connection's
    /// own buffer fills and then drops its oldest datagrams. Default 1024.
    pub listener_queue: usize,
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self {
            alpn: ALPN.to_vec(),
            server_cert: None,
            pin_sha256: None,
            keep_alive_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            datagram_receive_buffer: 256 << 10,
            max_connections: 4096,
            listener_queue: 1024,
        }
    }
}

impl QuicConfig {
    /// Checks the values and builds quinn's per-connection transport settings.
    pub(crate) fn transport_config(&self, client: bool) -> Result<Arc<TransportConfig>, QuicError> {
        if self.alpn.is_empty() || self.alpn.len() > 255 {
            return Err(QuicError::Config(format!(
                "alpn must be 1 to 255 bytes (got {}); the default is jvpn/1",
                self.alpn.len()
            )));
        }
        if self.idle_timeout.is_zero() || self.keep_alive_interval >= self.idle_timeout {
            return Err(QuicError::Config(format!(
                "keep_alive_interval ({:?}) must be shorter than a non-zero idle_timeout ({:?})",
                self.keep_alive_interval, self.idle_timeout
            )));
        }
        let idle = IdleTimeout::try_from(self.idle_timeout).map_err(|_| {
            QuicError::Config(format!(
                "idle_timeout {:?} is too long: use at most 2^62 ms",
                self.idle_timeout
            ))
        })?;
        let mut config = TransportConfig::default();
        config
            .max_idle_timeout(Some(idle))
            // jvpn uses datagrams only: no stream may be opened, so no stream buffers exist.
            .max_concurrent_bidi_streams(VarInt::from_u32(0))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .datagram_receive_buffer_size(Some(
                self.datagram_receive_buffer.max(MIN_RECEIVE_BUFFER),
            ));
        // The client keeps the connection (and its NAT binding) alive; the server does not, so
        // that a silent client times out.
        config.keep_alive_interval(client.then_some(self.keep_alive_interval));
        Ok(Arc::new(config))
    }

    /// How long a handshake may take before the attempt is abandoned.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.idle_timeout.min(Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_valid_for_both_sides() {
        let config = QuicConfig::default();
        assert!(config.transport_config(true).is_ok());
        assert!(config.transport_config(false).is_ok());
        assert_eq!(config.alpn, b"jvpn/1");
    }

    #[test]
    fn a_keep_alive_not_below_the_idle_timeout_is_rejected_with_the_rule() {
        let config = QuicConfig {
            keep_alive_interval: Duration::from_secs(30),
            ..QuicConfig::default()
        };
        let err = config.transport_config(true).unwrap_err();
        assert!(err.to_string().contains("must be shorter"), "{err}");
    }

    #[test]
    fn an_empty_alpn_is_rejected() {
        let config = QuicConfig {
            alpn: Vec::new(),
            ..QuicConfig::default()
        };
        assert!(config.transport_config(false).is_err());
    }
}
