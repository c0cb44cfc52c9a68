//! The client: first attach to node 1, then reattaches to either node after its transport dies.

use std::collections::BTreeSet;

use jvpn_session::{Reason, State};
use stateright::actor::{Id, Out, model_timeout};

use crate::actor::{JvpnActor, Timer};
use crate::msg::{Msg, NodeNo, Rc, Status};
use crate::sm::Sm;
use crate::{ModelCfg, NODE1, NODE2, node_id};

/// The client's timers. Any armed timer may fire at any time: the model does not order
/// deadlines, so every interleaving of "the window ran out" with message arrivals is explored.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClientTimer {
    /// BIRTH gives up (`HANDSHAKE_TIMEOUT`).
    HandshakeTimeout,
    /// The bound transport dies (`TRANSPORT_DEAD`; it stands for every reason to leave a
    /// path) and the client at once sends its first REATTACH_INIT on a path to this node.
    TransportDead(NodeNo),
    /// RECOVERING lasted the recovery window (`RECOVERY_WINDOW_EXCEEDED`).
    RecoveryDeadline,
    /// Retry: a new REATTACH_INIT (new counter, new token) to this node.
    Attempt(NodeNo),
}

/// The reattach the client is waiting on (one at a time: a new attempt drops the old
/// ephemeral, so an answer to an older attempt no longer decrypts).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attempt {
    /// Its counter.
    pub rc: Rc,
    /// The node whose challenge the client echoed in a PATH_CONFIRM, once it did.
    pub confirmed_to: Option<NodeNo>,
}

/// The client's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState {
    /// The session state machine (jvpn-session's table).
    pub sm: Sm,
    /// The binding in use: `(node, rc)` of the attach or reattach that created it.
    pub bound: Option<(NodeNo, Rc)>,
    /// The highest reattach counter used.
    pub rc: Rc,
    /// The highest token sequence granted (tokens are used in order, one per attempt).
    pub token_max: u8,
    /// The attempt in flight.
    pub attempt: Option<Attempt>,
    /// Ghost: every `(node, rc)` the client sent a PATH_CONFIRM for.
    pub confirmed: BTreeSet<(NodeNo, Rc)>,
}

/// Sends `msg` to `dst`. With the attacker on, it also captured `msg` on the wire and holds
/// one replay for each node: those copies sit in the network and may be delivered at any later
/// moment, in any order against everything else, or never.
pub(crate) fn send_tapped(cfg: &ModelCfg, o: &mut Out<JvpnActor>, dst: Id, msg: Msg) {
    if cfg.attacker {
        o.send(crate::id(NODE1), msg.clone());
        o.send(crate::id(NODE2), msg.clone());
    }
    o.send(dst, msg);
}

fn set(o: &mut Out<JvpnActor>, t: ClientTimer) {
    o.set_timer(Timer::Client(t), model_timeout());
}

fn cancel(o: &mut Out<JvpnActor>, t: ClientTimer) {
    o.cancel_timer(Timer::Client(t));
}

impl ClientState {
    /// The client at start: BIRTH, ATTACH_INIT on its way to node 1.
    pub(crate) fn start(cfg: &ModelCfg, o: &mut Out<JvpnActor>) -> Self {
        send_tapped(cfg, o, crate::id(NODE1), Msg::AttachInit);
        set(o, ClientTimer::HandshakeTimeout);
        ClientState {
            sm: Sm::new(),
            bound: None,
            rc: 0,
            token_max: 0,
            attempt: None,
            confirmed: BTreeSet::new(),
        }
    }

    fn arm_attempts(&self, cfg: &ModelCfg, o: &mut Out<JvpnActor>) {
        if self.rc < cfg.max_rc {
            set(o, ClientTimer::Attempt(1));
            set(o, ClientTimer::Attempt(2));
        }
    }

    fn end_recovery_timers(o: &mut Out<JvpnActor>) {
        cancel(o, ClientTimer::RecoveryDeadline);
        cancel(o, ClientTimer::Attempt(1));
        cancel(o, ClientTimer::Attempt(2));
    }

    fn bind(&mut self, o: &mut Out<JvpnActor>, node: NodeNo, rc: Rc) {
        self.bound = Some((node, rc));
        self.attempt = None;
        set(o, ClientTimer::TransportDead(1));
        set(o, ClientTimer::TransportDead(2));
    }

    /// Sends a REATTACH_INIT with the next counter and token to `node`, if any are left.
    fn attempt(&mut self, cfg: &ModelCfg, node: NodeNo, o: &mut Out<JvpnActor>) {
        if self.rc >= cfg.max_rc || self.rc >= self.token_max {
            return;
        }
        self.rc += 1;
        let rc = self.rc;
        self.attempt = Some(Attempt {
            rc,
            confirmed_to: None,
        });
        // Tokens are granted in sequence and used in order, one per attempt, so the token of
        // attempt `rc` has sequence number `rc`.
        send_tapped(cfg, o, node_id(node), Msg::ReattachInit { rc, token: rc });
        self.arm_attempts(cfg, o);
    }

    pub(crate) fn on_msg(&mut self, cfg: &ModelCfg, src: Id, msg: &Msg, o: &mut Out<JvpnActor>) {
        let Some(from) = crate::node_no(src) else {
            return; // only nodes talk to the client
        };
        match *msg {
            Msg::AttachResp if self.sm.state == State::Birth => {
                let moved = self
                    .sm
                    .transition(State::Attached, Reason::HandshakeComplete);
                if moved {
                    cancel(o, ClientTimer::HandshakeTimeout);
                    self.token_max = cfg.tokens_per_grant;
                    self.bind(o, from, 0);
                }
            }
            Msg::ReattachResp {
                rc,
                status,
                challenge,
            } if self.sm.state == State::Recovering => {
                let Some(attempt) = self.attempt else { return };
                if attempt.rc != rc || attempt.confirmed_to.is_some() {
                    return; // an older ephemeral, or already answered: does not decrypt / dup
                }
                match status {
                    Status::Ok => {
                        self.attempt = Some(Attempt {
                            rc,
                            confirmed_to: Some(from),
                        });
                        self.confirmed.insert((from, rc));
                        self.token_max =
                            self.token_max.max(rc.saturating_add(cfg.tokens_per_grant));
                        send_tapped(cfg, o, node_id(from), Msg::PathConfirm { rc, challenge });
                    }
                    // Another reattach of ours won the claim: wait for its answer.
                    Status::Superseded => {}
                    Status::Expired => {
                        if self
                            .sm
                            .transition(State::Terminated, Reason::RecoveryWindowExceeded)
                        {
                            self.attempt = None;
                            Self::end_recovery_timers(o);
                        }
                    }
                    Status::Policy => {
                        if self
                            .sm
                            .transition(State::Terminated, Reason::SwitchBudgetExhausted)
                        {
                            self.attempt = None;
                            Self::end_recovery_timers(o);
                        }
                    }
                }
            }
            Msg::PathResponse { rc } if self.sm.state == State::Recovering => {
                let expected = Attempt {
                    rc,
                    confirmed_to: Some(from),
                };
                if self.attempt == Some(expected)
                    && self
                        .sm
                        .transition(State::Attached, Reason::ReattachAccepted)
                {
                    Self::end_recovery_timers(o);
                    self.bind(o, from, rc);
                }
            }
            _ => {}
        }
    }

    pub(crate) fn on_timeout(
        &mut self,
        cfg: &ModelCfg,
        timer: ClientTimer,
        o: &mut Out<JvpnActor>,
    ) {
        match timer {
            ClientTimer::HandshakeTimeout if self.sm.state == State::Birth => {
                self.sm
                    .transition(State::Terminated, Reason::HandshakeTimeout);
            }
            ClientTimer::TransportDead(node) if self.sm.state.is_bound() => {
                let moved = self.sm.transition(State::Recovering, Reason::TransportDead);
                if moved {
                    self.bound = None;
                    cancel(o, ClientTimer::TransportDead(if node == 1 { 2 } else { 1 }));
                    set(o, ClientTimer::RecoveryDeadline);
                    self.attempt(cfg, node, o);
                }
            }
            ClientTimer::RecoveryDeadline if self.sm.state == State::Recovering => {
                let moved = self
                    .sm
                    .transition(State::Terminated, Reason::RecoveryWindowExceeded);
                if moved {
                    self.attempt = None;
                    Self::end_recovery_timers(o);
                }
            }
            ClientTimer::Attempt(node) if self.sm.state == State::Recovering => {
                self.attempt(cfg, node, o);
            }
            _ => {}
        }
    }
}
