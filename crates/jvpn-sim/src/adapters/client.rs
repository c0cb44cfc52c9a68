//! A client [`Session`] as a network node.

use std::time::Instant;

use jvpn_session::{Event, Inbound, Session};

use super::{Feed, History, link_of, path_of};
use crate::node::{LinkId, Node};

/// A client [`Session`] on the simulated network, with an optional [`Feed`] of inner datagrams
/// and an inbox of the inner datagrams it received.
#[derive(Debug)]
pub struct ClientNode {
    session: Session,
    feed: Option<Feed>,
    buf: Vec<u8>,
    inbox: Vec<Vec<u8>>,
    events: Vec<Event>,
    history: History,
    last_inbound: Option<Inbound>,
}

impl ClientNode {
    /// Wraps a session made with `Session::connect` on `path_of(link)`.
    #[must_use]
    pub fn new(session: Session) -> Self {
        let mut node = Self {
            session,
            feed: None,
            buf: Vec::new(),
            inbox: Vec::new(),
            events: Vec::new(),
            history: History::default(),
            last_inbound: None,
        };
        node.drain_events();
        node
    }

    /// Sends `feed`'s datagrams through the session.
    #[must_use]
    pub fn with_feed(mut self, feed: Feed) -> Self {
        self.feed = Some(feed);
        self
    }

    /// The session.
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session, mutably (e.g. to `send` or `close` between steps).
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Replaces the session with `session` (the runtime's new BIRTH after the server lost the
    /// old one), keeping the feed, the inbox and the events; returns the old session and its
    /// checked history.
    pub fn replace_session(&mut self, session: Session) -> (Session, History) {
        let old = std::mem::replace(&mut self.session, session);
        let history = std::mem::take(&mut self.history);
        self.last_inbound = None;
        self.drain_events();
        (old, history)
    }

    /// The feed, if any.
    #[must_use]
    pub fn feed(&self) -> Option<&Feed> {
        self.feed.as_ref()
    }

    /// Takes the inner datagrams received since the last call.
    pub fn take_inbox(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.inbox)
    }

    /// Every event the session emitted.
    #[must_use]
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The session's transitions, checked.
    #[must_use]
    pub fn history(&self) -> &History {
        &self.history
    }

    /// What the session made of the last datagram delivered to it (for checks on tagged,
    /// e.g. attacker-injected, frames).
    #[must_use]
    pub fn last_inbound(&self) -> Option<&Inbound> {
        self.last_inbound.as_ref()
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            if let Event::Transition(record) = &event {
                self.history.observe(record);
            }
            self.events.push(event);
        }
    }
}

impl Node for ClientNode {
    fn handle_datagram(&mut self, from_link: LinkId, data: &mut [u8], now: Instant) {
        let inbound = self.session.handle_datagram(path_of(from_link), data, now);
        if let Inbound::Inner(range) = &inbound
            && let Some(inner) = data.get(range.clone())
        {
            self.inbox.push(inner.to_vec());
        }
        self.last_inbound = Some(inbound);
        self.drain_events();
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.session.poll_timeout().is_some_and(|at| at <= now) {
            self.session.handle_timeout(now);
        }
        if let Some(feed) = &mut self.feed {
            let bound = self.session.state().is_bound();
            let session = &mut self.session;
            feed.tick(now, bound, |inner| session.send(inner, now).is_ok());
        }
        self.drain_events();
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<(LinkId, Vec<u8>)> {
        let transmit = self.session.poll_transmit(now, &mut self.buf);
        self.drain_events();
        let transmit = transmit?;
        let data = self.buf.get(..transmit.len)?.to_vec();
        Some((link_of(transmit.path), data))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let feed = self.feed.as_ref().and_then(Feed::deadline);
        match (self.session.poll_timeout(), feed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
