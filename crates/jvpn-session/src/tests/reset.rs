//! STATELESS_RESET (ATTACKS.md S27): a reset with the exact token only starts a reattach, fake
//! ones change nothing, resets are never larger than their trigger and are rate limited.

use std::time::{Duration, Instant};

use jvpn_wire::frame::DataPacket;
use jvpn_wire::reset::RESET_MAX_LEN;
use jvpn_wire::{MessageType, ResetKey, ResetToken, TokenKey, peek_type, write_reset};
use rand_core::RngCore;

use super::*;
use crate::ResetLimits;

const TOKEN_KEY: [u8; 32] = [0x42; 32];

/// A harness whose server seals tokens (and computes reset tokens) under [`TOKEN_KEY`].
fn harness() -> Harness {
    let keys = Keys::new();
    let server_key = keys.server.public_key();
    let client_key = keys.client.public_key();
    let mut h = Harness::with_configs(
        |clock| keys.client_config(clock, server_key),
        |clock| {
            let mut cfg = keys.server_config(clock, client_key);
            cfg.cluster.token_key = Some(TokenKey::from_bytes(TOKEN_KEY));
            cfg
        },
    );
    h.pump();
    assert_eq!(h.client.state(), State::Attached);
    h
}

/// The same server (key, peers, token key) restarted: it holds no session.
fn restarted_server(h: &Harness) -> Endpoint {
    let keys = Keys::new();
    let mut cfg = keys.server_config(h.clock, keys.client.public_key());
    cfg.cluster.token_key = Some(TokenKey::from_bytes(TOKEN_KEY));
    Endpoint::new(cfg, rng(99)).expect("valid server config")
}

/// The server index the client's frames address: the receiver index of its last sealed frame.
fn server_index(h: &mut Harness) -> u32 {
    h.client.send(b"ping", h.now).expect("bound");
    h.pump();
    let frame = h
        .client_sent
        .iter()
        .rev()
        .find(|d| matches!(peek_type(d), Ok(MessageType::Data | MessageType::Control)))
        .expect("the client sent a sealed frame");
    DataPacket::new_checked(&frame[..])
        .expect("a sealed frame parses")
        .receiver_index()
}

fn token(index: u32) -> ResetToken {
    ResetKey::new(&TokenKey::from_bytes(TOKEN_KEY)).token(index)
}

fn reset_for(token: &ResetToken, trigger_len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; RESET_MAX_LEN];
    let len = write_reset(
        token,
        trigger_len,
        &mut ChaCha20Rng::seed_from_u64(seed),
        &mut out,
    )
    .expect("the trigger is long enough");
    out.truncate(len);
    out
}

/// What must not move when a fake reset arrives.
fn snapshot(
    h: &Harness,
) -> (
    State,
    u64,
    u64,
    Option<jvpn_wire::SessionId>,
    Option<PathId>,
) {
    (
        h.client.state(),
        h.client.version(),
        h.client.epoch(),
        h.client.session_id(),
        h.client.bound_path(),
    )
}

// --- honoured ------------------------------------------------------------------------------

#[test]
fn a_reset_with_the_exact_token_starts_a_reattach_and_the_session_survives() {
    let mut h = harness();
    let sid = h.client.session_id();
    let mut reset = reset_for(&token(server_index(&mut h)), 100, 1);

    let inbound = h.deliver_to_client(&mut reset);
    let state_after_reset = h.client.state();
    h.pump();

    assert_eq!(inbound, Inbound::Consumed);
    assert_eq!(state_after_reset, State::Recovering);
    assert_eq!(h.client.state(), State::Attached);
    assert_eq!(h.client.session_id(), sid);
    assert_eq!(h.client.epoch(), 2);
    assert_eq!(
        h.client_transitions(),
        [
            (State::Birth, State::Attached, Reason::HandshakeComplete),
            (State::Attached, State::Recovering, Reason::StatelessReset),
            (State::Recovering, State::Attached, Reason::ReattachAccepted),
        ]
    );
    assert_eq!(h.client.stats().resets_honoured, 1);
    h.client.send(b"after the reset", h.now).unwrap();
    h.pump();
    assert_eq!(
        h.server_received.last().map(|(_, p)| p.as_slice()),
        Some(&b"after the reset"[..])
    );
    h.assert_no_violations();
}

#[test]
fn the_reattach_response_carries_the_token_of_the_new_index() {
    let mut h = harness();
    let old_index = server_index(&mut h);
    let mut first = reset_for(&token(old_index), 100, 2);
    h.deliver_to_client(&mut first);
    h.pump();
    let new_index = server_index(&mut h);
    let mut fresh = reset_for(&token(new_index), 100, 3);

    let old_again = h.deliver_to_client(&mut first);
    let version = h.client.version();
    let honoured = h.deliver_to_client(&mut fresh);

    assert_ne!(old_index, new_index);
    assert_ne!(
        old_again,
        Inbound::Consumed,
        "the old index's token is dead"
    );
    assert_eq!(honoured, Inbound::Consumed);
    assert_eq!(h.client.version(), version + 1);
    assert_eq!(h.client.state(), State::Recovering);
    assert_eq!(h.client.last_reason(), Some(Reason::StatelessReset));
}

#[test]
fn a_reset_while_recovering_starts_nothing_new() {
    let mut h = harness();
    let index = server_index(&mut h);
    h.blackhole = true;
    let mut reset = reset_for(&token(index), 100, 4);
    h.deliver_to_client(&mut reset);
    let version = h.client.version();

    let again = h.deliver_to_client(&mut reset_for(&token(index), 90, 5));

    assert_ne!(again, Inbound::Consumed);
    assert_eq!(h.client.version(), version);
    assert_eq!(h.client.state(), State::Recovering);
}

// --- never honoured ------------------------------------------------------------------------

#[test]
fn ten_thousand_fake_resets_change_no_state() {
    let mut h = harness();
    let index = server_index(&mut h);
    let before = snapshot(&h);
    let events = h.client_events.len();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let wrong_cluster = ResetKey::new(&TokenKey::from_bytes([0x43; 32]));
    let mut candidates = 0;

    for i in 0..10_000u64 {
        let trigger = 33 + (rng.next_u32() % 1400) as usize;
        let mut datagram = match i % 5 {
            // Random bytes of any length.
            0 => {
                let mut bytes = vec![0u8; (rng.next_u32() % 200) as usize];
                rng.fill_bytes(&mut bytes);
                bytes
            }
            // Right shape, random token.
            1 => {
                let mut random = [0u8; 16];
                rng.fill_bytes(&mut random);
                reset_for(&ResetToken::from_bytes(random), trigger, i)
            }
            // Right shape, another cluster's token for the right index.
            2 => reset_for(&wrong_cluster.token(index), trigger, i),
            // Right shape, our cluster's token for another index.
            3 => reset_for(&token(index.wrapping_add(1 + i as u32)), trigger, i),
            // The right token with one bit flipped.
            _ => {
                let mut reset = reset_for(&token(index), trigger, i);
                let last = reset.len() - 1 - (i as usize % 16);
                reset[last] ^= 1 << (i % 8);
                reset
            }
        };
        if jvpn_wire::candidate_token(&datagram).is_some() {
            candidates += 1;
        }

        let inbound = h.deliver_to_client(&mut datagram);

        assert!(matches!(inbound, Inbound::Dropped(_)), "datagram {i}");
    }

    assert_eq!(snapshot(&h), before);
    assert_eq!(h.client_events.len(), events);
    assert!(h.client.poll_event().is_none());
    assert_eq!(h.client.stats().resets_honoured, 0);
    assert_eq!(h.client.stats().resets_rejected, candidates);
    assert!(candidates >= 8_000);
    h.client.send(b"still here", h.now).unwrap();
    h.pump();
    assert_eq!(
        h.server_received.last().map(|(_, p)| p.as_slice()),
        Some(&b"still here"[..])
    );
}

#[test]
fn the_exact_token_on_another_path_is_not_honoured() {
    let mut h = harness();
    let before = snapshot(&h);
    let mut reset = reset_for(&token(server_index(&mut h)), 100, 8);

    let inbound = h.deliver_to_client_on(PathId(2), &mut reset);

    assert!(matches!(inbound, Inbound::Dropped(_)));
    assert_eq!(snapshot(&h), before);
    assert_eq!(h.client.stats().resets_rejected, 1);
}

#[test]
fn a_server_never_honours_a_reset() {
    let mut h = harness();
    let (handle, _) = h.server_session();
    let index = server_index(&mut h);
    let before = h.server_session().1.version();

    let inbound = h.deliver_to_server(&mut reset_for(&token(index), 100, 9));

    assert!(matches!(inbound, EndpointInbound::Dropped(_)));
    let session = h.server.session(handle).expect("the session is alive");
    assert_eq!(
        (session.state(), session.version()),
        (State::Attached, before)
    );
}

// --- emission ------------------------------------------------------------------------------

/// A sealed-looking frame of `len` bytes for receiver index `index`.
fn trigger(index: u32, len: usize) -> Vec<u8> {
    let mut frame = vec![0u8; len];
    let header = [MessageType::Data.as_u8(), 1, 0, 0];
    let n = len.min(4);
    frame[..n].copy_from_slice(&header[..n]);
    if len >= 8 {
        frame[4..8].copy_from_slice(&index.to_be_bytes());
    }
    frame
}

fn drain(server: &mut Endpoint, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(t) = server.poll_transmit(now, &mut buf) {
        out.push(buf[..t.len].to_vec());
    }
    out
}

#[test]
fn a_reset_is_never_larger_than_its_trigger_and_none_answers_a_minimum_size_frame() {
    let h = harness();
    let mut server = restarted_server(&h);
    let mut now = h.now;

    for len in 0..=1500usize {
        now += Duration::from_millis(25);
        let source = (len as u32).to_be_bytes();
        let mut frame = trigger(0x1000 + len as u32, len);

        server.handle_datagram_from(SERVER_PATH, &source, &mut frame, now);
        let sent = drain(&mut server, now);

        if len <= jvpn_wire::RESET_MIN_LEN {
            assert!(sent.is_empty(), "a {len}-byte trigger got a reset");
        } else {
            assert_eq!(sent.len(), 1, "a {len}-byte trigger got no reset");
            assert!(sent[0].len() < len);
            assert!(token(0x1000 + len as u32).matches(&sent[0]));
        }
    }

    let stats = &server.counters().resets;
    assert_eq!(stats.sent, 1500 - jvpn_wire::RESET_MIN_LEN as u64);
    assert!(stats.bytes_sent < stats.trigger_bytes);
    // Shorter frames do not parse as DATA at all; only the 32-byte one reached the size rule.
    assert_eq!(stats.too_short, 1);
}

#[test]
fn one_source_gets_at_most_one_reset_per_20_ms() {
    let h = harness();
    let mut server = restarted_server(&h);
    let t = h.now;
    let send = |server: &mut Endpoint, source: &[u8], at: Instant| {
        let mut frame = trigger(77, 200);
        server.handle_datagram_from(SERVER_PATH, source, &mut frame, at);
        drain(server, at).len()
    };

    let burst: usize = (0..10).map(|_| send(&mut server, b"a", t)).sum();
    let other = send(&mut server, b"b", t);
    let too_soon = send(&mut server, b"a", t + Duration::from_millis(19));
    let in_time = send(&mut server, b"a", t + Duration::from_millis(20));

    assert_eq!((burst, other, too_soon, in_time), (1, 1, 0, 1));
    assert_eq!(server.counters().resets.source_limited, 10);
}

#[test]
fn the_global_rate_caps_resets_from_many_sources() {
    let h = harness();
    let mut server = restarted_server(&h);
    server.set_reset_limits(ResetLimits::default());
    let t = h.now;
    let mut sent = 0;

    for source in 0..1000u32 {
        let mut frame = trigger(5, 100);
        server.handle_datagram_from(SERVER_PATH, &source.to_be_bytes(), &mut frame, t);
        sent += drain(&mut server, t).len();
    }
    let later = t + Duration::from_secs(1);
    let mut frame = trigger(5, 100);
    server.handle_datagram_from(SERVER_PATH, b"late", &mut frame, later);
    let after_a_second = drain(&mut server, later).len();

    assert_eq!(sent, ResetLimits::default().global_burst as usize);
    assert_eq!(server.counters().resets.global_limited, 1000 - sent as u64);
    assert_eq!(after_a_second, 1);
}

#[test]
fn a_restarted_server_with_the_same_token_key_emits_a_reset_the_client_honours() {
    let mut h = harness();
    let _ = server_index(&mut h);
    h.server = restarted_server(&h);
    h.server_sent.clear();
    let sent_before = h.client_sent.len();

    h.client.send(b"to a server that forgot us", h.now).unwrap();
    h.pump();
    let state_at_once = h.client.state();
    // The reattach finds no record there; the lost-session probe then learns the session is
    // gone (a new session id), which is what ends it, not the reset.
    h.advance(Policy::default().handshake_retry + Duration::from_millis(1));

    let trigger = &h.client_sent[sent_before];
    let reset = h
        .server_sent
        .first()
        .expect("the restarted server answered");
    assert!(reset.len() < trigger.len());
    assert_eq!(h.server.counters().resets.sent, 1);
    assert_eq!(h.client.stats().resets_honoured, 1);
    assert_eq!(
        state_at_once,
        State::Recovering,
        "at once, not after dead_after"
    );
    assert_eq!(
        h.client_transitions()[1..],
        [
            (State::Attached, State::Recovering, Reason::StatelessReset),
            (State::Recovering, State::Terminated, Reason::SessionLost),
        ]
    );
}
