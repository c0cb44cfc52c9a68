//! A running hash of everything that happens on the network, proving determinism, plus counters.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::node::{LinkId, NodeId};

/// Why the network dropped a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DropCause {
    /// Random loss ([`Loss`](crate::impair::Loss)).
    Loss,
    /// The link was inside a blackhole window ([`Blackhole`](crate::impair::Blackhole)).
    Blackhole,
    /// A tap (an attacker or a test) swallowed it ([`Tap`](crate::impair::Tap)).
    Tap,
    /// It exceeded the link's maximum size ([`Mtu`](crate::impair::Mtu)).
    TooLarge,
    /// A node transmitted on a link it is not an end of.
    Misrouted,
}

/// How a datagram came to exist besides being transmitted by a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum CopyKind {
    /// A copy made by [`Duplicate`](crate::impair::Duplicate).
    Duplicate,
    /// Injected by a [`Tap`](crate::impair::Tap).
    Injected,
}

/// Counters over a whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams nodes transmitted.
    pub sent: u64,
    /// Datagrams handed to a node.
    pub delivered: u64,
    /// Datagrams dropped, by cause.
    pub dropped: BTreeMap<DropCause, u64>,
    /// Extra datagrams created in flight, by kind.
    pub created: BTreeMap<CopyKind, u64>,
    /// Timeouts fired.
    pub timeouts: u64,
    /// Steps taken (deliveries + timeouts + transmits), bounded by the step limit.
    pub steps: u64,
}

impl Stats {
    /// Datagrams dropped for `cause`.
    #[must_use]
    pub fn dropped(&self, cause: DropCause) -> u64 {
        self.dropped.get(&cause).copied().unwrap_or(0)
    }

    /// Datagrams created in flight as `kind`.
    #[must_use]
    pub fn created(&self, kind: CopyKind) -> u64 {
        self.created.get(&kind).copied().unwrap_or(0)
    }
}

/// The BLAKE3 hash of a run's trace; equal hashes mean equal runs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceHash(pub [u8; 32]);

impl fmt::Display for TraceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TraceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceHash({self})")
    }
}

/// One entry of the trace; the tags are part of the hash, so they never change meaning.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Entry {
    Send { node: NodeId, link: LinkId },
    Deliver { node: NodeId, link: LinkId },
    Drop { link: LinkId, cause: DropCause },
    Copy { link: LinkId, kind: CopyKind },
    Timeout { node: NodeId },
}

/// The running hash and the counters.
pub(crate) struct Trace {
    hasher: blake3::Hasher,
    pub(crate) stats: Stats,
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace")
            .field("hash", &self.hash())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Trace {
    pub(crate) fn new() -> Self {
        Self {
            hasher: blake3::Hasher::new_derive_key("jvpn-sim 2025-01 trace v1"),
            stats: Stats::default(),
        }
    }

    /// Appends `(time offset in nanos, entry, bytes)` to the hash and counts it.
    pub(crate) fn record(&mut self, elapsed: Duration, entry: Entry, bytes: &[u8]) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let (tag, a, b): (u8, u32, u32) = match entry {
            Entry::Send { node, link } => {
                self.stats.sent += 1;
                (1, node.0, link.0)
            }
            Entry::Deliver { node, link } => {
                self.stats.delivered += 1;
                (2, node.0, link.0)
            }
            Entry::Drop { link, cause } => {
                *self.stats.dropped.entry(cause).or_insert(0) += 1;
                (3, link.0, cause as u32)
            }
            Entry::Copy { link, kind } => {
                *self.stats.created.entry(kind).or_insert(0) += 1;
                (4, link.0, kind as u32)
            }
            Entry::Timeout { node } => {
                self.stats.timeouts += 1;
                (5, node.0, 0)
            }
        };
        self.hasher.update(&nanos.to_le_bytes());
        self.hasher.update(&[tag]);
        self.hasher.update(&a.to_le_bytes());
        self.hasher.update(&b.to_le_bytes());
        self.hasher.update(&(bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
    }

    pub(crate) fn hash(&self) -> TraceHash {
        TraceHash(*self.hasher.finalize().as_bytes())
    }
}
