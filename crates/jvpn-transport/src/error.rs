//! [`TransportError`]: why a transport could not connect or listen.

use std::io;
use std::net::SocketAddr;

use crate::{TransportKind, TransportUrl};

/// Why [`Transport::connect`](crate::Transport::connect) or
/// [`Transport::listen`](crate::Transport::listen) failed.
///
/// Errors on an established link or listener are plain [`std::io::Error`]s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The URL's host name did not resolve to any address. Check the spelling and DNS.
    #[error("cannot resolve `{host}`: check the host name and the DNS settings")]
    Resolve {
        /// The host name as given in the URL.
        host: String,
        /// What the resolver said.
        #[source]
        source: io::Error,
    },
    /// The local socket could not be bound: the address is in use, not local, or privileged.
    /// The message names the address and the fix.
    #[error("{}", bind_message(addr, source))]
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The link could not be set up towards the remote (no route, refused, handshake failure of
    /// an outer protocol). Check the address and the network.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The remote address.
        addr: SocketAddr,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// This transport cannot use a URL of another kind. Pick the transport named by the scheme.
    #[error(
        "the {transport} transport cannot use `{url}`: use the transport named by the URL's scheme"
    )]
    KindMismatch {
        /// The kind of the transport that was asked.
        transport: TransportKind,
        /// The URL it was given.
        url: TransportUrl,
    },
    /// The transport does not support what was asked (e.g. listening on a client-only transport).
    #[error("not supported by this transport: {what}")]
    Unsupported {
        /// What was asked.
        what: String,
    },
    /// Any other I/O error while setting up a socket.
    #[error("transport I/O error: {0}")]
    Io(#[from] io::Error),
    /// An error specific to a custom transport (e.g. a TLS failure), kept as its source.
    #[error("{0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

fn bind_message(addr: &SocketAddr, source: &io::Error) -> String {
    match source.kind() {
        io::ErrorKind::AddrInUse => format!(
            "cannot listen on {addr}: address in use: another jvpn server or program listens on \
             {addr}; choose another port with --listen"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "cannot bind {addr}: permission denied: ports below 1024 need privileges; choose a \
             port from 1024 up or grant CAP_NET_BIND_SERVICE"
        ),
        io::ErrorKind::AddrNotAvailable => format!(
            "cannot bind {addr}: this address is not assigned to any local interface; use a local \
             address, 0.0.0.0 or [::]"
        ),
        _ => format!("cannot bind {addr}: {source}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_in_use_names_the_address_and_the_fix() {
        let err = TransportError::Bind {
            addr: "127.0.0.1:51820".parse().unwrap(),
            source: io::ErrorKind::AddrInUse.into(),
        };
        let msg = err.to_string();
        assert!(msg.contains("address in use"), "{msg}");
        assert!(msg.contains("127.0.0.1:51820"), "{msg}");
        assert!(msg.contains("--listen"), "{msg}");
    }

    #[test]
    fn other_bind_failures_keep_the_os_reason() {
        let err = TransportError::Bind {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: io::Error::other("boom"),
        };
        assert!(err.to_string().ends_with("boom"));
    }
}
