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

/// The transport list both sides mix into the Noise prologue, which must be equal on both sides.
/// It names jvpn's transport vocabulary, not the link of the moment: a client cannot know which
/// listeners a server runs, and one session moves between transports, so a per-link value would
/// make a server with several listeners refuse every client (and a jump change the prologue).
pub(crate) const PROLOGUE_TRANSPORTS: &[u8] = b"udp,quic,wss";

/// Inner packets taken from the TUN in one loop turn before the transmits are flushed. Below the
/// session's default send queue (64), so a burst is never refused by the queue it fills.
pub(crate) const LOCAL_BURST: usize = 32;

/// Empty receive buffers on their way back to the reader tasks. A plain mutex: it is only held
/// for one non-blocking `try_recv`, never across an await, so the per-packet path takes no async
/// lock.
pub(crate) type BufferPool = std::sync::Arc<std::sync::Mutex<mpsc::Receiver<Vec<u8>>>>;

/// A pool of at most `capacity` recycled buffers: the sender gives buffers back, readers take
/// them with [`take_buffer`].
pub(crate) fn buffer_pool(capacity: usize) -> (mpsc::Sender<Vec<u8>>, BufferPool) {
    let (tx, rx) = mpsc::channel(capacity);
    (tx, std::sync::Arc::new(std::sync::Mutex::new(rx)))
}

/// A recycled buffer, or a new one of [`MAX_DATAGRAM`] bytes when none is free.
pub(crate) fn take_buffer(pool: &BufferPool) -> Vec<u8> {
    pool.lock()
        .ok()
        .and_then(|mut pool| pool.try_recv().ok())
        .unwrap_or_else(|| vec![0u8; MAX_DATAGRAM])
}

/// Asks the driver to close every session and waits until it has flushed the CLOSE; returns at
/// once when the driver has already stopped (nothing is left to close then).
pub(crate) async fn close_all(commands: &mpsc::Sender<Command>) {
    let (reply, done) = oneshot::channel();
    if commands
        .send(Command::Close {
            session: None,
            reply,
        })
        .await
        .is_ok()
    {
        let _ = done.await;
    }
}

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

/// The driver's one timer. Re-armed only when the core's deadline changes, so the per-packet
/// loop does not register a new timer on every turn.
#[derive(Debug)]
pub(crate) struct Alarm {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: Option<Instant>,
}

impl Alarm {
    pub(crate) fn new() -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(std::time::Duration::from_secs(86_400))),
            armed: None,
        }
    }

    /// Arms the alarm for `deadline` (`None`: never).
    pub(crate) fn arm(&mut self, deadline: Option<Instant>) {
        if deadline != self.armed {
            if let Some(at) = deadline {
                self.sleep.as_mut().reset(at.into());
            }
            self.armed = deadline;
        }
    }

    /// Resolves at the armed deadline; pending forever when disarmed.
    pub(crate) async fn fired(&mut self) {
        if self.armed.is_none() {
            std::future::pending::<()>().await;
        }
        self.sleep.as_mut().await;
        // A fired deadline is spent: the next `arm` re-arms even for the same instant.
        self.armed = None;
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

/// Where inner packets come from and go to: the application (datagram API) or a TUN device.
#[derive(Debug)]
pub(crate) enum Local {
    Channel(InboundQueue),
    Tun(crate::tunnel::TunSide),
}

impl Local {
    /// Hands one inner packet from the session to the local side.
    pub(crate) async fn deliver(&mut self, packet: &[u8]) {
        match self {
            Local::Channel(queue) => queue.push(packet),
            Local::Tun(tun) => tun.deliver(packet).await,
        }
    }

    /// The next inner packet from the local side; pending forever for the datagram API, whose
    /// packets arrive as commands.
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> Option<std::io::Result<usize>> {
        match self {
            Local::Channel(_) => std::future::pending().await,
            Local::Tun(tun) => Some(tun.recv(buf).await),
        }
    }

    /// The next inner packet if one is queued already (a burst drains in one loop turn).
    pub(crate) fn try_recv(&self, buf: &mut [u8]) -> Option<usize> {
        match self {
            Local::Channel(_) => None,
            Local::Tun(tun) => tun.try_recv(buf).ok(),
        }
    }

    /// Whether an inner packet read from the local side may enter the tunnel.
    pub(crate) fn outbound_allowed(&mut self, packet: &[u8]) -> bool {
        match self {
            Local::Channel(_) => true,
            Local::Tun(tun) => tun.outbound_allowed(packet),
        }
    }

    pub(crate) fn record(&mut self, record: &jvpn_session::AuditRecord) {
        if let Local::Tun(tun) = self {
            tun.journal.record(record);
        }
    }

    pub(crate) fn history(&self, session_id: Option<&str>) -> Vec<jvpn_session::AuditRecord> {
        match self {
            Local::Channel(_) => Vec::new(),
            Local::Tun(tun) => tun.journal.history_for(session_id),
        }
    }

    pub(crate) fn tun_status(&self) -> Option<crate::tunnel::TunStatus> {
        match self {
            Local::Channel(_) => None,
            Local::Tun(tun) => Some(tun.status()),
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        match self {
            Local::Channel(queue) => queue.dropped(),
            Local::Tun(tun) => tun.unknown_destination + tun.source_not_allowed,
        }
    }

    pub(crate) fn unknown_destination(&self) -> u64 {
        match self {
            Local::Channel(_) => 0,
            Local::Tun(tun) => tun.unknown_destination,
        }
    }

    pub(crate) fn source_not_allowed(&self) -> u64 {
        match self {
            Local::Channel(_) => 0,
            Local::Tun(tun) => tun.source_not_allowed,
        }
    }
}

/// Whether a client whose session ended with `reason` should start a new session by itself.
/// Only when the server has lost the session (it restarted, say); never after a close, an
/// authentication failure or a policy limit — those are the user's to look at.
pub(crate) fn reason_allows_reconnect(reason: Reason) -> bool {
    matches!(reason, Reason::SessionLost)
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
    /// An inner round trip (PROBE / PROBE_ACK) succeeded on the current binding.
    pub ready: bool,
    /// The last measured inner round-trip time.
    pub rtt: Option<std::time::Duration>,
    /// The driver has stopped: this session ended and no new one will follow.
    pub finished: bool,
}

impl StateView {
    pub(crate) fn of(session: &Session) -> Self {
        Self {
            state: session.state(),
            version: session.version(),
            epoch: session.epoch(),
            session_id: session.session_id(),
            last_reason: session.last_reason(),
            ready: false,
            rtt: None,
            finished: false,
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
