//! NAT rebinding: the server sees the client's active path from a new address. Data from there
//! never moves the binding; the server flags its probe answers as off the binding and the
//! client revalidates the path with a reattach, which moves the binding explicitly.

use std::time::Duration;

use super::net::Net;
use super::{ONE_WAY, SETTLE, TRAFFIC_EVERY, blackout_bound, busy};
use crate::{DropReason, EndpointInbound, PathId, Policy, Reason, State, SwitchReason};

/// A PROBE frame as it leaves the client: header 16 + PROBE 13 + tag 16.
const PROBE_FRAME_LEN: usize = 45;

#[test]
fn a_nat_rebinding_of_the_active_path_under_traffic_is_repaired_by_a_reattach_on_that_path() {
    let mut net = busy(2);
    let policy = Policy::default();
    let cut = net.now;

    let new_server_path = net.rebind(0);
    net.run_for(Duration::from_secs(3));

    let blackout = net.longest_gap_after(cut);
    let bound = blackout_bound(&policy);
    assert!(blackout <= bound, "blackout {blackout:?} > {bound:?}");
    assert!(bound < Duration::from_secs(1));
    assert_eq!(net.client.bound_path(), Some(net.path(0)));
    assert_eq!(net.server_session().bound_path(), Some(new_server_path));
    assert_eq!(net.client.epoch(), 2);
    assert_eq!(net.server_session().epoch(), 2);
    let settled = cut + bound;
    assert!(
        net.client_rx.iter().any(|&t| t > settled),
        "server → client"
    );
    assert!(
        net.server_rx.iter().any(|&t| t > settled),
        "client → server"
    );
    assert!(net.longest_gap_after(settled) <= TRAFFIC_EVERY * 2);
    let after: Vec<_> = net
        .client_transitions()
        .into_iter()
        .filter(|t| t.0 >= cut)
        .map(|(_, from, to, reason)| (from, to, reason))
        .collect();
    assert_eq!(
        after.iter().filter(|t| t.1 == State::Recovering).count(),
        1,
        "one reattach, no loop: {after:?}"
    );
    assert!(
        after
            .iter()
            .any(|t| t.1 == State::Recovering && t.2 == Reason::TransportDead)
    );
    assert_eq!(
        after.last().map(|t| (t.1, t.2)),
        Some((State::Attached, Reason::ReattachAccepted))
    );
    assert_eq!(
        net.client.last_switch(),
        Some((SwitchReason::TransportDead, net.path(0)))
    );
    assert!(net.max_bindings <= 1);
    net.assert_no_violations();
}

#[test]
fn an_idle_session_whose_path_is_rebound_is_repaired_at_the_next_probe() {
    let mut net = Net::attached(2, SETTLE);
    let policy = Policy::default();

    let new_server_path = net.rebind(0);
    net.run_for(policy.probe_interval + ONE_WAY * 6);

    assert_eq!(net.server_session().bound_path(), Some(new_server_path));
    assert_eq!(net.client.state(), State::Attached);
    assert_eq!(net.client.bound_path(), Some(net.path(0)));
    assert_eq!(net.server_session().epoch(), 2);
    let repaired = net.now;
    net.traffic = Some(TRAFFIC_EVERY);
    net.run_for(Duration::from_secs(1));
    assert!(
        net.client_rx.iter().any(|&t| t > repaired),
        "server → client"
    );
    assert!(
        net.server_rx.iter().any(|&t| t > repaired),
        "client → server"
    );
    net.assert_no_violations();
}

#[test]
fn an_old_probe_replayed_from_a_new_address_is_dropped_and_moves_nothing() {
    let mut net = Net::attached(2, SETTLE);
    net.capture = Some(Vec::new());
    net.run_for(Duration::from_secs(2));
    let (_, probe) = net
        .capture
        .take()
        .unwrap_or_default()
        .into_iter()
        .find(|(link, frame)| *link == 0 && frame.len() == PROBE_FRAME_LEN && frame[0] == 5)
        .expect("the client probed its active path");
    let elsewhere = PathId(999);
    let mut replayed = probe.clone();

    let result = net
        .server
        .handle_datagram(elsewhere, &mut replayed, net.now);
    net.run_for(Duration::from_secs(2));

    assert_eq!(result, EndpointInbound::Dropped(DropReason::Replayed));
    assert!(
        net.server_sent_nowhere.is_empty(),
        "no answer to the attacker"
    );
    assert_eq!(net.server_session().bound_path(), Some(net.server_path(0)));
    assert_eq!(net.server_session().epoch(), 1);
    assert_eq!(net.client.state(), State::Attached);
    assert_eq!(net.client.epoch(), 1);
    assert_eq!(net.client_transitions().len(), 1, "the first attach only");
    net.assert_no_violations();
}
