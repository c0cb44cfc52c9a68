//! A session's transitions, checked as they arrive: a legal path through the table.

use jvpn_session::{AuditRecord, State, is_allowed, is_rebind};

/// What is wrong with a transition, given the ones before it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryFault {
    /// The version is not the previous one plus one (the first is 1).
    #[error("version {got} follows {previous}; expected {}", previous + 1)]
    VersionGap {
        /// The previous version (0 before any transition).
        previous: u64,
        /// The version carried by this record.
        got: u64,
    },
    /// The record leaves a state the session was not in.
    #[error("transition from {from} but the session was in {current}")]
    WrongOrigin {
        /// The state the previous record entered (BIRTH before any).
        current: State,
        /// The state this record says it left.
        from: State,
    },
    /// `(from, to, reason)` is not a row of the transition table.
    #[error("{0:?} is not in the transition table")]
    Illegal(Box<AuditRecord>),
    /// The epoch moved by something other than exactly +1 on a rebind and 0 otherwise.
    #[error("epoch {got} after {previous} on {from} -> {to}")]
    Epoch {
        /// The epoch before.
        previous: u64,
        /// The epoch after.
        got: u64,
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
    },
    /// The session id changed after it was set.
    #[error("session id changed from {previous} to {got}")]
    SessionIdChanged {
        /// The id before.
        previous: String,
        /// The id carried by this record.
        got: String,
    },
}

/// The transitions of one session, in order, with every fault found in them.
#[derive(Clone, Debug, Default)]
pub struct History {
    records: Vec<AuditRecord>,
    faults: Vec<HistoryFault>,
}

impl History {
    /// Appends `record`, checking it against the previous one.
    pub fn observe(&mut self, record: &AuditRecord) {
        let (previous_version, current, previous_epoch) = match self.records.last() {
            Some(last) => (last.version, last.to, last.epoch),
            // A server session rebuilt from the ownership store (another node's, or this
            // node's before a restart) continues RECOVERING at the snapshot's version and
            // epoch: its first record is the next step of that session, not a BIRTH.
            None if record.from == State::Recovering => (
                record.version.saturating_sub(1),
                State::Recovering,
                record
                    .epoch
                    .saturating_sub(u64::from(is_rebind(record.from, record.to))),
            ),
            None => (0, State::Birth, 0),
        };
        if record.version != previous_version + 1 {
            self.faults.push(HistoryFault::VersionGap {
                previous: previous_version,
                got: record.version,
            });
        }
        if record.from != current {
            self.faults.push(HistoryFault::WrongOrigin {
                current,
                from: record.from,
            });
        }
        if !is_allowed(record.from, record.to, record.reason) {
            self.faults
                .push(HistoryFault::Illegal(Box::new(record.clone())));
        }
        let expected_epoch = previous_epoch + u64::from(is_rebind(record.from, record.to));
        if record.epoch != expected_epoch {
            self.faults.push(HistoryFault::Epoch {
                previous: previous_epoch,
                got: record.epoch,
                from: record.from,
                to: record.to,
            });
        }
        let previous_id = self
            .records
            .iter()
            .rev()
            .find_map(|r| r.session_id.as_ref());
        if let (Some(previous), Some(got)) = (previous_id, record.session_id.as_ref())
            && previous != got
        {
            self.faults.push(HistoryFault::SessionIdChanged {
                previous: previous.clone(),
                got: got.clone(),
            });
        }
        self.records.push(record.clone());
    }

    /// Every transition so far.
    #[must_use]
    pub fn records(&self) -> &[AuditRecord] {
        &self.records
    }

    /// Every fault found so far (empty for a correct core).
    #[must_use]
    pub fn faults(&self) -> &[HistoryFault] {
        &self.faults
    }

    /// The `(to, reason)` of every transition, for compact assertions.
    #[must_use]
    pub fn path(&self) -> Vec<(State, jvpn_session::Reason)> {
        self.records.iter().map(|r| (r.to, r.reason)).collect()
    }
}
