//! Data plane: sealing, opening, tampering, replay.

use jvpn_wire::frame::MAX_DATA_PLAINTEXT;
use jvpn_wire::{
    ControlMessage, DATA_HEADER_LEN, DATA_OVERHEAD, MessageType, OpenError, RecvKey, SealError,
    SendKey,
};

const A_TO_B: [u8; 32] = [1; 32];
const B_TO_A: [u8; 32] = [2; 32];
const A_INDEX: u32 = 10;
const B_INDEX: u32 = 20;

fn pair() -> ((SendKey, RecvKey), (SendKey, RecvKey)) {
    let a = (
        SendKey::new(&A_TO_B, B_INDEX),
        RecvKey::new(&B_TO_A, A_INDEX),
    );
    let b = (
        SendKey::new(&B_TO_A, A_INDEX),
        RecvKey::new(&A_TO_B, B_INDEX),
    );
    (a, b)
}

fn seal(send: &mut SendKey, ty: MessageType, msg: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; msg.len() + DATA_OVERHEAD];
    buf[DATA_HEADER_LEN..DATA_HEADER_LEN + msg.len()].copy_from_slice(msg);
    let len = send.seal(ty, &mut buf, msg.len()).unwrap();
    buf.truncate(len);
    buf
}

#[test]
fn data_round_trips_in_both_directions() {
    let ((mut a_send, mut a_recv), (mut b_send, mut b_recv)) = pair();
    let mut to_b = seal(&mut a_send, MessageType::Data, b"hello b");
    let mut to_a = seal(&mut b_send, MessageType::Data, b"hello a");

    let (ty_b, range_b) = b_recv.open(&mut to_b).unwrap();
    let (ty_a, range_a) = a_recv.open(&mut to_a).unwrap();

    assert_eq!((ty_b, &to_b[range_b]), (MessageType::Data, &b"hello b"[..]));
    assert_eq!((ty_a, &to_a[range_a]), (MessageType::Data, &b"hello a"[..]));
    assert_eq!(b_recv.packets_received(), 1);
    assert_eq!(a_send.packets_sent(), 1);
}

#[test]
fn overhead_is_exactly_32_bytes_for_every_size() {
    let ((mut send, _), _) = pair();
    for len in [0usize, 1, 15, 16, 17, 1280, 1420] {
        let frame = seal(&mut send, MessageType::Data, &vec![0xaa; len]);

        assert_eq!(frame.len(), len + 32);
    }
}

#[test]
fn the_header_is_cleartext_and_the_payload_is_not() {
    let ((mut send, _), _) = pair();

    let frame = seal(&mut send, MessageType::Data, b"secret payload!!");

    assert_eq!(
        &frame[..16],
        &[4, 1, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_ne!(&frame[16..32], b"secret payload!!");
}

#[test]
fn counters_start_at_zero_and_increase_by_one() {
    let ((mut send, _), _) = pair();

    let counters: Vec<u64> = (0..3)
        .map(|_| {
            let frame = seal(&mut send, MessageType::Data, b"x");
            u64::from_be_bytes(frame[8..16].try_into().unwrap())
        })
        .collect();

    assert_eq!(counters, [0, 1, 2]);
}

#[test]
fn control_frames_carry_control_messages() {
    let ((mut send, _), (_, mut recv)) = pair();
    let probe = ControlMessage::Probe {
        seq: 3,
        sent_micros: 77,
    };
    let mut buf = [0u8; 64];
    let plen = probe.emit(&mut buf[DATA_HEADER_LEN..]).unwrap();
    let len = send.seal(MessageType::Control, &mut buf, plen).unwrap();

    let (ty, range) = recv.open(&mut buf[..len]).unwrap();

    assert_eq!(ty, MessageType::Control);
    assert_eq!(ControlMessage::parse(&buf[range]).unwrap(), probe);
}

#[test]
fn a_tampered_frame_is_rejected_and_not_committed_so_the_genuine_one_still_opens() {
    let ((mut send, _), (_, mut recv)) = pair();
    let genuine = seal(&mut send, MessageType::Data, b"payload bytes");
    // Header bytes 0..8 fail the frame or index checks; the counter (associated data),
    // ciphertext and tag fail the AEAD.
    for at in 0..genuine.len() {
        let mut tampered = genuine.clone();
        tampered[at] ^= 0x40;

        let result = recv.open(&mut tampered);

        assert!(result.is_err(), "flipping byte {at} was accepted");
    }

    let mut copy = genuine.clone();
    let (_, range) = recv.open(&mut copy).unwrap();
    assert_eq!(&copy[range], b"payload bytes");
}

#[test]
fn a_forged_frame_with_a_far_future_counter_does_not_slide_the_window() {
    let ((mut send, _), (_, mut recv)) = pair();
    let genuine = seal(&mut send, MessageType::Data, b"x");
    let mut forged = genuine.clone();
    forged[8..16].copy_from_slice(&1_000_000u64.to_be_bytes());

    assert_eq!(recv.open(&mut forged), Err(OpenError::AuthenticationFailed));
    assert_eq!(recv.highest_counter(), 0);
    assert!(recv.open(&mut genuine.clone()).is_ok());
}

#[test]
fn duplicates_are_rejected_and_reordering_is_accepted() {
    let ((mut send, _), (_, mut recv)) = pair();
    let frames: Vec<Vec<u8>> = (0..4)
        .map(|_| seal(&mut send, MessageType::Data, b"p"))
        .collect();

    for i in [3, 0, 2, 1] {
        assert!(recv.open(&mut frames[i].clone()).is_ok(), "frame {i}");
    }
    for frame in &frames {
        assert_eq!(recv.open(&mut frame.clone()), Err(OpenError::Replayed));
    }
    assert_eq!(recv.packets_received(), 4);
}

#[test]
fn a_frame_under_another_key_fails_authentication() {
    let ((mut send, _), _) = pair();
    let mut stranger = RecvKey::new(&[9; 32], B_INDEX);
    let mut frame = seal(&mut send, MessageType::Data, b"x");

    assert_eq!(
        stranger.open(&mut frame),
        Err(OpenError::AuthenticationFailed)
    );
}

#[test]
fn truncated_frames_are_malformed() {
    let ((mut send, _), (_, mut recv)) = pair();
    let frame = seal(&mut send, MessageType::Data, b"");

    let result = recv.open(&mut frame.clone()[..31]);

    assert!(matches!(result, Err(OpenError::Malformed(_))));
}

#[test]
fn the_largest_plaintext_seals_and_one_more_byte_is_refused() {
    let ((mut send, _), (_, mut recv)) = pair();
    let mut buf = vec![0u8; MAX_DATA_PLAINTEXT + DATA_OVERHEAD + 1];

    let len = send
        .seal(MessageType::Data, &mut buf, MAX_DATA_PLAINTEXT)
        .unwrap();
    let too_big = send.seal(MessageType::Data, &mut buf, MAX_DATA_PLAINTEXT + 1);

    assert!(recv.open(&mut buf[..len]).is_ok());
    assert!(matches!(too_big, Err(SealError::PlaintextTooLarge { .. })));
}
