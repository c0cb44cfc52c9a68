//! Every frame and payload parser of jvpn-wire on arbitrary bytes (ATTACKS.md S24).
//!
//! Contract: no parser or accessor panics on any input; whatever parses re-emits byte-identically
//! (payloads: the fixed part; their extensions are skipped on parse and never emitted); a checked
//! view's pieces add up to exactly the input; the `new_checked` of a frame type succeeds only on
//! frames whose header `peek_type` accepts with that type.
#![no_main]

use jvpn_fuzz::keys;
use jvpn_wire::frame::{
    CookieReplyPacket, CookieReplyRepr, DATA_HEADER_LEN, DataHeader, DataPacket,
    HandshakeInitPacket, HandshakeInitRepr, HandshakeRespPacket, HandshakeRespRepr,
    ReattachInitPacket, ReattachRespPacket,
};
use jvpn_wire::kdf::MAC_LEN;
use jvpn_wire::{
    ControlMessage, InitPayload, MessageType, ReattachInitPayload, ReattachRespPayload,
    RespPayload, TOKEN_LEN, open_token, peek_type,
};
use libfuzzer_sys::fuzz_target;

fn same_type(bytes: &[u8], expected: MessageType) {
    assert_eq!(
        peek_type(bytes),
        Ok(expected),
        "new_checked accepted a bad header"
    );
}

fn frames(bytes: &[u8]) {
    let mut out = vec![0u8; bytes.len() + 64];

    if let Ok(p) = HandshakeInitPacket::new_checked(bytes) {
        same_type(bytes, MessageType::HandshakeInit);
        assert_eq!(8 + p.noise_message().len() + 2 * MAC_LEN, bytes.len());
        assert_eq!(p.mac1_covered().len(), bytes.len() - 2 * MAC_LEN);
        assert_eq!(p.mac2_covered().len(), bytes.len() - MAC_LEN);
        let _ = (p.sender_index(), p.mac1(), p.mac2(), p.payload_len());
    }
    if let Ok(repr) = HandshakeInitRepr::parse(bytes) {
        let len = repr.emit(&mut out).expect("a parsed init re-emits");
        assert_eq!(&out[..len], bytes, "HANDSHAKE_INIT round trip");
    }

    if let Ok(p) = HandshakeRespPacket::new_checked(bytes) {
        same_type(bytes, MessageType::HandshakeResp);
        assert_eq!(12 + p.noise_message().len() + 2 * MAC_LEN, bytes.len());
        let _ = (p.sender_index(), p.receiver_index(), p.mac1(), p.mac2());
        let _ = (p.mac1_covered().len(), p.payload_len());
    }
    if let Ok(repr) = HandshakeRespRepr::parse(bytes) {
        let len = repr.emit(&mut out).expect("a parsed resp re-emits");
        assert_eq!(&out[..len], bytes, "HANDSHAKE_RESP round trip");
    }

    if let Ok(p) = CookieReplyPacket::new_checked(bytes) {
        same_type(bytes, MessageType::CookieReply);
        let _ = (
            p.receiver_index(),
            p.nonce().len(),
            p.encrypted_cookie().len(),
        );
    }
    if let Ok(repr) = CookieReplyRepr::parse(bytes) {
        let len = repr.emit(&mut out).expect("a parsed cookie reply re-emits");
        assert_eq!(&out[..len], bytes, "COOKIE_REPLY round trip");
    }

    if let Ok(p) = DataPacket::new_checked(bytes) {
        let ty = p.message_type();
        assert!(matches!(ty, MessageType::Data | MessageType::Control));
        same_type(bytes, ty);
        assert_eq!(
            p.header().len() + p.ciphertext().len() + p.tag().len(),
            bytes.len()
        );
        let _ = (p.receiver_index(), p.counter());
    }
    if let Ok(header) = DataHeader::parse(bytes) {
        let len = header.emit(&mut out).expect("a parsed header re-emits");
        assert_eq!(len, DATA_HEADER_LEN);
        assert_eq!(
            &out[..len],
            &bytes[..DATA_HEADER_LEN],
            "DATA header round trip"
        );
    }

    if let Ok(p) = ReattachInitPacket::new_checked(bytes) {
        same_type(bytes, MessageType::ReattachInit);
        assert_eq!(p.token().len(), TOKEN_LEN);
        assert_eq!(
            p.prologue_suffix().len() + p.noise_message().len() + 2 * MAC_LEN,
            bytes.len()
        );
        let _ = (p.sender_index(), p.ephemeral(), p.mac1(), p.mac2());
        let _ = p.mac1_covered().len();
        // The honest token key never opens bytes it did not seal (the corpus seeds hold real
        // tokens, which do open; that is fine).
        let _ = open_token(&keys().token_key, p.token());
    }
    if let Ok(p) = ReattachRespPacket::new_checked(bytes) {
        same_type(bytes, MessageType::ReattachResp);
        assert_eq!(12 + p.noise_message().len() + 2 * MAC_LEN, bytes.len());
        let _ = (p.sender_index(), p.receiver_index(), p.mac1(), p.mac2());
        let _ = (p.payload_len(), p.mac1_covered().len());
    }
}

/// Payloads and control messages: the input is a decrypted plaintext.
fn plaintexts(bytes: &[u8]) {
    let mut out = vec![0u8; 1024];

    if let Ok(msg) = ControlMessage::parse(bytes) {
        let len = msg
            .emit(&mut out)
            .expect("a parsed control message re-emits");
        assert_eq!(len, msg.encoded_len());
        assert_eq!(&out[..len], bytes, "control message round trip");
    }
    if let Ok(p) = InitPayload::parse(bytes) {
        let len = p.emit(&mut out).expect("re-emits");
        assert_eq!(&out[..len], &bytes[..len], "InitPayload round trip");
        assert_eq!(InitPayload::parse(&out[..len]), Ok(p));
    }
    if let Ok(p) = RespPayload::parse(bytes) {
        let len = p.emit(&mut out).expect("re-emits");
        assert_eq!(&out[..len], &bytes[..len], "RespPayload round trip");
        assert_eq!(RespPayload::parse(&out[..len]), Ok(p));
    }
    if let Ok(p) = ReattachInitPayload::parse(bytes) {
        let len = p.emit(&mut out).expect("re-emits");
        assert_eq!(&out[..len], &bytes[..len], "ReattachInitPayload round trip");
        assert_eq!(ReattachInitPayload::parse(&out[..len]), Ok(p));
    }
    if let Ok(p) = ReattachRespPayload::parse(bytes) {
        let len = p.emit(&mut out).expect("re-emits");
        assert_eq!(&out[..len], &bytes[..len], "ReattachRespPayload round trip");
        let again = ReattachRespPayload::parse(&out[..len]).expect("re-parses");
        assert!(again == p, "ReattachRespPayload re-parse differs");
    }
    let _ = open_token(&keys().token_key, bytes);
}

fuzz_target!(|bytes: &[u8]| {
    let _ = peek_type(bytes);
    frames(bytes);
    plaintexts(bytes);
    // A frame's prefixes are the commonest malformed inputs.
    if bytes.len() > 4 {
        frames(&bytes[..bytes.len() / 2]);
    }
});
