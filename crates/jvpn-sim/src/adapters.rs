//! Adapters from the jvpn session core to the [`Node`](crate::Node) trait, and the checks a simulation test
//! runs against them after every step.
//!
//! Paths and links map one to one: the core's `PathId(n)` is the network's `LinkId(n)`.
//! After every input an adapter drains the core's events into a [`History`] (which checks that
//! the transitions form a legal path through the table) and its received inner packets into an
//! inbox the test drains between steps.

mod client;
mod feed;
mod history;
mod server;

pub use client::ClientNode;
pub use feed::Feed;
pub use history::{History, HistoryFault};
pub use server::ServerNode;

use jvpn_session::PathId;

use crate::node::LinkId;

/// The core's name for the network's link.
#[must_use]
pub fn path_of(link: LinkId) -> PathId {
    PathId(link.0)
}

/// The network's name for the core's path.
#[must_use]
pub fn link_of(path: PathId) -> LinkId {
    LinkId(path.0)
}
