//! A server node: answers the first attach and reattaches, claims and commits ownership in the
//! store, fences its binding when the store shows that ownership moved.

use jvpn_session::{Reason, State};
use stateright::actor::Out;

use crate::actor::JvpnActor;
use crate::msg::{
    BindingRef, CasTag, Challenge, Msg, NodeNo, PendingRef, Rc, Record, Snapshot, Status,
};
use crate::{CLIENT, ModelCfg, STORE, Variant};

/// A binding this node carries (it forwards the session's data while it holds one).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LocalBinding {
    /// The counter of the attach (0) or reattach that created it.
    pub rc: Rc,
    /// Its epoch.
    pub epoch: u8,
    /// The store version its commit was written at (its fencing token).
    pub version: u8,
}

/// Where a request of this node stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// First attach: the record-creating CAS is in flight.
    Birth,
    /// Reattach: the read or CAS #1 (claim) is in flight.
    Claiming,
    /// Claimed; REATTACH_RESP sent; waiting for the client's PATH_CONFIRM.
    AwaitConfirm,
    /// PATH_CONFIRM received; CAS #2 (commit) in flight.
    Committing,
}

/// The node's half-open state for one request (at most one per session, newest wins).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pending {
    /// The reattach counter (0 for the first attach).
    pub rc: Rc,
    /// The token sequence number of the REATTACH_INIT.
    pub token: u8,
    /// Where it stands.
    pub stage: Stage,
    /// CAS retries left after a failed compare (the node re-reads, then retries).
    pub retries: u8,
}

/// Ghost flags showing that a path was taken (for the `sometimes` properties).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeGhost {
    /// A REATTACH_INIT or PATH_CONFIRM was dropped as stale or replayed.
    pub dropped_replay: bool,
    /// The node fenced (dropped) its binding because the store moved on.
    pub fenced: bool,
    /// A claim or commit of this node lost its compare-and-swap.
    pub lost_race: bool,
}

/// A node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeState {
    /// The newest record this node has seen (version 0: none).
    pub cache: Snapshot,
    /// Ghost: the cache version this one replaced (monotonicity check).
    pub prev_version: u8,
    /// The binding this node carries, if any.
    pub binding: Option<LocalBinding>,
    /// The request in flight, if any.
    pub pending: Option<Pending>,
    /// Ghost flags.
    pub ghost: NodeGhost,
}

fn reply(o: &mut Out<JvpnActor>, me: NodeNo, rc: Rc, status: Status) {
    let challenge = Challenge { node: me, rc };
    o.send(
        crate::id(CLIENT),
        Msg::ReattachResp {
            rc,
            status,
            challenge,
        },
    );
}

impl NodeState {
    pub(crate) fn start() -> Self {
        NodeState {
            cache: Snapshot {
                version: 0,
                record: Record::ABSENT,
            },
            prev_version: 0,
            binding: None,
            pending: None,
            ghost: NodeGhost::default(),
        }
    }

    /// Learns a record from the store: keeps the newest, fences a binding the record no longer
    /// names, drops or completes the pending request accordingly.
    fn observe(&mut self, me: NodeNo, snap: Snapshot, o: &mut Out<JvpnActor>) {
        if snap.version > self.cache.version {
            self.prev_version = self.cache.version;
            self.cache = snap;
        }
        let rec = self.cache.record;
        if let Some(b) = self.binding {
            let mine = BindingRef {
                node: me,
                rc: b.rc,
                epoch: b.epoch,
            };
            if rec.binding != Some(mine) && self.cache.version > b.version {
                self.binding = None;
                self.ghost.fenced = true;
            }
        }
        let Some(p) = self.pending else { return };
        match p.stage {
            Stage::Birth | Stage::Committing => {
                if let Some(b) = rec.binding.filter(|b| b.node == me && b.rc == p.rc) {
                    self.binding = Some(LocalBinding {
                        rc: b.rc,
                        epoch: b.epoch,
                        version: self.cache.version,
                    });
                    self.pending = None;
                    o.send(
                        crate::id(CLIENT),
                        if p.rc == 0 {
                            Msg::AttachResp
                        } else {
                            Msg::PathResponse { rc: p.rc }
                        },
                    );
                } else if rec.pending != Some(PendingRef { node: me, rc: p.rc })
                    && self.cache.version > 0
                {
                    self.pending = None; // another write won: ambiguity resolves to rejection
                    self.ghost.lost_race = true;
                }
            }
            Stage::AwaitConfirm => {
                if rec.pending != Some(PendingRef { node: me, rc: p.rc }) {
                    self.pending = None; // superseded, expired or released
                    self.ghost.lost_race = true;
                }
            }
            Stage::Claiming => {}
        }
    }

    /// Runs the freshness and policy checks of ATTACKS.md 3.4 g on `snap`, then CAS #1.
    /// `first` is the check against the node's cache when the REATTACH_INIT arrives (a stale
    /// counter is then a replay: silent drop); otherwise `snap` is a fresh read after a failed
    /// compare (a higher counter in it means SUPERSEDED).
    fn try_claim(
        &mut self,
        cfg: &ModelCfg,
        me: NodeNo,
        (rc, token, retries): (Rc, u8, u8),
        snap: Snapshot,
        first: bool,
        o: &mut Out<JvpnActor>,
    ) {
        let rec = snap.record;
        if snap.version == 0 {
            if first {
                // Nothing cached: read the record, then decide.
                self.pending = Some(Pending {
                    rc,
                    token,
                    stage: Stage::Claiming,
                    retries,
                });
                o.send(
                    crate::id(STORE),
                    Msg::Cas {
                        tag: CasTag::Claim(rc),
                        expected: 0,
                        write: None,
                    },
                );
            } else {
                self.pending = None; // no such session
            }
            return;
        }
        let fresh = token > rec.token_floor && rc > rec.last_rc;
        if !fresh && cfg.variant != Variant::NoFreshnessCheck {
            self.pending = None;
            if first {
                self.ghost.dropped_replay = true;
            } else {
                self.ghost.lost_race = true;
                reply(o, me, rc, Status::Superseded);
            }
            return;
        }
        if rec.state == State::Terminated {
            self.pending = None;
            reply(o, me, rc, Status::Expired);
            return;
        }
        if rec.switches >= cfg.switch_budget {
            self.pending = None;
            reply(o, me, rc, Status::Policy);
            return;
        }
        let reason = rec.state.is_bound().then_some(Reason::ReattachRequested);
        let claimed = Record {
            state: State::Recovering,
            binding: None,
            pending: Some(PendingRef { node: me, rc }),
            last_rc: rc,
            token_floor: token,
            ..rec
        };
        self.pending = Some(Pending {
            rc,
            token,
            stage: Stage::Claiming,
            retries,
        });
        o.send(
            crate::id(STORE),
            Msg::Cas {
                tag: CasTag::Claim(rc),
                expected: snap.version,
                write: Some((claimed, reason)),
            },
        );
    }

    pub(crate) fn on_msg(&mut self, cfg: &ModelCfg, me: NodeNo, msg: &Msg, o: &mut Out<JvpnActor>) {
        match *msg {
            Msg::AttachInit => self.on_attach_init(me, o),
            Msg::ReattachInit { rc, token } => self.on_reattach_init(cfg, me, rc, token, o),
            Msg::PathConfirm { rc, challenge } => self.on_path_confirm(cfg, me, rc, challenge, o),
            Msg::StoreReply {
                tag,
                applied,
                current,
            } => self.on_store_reply(cfg, me, tag, applied, current, o),
            Msg::Watch(snap) => self.observe(me, snap, o),
            _ => {}
        }
    }

    fn on_attach_init(&mut self, me: NodeNo, o: &mut Out<JvpnActor>) {
        if self.cache.version != 0 || self.pending.is_some() || self.binding.is_some() {
            // The session exists (or is being created): a replayed first message creates
            // nothing. (Protocol section 12: the handshake timestamp must grow; the store's
            // compare on version 0 is the cluster-wide form of that rule.)
            self.ghost.dropped_replay = true;
            return;
        }
        let born = Record {
            state: State::Attached,
            epoch: 1,
            binding: Some(BindingRef {
                node: me,
                rc: 0,
                epoch: 1,
            }),
            ..Record::ABSENT
        };
        self.pending = Some(Pending {
            rc: 0,
            token: 0,
            stage: Stage::Birth,
            retries: 0,
        });
        o.send(
            crate::id(STORE),
            Msg::Cas {
                tag: CasTag::Birth,
                expected: 0,
                write: Some((born, Some(Reason::HandshakeComplete))),
            },
        );
    }

    fn on_reattach_init(
        &mut self,
        cfg: &ModelCfg,
        me: NodeNo,
        rc: Rc,
        token: u8,
        o: &mut Out<JvpnActor>,
    ) {
        if self.pending.is_some_and(|p| p.rc >= rc) {
            // Exact-replay filter (same attempt in progress) or an older attempt: newest wins.
            self.ghost.dropped_replay = true;
            return;
        }
        if self.binding.is_some_and(|b| b.rc >= rc) {
            self.ghost.dropped_replay = true;
            return;
        }
        if cfg.variant == Variant::CommitOnInit {
            self.broken_commit_on_init(me, rc, o);
            return;
        }
        self.try_claim(cfg, me, (rc, token, 1), self.cache, true, o);
    }

    /// The deliberately broken variant: binds at once, no CAS, no PATH_CONFIRM.
    fn broken_commit_on_init(&mut self, me: NodeNo, rc: Rc, o: &mut Out<JvpnActor>) {
        let rec = self.cache.record;
        if self.cache.version == 0 || rc <= rec.last_rc || rec.state == State::Terminated {
            self.ghost.dropped_replay = true;
            return;
        }
        self.pending = None;
        self.binding = Some(LocalBinding {
            rc,
            epoch: rec.epoch.saturating_add(1),
            version: self.cache.version,
        });
        reply(o, me, rc, Status::Ok);
    }

    fn on_path_confirm(
        &mut self,
        cfg: &ModelCfg,
        me: NodeNo,
        rc: Rc,
        challenge: Challenge,
        o: &mut Out<JvpnActor>,
    ) {
        if cfg.variant == Variant::CommitOnInit {
            if self.binding.is_some_and(|b| b.rc == rc) && challenge.node == me {
                o.send(crate::id(CLIENT), Msg::PathResponse { rc });
            }
            return;
        }
        let rec = self.cache.record;
        let waiting = self
            .pending
            .filter(|p| p.rc == rc && p.stage == Stage::AwaitConfirm);
        let Some(p) = waiting else {
            self.ghost.dropped_replay = true; // nothing to confirm: replayed or stale
            return;
        };
        if challenge != (Challenge { node: me, rc })
            || rec.pending != Some(PendingRef { node: me, rc })
        {
            self.ghost.dropped_replay = true;
            return;
        }
        let epoch = rec.epoch.saturating_add(1);
        let committed = Record {
            state: State::Attached,
            epoch,
            binding: Some(BindingRef {
                node: me,
                rc,
                epoch,
            }),
            pending: None,
            switches: rec.switches.saturating_add(1),
            ..rec
        };
        self.pending = Some(Pending {
            stage: Stage::Committing,
            ..p
        });
        o.send(
            crate::id(STORE),
            Msg::Cas {
                tag: CasTag::Commit(rc),
                expected: self.cache.version,
                write: Some((committed, Some(Reason::ReattachAccepted))),
            },
        );
    }

    fn on_store_reply(
        &mut self,
        cfg: &ModelCfg,
        me: NodeNo,
        tag: CasTag,
        applied: bool,
        current: Snapshot,
        o: &mut Out<JvpnActor>,
    ) {
        let Some(p) = self.pending else {
            self.observe(me, current, o);
            return;
        };
        let answers = match (tag, p.stage) {
            (CasTag::Birth, Stage::Birth) => p.rc == 0,
            (CasTag::Claim(rc), Stage::Claiming) | (CasTag::Commit(rc), Stage::Committing) => {
                rc == p.rc
            }
            _ => false,
        };
        if !answers {
            self.observe(me, current, o);
            return;
        }
        match p.stage {
            Stage::Claiming => {
                self.observe(me, current, o);
                if applied {
                    self.pending = Some(Pending {
                        stage: Stage::AwaitConfirm,
                        ..p
                    });
                    reply(o, me, p.rc, Status::Ok);
                } else if p.retries > 0 {
                    self.try_claim(cfg, me, (p.rc, p.token, p.retries - 1), current, false, o);
                } else {
                    self.pending = None;
                    self.ghost.lost_race = true;
                }
            }
            Stage::Birth | Stage::Committing => {
                // observe completes the request when the record names this node's binding,
                // and drops it when another write won.
                self.observe(me, current, o);
                if !applied && self.pending == Some(p) {
                    self.pending = None;
                    self.ghost.lost_race = true;
                }
            }
            Stage::AwaitConfirm => self.observe(me, current, o),
        }
    }
}
