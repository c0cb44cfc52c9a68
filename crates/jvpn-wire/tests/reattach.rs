//! Authenticated REATTACH: what the wire layer guarantees (ATTACKS.md S1, S7–S11, S20, S30c).

use std::collections::HashSet;

use jvpn_wire::frame::{
    COOKIE_REPLY_LEN, REATTACH_INIT_PROLOGUE_LEN, REATTACH_RESP_MAX_LEN, REATTACH_RESP_MIN_LEN,
};
use jvpn_wire::kdf::{mac1, mac1_key};
use jvpn_wire::{
    DataKeys, IncomingReattach, InitPayload, InitiatorHandshake, MessageType, Psk,
    REATTACH_INIT_LEN, ReattachError, ReattachInitPayload, ReattachInitiator, ReattachRespPayload,
    ReattachResponder, ReattachStatus, RespPayload, Responder, ResumptionSecret, SessionId,
    StaticSecret, TOKEN_LEN, TokenClaims, TokenError, TokenKey, prologue, resumption_psk,
    seal_token,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const EXPIRY: u64 = 1_900_000_000;
const SERVER_INDEX: u32 = 0x2222_2222;
const MAC1_AT: usize = REATTACH_INIT_LEN - 32;

/// One session (device key, session id, resumption secret) and one server with a token key.
struct World {
    rng: ChaCha20Rng,
    client: StaticSecret,
    server: StaticSecret,
    token_key: TokenKey,
    rs: ResumptionSecret,
    sid: SessionId,
    prologue: Vec<u8>,
    rc: u64,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        Self {
            client: StaticSecret::generate(&mut rng),
            server: StaticSecret::generate(&mut rng),
            token_key: TokenKey::generate(&mut rng),
            rs: ResumptionSecret::generate(&mut rng),
            sid: SessionId::random(&mut rng),
            prologue: prologue(b"udp,quic,wss"),
            rc: 0,
            rng,
        }
    }

    fn psk(&self) -> Psk {
        resumption_psk(&self.rs, &self.sid, 0)
    }

    fn token_for(&mut self, session_id: SessionId) -> [u8; TOKEN_LEN] {
        let claims = TokenClaims {
            session_id,
            token_seq: self.rc,
            expiry_unix_secs: EXPIRY,
        };
        seal_token(&self.token_key, &claims, &mut self.rng)
    }

    fn payload(&mut self) -> ReattachInitPayload {
        self.rc += 1;
        ReattachInitPayload {
            session_id: self.sid,
            rc: self.rc,
            client_unix_nanos: 1_700_000_000_000_000_000 + self.rc,
            last_epoch_seen: 4,
            last_rx_counter: 1234,
            transport_kind: 2,
            path_id: 9,
        }
    }

    /// A REATTACH_INIT from `client` keyed with `psk`, carrying `token` and `payload`.
    fn msg1_with(
        &mut self,
        client: &StaticSecret,
        psk: &Psk,
        token: &[u8; TOKEN_LEN],
        payload: &ReattachInitPayload,
    ) -> (ReattachInitiator, Vec<u8>) {
        let server = self.server.public_key();
        let mut init = ReattachInitiator::new(client, &server, psk, &self.prologue, &mut self.rng);
        let mut frame = vec![0u8; REATTACH_INIT_LEN];
        let sender_idx = self.rng.next_u32();
        let len = init
            .write_init(sender_idx, token, payload, &mut frame)
            .unwrap();
        assert_eq!(len, REATTACH_INIT_LEN);
        (init, frame)
    }

    /// An honest REATTACH_INIT for this world's session.
    fn msg1(&mut self) -> (ReattachInitiator, Vec<u8>) {
        let (client, psk) = (self.client.clone(), self.psk());
        let token = self.token_for(self.sid);
        let payload = self.payload();
        self.msg1_with(&client, &psk, &token, &payload)
    }

    /// The server's steps a–f, with the record lookup resolving to this world's session.
    fn accept(
        &mut self,
        responder: &mut ReattachResponder,
        frame: &[u8],
    ) -> Result<IncomingReattach, ReattachError> {
        let view = responder.parse(frame)?;
        let checked = responder.verify_mac1(&view)?;
        let verified = responder.open_token(&self.token_key, &checked)?;
        assert_eq!(verified.claims().session_id, self.sid, "record lookup");
        let (client_static, psk) = (self.client.public_key(), self.psk());
        responder.read_init(
            &verified,
            &client_static,
            &psk,
            &self.prologue,
            &mut self.rng,
        )
    }

    fn resp_payload(&mut self, status: ReattachStatus) -> ReattachRespPayload {
        let sid = self.sid;
        ReattachRespPayload {
            status,
            epoch: 5,
            tokens: [(); 4].map(|()| self.token_for(sid)),
            next_resumption_secret: ResumptionSecret::generate(&mut self.rng),
            path_challenge: [0x5c; 16],
            server_unix_nanos: 1_700_000_000_500_000_000,
            recovery_deadline_unix_ms: 1_700_000_120_000,
            reset_token: None,
        }
    }

    /// A full honest reattach: both sides' keys, the response frame and both payloads.
    fn reattach(&mut self) -> Reattached {
        let mut responder = ReattachResponder::new(self.server.clone());
        let (initiator, msg1) = self.msg1();
        let incoming = self.accept(&mut responder, &msg1).unwrap();
        let init_payload = incoming.payload;
        let resp_payload = self.resp_payload(ReattachStatus::Ok);
        let mut msg2 = vec![0u8; REATTACH_RESP_MAX_LEN];
        let (len, server_keys) = incoming
            .write_resp(SERVER_INDEX, &resp_payload, &mut msg2)
            .unwrap();
        msg2.truncate(len);
        let done = initiator.read_resp(&msg2).unwrap();
        Reattached {
            msg1,
            msg2,
            client_keys: done.keys,
            server_keys,
            sent: (init_payload, resp_payload),
            received: done.payload,
            peer_index: done.peer_index,
        }
    }
}

struct Reattached {
    msg1: Vec<u8>,
    msg2: Vec<u8>,
    client_keys: DataKeys,
    server_keys: DataKeys,
    sent: (ReattachInitPayload, ReattachRespPayload),
    received: ReattachRespPayload,
    peer_index: u32,
}

/// Seals `msg` with `from` and tries to open it with `to`.
fn transfer(from: &mut DataKeys, to: &mut DataKeys, msg: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; msg.len() + jvpn_wire::DATA_OVERHEAD];
    buf[jvpn_wire::DATA_HEADER_LEN..][..msg.len()].copy_from_slice(msg);
    let len = from
        .send
        .seal(MessageType::Data, &mut buf, msg.len())
        .unwrap();
    let (_, range) = to.recv.open(&mut buf[..len]).ok()?;
    Some(buf[range].to_vec())
}

fn set_mac1(frame: &mut [u8], receiver: &StaticSecret) {
    let mac = mac1(&mac1_key(&receiver.public_key()), &frame[..MAC1_AT]);
    frame[MAC1_AT..MAC1_AT + 16].copy_from_slice(&mac);
}

// --- the honest path -----------------------------------------------------------------------

#[test]
fn a_full_reattach_gives_both_sides_matching_keys_and_intact_payloads() {
    let mut world = World::new(1);

    let mut r = world.reattach();

    assert_eq!(r.peer_index, SERVER_INDEX);
    assert_eq!(r.received, r.sent.1);
    assert_eq!(r.sent.0.session_id, world.sid);
    assert_eq!(r.sent.0.rc, 1);
    assert_eq!(
        transfer(&mut r.client_keys, &mut r.server_keys, b"up").as_deref(),
        Some(&b"up"[..])
    );
    assert_eq!(
        transfer(&mut r.server_keys, &mut r.client_keys, b"down").as_deref(),
        Some(&b"down"[..])
    );
}

#[test]
fn each_attachment_gets_keys_no_earlier_attachment_had() {
    let mut world = World::new(2);
    let birth = first_attach(&mut world);
    let first = world.reattach();
    let second = world.reattach();
    // Every client key addresses SERVER_INDEX, so only the key can tell attachments apart.
    let mut pairs = vec![
        birth,
        (first.client_keys, first.server_keys),
        (second.client_keys, second.server_keys),
    ];

    let opens = cross_open(&mut pairs);

    assert_eq!(
        opens,
        [
            [true, false, false],
            [false, true, false],
            [false, false, true]
        ]
    );
}

/// A first-attach handshake of the same device with the same server index.
fn first_attach(world: &mut World) -> (DataKeys, DataKeys) {
    let (client, server) = (world.client.clone(), world.server.clone());
    let mut birth = InitiatorHandshake::new(
        &client,
        &server.public_key(),
        &Psk::zero(),
        &world.prologue,
        &mut world.rng,
    )
    .unwrap();
    let mut buf = [0u8; 512];
    let plen = InitPayload {
        unix_nanos: 1,
        resume: None,
    }
    .emit(&mut buf)
    .unwrap();
    let mut msg1 = vec![0u8; 512];
    let len = birth.write_init(7, &buf[..plen], &mut msg1).unwrap();
    let incoming = Responder::new(server)
        .read_init(&msg1[..len], &world.prologue, &mut buf, &mut world.rng)
        .unwrap();
    let plen = RespPayload {
        session_id: world.sid,
        epoch: 1,
        server_unix_nanos: 1,
    }
    .emit(&mut buf)
    .unwrap();
    let mut msg2 = vec![0u8; 512];
    let (len, server_keys) = incoming
        .write_resp(&Psk::zero(), SERVER_INDEX, &buf[..plen], &mut msg2)
        .unwrap();
    let client_keys = birth.read_resp(&msg2[..len], &mut buf).unwrap().keys;
    (client_keys, server_keys)
}

/// `[i][j]`: whether a frame sealed by client `i` opens under server `j`.
fn cross_open(pairs: &mut [(DataKeys, DataKeys)]) -> [[bool; 3]; 3] {
    let mut frames = Vec::new();
    for (client, _) in pairs.iter_mut() {
        let mut buf = vec![0u8; 5 + jvpn_wire::DATA_OVERHEAD];
        buf[jvpn_wire::DATA_HEADER_LEN..][..5].copy_from_slice(b"hello");
        let len = client.send.seal(MessageType::Data, &mut buf, 5).unwrap();
        buf.truncate(len);
        frames.push(buf);
    }
    let mut opens = [[false; 3]; 3];
    for (i, frame) in frames.iter().enumerate() {
        for (j, (_, server)) in pairs.iter_mut().enumerate() {
            opens[i][j] = server.recv.open(&mut frame.clone()).is_ok();
        }
    }
    opens
}

#[test]
fn an_authenticated_error_status_reaches_the_client_with_the_server_time() {
    let mut world = World::new(3);
    let mut responder = ReattachResponder::new(world.server.clone());
    let (initiator, msg1) = world.msg1();
    let incoming = world.accept(&mut responder, &msg1).unwrap();
    let payload = world.resp_payload(ReattachStatus::Clock);
    let mut msg2 = vec![0u8; REATTACH_RESP_MAX_LEN];

    let (len, _) = incoming
        .write_resp(SERVER_INDEX, &payload, &mut msg2)
        .unwrap();
    let done = initiator.read_resp(&msg2[..len]).unwrap();

    assert_eq!(done.payload.status, ReattachStatus::Clock);
    assert_eq!(done.payload.server_unix_nanos, payload.server_unix_nanos);
}

#[test]
fn the_pending_epoch_psk_can_be_tried_after_the_current_one_fails() {
    let mut world = World::new(4);
    let mut responder = ReattachResponder::new(world.server.clone());
    let (client, pending) = (
        world.client.clone(),
        resumption_psk(&world.rs, &world.sid, 1),
    );
    let token = world.token_for(world.sid);
    let payload = world.payload();
    let (_, msg1) = world.msg1_with(&client, &pending, &token, &payload);
    let view = responder.parse(&msg1).unwrap();
    let checked = responder.verify_mac1(&view).unwrap();
    let verified = responder.open_token(&world.token_key, &checked).unwrap();
    let current = world.psk();

    let first = responder.read_init(
        &verified,
        &client.public_key(),
        &current,
        &world.prologue,
        &mut world.rng,
    );
    let second = responder.read_init(
        &verified,
        &client.public_key(),
        &pending,
        &world.prologue,
        &mut world.rng,
    );

    assert_eq!(first.err(), Some(ReattachError::AuthenticationFailed));
    assert_eq!(second.unwrap().payload, payload);
    assert_eq!(responder.counters().dh_started, 2);
}

// --- proof of possession (S7–S10) --------------------------------------------------------------

#[test]
fn a_stolen_device_key_without_the_resumption_secret_cannot_reattach() {
    let mut world = World::new(10);
    let mut responder = ReattachResponder::new(world.server.clone());
    let client = world.client.clone();
    let guessed = resumption_psk(&ResumptionSecret::generate(&mut world.rng), &world.sid, 0);
    let token = world.token_for(world.sid);
    let payload = world.payload();
    let (_, msg1) = world.msg1_with(&client, &guessed, &token, &payload);

    let result = world.accept(&mut responder, &msg1);

    assert_eq!(result.err(), Some(ReattachError::AuthenticationFailed));
    assert_eq!(responder.counters().noise_failed, 1);
}

#[test]
fn a_stolen_resumption_secret_without_the_device_key_cannot_reattach() {
    let mut world = World::new(9);
    let mut responder = ReattachResponder::new(world.server.clone());
    let thief = StaticSecret::generate(&mut world.rng);
    let psk = world.psk();
    let token = world.token_for(world.sid);
    let payload = world.payload();
    let (_, msg1) = world.msg1_with(&thief, &psk, &token, &payload);

    let result = world.accept(&mut responder, &msg1);

    assert_eq!(result.err(), Some(ReattachError::UnexpectedStatic));
    assert_eq!(responder.counters().identity_mismatch, 1);
}

#[test]
fn a_valid_client_presenting_another_sessions_token_is_refused() {
    // The same device holds sessions A (this world's) and B; it reattaches A with B's token.
    let mut world = World::new(8);
    let mut responder = ReattachResponder::new(world.server.clone());
    let sid_b = SessionId::random(&mut world.rng);
    let rs_b = ResumptionSecret::generate(&mut world.rng);
    let client = world.client.clone();
    let token_b = world.token_for(sid_b);
    let payload_a = world.payload();
    // Keyed with A's PSK: the server looks up B's record (from the token) and B's PSK fails.
    let (_, with_psk_a) = world.msg1_with(&client, &world.psk(), &token_b, &payload_a);
    // Keyed with B's PSK: Noise passes, the session ids differ.
    let psk_b = resumption_psk(&rs_b, &sid_b, 0);
    let (_, with_psk_b) = world.msg1_with(&client, &psk_b, &token_b, &payload_a);
    let mut server_side = |frame: &[u8], rng: &mut ChaCha20Rng| {
        let view = responder.parse(frame)?;
        let checked = responder.verify_mac1(&view)?;
        let verified = responder.open_token(&world.token_key, &checked)?;
        assert_eq!(verified.claims().session_id, sid_b);
        responder.read_init(
            &verified,
            &client.public_key(),
            &psk_b,
            &world.prologue,
            rng,
        )
    };

    let a = server_side(&with_psk_a, &mut world.rng.clone());
    let b = server_side(&with_psk_b, &mut world.rng.clone());

    assert_eq!(a.err(), Some(ReattachError::AuthenticationFailed));
    assert_eq!(b.err(), Some(ReattachError::SessionMismatch));
}

#[test]
fn the_token_match_helper_compares_session_ids() {
    let mut world = World::new(7);
    let mut responder = ReattachResponder::new(world.server.clone());
    let (_, msg1) = world.msg1();
    let incoming = world.accept(&mut responder, &msg1).unwrap();
    let mut other = incoming.claims;
    other.session_id = SessionId([0xee; 16]);

    assert!(incoming.token_matches(&incoming.claims));
    assert!(!incoming.token_matches(&other));
}

#[test]
fn any_flipped_bit_of_a_reattach_init_is_dropped_before_any_diffie_hellman() {
    let mut world = World::new(11);
    let mut responder = ReattachResponder::new(world.server.clone());
    let (_, msg1) = world.msg1();

    // MAC2 (the last 16 bytes) is checked by the caller's cookie layer, under load only.
    for at in 0..REATTACH_INIT_LEN - 16 {
        let mut forged = msg1.clone();
        forged[at] ^= 0x01;

        assert!(world.accept(&mut responder, &forged).is_err(), "byte {at}");
    }
    assert_eq!(responder.counters().dh_started, 0);
}

#[test]
fn a_flipped_byte_with_a_recomputed_mac1_still_fails_in_the_token_or_noise() {
    let mut world = World::new(12);
    let mut responder = ReattachResponder::new(world.server.clone());
    let (_, msg1) = world.msg1();
    let server = world.server.clone();

    for at in 4..MAC1_AT {
        let mut forged = msg1.clone();
        forged[at] ^= 0x80;
        set_mac1(&mut forged, &server);

        let result = world.accept(&mut responder, &forged);

        let expected_token_failure = (8..REATTACH_INIT_PROLOGUE_LEN).contains(&at);
        match result {
            Err(ReattachError::Token(TokenError::Invalid)) => assert!(expected_token_failure),
            Err(ReattachError::AuthenticationFailed | ReattachError::NonContributory) => {
                assert!(!expected_token_failure, "byte {at}");
            }
            other => panic!("byte {at}: {other:?}"),
        }
    }
    assert_eq!(responder.counters().mac1_rejected, 0);
    assert_eq!(responder.counters().token_rejected, 72);
}

#[test]
fn any_flipped_byte_of_a_reattach_resp_is_refused_by_the_initiator() {
    let mut world = World::new(13);
    let client = world.client.clone();
    let mut responder = ReattachResponder::new(world.server.clone());
    let (initiator, msg1) = world.msg1();
    let incoming = world.accept(&mut responder, &msg1).unwrap();
    let payload = world.resp_payload(ReattachStatus::Ok);
    let mut msg2 = vec![0u8; REATTACH_RESP_MAX_LEN];
    let (len, _) = incoming
        .write_resp(SERVER_INDEX, &payload, &mut msg2)
        .unwrap();
    msg2.truncate(len);

    for at in 0..len {
        let mut forged = msg2.clone();
        forged[at] ^= 0x01;

        assert!(initiator.check_resp(&forged).is_err(), "byte {at}");
    }
    // With MAC1 recomputed, the Noise part (from `e` on) still fails.
    for at in (12..len - 32).step_by(7) {
        let (initiator, msg1) = world.msg1();
        let incoming = world.accept(&mut responder, &msg1).unwrap();
        let sender = initiator.sender_index();
        let mut resp = vec![0u8; REATTACH_RESP_MAX_LEN];
        let (len, _) = incoming
            .write_resp(SERVER_INDEX, &payload, &mut resp)
            .unwrap();
        resp.truncate(len);
        resp[at] ^= 0x01;
        let mac = mac1(&mac1_key(&client.public_key()), &resp[..len - 32]);
        resp[len - 32..len - 16].copy_from_slice(&mac);

        let result = initiator.read_resp(&resp);

        assert!(
            matches!(
                result,
                Err(ReattachError::AuthenticationFailed | ReattachError::NonContributory)
            ),
            "byte {at} (sender {sender})"
        );
    }
}

#[test]
fn check_resp_drops_a_response_to_another_attempt_without_consuming_this_one() {
    let mut world = World::new(14);
    let mut responder = ReattachResponder::new(world.server.clone());
    let (stale, stale_msg1) = world.msg1();
    let (current, current_msg1) = world.msg1();
    let payload = world.resp_payload(ReattachStatus::Ok);
    let mut stale_resp = vec![0u8; REATTACH_RESP_MAX_LEN];
    let (stale_len, _) = world
        .accept(&mut responder, &stale_msg1)
        .unwrap()
        .write_resp(1, &payload, &mut stale_resp)
        .unwrap();
    let mut resp = vec![0u8; REATTACH_RESP_MAX_LEN];
    let (len, _) = world
        .accept(&mut responder, &current_msg1)
        .unwrap()
        .write_resp(2, &payload, &mut resp)
        .unwrap();

    let refused = current.check_resp(&stale_resp[..stale_len]);
    let done = current.read_resp(&resp[..len]).unwrap();

    assert_eq!(refused, Err(ReattachError::UnexpectedReceiverIndex));
    assert_eq!(done.peer_index, 2);
    drop(stale);
}

// --- DoS gates -----------------------------------------------------------------------------

#[test]
fn junk_with_a_valid_header_fails_mac1_without_any_diffie_hellman() {
    let mut world = World::new(20);
    let mut responder = ReattachResponder::new(world.server.clone());

    for _ in 0..100 {
        let mut junk = vec![0u8; REATTACH_INIT_LEN];
        world.rng.fill_bytes(&mut junk);
        junk[..4].copy_from_slice(&[6, 1, 0, 0]);

        assert_eq!(
            world.accept(&mut responder, &junk).err(),
            Some(ReattachError::Mac1Invalid)
        );
    }
    assert_eq!(responder.counters().mac1_rejected, 100);
    assert_eq!(responder.counters().dh_started, 0);
}

#[test]
fn a_forged_token_or_one_under_a_retired_key_fails_to_open_before_any_diffie_hellman() {
    let mut world = World::new(21);
    let mut responder = ReattachResponder::new(world.server.clone());
    let retired = world.token_key.clone();
    let (_, old_token_msg) = world.msg1();
    world.token_key = TokenKey::generate(&mut world.rng);
    let (client, psk) = (world.client.clone(), world.psk());
    let mut forged_token = [0u8; TOKEN_LEN];
    world.rng.fill_bytes(&mut forged_token);
    let payload = world.payload();
    let (_, forged_msg) = world.msg1_with(&client, &psk, &forged_token, &payload);

    let old = world.accept(&mut responder, &old_token_msg);
    let forged = world.accept(&mut responder, &forged_msg);
    // A node in the rotation overlap still holds the retired key and opens it with that.
    let view = responder.parse(&old_token_msg).unwrap();
    let checked = responder.verify_mac1(&view).unwrap();
    let with_retired = responder.open_token(&retired, &checked);

    assert_eq!(old.err(), Some(ReattachError::Token(TokenError::Invalid)));
    assert_eq!(
        forged.err(),
        Some(ReattachError::Token(TokenError::Invalid))
    );
    assert_eq!(with_retired.unwrap().claims().session_id, world.sid);
    assert_eq!(responder.counters().token_rejected, 2);
    assert_eq!(responder.counters().dh_started, 0);
}

#[test]
fn a_replayed_reattach_init_exposes_the_same_ephemeral_before_any_diffie_hellman() {
    let mut world = World::new(22);
    let mut responder = ReattachResponder::new(world.server.clone());
    let (_, msg1) = world.msg1();
    let (_, other) = world.msg1();

    let original = responder.parse(&msg1).unwrap().ephemeral();
    let replay = msg1.clone();
    let view = responder.parse(&replay).unwrap();
    let replayed = responder.verify_mac1(&view).unwrap().ephemeral();
    let fresh = responder.parse(&other).unwrap().ephemeral();

    assert_eq!(original, replayed);
    assert_ne!(original, fresh);
    assert_eq!(responder.counters().dh_started, 0);
}

#[test]
fn a_low_order_ephemeral_is_rejected_as_non_contributory() {
    let mut world = World::new(23);
    let mut responder = ReattachResponder::new(world.server.clone());
    let (_, msg1) = world.msg1();
    let server = world.server.clone();
    let mut order_two = [0u8; 32];
    order_two[0] = 1;

    for point in [[0u8; 32], order_two] {
        let mut forged = msg1.clone();
        forged[REATTACH_INIT_PROLOGUE_LEN..REATTACH_INIT_PROLOGUE_LEN + 32].copy_from_slice(&point);
        set_mac1(&mut forged, &server);

        assert_eq!(
            world.accept(&mut responder, &forged).err(),
            Some(ReattachError::NonContributory)
        );
    }
    assert_eq!(responder.counters().noise_failed, 2);
}

#[test]
fn a_low_order_server_key_fails_at_write_init() {
    let mut world = World::new(24);
    let client = world.client.clone();
    let token = world.token_for(world.sid);
    let payload = world.payload();
    let low_order = jvpn_wire::PublicKey::from_bytes([0; 32]);
    let mut init = ReattachInitiator::new(
        &client,
        &low_order,
        &world.psk(),
        &world.prologue,
        &mut world.rng,
    );
    let mut frame = vec![0u8; REATTACH_INIT_LEN];

    let result = init.write_init(1, &token, &payload, &mut frame);

    assert_eq!(result, Err(ReattachError::NonContributory));
}

#[test]
fn the_padded_request_is_never_smaller_than_any_response_or_cookie_reply() {
    let mut world = World::new(25);

    let r = world.reattach();

    assert_eq!(r.msg1.len(), REATTACH_INIT_LEN);
    assert_eq!(r.msg2.len(), REATTACH_RESP_MIN_LEN);
    let replies = [r.msg2.len(), REATTACH_RESP_MAX_LEN, COOKIE_REPLY_LEN];
    assert!(replies.iter().all(|&len| len <= r.msg1.len()));
    assert_eq!((REATTACH_INIT_LEN, REATTACH_RESP_MIN_LEN), (576, 453));
}

#[test]
fn every_status_gives_a_response_of_the_same_size() {
    let mut world = World::new(26);
    let mut responder = ReattachResponder::new(world.server.clone());
    let statuses = [
        ReattachStatus::Ok,
        ReattachStatus::Superseded,
        ReattachStatus::Clock,
        ReattachStatus::Expired,
        ReattachStatus::Redirect,
        ReattachStatus::Policy,
        ReattachStatus::StoreUnavailable,
    ];

    for status in statuses {
        let (_, msg1) = world.msg1();
        let incoming = world.accept(&mut responder, &msg1).unwrap();
        let payload = world.resp_payload(status);
        let mut out = vec![0u8; REATTACH_RESP_MAX_LEN];

        let (len, _) = incoming
            .write_resp(SERVER_INDEX, &payload, &mut out)
            .unwrap();

        assert_eq!(len, REATTACH_RESP_MIN_LEN);
    }
}

// --- privacy (S30c) -------------------------------------------------------------------------

#[test]
fn two_reattaches_of_one_session_share_no_eight_byte_string() {
    let mut world = World::new(30);

    let a = world.reattach();
    let b = world.reattach();

    // Header bytes (type, version, flags, reserved) and the all-zero MAC2 slot are the same
    // constants for every client, so they link nothing; every other byte must be fresh.
    let variable = |frame: &[u8]| [&frame[4..frame.len() - 16]].concat();
    for (x, y) in [(&a.msg1, &b.msg1), (&a.msg2, &b.msg2)] {
        let x_windows: HashSet<Vec<u8>> = variable(x).windows(8).map(<[u8]>::to_vec).collect();
        let shared = variable(y)
            .windows(8)
            .filter(|w| x_windows.contains(*w))
            .count();

        assert_eq!(shared, 0);
    }
}

/// ATTACKS.md S30(c) at the catalogue's scale: across 10^4 reattaches of one session (CI,
/// `JVPN_LONG=1`; 10^3 by default, about 18 s of CPU against 2 s), no 8-byte string of any
/// REATTACH_INIT or REATTACH_RESP (outside the fixed header constants and the empty MAC2 slot)
/// appears in a second reattach, so a passive observer on two networks has nothing to link
/// them by.
#[test]
fn many_reattaches_of_one_session_share_no_eight_byte_string() {
    let long = std::env::var("JVPN_LONG").is_ok_and(|v| v == "1");
    let reattaches: u32 = if long { 10_000 } else { 1_000 };
    let mut world = World::new(31);
    let mut first_seen: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    let mut linked = Vec::new();

    for n in 0..reattaches {
        let done = world.reattach();
        for frame in [&done.msg1, &done.msg2] {
            for window in frame[4..frame.len() - 16].windows(8) {
                let key = u64::from_le_bytes(window.try_into().expect("8-byte window"));
                let first = *first_seen.entry(key).or_insert(n);
                if first != n {
                    linked.push((first, n, window.to_vec()));
                }
            }
        }
    }

    assert_eq!(linked, Vec::new());
    // Every window was recorded: about 590 per reattach (455 + 152 bytes, less header and MAC2).
    assert!(
        first_seen.len() > 580 * reattaches as usize,
        "{} windows",
        first_seen.len()
    );
}

// --- misuse ---------------------------------------------------------------------------------

#[test]
fn steps_out_of_order_are_refused() {
    let mut world = World::new(40);
    let (mut initiator, msg1) = world.msg1();
    let token = world.token_for(world.sid);
    let payload = world.payload();
    let client = world.client.clone();
    let fresh = ReattachInitiator::new(
        &client,
        &world.server.public_key(),
        &world.psk(),
        &world.prologue,
        &mut world.rng,
    );

    let twice = initiator.write_init(1, &token, &payload, &mut vec![0u8; REATTACH_INIT_LEN]);
    let early = fresh.check_resp(&msg1);

    assert_eq!(twice, Err(ReattachError::WrongState));
    assert_eq!(early, Err(ReattachError::WrongState));
}

#[test]
fn a_short_output_buffer_reports_the_needed_size() {
    let mut world = World::new(41);
    let client = world.client.clone();
    let token = world.token_for(world.sid);
    let payload = world.payload();
    let mut init = ReattachInitiator::new(
        &client,
        &world.server.public_key(),
        &world.psk(),
        &world.prologue,
        &mut world.rng,
    );

    let result = init.write_init(1, &token, &payload, &mut [0u8; 100]);

    assert_eq!(
        result,
        Err(ReattachError::BufferTooSmall {
            needed: REATTACH_INIT_LEN
        })
    );
}

#[test]
fn a_first_attach_frame_is_not_a_reattach() {
    let mut world = World::new(42);
    let mut responder = ReattachResponder::new(world.server.clone());
    let mut frame = vec![0u8; REATTACH_INIT_LEN];
    frame[..4].copy_from_slice(&[1, 1, 0, 0]);

    let result = world.accept(&mut responder, &frame);

    assert!(matches!(
        result,
        Err(ReattachError::Malformed(
            jvpn_wire::FrameError::UnexpectedType(MessageType::HandshakeInit)
        ))
    ));
    assert_eq!(responder.counters().malformed, 1);
}
