//! [`WssError`]: what can go wrong setting up a WSS link or listener, beyond plain socket errors.

use std::io;
use std::time::Duration;

use jvpn_transport::TransportError;

/// Why a WSS link or listener could not be set up. Returned inside
/// [`TransportError::Other`]; plain resolve / connect / bind failures use the other
/// [`TransportError`] variants.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WssError {
    /// The proxy URL is not of the form `http://[user:pass@]host:port`. Fix `--proxy` or the
    /// `HTTPS_PROXY` / `ALL_PROXY` environment variable. The URL shown has no credentials.
    #[error("invalid proxy URL `{url}`: {reason}; expected http://[user:pass@]host:port")]
    InvalidProxyUrl {
        /// The URL as given, credentials removed.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The proxy answered `CONNECT` with a non-2xx status. The hint says what usually fixes it.
    #[error("the HTTP proxy {proxy} refused CONNECT {target}: \"{status_line}\": {hint}")]
    ProxyRefused {
        /// The proxy's `host:port`.
        proxy: String,
        /// The `host:port` the tunnel was asked for.
        target: String,
        /// The proxy's status line, e.g. `HTTP/1.1 407 Proxy Authentication Required`.
        status_line: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// The proxy's answer to `CONNECT` is not HTTP, longer than 8 KiB, or cut short. Check that
    /// the proxy URL names an HTTP proxy.
    #[error("the HTTP proxy {proxy} answered CONNECT with something that is not HTTP: {what}")]
    ProxyProtocol {
        /// The proxy's `host:port`.
        proxy: String,
        /// What was wrong with the answer.
        what: String,
    },
    /// A step did not finish in time. Check that the server (or proxy) is reachable and is a
    /// jvpn WSS server; raise the timeout on very slow networks.
    #[error(
        "{stage} did not finish within {after:?}: the server or proxy is unreachable or too slow"
    )]
    Timeout {
        /// What was going on.
        stage: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The TLS handshake failed: the server does not speak TLS 1.3, its certificate does not
    /// match the pin, or something in between intercepts the connection.
    #[error(
        "TLS 1.3 handshake with {server} failed: {source} (the server must speak TLS 1.3; with a \
         pin, its certificate must match it)"
    )]
    Tls {
        /// The server (or SNI) name.
        server: String,
        /// What rustls said.
        #[source]
        source: io::Error,
    },
    /// The server's certificate is not the pinned one ([`WssConfig::pin_sha256`](crate::WssConfig::pin_sha256)):
    /// something intercepts the TLS connection, or the server's certificate changed (a
    /// self-signed one changes at every server start unless it is configured).
    #[error(
        "the TLS certificate of {server} does not match the pinned SHA-256: something intercepts          the connection, or the server's certificate changed (update the pin)"
    )]
    PinMismatch {
        /// The server (or SNI) name.
        server: String,
    },
    /// The server did not accept the WebSocket upgrade: wrong path, not a jvpn server, or a
    /// proxy in the way. Check the URL's path (default `/jvpn`).
    #[error(
        "WebSocket upgrade at {url} failed: {reason}; check the URL's path and that the server is jvpn"
    )]
    WebSocket {
        /// The URL asked.
        url: String,
        /// What the WebSocket library said.
        reason: String,
    },
    /// The configured SNI name or `Host` header cannot be sent. Use a DNS name.
    #[error("`{name}` cannot be sent as a TLS server name or Host header: use a DNS name")]
    InvalidName {
        /// The name.
        name: String,
    },
    /// The server certificate or key cannot be used (malformed, or the key does not match).
    #[error("the server certificate or key cannot be used: {reason}")]
    ServerCert {
        /// What is wrong.
        reason: String,
    },
}

impl From<WssError> for TransportError {
    fn from(error: WssError) -> Self {
        TransportError::Other(Box::new(error))
    }
}
