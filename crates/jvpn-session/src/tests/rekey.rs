//! Rekeying: by packet count, by age, on the server's request; never a transition, no loss.

use std::time::Duration;

use crate::session::keys::KeyLimits;

use super::*;

fn low_limits() -> KeyLimits {
    KeyLimits {
        rekey_after_messages: 50,
        reject_after_messages: 100,
        ..KeyLimits::default()
    }
}

#[test]
fn rekey_after_the_message_limit_keeps_traffic_flowing_with_no_loss() {
    let mut h = Harness::attached();
    h.client.set_key_limits(low_limits());
    h.server.set_key_limits(low_limits());
    let (handle, _) = h.server_session();
    let total = 1_000;

    for batch in 0..(total / 10) {
        for i in 0..10 {
            let n = batch * 10 + i;
            h.client.send(&packet(n, 64), h.now).unwrap();
            h.server
                .send(handle, &packet(n + total, 64), h.now)
                .unwrap();
        }
        h.pump();
        h.advance(Duration::from_millis(10));
    }

    let up: Vec<Vec<u8>> = h.server_received.iter().map(|(_, p)| p.clone()).collect();
    let expected_up: Vec<Vec<u8>> = (0..total).map(|n| packet(n, 64)).collect();
    let expected_down: Vec<Vec<u8>> = (0..total).map(|n| packet(n + total, 64)).collect();
    assert_eq!(up, expected_up);
    assert_eq!(h.client_received, expected_down);
    assert!(h.client.stats().handshakes >= 10, "{:?}", h.client.stats());
    assert!(h.server.counters().rekeys >= 10);
    assert_eq!(h.client.epoch(), 1);
    assert_eq!(
        h.client_transitions().len(),
        1,
        "a rekey is not a transition"
    );
    h.assert_no_violations();
}

#[test]
fn rekey_after_the_key_age_happens_without_a_transition() {
    let mut h = Harness::attached();

    h.advance(Policy::default().rekey_after + Duration::from_secs(1));

    assert_eq!(h.client.stats().handshakes, 2);
    assert!(
        h.client_events
            .iter()
            .any(|e| matches!(e, Event::Rekeyed { epoch: 1, .. }))
    );
    assert_eq!(h.server.counters().rekeys, 1);
    assert_eq!(h.client.state(), State::Attached);
    assert_eq!(h.client_transitions().len(), 1);
    h.assert_no_violations();
}

#[test]
fn sessions_stay_attached_for_many_key_lifetimes() {
    let mut h = Harness::attached();
    let (handle, _) = h.server_session();

    for i in 0..10 {
        h.advance(Duration::from_secs(60));
        h.client.send(&packet(i, 100), h.now).unwrap();
        h.server.send(handle, &packet(i, 100), h.now).unwrap();
        h.pump();
    }

    assert_eq!(h.client.state(), State::Attached);
    assert_eq!(h.server_session().1.state(), State::Attached);
    assert_eq!(h.server_received.len(), 10);
    assert_eq!(h.client_received.len(), 10);
    h.assert_no_violations();
}

#[test]
fn the_server_requests_a_rekey_when_its_send_key_nears_the_limit() {
    let mut h = Harness::attached();
    h.server.set_key_limits(low_limits());
    let (handle, _) = h.server_session();

    for n in 0..60 {
        h.server.send(handle, &packet(n, 32), h.now).unwrap();
        h.pump();
    }

    assert_eq!(h.client.stats().handshakes, 2);
    assert_eq!(h.server.counters().rekeys, 1);
    assert_eq!(h.client_received.len(), 60);
    h.assert_no_violations();
}

#[test]
fn frames_sealed_under_the_old_key_still_open_after_a_rekey() {
    let mut h = Harness::attached();
    let (handle, _) = h.server_session();
    h.server.send(handle, b"in flight", h.now).unwrap();
    let mut buf = Vec::new();
    let t = h.server.poll_transmit(h.now, &mut buf).unwrap();
    let mut in_flight = buf[..t.len].to_vec();
    h.advance(Policy::default().rekey_after + Duration::from_secs(1));
    assert_eq!(h.client.stats().handshakes, 2);

    let result = h.deliver_to_client(&mut in_flight);

    assert!(matches!(result, Inbound::Inner(_)), "{result:?}");
    assert_eq!(
        h.client_received.last().map(Vec::as_slice),
        Some(&b"in flight"[..])
    );
}
