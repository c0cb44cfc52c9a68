//! First-attach handshake: what the wire layer guarantees.

use jvpn_wire::frame::{HANDSHAKE_INIT_MAX_LEN, HANDSHAKE_RESP_MAX_LEN, MAX_HANDSHAKE_PAYLOAD};
use jvpn_wire::{
    DataKeys, HandshakeError, InitPayload, InitiatorHandshake, MessageType, Psk, PublicKey,
    RespPayload, Responder, SessionId, StaticSecret, prologue,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const CLIENT_INDEX: u32 = 0x1111_1111;
const SERVER_INDEX: u32 = 0x2222_2222;

struct World {
    rng: ChaCha20Rng,
    client: StaticSecret,
    server: StaticSecret,
    psk: Psk,
    prologue: Vec<u8>,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let client = StaticSecret::generate(&mut rng);
        let server = StaticSecret::generate(&mut rng);
        let psk = Psk::generate(&mut rng);
        Self {
            rng,
            client,
            server,
            psk,
            prologue: prologue(b"udp"),
        }
    }

    fn initiator(
        &mut self,
        client: &StaticSecret,
        server: &PublicKey,
        psk: &Psk,
    ) -> InitiatorHandshake {
        InitiatorHandshake::new(client, server, psk, &self.prologue, &mut self.rng).unwrap()
    }

    /// HANDSHAKE_INIT with a timestamp payload, from the configured client to the configured server.
    fn msg1(&mut self, unix_nanos: u64) -> (InitiatorHandshake, Vec<u8>) {
        let (client, server, psk) = (
            self.client.clone(),
            self.server.public_key(),
            self.psk.clone(),
        );
        let mut init = self.initiator(&client, &server, &psk);
        let mut payload = [0u8; 64];
        let plen = InitPayload {
            unix_nanos,
            resume: None,
        }
        .emit(&mut payload)
        .unwrap();
        let mut frame = vec![0u8; HANDSHAKE_INIT_MAX_LEN];
        let len = init
            .write_init(CLIENT_INDEX, &payload[..plen], &mut frame)
            .unwrap();
        frame.truncate(len);
        (init, frame)
    }

    /// The server's HANDSHAKE_RESP to `msg1`, with the server's psk.
    fn msg2(&mut self, responder: &mut Responder, msg1: &[u8], psk: &Psk) -> (Vec<u8>, DataKeys) {
        let mut payload = [0u8; MAX_HANDSHAKE_PAYLOAD];
        let incoming = responder
            .read_init(msg1, &self.prologue, &mut payload, &mut self.rng)
            .unwrap();
        let resp = RespPayload {
            session_id: SessionId([7; 16]),
            epoch: 1,
            server_unix_nanos: 99,
        };
        let plen = resp.emit(&mut payload).unwrap();
        let mut frame = vec![0u8; HANDSHAKE_RESP_MAX_LEN];
        let (len, keys) = incoming
            .write_resp(psk, SERVER_INDEX, &payload[..plen], &mut frame)
            .unwrap();
        frame.truncate(len);
        (frame, keys)
    }
}

/// Seals `msg` with `from` and opens it with `to`.
fn transfer(from: &mut DataKeys, to: &mut DataKeys, msg: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; msg.len() + jvpn_wire::DATA_OVERHEAD];
    buf[jvpn_wire::DATA_HEADER_LEN..][..msg.len()].copy_from_slice(msg);
    let len = from
        .send
        .seal(MessageType::Data, &mut buf, msg.len())
        .unwrap();
    let (ty, range) = to.recv.open(&mut buf[..len]).unwrap();
    assert_eq!(ty, MessageType::Data);
    buf[range].to_vec()
}

#[test]
fn mutual_authentication_completes_and_both_sides_derive_matching_keys() {
    let mut world = World::new(1);
    let mut responder = Responder::new(world.server.clone());
    let (initiator, msg1) = world.msg1(1_000);
    let mut payload = [0u8; MAX_HANDSHAKE_PAYLOAD];

    let incoming = responder
        .read_init(&msg1, &world.prologue.clone(), &mut payload, &mut world.rng)
        .unwrap();
    let init_payload = InitPayload::parse(&payload[..incoming.payload_len]).unwrap();
    assert_eq!(incoming.peer_static, world.client.public_key());
    assert_eq!(incoming.peer_index, CLIENT_INDEX);
    let mut resp_payload = [0u8; 64];
    let plen = RespPayload {
        session_id: SessionId([7; 16]),
        epoch: 3,
        server_unix_nanos: 5,
    }
    .emit(&mut resp_payload)
    .unwrap();
    let mut msg2 = vec![0u8; HANDSHAKE_RESP_MAX_LEN];
    let (len, mut server_keys) = incoming
        .write_resp(&world.psk, SERVER_INDEX, &resp_payload[..plen], &mut msg2)
        .unwrap();
    let done = initiator.read_resp(&msg2[..len], &mut payload).unwrap();
    let mut client_keys = done.keys;

    assert_eq!(
        init_payload,
        InitPayload {
            unix_nanos: 1_000,
            resume: None
        }
    );
    assert_eq!(done.peer_index, SERVER_INDEX);
    assert_eq!(
        RespPayload::parse(&payload[..done.payload_len])
            .unwrap()
            .epoch,
        3
    );
    assert_eq!(client_keys.send.remote_index(), SERVER_INDEX);
    assert_eq!(server_keys.send.remote_index(), CLIENT_INDEX);
    assert_eq!(
        transfer(&mut client_keys, &mut server_keys, b"ping"),
        b"ping"
    );
    assert_eq!(
        transfer(&mut server_keys, &mut client_keys, b"pong"),
        b"pong"
    );
    assert_eq!(responder.counters().dh_started, 1);
}

#[test]
fn two_handshakes_derive_different_keys() {
    let mut world = World::new(2);
    let mut responder = Responder::new(world.server.clone());
    let psk = world.psk.clone();
    let (init_a, msg1_a) = world.msg1(1);
    let (msg2_a, mut server_a) = world.msg2(&mut responder, &msg1_a, &psk);
    let (_, msg1_b) = world.msg1(2);
    let (_, mut server_b) = world.msg2(&mut responder, &msg1_b, &psk);
    let mut client_a = init_a.read_resp(&msg2_a, &mut [0u8; 64]).unwrap().keys;

    let mut buf = [0u8; 64];
    buf[16..20].copy_from_slice(b"data");
    let len = client_a.send.seal(MessageType::Data, &mut buf, 4).unwrap();
    let mut copy = buf;

    assert!(server_b.recv.open(&mut copy[..len]).is_err());
    assert!(server_a.recv.open(&mut buf[..len]).is_ok());
    assert_ne!(msg1_a, msg1_b);
}

#[test]
fn a_wrong_server_public_key_fails_at_the_responders_mac1_without_dh() {
    let mut world = World::new(3);
    let mut responder = Responder::new(world.server.clone());
    let imposter = StaticSecret::generate(&mut world.rng).public_key();
    let (client, psk) = (world.client.clone(), world.psk.clone());
    let mut init = world.initiator(&client, &imposter, &psk);
    let mut frame = [0u8; 512];
    let len = init.write_init(CLIENT_INDEX, b"", &mut frame).unwrap();

    let result = responder.read_init(
        &frame[..len],
        &world.prologue.clone(),
        &mut [0u8; 64],
        &mut world.rng,
    );

    assert_eq!(result.err(), Some(HandshakeError::Mac1Invalid));
    assert_eq!(responder.counters().mac1_rejected, 1);
    assert_eq!(responder.counters().dh_started, 0);
}

#[test]
fn an_unknown_client_key_is_reported_as_a_different_peer_static() {
    let mut world = World::new(4);
    let mut responder = Responder::new(world.server.clone());
    let stranger = StaticSecret::generate(&mut world.rng);
    let (server, psk) = (world.server.public_key(), world.psk.clone());
    let mut init = world.initiator(&stranger, &server, &psk);
    let mut frame = [0u8; 512];
    let len = init.write_init(CLIENT_INDEX, b"", &mut frame).unwrap();

    let incoming = responder
        .read_init(
            &frame[..len],
            &world.prologue.clone(),
            &mut [0u8; 64],
            &mut world.rng,
        )
        .unwrap();

    // The session layer rejects peers it does not know; the wire layer reports who it is.
    assert_eq!(incoming.peer_static, stranger.public_key());
    assert_ne!(incoming.peer_static, world.client.public_key());
}

#[test]
fn a_psk_mismatch_fails_at_read_resp() {
    let mut world = World::new(5);
    let mut responder = Responder::new(world.server.clone());
    let (initiator, msg1) = world.msg1(1);
    let other_psk = Psk::generate(&mut world.rng);
    let (msg2, _) = world.msg2(&mut responder, &msg1, &other_psk);

    let result = initiator.read_resp(&msg2, &mut [0u8; 64]);

    assert_eq!(result.err(), Some(HandshakeError::AuthenticationFailed));
}

#[test]
fn a_prologue_mismatch_fails_inside_noise() {
    let mut world = World::new(6);
    let mut responder = Responder::new(world.server.clone());
    let (_, msg1) = world.msg1(1);

    let result = responder.read_init(&msg1, &prologue(b"quic"), &mut [0u8; 64], &mut world.rng);

    assert_eq!(result.err(), Some(HandshakeError::AuthenticationFailed));
    assert_eq!(responder.counters().noise_failed, 1);
}

#[test]
fn every_single_flipped_byte_of_msg1_fails() {
    let mut world = World::new(7);
    let (_, msg1) = world.msg1(1);
    let prologue = world.prologue.clone();
    let mut responder = Responder::new(world.server.clone());
    // MAC2 (the last 16 bytes) is checked by the caller's cookie layer, under load only.
    for at in 0..msg1.len() - 16 {
        let mut tampered = msg1.clone();
        tampered[at] ^= 0x01;

        let result = responder.read_init(&tampered, &prologue, &mut [0u8; 64], &mut world.rng);

        assert!(result.is_err(), "flipping byte {at} was accepted");
    }
    // MAC1 covers every byte before it: no flip reaches Noise.
    assert_eq!(responder.counters().dh_started, 0);
}

#[test]
fn every_single_flipped_byte_of_msg2_fails() {
    let mut world = World::new(8);
    let mut responder = Responder::new(world.server.clone());
    let psk = world.psk.clone();
    let checked_len;
    let mut failures = 0;
    {
        let (_, msg1) = world.msg1(1);
        let (msg2, _) = world.msg2(&mut responder, &msg1, &psk);
        checked_len = msg2.len();
    }

    for at in 0..checked_len {
        let (initiator, msg1) = world.msg1(1);
        let (mut msg2, _) = world.msg2(&mut responder, &msg1, &psk);
        msg2[at] ^= 0x80;

        let result = initiator.read_resp(&msg2, &mut [0u8; 64]);

        assert!(result.is_err(), "flipping byte {at} was accepted");
        failures += 1;
    }
    assert_eq!(failures, checked_len);
}

#[test]
fn junk_failing_mac1_is_counted_and_costs_no_dh() {
    let mut world = World::new(9);
    let mut responder = Responder::new(world.server.clone());
    let mut junk = vec![0u8; 200];
    junk[..4].copy_from_slice(&[1, 1, 0, 0]);
    for (i, byte) in junk.iter_mut().enumerate().skip(4) {
        *byte = i as u8;
    }

    for _ in 0..10 {
        let result = responder.read_init(
            &junk,
            &world.prologue.clone(),
            &mut [0u8; 128],
            &mut world.rng,
        );
        assert_eq!(result.err(), Some(HandshakeError::Mac1Invalid));
    }
    let garbage = responder.read_init(
        &[0xff; 3],
        &world.prologue.clone(),
        &mut [0u8; 128],
        &mut world.rng,
    );

    assert!(matches!(garbage, Err(HandshakeError::Malformed(_))));
    assert_eq!(responder.counters().mac1_rejected, 10);
    assert_eq!(responder.counters().malformed, 1);
    assert_eq!(responder.counters().dh_started, 0);
}

#[test]
fn a_replayed_msg1_decrypts_to_the_identical_timestamp_for_the_session_layer_to_reject() {
    let mut world = World::new(10);
    let mut responder = Responder::new(world.server.clone());
    let (_, msg1) = world.msg1(123_456_789);
    let prologue = world.prologue.clone();
    let mut first = [0u8; 64];
    let mut replay = [0u8; 64];

    let a = responder
        .read_init(&msg1, &prologue, &mut first, &mut world.rng)
        .unwrap();
    let b = responder
        .read_init(&msg1, &prologue, &mut replay, &mut world.rng)
        .unwrap();

    // The wire layer cannot tell a replay from the original; the timestamp lets the session layer.
    assert_eq!(a.peer_static, b.peer_static);
    assert_eq!(
        InitPayload::parse(&first[..a.payload_len])
            .unwrap()
            .unix_nanos,
        InitPayload::parse(&replay[..b.payload_len])
            .unwrap()
            .unix_nanos
    );
}

#[test]
fn two_responses_to_one_init_differ_and_the_client_completes_with_either() {
    let mut world = World::new(11);
    let mut responder = Responder::new(world.server.clone());
    let psk = world.psk.clone();
    let (initiator, msg1) = world.msg1(1);
    // A second, replayed copy of msg1 gets its own response with a fresh responder ephemeral.
    let (msg2_for_replay, _) = world.msg2(&mut responder, &msg1, &psk);
    let (msg2, _) = world.msg2(&mut responder, &msg1, &psk);

    // The client completes with one of them (both are genuine server answers to its own init).
    assert!(initiator.read_resp(&msg2, &mut [0u8; 64]).is_ok());
    assert_ne!(msg2, msg2_for_replay);
}

#[test]
fn a_response_to_another_handshake_is_refused_by_check_resp() {
    let mut world = World::new(12);
    let mut responder = Responder::new(world.server.clone());
    let psk = world.psk.clone();
    let (initiator, msg1) = world.msg1(1);
    let (mut msg2, _) = world.msg2(&mut responder, &msg1, &psk);
    msg2[8..12].copy_from_slice(&0xdead_beef_u32.to_be_bytes());

    // MAC1 now fails first: the receiver index is covered by MAC1.
    assert_eq!(
        initiator.check_resp(&msg2),
        Err(HandshakeError::Mac1Invalid)
    );
}

#[test]
fn write_init_twice_and_read_resp_before_write_init_are_refused() {
    let mut world = World::new(13);
    let (client, server, psk) = (
        world.client.clone(),
        world.server.public_key(),
        world.psk.clone(),
    );
    let mut init = world.initiator(&client, &server, &psk);
    let fresh = world.initiator(&client, &server, &psk);
    let mut frame = [0u8; 512];
    init.write_init(1, b"", &mut frame).unwrap();

    assert_eq!(
        init.write_init(1, b"", &mut frame),
        Err(HandshakeError::WrongState)
    );
    assert_eq!(
        fresh.read_resp(&[0u8; 100], &mut []).err(),
        Some(HandshakeError::WrongState)
    );
    assert_eq!(init.sender_index(), 1);
}

#[test]
fn oversized_payloads_and_small_buffers_are_reported() {
    let mut world = World::new(14);
    let (client, server, psk) = (
        world.client.clone(),
        world.server.public_key(),
        world.psk.clone(),
    );
    let mut init = world.initiator(&client, &server, &psk);
    let big = vec![0u8; MAX_HANDSHAKE_PAYLOAD + 1];

    assert_eq!(
        init.write_init(1, &big, &mut vec![0u8; 4096]),
        Err(HandshakeError::PayloadTooLarge {
            len: MAX_HANDSHAKE_PAYLOAD + 1,
            max: MAX_HANDSHAKE_PAYLOAD
        })
    );
    assert_eq!(
        init.write_init(1, b"abc", &mut [0u8; 100]),
        Err(HandshakeError::BufferTooSmall { needed: 139 })
    );
}

#[test]
fn a_low_order_server_key_is_refused_when_writing_the_init() {
    let mut world = World::new(15);
    let (client, psk) = (world.client.clone(), world.psk.clone());
    let low_order = PublicKey::from_bytes([0; 32]);
    let mut init = world.initiator(&client, &low_order, &psk);

    let result = init.write_init(1, b"", &mut [0u8; 512]);

    assert_eq!(result, Err(HandshakeError::NonContributory));
}

#[test]
fn handshakes_are_deterministic_under_a_seeded_rng() {
    let (_, a) = World::new(16).msg1(1);
    let (_, b) = World::new(16).msg1(1);

    assert_eq!(a, b);
}

/// Recomputes MAC1 (anyone who knows the receiver's public key can) after tampering.
fn remac(frame: &mut [u8], receiver: &PublicKey) {
    let at = frame.len() - 32;
    let mac = jvpn_wire::kdf::mac1(&jvpn_wire::kdf::mac1_key(receiver), &frame[..at]);
    frame[at..at + 16].copy_from_slice(&mac);
}

#[test]
fn every_flipped_noise_byte_of_msg1_fails_in_noise_even_with_a_recomputed_mac1() {
    let mut world = World::new(17);
    let (_, msg1) = world.msg1(1);
    let prologue = world.prologue.clone();
    let server_public = world.server.public_key();
    let mut responder = Responder::new(world.server.clone());
    let noise = 8..msg1.len() - 32;

    for at in noise.clone() {
        let mut tampered = msg1.clone();
        tampered[at] ^= 0x01;
        remac(&mut tampered, &server_public);

        let result = responder.read_init(&tampered, &prologue, &mut [0u8; 64], &mut world.rng);

        assert!(result.is_err(), "flipping byte {at} was accepted");
    }
    assert_eq!(responder.counters().noise_failed, noise.len() as u64);
}

#[test]
fn every_flipped_noise_byte_of_msg2_fails_in_noise_even_with_a_recomputed_mac1() {
    let mut world = World::new(18);
    let mut responder = Responder::new(world.server.clone());
    let psk = world.psk.clone();
    let client_public = world.client.public_key();

    for at in 12..HANDSHAKE_RESP_MAX_LEN {
        let (initiator, msg1) = world.msg1(1);
        let (mut msg2, _) = world.msg2(&mut responder, &msg1, &psk);
        if at >= msg2.len() - 32 {
            break;
        }
        msg2[at] ^= 0x01;
        remac(&mut msg2, &client_public);

        let result = initiator.read_resp(&msg2, &mut [0u8; 64]);

        assert_eq!(
            result.err(),
            Some(HandshakeError::AuthenticationFailed),
            "byte {at}"
        );
    }
}

#[test]
fn indices_are_covered_by_mac1_only_so_a_rewrite_misroutes_but_yields_no_keys() {
    // Like WireGuard, indices sit outside the Noise transcript. An attacker who rewrites the
    // sender index (and recomputes MAC1) makes the responder answer another index, which the
    // initiator refuses: a denial of service no worse than dropping the packet.
    let mut world = World::new(19);
    let mut responder = Responder::new(world.server.clone());
    let psk = world.psk.clone();
    let server_public = world.server.public_key();
    let (initiator, mut msg1) = world.msg1(1);
    msg1[4..8].copy_from_slice(&0x0bad_0bad_u32.to_be_bytes());
    remac(&mut msg1, &server_public);

    let (msg2, _) = world.msg2(&mut responder, &msg1, &psk);
    let result = initiator.read_resp(&msg2, &mut [0u8; 64]);

    assert_eq!(result.err(), Some(HandshakeError::UnexpectedReceiverIndex));
}

#[test]
fn a_low_order_ephemeral_in_msg1_is_rejected_as_non_contributory() {
    let mut world = World::new(20);
    let mut responder = Responder::new(world.server.clone());
    let server_public = world.server.public_key();
    let (_, mut msg1) = world.msg1(1);
    msg1[8..40].fill(0);
    remac(&mut msg1, &server_public);

    let result = responder.read_init(
        &msg1,
        &world.prologue.clone(),
        &mut [0u8; 64],
        &mut world.rng,
    );

    assert_eq!(result.err(), Some(HandshakeError::NonContributory));
    assert_eq!(responder.counters().noise_failed, 1);
}

#[test]
fn a_response_with_standard_payloads_is_smaller_than_the_initiation() {
    let mut world = World::new(21);
    let mut responder = Responder::new(world.server.clone());
    let psk = world.psk.clone();
    let (_, msg1) = world.msg1(1);

    let (msg2, _) = world.msg2(&mut responder, &msg1, &psk);

    assert_eq!((msg1.len(), msg2.len()), (161, 124));
}
