//! The reattach responder's typed steps (parse → verify_mac1 → open_token → read_init) on
//! arbitrary bytes and on structure-aware mutations of the honest REATTACH_INIT (ATTACKS.md S7,
//! S8, S9, S10, S11, S24: fuzz target F3).
//!
//! Input layout: the first byte picks the mode, the rest is its argument: 0 = the rest is the
//! frame, as is; 1 = the same with a valid MAC1 written over it (arbitrary bytes reach the token
//! check); 2.. = the rest decoded with `arbitrary` as mutations of the honest message.
//!
//! The mutation mode can also re-seal the token with fuzzer-chosen claims under the real token
//! key (a node's own key: reaches Noise with another session id or sequence), and run the
//! responder with the wrong PSK (stolen device key only, S10), the wrong device key (stolen
//! resumption secret only, S9), another token key, or another prologue.
//!
//! Contract: never panics; no step before `read_init` costs a DH; the ONLY REATTACH_INIT ever
//! accepted is the honest one, byte for byte, read with the honest record (every byte up to MAC1
//! is in the Noise prologue or transcript, so unlike the first-attach handshake not even the
//! sender index may change). The wire layer accepts an exact replay by design: the session
//! layer's exact-replay filter, token floor and reattach counter reject it.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use jvpn_fuzz::{
    Mutation, REATTACH_EPHEMERAL_AT, REATTACH_TOKEN_AT, apply_all, fix_mac1, keys, reattach_psk,
    reattach_seeds, the_prologue,
};
use jvpn_wire::{
    Psk, PublicKey, ReattachError, ReattachResponder, SessionId, TOKEN_LEN, TokenClaims, TokenKey,
    prologue, resumption_psk, seal_token,
};
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Which record the responder looks up (honest, or one of the attacks).
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    Honest,
    /// The next PSK epoch (the attacker's PSK is stale or guessed).
    WrongPskEpoch,
    /// All-zero PSK.
    ZeroPsk,
    /// Another device's static key in the record.
    OtherDevice,
    /// A token key from another cluster / rotated out.
    OtherTokenKey,
    /// Another offered-transports list (downgrade attempt, S30a).
    OtherPrologue,
}

#[derive(Arbitrary, Debug)]
struct Reseal {
    session_id: [u8; 16],
    token_seq: u64,
    expiry_unix_secs: u64,
    nonce_seed: u64,
}

#[derive(Arbitrary, Debug)]
struct Mutated {
    mutations: Vec<Mutation>,
    reseal: Option<Reseal>,
    fix_mac1: bool,
    record: Record,
}

fn reseal(frame: &mut [u8], r: &Reseal) {
    if frame.len() < REATTACH_TOKEN_AT + TOKEN_LEN {
        return;
    }
    let claims = TokenClaims {
        session_id: SessionId(r.session_id),
        token_seq: r.token_seq,
        expiry_unix_secs: r.expiry_unix_secs,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(r.nonce_seed);
    let token = seal_token(&keys().token_key, &claims, &mut rng);
    frame[REATTACH_TOKEN_AT..REATTACH_TOKEN_AT + TOKEN_LEN].copy_from_slice(&token);
}

/// Runs the four steps; returns whether `read_init` accepted.
fn run(frame: &[u8], record: Record) -> bool {
    let k = keys();
    let other_token_key = TokenKey::from_bytes([0x11; 32]);
    let token_key = if record == Record::OtherTokenKey {
        &other_token_key
    } else {
        &k.token_key
    };
    let client_static: PublicKey = if record == Record::OtherDevice {
        k.other_client.public_key()
    } else {
        k.client.public_key()
    };
    let psk = match record {
        Record::WrongPskEpoch => resumption_psk(&k.resumption, &k.session_id, 1),
        Record::ZeroPsk => Psk::zero(),
        _ => reattach_psk(),
    };
    let other_prologue = prologue(b"wss");
    let prologue_base = if record == Record::OtherPrologue {
        other_prologue.as_slice()
    } else {
        the_prologue()
    };

    let mut responder = ReattachResponder::new(k.server.clone());
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let no_dh =
        |r: &ReattachResponder| assert_eq!(r.counters().dh_started, 0, "DH before PoP gate");

    let Ok(view) = responder.parse(frame) else {
        no_dh(&responder);
        return false;
    };
    assert_eq!(
        view.ephemeral()[..],
        frame[REATTACH_EPHEMERAL_AT..REATTACH_EPHEMERAL_AT + 32]
    );
    let Ok(mac) = responder.verify_mac1(&view) else {
        no_dh(&responder);
        return false;
    };
    let verified = match responder.open_token(token_key, &mac) {
        Ok(v) => v,
        Err(_) => {
            no_dh(&responder);
            return false;
        }
    };
    let result = responder.read_init(&verified, &client_static, &psk, prologue_base, &mut rng);
    assert_eq!(responder.counters().dh_started, 1);
    match result {
        Ok(incoming) => {
            assert_eq!(incoming.peer_static, client_static);
            assert_eq!(incoming.payload.session_id, incoming.claims.session_id);
            assert!(incoming.token_matches(&incoming.claims));
            true
        }
        Err(
            ReattachError::AuthenticationFailed
            | ReattachError::NonContributory
            | ReattachError::UnexpectedStatic
            | ReattachError::SessionMismatch
            | ReattachError::Malformed(_),
        ) => false,
        Err(other) => panic!("unexpected read_init error {other:?}"),
    }
}

/// Byte for byte the honest frame, except MAC2 (its last 16 bytes): the endpoint checks MAC2
/// only under load (`jvpn_wire::cookie`); the wire responder never reads it.
fn is_honest_but_for_mac2(frame: &[u8], seed: &[u8]) -> bool {
    let mac2_at = seed.len() - 16;
    frame.len() == seed.len() && frame[..mac2_at] == seed[..mac2_at]
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let seed = &reattach_seeds().init;
    let server = keys().server.public_key();
    if mode < 2 {
        let mut bytes = rest[..rest.len().min(1024)].to_vec();
        if mode == 1 {
            fix_mac1(&mut bytes, &server);
        }
        let accepted = run(&bytes, Record::Honest);
        assert!(
            !accepted || is_honest_but_for_mac2(&bytes, seed),
            "accepted a REATTACH_INIT never sent"
        );
        return;
    }
    let Ok(input) = Mutated::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let mut frame = seed.clone();
    apply_all(&mut frame, &input.mutations, REATTACH_EPHEMERAL_AT, 16);
    if let Some(r) = &input.reseal {
        reseal(&mut frame, r);
    }
    if input.fix_mac1 {
        fix_mac1(&mut frame, &server);
    }
    let accepted = run(&frame, input.record);
    if accepted {
        assert_eq!(
            input.record,
            Record::Honest,
            "accepted under the wrong record"
        );
        assert!(
            is_honest_but_for_mac2(&frame, seed),
            "a mutated REATTACH_INIT was accepted: {frame:02x?}"
        );
    } else if frame == *seed && input.record == Record::Honest {
        panic!("the honest REATTACH_INIT was refused: the fixture is broken");
    }
});
