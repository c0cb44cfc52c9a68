//! Sequences of session events on a **multipath** client (ATTACKS.md S24, S26, S27, and the
//! session-layer reattach path of S7–S11): the `session_events` world (a real handshake in
//! memory, then deliver / drop / duplicate / reorder / replay / mutate / inject, timers, sends,
//! probes, closes, NAT rebinds) whose client first registers its three paths as candidates
//! (UDP, QUIC, WSS), then takes `add_path` / `remove_path` / `path_up` / `path_down`, and
//! captured REATTACH_INIT frames mutated before the server's `Endpoint` (MAC1 recomputed or not).
//! A dead bound path makes the client reattach, so PROBE, REATTACH and PATH_CONFIRM traffic is
//! driven through the real endpoint.
//!
//! Contract: everything `session_events` checks after every event (no violation, version and
//! epoch monotonic, session id immutable, TERMINATED final), plus: a REATTACH_INIT changed in
//! any byte before its MACs is never answered OK (`counters().reattach.accepted` unchanged).
#![no_main]

use arbitrary::Arbitrary;
use jvpn_fuzz::keys;
use jvpn_fuzz::session_world::{Op, World, client_path, server_path};
use jvpn_session::PathKind;
use jvpn_wire::MessageType;
use jvpn_wire::frame::peek_type;
use jvpn_wire::kdf::MAC_LEN;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum MpOp {
    /// Any `session_events` event.
    Base(Op),
    /// Adds (or re-adds) a client candidate path of kind `kind % 3` with rank `rank % 4`.
    AddPath { path: u8, kind: u8, rank: u8 },
    /// Forgets a candidate path.
    RemovePath { path: u8 },
    /// The runtime says a path's link is up (again).
    PathUp { path: u8 },
    /// The runtime says a path's link failed.
    PathDown { path: u8 },
    /// A captured REATTACH_INIT (wraps over those the client sent) with byte `at` xored with
    /// `mask`, MAC1 recomputed if `fix_mac1`, delivered to the server on `path`.
    MutateReattach {
        which: u16,
        at: u16,
        mask: u8,
        fix_mac1: bool,
        path: u8,
    },
}

fn kind(k: u8) -> PathKind {
    match k % 3 {
        0 => PathKind::Udp,
        1 => PathKind::Quic,
        _ => PathKind::Wss,
    }
}

fn apply(world: &mut World, op: MpOp) {
    let now = world.now;
    match op {
        MpOp::Base(op) => world.apply(op),
        MpOp::AddPath {
            path,
            kind: k,
            rank,
        } => {
            world
                .client
                .add_path(client_path(path), kind(k), rank % 4, now);
            world.collect();
        }
        MpOp::RemovePath { path } => {
            world.client.remove_path(client_path(path), now);
            world.collect();
        }
        MpOp::PathUp { path } => {
            world.client.path_up(client_path(path), now);
            world.collect();
        }
        MpOp::PathDown { path } => {
            world.client.path_down(client_path(path), now);
            world.collect();
        }
        MpOp::MutateReattach {
            which,
            at,
            mask,
            fix_mac1,
            path,
        } => {
            let inits: Vec<&Vec<u8>> = world
                .client_sent
                .iter()
                .filter(|f| peek_type(f) == Ok(MessageType::ReattachInit))
                .collect();
            if inits.is_empty() || mask == 0 {
                return;
            }
            let mut frame = inits[usize::from(which) % inits.len()].clone();
            let Some(macs_at) = frame.len().checked_sub(2 * MAC_LEN).filter(|&n| n > 0) else {
                return;
            };
            frame[usize::from(at) % macs_at] ^= mask;
            if fix_mac1 {
                jvpn_fuzz::fix_mac1(&mut frame, &keys().server.public_key());
            }
            let accepted = world.server.counters().reattach.accepted;
            world.send_to_server(server_path(path), frame);
            assert_eq!(
                world.server.counters().reattach.accepted,
                accepted,
                "a mutated REATTACH_INIT was answered OK"
            );
        }
    }
}

fuzz_target!(|ops: Vec<MpOp>| {
    let mut world = World::offering(b"udp,quic,wss");
    for (p, k) in [
        (0u8, PathKind::Udp),
        (1, PathKind::Quic),
        (2, PathKind::Wss),
    ] {
        world.client.add_path(client_path(p), k, p, world.now);
    }
    world.pump();
    world.check();
    for op in ops.into_iter().take(64) {
        apply(&mut world, op);
        world.check();
    }
});
