//! Attached sessions: data both ways, keepalives, paths, close, send errors.

use std::time::Duration;

use jvpn_wire::frame::MAX_DATA_PLAINTEXT;

use super::*;
use crate::{DropReason, SendError};

#[test]
fn datagrams_flow_both_ways_intact() {
    let mut h = Harness::attached();
    let (handle, _) = h.server_session();
    let sizes = [0, 1, 20, 1280, 1420, 9000];

    for (i, &len) in sizes.iter().enumerate() {
        h.client.send(&packet(i, len), h.now).unwrap();
        h.server.send(handle, &packet(100 + i, len), h.now).unwrap();
        h.pump();
    }

    let to_server: Vec<Vec<u8>> = h.server_received.iter().map(|(_, p)| p.clone()).collect();
    let expected_up: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &l)| packet(i, l))
        .collect();
    let expected_down: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &l)| packet(100 + i, l))
        .collect();
    assert_eq!(to_server, expected_up);
    assert_eq!(h.client_received, expected_down);
    assert!(h.server_received.iter().all(|(s, _)| *s == handle));
    assert_eq!(h.client.stats().packets_out, sizes.len() as u64);
    assert_eq!(h.client.stats().packets_in, sizes.len() as u64);
    assert_eq!(h.client.stats().drops.total(), 0);
    h.assert_no_violations();
}

#[test]
fn packets_sent_during_birth_are_delivered_after_attach() {
    let mut h = Harness::new();
    h.client.send(b"early", h.now).unwrap();

    h.pump();

    assert_eq!(h.server_received.len(), 1);
    assert_eq!(h.server_received[0].1, b"early");
}

#[test]
fn a_replayed_data_frame_is_dropped_and_counted() {
    let mut h = Harness::attached();
    h.client.send(b"once", h.now).unwrap();
    h.pump();
    let mut copy = h.client_sent.last().unwrap().clone();

    let result = h.deliver_to_server(&mut copy);

    assert_eq!(result, EndpointInbound::Dropped(DropReason::Replayed));
    assert_eq!(h.server_received.len(), 1);
    assert_eq!(
        h.server_session().1.stats().drops.get(DropReason::Replayed),
        1
    );
}

#[test]
fn keepalives_flow_when_idle() {
    let mut h = Harness::attached();

    h.advance(Duration::from_secs(60));

    assert!(h.client.stats().keepalives_sent >= 5);
    assert!(h.server_session().1.stats().keepalives_sent >= 5);
    assert_eq!(h.client.state(), State::Attached);
    assert_eq!(h.server_session().1.state(), State::Attached);
    assert_eq!(h.client_transitions().len(), 1);
    h.assert_no_violations();
}

#[test]
fn data_from_an_unexpected_path_is_dropped_and_counted() {
    let mut h = Harness::attached();
    h.server_sees_path = PathId(99);
    h.client.send(b"from elsewhere", h.now).unwrap();

    h.pump();

    assert!(h.server_received.is_empty());
    assert_eq!(
        h.server_drops,
        [EndpointInbound::Dropped(DropReason::WrongPath)]
    );
    let (_, session) = h.server_session();
    assert_eq!(session.stats().drops.get(DropReason::WrongPath), 1);
    assert_eq!(session.bound_path(), Some(SERVER_PATH));
    assert_eq!(session.epoch(), 1);
    h.assert_no_violations();
}

#[test]
fn a_frame_for_an_unknown_receiver_is_dropped_by_the_endpoint() {
    let mut h = Harness::attached();
    h.client.send(b"x", h.now).unwrap();
    let mut buf = Vec::new();
    let t = h.client.poll_transmit(h.now, &mut buf).unwrap();
    let mut frame = buf[..t.len].to_vec();
    frame[4..8].copy_from_slice(&0xdead_beef_u32.to_be_bytes());

    let result = h.deliver_to_server(&mut frame);

    assert_eq!(
        result,
        EndpointInbound::Dropped(DropReason::UnknownReceiver)
    );
    assert_eq!(
        h.server.counters().drops.get(DropReason::UnknownReceiver),
        1
    );
}

#[test]
fn close_terminates_both_sides() {
    let mut h = Harness::attached();
    let (handle, _) = h.server_session();

    h.client.close(h.now);
    h.pump();

    assert_eq!(h.client.state(), State::Terminated);
    assert_eq!(
        h.client_transitions().last(),
        Some(&(State::Attached, State::Terminated, Reason::Closed))
    );
    assert!(h.server_events.iter().any(|(s, e)| *s == handle
        && matches!(e, Event::Transition(r)
            if (r.from, r.to, r.reason) == (State::Attached, State::Terminated, Reason::PeerClosed))));
    assert_eq!(
        h.server.session_count(),
        0,
        "drained TERMINATED sessions are removed"
    );
    assert_eq!(h.client.poll_timeout(), None);
    h.assert_no_violations();
}

#[test]
fn server_close_terminates_the_client_with_peer_closed() {
    let mut h = Harness::attached();
    let (handle, _) = h.server_session();

    assert!(h.server.close(handle, h.now));
    h.pump();

    assert_eq!(
        h.client_transitions().last(),
        Some(&(State::Attached, State::Terminated, Reason::PeerClosed))
    );
    assert_eq!(h.server.session_count(), 0);
    h.assert_no_violations();
}

#[test]
fn send_errors_name_the_cause() {
    let mut h = Harness::new();
    let limit = Policy::default().send_queue_packets;
    for i in 0..limit {
        h.client.send(&packet(i, 10), h.now).unwrap();
    }

    let full = h.client.send(b"one more", h.now);
    let too_large = h.client.send(&vec![0; MAX_DATA_PLAINTEXT + 1], h.now);
    h.client.close(h.now);
    let terminated = h.client.send(b"late", h.now);

    assert_eq!(full, Err(SendError::QueueFull));
    assert!(matches!(too_large, Err(SendError::TooLarge { .. })));
    assert_eq!(terminated, Err(SendError::Terminated));
    assert_eq!(
        h.server.send(SessionHandle(42), b"x", h.now),
        Err(SendError::UnknownSession)
    );
}

#[test]
fn steady_state_sending_reuses_buffers() {
    let mut h = Harness::attached();
    let mut buf = Vec::with_capacity(2048);
    h.client.send(&packet(0, 1400), h.now).unwrap();
    h.client.poll_transmit(h.now, &mut buf).unwrap();
    let capacity = buf.capacity();
    let pointer = buf.as_ptr();

    for i in 1..100 {
        h.client.send(&packet(i, 1400), h.now).unwrap();
        h.client.poll_transmit(h.now, &mut buf).unwrap();
    }

    assert_eq!(buf.capacity(), capacity);
    assert_eq!(buf.as_ptr(), pointer);
    assert_eq!(h.client.queued_packets(), 0);
}

#[test]
fn a_probe_is_answered_through_the_tunnel_and_reports_its_round_trip() {
    let mut h = Harness::attached();
    h.drain_events();
    h.client_events.clear();

    let seq = h.client.probe(h.now).expect("attached sessions can probe");
    h.pump();

    let acked: Vec<u32> = h
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::ProbeAcked { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(acked, vec![seq]);
    assert_eq!(h.client.stats().drops.total(), 0);
    h.assert_no_violations();
}

#[test]
fn a_session_without_a_binding_cannot_probe() {
    let mut h = Harness::new();
    assert_eq!(h.client.probe(h.now), None);
}

#[test]
fn the_server_holds_data_until_the_client_proves_it_has_the_keys() {
    let mut h = Harness::new();
    let mut buf = Vec::new();
    let init = h
        .client
        .poll_transmit(h.now, &mut buf)
        .expect("the init is queued");
    let mut init = buf[..init.len].to_vec();
    h.deliver_to_server(&mut init);
    let (handle, _) = h.server_session();

    h.server.send(handle, &packet(1, 100), h.now).unwrap();
    let mut out = Vec::new();
    while let Some(t) = h.server.poll_transmit(h.now, &mut buf) {
        out.push(buf[..t.len].to_vec());
    }

    assert_eq!(
        out.len(),
        1,
        "only the handshake response leaves before confirmation"
    );
    assert_eq!(
        jvpn_wire::peek_type(&out[0]).unwrap(),
        jvpn_wire::MessageType::HandshakeResp
    );
    // The response arrives; the client's first frame confirms the keys and the data follows.
    h.deliver_to_client(&mut out[0]);
    h.pump();
    assert_eq!(h.client_received, vec![packet(1, 100)]);
    h.assert_no_violations();
}
