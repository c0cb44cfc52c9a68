//! The runtime drops `recv` / `recv_from` futures inside `tokio::select!`: nothing may be lost.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{link_to, listener, within};
use jvpn_transport::{Link, Listener};
use jvpn_transport_quic::QuicConfig;

#[tokio::test]
async fn a_link_recv_cancelled_by_a_timeout_loses_nothing() {
    let listener = listener(QuicConfig::default()).await;
    let link = link_to(&listener, QuicConfig::default()).await;
    let mut buf = [0u8; 64];
    link.send(b"hello").await.unwrap();
    let (_, remote) = within("recv_from", listener.recv_from(&mut buf))
        .await
        .unwrap();

    let cancelled = tokio::time::timeout(Duration::from_millis(20), link.recv(&mut buf)).await;
    assert!(cancelled.is_err(), "nothing was sent yet");
    listener.send_to(b"after", remote).await.unwrap();

    let len = within("recv", link.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"after");
}

#[tokio::test]
async fn a_listener_recv_from_cancelled_by_a_timeout_loses_nothing() {
    let listener = listener(QuicConfig::default()).await;
    let link = link_to(&listener, QuicConfig::default()).await;
    let mut buf = [0u8; 64];

    let cancelled =
        tokio::time::timeout(Duration::from_millis(20), listener.recv_from(&mut buf)).await;
    assert!(cancelled.is_err(), "nothing was sent yet");
    link.send(b"after").await.unwrap();

    let (len, _) = within("recv_from", listener.recv_from(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf[..len], b"after");
}

/// Receives `count` numbered datagrams while cancelling the receive future every time another
/// branch of a `select!` is ready first, as the runtime's driver does.
async fn receive_while_cancelling<F, Fut>(count: u32, mut recv: F) -> BTreeSet<u32>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = [u8; 4]>,
{
    let mut got = BTreeSet::new();
    let mut cancellations = 0u32;
    within("every datagram", async {
        while got.len() < count as usize {
            tokio::select! {
                bytes = recv() => { got.insert(u32::from_be_bytes(bytes)); }
                () = tokio::task::yield_now() => { cancellations += 1; }
            }
        }
    })
    .await;
    assert!(cancellations > 0, "the receive future was never cancelled");
    got
}

#[tokio::test]
async fn link_recv_futures_dropped_while_datagrams_arrive_lose_none() {
    let listener = listener(QuicConfig::default()).await;
    let link = link_to(&listener, QuicConfig::default()).await;
    let mut buf = [0u8; 64];
    link.send(b"hello").await.unwrap();
    let (_, remote) = within("recv_from", listener.recv_from(&mut buf))
        .await
        .unwrap();
    let sender = async {
        for i in 0u32..200 {
            listener.send_to(&i.to_be_bytes(), remote).await.unwrap();
            if i % 20 == 0 {
                tokio::task::yield_now().await;
            }
        }
    };

    let receiver = receive_while_cancelling(200, || async {
        let mut buf = [0u8; 4];
        let len = link.recv(&mut buf).await.unwrap();
        assert_eq!(len, 4);
        buf
    });
    let ((), got) = tokio::join!(sender, receiver);

    assert_eq!(got, (0..200).collect());
}

#[tokio::test]
async fn listener_recv_from_futures_dropped_while_datagrams_arrive_lose_none() {
    let listener = listener(QuicConfig::default()).await;
    let link = link_to(&listener, QuicConfig::default()).await;
    let sender = async {
        for i in 0u32..200 {
            link.send(&i.to_be_bytes()).await.unwrap();
            if i % 20 == 0 {
                tokio::task::yield_now().await;
            }
        }
    };

    let receiver = receive_while_cancelling(200, || async {
        let mut buf = [0u8; 4];
        let (len, _) = listener.recv_from(&mut buf).await.unwrap();
        assert_eq!(len, 4);
        buf
    });
    let ((), got) = tokio::join!(sender, receiver);

    assert_eq!(got, (0..200).collect());
}
