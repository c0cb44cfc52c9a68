//! Anti-amplification: an unvalidated path gets at most three times the bytes it sent; a path
//! is validated by an authenticated frame on the binding (docs/protocol.md §5).

use super::*;
use crate::DropReason;

/// Every datagram the server sends now, with its path and its length.
fn sent_lengths(server: &mut Endpoint, now: Instant) -> Vec<(PathId, usize)> {
    drain(server, now)
        .into_iter()
        .map(|(p, d)| (p, d.len()))
        .collect()
}

#[test]
fn a_server_that_would_send_more_than_three_times_to_an_unvalidated_path_stops_at_three_times_exactly()
 {
    let mut h = Harness::new();
    let path = PathId(300);
    let mut junk = [0xffu8; 100];
    let received = h.server.handle_datagram(path, &mut junk, h.now);
    for _ in 0..10 {
        h.server.queue_stateless_for_test(path, vec![7; 50]);
    }

    let sent = sent_lengths(&mut h.server, h.now);

    assert_eq!(received, EndpointInbound::Dropped(DropReason::Malformed));
    let bytes: usize = sent.iter().map(|(_, len)| len).sum();
    assert_eq!(bytes, 300, "exactly 3 × 100 bytes");
    assert_eq!(sent.len(), 6);
    let dos = &h.server.counters().dos;
    assert_eq!(dos.amplification_withheld, 4);
    assert_eq!(dos.amplification_withheld_bytes, 200);
}

#[test]
fn a_path_the_server_never_heard_from_gets_nothing() {
    let mut h = Harness::new();
    h.server.queue_stateless_for_test(PathId(301), vec![7; 10]);

    let sent = sent_lengths(&mut h.server, h.now);

    assert!(sent.is_empty());
    assert_eq!(h.server.counters().dos.amplification_withheld, 1);
}

#[test]
fn the_clients_first_authenticated_frame_validates_its_path_and_lifts_the_limit() {
    let mut h = Harness::attached();
    let handshake_bytes: usize = h.client_sent.iter().map(Vec::len).sum();
    h.client.send(b"first", h.now).unwrap();
    h.pump();
    let validated = h.server.path_validated(SERVER_PATH);
    let (handle, _) = h.server_session();
    let server_sent_before: usize = h.server_sent.iter().map(Vec::len).sum();

    for i in 0..20 {
        h.server.send(handle, &packet(i, 1000), h.now).unwrap();
    }
    h.pump();

    assert!(validated);
    let client_sent: usize = h.client_sent.iter().map(Vec::len).sum();
    let server_sent: usize = h.server_sent.iter().map(Vec::len).sum();
    assert!(
        server_sent - server_sent_before > 3 * client_sent,
        "{server_sent} bytes down for {client_sent} up ({handshake_bytes} in the handshake)"
    );
    assert_eq!(h.client_received.len(), 20);
    assert_eq!(h.server.counters().dos.amplification_withheld, 0);
    h.assert_no_violations();
}

#[test]
fn the_handshake_response_fits_the_budget_of_its_initiation_before_any_validation() {
    let mut h = Harness::new();

    h.pump();

    assert_eq!(h.client.state(), State::Attached);
    assert!(h.server_sent[0].len() <= h.client_sent[0].len());
    assert_eq!(h.server.counters().dos.amplification_withheld, 0);
}

#[test]
fn data_from_another_address_does_not_validate_it() {
    let mut h = Harness::attached();
    h.client.send(b"first", h.now).unwrap();
    h.pump();
    h.server_sees_path = PathId(11);

    h.client.send(b"from a rebound NAT port", h.now).unwrap();
    h.pump();

    assert!(h.server.path_validated(SERVER_PATH));
    assert!(!h.server.path_validated(PathId(11)));
    assert_eq!(
        h.server_drops.last(),
        Some(&EndpointInbound::Dropped(DropReason::WrongPath))
    );
}

#[test]
fn a_committed_reattach_moves_the_validation_to_the_new_path() {
    let mut h = Harness::attached();
    h.client.send(b"first", h.now).unwrap();
    h.pump();
    let new_path = PathId(2);
    let new_server_path = PathId(102);
    h.advance(Policy::default().min_switch_interval);

    h.client
        .start_rebind(new_path, Reason::PlannedSwitch, h.now);
    h.pump();

    assert_eq!(h.server_session().1.bound_path(), Some(new_server_path));
    assert!(h.server.path_validated(new_server_path));
    assert!(!h.server.path_validated(SERVER_PATH));
    assert_eq!(h.server.counters().dos.amplification_withheld, 0);
    h.assert_no_violations();
}
