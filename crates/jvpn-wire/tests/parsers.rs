//! Property tests: no parser panics on any input, and encodings round-trip byte-identically.

use jvpn_wire::frame::{
    CookieReplyPacket, CookieReplyRepr, DataHeader, DataPacket, HandshakeInitPacket,
    HandshakeInitRepr, HandshakeRespPacket, HandshakeRespRepr, NOISE_INIT_OVERHEAD,
    NOISE_RESP_OVERHEAD,
};
use jvpn_wire::{
    ControlMessage, InitPayload, InitiatorHandshake, MAX_HANDSHAKE_PAYLOAD, MessageType, Psk,
    RecvKey, RespPayload, Responder, SessionId, StaticSecret, peek_type, prologue,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Random bytes, often starting with a valid header so the deeper checks are reached.
fn frames() -> impl Strategy<Value = Vec<u8>> {
    let body = prop::collection::vec(any::<u8>(), 0..1400);
    (0u8..8, any::<bool>(), body).prop_map(|(ty, valid_header, mut bytes)| {
        if valid_header && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&[ty, 1, 0, 0]);
        }
        bytes
    })
}

fn run_every_parser(bytes: &[u8]) {
    let _ = peek_type(bytes);
    let _ = HandshakeInitPacket::new_checked(bytes)
        .map(|p| (p.noise_message().len(), p.mac1(), p.mac2(), p.payload_len()));
    let _ = HandshakeRespPacket::new_checked(bytes).map(|p| {
        (
            p.noise_message().len(),
            p.receiver_index(),
            p.mac1(),
            p.payload_len(),
        )
    });
    let _ = CookieReplyPacket::new_checked(bytes).map(|p| (p.nonce().len(), p.receiver_index()));
    let _ = DataPacket::new_checked(bytes).map(|p| {
        (
            p.counter(),
            p.ciphertext().len(),
            p.tag().len(),
            p.message_type(),
        )
    });
    let _ = HandshakeInitRepr::parse(bytes);
    let _ = HandshakeRespRepr::parse(bytes);
    let _ = CookieReplyRepr::parse(bytes);
    let _ = DataHeader::parse(bytes);
    let _ = ControlMessage::parse(bytes);
    let _ = InitPayload::parse(bytes);
    let _ = RespPayload::parse(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_any_parser(bytes in frames()) {
        run_every_parser(&bytes);
        for cut in [0, 1, 3, 4, 15, 16, 31, 32, bytes.len() / 2] {
            run_every_parser(&bytes[..cut.min(bytes.len())]);
        }
    }

    #[test]
    fn random_bytes_never_panic_the_handshake_or_the_data_plane(bytes in frames(), seed in any::<u64>()) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let server = StaticSecret::generate(&mut rng);
        let client = StaticSecret::generate(&mut rng);
        let mut responder = Responder::new(server.clone());
        let prologue = prologue(b"udp");
        let mut out = [0u8; MAX_HANDSHAKE_PAYLOAD];
        let _ = responder.read_init(&bytes, &prologue, &mut out, &mut rng);
        let _ = responder.read_init(&bytes, &prologue, &mut [], &mut rng);

        let mut init = InitiatorHandshake::new(&client, &server.public_key(), &Psk::zero(), &prologue, &mut rng).unwrap();
        init.write_init(1, b"", &mut [0u8; 256]).unwrap();
        let _ = init.check_resp(&bytes);
        let _ = init.read_resp(&bytes, &mut out);

        let mut recv = RecvKey::new(&[3; 32], 0);
        let _ = recv.open(&mut bytes.clone());
        prop_assert_eq!(recv.packets_received(), 0);
    }

    #[test]
    fn truncations_of_a_valid_init_never_panic_and_never_pass(seed in any::<u64>(), cut in 0usize..200) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let server = StaticSecret::generate(&mut rng);
        let client = StaticSecret::generate(&mut rng);
        let mut responder = Responder::new(server.clone());
        let prologue = prologue(b"udp");
        let mut init = InitiatorHandshake::new(&client, &server.public_key(), &Psk::zero(), &prologue, &mut rng).unwrap();
        let mut frame = [0u8; 256];
        let len = init.write_init(7, b"payload", &mut frame).unwrap();
        let cut = cut.min(len - 1);

        let result = responder.read_init(&frame[..cut], &prologue, &mut [0u8; 64], &mut rng);

        prop_assert!(result.is_err());
        prop_assert_eq!(responder.counters().dh_started, 0);
    }

    #[test]
    fn control_messages_round_trip_byte_identically(ty in 0u8..6, seq in any::<u32>(), micros in any::<u64>(), reason in any::<u8>()) {
        let msg = match ty {
            0 => ControlMessage::Keepalive,
            1 => ControlMessage::Close { reason },
            2 => ControlMessage::RekeyRequest,
            3 => ControlMessage::Probe { seq, sent_micros: micros },
            4 => ControlMessage::ProbeAck { seq, echo_micros: micros },
            _ => ControlMessage::ProbeAckOffBinding { seq, echo_micros: micros },
        };
        let mut buf = [0u8; 32];
        let len = msg.emit(&mut buf).unwrap();
        prop_assert_eq!(len, msg.encoded_len());
        let parsed = ControlMessage::parse(&buf[..len]).unwrap();
        let mut again = [0u8; 32];
        prop_assert_eq!(parsed.emit(&mut again).unwrap(), len);
        prop_assert_eq!(parsed, msg);
        prop_assert_eq!(&buf[..len], &again[..len]);
    }

    #[test]
    fn valid_control_bytes_reencode_identically(bytes in prop::collection::vec(any::<u8>(), 0..16)) {
        if let Ok(msg) = ControlMessage::parse(&bytes) {
            let mut out = [0u8; 32];
            let len = msg.emit(&mut out).unwrap();
            prop_assert_eq!(&out[..len], &bytes[..]);
        }
    }

    #[test]
    fn handshake_payloads_round_trip_byte_identically(
        unix_nanos in any::<u64>(), resume in any::<Option<[u8; 16]>>(),
        id in any::<[u8; 16]>(), epoch in any::<u64>(), server_nanos in any::<u64>(),
    ) {
        let init = InitPayload { unix_nanos, resume: resume.map(SessionId) };
        let resp = RespPayload { session_id: SessionId(id), epoch, server_unix_nanos: server_nanos };
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];

        let la = init.emit(&mut a).unwrap();
        let lb = resp.emit(&mut b).unwrap();

        prop_assert_eq!(InitPayload::parse(&a[..la]).unwrap(), init);
        prop_assert_eq!(RespPayload::parse(&b[..lb]).unwrap(), resp);
        let mut again = [0u8; 64];
        prop_assert_eq!(InitPayload::parse(&a[..la]).unwrap().emit(&mut again).unwrap(), la);
        prop_assert_eq!(&again[..la], &a[..la]);
    }

    #[test]
    fn frame_reprs_round_trip_byte_identically(
        sender in any::<u32>(), receiver in any::<u32>(), counter in any::<u64>(),
        extra in 0usize..=MAX_HANDSHAKE_PAYLOAD, fill in any::<u8>(),
        mac1 in any::<[u8; 16]>(), mac2 in any::<[u8; 16]>(), control in any::<bool>(),
    ) {
        let noise1 = vec![fill; NOISE_INIT_OVERHEAD + extra];
        let noise2 = vec![fill; NOISE_RESP_OVERHEAD + extra];
        let init = HandshakeInitRepr { sender_index: sender, noise_message: &noise1, mac1, mac2 };
        let resp = HandshakeRespRepr { sender_index: sender, receiver_index: receiver, noise_message: &noise2, mac1, mac2 };
        let cookie = CookieReplyRepr { receiver_index: receiver, nonce: [fill; 24], encrypted_cookie: [fill ^ 1; 32] };
        let ty = if control { MessageType::Control } else { MessageType::Data };
        let header = DataHeader { ty, receiver_index: receiver, counter };
        let mut buf = vec![0u8; 2048];

        let len = init.emit(&mut buf).unwrap();
        prop_assert_eq!(HandshakeInitRepr::parse(&buf[..len]).unwrap(), init);
        let len = resp.emit(&mut buf).unwrap();
        prop_assert_eq!(HandshakeRespRepr::parse(&buf[..len]).unwrap(), resp);
        let len = cookie.emit(&mut buf).unwrap();
        prop_assert_eq!(CookieReplyRepr::parse(&buf[..len]).unwrap(), cookie);
        let len = header.emit(&mut buf).unwrap();
        prop_assert_eq!(DataHeader::parse(&buf[..len]).unwrap(), header);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Mutations with a recomputed MAC1 reach Noise itself: it must fail cleanly, never panic.
    #[test]
    fn mutated_handshakes_with_valid_mac1_never_panic_and_never_complete(
        seed in any::<u64>(),
        flips in prop::collection::vec((12usize..200, 1u8..=255), 1..4),
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let server = StaticSecret::generate(&mut rng);
        let client = StaticSecret::generate(&mut rng);
        let mut responder = Responder::new(server.clone());
        let prologue = prologue(b"udp");
        let mut init = InitiatorHandshake::new(&client, &server.public_key(), &Psk::zero(), &prologue, &mut rng).unwrap();
        let mut msg1 = [0u8; 256];
        let len1 = init.write_init(7, b"hello", &mut msg1).unwrap();
        let mut tampered = msg1;
        for &(at, mask) in &flips {
            let at = 8 + at % (len1 - 40);
            tampered[at] ^= mask;
        }
        let mac_at = len1 - 32;
        let mac = jvpn_wire::kdf::mac1(&jvpn_wire::kdf::mac1_key(&server.public_key()), &tampered[..mac_at]);
        tampered[mac_at..mac_at + 16].copy_from_slice(&mac);

        let bad = responder.read_init(&tampered[..len1], &prologue, &mut [0u8; 64], &mut rng);
        prop_assert!(bad.is_err());

        let good = responder.read_init(&msg1[..len1], &prologue, &mut [0u8; 64], &mut rng).unwrap();
        let mut msg2 = [0u8; 256];
        let (len2, _) = good.write_resp(&Psk::zero(), 9, b"world", &mut msg2).unwrap();
        for &(at, mask) in &flips {
            let at = 12 + at % (len2 - 44);
            msg2[at] ^= mask;
        }
        let mac_at = len2 - 32;
        let mac = jvpn_wire::kdf::mac1(&jvpn_wire::kdf::mac1_key(&client.public_key()), &msg2[..mac_at]);
        msg2[mac_at..mac_at + 16].copy_from_slice(&mac);
        prop_assert!(init.read_resp(&msg2[..len2], &mut [0u8; 64]).is_err());
    }
}
