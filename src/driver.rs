//! Pieces shared by the client and server drivers.

use std::time::Instant;

use jvpn_session::{Reason, Session, SessionHandle, SessionRng, State};
use jvpn_wire::keys::SessionId;
use rand::SeedableRng;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::error::SendError;

/// Receive buffer size: the largest datagram any transport hands us.
pub(crate) const MAX_DATAGRAM: usize = 65_535;

/// A request from a handle to its driver task.
#[derive(Debug)]
pub(crate) enum Command {
    Send {
        session: Option<SessionHandle>,
        packet: Vec<u8>,
        reply: oneshot::Sender<Result<(), SendError>>,
    },
    Status {
        session: Option<SessionHandle>,
        reply: oneshot::Sender<Option<Status>>,
    },
    Close {
        session: Option<SessionHandle>,
        reply: oneshot::Sender<()>,
    },
}

/// The per-session RNG: ChaCha20 seeded once from the operating system.
pub(crate) fn rng() -> Box<dyn SessionRng> {
    Box::new(rand_chacha::ChaCha20Rng::from_os_rng())
}

/// Sleeps until `deadline`, or forever when there is none.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Inner packets on their way to the application. Never blocks the driver: when the application
/// falls behind, new packets are dropped and counted, as a full NIC queue would.
#[derive(Debug)]
pub(crate) struct InboundQueue<T = Vec<u8>> {
    tx: mpsc::Sender<T>,
    dropped: u64,
}

impl<T> InboundQueue<T> {
    pub(crate) fn new(tx: mpsc::Sender<T>) -> Self {
        Self { tx, dropped: 0 }
    }

    pub(crate) fn push_item(&mut self, item: T) {
        if self.tx.try_send(item).is_err() {
            self.dropped += 1;
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl InboundQueue<Vec<u8>> {
    pub(crate) fn push(&mut self, packet: &[u8]) {
        self.push_item(packet.to_vec());
    }
}

/// Where a session stands, updated on every transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateView {
    /// Current state.
    pub state: State,
    /// Transition counter; strictly increasing.
    pub version: u64,
    /// Binding epoch; increases with every rebind.
    pub epoch: u64,
    /// Session id, once the handshake has assigned one.
    #[serde(serialize_with = "serialize_session_id")]
    pub session_id: Option<SessionId>,
    /// Reason of the last transition.
    pub last_reason: Option<Reason>,
}

impl StateView {
    pub(crate) fn of(session: &Session) -> Self {
        Self {
            state: session.state(),
            version: session.version(),
            epoch: session.epoch(),
            session_id: session.session_id(),
            last_reason: session.last_reason(),
        }
    }
}

fn serialize_session_id<S: serde::Serializer>(
    id: &Option<SessionId>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => serializer.collect_str(id),
        None => serializer.serialize_none(),
    }
}

/// A snapshot of a session: state plus traffic counters.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// State, version, epoch, id.
    #[serde(flatten)]
    pub view: StateView,
    /// Packets and bytes each way, drops by reason, handshakes.
    pub stats: jvpn_session::SessionStats,
    /// Inner packets dropped because the application did not read them in time.
    pub inbound_dropped: u64,
}

impl Status {
    pub(crate) fn of(session: &Session, inbound_dropped: u64) -> Self {
        Self {
            view: StateView::of(session),
            stats: session.stats().clone(),
            inbound_dropped,
        }
    }
}
