//! One timer table per state machine: an enum of kinds and an array of deadlines.
//!
//! `poll_timeout()` is the minimum of the table; the shell arms exactly one sleep to it and
//! calls `handle_timeout(now)`, which walks [`TimerTable::expired`] in a deterministic order.

use std::time::Instant;

/// Every timer a session can arm. The declaration order breaks ties between equal deadlines.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// The whole BIRTH budget (`Policy::handshake_timeout`) is spent → TERMINATED.
    HandshakeTimeout,
    /// The recovery window is spent → TERMINATED (`RecoveryWindowExceeded`).
    RecoveryDeadline,
    /// Nothing authenticated received for `Policy::dead_after` → RECOVERING.
    DeadPeer,
    /// The current keys are too old to use at all (hard limit).
    KeyExpiry,
    /// Resend the handshake initiation (new ephemeral, new sender index).
    HandshakeRetry,
    /// Start a rekey (the send key is `Policy::rekey_after` old).
    Rekey,
    /// Drop the previous receive key (its post-rekey grace is over).
    PreviousKeyExpiry,
    /// Nothing sent for `Policy::keepalive_interval` → send a keepalive.
    Keepalive,
    /// Client: send a new REATTACH_INIT (RECOVERING), or resend PATH_CONFIRM until the server's
    /// PATH_RESPONSE (bound), every `Policy::reattach_retry`.
    Reattach,
}

impl TimerKind {
    /// Every kind, in declaration (tie-break) order.
    pub const ALL: [TimerKind; TimerKind::COUNT] = [
        TimerKind::HandshakeTimeout,
        TimerKind::RecoveryDeadline,
        TimerKind::DeadPeer,
        TimerKind::KeyExpiry,
        TimerKind::HandshakeRetry,
        TimerKind::Rekey,
        TimerKind::PreviousKeyExpiry,
        TimerKind::Keepalive,
        TimerKind::Reattach,
    ];

    /// The number of kinds (the size of the table).
    pub const COUNT: usize = 9;

    const fn index(self) -> usize {
        self as usize
    }
}

/// The deadlines of one state machine, at most one per [`TimerKind`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimerTable {
    deadlines: [Option<Instant>; TimerKind::COUNT],
}

impl TimerTable {
    /// An empty table (no timer armed).
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms (or re-arms) `kind` to fire at `deadline`.
    pub fn set(&mut self, kind: TimerKind, deadline: Instant) {
        self.deadlines[kind.index()] = Some(deadline);
    }

    /// Disarms `kind`.
    pub fn stop(&mut self, kind: TimerKind) {
        self.deadlines[kind.index()] = None;
    }

    /// Disarms every timer (TERMINATED).
    pub fn stop_all(&mut self) {
        self.deadlines = [None; TimerKind::COUNT];
    }

    /// The deadline of `kind`, if armed.
    pub fn get(&self, kind: TimerKind) -> Option<Instant> {
        self.deadlines[kind.index()]
    }

    /// Whether `kind` is armed.
    pub fn is_set(&self, kind: TimerKind) -> bool {
        self.get(kind).is_some()
    }

    /// The earliest armed timer (ties broken by kind order), or `None` when nothing is armed.
    pub fn next(&self) -> Option<(TimerKind, Instant)> {
        TimerKind::ALL
            .into_iter()
            .filter_map(|kind| self.get(kind).map(|at| (kind, at)))
            .min_by_key(|&(kind, at)| (at, kind))
    }

    /// Every timer whose deadline is at or before `now`, earliest deadline first, equal
    /// deadlines in kind order. Does not disarm them: the caller stops each one it handles.
    pub fn expired(&self, now: Instant) -> impl Iterator<Item = TimerKind> + use<> {
        let mut due: [Option<(Instant, TimerKind)>; TimerKind::COUNT] = [None; TimerKind::COUNT];
        for kind in TimerKind::ALL {
            if let Some(at) = self.get(kind).filter(|&at| at <= now) {
                due[kind.index()] = Some((at, kind));
            }
        }
        // `None` sorts first and is skipped by `flatten`; no allocation.
        due.sort_unstable();
        due.into_iter().flatten().map(|(_, kind)| kind)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn base() -> Instant {
        #[expect(
            clippy::disallowed_methods,
            reason = "test needs one real instant as a base"
        )]
        Instant::now()
    }

    #[test]
    fn all_lists_every_kind_at_its_index() {
        for (i, kind) in TimerKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }

    #[test]
    fn empty_table_has_no_next_deadline() {
        let table = TimerTable::new();

        assert_eq!(table.next(), None);
    }

    #[test]
    fn next_is_the_earliest_deadline() {
        let t0 = base();
        let mut table = TimerTable::new();
        table.set(TimerKind::Keepalive, t0 + Duration::from_secs(10));
        table.set(TimerKind::DeadPeer, t0 + Duration::from_secs(25));
        table.set(TimerKind::HandshakeRetry, t0 + Duration::from_secs(5));

        let next = table.next();

        assert_eq!(
            next,
            Some((TimerKind::HandshakeRetry, t0 + Duration::from_secs(5)))
        );
    }

    #[test]
    fn stopped_timer_is_not_next() {
        let t0 = base();
        let mut table = TimerTable::new();
        table.set(TimerKind::Keepalive, t0);
        table.set(TimerKind::Rekey, t0 + Duration::from_secs(1));

        table.stop(TimerKind::Keepalive);

        assert_eq!(table.next().map(|(k, _)| k), Some(TimerKind::Rekey));
        assert!(!table.is_set(TimerKind::Keepalive));
    }

    #[test]
    fn expired_yields_due_timers_by_deadline_then_kind() {
        let t0 = base();
        let mut table = TimerTable::new();
        table.set(TimerKind::Keepalive, t0 + Duration::from_secs(1));
        table.set(TimerKind::HandshakeRetry, t0 + Duration::from_secs(2));
        table.set(TimerKind::DeadPeer, t0 + Duration::from_secs(2));
        table.set(TimerKind::RecoveryDeadline, t0 + Duration::from_secs(3));

        let due: Vec<TimerKind> = table.expired(t0 + Duration::from_secs(2)).collect();

        assert_eq!(
            due,
            [
                TimerKind::Keepalive,
                TimerKind::DeadPeer,
                TimerKind::HandshakeRetry
            ]
        );
    }

    #[test]
    fn a_timer_is_expired_exactly_at_its_deadline() {
        let t0 = base();
        let mut table = TimerTable::new();
        table.set(TimerKind::RecoveryDeadline, t0);

        let due: Vec<TimerKind> = table.expired(t0).collect();

        assert_eq!(due, [TimerKind::RecoveryDeadline]);
    }
}
