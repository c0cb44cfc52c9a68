//! The attacker: sees every frame on the client's paths, holds some back and releases them
//! later, replays captured frames (to the same node or the other one, on the same path, another
//! path or its own link) and flips bits in some of them (forgeries). Everything it injects is
//! tagged by hash in the shared [`Ledger`] so that the checks can judge what the cores did with
//! exactly those frames.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use jvpn_wire::{MessageType, peek_type};
use rand::Rng;
use rand::seq::IndexedRandom;

use super::nonce::NonceLedger;
use crate::impair::{Datagram, Fate, ImpairContext, Impairment, SimRng, Tap};
use crate::node::{LinkId, Node};
use crate::trace::{CopyKind, DropCause};

/// How many frames of each kind the attacker keeps (a random subset once full).
const CAPTURE_CAP: usize = 64;

/// A frame's identity for tagging: its BLAKE3 hash.
pub(crate) type FrameHash = [u8; 32];

pub(crate) fn hash(data: &[u8]) -> FrameHash {
    *blake3::hash(data).as_bytes()
}

/// How aggressive the attacker is in one run (drawn from the seed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttackPlan {
    /// Per frame on a client path: chance a captured frame is injected right behind it.
    pub inject_p: f64,
    /// Per client->server frame: chance it is held back (dropped now, released later).
    pub hold_p: f64,
    /// How long a held frame is kept at most before its release.
    pub hold_max: Duration,
    /// Chance an injected frame has one bit flipped (a forgery).
    pub forge_p: f64,
    /// Mean gap between two frames sent from the attacker's own links to the server nodes.
    pub own_gap: Duration,
}

/// What the attacker and the checks share: captures, tags, what each node has seen, and the
/// violations found (checked by the runner after every step).
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    captured_up: Vec<Vec<u8>>,
    captured_inits: Vec<Vec<u8>>,
    captured_down: Vec<Vec<u8>>,
    held: Vec<(LinkId, Duration, Vec<u8>)>,
    pub(crate) injected: BTreeSet<FrameHash>,
    pub(crate) forged: BTreeSet<FrameHash>,
    /// `(server node index, hash)` of every HANDSHAKE_INIT / REATTACH_INIT delivered.
    pub(crate) seen_inits: BTreeSet<(usize, FrameHash)>,
    /// What a node made of an initiation the first time it saw it (for failure messages).
    pub(crate) first_outcome: std::collections::BTreeMap<(usize, FrameHash), String>,
    /// `(node, hash)` of HANDSHAKE_INITs that created or rekeyed a session there, with the
    /// node's incarnation that did.
    pub(crate) accepted_handshakes: std::collections::BTreeMap<(usize, FrameHash), u32>,
    /// REATTACH_INITs some node answered OK.
    pub(crate) accepted_inits: BTreeSet<FrameHash>,
    /// REATTACH_INITs a node took to its proof of possession (a Diffie-Hellman was spent on
    /// them), by node: a later acceptance of one of these is a replay.
    pub(crate) processed_inits: BTreeSet<(usize, FrameHash)>,
    pub(crate) violations: Vec<String>,
    pub(crate) figures: AttackFigures,
    /// Every (key, nonce) sealed by the client and the nodes.
    pub(crate) nonces: NonceLedger,
}

/// What the attacker did and what came of it, over one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttackFigures {
    /// Frames injected (replays, releases, forgeries), counted when created.
    pub injected: u64,
    /// Of which forgeries (one bit flipped).
    pub forged: u64,
    /// Client->server frames held back.
    pub held: u64,
    /// Held frames released.
    pub released: u64,
    /// Tagged frames delivered to a server node.
    pub delivered_to_servers: u64,
    /// Tagged frames delivered to the client.
    pub delivered_to_client: u64,
    /// REATTACH_INITs delivered to a node that had already seen the same bytes.
    pub reattach_replays_delivered: u64,
    /// REATTACH_INITs accepted that an attacker delivered first (held and released, or
    /// relayed ahead of the original): allowed, they cannot move the binding.
    pub relayed_reattach_accepted: u64,
    /// HANDSHAKE_INITs a node refused and accepted when the attacker delivered the same bytes
    /// again. A resume refused off the bound path (`WrongPath`) now consumes its timestamp, so
    /// that case (seed 7980) no longer occurs; what remains are copies first dropped before
    /// any DH (rate limit, cookie).
    pub relayed_handshake_accepted: u64,
    /// REATTACH_INITs accepted by a node that had dropped an earlier copy before its proof of
    /// possession (no DH: the session was unknown there, e.g. the store could not be read, or
    /// the copy was rate-limited): a first processing, not a replay.
    pub reattach_accepted_after_early_drop: u64,
    /// HANDSHAKE_INITs already answered by one node that created a session on the other
    /// (the timestamp replay guard is per node).
    pub cross_node_handshake_sessions: u64,
    /// HANDSHAKE_INITs accepted by a node before its restart and again after it (the
    /// timestamp replay guard lives in memory): each makes an orphan session the attacker
    /// cannot use, superseded by the client's next handshake.
    pub handshake_replays_after_restart: u64,
}

impl Ledger {
    pub(crate) fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    fn keep(store: &mut Vec<Vec<u8>>, rng: &mut SimRng, data: &[u8]) {
        if store.len() < CAPTURE_CAP {
            store.push(data.to_vec());
        } else {
            let i = rng.random_range(0..store.len());
            store[i] = data.to_vec();
        }
    }

    fn capture_up(&mut self, rng: &mut SimRng, data: &[u8]) {
        let is_init = matches!(
            peek_type(data),
            Ok(MessageType::ReattachInit | MessageType::HandshakeInit)
        );
        if is_init {
            Self::keep(&mut self.captured_inits, rng, data);
        } else {
            Self::keep(&mut self.captured_up, rng, data);
        }
    }

    /// A captured client->server frame, initiations preferred half of the time.
    pub(crate) fn pick_up(&self, rng: &mut SimRng) -> Option<Vec<u8>> {
        let inits = !self.captured_inits.is_empty()
            && (self.captured_up.is_empty() || rng.random_bool(0.5));
        let pool = if inits {
            &self.captured_inits
        } else {
            &self.captured_up
        };
        pool.choose(rng).cloned()
    }

    /// Tags `data` as injected, flipping one bit first with probability `forge_p` (never in
    /// the trailing 16 bytes, the MAC2 of initiations, which nothing checks before the cookie
    /// mechanism exists: flipping it would not be a forgery of anything authenticated).
    pub(crate) fn tag(&mut self, rng: &mut SimRng, mut data: Vec<u8>, forge_p: f64) -> Vec<u8> {
        if !data.is_empty() && rng.random_bool(forge_p) {
            let covered = data.len().saturating_sub(16).max(1);
            let i = rng.random_range(0..covered);
            data[i] ^= 1 << rng.random_range(0..8u32);
            self.forged.insert(hash(&data));
            self.figures.forged += 1;
        }
        self.injected.insert(hash(&data));
        self.figures.injected += 1;
        data
    }
}

/// The attacker's wire tap on one client path, `up` for client->server.
pub(crate) fn tap(
    ledger: Rc<RefCell<Ledger>>,
    link: LinkId,
    up: bool,
    plan: AttackPlan,
) -> Box<dyn Impairment> {
    Box::new(Tap::new(
        move |cx: &mut ImpairContext<'_>, datagram: &mut Datagram| -> Fate {
            let mut ledger = ledger.borrow_mut();
            let forge_p = plan.forge_p;
            if up {
                ledger.capture_up(cx.rng, &datagram.data);
                let due: Vec<Vec<u8>> = {
                    let (due, kept) = std::mem::take(&mut ledger.held)
                        .into_iter()
                        .partition(|(l, at, _)| *l == link && *at <= cx.elapsed);
                    ledger.held = kept;
                    due.into_iter().map(|(_, _, d)| d).collect()
                };
                for data in due {
                    ledger.figures.released += 1;
                    ledger.injected.insert(hash(&data));
                    ledger.figures.injected += 1;
                    cx.create(
                        CopyKind::Injected,
                        Datagram {
                            data,
                            delay: Duration::ZERO,
                        },
                    );
                }
                if cx.chance(plan.inject_p)
                    && let Some(data) = ledger.pick_up(cx.rng)
                {
                    let data = ledger.tag(cx.rng, data, forge_p);
                    cx.create(
                        CopyKind::Injected,
                        Datagram {
                            data,
                            delay: Duration::ZERO,
                        },
                    );
                }
                if cx.chance(plan.hold_p) {
                    let release = cx.elapsed + cx.up_to(plan.hold_max);
                    ledger.held.push((link, release, datagram.data.clone()));
                    ledger.figures.held += 1;
                    return Fate::Drop(DropCause::Tap);
                }
            } else {
                let rng = &mut *cx.rng;
                Ledger::keep(&mut ledger.captured_down, rng, &datagram.data);
                if cx.chance(plan.inject_p)
                    && let Some(data) = ledger.captured_down.choose(cx.rng).cloned()
                {
                    let data = ledger.tag(cx.rng, data, forge_p);
                    cx.create(
                        CopyKind::Injected,
                        Datagram {
                            data,
                            delay: Duration::ZERO,
                        },
                    );
                }
            }
            Fate::Pass
        },
    ))
}

/// The attacker's own host, with one link to every server node: it sends captured (and
/// sometimes forged) client frames from a path the client never used.
pub(crate) struct AttackerNode {
    ledger: Rc<RefCell<Ledger>>,
    links: Vec<LinkId>,
    plan: AttackPlan,
    rng: SimRng,
    next: Option<Instant>,
    queue: Vec<(LinkId, Vec<u8>)>,
}

impl std::fmt::Debug for AttackerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttackerNode")
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl AttackerNode {
    pub(crate) fn new(
        ledger: Rc<RefCell<Ledger>>,
        links: Vec<LinkId>,
        plan: AttackPlan,
        rng: SimRng,
        start: Instant,
    ) -> Self {
        Self {
            ledger,
            links,
            plan,
            rng,
            next: Some(start + plan.own_gap),
            queue: Vec::new(),
        }
    }
}

impl Node for AttackerNode {
    fn handle_datagram(&mut self, _: LinkId, _: &mut [u8], _: Instant) {}

    fn handle_timeout(&mut self, now: Instant) {
        if self.next.is_none_or(|at| at > now) {
            return;
        }
        let mut ledger = self.ledger.borrow_mut();
        if let (Some(data), Some(&link)) = (
            ledger.pick_up(&mut self.rng),
            self.links.choose(&mut self.rng),
        ) {
            let data = ledger.tag(&mut self.rng, data, self.plan.forge_p);
            self.queue.push((link, data));
        }
        let nanos = u64::try_from(self.plan.own_gap.as_nanos()).unwrap_or(u64::MAX);
        let gap = Duration::from_nanos(self.rng.random_range(1..=nanos.saturating_mul(2).max(1)));
        self.next = Some(now + gap);
    }

    fn poll_transmit(&mut self, _: Instant) -> Option<(LinkId, Vec<u8>)> {
        self.queue.pop()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }
}
