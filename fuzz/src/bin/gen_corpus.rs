//! Writes the seed corpus of every fuzz target into `corpus/<target>/` (or into the directory
//! given as the first argument). Deterministic: running it twice writes the same bytes, so the
//! committed corpus can be checked with `git diff --exit-code fuzz/corpus` after a run.
//!
//! `cargo run --bin gen-corpus` from `fuzz/`.

use std::fs;
use std::path::{Path, PathBuf};

use jvpn_fuzz::{
    DATA_INDEX, DATA_KEY, handshake_seeds, reattach_payload, reattach_seeds, rng, seal,
};
use jvpn_wire::frame::CookieReplyRepr;
use jvpn_wire::{ControlMessage, InitPayload, MessageType, RespPayload, SendKey, SessionId};
use rand_core::RngCore;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    fs::create_dir_all(&dir).expect("create corpus directory");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn with_mode(mode: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend_from_slice(bytes);
    out
}

fn random(stream: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rng(stream).fill_bytes(&mut out);
    out
}

fn length_prefixed(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![0u8];
    for f in frames {
        let len = u16::try_from(f.len()).expect("frames fit u16");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

fn main() {
    let dir = std::env::args().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus"),
        PathBuf::from,
    );
    let hs = handshake_seeds();
    let ra = reattach_seeds();

    // Real DATA / CONTROL frames under the `open` target's fixture key, counters 0..=5.
    let mut send = SendKey::new(&DATA_KEY, DATA_INDEX);
    let mut keepalive = [0u8; 64];
    let ka_len = ControlMessage::Keepalive
        .emit(&mut keepalive)
        .expect("emit");
    let mut probe = [0u8; 64];
    let probe_len = ControlMessage::Probe {
        seq: 7,
        sent_micros: 1_000,
    }
    .emit(&mut probe)
    .expect("emit");
    let data: Vec<Vec<u8>> = vec![
        seal(
            &mut send,
            MessageType::Data,
            b"\x45\x00\x00\x1c inner packet 0",
        ),
        seal(&mut send, MessageType::Control, &keepalive[..ka_len]),
        seal(&mut send, MessageType::Data, b"inner packet 2"),
        seal(&mut send, MessageType::Control, &probe[..probe_len]),
        seal(&mut send, MessageType::Data, &[0u8; 0]),
        seal(&mut send, MessageType::Data, &[0x60; 96]),
    ];

    // frames: every frame type and every plaintext type.
    let t = "frames";
    write(&dir, t, "handshake_init", &hs.init);
    write(&dir, t, "handshake_resp", &hs.resp);
    write(&dir, t, "reattach_init", &ra.init);
    write(&dir, t, "reattach_resp", &ra.resp);
    write(&dir, t, "data", &data[0]);
    write(&dir, t, "control", &data[1]);
    let mut cookie = [0u8; 64];
    let len = CookieReplyRepr {
        receiver_index: 9,
        nonce: [1; 24],
        encrypted_cookie: [2; 32],
    }
    .emit(&mut cookie)
    .expect("emit cookie");
    write(&dir, t, "cookie_reply", &cookie[..len]);
    let mut plain = [0u8; 400];
    let len = InitPayload {
        unix_nanos: jvpn_fuzz::INIT_UNIX_NANOS,
        resume: Some(SessionId([3; 16])),
    }
    .emit(&mut plain)
    .expect("emit");
    write(&dir, t, "init_payload", &plain[..len]);
    let len = RespPayload {
        session_id: SessionId([4; 16]),
        epoch: 2,
        server_unix_nanos: 5,
    }
    .emit(&mut plain)
    .expect("emit");
    write(
        &dir,
        t,
        "resp_payload_with_extension",
        &[&plain[..len], &[0x10, 0, 2, 0xaa, 0xbb]].concat(),
    );
    let mut padded = [0u8; 368];
    reattach_payload().emit(&mut padded).expect("emit");
    write(&dir, t, "reattach_init_payload_padded", &padded);
    let len = ControlMessage::PathConfirm {
        response: [5; 16],
        challenge: [6; 16],
    }
    .emit(&mut plain)
    .expect("emit");
    write(&dir, t, "control_path_confirm", &plain[..len]);

    // handshake_responder: mode byte, then a frame or mutation bytes.
    let t = "handshake_responder";
    write(&dir, t, "raw_honest_init", &with_mode(0, &hs.init));
    let mut reindexed = hs.init.clone();
    reindexed[4..8].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
    write(
        &dir,
        t,
        "raw_reindexed_init_fix_mac1",
        &with_mode(1, &reindexed),
    );
    write(&dir, t, "raw_resp_as_init", &with_mode(0, &hs.resp));
    for (i, len) in [24usize, 64, 200].into_iter().enumerate() {
        write(
            &dir,
            t,
            &format!("mutated_{i}"),
            &with_mode(2, &random(100 + i as u64, len)),
        );
    }

    // reattach_responder.
    let t = "reattach_responder";
    write(&dir, t, "raw_honest_init", &with_mode(0, &ra.init));
    write(&dir, t, "raw_honest_init_fix_mac1", &with_mode(1, &ra.init));
    write(
        &dir,
        t,
        "raw_truncated_init",
        &with_mode(0, &ra.init[..ra.init.len() - 1]),
    );
    for (i, len) in [24usize, 96, 300].into_iter().enumerate() {
        write(
            &dir,
            t,
            &format!("mutated_{i}"),
            &with_mode(2, &random(200 + i as u64, len)),
        );
    }

    // open: real frames in order, replayed, reordered, and one flipped.
    let t = "open";
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    write(&dir, t, "real_in_order", &length_prefixed(&refs));
    write(
        &dir,
        t,
        "real_reordered_and_replayed",
        &length_prefixed(&[
            refs[3], refs[0], refs[3], refs[5], refs[1], refs[1], refs[4],
        ]),
    );
    let mut flipped = data[2].clone();
    flipped[20] ^= 1;
    write(
        &dir,
        t,
        "real_then_flipped",
        &length_prefixed(&[refs[2], &flipped, refs[2]]),
    );
    for (i, len) in [64usize, 256, 1024].into_iter().enumerate() {
        write(
            &dir,
            t,
            &format!("ops_{i}"),
            &with_mode(1, &random(300 + i as u64, len)),
        );
    }

    // session_events: arbitrary-decoded event sequences of a few sizes.
    let t = "session_events";
    for (i, len) in [32usize, 128, 512, 2048].into_iter().enumerate() {
        write(
            &dir,
            t,
            &format!("events_{i}"),
            &random(400 + i as u64, len),
        );
    }

    println!("seed corpus written to {}", dir.display());
}
