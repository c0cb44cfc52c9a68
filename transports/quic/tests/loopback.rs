//! The QUIC transport over loopback: datagrams both ways, many sizes, several clients, limits.

mod common;

use std::io;

use common::{XorShift, link_to, listener, url, within};
use jvpn_transport::{Link, Listener, Remote, Transport, TransportError, TransportKind};
use jvpn_transport_quic::{GUARANTEED_DATAGRAM_SIZE, QuicConfig, QuicTransport};

#[tokio::test]
async fn link_and_listener_exchange_datagrams_both_ways() {
    let listener = listener(QuicConfig::default()).await;
    let link = link_to(&listener, QuicConfig::default()).await;
    let mut buf = [0u8; 2048];

    link.send(b"hello server").await.unwrap();
    let (len, remote) = within("recv_from", listener.recv_from(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf[..len], b"hello server");
    assert!(remote.conn >= 1, "connection ids start at 1: {remote:?}");
    assert_eq!(
        remote.addr.port(),
        link.info().local_addr.unwrap().port(),
        "the remote is the link's socket"
    );

    listener.send_to(b"hello client", remote).await.unwrap();
    let len = within("recv", link.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"hello client");
}

#[tokio::test]
async fn link_info_describes_an_unreliable_quic_link_sized_by_the_connection() {
    let listener = listener(QuicConfig::default()).await;
    let link = link_to(&listener, QuicConfig::default()).await;

    let info = link.info();

    assert_eq!(info.kind, TransportKind::Quic);
    assert!(!info.reliable);
    assert_eq!(info.remote_addr, Some(listener.local_addr().unwrap()));
    assert_eq!(
        Some(info.max_datagram_size),
        link.connection().max_datagram_size()
    );
    assert!(
        info.max_datagram_size >= GUARANTEED_DATAGRAM_SIZE,
        "{} < {GUARANTEED_DATAGRAM_SIZE}",
        info.max_datagram_size
    );
    assert_eq!(listener.max_datagram_size(), GUARANTEED_DATAGRAM_SIZE);
    assert_eq!(listener.kind(), TransportKind::Quic);
    assert_eq!(QuicTransport::default().kind(), TransportKind::Quic);
}

#[tokio::test]
async fn a_thousand_datagrams_of_random_sizes_arrive_intact() {
    let listener = listener(QuicConfig::default()).await;
    let link = link_to(&listener, QuicConfig::default()).await;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut sent = Vec::new();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 65536];

    // Paced in batches of 25 (about 30 KB, far below every buffer on the way), so that nothing
    // on an idle loopback has a reason to drop a datagram and the test is deterministic.
    for _ in 0..1000 / 25 {
        for _ in 0..25 {
            // The limit may grow while the test runs (path MTU discovery): read it each time.
            let max = link.info().max_datagram_size as u64;
            let len = 1 + (rng.next() % max) as usize;
            let datagram: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            link.send(&datagram).await.unwrap();
            sent.push(datagram);
        }
        for _ in 0..25 {
            let (len, _) = within("a datagram of the batch", listener.recv_from(&mut buf))
                .await
                .unwrap();
            received.push(buf[..len].to_vec());
        }
    }

    sent.sort();
    received.sort();
    assert_eq!(received.len(), 1000);
    assert!(
        received == sent,
        "the multisets of sent and received datagrams differ"
    );
}

#[tokio::test]
async fn two_clients_get_distinct_remotes_and_replies_reach_the_right_one() {
    let listener = listener(QuicConfig::default()).await;
    let alice = link_to(&listener, QuicConfig::default()).await;
    let bob = link_to(&listener, QuicConfig::default()).await;
    let mut buf = [0u8; 2048];

    alice.send(b"from alice").await.unwrap();
    let (len, from_alice) = within("alice", listener.recv_from(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"from alice");
    bob.send(b"from bob").await.unwrap();
    let (len, from_bob) = within("bob", listener.recv_from(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"from bob");
    assert_ne!(from_alice, from_bob);
    assert_ne!(from_alice.conn, from_bob.conn);
    assert_eq!(listener.connection_count(), 2);

    listener.send_to(b"to bob", from_bob).await.unwrap();
    listener.send_to(b"to alice", from_alice).await.unwrap();

    let len = within("bob's reply", bob.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"to bob");
    let len = within("alice's reply", alice.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"to alice");
}

#[tokio::test]
async fn a_datagram_above_the_current_maximum_is_refused_not_dropped() {
    let listener = listener(QuicConfig::default()).await;
    let link = link_to(&listener, QuicConfig::default()).await;
    let too_big = vec![0u8; link.info().max_datagram_size + 1];

    let send = link.send(&too_big).await.unwrap_err();
    let try_send = link.try_send(&too_big).unwrap_err();

    assert_eq!(send.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(try_send.kind(), io::ErrorKind::InvalidInput);
    assert!(send.to_string().contains("exceeds"), "{send}");

    link.send(b"x").await.unwrap();
    let mut buf = [0u8; 64];
    let (_, remote) = within("recv_from", listener.recv_from(&mut buf))
        .await
        .unwrap();
    let huge = vec![0u8; 70_000];
    let err = listener.send_to(&huge, remote).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_datagram_longer_than_the_receive_buffer_is_an_error_not_a_truncation() {
    let listener = listener(QuicConfig::default()).await;
    let link = link_to(&listener, QuicConfig::default()).await;

    link.send(&[7u8; 100]).await.unwrap();
    let mut small = [0u8; 10];
    let err = within("recv_from", listener.recv_from(&mut small))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn try_send_works_without_waiting() {
    let listener = listener(QuicConfig::default()).await;
    let link = link_to(&listener, QuicConfig::default()).await;
    let mut buf = [0u8; 64];

    link.try_send(b"quick").unwrap();
    let (len, remote) = within("recv_from", listener.recv_from(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf[..len], b"quick");

    listener.try_send_to(b"back", remote).unwrap();
    let len = within("recv", link.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"back");
}

#[tokio::test]
async fn sending_to_an_unknown_connection_is_not_connected() {
    let listener = listener(QuicConfig::default()).await;
    let nobody = Remote {
        addr: "127.0.0.1:9".parse().unwrap(),
        conn: 424_242,
    };

    let err = listener.send_to(b"hello?", nobody).await.unwrap_err();

    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    assert!(err.to_string().contains("reconnect"), "{err}");
}

#[tokio::test]
async fn a_url_of_another_kind_is_a_kind_mismatch() {
    let transport = QuicTransport::default();

    let err = transport
        .connect(&url("udp://127.0.0.1:1"))
        .await
        .unwrap_err();

    assert!(matches!(err, TransportError::KindMismatch { .. }), "{err}");
}

#[tokio::test]
async fn the_transport_trait_objects_work_like_the_concrete_types() {
    let transport: Box<dyn Transport> = Box::new(QuicTransport::default());
    let listener = within("listen", transport.listen(&url("quic://127.0.0.1:0")))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let link = within(
        "connect",
        transport.connect(&url(&format!("quic://{addr}"))),
    )
    .await
    .unwrap();
    let mut buf = [0u8; 64];

    link.send(b"boxed").await.unwrap();
    let (len, _) = within("recv_from", listener.recv_from(&mut buf))
        .await
        .unwrap();

    assert_eq!(&buf[..len], b"boxed");
}
