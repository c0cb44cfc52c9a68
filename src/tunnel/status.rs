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
    /// Server: what the endpoint counted outside its sessions (handshakes, the DoS defences).
    /// Absent in a client's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointStatus>,
}

/// A server endpoint's counters outside any session: handshake work and the DoS defences
/// (docs/protocol.md §5). Counted since the server started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStatus {
    /// Sessions created by a first handshake.
    pub sessions_created: u64,
    /// HANDSHAKE_INITs that passed MAC1 and cost a Diffie-Hellman.
    pub dh_started: u64,
    /// REATTACH_INITs that cost a Diffie-Hellman.
    pub reattach_dh_started: u64,
    /// HANDSHAKE_INITs dropped for a wrong MAC1 (no DH).
    pub mac1_rejected: u64,
    /// HANDSHAKE_INITs that failed inside Noise (after their DH).
    pub noise_failed: u64,
    /// HANDSHAKE_INITs dropped as exact replays, before any DH and before counting toward load.
    pub init_replays: u64,
    /// COOKIE_REPLYs sent (under load, no valid MAC2).
    pub cookie_replies: u64,
    /// Bytes of those replies.
    pub cookie_reply_bytes: u64,
    /// Bytes of the requests they answered.
    pub cookie_request_bytes: u64,
    /// Under load with a valid MAC2, dropped by the per-source token bucket.
    pub rate_limited: u64,
    /// Reattaches refused because the global cap of pending reattaches was reached.
    pub pending_cap: u64,
    /// Datagrams withheld because they would have taken an unvalidated path past three times
    /// the bytes received from it.
    pub amplification_withheld: u64,
    /// (listener, remote) pairs the server remembers now.
    pub paths: u64,
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
    /// Client: stateless resets honoured (each started a reattach; none ends a session).
    #[serde(default)]
    pub resets_honoured: u64,
    /// Client: reset candidates not honoured (wrong token, stale index, another path, not
    /// bound); each is also in `drops`.
    #[serde(default)]
    pub resets_rejected: u64,
    /// Seconds since the last completed handshake.
    pub handshake_age_secs: Option<f64>,
    /// Why the active path is the active one: the last switch (or first attach), if any.
    #[serde(default)]
    pub last_switch: Option<SwitchStatus>,
    /// The last transitions, oldest first.
    pub last_transitions: Vec<AuditRecord>,
}

/// The last switch of the active path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchStatus {
    /// Why (a reason code, e.g. `HANDSHAKE_COMPLETE`, `TRANSPORT_DEAD`, `PLANNED_SWITCH`).
    pub reason: String,
    /// The transport kind switched to.
    pub transport: Option<String>,
    /// The URL switched to (client side).
    pub url: Option<String>,
}

/// A candidate path. The fields after `loss_percent` were added in schema 1 without a bump
/// (readers of older snapshots see their defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathStatus {
    /// Transport kind.
    pub kind: String,
    /// Remote address (the URL's `host:port` while the link is down).
    pub remote: String,
    /// `"active"` (carries the session), `"standby"` (link up) or `"down"` (no link).
    pub state: String,
    /// Last measured round-trip time, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Loss over the measurement window, in percent.
    pub loss_percent: Option<f64>,
    /// The candidate's server URL (client side).
    #[serde(default)]
    pub url: Option<String>,
    /// Whether the transport link is connected.
    #[serde(default)]
    pub link_up: bool,
    /// Whether this path carries the session now.
    #[serde(default)]
    pub active: bool,
    /// The prober's view of the path (e.g. `UNKNOWN`, `ALIVE`, `DEAD`), once it measures it.
    #[serde(default)]
    pub prober: Option<String>,
    /// RTT variation, in milliseconds.
    #[serde(default)]
    pub jitter_ms: Option<f64>,
    /// Seconds since something authenticated last arrived on this path.
    #[serde(default)]
    pub last_seen_secs: Option<f64>,
    /// Why the link is down (the last connect or receive error).
    #[serde(default)]
    pub error: Option<String>,
    /// Datagrams the session sent on this path while its link was down (dropped).
    #[serde(default)]
    pub send_drops: u64,
}

impl PathStatus {
    /// A path known only by its kind and remote (a server's view of a client).
    pub(crate) fn simple(
        kind: String,
        remote: String,
        active: bool,
        rtt: Option<Duration>,
    ) -> Self {
        PathStatus {
            kind,
            remote,
            state: if active { "active" } else { "standby" }.into(),
            rtt_ms: rtt.map(millis),
            loss_percent: None,
            url: None,
            link_up: true,
            active,
            prober: None,
            jitter_ms: None,
            last_seen_secs: None,
            error: None,
            send_drops: 0,
        }
    }
}

/// A duration in (fractional) milliseconds, as status reports show them.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl SessionStatus {
    /// A session bound to at most one link (the server's view): that link is its only path.
    pub(crate) fn of(
        session: &Session,
        link: Option<&LinkInfo>,
        rtt: Option<Duration>,
        history: Vec<AuditRecord>,
        now: Instant,
    ) -> Self {
        let transport = link.map(|l| l.kind.to_string());
        let remote = link.and_then(|l| l.remote_addr).map(|a| a.to_string());
        let candidates = match (&transport, &remote) {
            (Some(kind), Some(remote)) => {
                vec![PathStatus::simple(kind.clone(), remote.clone(), true, rtt)]
            }
            _ => Vec::new(),
        };
        Self::with_paths(session, (transport, remote), candidates, history, now)
    }

    /// A session with its candidate paths as given; `active` is the active path's transport
    /// kind and remote address.
    pub(crate) fn with_paths(
        session: &Session,
        (transport, remote): (Option<String>, Option<String>),
        candidates: Vec<PathStatus>,
        history: Vec<AuditRecord>,
        now: Instant,
    ) -> Self {
        let stats = session.stats();
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
            resets_honoured: stats.resets_honoured,
            resets_rejected: stats.resets_rejected,
            handshake_age_secs: stats
                .last_handshake_at
                .map(|at| now.saturating_duration_since(at).as_secs_f64()),
            last_switch: None,
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
