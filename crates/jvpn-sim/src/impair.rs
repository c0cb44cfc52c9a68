//! Composable link impairments: small structs behind one trait, applied in order.
//!
//! A link direction carries a `Vec<Box<dyn Impairment>>`. Each datagram a node transmits walks
//! the stages in order; a stage may drop it, add delay to it, rewrite it, or create copies (a
//! duplicate, an injected frame) that continue from the *next* stage. The datagram is delivered
//! at `send time + sum of added delays`. Order matters and is the caller's choice; a typical
//! pipeline is `[Blackhole, Loss, Duplicate, Delay, Reorder]` (a duplicate then gets its own
//! jitter, like a real duplicate on a different queue).
//!
//! Every stage draws from its own RNG stream derived from the master [`Seed`](crate::Seed),
//! the link, the direction and the stage's position, so runs replay exactly.

use std::fmt;
use std::ops::Range;
use std::time::{Duration, Instant};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::trace::{CopyKind, DropCause};

/// The RNG type an impairment draws from.
pub type SimRng = ChaCha8Rng;

/// A datagram in flight through an impairment pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The bytes that will be delivered.
    pub data: Vec<u8>,
    /// Delay added so far by earlier stages.
    pub delay: Duration,
}

/// What an impairment decided about a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fate {
    /// Continue to the next stage.
    Pass,
    /// Drop it here, counted under `cause`.
    Drop(DropCause),
}

/// What an impairment sees besides the datagram.
#[derive(Debug)]
pub struct ImpairContext<'a> {
    /// Virtual time at which the datagram was transmitted.
    pub now: Instant,
    /// `now` minus the network's base instant: schedules are written in these offsets.
    pub elapsed: Duration,
    /// This stage's own random stream.
    pub rng: &'a mut SimRng,
    pub(crate) created: &'a mut Vec<(CopyKind, Datagram)>,
}

impl ImpairContext<'_> {
    /// Creates an extra datagram that continues from the next stage (counted and traced).
    pub fn create(&mut self, kind: CopyKind, datagram: Datagram) {
        self.created.push((kind, datagram));
    }

    /// True with probability `p`. Never panics: `p <= 0` or NaN is never, `p >= 1` is always.
    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }

    /// A uniformly random duration in `[0, max]`.
    pub fn up_to(&mut self, max: Duration) -> Duration {
        let max = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.random_range(0..=max))
    }
}

/// One stage of a link's impairment pipeline.
pub trait Impairment: fmt::Debug {
    /// Decides the fate of one datagram; may add delay, rewrite bytes, or create copies.
    fn apply(&mut self, cx: &mut ImpairContext<'_>, datagram: &mut Datagram) -> Fate;
}

/// A fixed base delay plus uniform jitter in `[0, jitter]` (jitter alone reorders packets sent
/// closer together than the jitter).
#[derive(Clone, Copy, Debug)]
pub struct Delay {
    /// Added to every datagram.
    pub base: Duration,
    /// Upper bound of the uniform extra delay.
    pub jitter: Duration,
}

impl Impairment for Delay {
    fn apply(&mut self, cx: &mut ImpairContext<'_>, datagram: &mut Datagram) -> Fate {
        datagram.delay += self.base + cx.up_to(self.jitter);
        Fate::Pass
    }
}

/// Drops each datagram independently with probability `p`.
#[derive(Clone, Copy, Debug)]
pub struct Loss {
    /// Drop probability, in `[0, 1]`.
    pub p: f64,
}

impl Impairment for Loss {
    fn apply(&mut self, cx: &mut ImpairContext<'_>, _: &mut Datagram) -> Fate {
        if cx.chance(self.p) {
            Fate::Drop(DropCause::Loss)
        } else {
            Fate::Pass
        }
    }
}

/// Holds back a fraction `p` of datagrams by an extra uniform delay in `[0, max_extra]`, so
/// that later datagrams overtake them.
#[derive(Clone, Copy, Debug)]
pub struct Reorder {
    /// Fraction of datagrams held back.
    pub p: f64,
    /// Upper bound of the extra delay.
    pub max_extra: Duration,
}

impl Impairment for Reorder {
    fn apply(&mut self, cx: &mut ImpairContext<'_>, datagram: &mut Datagram) -> Fate {
        if cx.chance(self.p) {
            datagram.delay += cx.up_to(self.max_extra);
        }
        Fate::Pass
    }
}

/// Duplicates each datagram with probability `p`; the copy continues from the next stage.
#[derive(Clone, Copy, Debug)]
pub struct Duplicate {
    /// Duplication probability.
    pub p: f64,
}

impl Impairment for Duplicate {
    fn apply(&mut self, cx: &mut ImpairContext<'_>, datagram: &mut Datagram) -> Fate {
        if cx.chance(self.p) {
            cx.create(CopyKind::Duplicate, datagram.clone());
        }
        Fate::Pass
    }
}

/// Drops everything sent during any of its windows (offsets from the network's base instant,
/// half-open: `start <= elapsed < end`).
#[derive(Clone, Debug, Default)]
pub struct Blackhole {
    /// The windows during which the link drops every datagram.
    pub windows: Vec<Range<Duration>>,
}

impl Blackhole {
    /// A blackhole for one window.
    #[must_use]
    pub fn during(window: Range<Duration>) -> Self {
        Self {
            windows: vec![window],
        }
    }

    /// True if the link is dark at `elapsed`.
    #[must_use]
    pub fn is_dark(&self, elapsed: Duration) -> bool {
        self.windows.iter().any(|w| w.contains(&elapsed))
    }
}

impl Impairment for Blackhole {
    fn apply(&mut self, cx: &mut ImpairContext<'_>, _: &mut Datagram) -> Fate {
        if self.is_dark(cx.elapsed) {
            Fate::Drop(DropCause::Blackhole)
        } else {
            Fate::Pass
        }
    }
}

/// Drops datagrams larger than `max` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Mtu {
    /// The largest datagram the link carries.
    pub max: usize,
}

impl Impairment for Mtu {
    fn apply(&mut self, _: &mut ImpairContext<'_>, datagram: &mut Datagram) -> Fate {
        if datagram.data.len() > self.max {
            Fate::Drop(DropCause::TooLarge)
        } else {
            Fate::Pass
        }
    }
}

/// A hook on the wire for attacker and observer scenarios: the closure sees every datagram
/// (and the context, so it can [`create`](ImpairContext::create) injected frames with
/// [`CopyKind::Injected`]), may rewrite it, and decides its fate. Recording is done by capturing
/// a shared buffer (e.g. `Rc<RefCell<Vec<Vec<u8>>>>`) in the closure.
pub struct Tap<F> {
    hook: F,
}

impl<F> Tap<F>
where
    F: FnMut(&mut ImpairContext<'_>, &mut Datagram) -> Fate,
{
    /// A tap running `hook` on every datagram.
    pub fn new(hook: F) -> Self {
        Self { hook }
    }
}

impl<F> fmt::Debug for Tap<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tap").finish_non_exhaustive()
    }
}

impl<F> Impairment for Tap<F>
where
    F: FnMut(&mut ImpairContext<'_>, &mut Datagram) -> Fate,
{
    fn apply(&mut self, cx: &mut ImpairContext<'_>, datagram: &mut Datagram) -> Fate {
        (self.hook)(cx, datagram)
    }
}

/// The usual lossy-network pipeline for one direction: loss, duplication, delay with jitter,
/// reordering (in that order).
#[must_use]
pub fn lossy(
    loss: f64,
    duplicate: f64,
    delay: Delay,
    reorder: Reorder,
) -> Vec<Box<dyn Impairment>> {
    vec![
        Box::new(Loss { p: loss }),
        Box::new(Duplicate { p: duplicate }),
        Box::new(delay),
        Box::new(reorder),
    ]
}
