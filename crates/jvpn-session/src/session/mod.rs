//! One session (client or server role) in the sans-IO grammar.

mod client;
mod cookie;
mod datapath;
pub(crate) mod keys;
mod multipath;
mod probe;
mod queue;
mod reattach;
pub(crate) mod record;
mod reset;
mod server;
mod server_reattach;
pub(crate) mod snapshot;
pub(crate) mod stats;
mod timers;

use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;
use std::time::Instant;

use jvpn_wire::frame::MAX_DATA_PLAINTEXT;
use jvpn_wire::{ControlMessage, MessageType, PublicKey, SessionId, peek_type};

pub(crate) use client::ClientRole;
use keys::{KeyLimits, KeyState};
pub use multipath::PathReport;
use queue::PacketQueue;
pub(crate) use reattach::transport_name;
pub(crate) use server::Accepted;
pub use stats::{DropCounts, DropReason, SessionStats};

use crate::{
    AuditRecord, ClientConfig, ClockAnchor, ConnectError, PathId, Policy, Reason, SessionRng,
    State, StateMachine, SwitchReason, TimerKind, TimerTable, TransitionCtx,
};

/// One datagram to send: `buf[..len]` (the buffer passed to `poll_transmit`) on `path`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The path to send it on.
    pub path: PathId,
    /// Its length in bytes.
    pub len: usize,
}

/// What `handle_datagram` made of one datagram.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// An inner packet, decrypted in place: it is `buf[range]`.
    Inner(Range<usize>),
    /// A handshake or control message, handled; nothing for the application.
    Consumed,
    /// Dropped silently and counted under this reason.
    Dropped(DropReason),
}

/// Something the application (or runtime) should know about.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A state transition, with its audit record.
    Transition(AuditRecord),
    /// A handshake created a binding (first attach or rebind).
    HandshakeCompleted {
        /// The session.
        session_id: SessionId,
        /// This side's binding epoch after the handshake.
        epoch: u64,
    },
    /// A PROBE sent by [`Session::probe`] was answered: an authenticated round trip through
    /// the tunnel.
    ProbeAcked {
        /// The probe's sequence number.
        seq: u32,
        /// Time from sending the probe to receiving its answer.
        rtt: std::time::Duration,
    },
    /// Multipath client: the binding committed on `to` (the first attach, with `from: None`,
    /// or a rebind). `reason` says why `to` carries the session (also in
    /// [`Session::last_switch`]).
    PathSwitched {
        /// The previous active path, if any.
        from: Option<PathId>,
        /// The path the session is bound to now.
        to: PathId,
        /// Why.
        reason: SwitchReason,
    },
    /// A rekey installed fresh keys; the binding and the epoch are unchanged.
    Rekeyed {
        /// The session.
        session_id: SessionId,
        /// The (unchanged) binding epoch.
        epoch: u64,
    },
}

/// Why `send` refused an inner packet. Nothing was queued.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The send queue holds `Policy::send_queue_packets` packets already (not attached yet, or
    /// the application sends faster than it drains `poll_transmit`). Drain `poll_transmit`, or
    /// drop the packet (IP is best-effort) and retry later.
    #[error("send queue is full")]
    QueueFull,
    /// The packet is larger than one frame can carry. Send smaller packets (lower the MTU).
    #[error("inner packet of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The packet's length.
        len: usize,
        /// The largest inner packet.
        max: usize,
    },
    /// The session is TERMINATED; it will never send again. Start a new session.
    #[error("session is terminated")]
    Terminated,
    /// `Endpoint::send` named a session the endpoint does not have (never existed, or
    /// terminated and removed). Stop sending to it.
    #[error("no such session")]
    UnknownSession,
}

/// Which side of the handshake a session is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The initiator (`Session::connect`).
    Client,
    /// The responder (created by an `Endpoint`).
    Server,
}

enum RoleState {
    Client(Box<ClientRole>),
    Server(server::ServerRole),
}

/// One jvpn session — keys, session id, state, timers — as a deterministic, sans-IO state
/// machine. It never reads the clock, never touches a socket and draws randomness only from
/// the RNG it was given.
///
/// # Call order
///
/// A client session is made with [`Session::connect`]; server sessions live inside an
/// [`Endpoint`](crate::Endpoint). Then, in a loop:
///
/// 1. feed input: [`handle_datagram`](Self::handle_datagram) for each received datagram
///    (decrypted in place; an [`Inbound::Inner`] range is an inner packet),
///    [`send`](Self::send) for each inner packet to send, [`handle_timeout`](Self::handle_timeout)
///    when the deadline of `poll_timeout` passes, [`close`](Self::close) to end;
/// 2. drain [`poll_transmit`](Self::poll_transmit) until `None`, sending each datagram;
/// 3. drain [`poll_event`](Self::poll_event) until `None`;
/// 4. arm one sleep to [`poll_timeout`](Self::poll_timeout).
///
/// # Lifecycle (foundation)
///
/// BIRTH sends HANDSHAKE_INIT, retried every `handshake_retry` with a new ephemeral key and
/// sender index, until `handshake_timeout` (→ TERMINATED `HandshakeTimeout`). The response
/// binds the session to the path it arrived on (ATTACHED, epoch 1) and carries the resumption
/// grant (`RS`, `psk_epoch`, four reattach tokens). Keepalives flow when idle.
///
/// # Reattach (docs/protocol.md §12–§13)
///
/// When nothing authenticated arrives for `dead_after`, or when the switch logic moves the
/// session (`start_rebind`), the client goes RECOVERING and sends REATTACH_INIT (Noise IKpsk1
/// under the resumption PSK, one token, a strictly increasing counter) on the chosen path,
/// retried every `reattach_retry`. An OK REATTACH_RESP gives fresh keys: the client sends
/// PATH_CONFIRM first under them (resent every `reattach_retry` until PATH_RESPONSE) and is
/// ATTACHED (`ReattachAccepted`, epoch + 1) on that path. The server commits its binding only
/// when that PATH_CONFIRM opens under the new keys on the new path; frames under the old keys
/// are then dropped as `Fenced`. The recovery window ends RECOVERING exactly at its deadline
/// (`RecoveryWindowExceeded`).
///
/// # Stateless reset (docs/protocol.md §14)
///
/// A client honours a STATELESS_RESET only with the exact token of the server index its
/// current keys address, on the bound path: it then reattaches (RECOVERING `StatelessReset`),
/// never terminates. Every other reset-shaped datagram is dropped and counted
/// (`SessionStats::resets_rejected`).
///
/// A datagram on another path than the bound one is dropped and counted (`WrongPath`): there
/// is no implicit roaming. Without a binding (BIRTH, RECOVERING) DATA and CONTROL frames are
/// dropped (`NotAttached`).
///
/// Rekeys (client: at `Policy::rekey_after` or the packet limit; server: a CONTROL
/// RekeyRequest near its packet limit) are handshakes with `resume: Some(session_id)` on the
/// bound path only (a resume never moves a binding): no transition, the previous receive key
/// stays valid for `rekey_grace`, a fresh grant of tokens arrives with the response, and a
/// key past its hard limits never seals again.
///
/// The epoch counts *this side's* rebinds; a reattach moves both sides by one.
pub struct Session {
    role: RoleState,
    sm: StateMachine,
    policy: Policy,
    clock: ClockAnchor,
    limits: KeyLimits,
    /// Client: the path handshakes go out on. Server: the path of the last handshake.
    path: PathId,
    session_id: Option<SessionId>,
    peer_static: PublicKey,
    keys: KeyState,
    timers: TimerTable,
    handshake_out: VecDeque<(PathId, Vec<u8>)>,
    control_out: VecDeque<ControlMessage>,
    data_out: PacketQueue,
    events: VecDeque<Event>,
    stats: SessionStats,
    /// A CONTROL Close still to be sealed after TERMINATED (`close`), and its path.
    close_pending: Option<PathId>,
    illegal_transitions: u64,
    probes: probe::ProbeTracker,
    /// Control messages for a given path (multipath probes, probe answers off the binding).
    path_out: VecDeque<(PathId, ControlMessage)>,
    /// Client: candidates, prober and switch controller, once `add_path` was called.
    multipath: Option<Box<multipath::Multipath>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role())
            .field("state", &self.state())
            .field("session_id", &self.session_id)
            .field("epoch", &self.epoch())
            .field("version", &self.version())
            .field("peer_static", &self.peer_static)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts a client session: BIRTH, HANDSHAKE_INIT queued for `path`, retry and timeout
    /// timers armed.
    pub fn connect(
        cfg: ClientConfig,
        path: PathId,
        now: Instant,
        rng: Box<dyn SessionRng>,
    ) -> Result<Session, ConnectError> {
        cfg.policy.validate()?;
        let peer_static = cfg.server_key;
        let policy = cfg.policy.clone();
        let clock = cfg.clock;
        let role = RoleState::Client(Box::new(ClientRole::new(cfg, rng)));
        let mut session = Session::base(role, policy, clock, path, peer_static);
        session.timers.set(
            TimerKind::HandshakeTimeout,
            now + session.policy.handshake_timeout,
        );
        session.start_handshake(now)?;
        Ok(session)
    }

    fn base(
        role: RoleState,
        policy: Policy,
        clock: ClockAnchor,
        path: PathId,
        peer_static: PublicKey,
    ) -> Session {
        Session {
            role,
            sm: StateMachine::new(&policy),
            data_out: PacketQueue::new(policy.send_queue_packets),
            policy,
            clock,
            limits: KeyLimits::default(),
            path,
            session_id: None,
            peer_static,
            keys: KeyState::default(),
            timers: TimerTable::new(),
            handshake_out: VecDeque::new(),
            control_out: VecDeque::new(),
            probes: probe::ProbeTracker::default(),
            path_out: VecDeque::new(),
            multipath: None,
            events: VecDeque::new(),
            stats: SessionStats::default(),
            close_pending: None,
            illegal_transitions: 0,
        }
    }

    /// Processes one received datagram, decrypting it in place.
    pub fn handle_datagram(&mut self, path: PathId, buf: &mut [u8], now: Instant) -> Inbound {
        // Deadlines that passed before this datagram take effect first: a reattach answer that
        // arrives after the recovery window never revives the session.
        self.run_timers(now);
        let inbound = match peek_type(buf) {
            Err(_) => Inbound::Dropped(DropReason::Malformed),
            Ok(MessageType::HandshakeResp) => self.handle_resp(path, buf, now),
            Ok(MessageType::ReattachResp) => self.handle_reattach_resp(path, buf, now),
            Ok(MessageType::CookieReply) => self.handle_cookie_reply(buf, now),
            Ok(MessageType::Data | MessageType::Control) => {
                let inbound = self.handle_sealed(path, buf, now);
                self.check_stateless_reset(path, buf, inbound, now)
            }
            Ok(_) => Inbound::Dropped(DropReason::UnexpectedHandshake),
        };
        if let Inbound::Dropped(reason) = inbound {
            self.stats.drops.count(reason);
        }
        self.drive_multipath(now);
        inbound
    }

    /// Queues one inner packet (copied into a recycled buffer). Packets queue in every state
    /// but TERMINATED, up to `Policy::send_queue_packets`, and leave through `poll_transmit`
    /// once the session is bound.
    pub fn send(&mut self, inner: &[u8], _now: Instant) -> Result<(), SendError> {
        if self.sm.state().is_terminated() {
            return Err(SendError::Terminated);
        }
        if inner.len() > MAX_DATA_PLAINTEXT {
            return Err(SendError::TooLarge {
                len: inner.len(),
                max: MAX_DATA_PLAINTEXT,
            });
        }
        if self.data_out.push(inner) {
            Ok(())
        } else {
            Err(SendError::QueueFull)
        }
    }

    /// Writes the next datagram to send into `buf` (cleared first) and says where it goes.
    /// Call until `None` after every input.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.next_transmit(now, buf)
    }

    /// Handles every timer whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.run_timers(now);
        self.drive_multipath(now);
    }

    /// The earliest deadline at which `handle_timeout` must be called, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timers = self.timers.next().map(|(_, at)| at);
        timers.into_iter().chain(self.mp_timeout()).min()
    }

    /// The next event, if any. Drain after every input.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Closes the session: a CONTROL Close is queued (if there are keys and a binding) and the
    /// session goes TERMINATED (`Closed`). Idempotent.
    pub fn close(&mut self, now: Instant) {
        if self.sm.state().is_terminated() {
            return;
        }
        if self.keys.current.is_some() {
            self.close_pending = self.sm.binding().and_then(|b| b.path);
        }
        self.terminate(Reason::Closed, now);
    }

    /// Client: send the next handshake initiations on `path` (for example after the runtime
    /// opened a new link while RECOVERING). The binding moves only when a handshake answered
    /// on a path completes. No effect on a server session.
    pub fn set_path(&mut self, path: PathId) {
        if matches!(self.role, RoleState::Client(_)) {
            self.path = path;
        }
    }

    /// Client or server.
    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Client(_) => Role::Client,
            RoleState::Server(_) => Role::Server,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.sm.state()
    }

    /// The reason of the last transition (`None` before the first).
    pub fn last_reason(&self) -> Option<Reason> {
        self.sm.last_reason()
    }

    /// The session id, once the handshake assigned one.
    pub fn session_id(&self) -> Option<SessionId> {
        self.session_id
    }

    /// This side's binding epoch (0 before the first binding, + 1 per rebind).
    pub fn epoch(&self) -> u64 {
        self.sm.epoch()
    }

    /// The state machine's version (number of transitions so far).
    pub fn version(&self) -> u64 {
        self.sm.version()
    }

    /// The bound path, in ATTACHED, VOLATILE and DEGRADED.
    pub fn bound_path(&self) -> Option<PathId> {
        self.sm.binding().and_then(|b| b.path)
    }

    /// Counters: traffic, handshakes, drops by reason.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// The peer's static public key (the server's for a client; the client's for a server).
    pub fn peer_static(&self) -> &PublicKey {
        &self.peer_static
    }

    /// The policy this session runs under.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Invariant violations plus illegal transitions attempted (0 unless there is a bug).
    pub fn violations(&self) -> u64 {
        self.sm
            .violations()
            .saturating_add(self.illegal_transitions)
    }

    /// Whether the session has output the shell has not drained yet.
    pub(crate) fn has_pending_output(&self) -> bool {
        !self.handshake_out.is_empty()
            || self.close_pending.is_some()
            || !self.events.is_empty()
            || !self.path_out.is_empty()
    }

    /// Receiver indices this session no longer owns (for the endpoint's demultiplexer).
    pub(crate) fn take_retired_indices(&mut self) -> std::vec::Drain<'_, u32> {
        self.keys.take_retired()
    }

    #[cfg(test)]
    pub(crate) fn queued_packets(&self) -> usize {
        self.data_out.len()
    }

    #[cfg(test)]
    pub(crate) fn set_key_limits(&mut self, limits: KeyLimits) {
        self.limits = limits;
    }

    fn ctx(&self, now: Instant, path: Option<PathId>) -> TransitionCtx {
        let mut ctx = TransitionCtx::new(now, &self.clock);
        ctx.path = path;
        ctx
    }

    fn record(&mut self, result: Result<AuditRecord, crate::IllegalTransition>) -> bool {
        match result {
            Ok(record) => {
                self.events.push_back(Event::Transition(record));
                true
            }
            Err(err) => {
                // Our own logic asked for a move the table forbids: a bug, never a peer's doing.
                self.illegal_transitions = self.illegal_transitions.saturating_add(1);
                debug_assert!(false, "{err}");
                false
            }
        }
    }

    fn transition(&mut self, to: State, reason: Reason, now: Instant) -> bool {
        let path = self.sm.binding().and_then(|b| b.path);
        let ctx = self.ctx(now, path);
        let result = self.sm.transition(to, reason, ctx);
        let moved = self.record(result);
        if moved && to.is_terminated() {
            self.on_terminated();
        }
        moved
    }

    fn rebind(&mut self, path: PathId, now: Instant) -> bool {
        let first = self.sm.state() == State::Birth;
        let ctx = self.ctx(now, None);
        let result = self.sm.rebind(path, ctx);
        let moved = self.record(result);
        if let (true, Some(session_id)) = (moved, self.session_id) {
            self.events.push_back(Event::HandshakeCompleted {
                session_id,
                epoch: self.sm.epoch(),
            });
        }
        if moved {
            self.mp_on_rebound(path, first, now);
        }
        moved
    }

    /// Ends the session for `reason` (a no-op if already TERMINATED).
    pub(crate) fn terminate(&mut self, reason: Reason, now: Instant) {
        if !self.sm.state().is_terminated() {
            self.transition(State::Terminated, reason, now);
        }
    }

    fn on_terminated(&mut self) {
        self.timers.stop_all();
        self.data_out.clear();
        self.control_out.clear();
        self.path_out.clear();
        self.handshake_out.clear();
        if let RoleState::Client(client) = &mut self.role {
            client.abandon_handshake();
        }
        if self.close_pending.is_none() {
            self.keys.drop_all();
        }
    }

    /// Records a completed handshake and arms the timers of a bound session.
    fn after_handshake(&mut self, now: Instant) {
        self.stats.handshakes = self.stats.handshakes.saturating_add(1);
        self.stats.last_handshake_at = Some(now);
        self.arm_key_timers(now);
        self.timers
            .set(TimerKind::DeadPeer, now + self.policy.dead_after);
        self.timers
            .set(TimerKind::Keepalive, now + self.policy.keepalive_interval);
    }

    fn arm_key_timers(&mut self, _now: Instant) {
        match self.keys.current.as_ref().map(|k| k.created) {
            Some(created) => self
                .timers
                .set(TimerKind::KeyExpiry, created + self.limits.reject_after),
            None => self.timers.stop(TimerKind::KeyExpiry),
        }
        match self.keys.next_grace_end() {
            Some(until) => self.timers.set(TimerKind::PreviousKeyExpiry, until),
            None => self.timers.stop(TimerKind::PreviousKeyExpiry),
        }
        if let (RoleState::Client(_), Some(created)) =
            (&self.role, self.keys.current.as_ref().map(|k| k.created))
        {
            self.timers
                .set(TimerKind::Rekey, created + self.policy.rekey_after);
        }
    }
}
