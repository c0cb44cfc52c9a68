//! WSS input (ATTACKS.md F6, S23): one connection's bytes, after TLS, to the listener's request
//! head reader, its upgrade classifier and the server-side WebSocket frame reader
//! (`jvpn_transport_wss::fuzz::server_input`, the listener's own code over an in-memory stream).
//! Mode byte: even, the bytes as they are; odd, an honest upgrade head on `/jvpn` first, so that
//! the rest reaches the frame reader.
//!
//! Contract: no panic, no hang; a delivered message is never larger than the configured maximum
//! (checked from the length header, S23); all delivered bytes came from the input; an answered
//! upgrade carries a 28-character accept key.
#![no_main]

use jvpn_transport_wss::WssConfig;
use jvpn_transport_wss::fuzz::server_input;
use libfuzzer_sys::fuzz_target;

pub const UPGRADE: &[u8] = b"GET /jvpn HTTP/1.1\r\nHost: vpn.example\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let input = if mode & 1 == 1 {
        [UPGRADE, rest].concat()
    } else {
        rest.to_vec()
    };
    let out = server_input(&input, "/jvpn");
    let max = WssConfig::default().max_message_size;
    assert!(
        out.datagrams.iter().all(|&n| n <= max),
        "oversized message delivered"
    );
    assert!(
        out.datagrams.iter().sum::<usize>() <= input.len(),
        "more bytes delivered than received"
    );
    if let Some(accept) = &out.accept {
        assert!(out.head && accept.len() == 28, "bad accept key {accept:?}");
    }
    if mode & 1 == 1 {
        assert!(out.accept.is_some(), "the honest upgrade head was refused");
    }
});
