//! What can go wrong running a tunnel, and what to do about it.

use std::path::PathBuf;
use std::time::Duration;

use jvpn_session::Reason;
use jvpn_transport::TransportError;
use jvpn_tun::TunError;

/// Starting or running a tunnel failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelError {
    /// The TUN device could not be created or configured (not root, no `/dev/net/tun`, name in
    /// use, a route that exists already); the message says how to fix it.
    #[error(transparent)]
    Tun(#[from] TunError),
    /// The transport could not connect or bind (address in use, unresolvable host).
    #[error("{url}: {source}")]
    Transport {
        /// The URL tried.
        url: String,
        /// What the transport said.
        #[source]
        source: Box<TransportError>,
    },
    /// The audit log cannot be opened for appending: check the directory exists and is
    /// writable, or choose another `--audit-log` path.
    #[error("cannot open audit log {path}: {source}")]
    AuditLog {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The policy is inconsistent; fix the named value.
    #[error("invalid policy: {0}")]
    Policy(#[from] jvpn_session::PolicyError),
    /// The configuration is inconsistent (the message names the value and the fix).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The inner MTU asked for is larger than a candidate transport carries; lower `--mtu`.
    #[error(transparent)]
    Mtu(#[from] crate::mtu::MtuError),
    /// The session did not become ready in time: check the server address and port, that the
    /// server runs, that each side has the other's public key, and that nothing blocks the
    /// transport.
    #[error(
        "the tunnel was not ready after {waited:?}: check the server address and port, that the \
         server is running, that each side lists the other's public key, and that no firewall \
         blocks the transport"
    )]
    NotReady {
        /// How long we waited.
        waited: Duration,
    },
    /// The session ended for good.
    #[error("session terminated ({})", reason.map(|r| r.to_string()).unwrap_or_else(|| "no reason recorded".into()))]
    Terminated {
        /// The reason of the final transition.
        reason: Option<Reason>,
    },
    /// The tunnel's task stopped unexpectedly (see the log for the cause).
    #[error("the tunnel task stopped")]
    Stopped,
    /// An I/O error on the TUN device.
    #[error("TUN device I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

impl TunnelError {
    /// The process exit code for this error: 1 for every runtime failure (usage errors, which
    /// exit 2, are the CLI's).
    pub fn exit_code(&self) -> u8 {
        1
    }
}
