//! The first-attach responder (`Responder::read_init`) with a fixed server key (ATTACKS.md S7,
//! S11, S24).
//!
//! Input layout: the first byte picks the mode, the rest is its argument.
//! - 0 `Raw`: the rest is the frame, as is;
//! - 1 `Raw` with a valid MAC1 written over it, so arbitrary bytes reach Noise;
//! - 2.. `Mutated` (the rest decoded with `arbitrary`): structure-aware edits of the honest HANDSHAKE_INIT built in-process (byte flips,
//!   truncations, insertions, low-order ephemerals, header rewrites), optionally with MAC1
//!   recomputed as an attacker who knows the server's public key can.
//!
//! Contract: never panics; nothing that fails the shape, MAC1 or MAC2 check costs a DH; the only
//! initiation accepted is the honest one, byte for byte, except for its sender index (which, as
//! in WireGuard, is covered by MAC1 but not by the Noise transcript: rewriting it can only
//! misroute the answer, documented in docs/protocol.md section 5). A replay of the honest
//! message is accepted by this layer by design; the session layer's timestamp rule rejects it.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use jvpn_fuzz::{
    HANDSHAKE_INIT_EPHEMERAL_AT, Mutation, apply_all, fix_mac1, handshake_seeds, keys,
};
use jvpn_wire::kdf::MAC_LEN;
use jvpn_wire::{HandshakeError, Responder, prologue};
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[derive(Arbitrary, Debug)]
struct Mutated {
    mutations: Vec<Mutation>,
    fix_mac1: bool,
    /// Read with another offered-transports list (a rewritten prologue: downgrade, S30a).
    other_prologue: bool,
}

fn responder() -> Responder {
    Responder::new(keys().server.clone())
}

/// Checks one call's outcome and returns whether the initiation was accepted.
fn read(frame: &[u8], prologue: &[u8], payload_out: &mut [u8]) -> bool {
    let mut responder = responder();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let result = responder.read_init(frame, prologue, payload_out, &mut rng);
    let counters = responder.counters();
    match &result {
        Err(
            HandshakeError::Malformed(_)
            | HandshakeError::Mac1Invalid
            | HandshakeError::Mac2Invalid,
        ) => {
            assert_eq!(
                counters.dh_started, 0,
                "DH spent before the cheap checks passed"
            );
        }
        Err(HandshakeError::BufferTooSmall { .. }) => {}
        Err(HandshakeError::AuthenticationFailed | HandshakeError::NonContributory) => {
            assert_eq!(counters.dh_started, 1);
            assert_eq!(counters.noise_failed, 1);
        }
        Err(other) => panic!("unexpected responder error {other:?}"),
        Ok(incoming) => {
            assert_eq!(incoming.peer_static, keys().client.public_key());
            assert_eq!(incoming.peer_index.to_be_bytes(), frame[4..8]);
        }
    }
    result.is_ok()
}

/// The honest initiation with everything but the sender index and MAC1 compared.
/// MAC1 is the responder's to check (a rewritten index needs a recomputed MAC1), and MAC2 is
/// not its business at all: the endpoint checks MAC2 only under load (`jvpn_wire::cookie`), so
/// the wire responder accepts any MAC2, as WireGuard's does when not under load.
fn is_honest_modulo_index(frame: &[u8]) -> bool {
    let seed = &handshake_seeds().init;
    let mac_at = seed.len() - 2 * MAC_LEN;
    frame.len() == seed.len() && frame[..4] == seed[..4] && frame[8..mac_at] == seed[8..mac_at]
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let server = keys().server.public_key();
    let honest_prologue = jvpn_fuzz::the_prologue();
    let mut payload_out = [0u8; 1024];
    if mode < 2 {
        let mut bytes = rest[..rest.len().min(2048)].to_vec();
        if mode == 1 {
            fix_mac1(&mut bytes, &server);
        }
        let accepted = read(&bytes, honest_prologue, &mut payload_out);
        assert!(
            !accepted || is_honest_modulo_index(&bytes),
            "a responder accepted an initiation it was never sent"
        );
        // A too-small payload buffer is refused before any DH, never a panic.
        let _ = read(&bytes, honest_prologue, &mut []);
        return;
    }
    let Ok(input) = Mutated::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let mut frame = handshake_seeds().init.clone();
    apply_all(
        &mut frame,
        &input.mutations,
        HANDSHAKE_INIT_EPHEMERAL_AT,
        16,
    );
    if input.fix_mac1 {
        fix_mac1(&mut frame, &server);
    }
    let downgraded = prologue(b"wss");
    let prologue = if input.other_prologue {
        downgraded.as_slice()
    } else {
        honest_prologue
    };
    let accepted = read(&frame, prologue, &mut payload_out);
    if accepted {
        assert!(!input.other_prologue, "a rewritten prologue was accepted");
        assert!(
            is_honest_modulo_index(&frame),
            "a mutated initiation was accepted: {frame:02x?}"
        );
    }
});
