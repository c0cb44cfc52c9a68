//! Property tests for the reattach wire layer: no step panics on any input (S24), mutated frames
//! are never accepted (S7), and encodings round-trip byte-identically.

use jvpn_wire::frame::{REATTACH_RESP_MAX_LEN, ReattachInitPacket, ReattachRespPacket};
use jvpn_wire::kdf::{mac1, mac1_key};
use jvpn_wire::{
    ControlMessage, Psk, REATTACH_INIT_LEN, ReattachInitPayload, ReattachInitiator,
    ReattachRespPayload, ReattachResponder, ReattachStatus, ResumptionSecret, SessionId,
    StaticSecret, TOKEN_LEN, TokenClaims, TokenKey, open_token, prologue, resumption_psk,
    seal_token,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Fixture {
    rng: ChaCha20Rng,
    client: StaticSecret,
    server: StaticSecret,
    token_key: TokenKey,
    psk: Psk,
    sid: SessionId,
    prologue: Vec<u8>,
}

fn fixture(seed: u64) -> Fixture {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let sid = SessionId::random(&mut rng);
    let rs = ResumptionSecret::generate(&mut rng);
    Fixture {
        client: StaticSecret::generate(&mut rng),
        server: StaticSecret::generate(&mut rng),
        token_key: TokenKey::generate(&mut rng),
        psk: resumption_psk(&rs, &sid, 0),
        sid,
        prologue: prologue(b"udp"),
        rng,
    }
}

fn init_payload(sid: SessionId) -> ReattachInitPayload {
    ReattachInitPayload {
        session_id: sid,
        rc: 1,
        client_unix_nanos: 2,
        last_epoch_seen: 3,
        last_rx_counter: 4,
        transport_kind: 1,
        path_id: 5,
    }
}

/// An honest REATTACH_INIT and the initiator waiting for its answer.
fn honest_init(f: &mut Fixture) -> (ReattachInitiator, Vec<u8>) {
    let claims = TokenClaims {
        session_id: f.sid,
        token_seq: 1,
        expiry_unix_secs: u64::MAX,
    };
    let token = seal_token(&f.token_key, &claims, &mut f.rng);
    let mut init = ReattachInitiator::new(
        &f.client,
        &f.server.public_key(),
        &f.psk,
        &f.prologue,
        &mut f.rng,
    );
    let mut frame = vec![0u8; REATTACH_INIT_LEN];
    init.write_init(42, &token, &init_payload(f.sid), &mut frame)
        .unwrap();
    (init, frame)
}

/// Runs every responder step on `frame`; true when it was accepted.
fn responder_accepts(f: &mut Fixture, responder: &mut ReattachResponder, frame: &[u8]) -> bool {
    let Ok(view) = responder.parse(frame) else {
        return false;
    };
    let _ = view.ephemeral();
    let Ok(checked) = responder.verify_mac1(&view) else {
        return false;
    };
    let Ok(verified) = responder.open_token(&f.token_key, &checked) else {
        return false;
    };
    let _ = verified.claims().is_expired(0);
    responder
        .read_init(
            &verified,
            &f.client.public_key(),
            &f.psk,
            &f.prologue,
            &mut f.rng,
        )
        .is_ok()
}

fn reattach_frames() -> impl Strategy<Value = Vec<u8>> {
    let body = prop::collection::vec(any::<u8>(), 0..700);
    (5u8..9, any::<bool>(), body).prop_map(|(ty, valid_header, mut bytes)| {
        if valid_header && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&[ty, 1, 0, 0]);
        }
        bytes
    })
}

fn statuses() -> impl Strategy<Value = ReattachStatus> {
    (0u8..7).prop_map(|b| ReattachStatus::from_u8(b).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_any_reattach_step(bytes in reattach_frames()) {
        let mut f = fixture(1);
        let mut responder = ReattachResponder::new(f.server.clone());
        let (initiator, _) = honest_init(&mut f);

        let accepted = responder_accepts(&mut f, &mut responder, &bytes);
        let _ = ReattachInitPacket::new_checked(&bytes[..]).map(|p| (p.token().len(), p.mac2()));
        let _ = ReattachRespPacket::new_checked(&bytes[..]).map(|p| p.payload_len());
        let _ = open_token(&f.token_key, &bytes);
        let _ = ReattachInitPayload::parse(&bytes);
        let _ = ReattachRespPayload::parse(&bytes);
        let _ = ControlMessage::parse(&bytes);
        let _ = initiator.check_resp(&bytes);
        let _ = initiator.read_resp(&bytes);

        prop_assert!(!accepted);
    }

    #[test]
    fn a_mutated_or_truncated_reattach_init_is_never_accepted(
        seed in any::<u64>(),
        // MAC2 (the last 16 bytes) is the caller's cookie check, not the responder's.
        at in 0usize..REATTACH_INIT_LEN - 16,
        xor in 1u8..=255,
        cut in 0usize..REATTACH_INIT_LEN,
        fix_mac1 in any::<bool>(),
    ) {
        let mut f = fixture(seed);
        let mut responder = ReattachResponder::new(f.server.clone());
        let (_, frame) = honest_init(&mut f);
        let mut mutated = frame.clone();
        mutated[at] ^= xor;
        let mac1_at = REATTACH_INIT_LEN - 32;
        // Recomputing MAC1 over a mutated MAC1 would undo the mutation.
        if fix_mac1 && at < mac1_at {
            let mac = mac1(&mac1_key(&f.server.public_key()), &mutated[..mac1_at]);
            mutated[mac1_at..mac1_at + 16].copy_from_slice(&mac);
        }

        let mutated_ok = responder_accepts(&mut f, &mut responder, &mutated);
        let truncated_ok = responder_accepts(&mut f, &mut responder, &frame[..cut]);
        let sender_idx_only = fix_mac1 && (4..8).contains(&at);

        // Rewriting only the sender index still fails: it is bound into the prologue.
        prop_assert!(!mutated_ok, "byte {} (sender index: {})", at, sender_idx_only);
        prop_assert!(!truncated_ok);
    }

    #[test]
    fn reattach_init_payloads_round_trip_byte_identically(
        id in any::<[u8; 16]>(),
        rc in any::<u64>(),
        nanos in any::<u64>(),
        epoch in any::<u64>(),
        counter in any::<u64>(),
        kind in any::<u8>(),
        path in any::<u32>(),
        pad in 0usize..64,
    ) {
        let payload = ReattachInitPayload {
            session_id: SessionId(id),
            rc,
            client_unix_nanos: nanos,
            last_epoch_seen: epoch,
            last_rx_counter: counter,
            transport_kind: kind,
            path_id: path,
        };
        let mut buf = vec![0u8; payload.encoded_len() + pad];

        let len = payload.emit(&mut buf).unwrap();
        let parsed = ReattachInitPayload::parse(&buf).unwrap();
        let mut again = vec![0u8; len];
        parsed.emit(&mut again).unwrap();

        prop_assert_eq!(parsed, payload);
        prop_assert_eq!(&buf[..len], &again[..]);
    }

    #[test]
    fn reattach_resp_payloads_round_trip_byte_identically(
        status in statuses(),
        epoch in any::<u64>(),
        token_bytes in prop::collection::vec(any::<u8>(), 4 * TOKEN_LEN),
        secret in any::<[u8; 32]>(),
        challenge in any::<[u8; 16]>(),
        nanos in any::<u64>(),
        deadline in any::<u64>(),
        reset in prop::option::of(any::<[u8; 16]>()),
    ) {
        let mut tokens = [[0u8; TOKEN_LEN]; 4];
        for (i, token) in tokens.iter_mut().enumerate() {
            token.copy_from_slice(&token_bytes[i * TOKEN_LEN..(i + 1) * TOKEN_LEN]);
        }
        let payload = ReattachRespPayload {
            status,
            epoch,
            tokens,
            next_resumption_secret: ResumptionSecret::from_bytes(secret),
            path_challenge: challenge,
            server_unix_nanos: nanos,
            recovery_deadline_unix_ms: deadline,
            reset_token: reset.map(jvpn_wire::ResetToken::from_bytes),
        };
        let mut buf = vec![0u8; REATTACH_RESP_MAX_LEN];

        let len = payload.emit(&mut buf).unwrap();
        let parsed = ReattachRespPayload::parse(&buf[..len]).unwrap();
        let mut again = vec![0u8; len];
        parsed.emit(&mut again).unwrap();

        prop_assert_eq!(&parsed, &payload);
        prop_assert_eq!(&buf[..len], &again[..]);
    }

    #[test]
    fn path_messages_round_trip_byte_identically(
        response in any::<[u8; 16]>(),
        challenge in any::<[u8; 16]>(),
    ) {
        for msg in [
            ControlMessage::PathConfirm { response, challenge },
            ControlMessage::PathResponse { response },
        ] {
            let mut buf = [0u8; jvpn_wire::control::MAX_CONTROL_LEN];

            let len = msg.emit(&mut buf).unwrap();

            prop_assert_eq!(ControlMessage::parse(&buf[..len]).unwrap(), msg);
        }
    }

    #[test]
    fn token_claims_round_trip_through_seal_and_open(
        id in any::<[u8; 16]>(),
        seq in any::<u64>(),
        expiry in any::<u64>(),
        key in any::<[u8; 32]>(),
        seed in any::<u64>(),
    ) {
        let claims = TokenClaims { session_id: SessionId(id), token_seq: seq, expiry_unix_secs: expiry };
        let key = TokenKey::from_bytes(key);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);

        let token = seal_token(&key, &claims, &mut rng);

        prop_assert_eq!(open_token(&key, &token), Ok(claims));
    }
}
