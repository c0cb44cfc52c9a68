//! [`QuicError`]: QUIC-specific failures, and the mapping of quinn's errors to `io::Error`.

use std::io;
use std::net::SocketAddr;

use quinn::ConnectionError;

/// What went wrong in the QUIC transport beyond plain socket errors.
///
/// [`Transport::connect`](jvpn_transport::Transport::connect) and
/// [`Transport::listen`](jvpn_transport::Transport::listen) return these inside
/// [`TransportError::Other`](jvpn_transport::TransportError::Other); the inherent
/// [`QuicTransport`](crate::QuicTransport) methods do the same, so callers can downcast.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuicError {
    /// The server's certificate does not have the pinned SHA-256 fingerprint: either the pin is
    /// stale (the server's certificate changed, e.g. a self-signed one regenerated at restart) or
    /// something else answered. Check the server's current fingerprint and update the pin.
    #[error(
        "the QUIC server at {addr} presented a certificate with SHA-256 {actual}, but the pin is \
         {expected}: update the pin to the server's current certificate, or check that you reach \
         the right server"
    )]
    PinMismatch {
        /// The server address.
        addr: SocketAddr,
        /// The pinned fingerprint, hex.
        expected: String,
        /// The fingerprint of the certificate the server presented, hex.
        actual: String,
    },
    /// The TLS handshake inside QUIC failed for another reason (no common ALPN: the server does not
    /// speak `jvpn/1`; or a TLS alert). Check that the URL names a jvpn QUIC server.
    #[error(
        "the QUIC/TLS handshake with {addr} failed: {source}; check that a jvpn server (ALPN \
         jvpn/1) listens there"
    )]
    Handshake {
        /// The server address.
        addr: SocketAddr,
        /// What quinn reported.
        #[source]
        source: ConnectionError,
    },
    /// The peer completed the handshake but does not accept QUIC DATAGRAM frames (RFC 9221), which
    /// jvpn needs. Use a jvpn server, or another transport.
    #[error(
        "the QUIC peer at {addr} does not support DATAGRAM frames (RFC 9221), which jvpn needs: \
         use a jvpn server or another transport"
    )]
    DatagramsUnsupported {
        /// The peer's address.
        addr: SocketAddr,
    },
    /// The configured server certificate or key could not be used (not DER, key does not match,
    /// unsupported algorithm). Provide a DER certificate chain and its PKCS#8, PKCS#1 or SEC1 key.
    #[error("cannot use the configured QUIC server certificate: {0}; provide a DER chain and key")]
    Certificate(#[source] quinn::rustls::Error),
    /// Generating the self-signed certificate failed (should not happen with the `ring` provider).
    #[error("cannot generate a self-signed QUIC certificate: {0}")]
    SelfSigned(#[source] rcgen::Error),
    /// A value of [`QuicConfig`](crate::QuicConfig) is out of range; the message says which and
    /// what is allowed.
    #[error("invalid QUIC configuration: {0}")]
    Config(String),
}

/// Turns a lost connection into the `io::Error` a [`Link`](jvpn_transport::Link) or
/// [`Listener`](jvpn_transport::Listener) returns, with a kind the runtime can act on.
pub(crate) fn connection_lost(error: &ConnectionError) -> io::Error {
    let kind = match error {
        ConnectionError::TimedOut => io::ErrorKind::TimedOut,
        ConnectionError::Reset => io::ErrorKind::ConnectionReset,
        ConnectionError::LocallyClosed => io::ErrorKind::NotConnected,
        ConnectionError::ApplicationClosed(_) | ConnectionError::ConnectionClosed(_) => {
            io::ErrorKind::ConnectionAborted
        }
        _ => io::ErrorKind::ConnectionAborted,
    };
    io::Error::new(
        kind,
        format!("the QUIC connection is gone ({error}): open a new link to continue"),
    )
}

/// A datagram larger than the connection can carry.
pub(crate) fn too_large(len: usize, max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "a {len}-byte datagram exceeds the QUIC connection's current maximum of {max} bytes \
             (it follows the path MTU): send smaller datagrams"
        ),
    )
}

/// A received datagram longer than the caller's buffer: dropped, never truncated.
pub(crate) fn buffer_too_small(len: usize, capacity: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("dropped a {len}-byte datagram larger than the {capacity}-byte receive buffer"),
    )
}

/// Lowercase hex of a fingerprint.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
    }

    #[test]
    fn a_timed_out_connection_is_a_timed_out_io_error_that_says_what_to_do() {
        let err = connection_lost(&ConnectionError::TimedOut);
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("open a new link"), "{err}");
    }

    #[test]
    fn an_oversize_datagram_error_names_both_sizes() {
        let err = too_large(2000, 1400);
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(msg.contains("2000") && msg.contains("1400"), "{msg}");
    }
}
