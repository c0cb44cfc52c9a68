//! The event loop: nodes, links, datagrams in flight, virtual time.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::impair::{Datagram, Fate, ImpairContext, Impairment, SimRng};
use crate::node::{LinkId, Node, NodeId};
use crate::seed::Seed;
use crate::trace::{CopyKind, Entry, Stats, Trace, TraceHash};

/// Default bound on steps (deliveries + timeouts + transmits) over a network's life.
pub const DEFAULT_STEP_LIMIT: u64 = 5_000_000;

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The run took more steps than the limit: a node is probably live-locked (a timeout that
    /// never moves forward, an endless `poll_transmit`). Replay the printed seed and inspect it,
    /// or raise the limit with [`Network::set_step_limit`] if the scenario really is that long.
    #[error("step limit of {limit} reached at {elapsed:?} of virtual time (livelock?)")]
    StepLimit {
        /// The limit that was reached.
        limit: u64,
        /// Virtual time elapsed since the base instant when it was reached.
        elapsed: Duration,
    },
}

/// What one [`Network::step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// A datagram was delivered to `node` on `link`.
    Delivered {
        /// The receiving node.
        node: NodeId,
        /// The link it arrived on.
        link: LinkId,
    },
    /// `node`'s timeout fired.
    Timeout {
        /// The node whose timer fired.
        node: NodeId,
    },
    /// Nothing is in flight and no node has a timeout: the network is quiescent.
    Idle,
    /// The next event lies after the deadline; time did not advance.
    Deadline,
}

struct Stage {
    impairment: Box<dyn Impairment>,
    rng: SimRng,
}

struct LinkEntry {
    ends: [NodeId; 2],
    /// `pipelines[0]` carries `ends[0] -> ends[1]`, `pipelines[1]` the reverse.
    pipelines: [Vec<Stage>; 2],
}

struct Flight {
    to: NodeId,
    link: LinkId,
    data: Vec<u8>,
}

/// A deterministic virtual-time network of sans-IO [`Node`]s joined by impaired links.
///
/// Time starts at the caller's `base` instant and only moves when the next event (a datagram
/// arriving, a node's timeout) is taken; the network never sleeps and never reads the clock.
///
/// Ordering rules, all deterministic:
/// - datagrams in flight are ordered by `(deliver_at, seq)`, `seq` counting transmissions, so
///   ties go to the one sent first;
/// - at equal instants, deliveries come before timeouts, and timeouts go to the lowest
///   [`NodeId`] first;
/// - after every step all nodes are drained of transmits in `NodeId` order.
pub struct Network {
    seed: Seed,
    base: Instant,
    now: Instant,
    nodes: Vec<Box<dyn Node>>,
    links: Vec<LinkEntry>,
    in_flight: BTreeMap<(Instant, u64), Flight>,
    next_seq: u64,
    step_limit: u64,
    trace: Trace,
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("seed", &self.seed)
            .field("elapsed", &self.elapsed())
            .field("nodes", &self.nodes.len())
            .field("links", &self.links.len())
            .field("in_flight", &self.in_flight.len())
            .field("trace", &self.trace)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// An empty network whose time starts at `base` (see [`crate::base_instant`]).
    #[must_use]
    pub fn new(seed: Seed, base: Instant) -> Self {
        Self {
            seed,
            base,
            now: base,
            nodes: Vec::new(),
            links: Vec::new(),
            in_flight: BTreeMap::new(),
            next_seq: 0,
            step_limit: DEFAULT_STEP_LIMIT,
            trace: Trace::new(),
        }
    }

    /// Sets the bound on steps over the network's life (see [`SimError::StepLimit`]).
    pub fn set_step_limit(&mut self, limit: u64) {
        self.step_limit = limit;
    }

    /// The master seed.
    #[must_use]
    pub fn seed(&self) -> Seed {
        self.seed
    }

    /// The base instant: virtual time zero.
    #[must_use]
    pub fn base(&self) -> Instant {
        self.base
    }

    /// The current virtual time.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time elapsed since the base instant.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.now.saturating_duration_since(self.base)
    }

    /// Adds a node; ids are assigned from 0 in insertion order.
    pub fn add_node(&mut self, node: Box<dyn Node>) -> NodeId {
        let id = NodeId(u32::try_from(self.nodes.len()).expect("fewer than 2^32 nodes"));
        self.nodes.push(node);
        id
    }

    /// The id the next [`add_link`](Network::add_link) will return, for nodes that must know
    /// their link before they are added.
    #[must_use]
    pub fn next_link_id(&self) -> LinkId {
        LinkId(u32::try_from(self.links.len()).expect("fewer than 2^32 links"))
    }

    /// Joins `a` and `b` with a link; `a_to_b` impairs what `a` sends, `b_to_a` what `b` sends.
    /// Each stage gets its own RNG stream derived from the seed, the link id, the direction and
    /// the stage index.
    pub fn add_link(
        &mut self,
        a: NodeId,
        b: NodeId,
        a_to_b: Vec<Box<dyn Impairment>>,
        b_to_a: Vec<Box<dyn Impairment>>,
    ) -> LinkId {
        let id = self.next_link_id();
        let seed = self.seed;
        let stages = |dir: u64, impairments: Vec<Box<dyn Impairment>>| -> Vec<Stage> {
            impairments
                .into_iter()
                .zip(0u64..)
                .map(|(impairment, i)| Stage {
                    impairment,
                    rng: seed.sim_rng("link-stage", (u64::from(id.0) << 32) | (dir << 16) | i),
                })
                .collect()
        };
        self.links.push(LinkEntry {
            ends: [a, b],
            pipelines: [stages(0, a_to_b), stages(1, b_to_a)],
        });
        id
    }

    /// The node `id` as its concrete type, if it is one.
    #[must_use]
    pub fn node<T: Node>(&self, id: NodeId) -> Option<&T> {
        let node: &dyn Any = self.nodes.get(id.0 as usize)?.as_ref();
        node.downcast_ref()
    }

    /// The node `id` as its concrete type, mutably (e.g. to queue data on it between steps; its
    /// transmits are collected at the start of the next step).
    #[must_use]
    pub fn node_mut<T: Node>(&mut self, id: NodeId) -> Option<&mut T> {
        let node: &mut dyn Any = self.nodes.get_mut(id.0 as usize)?.as_mut();
        node.downcast_mut()
    }

    /// Counters over the run so far.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.trace.stats
    }

    /// The hash of everything that happened so far: same seed and same nodes, same hash.
    #[must_use]
    pub fn trace_hash(&self) -> TraceHash {
        self.trace.hash()
    }

    /// Datagrams currently in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Takes the next event, whenever it is.
    ///
    /// # Errors
    ///
    /// [`SimError::StepLimit`] when the step bound is reached.
    pub fn step(&mut self) -> Result<Step, SimError> {
        self.step_before(None)
    }

    /// Takes the next event if it happens at or before `deadline`; otherwise returns
    /// [`Step::Deadline`] without moving time.
    ///
    /// # Errors
    ///
    /// [`SimError::StepLimit`] when the step bound is reached.
    pub fn step_until(&mut self, deadline: Instant) -> Result<Step, SimError> {
        self.step_before(Some(deadline))
    }

    /// Runs every event up to and including `deadline`, then sets the time to `deadline`
    /// (or stops early when the network is idle, also moving time to `deadline`).
    ///
    /// # Errors
    ///
    /// [`SimError::StepLimit`] when the step bound is reached.
    pub fn run_until(&mut self, deadline: Instant) -> Result<(), SimError> {
        loop {
            match self.step_until(deadline)? {
                Step::Idle | Step::Deadline => break,
                Step::Delivered { .. } | Step::Timeout { .. } => {}
            }
        }
        self.now = self.now.max(deadline);
        Ok(())
    }

    /// [`run_until`](Network::run_until) `now + span`.
    ///
    /// # Errors
    ///
    /// [`SimError::StepLimit`] when the step bound is reached.
    pub fn run_for(&mut self, span: Duration) -> Result<(), SimError> {
        self.run_until(self.now + span)
    }

    fn step_before(&mut self, deadline: Option<Instant>) -> Result<Step, SimError> {
        self.pump_all()?;
        let next_delivery = self.in_flight.first_key_value().map(|(&(at, _), _)| at);
        let next_timeout = self
            .nodes
            .iter()
            .zip(0u32..)
            .filter_map(|(node, i)| node.poll_timeout().map(|t| (t.max(self.now), NodeId(i))))
            .min();
        let deliver_first = match (next_delivery, next_timeout) {
            (None, None) => return Ok(Step::Idle),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(d), Some((t, _))) => d <= t,
        };
        let at = if deliver_first {
            next_delivery.expect("deliver_first implies a delivery")
        } else {
            next_timeout.expect("!deliver_first implies a timeout").0
        };
        if deadline.is_some_and(|d| at > d) {
            return Ok(Step::Deadline);
        }
        self.count_step()?;
        self.now = self.now.max(at);
        let elapsed = self.elapsed();
        let step = if deliver_first {
            let (_, mut flight) = self
                .in_flight
                .pop_first()
                .expect("a delivery was found above");
            self.trace.record(
                elapsed,
                Entry::Deliver {
                    node: flight.to,
                    link: flight.link,
                },
                &flight.data,
            );
            let node = &mut self.nodes[flight.to.0 as usize];
            node.handle_datagram(flight.link, &mut flight.data, self.now);
            Step::Delivered {
                node: flight.to,
                link: flight.link,
            }
        } else {
            let (_, id) = next_timeout.expect("a timeout was found above");
            self.trace.record(elapsed, Entry::Timeout { node: id }, &[]);
            self.nodes[id.0 as usize].handle_timeout(self.now);
            Step::Timeout { node: id }
        };
        self.pump_all()?;
        Ok(step)
    }

    fn count_step(&mut self) -> Result<(), SimError> {
        if self.trace.stats.steps >= self.step_limit {
            return Err(SimError::StepLimit {
                limit: self.step_limit,
                elapsed: self.elapsed(),
            });
        }
        self.trace.stats.steps += 1;
        Ok(())
    }

    /// Drains every node's transmits, in node order, into the links.
    fn pump_all(&mut self) -> Result<(), SimError> {
        for i in 0..self.nodes.len() {
            while let Some((link, data)) = self.nodes[i].poll_transmit(self.now) {
                self.count_step()?;
                let from = NodeId(u32::try_from(i).expect("fewer than 2^32 nodes"));
                self.transmit(from, link, data);
            }
        }
        Ok(())
    }

    fn transmit(&mut self, from: NodeId, link_id: LinkId, data: Vec<u8>) {
        let elapsed = self.elapsed();
        self.trace.record(
            elapsed,
            Entry::Send {
                node: from,
                link: link_id,
            },
            &data,
        );
        let Some(link) = self.links.get_mut(link_id.0 as usize) else {
            self.trace.record(elapsed, misrouted(link_id), &data);
            return;
        };
        let (dir, to) = match link.ends {
            [a, b] if a == from => (0, b),
            [a, b] if b == from => (1, a),
            _ => {
                self.trace.record(elapsed, misrouted(link_id), &data);
                return;
            }
        };
        // A work list of (first stage to apply, datagram): copies made at stage i continue at
        // i + 1. Processed LIFO, which is deterministic.
        let mut work = vec![(
            0usize,
            Datagram {
                data,
                delay: Duration::ZERO,
            },
        )];
        let mut created: Vec<(CopyKind, Datagram)> = Vec::new();
        'datagrams: while let Some((first, mut datagram)) = work.pop() {
            for (i, stage) in link.pipelines[dir].iter_mut().enumerate().skip(first) {
                let mut cx = ImpairContext {
                    now: self.now,
                    elapsed,
                    rng: &mut stage.rng,
                    created: &mut created,
                };
                let fate = stage.impairment.apply(&mut cx, &mut datagram);
                for (kind, copy) in created.drain(..) {
                    self.trace.record(
                        elapsed,
                        Entry::Copy {
                            link: link_id,
                            kind,
                        },
                        &copy.data,
                    );
                    work.push((i + 1, copy));
                }
                if let Fate::Drop(cause) = fate {
                    self.trace.record(
                        elapsed,
                        Entry::Drop {
                            link: link_id,
                            cause,
                        },
                        &datagram.data,
                    );
                    continue 'datagrams;
                }
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.in_flight.insert(
                (self.now + datagram.delay, seq),
                Flight {
                    to,
                    link: link_id,
                    data: datagram.data,
                },
            );
        }
    }
}

fn misrouted(link: LinkId) -> Entry {
    Entry::Drop {
        link,
        cause: crate::trace::DropCause::Misrouted,
    }
}
