//! The properties checked in every explored state, and the vacuity checks.
//!
//! "Active binding" is defined with fencing: a node *carries* a binding from the store write
//! that committed it until it learns of a newer write that no longer names it (then it fences:
//! drops the binding). A node may carry a stale binding for a while (it has not heard yet); that
//! binding's version is older than the newest commit, and the client, which moved to fresh keys,
//! accepts nothing from it (I4). So "no dual-active" is: no two nodes carry a binding of the same
//! ownership version, no node carries a binding the store did not commit, and only the node of
//! the newest commit can carry the newest binding.

use jvpn_session::{Reason, State};
use stateright::actor::{ActorModelAction, ActorModelState};
use stateright::{Expectation, Model};

use crate::actor::{ActorState, JvpnActor, Timer};
use crate::client::{ClientState, ClientTimer};
use crate::msg::NodeNo;
use crate::node::NodeState;
use crate::store::{StoreState, StoreTimer};
use crate::{CLIENT, JvpnModel, STORE};

/// The explored state of the whole system.
pub type SysState = ActorModelState<JvpnActor>;

fn client(s: &SysState) -> Option<&ClientState> {
    match s.actor_states.get(CLIENT).map(|a| &**a) {
        Some(ActorState::Client(c)) => Some(c),
        _ => None,
    }
}

fn store(s: &SysState) -> Option<&StoreState> {
    match s.actor_states.get(STORE).map(|a| &**a) {
        Some(ActorState::Store(st)) => Some(st),
        _ => None,
    }
}

fn nodes(s: &SysState) -> Vec<(NodeNo, &NodeState)> {
    [1u8, 2]
        .into_iter()
        .filter_map(|n| match s.actor_states.get(usize::from(n)).map(|a| &**a) {
            Some(ActorState::Node(st)) => Some((n, st)),
            _ => None,
        })
        .collect()
}

fn strictly_increasing<T: PartialOrd>(xs: impl IntoIterator<Item = T>) -> bool {
    let v: Vec<T> = xs.into_iter().collect();
    v.windows(2).all(|w| w[0] < w[1])
}

fn no_two_nodes_at_one_version(_: &JvpnModel, s: &SysState) -> bool {
    let versions: Vec<u8> = nodes(s)
        .iter()
        .filter_map(|(_, n)| n.binding.map(|b| b.version))
        .collect();
    versions.len() < 2 || versions[0] != versions[1]
}

fn every_binding_was_committed(_: &JvpnModel, s: &SysState) -> bool {
    let Some(st) = store(s) else { return false };
    nodes(s).iter().all(|(me, n)| {
        n.binding.is_none_or(|b| {
            st.ghost.commits.iter().any(|c| {
                c.node == *me && c.rc == b.rc && c.epoch == b.epoch && c.version == b.version
            })
        })
    })
}

fn only_newest_commit_is_current(_: &JvpnModel, s: &SysState) -> bool {
    let Some(st) = store(s) else { return false };
    let Some(newest) = st.ghost.commits.last() else {
        return nodes(s).iter().all(|(_, n)| n.binding.is_none());
    };
    let current: Vec<NodeNo> = nodes(s)
        .iter()
        .filter(|(_, n)| n.binding.is_some_and(|b| b.version >= newest.version))
        .map(|(me, _)| *me)
        .collect();
    current.is_empty() || current == [newest.node]
}

fn client_bound_to_newest_commit(_: &JvpnModel, s: &SysState) -> bool {
    let (Some(c), Some(st)) = (client(s), store(s)) else {
        return false;
    };
    match c.bound {
        None => true,
        Some((node, rc)) => st
            .ghost
            .commits
            .last()
            .is_some_and(|last| last.node == node && last.rc == rc && c.sm.epoch <= last.epoch),
    }
}

fn versions_monotonic(_: &JvpnModel, s: &SysState) -> bool {
    let Some(st) = store(s) else { return false };
    let store_ok = st.snap.version == 0 || st.snap.version > st.ghost.prev_version;
    let nodes_ok = nodes(s).iter().all(|(_, n)| {
        n.cache.version >= n.prev_version
            && n.cache.version <= st.snap.version
            && n.binding.is_none_or(|b| b.version <= n.cache.version)
    });
    store_ok && nodes_ok
}

fn epoch_and_version_grow_per_commit(_: &JvpnModel, s: &SysState) -> bool {
    let Some(st) = store(s) else { return false };
    let commits = &st.ghost.commits;
    commits
        .windows(2)
        .all(|w| w[1].epoch == w[0].epoch + 1 && w[1].version > w[0].version)
        && commits.first().is_none_or(|c| c.epoch == 1)
}

fn claimed_rc_strictly_increases(_: &JvpnModel, s: &SysState) -> bool {
    store(s).is_some_and(|st| strictly_increasing(st.ghost.claims.iter()))
}

fn committed_rc_strictly_increases(_: &JvpnModel, s: &SysState) -> bool {
    store(s).is_some_and(|st| strictly_increasing(st.ghost.commits.iter().map(|c| c.rc)))
}

fn commits_need_path_confirm(_: &JvpnModel, s: &SysState) -> bool {
    let (Some(c), Some(st)) = (client(s), store(s)) else {
        return false;
    };
    st.ghost
        .commits
        .iter()
        .filter(|cm| cm.rc > 0)
        .all(|cm| c.confirmed.contains(&(cm.node, cm.rc)))
}

fn no_claim_displaces_attached_client(_: &JvpnModel, s: &SysState) -> bool {
    let (Some(c), Some(st)) = (client(s), store(s)) else {
        return false;
    };
    c.bound.is_none_or(|(_, rc)| st.snap.record.last_rc == rc)
}

fn highest_reattach_wins(_: &JvpnModel, s: &SysState) -> bool {
    let (Some(c), Some(st)) = (client(s), store(s)) else {
        return false;
    };
    let rec = st.snap.record;
    let store_ok = rec.binding.is_none_or(|b| b.rc == 0 || b.rc == rec.last_rc);
    let client_ok = c.bound.is_none_or(|(_, rc)| rc == 0 || rc == c.rc);
    store_ok && client_ok
}

fn transitions_follow_table(_: &JvpnModel, s: &SysState) -> bool {
    let (Some(c), Some(st)) = (client(s), store(s)) else {
        return false;
    };
    !c.sm.illegal && !st.ghost.illegal
}

fn terminated_is_final(_: &JvpnModel, s: &SysState) -> bool {
    let (Some(c), Some(st)) = (client(s), store(s)) else {
        return false;
    };
    (!c.sm.was_terminated || c.sm.state == State::Terminated)
        && (!st.ghost.was_terminated || st.snap.record.state == State::Terminated)
}

fn armed(s: &SysState, actor: usize, t: Timer) -> bool {
    s.timers_set
        .get(actor)
        .is_some_and(|ts| ts.iter().any(|x| *x == t))
}

/// From `s`, fires only deadline timers (client first, then the store record's) and reports
/// whether both the client and the record (if one exists) reach TERMINATED. A witness of at
/// most four steps exists from every state: BIRTH has its handshake timeout, a bound state its
/// dead-peer timer, RECOVERING its recovery deadline. Messages are never needed, so neither
/// the network nor the attacker can keep a session alive forever.
pub fn terminates_by_deadlines(m: &JvpnModel, s: &SysState) -> bool {
    let mut cur = s.clone();
    for _ in 0..5 {
        let (Some(c), Some(st)) = (client(&cur), store(&cur)) else {
            return false;
        };
        let client_done = c.sm.state.is_terminated();
        let rec_state = st.snap.record.state;
        let store_done = rec_state.is_terminated() || rec_state == State::Birth;
        if client_done && store_done {
            return true;
        }
        let action = if !client_done {
            [
                ClientTimer::HandshakeTimeout,
                ClientTimer::TransportDead(1),
                ClientTimer::RecoveryDeadline,
            ]
            .into_iter()
            .map(Timer::Client)
            .find(|t| armed(&cur, CLIENT, *t))
            .map(|t| ActorModelAction::Timeout(crate::id(CLIENT), t))
        } else {
            [StoreTimer::DeadPeer, StoreTimer::RecoveryDeadline]
                .into_iter()
                .map(Timer::Store)
                .find(|t| armed(&cur, STORE, *t))
                .map(|t| ActorModelAction::Timeout(crate::id(STORE), t))
        };
        let Some(next) = action.and_then(|a| m.next_state(&cur, a)) else {
            return false;
        };
        cur = next;
    }
    false
}

fn commit_on_node2(_: &JvpnModel, s: &SysState) -> bool {
    store(s).is_some_and(|st| st.ghost.commits.iter().any(|c| c.node == 2 && c.rc > 0))
}

fn client_attached_via_node2(_: &JvpnModel, s: &SysState) -> bool {
    client(s).is_some_and(|c| matches!(c.bound, Some((2, rc)) if rc > 0))
}

fn two_reattaches_commit(_: &JvpnModel, s: &SysState) -> bool {
    store(s).is_some_and(|st| st.ghost.commits.iter().filter(|c| c.rc > 0).count() >= 2)
}

fn replay_dropped(_: &JvpnModel, s: &SysState) -> bool {
    nodes(s).iter().any(|(_, n)| n.ghost.dropped_replay)
}

fn node_fenced(_: &JvpnModel, s: &SysState) -> bool {
    nodes(s).iter().any(|(_, n)| n.ghost.fenced)
}

fn cas_lost(_: &JvpnModel, s: &SysState) -> bool {
    nodes(s).iter().any(|(_, n)| n.ghost.lost_race)
}

fn client_ends_by_window(_: &JvpnModel, s: &SysState) -> bool {
    client(s).is_some_and(|c| {
        c.sm.state == State::Terminated && c.sm.last_reason == Some(Reason::RecoveryWindowExceeded)
    })
}

fn record_ends_by_deadline(_: &JvpnModel, s: &SysState) -> bool {
    store(s).is_some_and(|st| st.snap.record.state == State::Terminated)
}

/// A named property: expectation, name, predicate.
pub type Prop = (Expectation, &'static str, fn(&JvpnModel, &SysState) -> bool);

/// Every property, in report order.
pub const PROPERTIES: &[Prop] = &[
    (
        Expectation::Always,
        "no two nodes carry a binding of the same ownership version",
        no_two_nodes_at_one_version,
    ),
    (
        Expectation::Always,
        "every binding a node carries was committed by the store",
        every_binding_was_committed,
    ),
    (
        Expectation::Always,
        "no dual-active: only the newest commit's node carries the newest binding",
        only_newest_commit_is_current,
    ),
    (
        Expectation::Always,
        "the client is bound only to the newest committed binding",
        client_bound_to_newest_commit,
    ),
    (
        Expectation::Always,
        "store and node versions are monotonic",
        versions_monotonic,
    ),
    (
        Expectation::Always,
        "the binding epoch grows by one and the version strictly per commit",
        epoch_and_version_grow_per_commit,
    ),
    (
        Expectation::Always,
        "a replayed REATTACH_INIT never claims: claimed rc strictly increases",
        claimed_rc_strictly_increases,
    ),
    (
        Expectation::Always,
        "a replayed PATH_CONFIRM never commits: committed rc strictly increases",
        committed_rc_strictly_increases,
    ),
    (
        Expectation::Always,
        "every reattach commit follows the client's PATH_CONFIRM",
        commits_need_path_confirm,
    ),
    (
        Expectation::Always,
        "no claim displaces the binding the client is using",
        no_claim_displaces_attached_client,
    ),
    (
        Expectation::Always,
        "the highest reattach wins",
        highest_reattach_wins,
    ),
    (
        Expectation::Always,
        "every transition is in jvpn-session's table",
        transitions_follow_table,
    ),
    (
        Expectation::Always,
        "TERMINATED is final",
        terminated_is_final,
    ),
    (
        Expectation::Always,
        "TERMINATED is reachable from every state by deadlines alone",
        terminates_by_deadlines,
    ),
    (
        Expectation::Sometimes,
        "a reattach commits on node 2",
        commit_on_node2,
    ),
    (
        Expectation::Sometimes,
        "the client is attached through node 2 after a reattach",
        client_attached_via_node2,
    ),
    (
        Expectation::Sometimes,
        "two reattaches commit",
        two_reattaches_commit,
    ),
    (
        Expectation::Sometimes,
        "a node drops a replayed or stale message",
        replay_dropped,
    ),
    (
        Expectation::Sometimes,
        "a node fences its binding",
        node_fenced,
    ),
    (
        Expectation::Sometimes,
        "a claim or commit loses its compare-and-swap",
        cas_lost,
    ),
    (
        Expectation::Sometimes,
        "the client ends by its recovery window",
        client_ends_by_window,
    ),
    (
        Expectation::Sometimes,
        "the store ends the record by its recovery deadline",
        record_ends_by_deadline,
    ),
];
