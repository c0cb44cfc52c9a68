//! The client and server adapters wrapped with the per-datagram checks (what a core did with
//! a tagged, i.e. injected or forged, frame, judged right after it handled that frame), the
//! nonce ledger on everything they send, and their lives: a server node is killed and
//! restarted as its outages say, and the client starts a new BIRTH when the server lost its
//! session (as the runtime does).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::Instant;

use jvpn_session::{Endpoint, EndpointInbound, Inbound, Reason, Session, SessionHandle};
use jvpn_wire::{MessageType, peek_type};

use super::attacker::{Ledger, hash};
use super::store::FaultyStore;
use crate::adapters::{ClientNode, Feed, ServerNode};
use crate::node::{LinkId, Node};

/// New BIRTHs the client starts at most in one run.
const MAX_RECONNECTS: u64 = 3;

/// Makes incarnation `n` of a node's endpoint (0 at the start, +1 per restart).
pub(crate) type StartEndpoint = Box<dyn Fn(u32) -> Result<Endpoint, String>>;

/// Makes the client's `n`th session (0 at the start, +1 per new BIRTH) at `now`.
pub(crate) type StartSession = Box<dyn Fn(u64, Instant) -> Result<Session, String>>;

/// What a server node did over all its incarnations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ServerFigures {
    pub(crate) restarts: u64,
    pub(crate) lost_while_down: u64,
    pub(crate) reattach_accepted: u64,
    pub(crate) reattach_replays_refused: u64,
    /// REATTACH_INITs a restarted incarnation refused for naming a session it does not hold.
    pub(crate) reattach_refused_after_restart: u64,
    /// Sessions a restarted incarnation rebuilt from the store record and kept (the session
    /// survived the restart).
    pub(crate) adopted_after_restart: u64,
}

/// A server node that checks, for every datagram it handles: no REATTACH_INIT accepted twice
/// (same node, or after another node accepted it, or before a restart), no HANDSHAKE_INIT
/// creating or rekeying a session twice in one incarnation of a node (a refused one accepted
/// later is counted, not failed; one accepted again after a restart is counted), no forged
/// frame getting past the drop path. It dies and comes back as its outages say.
pub(crate) struct GuardedServer {
    node: Option<ServerNode>,
    pub(crate) index: usize,
    ledger: Rc<RefCell<Ledger>>,
    start: StartEndpoint,
    base: Instant,
    store: FaultyStore,
    /// `(down_at, up_at)` still to come, in order.
    outages: VecDeque<(Instant, Instant)>,
    /// While down: when the node comes back.
    up_at: Option<Instant>,
    incarnation: u32,
    parked_feed: Option<Feed>,
    parked_inbox: Vec<(SessionHandle, Vec<u8>)>,
    figures: ServerFigures,
}

impl fmt::Debug for GuardedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedServer")
            .field("index", &self.index)
            .field("incarnation", &self.incarnation)
            .field("up", &self.node.is_some())
            .finish_non_exhaustive()
    }
}

impl GuardedServer {
    pub(crate) fn new(
        start: StartEndpoint,
        feed: Option<Feed>,
        index: usize,
        ledger: Rc<RefCell<Ledger>>,
        base: Instant,
        store: FaultyStore,
        outages: VecDeque<(Instant, Instant)>,
    ) -> Result<Self, String> {
        let mut node = ServerNode::new(start(0)?);
        if let Some(feed) = feed {
            node = node.with_feed(feed);
        }
        Ok(Self {
            node: Some(node),
            index,
            ledger,
            start,
            base,
            store,
            outages,
            up_at: None,
            incarnation: 0,
            parked_feed: None,
            parked_inbox: Vec::new(),
            figures: ServerFigures::default(),
        })
    }

    /// The live node, if it is up.
    pub(crate) fn node(&self) -> Option<&ServerNode> {
        self.node.as_ref()
    }

    /// Which life the node is in (0 before any restart).
    pub(crate) fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// The inner datagrams received since the last call (including by a node since killed).
    pub(crate) fn take_inbox(&mut self) -> Vec<(SessionHandle, Vec<u8>)> {
        let mut inbox = std::mem::take(&mut self.parked_inbox);
        if let Some(node) = &mut self.node {
            inbox.extend(node.take_inbox());
        }
        inbox
    }

    /// The figures of every incarnation, the live one included.
    pub(crate) fn figures(&self) -> ServerFigures {
        let mut figures = self.figures.clone();
        if let Some(node) = &self.node {
            self.add_counters(&mut figures, node);
        }
        figures
    }

    fn add_counters(&self, figures: &mut ServerFigures, node: &ServerNode) {
        let reattach = &node.endpoint().counters().reattach;
        figures.reattach_accepted += reattach.accepted;
        figures.reattach_replays_refused += reattach.replays + reattach.stale_counter;
        if self.incarnation > 0 {
            figures.reattach_refused_after_restart += reattach.unknown_session;
            figures.adopted_after_restart += node.endpoint().counters().cluster.adopted;
        }
    }

    /// Kills and restarts the node as its outages say, up to `now`.
    fn live(&mut self, now: Instant) {
        self.store.set_now(now.saturating_duration_since(self.base));
        loop {
            if let Some(up_at) = self.up_at {
                if up_at > now {
                    return;
                }
                self.restart();
            } else {
                match self.outages.front() {
                    Some(&(down_at, up_at)) if down_at <= now => {
                        self.outages.pop_front();
                        self.kill(up_at);
                    }
                    _ => return,
                }
            }
        }
    }

    fn kill(&mut self, up_at: Instant) {
        self.up_at = Some(up_at);
        let Some(mut node) = self.node.take() else {
            return;
        };
        let mut figures = std::mem::take(&mut self.figures);
        self.add_counters(&mut figures, &node);
        self.figures = figures;
        // The histories end here: check what they hold before the node goes.
        let mut ledger = self.ledger.borrow_mut();
        for (handle, history) in node.histories() {
            if let Some(fault) = history.faults().first() {
                ledger.violation(format!(
                    "node {} {handle:?} history (killed): {fault}",
                    self.index
                ));
            }
        }
        if node.endpoint().violations() != 0 {
            ledger.violation(format!(
                "node {} violations (killed): {}",
                self.index,
                node.endpoint().violations()
            ));
        }
        self.parked_inbox.extend(node.take_inbox());
        self.parked_feed = node.feed().cloned();
    }

    fn restart(&mut self) {
        self.up_at = None;
        self.incarnation += 1;
        match (self.start)(self.incarnation) {
            Ok(endpoint) => {
                let mut node = ServerNode::new(endpoint);
                if let Some(feed) = self.parked_feed.take() {
                    node = node.with_feed(feed);
                }
                self.node = Some(node);
                self.figures.restarts += 1;
            }
            Err(e) => self
                .ledger
                .borrow_mut()
                .violation(format!("node {} cannot restart: {e}", self.index)),
        }
    }
}

impl Node for GuardedServer {
    fn handle_datagram(&mut self, from_link: LinkId, data: &mut [u8], now: Instant) {
        self.live(now);
        let Some(node) = self.node.as_mut() else {
            self.figures.lost_while_down += 1;
            return;
        };
        let h = hash(data);
        let kind = peek_type(data).ok();
        let before = node.endpoint().counters().clone();
        let (tagged, forged, seen_here, accepted_elsewhere) = {
            let mut ledger = self.ledger.borrow_mut();
            let is_init = matches!(
                kind,
                Some(MessageType::ReattachInit | MessageType::HandshakeInit)
            );
            let seen_here = is_init && !ledger.seen_inits.insert((self.index, h));
            (
                ledger.injected.contains(&h),
                ledger.forged.contains(&h),
                seen_here,
                ledger.accepted_inits.contains(&h),
            )
        };

        node.handle_datagram(from_link, data, now);

        let after = node.endpoint().counters();
        let inbound = node.last_inbound().cloned();
        let mut ledger = self.ledger.borrow_mut();
        let index = self.index;
        let resets = after.resets.sent.saturating_sub(before.resets.sent);
        ledger.nonces.resets_queued(index, self.incarnation, resets);
        let first = if seen_here {
            ledger
                .first_outcome
                .get(&(index, h))
                .cloned()
                .unwrap_or_default()
        } else {
            let outcome = format!("{inbound:?} at {now:?}, tagged {tagged}, on {from_link}");
            if kind.is_some_and(|k| {
                matches!(k, MessageType::ReattachInit | MessageType::HandshakeInit)
            }) {
                ledger.first_outcome.insert((index, h), outcome);
            }
            String::new()
        };
        if tagged {
            ledger.figures.delivered_to_servers += 1;
        }
        if forged && !matches!(inbound, Some(EndpointInbound::Dropped(_))) {
            ledger.violation(format!(
                "forged {kind:?} on {from_link} accepted by server node {index}: {inbound:?}"
            ));
        }
        match kind {
            Some(MessageType::ReattachInit) => {
                if seen_here {
                    ledger.figures.reattach_replays_delivered += 1;
                }
                let processed_before = ledger.processed_inits.contains(&(index, h));
                if after.reattach.wire.dh_started > before.reattach.wire.dh_started {
                    ledger.processed_inits.insert((index, h));
                }
                if after.reattach.accepted > before.reattach.accepted {
                    if seen_here && !processed_before && !accepted_elsewhere {
                        ledger.figures.reattach_accepted_after_early_drop += 1;
                    }
                    if processed_before || accepted_elsewhere {
                        ledger.violation(format!(
                            "replayed REATTACH_INIT on {from_link} accepted by server node \
                             {index} (incarnation {}; processed here before: \
                             {processed_before}, accepted before: {accepted_elsewhere}); first \
                             delivery: {first}",
                            self.incarnation
                        ));
                    }
                    if tagged {
                        ledger.figures.relayed_reattach_accepted += 1;
                    }
                    ledger.accepted_inits.insert(h);
                }
            }
            Some(MessageType::HandshakeInit) => {
                let created = after.sessions_created > before.sessions_created;
                let rekeyed = after.rekeys > before.rekeys;
                let accepted_in = ledger.accepted_handshakes.get(&(index, h)).copied();
                if created || rekeyed {
                    ledger
                        .accepted_handshakes
                        .insert((index, h), self.incarnation);
                    if seen_here && accepted_in.is_none() {
                        ledger.figures.relayed_handshake_accepted += 1;
                    }
                }
                match accepted_in {
                    Some(life) if (created || rekeyed) && life == self.incarnation => {
                        ledger.violation(format!(
                            "replayed HANDSHAKE_INIT on {from_link} accepted again by server \
                             node {index} (created: {created}, rekeyed: {rekeyed}, tagged: \
                             {tagged}); first delivery: {first}"
                        ));
                    }
                    Some(_) if created || rekeyed => {
                        ledger.figures.handshake_replays_after_restart += 1;
                    }
                    _ => {}
                }
                let seen_elsewhere = ledger
                    .seen_inits
                    .iter()
                    .any(|(n, x)| *n != index && *x == h);
                if created && seen_elsewhere {
                    ledger.figures.cross_node_handshake_sessions += 1;
                }
            }
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.live(now);
        if let Some(node) = &mut self.node {
            node.handle_timeout(now);
        }
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<(LinkId, Vec<u8>)> {
        self.store.set_now(now.saturating_duration_since(self.base));
        let (link, data) = self.node.as_mut()?.poll_transmit(now)?;
        let mut ledger = self.ledger.borrow_mut();
        if let Some(what) = ledger
            .nonces
            .server_sent(self.index, self.incarnation, &data)
        {
            ledger.violation(what);
        }
        Some((link, data))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let event = match self.up_at {
            Some(up_at) => Some(up_at),
            None => self.outages.front().map(|&(down_at, _)| down_at),
        };
        let inner = self.node.as_ref().and_then(ServerNode::poll_timeout);
        match (inner, event) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The client node, checking that no forged frame gets past its drop path, entering what it
/// sends in the nonce ledger, and starting a new session when the server lost the old one.
pub(crate) struct GuardedClient {
    pub(crate) inner: ClientNode,
    ledger: Rc<RefCell<Ledger>>,
    start: StartSession,
    /// New BIRTHs started.
    pub(crate) reconnects: u64,
    /// Of which reached a bound state.
    pub(crate) reestablished: u64,
    bound_seen: bool,
}

impl fmt::Debug for GuardedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedClient")
            .field("inner", &self.inner)
            .field("reconnects", &self.reconnects)
            .finish_non_exhaustive()
    }
}

impl GuardedClient {
    pub(crate) fn new(inner: ClientNode, start: StartSession, ledger: Rc<RefCell<Ledger>>) -> Self {
        Self {
            inner,
            ledger,
            start,
            reconnects: 0,
            reestablished: 0,
            bound_seen: false,
        }
    }

    /// After any input: notes a first binding, or replaces a session the server lost with a
    /// new BIRTH (the runtime's reconnect), checking the old one's history first.
    fn after_input(&mut self, now: Instant) {
        let session = self.inner.session();
        if !self.bound_seen && session.state().is_bound() {
            self.bound_seen = true;
            self.reestablished += u64::from(self.reconnects > 0);
        }
        let lost =
            session.state().is_terminated() && session.last_reason() == Some(Reason::SessionLost);
        if !lost || self.reconnects >= MAX_RECONNECTS {
            return;
        }
        let fresh = match (self.start)(self.reconnects + 1, now) {
            Ok(fresh) => fresh,
            Err(e) => {
                self.ledger
                    .borrow_mut()
                    .violation(format!("the client cannot reconnect: {e}"));
                return;
            }
        };
        let (old, history) = self.inner.replace_session(fresh);
        self.reconnects += 1;
        self.bound_seen = false;
        let mut ledger = self.ledger.borrow_mut();
        if let Some(fault) = history.faults().first() {
            ledger.violation(format!("client history (lost session): {fault}"));
        }
        if old.violations() != 0 {
            ledger.violation(format!(
                "client violations (lost session): {}",
                old.violations()
            ));
        }
    }
}

impl Node for GuardedClient {
    fn handle_datagram(&mut self, from_link: LinkId, data: &mut [u8], now: Instant) {
        let h = hash(data);
        let kind = peek_type(data).ok();
        let resets_before = self.inner.session().stats().resets_honoured;
        self.inner.handle_datagram(from_link, data, now);
        // A stateless reset is authenticated by its last 16 bytes only (docs/protocol.md §14),
        // which the attacker never flips: a bit flipped in its random filler forges nothing, and
        // honouring it only starts a reattach.
        let reset_honoured = self.inner.session().stats().resets_honoured > resets_before;
        {
            let mut ledger = self.ledger.borrow_mut();
            if ledger.injected.contains(&h) {
                ledger.figures.delivered_to_client += 1;
            }
            let inbound = self.inner.last_inbound().cloned();
            if ledger.forged.contains(&h)
                && !reset_honoured
                && !matches!(inbound, Some(Inbound::Dropped(_)))
            {
                ledger.violation(format!(
                    "forged {kind:?} on {from_link} accepted by the client: {inbound:?}"
                ));
            }
        }
        self.after_input(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        self.after_input(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<(LinkId, Vec<u8>)> {
        let (link, data) = self.inner.poll_transmit(now)?;
        let mut ledger = self.ledger.borrow_mut();
        if let Some(what) = ledger.nonces.client_sent(&data) {
            ledger.violation(what);
        }
        Some((link, data))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
}
