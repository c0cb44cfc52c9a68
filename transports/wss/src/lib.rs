//! The WebSocket-over-TLS transport for jvpn (`wss://host:port/path`): for networks where only
//! HTTPS gets through.
//!
//! [`WssTransport`] makes [`WssLink`]s (client side: one TCP + TLS 1.3 + WebSocket connection)
//! and [`WssListener`]s (server side: a TCP listener whose every upgraded connection is one
//! [`Remote`](jvpn_transport::Remote)).
//!
//! # What it does
//!
//! - **One binary WebSocket message = one jvpn datagram**, at most [`MAX_DATAGRAM`] bytes.
//!   Text messages are ignored; ping / pong are answered by the WebSocket library; a close (or
//!   any connection error) makes `recv` return [`std::io::ErrorKind::ConnectionAborted`].
//! - **TLS 1.3 only**, on both sides, with rustls and its `ring` provider; `TCP_NODELAY` on
//!   every socket; ALPN `http/1.1`. SNI is the URL's host (none for an IP literal) unless
//!   [`WssConfig::sni`] says otherwise; the `Host` header likewise ([`WssConfig::host_header`]).
//! - **The server looks like a web server**: a request on any other path than the URL's (default
//!   [`DEFAULT_WSS_PATH`](jvpn_transport::DEFAULT_WSS_PATH)), or a plain `GET` without a
//!   WebSocket upgrade, gets a small "It works!" HTML page, then the connection is closed.
//! - **Bounded before authentication** (attack scenarios S22 and S23): TCP accept, TLS handshake
//!   and HTTP upgrade must finish within [`WssConfig::pre_auth_deadline`]; at most
//!   [`WssConfig::max_preauth_per_ip`] connections per source IP may be in that phase and at most
//!   [`WssConfig::max_connections`] connections may exist at all (beyond either cap a new
//!   connection is closed at once); the request head is read into at most 8 KiB; a WebSocket
//!   frame longer than [`WssConfig::max_message_size`] is refused from its length header, before
//!   its payload is buffered, with close code 1009; writes are bounded by
//!   [`WssConfig::max_write_buffer`].
//! - **Bounded after the upgrade too** (S22): an upgraded connection must deliver its first
//!   binary message within [`WssConfig::first_datagram_deadline`] and then one at least every
//!   [`WssConfig::idle_timeout`] (ping, pong and text frames do not count), else it is closed;
//!   each source IP may hold at most [`WssConfig::max_connections_per_ip`] upgraded connections
//!   (one more is closed right after its upgrade with code 1008). All are counted in
//!   [`ListenerStats`].
//! - **A slow peer never blocks the others**: each connection has its own writer task behind a
//!   bounded queue; when that queue is full, [`Listener::send_to`]
//!   drops the datagram and counts it ([`ListenerStats::dropped_queue_full`]), as UDP would.
//!
//! # Security: the outer TLS is not jvpn's security boundary
//!
//! **By default the client accepts ANY server certificate** (the server's is self-signed, made
//! with rcgen when the listener starts). This is deliberate: the outer TLS only makes the
//! traffic look like HTTPS to middleboxes. Confidentiality, integrity and the server's and
//! client's authentication come from the Noise handshake and AEAD that jvpn runs *inside* the
//! WebSocket messages, exactly as over UDP. An attacker who intercepts the TLS sees Noise
//! traffic it cannot read or forge. Set [`WssConfig::pin_sha256`] (the SHA-256 of the server's
//! DER certificate, see [`cert_sha256`] and [`WssListener::cert_sha256`]) to also refuse
//! middlebox TLS interception, e.g. to fail fast on a network that would break the tunnel.
//!
//! # HTTP proxies
//!
//! [`ProxyConfig`] says how the client reaches the server's TCP port:
//! [`ProxyConfig::Direct`] (the default), [`ProxyConfig::Http`] (an explicit
//! `http://[user:pass@]host:port`, e.g. `--proxy`: every connection goes through it), or
//! [`ProxyConfig::from_env`] (`HTTPS_PROXY` / `https_proxy`, then `ALL_PROXY` / `all_proxy`,
//! bypassed for the hosts listed in `NO_PROXY` / `no_proxy`; `*` there means "never a proxy").
//! Through the proxy the client sends `CONNECT host:port HTTP/1.1` (with
//! `Proxy-Authorization: Basic` when the URL carries credentials) and runs TLS inside the
//! tunnel; a non-2xx answer becomes a [`WssError::ProxyRefused`] naming the status line and
//! what to do. The proxy's answer is bounded to 8 KiB, the whole connect to
//! [`WssConfig::connect_timeout`].
//!
//! # Cancel safety
//!
//! The runtime calls [`Link::recv`] and
//! [`Listener::recv_from`] inside `tokio::select!` and drops
//! the future when another branch wins. Both are cancel-safe: each connection's WebSocket is
//! read by its own task into a bounded tokio `mpsc` channel, and `recv` only waits on that
//! channel (whose `recv` is cancel-safe), so a dropped `recv` never loses a datagram. `send`
//! only waits for room in a queue: if it is dropped, the datagram was either queued whole or
//! not at all.
//!
//! # What it does not do
//!
//! Certificate validation against CA roots (see the security note), HTTP/2 or HTTP/3 WebSockets,
//! compression, HTTPS or SOCKS proxies, NO_PROXY CIDR ranges, or authentication of any kind:
//! that is Noise's job, above this crate. The listener's timeouts only look at whether binary
//! messages arrive, not at what they hold: the runtime drops sessions that do not authenticate.
//! The client side ([`WssLink`]) keeps no idle timeout of its own.

mod config;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod http;
mod link;
mod listener;
mod proxy;
mod pump;
mod tls;

use async_trait::async_trait;
use jvpn_transport::{Link, Listener, Transport, TransportError, TransportKind, TransportUrl};

pub use config::{ServerCert, WssConfig};
pub use error::WssError;
pub use link::WssLink;
pub use listener::{ListenerStats, WssListener};
pub use proxy::{NoProxy, ProxyConfig};
/// Re-exported so that callers can build a [`ServerCert`] with the same rustls types.
pub use rustls::pki_types;
pub use tls::cert_sha256;

/// The largest jvpn datagram one WebSocket message carries: 65 535 bytes, the largest Noise
/// message.
///
/// The runtime sizes the inner MTU from [`LinkInfo::max_datagram_size`](jvpn_transport::LinkInfo)
/// and may clamp it to a typical 1400 bytes to match the other transports (so that a session can
/// jump between transports without changing its MTU); this transport just reports its maximum.
pub const MAX_DATAGRAM: usize = 65_535;

/// The [`Transport`] for `wss://host:port/path` URLs.
///
/// Must be used within a tokio runtime with I/O and timers enabled.
#[derive(Debug, Clone, Default)]
pub struct WssTransport {
    config: WssConfig,
}

impl WssTransport {
    /// A WSS transport with the given settings.
    #[must_use]
    pub fn new(config: WssConfig) -> Self {
        Self { config }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &WssConfig {
        &self.config
    }

    /// Like [`Transport::connect`], with the concrete link type.
    ///
    /// # Errors
    /// [`TransportError::KindMismatch`] for a non-`wss` URL, [`TransportError::Resolve`] /
    /// [`TransportError::Connect`] when the server (or the proxy) cannot be reached, and
    /// [`TransportError::Other`] holding a [`WssError`] for proxy, TLS, WebSocket and timeout
    /// failures.
    pub async fn connect_wss(&self, url: &TransportUrl) -> Result<WssLink, TransportError> {
        check_kind(url)?;
        link::connect(url, &self.config).await
    }

    /// Like [`Transport::listen`], with the concrete listener type (which tells the
    /// certificate's SHA-256 for pinning, and the listener's counters).
    ///
    /// # Errors
    /// [`TransportError::KindMismatch`] for a non-`wss` URL, [`TransportError::Resolve`] /
    /// [`TransportError::Bind`] when the address cannot be listened on, and
    /// [`TransportError::Other`] holding a [`WssError::ServerCert`] when the certificate is
    /// unusable.
    pub async fn listen_wss(&self, url: &TransportUrl) -> Result<WssListener, TransportError> {
        check_kind(url)?;
        WssListener::bind(url, &self.config).await
    }
}

fn check_kind(url: &TransportUrl) -> Result<(), TransportError> {
    if url.kind == TransportKind::Wss {
        Ok(())
    } else {
        Err(TransportError::KindMismatch {
            transport: TransportKind::Wss,
            url: url.clone(),
        })
    }
}

#[async_trait]
impl Transport for WssTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Wss
    }

    async fn connect(&self, url: &TransportUrl) -> Result<Box<dyn Link>, TransportError> {
        Ok(Box::new(self.connect_wss(url).await?))
    }

    async fn listen(&self, url: &TransportUrl) -> Result<Box<dyn Listener>, TransportError> {
        Ok(Box::new(self.listen_wss(url).await?))
    }
}
