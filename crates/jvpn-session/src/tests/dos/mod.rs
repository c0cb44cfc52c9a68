//! The DoS defences of the endpoint: cookie replies under load, per-source buckets, cookie
//! secret rotation, anti-amplification and bounded half-open reattach state.

mod amplification;
mod halfopen;

use std::time::{Duration, Instant};

use jvpn_wire::cookie::{Cookie, open_cookie_reply, request_mac1};
use jvpn_wire::frame::handshake_init_len;
use jvpn_wire::{COOKIE_ROTATION, InitiatorHandshake, MessageType, Psk, PublicKey, peek_type};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::{Harness, Policy, Reason, SERVER_PATH, TRANSPORTS, packet, secret};
use crate::{DosLimits, Endpoint, EndpointInbound, PathId, State};

/// A HANDSHAKE_INIT with a valid MAC1 for `server` from a throwaway key (an attacker knows the
/// server's public key, so MAC1 costs it nothing).
fn spoofed_init(server: &PublicKey, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut hs = InitiatorHandshake::new(
        &secret(1000 + seed),
        server,
        &Psk::from_bytes([0; 32]),
        &jvpn_wire::prologue(TRANSPORTS),
        &mut rng,
    )
    .unwrap();
    let mut frame = vec![0u8; handshake_init_len(0)];
    let len = hs.write_init(seed as u32 | 1, &[], &mut frame).unwrap();
    frame.truncate(len);
    frame
}

fn limits(threshold: usize) -> DosLimits {
    DosLimits {
        under_load_dh_per_sec: threshold,
        ..DosLimits::default()
    }
}

/// Everything the server has to send: (path, datagram).
fn drain(server: &mut Endpoint, now: Instant) -> Vec<(PathId, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(t) = server.poll_transmit(now, &mut buf) {
        out.push((t.path, buf[..t.len].to_vec()));
    }
    out
}

/// Floods `count` spoofed initiations, each from its own path (source), seeds from `first`.
fn flood(server: &mut Endpoint, first: u64, count: u64, now: Instant) -> u64 {
    let key = server.public_key();
    let mut bytes = 0;
    for seed in first..first + count {
        let mut frame = spoofed_init(&key, seed);
        bytes += frame.len() as u64;
        server.handle_datagram(PathId(5000 + seed as u32), &mut frame, now);
    }
    bytes
}

/// A cookie for `path`, as an attacker who really receives there would get it.
fn cookie_for(server: &mut Endpoint, path: PathId, seed: u64, now: Instant) -> Cookie {
    let key = server.public_key();
    let mut frame = spoofed_init(&key, seed);
    let result = server.handle_datagram(path, &mut frame, now);
    assert_eq!(result, EndpointInbound::AnsweredStatelessly);
    let replies = drain(server, now);
    let (_, reply) = replies.iter().find(|(p, _)| *p == path).unwrap();
    open_cookie_reply(&key, reply, &request_mac1(&frame).unwrap()).unwrap()
}

#[test]
fn a_spoofed_flood_under_load_costs_no_dh_beyond_the_threshold_and_gets_only_small_cookies() {
    let mut h = Harness::new();
    h.server.set_dos_limits(limits(8));

    let received = flood(&mut h.server, 1, 200, h.now);
    let sent = drain(&mut h.server, h.now);

    let counters = h.server.counters();
    assert_eq!(counters.dh_started, 8);
    assert_eq!(counters.dos.cookie_replies, 192);
    assert_eq!(sent.len(), 192);
    assert!(
        sent.iter()
            .all(|(_, d)| peek_type(d) == Ok(MessageType::CookieReply)
                && d.len() <= handshake_init_len(0))
    );
    let sent_bytes: u64 = sent.iter().map(|(_, d)| d.len() as u64).sum();
    assert!(sent_bytes <= received);
    assert!(counters.dos.cookie_reply_bytes <= counters.dos.cookie_request_bytes);
}

#[test]
fn an_exact_replay_of_an_initiation_is_dropped_before_it_counts_toward_load() {
    let mut h = Harness::new();
    h.server.set_dos_limits(limits(2));
    let key = h.server.public_key();
    let frame = spoofed_init(&key, 7);

    for _ in 0..10 {
        h.server
            .handle_datagram(PathId(9), &mut frame.clone(), h.now);
    }

    let counters = h.server.counters();
    assert_eq!(counters.dh_started, 1);
    assert_eq!(counters.dos.init_replays, 9);
    assert_eq!(counters.dos.cookie_replies, 0);
}

#[test]
fn an_honest_client_that_received_a_cookie_attaches_under_load() {
    let mut h = Harness::new();
    h.server.set_dos_limits(limits(4));
    flood(&mut h.server, 1, 4, h.now);
    drain(&mut h.server, h.now);

    // The client's first initiation meets a loaded server: a cookie, no session.
    h.pump();
    assert_eq!(h.server.counters().dos.cookie_replies, 1);
    assert_eq!(h.client.state(), State::Birth);
    // The flood goes on until after the client's retry (5 s later).
    h.advance(Duration::from_millis(4500));
    flood(&mut h.server, 100, 4, h.now);
    drain(&mut h.server, h.now);
    h.advance(Duration::from_secs(1));

    assert_eq!(h.client.state(), State::Attached);
    assert_eq!(h.server.counters().dos.cookie_replies, 1);
    assert_eq!(h.server.counters().sessions_created, 1);
    h.assert_no_violations();
}

#[test]
fn the_per_source_bucket_limits_one_source_without_affecting_others() {
    let mut h = Harness::new();
    h.server.set_dos_limits(limits(1));
    flood(&mut h.server, 1, 1, h.now);
    let (a, b) = (PathId(77), PathId(78));
    let cookie_a = cookie_for(&mut h.server, a, 500, h.now);
    let cookie_b = cookie_for(&mut h.server, b, 501, h.now);
    let key = h.server.public_key();
    let dh_before = h.server.counters().dh_started;

    for seed in 600..610 {
        let mut frame = spoofed_init(&key, seed);
        cookie_a.stamp_mac2(&mut frame);
        h.server.handle_datagram(a, &mut frame, h.now);
    }
    let mut frame = spoofed_init(&key, 700);
    cookie_b.stamp_mac2(&mut frame);
    h.server.handle_datagram(b, &mut frame, h.now);

    let counters = h.server.counters();
    let burst = u64::from(DosLimits::default().source_burst);
    assert_eq!(counters.dh_started - dh_before, burst + 1);
    assert_eq!(counters.dos.rate_limited, 10 - burst);
}

#[test]
fn a_cookie_for_one_source_does_not_pass_mac2_from_another() {
    let mut h = Harness::new();
    h.server.set_dos_limits(limits(1));
    flood(&mut h.server, 1, 1, h.now);
    let cookie = cookie_for(&mut h.server, PathId(77), 500, h.now);
    let key = h.server.public_key();
    let mut frame = spoofed_init(&key, 800);
    cookie.stamp_mac2(&mut frame);
    let dh_before = h.server.counters().dh_started;

    h.server.handle_datagram(PathId(78), &mut frame, h.now);

    assert_eq!(h.server.counters().dh_started, dh_before);
    assert_eq!(h.server.counters().dos.cookie_replies, 2);
}

#[test]
fn a_cookie_from_the_previous_secret_is_accepted_for_one_rotation_and_refused_after_two() {
    let mut h = Harness::new();
    h.server.set_dos_limits(limits(1));
    let t0 = h.now;
    let path = PathId(77);
    flood(&mut h.server, 1, 1, t0);
    let cookie = cookie_for(&mut h.server, path, 500, t0);
    let key = h.server.public_key();
    let stamped = |seed: u64| {
        let mut frame = spoofed_init(&key, seed);
        cookie.stamp_mac2(&mut frame);
        frame
    };

    // One rotation later the secret has changed: the cookie is from the previous one.
    let t1 = t0 + COOKIE_ROTATION;
    flood(&mut h.server, 10, 1, t1);
    let (dh1, cookies1) = (
        h.server.counters().dh_started,
        h.server.counters().dos.cookie_replies,
    );
    h.server.handle_datagram(path, &mut stamped(600), t1);
    let after_one = (
        h.server.counters().dh_started - dh1,
        h.server.counters().dos.cookie_replies - cookies1,
    );
    // Two rotations later it is refused: a new cookie instead of a DH.
    let t2 = t0 + 2 * COOKIE_ROTATION;
    flood(&mut h.server, 20, 1, t2);
    let (dh2, cookies2) = (
        h.server.counters().dh_started,
        h.server.counters().dos.cookie_replies,
    );
    h.server.handle_datagram(path, &mut stamped(601), t2);
    let after_two = (
        h.server.counters().dh_started - dh2,
        h.server.counters().dos.cookie_replies - cookies2,
    );

    assert_eq!(
        after_one,
        (1, 0),
        "accepted for one rotation: a DH, no cookie"
    );
    assert_eq!(after_two, (0, 1), "refused after two: a cookie, no DH");
}
