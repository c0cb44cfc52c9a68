//! jvpn-sim: a deterministic, virtual-time network for the jvpn sans-IO cores (dev-only).
//!
//! What it does:
//! - drives any state machine adapted to the [`Node`] trait (quinn/neqo grammar:
//!   `handle_datagram` / `handle_timeout` in, `poll_transmit` / `poll_timeout` out) over links
//!   with composable [`impair`]ments: delay and jitter, loss, reordering, duplication, scheduled
//!   blackholes, a maximum size, and a [`Tap`](impair::Tap) for attacker scenarios;
//! - keeps virtual time: it starts at a base [`Instant`](std::time::Instant) the caller passes in
//!   and jumps from event to event; it never sleeps and never reads the clock;
//! - derives every random choice from one master [`Seed`], printed at the start of each run, so a
//!   failing run replays exactly with `JVPN_SIM_SEED=<n>`;
//! - hashes everything that happens (sends, deliveries, drops, copies, timeouts with their virtual
//!   time offsets and bytes) into a [`TraceHash`]: same seed, same hash;
//! - bounds the number of steps so that a live-locked node fails a test instead of hanging it;
//! - adapts the jvpn session core ([`adapters`]);
//! - runs the [`cluster`] scenario: a multipath client, one or two server nodes sharing an
//!   ownership store, a replaying and forging attacker, node kills and restarts, and a
//!   fault-injecting store ([`cluster::FaultyStore`]: unavailability, lost and late CAS replies),
//!   with every invariant checked after every step, a (key, nonce) ledger over every frame sent,
//!   and the store's history checked for linearizability ([`cluster::linear`]).
//!
//! What it does not do: simulate congestion, bandwidth or queues (delay is per datagram), run
//! async code (the runtime shell is tested separately, over loopback), simulate several clients
//! or a client crash, or read OS randomness other than to pick a seed when none is given
//! ([`Seed::random`]).
//!
//! ```
//! use jvpn_sim::{Network, Seed, base_instant, impair::{Delay, Loss}};
//! use std::time::Duration;
//!
//! let mut net = Network::new(Seed(1), base_instant());
//! // add nodes with `net.add_node(Box::new(...))`, join them with `net.add_link(...)`:
//! // net.add_link(a, b, vec![Box::new(Loss { p: 0.05 })], vec![]);
//! net.run_for(Duration::from_secs(1)).unwrap();
//! assert_eq!(net.elapsed(), Duration::from_secs(1));
//! ```

pub mod adapters;
pub mod cluster;
pub mod impair;
mod network;
mod node;
mod seed;
mod trace;
pub mod workload;

pub use network::{DEFAULT_STEP_LIMIT, Network, SimError, Step};
pub use node::{LinkId, Node, NodeId};
pub use seed::{SEED_ENV, SEEDS_ENV, Seed, SeedError, seed_count_from_env, seeds_from_env};
pub use trace::{CopyKind, DropCause, Stats, TraceHash};

/// An arbitrary base instant to start virtual time from.
///
/// Only differences from it matter to the network and to the cores, so which instant it is does
/// not affect a run; `Instant` simply has no constructor other than reading the clock.
#[must_use]
#[expect(
    clippy::disallowed_methods,
    reason = "Instant has no constant constructor; this one read only anchors virtual time, \
              every offset from it is deterministic"
)]
pub fn base_instant() -> std::time::Instant {
    std::time::Instant::now()
}
