//! First attach: mutual authentication, and everything that must create no session.

use std::time::Duration;

use jvpn_wire::kdf::{MAC_LEN, mac1, mac1_key};

use super::*;
use crate::DropReason;

#[test]
fn handshake_completes_on_both_sides_with_the_same_session_id() {
    let mut h = Harness::new();

    h.pump();

    let (_, server) = h.server_session();
    assert_eq!(h.client.state(), State::Attached);
    assert_eq!(server.state(), State::Attached);
    assert!(h.client.session_id().is_some());
    assert_eq!(h.client.session_id(), server.session_id());
    assert_eq!((h.client.epoch(), server.epoch()), (1, 1));
    let birth = [(State::Birth, State::Attached, Reason::HandshakeComplete)];
    assert_eq!(h.client_transitions(), birth);
    assert_eq!(h.server_transitions(), birth);
    let record = h.client_records()[0];
    assert_eq!(record.version, 1);
    assert_eq!(record.path, Some(CLIENT_PATH));
    assert_eq!(
        record.session_id,
        h.client.session_id().map(|id| id.to_string())
    );
    assert_eq!(h.client.peer_static(), &h.server.public_key());
    h.assert_no_violations();
}

#[test]
fn handshake_completed_events_name_the_session_and_epoch_one() {
    let mut h = Harness::new();

    h.pump();

    let sid = h.client.session_id().unwrap();
    assert!(h.client_events.contains(&Event::HandshakeCompleted {
        session_id: sid,
        epoch: 1
    }));
    assert!(h.server_events.iter().any(|(_, e)| *e
        == Event::HandshakeCompleted {
            session_id: sid,
            epoch: 1
        }));
}

#[test]
fn wrong_server_key_times_out_the_client_and_creates_no_server_session() {
    let keys = Keys::new();
    let wrong = secret(99).public_key();
    let client_key = keys.client.public_key();
    let mut h = Harness::with_configs(
        |clock| keys.client_config(clock, wrong),
        |clock| keys.server_config(clock, client_key),
    );

    h.advance(Duration::from_secs(100));

    assert_eq!(h.client.state(), State::Terminated);
    assert_eq!(
        h.client_transitions(),
        [(State::Birth, State::Terminated, Reason::HandshakeTimeout)]
    );
    let deadline = h.t0 + Policy::default().handshake_timeout;
    assert_eq!(h.client_records()[0].at, Some(deadline));
    assert_eq!(h.server.session_count(), 0);
    assert_eq!(h.server.counters().dh_started, 0);
    assert!(h.server.counters().mac1_rejected >= 2);
    h.assert_no_violations();
}

#[test]
fn handshake_is_retried_with_a_new_ephemeral_and_sender_index() {
    let mut h = Harness::new();
    h.blackhole = true;
    h.pump();

    h.advance(Duration::from_secs(11));

    assert_eq!(h.client_sent.len(), 3);
    let index = |d: &Vec<u8>| d[4..8].to_vec();
    let ephemeral = |d: &Vec<u8>| d[8..40].to_vec();
    assert_ne!(index(&h.client_sent[0]), index(&h.client_sent[1]));
    assert_ne!(index(&h.client_sent[1]), index(&h.client_sent[2]));
    assert_ne!(ephemeral(&h.client_sent[0]), ephemeral(&h.client_sent[1]));
    assert_eq!(h.client.state(), State::Birth);
}

#[test]
fn unknown_client_key_creates_no_session() {
    let keys = Keys::new();
    let server_key = keys.server.public_key();
    let someone_else = secret(77).public_key();
    let mut h = Harness::with_configs(
        |clock| keys.client_config(clock, server_key),
        |clock| keys.server_config(clock, someone_else),
    );

    h.pump();

    assert_eq!(h.server.session_count(), 0);
    assert_eq!(h.server.counters().unknown_peer, 1);
    assert_eq!(h.server.counters().drops.get(DropReason::UnknownPeer), 1);
    assert_eq!(h.client.state(), State::Birth);
    h.assert_no_violations();
}

#[test]
fn wrong_psk_creates_no_session() {
    let keys = Keys::new();
    let server_key = keys.server.public_key();
    let client_key = keys.client.public_key();
    let mut h = Harness::with_configs(
        |clock| ClientConfig {
            psk: Psk::from_bytes([1; 32]),
            ..keys.client_config(clock, server_key)
        },
        |clock| keys.server_config(clock, client_key),
    );

    h.advance(Duration::from_secs(100));

    assert_eq!(h.client.state(), State::Terminated);
    assert!(h.client.stats().drops.get(DropReason::HandshakeFailed) >= 1);
    // IKpsk2 checks the PSK at the initiator: the server answered, but no session of it ever
    // received a byte.
    assert!(h.server_received.is_empty());
    h.assert_no_violations();
}

#[test]
fn replayed_handshake_init_creates_no_session_and_is_counted() {
    let mut h = Harness::attached();
    let mut replay = h.client_sent[0].clone();

    let result = h.deliver_to_server(&mut replay);
    h.pump();

    assert_eq!(
        result,
        EndpointInbound::Dropped(DropReason::HandshakeReplay)
    );
    assert_eq!(h.server.counters().sessions_created, 1);
    // The exact-replay filter catches it before any DH (the timestamp rule would after one).
    assert_eq!(h.server.counters().dos.init_replays, 1);
    assert_eq!(h.server.counters().dh_started, 1);
    assert_eq!(h.server.session_count(), 1);
    assert_eq!(h.client.state(), State::Attached);
    h.assert_no_violations();
}

#[test]
fn junk_that_fails_mac1_costs_no_dh() {
    let mut h = Harness::new();
    let mut init = h.take_client_init();
    for byte in &mut init[8..] {
        *byte = byte.wrapping_mul(7).wrapping_add(3);
    }

    let result = h.deliver_to_server(&mut init);

    assert_eq!(result, EndpointInbound::Dropped(DropReason::Mac1Invalid));
    assert_eq!(h.server.counters().mac1_rejected, 1);
    assert_eq!(h.server.counters().dh_started, 0);
    assert_eq!(h.server.session_count(), 0);
}

#[test]
fn any_flipped_byte_in_handshake_init_creates_no_session() {
    let mut h = Harness::new();
    let init = h.take_client_init();

    // MAC2 (the last 16 bytes) is only checked under load (docs/protocol.md §5).
    for i in 0..init.len() - MAC_LEN {
        let mut flipped = init.clone();
        flipped[i] ^= 0x01;

        let result = h.deliver_to_server(&mut flipped);

        assert!(
            matches!(result, EndpointInbound::Dropped(_)),
            "byte {i}: {result:?}"
        );
    }
    assert_eq!(h.server.session_count(), 0);
    assert_eq!(h.server.counters().dh_started, 0);
    let mut original = init;
    assert_eq!(
        h.deliver_to_server(&mut original),
        EndpointInbound::Consumed
    );
}

#[test]
fn flipped_noise_byte_with_a_valid_mac1_fails_noise_and_creates_no_session() {
    let mut h = Harness::new();
    let init = h.take_client_init();
    let key = mac1_key(&h.server.public_key());
    let mac1_at = init.len() - 2 * MAC_LEN;
    // Every forgery here costs a DH on purpose: keep the cookie defence out of the way.
    h.server.set_dos_limits(crate::DosLimits {
        under_load_dh_per_sec: usize::MAX,
        ..crate::DosLimits::default()
    });

    for i in 8..mac1_at {
        let mut flipped = init.clone();
        flipped[i] ^= 0x80;
        let mac = mac1(&key, &flipped[..mac1_at]);
        flipped[mac1_at..mac1_at + MAC_LEN].copy_from_slice(&mac);

        let result = h.deliver_to_server(&mut flipped);

        assert!(matches!(result, EndpointInbound::Dropped(_)), "byte {i}");
    }
    assert_eq!(h.server.session_count(), 0);
    assert_eq!(h.server.counters().dh_started, (mac1_at - 8) as u64);
}

#[test]
fn any_flipped_byte_in_handshake_resp_leaves_the_client_unattached() {
    let mut h = Harness::new();
    let mut init = h.take_client_init();
    h.deliver_to_server(&mut init);
    let mut buf = Vec::new();
    let t = h.server.poll_transmit(h.now, &mut buf).unwrap();
    let resp = buf[..t.len].to_vec();

    for i in 0..resp.len() {
        let mut flipped = resp.clone();
        flipped[i] ^= 0x01;

        let result = h.deliver_to_client(&mut flipped);

        assert!(matches!(result, Inbound::Dropped(_)), "byte {i}");
        assert_eq!(h.client.state(), State::Birth);
    }
    let mut original = resp;
    assert_eq!(h.deliver_to_client(&mut original), Inbound::Consumed);
    assert_eq!(h.client.state(), State::Attached);
    h.assert_no_violations();
}

#[test]
fn flipped_noise_byte_in_resp_with_a_valid_mac1_fails_the_handshake() {
    let mut h = Harness::new();
    let mut init = h.take_client_init();
    h.deliver_to_server(&mut init);
    let mut buf = Vec::new();
    let t = h.server.poll_transmit(h.now, &mut buf).unwrap();
    let mut resp = buf[..t.len].to_vec();
    let mac1_at = resp.len() - 2 * MAC_LEN;
    resp[20] ^= 0x80;
    let mac = mac1(
        &mac1_key(&Keys::new().client.public_key()),
        &resp[..mac1_at],
    );
    resp[mac1_at..mac1_at + MAC_LEN].copy_from_slice(&mac);

    let result = h.deliver_to_client(&mut resp);

    assert_eq!(result, Inbound::Dropped(DropReason::HandshakeFailed));
    assert_eq!(h.client.state(), State::Birth);
}

#[test]
fn a_new_birth_from_the_same_client_supersedes_its_old_session() {
    let mut h = Harness::attached();
    let (old, _) = h.server_session();
    h.advance(Duration::from_secs(1));
    let keys = Keys::new();
    let cfg = keys.client_config(h.clock, h.server.public_key());
    h.client = Session::connect(cfg, CLIENT_PATH, h.now, rng(11)).unwrap();
    h.client_events.clear();

    h.advance(Duration::from_millis(1));

    let (new, session) = h.server_session();
    assert_ne!(new, old);
    assert_eq!(session.state(), State::Attached);
    assert!(h.server_events.iter().any(|(handle, e)| *handle == old
        && matches!(e, Event::Transition(r) if r.reason == Reason::Superseded)));
    assert_eq!(h.server.counters().sessions_superseded, 1);
    h.assert_no_violations();
}

impl Harness {
    /// The client's queued HANDSHAKE_INIT, taken off the wire.
    fn take_client_init(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        let t = self.client.poll_transmit(self.now, &mut buf).unwrap();
        buf[..t.len].to_vec()
    }
}
