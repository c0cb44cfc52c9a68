//! Status snapshots for `jvpn status`, and the handle that fetches them from a running tunnel.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jvpn_session::{AuditRecord, Session};
use jvpn_transport::LinkInfo;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// The version of the [`TunnelStatus`] JSON layout; bumped on incompatible changes.
pub const STATUS_SCHEMA_VERSION: u32 = 1;

/// A running tunnel, as `jvpn status --json` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelStatus {
    /// Layout version ([`STATUS_SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// `"client"` or `"server"`.
    pub role: String,
    /// The TUN device, when there is one.
    pub tun: Option<TunStatus>,
    /// One entry per live session (a client has at most one).
    pub sessions: Vec<SessionStatus>,
    /// Inner packets dropped because no peer's allowed IPs contain their destination.
    pub unknown_destination_drops: u64,
    /// Inner packets dropped because their source is outside the sending peer's allowed IPs.
    pub source_not_allowed_drops: u64,
    /// Sessions started after the previous one was lost (client: new BIRTHs after a server
    /// restart).
    pub reconnects: u64,
}

/// The TUN device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunStatus {
    /// Interface name.
    pub name: String,
    /// Inner MTU.
    pub mtu: u16,
}

/// One session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStatus {
    /// Session id (hex), once assigned.
    pub session_id: Option<String>,
    /// The peer's public key (base64).
    pub peer: String,
    /// Current state.
    pub state: String,
    /// Transition counter.
    pub version: u64,
    /// Binding epoch.
    pub epoch: u64,
    /// Kind of the transport that carries the session now.
    pub transport: Option<String>,
    /// Remote address of the active path.
    pub remote: Option<String>,
    /// Candidate paths and what is known of them.
    pub candidates: Vec<PathStatus>,
    /// Inner bytes received.
    pub bytes_in: u64,
    /// Inner bytes sent.
    pub bytes_out: u64,
    /// Inner packets received.
    pub packets_in: u64,
    /// Inner packets sent.
    pub packets_out: u64,
    /// Dropped datagrams by reason.
    pub drops: BTreeMap<String, u64>,
    /// Seconds since the last completed handshake.
    pub handshake_age_secs: Option<f64>,
    /// The last transitions, oldest first.
    pub last_transitions: Vec<AuditRecord>,
}

/// A candidate path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathStatus {
    /// Transport kind.
    pub kind: String,
    /// Remote address.
    pub remote: String,
    /// `"active"`, `"standby"` or `"dead"`.
    pub state: String,
    /// Last measured round-trip time, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Loss over the measurement window, in percent.
    pub loss_percent: Option<f64>,
}

impl SessionStatus {
    pub(crate) fn of(
        session: &Session,
        link: Option<&LinkInfo>,
        rtt: Option<Duration>,
        history: Vec<AuditRecord>,
        now: Instant,
    ) -> Self {
        let stats = session.stats();
        let transport = link.map(|l| l.kind.to_string());
        let remote = link.and_then(|l| l.remote_addr).map(|a| a.to_string());
        let candidates = match (&transport, &remote) {
            (Some(kind), Some(remote)) => vec![PathStatus {
                kind: kind.clone(),
                remote: remote.clone(),
                state: "active".into(),
                rtt_ms: rtt.map(|d| d.as_secs_f64() * 1e3),
                loss_percent: None,
            }],
            _ => Vec::new(),
        };
        SessionStatus {
            session_id: session.session_id().map(|s| s.to_string()),
            peer: session.peer_static().to_string(),
            state: session.state().to_string(),
            version: session.version(),
            epoch: session.epoch(),
            transport,
            remote,
            candidates,
            bytes_in: stats.bytes_in,
            bytes_out: stats.bytes_out,
            packets_in: stats.packets_in,
            packets_out: stats.packets_out,
            drops: stats
                .drops
                .iter()
                .map(|(reason, count)| (reason.as_str().to_owned(), count))
                .collect(),
            handshake_age_secs: stats
                .last_handshake_at
                .map(|at| now.saturating_duration_since(at).as_secs_f64()),
            last_transitions: history,
        }
    }
}

/// Fetches snapshots from a running tunnel (or, in tests, returns a fixed one). Cheap to clone.
#[derive(Debug, Clone)]
pub struct StatusSource {
    inner: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Driver(mpsc::Sender<oneshot::Sender<TunnelStatus>>),
    Fixed(Arc<TunnelStatus>),
}

impl StatusSource {
    pub(crate) fn driver(tx: mpsc::Sender<oneshot::Sender<TunnelStatus>>) -> Self {
        StatusSource {
            inner: Source::Driver(tx),
        }
    }

    /// A source that always answers `status` (for tests and tools).
    pub fn fixed(status: TunnelStatus) -> Self {
        StatusSource {
            inner: Source::Fixed(Arc::new(status)),
        }
    }

    /// The current status, or `None` when the tunnel has stopped.
    pub async fn snapshot(&self) -> Option<TunnelStatus> {
        match &self.inner {
            Source::Fixed(status) => Some((**status).clone()),
            Source::Driver(tx) => {
                let (reply, answer) = oneshot::channel();
                tx.send(reply).await.ok()?;
                answer.await.ok()
            }
        }
    }
}
