//! [`WssConfig`]: the settings of the WSS transport, and [`ServerCert`].

use std::fmt;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::{MAX_DATAGRAM, ProxyConfig, WssError, cert_sha256};

/// Settings of the WSS transport (client and server). `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct WssConfig {
    /// The TLS server name (SNI) the client sends. `None`: the URL's host, or no SNI at all when
    /// the host is an IP literal. Set it to blend in with a front domain.
    pub sni: Option<String>,
    /// The HTTP `Host` header the client sends. `None`: the URL's `host:port`.
    pub host_header: Option<String>,
    /// The server's certificate chain and key. `None`: a self-signed certificate is made with
    /// rcgen each time a listener starts (its pin is [`WssListener::cert_sha256`](crate::WssListener::cert_sha256)).
    pub server_cert: Option<ServerCert>,
    /// The SHA-256 of the server's DER certificate the client insists on. `None` (the default):
    /// **any server certificate is accepted**, because the outer TLS is not jvpn's security
    /// boundary (Noise runs inside, see the crate docs).
    pub pin_sha256: Option<[u8; 32]>,
    /// How the client reaches the server: directly (the default), through an explicit HTTP
    /// proxy, or as the environment says ([`ProxyConfig::from_env`]).
    pub proxy: ProxyConfig,
    /// Server: the time from TCP accept to the end of the WebSocket upgrade (TLS handshake and
    /// HTTP request included). A connection still in that phase after it is closed. Default 10 s.
    pub pre_auth_deadline: Duration,
    /// Client: the time for the whole connect (TCP, proxy CONNECT, TLS, WebSocket handshake).
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// The largest WebSocket message and frame accepted, checked from the frame's length header
    /// before its payload is buffered (close code 1009 beyond it). Default 65 535 + 64.
    pub max_message_size: usize,
    /// The most bytes a connection may have waiting to be written to its socket. Default 4 MiB.
    pub max_write_buffer: usize,
    /// Server: how many connections from one IP address may be in the pre-authentication phase
    /// (before the upgrade completes) at once; more are closed at once. Default 32.
    pub max_preauth_per_ip: usize,
    /// Server: how many connections may exist at once (in any phase); more are closed at once.
    /// Default 10 000.
    pub max_connections: usize,
    /// Server: how many upgraded connections one source IP may hold at once. One more is closed
    /// right after its upgrade with a WebSocket close of code 1008 (policy violation), so that
    /// one address cannot take every one of `max_connections`. Default 64 (generous for NAT:
    /// a jvpn client holds one WSS connection at a time, two while it switches).
    pub max_connections_per_ip: usize,
    /// Server: an upgraded connection whose first binary message (a jvpn client sends its
    /// handshake at once) has not arrived within this time is closed (code 1000). Counted from
    /// the end of the upgrade. Default 10 s, the same as `pre_auth_deadline`.
    pub first_datagram_deadline: Duration,
    /// Server: a connection that has received no binary message for this long is closed (code
    /// 1000). Every binary message restarts it; ping, pong and text frames do not (they are not
    /// jvpn traffic). Default 120 s.
    ///
    /// Keep it **far above jvpn's keepalive interval (10 s)**: a live session sends at least a
    /// keepalive every 10 s, so 120 s tolerates many lost or delayed keepalives (TCP
    /// retransmission on a bad network, a suspended laptop waking up) before an honest
    /// connection is cut, while still freeing the slot of a silent one within minutes.
    pub idle_timeout: Duration,
}

impl Default for WssConfig {
    fn default() -> Self {
        Self {
            sni: None,
            host_header: None,
            server_cert: None,
            pin_sha256: None,
            proxy: ProxyConfig::Direct,
            pre_auth_deadline: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            max_message_size: MAX_DATAGRAM + 64,
            max_write_buffer: 4 << 20,
            max_preauth_per_ip: 32,
            max_connections: 10_000,
            max_connections_per_ip: 64,
            first_datagram_deadline: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

impl WssConfig {
    /// The largest datagram a link or listener with these settings sends: [`MAX_DATAGRAM`], or
    /// less if `max_message_size` is set lower (the peer would refuse more).
    #[must_use]
    pub fn max_datagram_size(&self) -> usize {
        MAX_DATAGRAM.min(self.max_message_size)
    }
}

/// A TLS certificate chain (end entity first) and its private key, for the server.
///
/// `Debug` never shows the key.
pub struct ServerCert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl ServerCert {
    /// A chain (end-entity certificate first) and the end entity's private key, both DER.
    #[must_use]
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        Self { chain, key }
    }

    /// A fresh self-signed certificate (ECDSA P-256) for `names` (DNS names or IP addresses).
    ///
    /// # Errors
    /// [`WssError::ServerCert`] if a name cannot go in a certificate.
    pub fn self_signed(names: &[String]) -> Result<Self, WssError> {
        let certified = rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| {
            WssError::ServerCert {
                reason: format!("cannot make a self-signed certificate: {e}"),
            }
        })?;
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        Ok(Self {
            chain: vec![certified.cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(key),
        })
    }

    /// The certificate chain, end entity first.
    #[must_use]
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The SHA-256 of the end-entity certificate (what [`WssConfig::pin_sha256`] compares), or
    /// `None` for an empty chain.
    #[must_use]
    pub fn sha256(&self) -> Option<[u8; 32]> {
        self.chain.first().map(|cert| cert_sha256(cert))
    }

    pub(crate) fn into_parts(self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (self.chain, self.key)
    }
}

impl Clone for ServerCert {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCert")
            .field("chain_len", &self.chain.len())
            .field("sha256", &self.sha256().map(hex))
            .field("key", &"<redacted>")
            .finish()
    }
}

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let config = WssConfig::default();

        assert_eq!(config.pre_auth_deadline, Duration::from_secs(10));
        assert_eq!(config.max_message_size, 65_535 + 64);
        assert_eq!(config.max_write_buffer, 4 << 20);
        assert_eq!(config.max_preauth_per_ip, 32);
        assert_eq!(config.max_connections, 10_000);
        assert_eq!(config.max_connections_per_ip, 64);
        assert_eq!(config.first_datagram_deadline, config.pre_auth_deadline);
        assert_eq!(config.idle_timeout, Duration::from_secs(120));
        assert_eq!(config.max_datagram_size(), 65_535);
        assert!(config.pin_sha256.is_none());
        assert_eq!(config.proxy, ProxyConfig::Direct);
    }

    #[test]
    fn server_cert_debug_never_shows_the_key() {
        let cert = ServerCert::self_signed(&["localhost".into()]).unwrap();

        let debug = format!("{cert:?}");

        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(debug.contains("sha256"), "{debug}");
        assert!(!debug.contains("Pkcs8"), "{debug}");
    }

    #[test]
    fn a_clone_has_the_same_certificate() {
        let cert = ServerCert::self_signed(&["127.0.0.1".into()]).unwrap();

        let clone = cert.clone();

        assert_eq!(clone.sha256(), cert.sha256());
        assert!(cert.sha256().is_some());
    }
}
