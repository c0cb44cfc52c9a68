//! The ownership store: one linearizable compare-and-swap register on a version (etcd
//! `Txn(If ModRevision == v)`), with watch events to the nodes and the record's two deadlines.

use jvpn_session::{Reason, State};
use stateright::actor::{Id, Out, model_timeout};

use crate::actor::{JvpnActor, Timer};
use crate::msg::{CasTag, Msg, NodeNo, Rc, Record, Snapshot};
use crate::sm::transition_is_legal;
use crate::{NODE1, NODE2};

/// The store's timers, standing for the record's absolute deadlines.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StoreTimer {
    /// The owner saw nothing from the client for `dead_after` and released the binding
    /// (bound → RECOVERING, `TRANSPORT_DEAD`).
    DeadPeer,
    /// The record's `recovery_deadline` passed (RECOVERING → TERMINATED).
    RecoveryDeadline,
}

/// One committed binding, as written (ghost history).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Commit {
    /// The node the binding went to.
    pub node: NodeNo,
    /// The counter of the attach (0) or reattach.
    pub rc: Rc,
    /// Its epoch.
    pub epoch: u8,
    /// The store version of the write.
    pub version: u8,
}

/// Ghost history kept by the store for the properties; the protocol never reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StoreGhost {
    /// Every committed binding, in write order.
    pub commits: Vec<Commit>,
    /// The counter of every successful claim (CAS #1), in write order.
    pub claims: Vec<Rc>,
    /// A write whose state change the transition table forbids was attempted (and refused).
    pub illegal: bool,
    /// The record has been TERMINATED once.
    pub was_terminated: bool,
    /// The version before the last write (monotonicity check).
    pub prev_version: u8,
}

/// The store's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreState {
    /// The record and its version.
    pub snap: Snapshot,
    /// Ghost history.
    pub ghost: StoreGhost,
}

fn set(o: &mut Out<JvpnActor>, t: StoreTimer) {
    o.set_timer(Timer::Store(t), model_timeout());
}

fn cancel(o: &mut Out<JvpnActor>, t: StoreTimer) {
    o.cancel_timer(Timer::Store(t));
}

impl StoreState {
    pub(crate) fn start() -> Self {
        StoreState {
            snap: Snapshot {
                version: 0,
                record: Record::ABSENT,
            },
            ghost: StoreGhost::default(),
        }
    }

    /// Writes `new` (already compared and checked) and keeps the deadlines and the history.
    fn apply(&mut self, new: Record, o: &mut Out<JvpnActor>) {
        let old = self.snap.record;
        self.ghost.prev_version = self.snap.version;
        self.snap = Snapshot {
            version: self.snap.version.saturating_add(1),
            record: new,
        };
        if let Some(b) = new.binding.filter(|_| new.binding != old.binding) {
            self.ghost.commits.push(Commit {
                node: b.node,
                rc: b.rc,
                epoch: b.epoch,
                version: self.snap.version,
            });
        }
        if let Some(p) = new.pending.filter(|_| new.pending != old.pending) {
            self.ghost.claims.push(p.rc);
        }
        if new.state.is_terminated() {
            self.ghost.was_terminated = true;
        }
        if old.state.is_bound() && !new.state.is_bound() {
            cancel(o, StoreTimer::DeadPeer);
        }
        if new.state.is_bound() && !old.state.is_bound() {
            set(o, StoreTimer::DeadPeer);
        }
        if old.state == State::Recovering && new.state != State::Recovering {
            cancel(o, StoreTimer::RecoveryDeadline);
        }
        if new.state == State::Recovering && old.state != State::Recovering {
            set(o, StoreTimer::RecoveryDeadline);
        }
    }

    fn watch(&self, o: &mut Out<JvpnActor>, except: Option<Id>) {
        for node in [crate::id(NODE1), crate::id(NODE2)] {
            if Some(node) != except {
                o.send(node, Msg::Watch(self.snap));
            }
        }
    }

    pub(crate) fn on_cas(
        &mut self,
        src: Id,
        tag: CasTag,
        expected: u8,
        write: Option<(Record, Option<Reason>)>,
        o: &mut Out<JvpnActor>,
    ) {
        let mut applied = false;
        if let Some((new, reason)) = write {
            let old = self.snap.record;
            if expected == self.snap.version {
                if transition_is_legal(old.state, old.epoch, new.state, new.epoch, reason) {
                    self.apply(new, o);
                    applied = true;
                } else {
                    self.ghost.illegal = true;
                }
            }
        }
        o.send(
            src,
            Msg::StoreReply {
                tag,
                applied,
                current: self.snap,
            },
        );
        if applied {
            self.watch(o, Some(src));
        }
    }

    pub(crate) fn on_timeout(&mut self, timer: StoreTimer, o: &mut Out<JvpnActor>) {
        let old = self.snap.record;
        let (new, reason) = match timer {
            StoreTimer::DeadPeer if old.state.is_bound() => (
                Record {
                    state: State::Recovering,
                    binding: None,
                    ..old
                },
                Reason::TransportDead,
            ),
            StoreTimer::RecoveryDeadline if old.state == State::Recovering => (
                Record {
                    state: State::Terminated,
                    pending: None,
                    ..old
                },
                Reason::RecoveryWindowExceeded,
            ),
            _ => return,
        };
        if transition_is_legal(old.state, old.epoch, new.state, new.epoch, Some(reason)) {
            self.apply(new, o);
            self.watch(o, None);
        } else {
            self.ghost.illegal = true;
        }
    }
}
