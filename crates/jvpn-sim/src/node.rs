//! What the harness drives: a sans-IO state machine behind the [`Node`] trait.

use std::any::Any;
use std::fmt;
use std::time::Instant;

/// Names a node of a [`Network`](crate::Network); assigned in insertion order from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// Names a bidirectional link between two nodes; assigned in insertion order from 0.
///
/// Both ends use the same `LinkId`: a node transmits on a link and the datagram is delivered to
/// the other end with the same `LinkId` as `from_link`. A node with several links (a server with
/// many clients) tells its peers apart by link, the way a sans-IO core tells paths apart by an
/// opaque path id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node{}", self.0)
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link{}", self.0)
    }
}

/// A sans-IO endpoint under simulation, in the quinn/neqo grammar.
///
/// The network calls, in this order, and only with non-decreasing `now`:
///
/// 1. after every input, [`poll_transmit`](Node::poll_transmit) until it returns `None`;
/// 2. [`handle_datagram`](Node::handle_datagram) when a datagram arrives on one of the node's links;
/// 3. [`handle_timeout`](Node::handle_timeout) once virtual time reaches
///    [`poll_timeout`](Node::poll_timeout) (a deadline in the past fires at the current time).
///
/// An adapter draining a core's events (state changes, received inner packets) does so inside
/// these calls and keeps what it learns for the test to inspect between steps
/// (via [`Network::node`](crate::Network::node)).
///
/// A node must eventually return `None` from `poll_transmit` and must move its timeout forward
/// once it has fired; if it does not, the network's step limit stops the run with an error rather
/// than hanging the test.
pub trait Node: Any {
    /// A datagram arrived on `from_link`; `data` may be decrypted in place.
    fn handle_datagram(&mut self, from_link: LinkId, data: &mut [u8], now: Instant);

    /// Virtual time reached the deadline this node reported from `poll_timeout`.
    fn handle_timeout(&mut self, now: Instant);

    /// The next datagram this node wants to send, and on which link.
    fn poll_transmit(&mut self, now: Instant) -> Option<(LinkId, Vec<u8>)>;

    /// When this node next wants `handle_timeout`, if ever.
    fn poll_timeout(&self) -> Option<Instant>;
}
