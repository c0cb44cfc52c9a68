//! The server side: answers handshakes, demultiplexes datagrams by receiver index, owns
//! many sessions.

mod amplification;
mod cluster;
mod dos;
mod handshake;
mod reattach;
mod reset;

pub use cluster::ClusterStats;
pub use dos::{DosLimits, DosStats};
pub use reset::{MAX_TRACKED_SOURCES, ResetLimits, ResetStats};

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::ops::{Bound, Range};
use std::sync::Arc;
use std::time::Instant;

use jvpn_wire::frame::DataPacket;
use jvpn_wire::{
    CookieChecker, MessageType, Psk, PublicKey, ReattachCounters, ReattachResponder, Responder,
    SessionId, TokenKey, peek_type,
};

use crate::session::keys::KeyLimits;
use crate::{
    ClockAnchor, ConfigError, DropCounts, DropReason, Event, Inbound, MemoryOwnershipStore, NodeId,
    OwnershipStore, PathId, Policy, Reason, SendError, ServerConfig, Session, SessionRng, Transmit,
};

/// Names one session inside an [`Endpoint`]. Handles are never reused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionHandle(pub u64);

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session#{}", self.0)
    }
}

/// What `Endpoint::handle_datagram` made of one datagram.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointInbound {
    /// An inner packet of `session`, decrypted in place: it is `buf[range]`.
    Inner {
        /// The session it belongs to.
        session: SessionHandle,
        /// Where the inner packet is in the buffer.
        range: Range<usize>,
    },
    /// A handshake or control message, handled.
    Consumed,
    /// Answered without keeping any state for this path: under load, an initiation without a
    /// valid MAC2 got a COOKIE_REPLY (queued on this path). Once that reply is sent, a runtime
    /// that names remotes with path ids can forget this one, so spoofed sources cannot grow its
    /// table.
    AnsweredStatelessly,
    /// Dropped silently and counted under this reason (in the endpoint's counters when no
    /// session owned it, otherwise in that session's stats).
    Dropped(DropReason),
}

/// What the endpoint has counted outside any session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointCounters {
    /// Initiations dropped because MAC1 did not match (no DH spent).
    pub mac1_rejected: u64,
    /// Initiations that passed MAC1 and entered Noise (each cost a Diffie-Hellman).
    pub dh_started: u64,
    /// Initiations that failed inside Noise.
    pub noise_failed: u64,
    /// Authenticated initiations from a static key that is not a configured peer.
    pub unknown_peer: u64,
    /// Initiations whose timestamp was not newer than the peer's last accepted one.
    pub handshake_replays: u64,
    /// Sessions created by a first handshake.
    pub sessions_created: u64,
    /// Sessions ended because their client started a new one.
    pub sessions_superseded: u64,
    /// Resumes answered with new keys on the same binding.
    pub rekeys: u64,
    /// Reattaches committed by PATH_CONFIRM (a new binding, epoch + 1).
    pub rebinds: u64,
    /// Resumes refused: not on the bound path of a bound session (a resume never moves a
    /// binding; only a REATTACH does).
    pub resumes_refused: u64,
    /// First attaches refused because the ownership store gave the session id to another node.
    pub ownership_conflicts: u64,
    /// REATTACH_INIT outcomes, by step.
    pub reattach: ReattachStats,
    /// Datagrams dropped before reaching a session, by reason.
    pub drops: DropCounts,
    /// The DoS defences: replays, cookie replies, rate limits, pending reattaches.
    pub dos: DosStats,
    /// The ownership store: sessions rebuilt from it, unknown claim outcomes, fencing.
    pub cluster: ClusterStats,
    /// Stateless resets sent for unknown receiver indices, and the triggers refused.
    pub resets: ResetStats,
}

/// What the endpoint counted of REATTACH_INITs, by the step that decided (docs/protocol.md
/// §13, server order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReattachStats {
    /// Wire-layer steps: malformed, MAC1, token not opening, DH started, Noise failures,
    /// identity mismatches.
    pub wire: ReattachCounters,
    /// Tokens past their expiry.
    pub token_expired: u64,
    /// Tokens at or below the session's floor (already spent by a committed reattach) or from
    /// a batch the session no longer holds.
    pub token_reused: u64,
    /// Tokens naming a session this endpoint does not hold.
    pub unknown_session: u64,
    /// Exact replays caught by the ephemeral filter (before any Diffie-Hellman).
    pub replays: u64,
    /// Attempts whose counter was not above the last accepted one.
    pub stale_counter: u64,
    /// Answered CLOCK (timestamp outside the window).
    pub clock: u64,
    /// Answered EXPIRED (recovery window over).
    pub expired: u64,
    /// Answered POLICY (state, switch budget or transport).
    pub policy: u64,
    /// Answered SUPERSEDED (the ownership claim lost).
    pub superseded: u64,
    /// Answered STORE_UNAVAILABLE.
    pub store_unavailable: u64,
    /// Answered OK (claim made, PATH_CONFIRM awaited).
    pub accepted: u64,
}

#[derive(Debug)]
struct PeerState {
    psk: Psk,
    /// The newest accepted initiation timestamp (the replay guard).
    last_init_nanos: Option<u64>,
    /// The peer's live session, if any.
    session: Option<SessionHandle>,
}

/// Bookkeeping that follows the sessions: who owns which receiver index, who may have output.
#[derive(Debug, Default)]
struct Registry {
    index: BTreeMap<u32, SessionHandle>,
    tx_ready: BTreeSet<SessionHandle>,
    ev_ready: BTreeSet<SessionHandle>,
    terminated: BTreeSet<SessionHandle>,
    tx_cursor: Option<SessionHandle>,
}

impl Registry {
    /// Refreshes the bookkeeping after any call into `session`.
    fn touched(&mut self, handle: SessionHandle, session: &mut Session) {
        for index in session.take_retired_indices() {
            if self.index.get(&index) == Some(&handle) {
                self.index.remove(&index);
            }
        }
        self.tx_ready.insert(handle);
        self.ev_ready.insert(handle);
        if session.state().is_terminated() {
            self.terminated.insert(handle);
        }
    }
}

/// The server side of jvpn, sans-IO: answers HANDSHAKE_INITs, owns the sessions they create
/// and demultiplexes DATA / CONTROL datagrams to them by receiver index.
///
/// # Call order
///
/// Same grammar as [`Session`]: after [`handle_datagram`](Self::handle_datagram),
/// [`send`](Self::send), [`close`](Self::close) or [`handle_timeout`](Self::handle_timeout),
/// drain [`poll_transmit`](Self::poll_transmit) until `None`, then
/// [`poll_event`](Self::poll_event) until `None`, then arm one sleep to
/// [`poll_timeout`](Self::poll_timeout). TERMINATED sessions are removed once their events
/// (and final datagrams) are drained.
///
/// # Handshake rules
///
/// An initiation is checked in this order, each failure a silent, counted drop: frame shape,
/// MAC1 (no Diffie-Hellman before it), Noise, known peer static key, payload, timestamp
/// strictly newer than the peer's last accepted one (so a replayed first message creates no
/// session). Then `resume: None` creates a new session after claiming its id in the
/// ownership store (the peer's older session ends with `Superseded`); `resume: Some(id)`
/// naming the peer's live session rekeys it, only on its bound path while bound (anywhere
/// else it is dropped and counted in `resumes_refused`: a resume never moves a binding); any
/// other id is treated as a new session. Every HANDSHAKE_RESP carries a resumption grant.
///
/// # Reattach rules
///
/// A REATTACH_INIT is checked cheapest first (parse, MAC1, token, token expiry and floor,
/// exact-replay filter, record, Noise proof of possession, counter, clock window, policy,
/// ownership claim), each failure before the proof a silent drop counted in
/// [`ReattachStats`]. An accepted one is answered on its path with a path challenge, fresh
/// tokens and `RS'`; the binding moves only when the client's PATH_CONFIRM opens under the
/// new keys on that path (docs/protocol.md §13).
///
/// # Cluster
///
/// Every ownership claim (first attach, CAS #1 on an accepted reattach, CAS #2 on the
/// PATH_CONFIRM that commits it) writes the session's snapshot, sealed under a key derived
/// from the cluster token key, into the [`OwnershipStore`] record. A reattach for a session
/// this endpoint does not hold (another node's, or its own before a restart) is answered from
/// that record: the session is rebuilt, checked in the same order (the store's `last_rc` and
/// token floor refuse replays), and forgotten again unless the reattach is accepted. A binding
/// commits only if CAS #2 succeeds. [`handle_timeout`](Self::handle_timeout) runs
/// [`check_ownership`](Self::check_ownership) every `Policy::ownership_check`: a session whose
/// record moved on to another node's validated binding ends (`OwnershipLost`), and one whose
/// ownership the store has not confirmed for `Policy::ownership_lease` ends at that deadline
/// (`StoreUnavailable`). docs/protocol.md §13, "Ownership store".
/// # Stateless reset
///
/// A DATA / CONTROL frame for a receiver index no session owns is answered with a
/// STATELESS_RESET strictly smaller than itself, at most one per source per 20 ms and under a
/// global rate ([`ResetLimits`], counted in [`ResetStats`]); every response that creates a
/// receive index carries that index's reset token (docs/protocol.md §14).
///
/// Determinism: sessions are kept in `BTreeMap`s and visited in handle order.
/// `poll_timeout` is a scan over the sessions (fine at the foundation's scale).
pub struct Endpoint {
    responder: Responder,
    reattach: ReattachResponder,
    token_key: TokenKey,
    ownership: Arc<dyn OwnershipStore>,
    node: NodeId,
    offered_transports: Vec<u8>,
    prologue: Vec<u8>,
    policy: Policy,
    clock: ClockAnchor,
    rng: Box<dyn SessionRng>,
    peers: BTreeMap<PublicKey, PeerState>,
    sessions: BTreeMap<SessionHandle, Session>,
    registry: Registry,
    next_handle: u64,
    counters: EndpointCounters,
    limits: KeyLimits,
    /// Violations of sessions already removed.
    reaped_violations: u64,
    dos_limits: DosLimits,
    /// Created at the first use (it needs `now`).
    cookie: Option<CookieChecker>,
    load: dos::LoadMeter,
    buckets: dos::SourceBuckets,
    init_replays: dos::InitReplayFilter,
    cookie_out: VecDeque<(PathId, Vec<u8>)>,
    /// Authenticated answers of sessions that are gone (an adopted session's error status).
    replies_out: VecDeque<(PathId, Vec<u8>)>,
    /// Sessions holding a pending reattach, and when it expires.
    pending_reattaches: BTreeMap<SessionHandle, Instant>,
    /// When the next ownership check runs (`None`: no live session).
    next_ownership_check: Option<Instant>,
    /// Bytes in and out of unvalidated paths, and which paths are validated.
    amplification: amplification::AmplificationGuard,
    /// Stateless resets: the reset key, the limiters and the queue.
    resets: reset::Resets,
    reset_limits: ResetLimits,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("public_key", &self.responder.public_key())
            .field("peers", &self.peers.len())
            .field("sessions", &self.sessions.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A server endpoint for `cfg`. Checks the policy and the peer list.
    pub fn new(cfg: ServerConfig, rng: Box<dyn SessionRng>) -> Result<Self, ConfigError> {
        cfg.policy.validate()?;
        let mut rng = rng;
        let reattach = ReattachResponder::new(cfg.local_key.clone());
        let responder = Responder::new(cfg.local_key);
        let token_key = cfg
            .cluster
            .token_key
            .unwrap_or_else(|| TokenKey::generate(&mut rng));
        let resets = reset::Resets::new(&token_key);
        let ownership = cfg
            .cluster
            .ownership
            .unwrap_or_else(|| Arc::new(MemoryOwnershipStore::new()));
        let own = responder.public_key();
        let mut peers = BTreeMap::new();
        for peer in cfg.peers {
            if peer.public_key == own {
                return Err(ConfigError::PeerIsSelf(own));
            }
            let state = PeerState {
                psk: peer.psk,
                last_init_nanos: None,
                session: None,
            };
            if peers.insert(peer.public_key, state).is_some() {
                return Err(ConfigError::DuplicatePeer(peer.public_key));
            }
        }
        Ok(Endpoint {
            responder,
            reattach,
            token_key,
            ownership,
            node: cfg.cluster.node,
            prologue: jvpn_wire::prologue(&cfg.offered_transports),
            offered_transports: cfg.offered_transports,
            policy: cfg.policy,
            clock: cfg.clock,
            rng,
            peers,
            sessions: BTreeMap::new(),
            registry: Registry::default(),
            next_handle: 1,
            counters: EndpointCounters::default(),
            limits: KeyLimits::default(),
            reaped_violations: 0,
            dos_limits: DosLimits::default(),
            cookie: None,
            load: dos::LoadMeter::default(),
            buckets: dos::SourceBuckets::default(),
            init_replays: dos::InitReplayFilter::default(),
            cookie_out: VecDeque::new(),
            replies_out: VecDeque::new(),
            pending_reattaches: BTreeMap::new(),
            next_ownership_check: None,
            amplification: amplification::AmplificationGuard::default(),
            resets,
            reset_limits: ResetLimits::default(),
        })
    }

    /// The server's static public key (what clients configure).
    pub fn public_key(&self) -> PublicKey {
        self.responder.public_key()
    }

    /// The limits of the DoS defences (see [`DosLimits`] for the defaults).
    pub fn set_dos_limits(&mut self, limits: DosLimits) {
        self.dos_limits = limits;
    }

    /// The limits of the DoS defences in force.
    pub fn dos_limits(&self) -> &DosLimits {
        &self.dos_limits
    }

    /// Processes one received datagram, decrypting it in place. The source the cookie defence
    /// binds to is the path id itself; a runtime that knows the remote address calls
    /// [`handle_datagram_from`](Self::handle_datagram_from) instead.
    pub fn handle_datagram(
        &mut self,
        path: PathId,
        buf: &mut [u8],
        now: Instant,
    ) -> EndpointInbound {
        self.handle_datagram_from(path, &path.0.to_be_bytes(), buf, now)
    }

    /// Processes one received datagram from `source` (opaque bytes naming the remote address,
    /// e.g. the socket address as the runtime sees it): the cookie of a COOKIE_REPLY and the
    /// per-source token bucket are keyed by it (docs/protocol.md §5). The anti-amplification
    /// budget is kept per `path`: until the path is validated, the endpoint sends it at most
    /// three times the bytes received on it.
    pub fn handle_datagram_from(
        &mut self,
        path: PathId,
        source: &[u8],
        buf: &mut [u8],
        now: Instant,
    ) -> EndpointInbound {
        self.amplification
            .on_received(path, buf.len(), self.dos_limits.amplification_table);
        let result = match peek_type(buf) {
            Err(_) => EndpointInbound::Dropped(DropReason::Malformed),
            Ok(MessageType::HandshakeInit) => self.handle_init(path, source, buf, now),
            Ok(MessageType::ReattachInit) => self.handle_reattach(path, source, buf, now),
            Ok(MessageType::Data | MessageType::Control) => {
                self.handle_sealed(path, source, buf, now)
            }
            Ok(_) => EndpointInbound::Dropped(DropReason::UnexpectedHandshake),
        };
        self.sync_responder_counters();
        result
    }

    fn handle_sealed(
        &mut self,
        path: PathId,
        source: &[u8],
        buf: &mut [u8],
        now: Instant,
    ) -> EndpointInbound {
        let Ok(packet) = DataPacket::new_checked(&*buf) else {
            return self.drop_here(DropReason::Malformed);
        };
        let index = packet.receiver_index();
        let session = self
            .registry
            .index
            .get(&index)
            .and_then(|h| self.sessions.get_mut(h).map(|s| (*h, s)));
        let Some((handle, session)) = session else {
            return self.drop_unknown_receiver(path, source, index, buf.len(), now);
        };
        let epoch = session.epoch();
        let inbound = session.handle_datagram(path, buf, now);
        if let Some(challenge) = session.take_confirm_ready() {
            self.finish_commit(handle, challenge, now);
        }
        let Some(session) = self.sessions.get_mut(&handle) else {
            return self.drop_here(DropReason::UnknownReceiver);
        };
        if session.epoch() > epoch {
            self.counters.rebinds = self.counters.rebinds.saturating_add(1);
        }
        // Authenticated on the binding (or a PATH_CONFIRM that just moved it here): the client
        // holds keys only a reply sent to this path gave it, so the path is validated.
        if !matches!(inbound, Inbound::Dropped(_)) && session.bound_path() == Some(path) {
            self.amplification.validate(path, handle);
        }
        self.registry.touched(handle, session);
        match inbound {
            Inbound::Inner(range) => EndpointInbound::Inner {
                session: handle,
                range,
            },
            Inbound::Dropped(reason) => EndpointInbound::Dropped(reason),
            _ => EndpointInbound::Consumed,
        }
    }

    fn drop_here(&mut self, reason: DropReason) -> EndpointInbound {
        self.counters.drops.count(reason);
        EndpointInbound::Dropped(reason)
    }

    fn sync_responder_counters(&mut self) {
        let r = self.responder.counters();
        self.counters.mac1_rejected = r.mac1_rejected;
        self.counters.dh_started = r.dh_started;
        self.counters.noise_failed = r.noise_failed;
        self.counters.reattach.wire = self.reattach.counters();
    }

    /// Queues one inner packet for `session` (see [`Session::send`]).
    pub fn send(
        &mut self,
        session: SessionHandle,
        inner: &[u8],
        now: Instant,
    ) -> Result<(), SendError> {
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(SendError::UnknownSession)?;
        let result = s.send(inner, now);
        self.registry.tx_ready.insert(session);
        result
    }

    /// Closes `session` (CONTROL Close, then TERMINATED `Closed`). Returns whether the endpoint
    /// had that session.
    pub fn close(&mut self, session: SessionHandle, now: Instant) -> bool {
        let Some(s) = self.sessions.get_mut(&session) else {
            return false;
        };
        s.close(now);
        self.registry.touched(session, s);
        true
    }

    /// Closes every session.
    pub fn close_all(&mut self, now: Instant) {
        for (&handle, session) in &mut self.sessions {
            session.close(now);
            self.registry.touched(handle, session);
        }
    }

    /// Writes the next datagram to send into `buf`. Sessions take turns (round robin in
    /// handle order), so one busy session cannot starve the others. A datagram that would take
    /// an unvalidated path past three times the bytes received from it is withheld (dropped
    /// and counted in `dos.amplification_withheld`), and the next one is tried.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        loop {
            let transmit = self.next_transmit(now, buf)?;
            if self.amplification.allow(transmit.path, transmit.len) {
                return Some(transmit);
            }
            let stats = &mut self.counters.dos;
            stats.amplification_withheld = stats.amplification_withheld.saturating_add(1);
            stats.amplification_withheld_bytes = stats
                .amplification_withheld_bytes
                .saturating_add(u64::try_from(transmit.len).unwrap_or(u64::MAX));
        }
    }

    fn next_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if let Some((path, reply)) = self
            .cookie_out
            .pop_front()
            .or_else(|| self.replies_out.pop_front())
        {
            buf.clear();
            buf.extend_from_slice(&reply);
            return Some(Transmit {
                path,
                len: reply.len(),
            });
        }
        if let Some(reset) = self.resets.poll_transmit(buf) {
            return Some(reset);
        }
        loop {
            let after = self.registry.tx_cursor;
            let next = match after {
                Some(cursor) => self
                    .registry
                    .tx_ready
                    .range((Bound::Excluded(cursor), Bound::Unbounded))
                    .next()
                    .or_else(|| self.registry.tx_ready.iter().next()),
                None => self.registry.tx_ready.iter().next(),
            };
            let handle = *next?;
            let transmit = self
                .sessions
                .get_mut(&handle)
                .and_then(|s| s.poll_transmit(now, buf));
            match transmit {
                Some(transmit) => {
                    self.registry.tx_cursor = Some(handle);
                    return Some(transmit);
                }
                None => {
                    self.registry.tx_ready.remove(&handle);
                }
            }
        }
    }

    /// The next event of any session. Drained sessions that are TERMINATED are removed here.
    pub fn poll_event(&mut self) -> Option<(SessionHandle, Event)> {
        while let Some(&handle) = self.registry.ev_ready.iter().next() {
            if let Some(event) = self.sessions.get_mut(&handle).and_then(Session::poll_event) {
                return Some((handle, event));
            }
            self.registry.ev_ready.remove(&handle);
        }
        self.reap();
        None
    }

    /// Removes TERMINATED sessions with nothing left to drain.
    fn reap(&mut self) {
        let done: Vec<SessionHandle> = self
            .registry
            .terminated
            .iter()
            .copied()
            .filter(|h| self.sessions.get(h).is_none_or(|s| !s.has_pending_output()))
            .collect();
        for handle in done {
            if let Some(mut session) = self.sessions.remove(&handle) {
                self.reaped_violations =
                    self.reaped_violations.saturating_add(session.violations());
                // A session rebuilt here that never committed leaves the record to the node
                // that holds the validated binding.
                let version = session
                    .record_mut()
                    .filter(|r| !r.adopted)
                    .and_then(|r| r.ownership);
                if let (Some(id), Some(version)) = (session.session_id(), version) {
                    self.ownership.release(id, self.node, version);
                }
            }
            self.registry.index.retain(|_, h| *h != handle);
            self.amplification.forget_session(handle);
            self.registry.tx_ready.remove(&handle);
            self.registry.ev_ready.remove(&handle);
            self.registry.terminated.remove(&handle);
            for peer in self.peers.values_mut() {
                if peer.session == Some(handle) {
                    peer.session = None;
                }
            }
        }
    }

    /// The earliest deadline of any session, of the next ownership check, or of a session's
    /// ownership lease.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(Session::poll_timeout)
            .chain(self.ownership_timeout())
            .min()
    }

    /// Runs every session's timers that are due at `now`, ends the sessions whose ownership
    /// lease ran out (at the lease deadline), and runs the ownership check when it is due
    /// (every `Policy::ownership_check`).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_pending(now);
        self.expire_leases(now);
        if self.next_ownership_check.is_some_and(|at| at <= now) {
            self.check_ownership(now);
        }
        for (&handle, session) in &mut self.sessions {
            if session.poll_timeout().is_some_and(|at| at <= now) {
                session.handle_timeout(now);
                self.registry.touched(handle, session);
            }
        }
    }

    /// One session, if the endpoint has it.
    pub fn session(&self, handle: SessionHandle) -> Option<&Session> {
        self.sessions.get(&handle)
    }

    /// Every session, in handle order.
    pub fn sessions(&self) -> impl Iterator<Item = (SessionHandle, &Session)> + '_ {
        self.sessions.iter().map(|(&h, s)| (h, s))
    }

    /// The number of sessions (including TERMINATED ones not yet drained).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The handle of the session with this id, if the endpoint has it (a live one before a
    /// TERMINATED one not yet drained).
    pub fn find(&self, session_id: SessionId) -> Option<SessionHandle> {
        let mut matching = self
            .sessions
            .iter()
            .filter(|(_, s)| s.session_id() == Some(session_id));
        let first = matching.clone().next().map(|(&h, _)| h);
        matching
            .find(|(_, s)| !s.state().is_terminated())
            .map(|(&h, _)| h)
            .or(first)
    }

    /// What the endpoint has counted outside its sessions.
    pub fn counters(&self) -> &EndpointCounters {
        &self.counters
    }

    /// Invariant violations over every session this endpoint ever had (0 unless there is a
    /// bug).
    pub fn violations(&self) -> u64 {
        self.sessions
            .values()
            .fold(self.reaped_violations, |acc, s| {
                acc.saturating_add(s.violations())
            })
    }

    #[cfg(test)]
    pub(crate) fn set_key_limits(&mut self, limits: KeyLimits) {
        self.limits = limits;
        for session in self.sessions.values_mut() {
            session.set_key_limits(limits);
        }
    }

    fn terminate_session(&mut self, handle: SessionHandle, reason: Reason, now: Instant) {
        if let Some(session) = self.sessions.get_mut(&handle) {
            session.terminate(reason, now);
            self.registry.touched(handle, session);
        }
    }
}
