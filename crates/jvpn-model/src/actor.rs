//! The one actor type stateright runs: a tagged union of client, node and store.

use std::borrow::Cow;

use stateright::actor::{Actor, Id, Out};

use crate::ModelCfg;
use crate::client::{ClientState, ClientTimer};
use crate::msg::Msg;
use crate::node::NodeState;
use crate::store::{StoreState, StoreTimer};

/// Every actor of the model, each with the configuration it needs.
#[derive(Clone, Debug)]
pub enum JvpnActor {
    /// The client (actor 0).
    Client(ModelCfg),
    /// A server node (actors 1 and 2); the number is its `NodeNo`.
    Node(ModelCfg, u8),
    /// The ownership store (actor 3).
    Store(ModelCfg),
}

/// The state of one actor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ActorState {
    /// Client state.
    Client(ClientState),
    /// Node state.
    Node(NodeState),
    /// Store state.
    Store(StoreState),
}

/// Every timer of the model.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// A client timer.
    Client(ClientTimer),
    /// A store timer.
    Store(StoreTimer),
}

/// Runs `f` on a copy of the state and writes it back only if it changed, so that a delivery
/// that changes nothing stays a no-op (stateright then adds no state for it).
fn update<T: Clone + PartialEq>(
    state: &mut Cow<'_, ActorState>,
    get: impl Fn(&ActorState) -> Option<&T>,
    wrap: impl Fn(T) -> ActorState,
    f: impl FnOnce(&mut T),
) {
    let Some(cur) = get(state) else { return };
    let mut next = cur.clone();
    f(&mut next);
    if next != *cur {
        *state.to_mut() = wrap(next);
    }
}

fn client(s: &ActorState) -> Option<&ClientState> {
    match s {
        ActorState::Client(c) => Some(c),
        _ => None,
    }
}

fn node(s: &ActorState) -> Option<&NodeState> {
    match s {
        ActorState::Node(n) => Some(n),
        _ => None,
    }
}

fn store(s: &ActorState) -> Option<&StoreState> {
    match s {
        ActorState::Store(st) => Some(st),
        _ => None,
    }
}

impl Actor for JvpnActor {
    type Msg = Msg;
    type State = ActorState;
    type Timer = Timer;
    type Random = ();
    type Storage = ();

    fn on_start(&self, _id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> ActorState {
        match self {
            JvpnActor::Client(cfg) => ActorState::Client(ClientState::start(cfg, o)),
            JvpnActor::Node(..) => ActorState::Node(NodeState::start()),
            JvpnActor::Store(_) => ActorState::Store(StoreState::start()),
        }
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut Cow<'_, ActorState>,
        src: Id,
        msg: Msg,
        o: &mut Out<Self>,
    ) {
        match self {
            JvpnActor::Client(cfg) => update(state, client, ActorState::Client, |c| {
                c.on_msg(cfg, src, &msg, o)
            }),
            JvpnActor::Node(cfg, me) => update(state, node, ActorState::Node, |n| {
                n.on_msg(cfg, *me, &msg, o)
            }),
            JvpnActor::Store(_) => {
                if let Msg::Cas {
                    tag,
                    expected,
                    write,
                } = msg
                {
                    update(state, store, ActorState::Store, |st| {
                        st.on_cas(src, tag, expected, write, o)
                    });
                }
            }
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<'_, ActorState>,
        timer: &Timer,
        o: &mut Out<Self>,
    ) {
        match (self, *timer) {
            (JvpnActor::Client(cfg), Timer::Client(t)) => {
                update(state, client, ActorState::Client, |c| {
                    c.on_timeout(cfg, t, o)
                })
            }
            (JvpnActor::Store(_), Timer::Store(t)) => {
                update(state, store, ActorState::Store, |st| st.on_timeout(t, o))
            }
            _ => {}
        }
    }
}
