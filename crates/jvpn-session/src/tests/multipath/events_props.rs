//! Proptest mirror of the `session_multipath` fuzz target (fuzz/README.md): random sequences of
//! path events (link loss, `path_down` / `path_up`, probes, time), replays of captured client
//! datagrams, mutated REATTACH_INITs (MAC1 recomputed or not) and garbage, on a three-path
//! client and a server endpoint.

use std::time::Duration;

use jvpn_wire::MessageType;
use jvpn_wire::frame::peek_type;
use jvpn_wire::kdf::{MAC_LEN, mac1, mac1_key};
use proptest::prelude::*;

use super::Net;
use crate::State;

#[derive(Clone, Debug)]
enum Op {
    Run(u64),
    Drop(usize, bool),
    Down(usize),
    Up(usize),
    Probe,
    Replay(usize),
    MutateReattach {
        which: usize,
        at: usize,
        mask: u8,
        fix_mac1: bool,
    },
    Garbage(usize, Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..3_000).prop_map(Op::Run),
        2 => (0usize..3, any::<bool>()).prop_map(|(i, d)| Op::Drop(i, d)),
        2 => (0usize..3).prop_map(Op::Down),
        1 => (0usize..3).prop_map(Op::Up),
        1 => Just(Op::Probe),
        1 => any::<usize>().prop_map(Op::Replay),
        2 => (any::<usize>(), any::<usize>(), 1u8..=255, any::<bool>()).prop_map(
            |(which, at, mask, fix_mac1)| Op::MutateReattach { which, at, mask, fix_mac1 }
        ),
        1 => (0usize..3, proptest::collection::vec(any::<u8>(), 0..200))
            .prop_map(|(i, b)| Op::Garbage(i, b)),
    ]
}

fn apply(net: &mut Net, op: Op) {
    let now = net.now;
    match op {
        Op::Run(ms) => net.run_for(Duration::from_millis(ms)),
        Op::Drop(i, dropped) => net.set_dropped(i, dropped),
        Op::Down(i) => net.client.path_down(net.path(i), now),
        Op::Up(i) => net.client.path_up(net.path(i), now),
        Op::Probe => {
            let _ = net.client.probe(now);
        }
        Op::Replay(which) => {
            let captured = net.capture.as_deref().unwrap_or_default();
            if let Some((link, datagram)) = captured.get(which % captured.len().max(1)) {
                let (path, mut d) = (net.server_path(*link), datagram.clone());
                let _ = net.server.handle_datagram(path, &mut d, now);
            }
        }
        Op::MutateReattach {
            which,
            at,
            mask,
            fix_mac1,
        } => {
            let inits: Vec<(usize, Vec<u8>)> = net
                .capture
                .iter()
                .flatten()
                .filter(|(_, d)| peek_type(d) == Ok(MessageType::ReattachInit))
                .cloned()
                .collect();
            let Some((link, mut frame)) = inits.get(which % inits.len().max(1)).cloned() else {
                return;
            };
            let macs_at = frame.len() - 2 * MAC_LEN;
            frame[at % macs_at] ^= mask;
            if fix_mac1 {
                let mac = mac1(&mac1_key(&net.server.public_key()), &frame[..macs_at]);
                frame[macs_at..macs_at + MAC_LEN].copy_from_slice(&mac);
            }
            let accepted = net.server.counters().reattach.accepted;
            let path = net.server_path(link);
            let _ = net.server.handle_datagram(path, &mut frame, now);
            assert_eq!(
                net.server.counters().reattach.accepted,
                accepted,
                "a mutated REATTACH_INIT was answered OK"
            );
        }
        Op::Garbage(i, mut bytes) => {
            let _ = net
                .server
                .handle_datagram(net.server_path(i), &mut bytes.clone(), now);
            let _ = net.client.handle_datagram(net.path(i), &mut bytes, now);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_path_events_replays_and_forged_reattaches_keep_every_invariant(
        ops in proptest::collection::vec(op(), 1..24),
    ) {
        let mut net = Net::attached(3, Duration::from_secs(1));
        net.capture = Some(Vec::new());
        let sid = net.client.session_id();
        let (mut version, mut epoch) = (net.client.version(), net.client.epoch());

        for op in ops {
            let was_terminated = net.client.state() == State::Terminated;
            apply(&mut net, op);
            net.run_for(Duration::ZERO);

            net.assert_no_violations();
            prop_assert!(net.max_bindings <= 1);
            prop_assert!(net.client.version() >= version);
            prop_assert!(net.client.epoch() >= epoch);
            prop_assert_eq!(net.client.session_id(), sid);
            prop_assert!(!was_terminated || net.client.state() == State::Terminated);
            (version, epoch) = (net.client.version(), net.client.epoch());
        }
    }
}

#[test]
fn every_byte_flip_of_a_real_reattach_init_before_its_macs_is_never_accepted() {
    let mut net = Net::attached(3, Duration::from_secs(1));
    net.capture = Some(Vec::new());
    net.set_dropped(0, true);
    net.client.path_down(net.path(0), net.now);
    net.run_for(Duration::from_secs(2));
    let honest_accepts = net.server.counters().reattach.accepted;
    let inits = net
        .capture
        .iter()
        .flatten()
        .filter(|(_, d)| peek_type(d) == Ok(MessageType::ReattachInit))
        .count();

    for at in (0..400).step_by(7) {
        for fix_mac1 in [false, true] {
            apply(
                &mut net,
                Op::MutateReattach {
                    which: 0,
                    at,
                    mask: 0x01,
                    fix_mac1,
                },
            );
        }
    }

    assert_eq!(honest_accepts, 1, "the honest jump reattached once");
    assert!(inits >= 1);
    assert_eq!(net.server.counters().reattach.accepted, honest_accepts);
    net.assert_no_violations();
}
