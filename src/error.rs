//! Errors of the runtime facade. Each says what happened and what to do.

use std::time::Duration;

use jvpn_session::Reason;
use jvpn_transport::TransportError;

/// Starting or running a client failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The policy is inconsistent; fix the named value.
    #[error("invalid policy: {0}")]
    Policy(#[source] jvpn_session::PolicyError),
    /// The transport could not open a link to the server.
    #[error("cannot reach {url}: {source}")]
    Transport {
        /// The server URL tried.
        url: String,
        /// What the transport reported.
        #[source]
        source: Box<TransportError>,
    },
    /// No server URL was given: list at least one candidate.
    #[error("no server: give at least one server URL (udp://, quic:// or wss://)")]
    NoServer,
    /// No transport of the URL's kind is available: build jvpn with that transport's feature,
    /// add it to the [`Transports`](crate::Transports) set, or leave the URL out.
    #[error("no transport for {url}: this jvpn cannot reach it (use another transport)")]
    NoTransport {
        /// The URL without a transport.
        url: String,
    },
    /// The session core refused the configuration.
    #[error("cannot start the session: {0}")]
    Session(#[source] jvpn_session::ConnectError),
    /// The session did not attach in time: check the server address, that the server runs, and
    /// that the server's public key and this client's key are configured on both sides.
    #[error(
        "no session after {waited:?}: check the server address, that the server is running, and \
         that both sides know each other's public key"
    )]
    AttachTimeout {
        /// How long we waited.
        waited: Duration,
    },
    /// The session ended; the reason says why.
    #[error("session terminated ({})", reason.map(|r| r.to_string()).unwrap_or_else(|| "unknown reason".into()))]
    Terminated {
        /// The reason of the final transition.
        reason: Option<Reason>,
    },
    /// The driver task is gone (the client was closed or its runtime shut down).
    #[error("the client has stopped")]
    DriverStopped,
}

/// Starting or running a server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The policy is inconsistent; fix the named value.
    #[error("invalid policy: {0}")]
    Policy(#[source] jvpn_session::PolicyError),
    /// The endpoint configuration is invalid (for example a peer listed twice).
    #[error("invalid server configuration: {0}")]
    Config(#[source] jvpn_session::ConfigError),
    /// No listener was given: pass at least one `--listen` address.
    #[error("no listener: give the server at least one address to listen on")]
    NoListener,
    /// The driver task is gone.
    #[error("the server has stopped")]
    DriverStopped,
}

/// An inner packet could not be queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session core refused the packet (not attached and queue full, too large, ended).
    #[error(transparent)]
    Session(#[from] jvpn_session::SendError),
    /// There is no such session (it ended or never existed).
    #[error("no such session")]
    UnknownSession,
    /// The driver task is gone.
    #[error("the endpoint has stopped")]
    Stopped,
}
