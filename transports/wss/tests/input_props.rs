//! Proptest mirror of the `wss_input` fuzz target (fuzz/README.md): arbitrary bytes, and an
//! honest upgrade head followed by arbitrary bytes or by well-formed frames with arbitrary
//! lengths, through the listener's pre-auth and read path.

use jvpn_transport_wss::WssConfig;
use jvpn_transport_wss::fuzz::server_input;
use proptest::prelude::*;

const UPGRADE: &[u8] = b"GET /jvpn HTTP/1.1\r\nHost: vpn.example\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A masked client frame header (RFC 6455 §5.2) announcing `len` payload bytes of `opcode`.
fn frame_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![0x80 | (opcode & 0x0f)];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=0xffff => {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    h.extend_from_slice(&[1, 2, 3, 4]);
    h
}

fn check(input: &[u8]) -> jvpn_transport_wss::fuzz::ServerInput {
    let out = server_input(input, "/jvpn");
    let max = WssConfig::default().max_message_size;
    assert!(out.datagrams.iter().all(|&n| n <= max));
    assert!(out.datagrams.iter().sum::<usize>() <= input.len());
    if let Some(accept) = &out.accept {
        assert!(out.head);
        assert_eq!(accept.len(), 28);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_and_never_upgrade(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let out = check(&bytes);
        prop_assert!(out.accept.is_none());
        prop_assert!(out.datagrams.is_empty());
    }

    #[test]
    fn random_bytes_after_an_upgrade_never_deliver_more_than_they_hold(
        rest in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let out = check(&[UPGRADE, &rest].concat());
        prop_assert!(out.accept.is_some());
    }

    #[test]
    fn announced_lengths_above_the_maximum_are_never_delivered(
        opcode in prop_oneof![Just(0x2u8), Just(0x0), Just(0x1), Just(0x8), Just(0x9)],
        len in prop_oneof![0u64..200, 60_000u64..70_000, any::<u64>()],
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let input = [UPGRADE, &frame_header(opcode, len), &body].concat();
        let out = check(&input);
        // Bytes of `body` beyond the announced length are parsed as further frames, which may
        // deliver datagrams of their own: only the first frame's announcement is known here.
        if opcode == 0x2 && let Some(&first) = out.datagrams.first() {
            prop_assert!(first as u64 == len && first <= body.len());
        }
    }
}

#[test]
fn an_honest_binary_frame_after_the_upgrade_is_delivered() {
    let payload = [0u8; 300];
    let input = [UPGRADE, &frame_header(0x2, 300), &payload].concat();

    let out = check(&input);

    assert_eq!(out.datagrams, vec![300]);
}
