//! A client `Session` and a server `Endpoint` that first complete a real handshake in memory,
//! then take an arbitrary sequence of events (ATTACKS.md S24, S26, S27 at the core level):
//! honest delivery, drops, duplicates, reordering, replays and mutations of captured datagrams,
//! arbitrary datagrams on arbitrary paths, virtual time advancing by arbitrary amounts (stepwise
//! through every timer, or in one late jump), sends, probes, closes and path changes.
//!
//! Contract: nothing panics (jvpn-session's invariant checker `debug_assert!`s, so fuzz builds
//! turn any violation into a crash), `violations() == 0` on both sides after every event, and
//! from outside: the client's version and epoch never decrease, its session id never changes
//! once set, and TERMINATED is final.
#![no_main]

use jvpn_fuzz::session_world::{Op, World};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|ops: Vec<Op>| {
    let mut world = World::new();
    for op in ops.into_iter().take(64) {
        world.apply(op);
        world.check();
    }
});
