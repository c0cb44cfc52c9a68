//! The client and server adapters wrapped with the per-datagram checks: what a core did with
//! a tagged (injected or forged) frame, judged right after it handled that frame.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use jvpn_session::{EndpointInbound, Inbound};
use jvpn_wire::{MessageType, peek_type};

use super::attacker::{Ledger, hash};
use crate::adapters::{ClientNode, ServerNode};
use crate::node::{LinkId, Node};

/// A server node that checks, for every datagram it handles: no REATTACH_INIT accepted twice
/// (same node, or after another node accepted it), no HANDSHAKE_INIT creating or rekeying a
/// session twice on one node (a refused one accepted later is counted, not failed), no forged frame getting past the drop path.
#[derive(Debug)]
pub(crate) struct GuardedServer {
    pub(crate) inner: ServerNode,
    pub(crate) index: usize,
    ledger: Rc<RefCell<Ledger>>,
}

impl GuardedServer {
    pub(crate) fn new(inner: ServerNode, index: usize, ledger: Rc<RefCell<Ledger>>) -> Self {
        Self {
            inner,
            index,
            ledger,
        }
    }
}

impl Node for GuardedServer {
    fn handle_datagram(&mut self, from_link: LinkId, data: &mut [u8], now: Instant) {
        let h = hash(data);
        let kind = peek_type(data).ok();
        let before = self.inner.endpoint().counters().clone();
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

        self.inner.handle_datagram(from_link, data, now);

        let after = self.inner.endpoint().counters();
        let inbound = self.inner.last_inbound().cloned();
        let mut ledger = self.ledger.borrow_mut();
        let node = self.index;
        let first = if seen_here {
            ledger
                .first_outcome
                .get(&(node, h))
                .cloned()
                .unwrap_or_default()
        } else {
            let outcome = format!("{inbound:?} at {now:?}, tagged {tagged}, on {from_link}");
            if kind.is_some_and(|k| {
                matches!(k, MessageType::ReattachInit | MessageType::HandshakeInit)
            }) {
                ledger.first_outcome.insert((node, h), outcome);
            }
            String::new()
        };
        if tagged {
            ledger.figures.delivered_to_servers += 1;
        }
        if forged && !matches!(inbound, Some(EndpointInbound::Dropped(_))) {
            ledger.violation(format!(
                "forged {kind:?} on {from_link} accepted by server node {node}: {inbound:?}"
            ));
        }
        match kind {
            Some(MessageType::ReattachInit) => {
                if seen_here {
                    ledger.figures.reattach_replays_delivered += 1;
                }
                if after.reattach.accepted > before.reattach.accepted {
                    if seen_here || accepted_elsewhere {
                        ledger.violation(format!(
                            "replayed REATTACH_INIT on {from_link} accepted by server node \
                             {node} (seen here before: {seen_here}, accepted before: \
                             {accepted_elsewhere}); first delivery: {first}"
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
                let accepted_before = ledger.accepted_handshakes.contains(&(node, h));
                if created || rekeyed {
                    ledger.accepted_handshakes.insert((node, h));
                    if seen_here && !accepted_before {
                        ledger.figures.relayed_handshake_accepted += 1;
                    }
                }
                if accepted_before && (created || rekeyed) {
                    ledger.violation(format!(
                        "replayed HANDSHAKE_INIT on {from_link} accepted again by server node \
                         {node} (created: {created}, rekeyed: {rekeyed}, tagged: {tagged}); first delivery: \
                         {first}"
                    ));
                }
                let seen_elsewhere = ledger.seen_inits.iter().any(|(n, x)| *n != node && *x == h);
                if created && seen_elsewhere {
                    ledger.figures.cross_node_handshake_sessions += 1;
                }
            }
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<(LinkId, Vec<u8>)> {
        self.inner.poll_transmit(now)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
}

/// The client node, checking that no forged frame gets past its drop path.
#[derive(Debug)]
pub(crate) struct GuardedClient {
    pub(crate) inner: ClientNode,
    ledger: Rc<RefCell<Ledger>>,
}

impl GuardedClient {
    pub(crate) fn new(inner: ClientNode, ledger: Rc<RefCell<Ledger>>) -> Self {
        Self { inner, ledger }
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

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<(LinkId, Vec<u8>)> {
        self.inner.poll_transmit(now)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
}
