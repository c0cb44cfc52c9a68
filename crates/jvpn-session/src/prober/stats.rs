//! What the prober knows about one path: RTT estimators, the loss window, the path's state.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How many resolved probes (answered or lost) the loss window holds.
pub const LOSS_WINDOW: u32 = 16;

/// The transport kind of a path, as the user names it in `--transports`.
///
/// The prober does not interpret it: it is carried for status output and audit records. The
/// order of preference is the path's `preference_rank`, not the kind.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathKind {
    /// Plain UDP datagrams.
    Udp,
    /// QUIC DATAGRAM frames.
    Quic,
    /// Binary WebSocket messages over TLS.
    Wss,
    /// A transport provided by an embedder, by name.
    Custom(String),
}

impl PathKind {
    /// The lowercase name (`"udp"`, `"quic"`, `"wss"` or the custom name).
    pub fn as_str(&self) -> &str {
        match self {
            PathKind::Udp => "udp",
            PathKind::Quic => "quic",
            PathKind::Wss => "wss",
            PathKind::Custom(name) => name,
        }
    }
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The health of a path as the prober sees it.
///
/// One answered probe makes an up path `Alive`; consecutive losses demote it to `Suspect`
/// (`probes_lost_suspect`) and then `Dead` (`probes_lost_dead`); `path_down` makes it `Dead`
/// at once and `path_up` starts it over as `Unknown`.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PathState {
    /// Up, never answered a probe yet.
    Unknown,
    /// Answered a probe and not lost `probes_lost_suspect` in a row since.
    Alive,
    /// `probes_lost_suspect` consecutive probes lost.
    Suspect,
    /// `probes_lost_dead` consecutive probes lost, or the link is down.
    Dead,
}

impl PathState {
    /// The `SCREAMING_SNAKE_CASE` spelling (as in status output and audit records).
    pub const fn as_str(self) -> &'static str {
        match self {
            PathState::Unknown => "UNKNOWN",
            PathState::Alive => "ALIVE",
            PathState::Suspect => "SUSPECT",
            PathState::Dead => "DEAD",
        }
    }
}

impl fmt::Display for PathState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything measured on one path. Read it through [`Prober::stats`](crate::Prober::stats).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathStats {
    pub(super) kind: PathKind,
    pub(super) preference_rank: u8,
    pub(super) state: PathState,
    pub(super) up: bool,
    pub(super) srtt: Option<Duration>,
    pub(super) rttvar: Duration,
    pub(super) latest_rtt: Option<Duration>,
    /// Outcomes of the last resolved probes, newest in bit 0; a set bit is a loss.
    pub(super) history: u32,
    pub(super) history_len: u32,
    pub(super) consecutive_losses: u32,
    pub(super) probes_sent: u64,
    pub(super) probes_answered: u64,
    pub(super) probes_lost: u64,
    pub(super) last_seen: Option<Instant>,
    pub(super) last_ack: Option<Instant>,
    // Scheduling (private to the prober).
    pub(super) up_at: Instant,
    pub(super) last_probe_at: Option<Instant>,
    pub(super) dead_probes: u32,
    pub(super) watched: bool,
    /// Sent and unanswered: (seq, sent at, lost at).
    pub(super) outstanding: VecDeque<(u32, Instant, Instant)>,
}

impl PathStats {
    pub(super) fn new(kind: PathKind, preference_rank: u8, now: Instant) -> Self {
        PathStats {
            kind,
            preference_rank,
            state: PathState::Unknown,
            up: true,
            srtt: None,
            rttvar: Duration::ZERO,
            latest_rtt: None,
            history: 0,
            history_len: 0,
            consecutive_losses: 0,
            probes_sent: 0,
            probes_answered: 0,
            probes_lost: 0,
            last_seen: None,
            last_ack: None,
            up_at: now,
            last_probe_at: None,
            dead_probes: 0,
            watched: false,
            outstanding: VecDeque::new(),
        }
    }

    /// The transport kind.
    pub fn kind(&self) -> &PathKind {
        &self.kind
    }

    /// The user's preference: 0 is the first kind in `--transports`, lower is preferred.
    pub fn preference_rank(&self) -> u8 {
        self.preference_rank
    }

    /// The path's health.
    pub fn state(&self) -> PathState {
        self.state
    }

    /// `false` after `path_down` until `path_up`: the link does not exist and is not probed.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Smoothed RTT (RFC 6298 SRTT, α = 1/8); `None` until a probe is answered.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// RTT variation, the jitter estimate (RFC 6298 RTTVAR update, β = 1/4, but starting at
    /// zero with the first sample); zero until two samples differ.
    pub fn jitter(&self) -> Duration {
        self.rttvar
    }

    /// The most recent RTT sample.
    pub fn latest_rtt(&self) -> Option<Duration> {
        self.latest_rtt
    }

    /// Probes lost among the last [`window_len`](Self::window_len) resolved ones.
    pub fn window_losses(&self) -> u32 {
        (self.history & window_mask(self.history_len)).count_ones()
    }

    /// How many resolved probes the loss window holds (at most [`LOSS_WINDOW`]).
    pub fn window_len(&self) -> u32 {
        self.history_len
    }

    /// Loss over the window in whole percent (rounded down); 0 with an empty window.
    pub fn loss_percent(&self) -> u32 {
        match self.history_len {
            0 => 0,
            len => self.window_losses() * 100 / len,
        }
    }

    /// Whether the switch controller is watching the path (a candidate in its dwell, probed
    /// at the active rate).
    pub fn is_watched(&self) -> bool {
        self.watched
    }

    /// Probes lost in a row since the last answered one.
    pub fn consecutive_losses(&self) -> u32 {
        self.consecutive_losses
    }

    /// Probes sent since the path was added or last came up.
    pub fn probes_sent(&self) -> u64 {
        self.probes_sent
    }

    /// Probes answered since the path was added or last came up.
    pub fn probes_answered(&self) -> u64 {
        self.probes_answered
    }

    /// Probes counted lost since the path was added or last came up.
    pub fn probes_lost(&self) -> u64 {
        self.probes_lost
    }

    /// When an authenticated packet (any, probe answers included) last arrived on the path.
    pub fn last_seen(&self) -> Option<Instant> {
        self.last_seen
    }

    /// When a probe on the path was last answered.
    pub fn last_ack(&self) -> Option<Instant> {
        self.last_ack
    }

    /// Probes sent and neither answered nor lost yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Feeds one RTT sample into the estimators (RFC 6298 §2, in nanoseconds).
    pub(super) fn sample_rtt(&mut self, rtt: Duration) {
        self.latest_rtt = Some(rtt);
        let r = rtt.as_nanos();
        match self.srtt {
            None => {
                // RFC 6298 starts RTTVAR at R/2 to keep an RTO safe before it knows anything;
                // a score wants a neutral start instead (cost R, not 3R), and the switch
                // controller's dwell makes a candidate earn its score over several samples.
                self.srtt = Some(rtt);
                self.rttvar = Duration::ZERO;
            }
            Some(srtt) => {
                let s = srtt.as_nanos();
                let deviation = s.abs_diff(r);
                self.rttvar = nanos((3 * self.rttvar.as_nanos() + deviation) / 4);
                self.srtt = Some(nanos((7 * s + r) / 8));
            }
        }
    }

    pub(super) fn record_outcome(&mut self, lost: bool) {
        self.history = (self.history << 1) | u32::from(lost);
        self.history_len = (self.history_len + 1).min(LOSS_WINDOW);
    }
}

fn window_mask(len: u32) -> u32 {
    match len {
        0 => 0,
        len if len >= 32 => u32::MAX,
        len => (1u32 << len) - 1,
    }
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

#[cfg(test)]
impl PathStats {
    /// A path in `state` with the given estimators and `losses` lost out of `len` resolved
    /// probes (the losses oldest), for scoring tests.
    pub(crate) fn for_test(
        state: PathState,
        srtt: Option<Duration>,
        jitter: Duration,
        losses: u32,
        len: u32,
    ) -> Self {
        #[expect(
            clippy::disallowed_methods,
            reason = "tests need one real instant as a base"
        )]
        let now = Instant::now();
        let mut stats = PathStats::new(PathKind::Udp, 0, now);
        stats.state = state;
        stats.up = state != PathState::Dead;
        stats.srtt = srtt;
        stats.rttvar = jitter;
        for i in 0..len {
            stats.record_outcome(i < losses);
        }
        stats
    }
}
