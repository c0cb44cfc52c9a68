//! A server [`Endpoint`] as a network node.

use std::collections::BTreeMap;
use std::time::Instant;

use jvpn_session::{Endpoint, EndpointInbound, Event, SessionHandle};

use super::{Feed, History, link_of, path_of};
use crate::node::{LinkId, Node};

/// A server [`Endpoint`] on the simulated network: it answers handshakes on any of its links,
/// keeps one checked [`History`] per session, an inbox of the inner datagrams it received, and
/// an optional [`Feed`] sent to its newest confirmed session (the simple one-client case; see
/// `feed_target`), counting how many datagrams went to each session.
#[derive(Debug)]
pub struct ServerNode {
    endpoint: Endpoint,
    feed: Option<Feed>,
    buf: Vec<u8>,
    inbox: Vec<(SessionHandle, Vec<u8>)>,
    events: Vec<(SessionHandle, Event)>,
    histories: BTreeMap<SessionHandle, History>,
    fed: BTreeMap<SessionHandle, u32>,
    last_inbound: Option<EndpointInbound>,
}

impl ServerNode {
    /// Wraps an endpoint.
    #[must_use]
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            feed: None,
            buf: Vec::new(),
            inbox: Vec::new(),
            events: Vec::new(),
            histories: BTreeMap::new(),
            fed: BTreeMap::new(),
            last_inbound: None,
        }
    }

    /// Sends `feed`'s datagrams to the newest bound session.
    #[must_use]
    pub fn with_feed(mut self, feed: Feed) -> Self {
        self.feed = Some(feed);
        self
    }

    /// The endpoint.
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The endpoint, mutably (e.g. to `send` or `close` between steps).
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The feed, if any.
    #[must_use]
    pub fn feed(&self) -> Option<&Feed> {
        self.feed.as_ref()
    }

    /// Takes the inner datagrams received since the last call, with their session.
    pub fn take_inbox(&mut self) -> Vec<(SessionHandle, Vec<u8>)> {
        std::mem::take(&mut self.inbox)
    }

    /// Every event the endpoint emitted, with its session.
    #[must_use]
    pub fn events(&self) -> &[(SessionHandle, Event)] {
        &self.events
    }

    /// The checked transitions of every session the endpoint ever had (also removed ones).
    #[must_use]
    pub fn histories(&self) -> &BTreeMap<SessionHandle, History> {
        &self.histories
    }

    /// How many feed datagrams were handed to `session` (datagrams fed to a session the client
    /// never completed, e.g. one superseded after a lost handshake response, are lost).
    #[must_use]
    pub fn fed_to(&self, session: SessionHandle) -> u32 {
        self.fed.get(&session).copied().unwrap_or(0)
    }

    /// What the endpoint made of the last datagram delivered to it (for checks on tagged,
    /// e.g. attacker-injected, frames).
    #[must_use]
    pub fn last_inbound(&self) -> Option<&EndpointInbound> {
        self.last_inbound.as_ref()
    }

    fn drain_events(&mut self) {
        while let Some((handle, event)) = self.endpoint.poll_event() {
            if let Event::Transition(record) = &event {
                self.histories.entry(handle).or_default().observe(record);
            }
            self.events.push((handle, event));
        }
    }

    /// The newest bound session. The endpoint itself holds a session's data until the client
    /// proves it has the keys (its first frame under them), so feeding a session whose
    /// handshake response was lost costs at most the queued packets, never a stream of sends
    /// into the void.
    fn feed_target(&self) -> Option<SessionHandle> {
        self.endpoint
            .sessions()
            .filter(|(_, s)| s.state().is_bound())
            .map(|(h, _)| h)
            .last()
    }
}

impl Node for ServerNode {
    fn handle_datagram(&mut self, from_link: LinkId, data: &mut [u8], now: Instant) {
        let inbound = self.endpoint.handle_datagram(path_of(from_link), data, now);
        if let EndpointInbound::Inner { session, range } = &inbound
            && let Some(inner) = data.get(range.clone())
        {
            self.inbox.push((*session, inner.to_vec()));
        }
        self.last_inbound = Some(inbound);
        self.drain_events();
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.endpoint.poll_timeout().is_some_and(|at| at <= now) {
            self.endpoint.handle_timeout(now);
        }
        let target = self.feed_target();
        if let Some(feed) = &mut self.feed {
            let (endpoint, fed) = (&mut self.endpoint, &mut self.fed);
            feed.tick(now, target.is_some(), |inner| {
                let Some(handle) = target else { return false };
                let accepted = endpoint.send(handle, inner, now).is_ok();
                if accepted {
                    *fed.entry(handle).or_insert(0) += 1;
                }
                accepted
            });
        }
        self.drain_events();
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<(LinkId, Vec<u8>)> {
        let transmit = self.endpoint.poll_transmit(now, &mut self.buf);
        self.drain_events();
        let transmit = transmit?;
        let data = self.buf.get(..transmit.len)?.to_vec();
        Some((link_of(transmit.path), data))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let feed = self.feed.as_ref().and_then(Feed::deadline);
        match (self.endpoint.poll_timeout(), feed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
