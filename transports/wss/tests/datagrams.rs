//! WSS links and listeners over loopback: datagrams both ways, order, many clients, cancel
//! safety, closing.

mod common;

use std::io;

use common::{LocalAddr, XorShift, connect, listen, within};
use jvpn_transport::{Link, Listener, TransportKind};
use jvpn_transport_wss::{MAX_DATAGRAM, WssConfig};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn link_and_listener_exchange_datagrams_both_ways() {
    let (listener, url) = listen(WssConfig::default()).await;
    let link = connect(WssConfig::default(), &url).await;
    let mut buf = vec![0u8; MAX_DATAGRAM];

    within(link.send(b"hello server")).await.unwrap();
    let (len, remote) = within(listener.recv_from(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"hello server");
    within(listener.send_to(b"hello client", remote))
        .await
        .unwrap();
    let len = within(link.recv(&mut buf)).await.unwrap();

    assert_eq!(&buf[..len], b"hello client");
    assert_ne!(remote.conn, 0);
    assert_eq!(Some(remote.addr), link.info().local_addr);
}

#[tokio::test]
async fn link_info_describes_a_reliable_wss_link() {
    let (listener, url) = listen(WssConfig::default()).await;
    let link = connect(WssConfig::default(), &url).await;

    let info = link.info();

    assert_eq!(info.kind, TransportKind::Wss);
    assert_eq!(info.max_datagram_size, 65_535);
    assert!(info.reliable);
    assert_eq!(info.remote_addr, Some(listener.local_addr_now()));
    assert_eq!(listener.kind(), TransportKind::Wss);
    assert_eq!(listener.max_datagram_size(), 65_535);
}

#[tokio::test]
async fn a_thousand_datagrams_of_random_sizes_arrive_intact_and_in_order() {
    let (listener, url) = listen(WssConfig::default()).await;
    let link = connect(WssConfig::default(), &url).await;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let sent: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| {
            let len = 1 + usize::try_from(rng.next() % MAX_DATAGRAM as u64).unwrap();
            let mut datagram = vec![0u8; len];
            datagram.fill_with(|| rng.next() as u8);
            datagram[..4.min(len)].copy_from_slice(&i.to_be_bytes()[..4.min(len)]);
            datagram
        })
        .collect();

    let sender = {
        let sent = sent.clone();
        tokio::spawn(async move {
            for datagram in &sent {
                link.send(datagram).await.unwrap();
            }
            link
        })
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut received = Vec::new();
    for _ in 0..sent.len() {
        let (len, _) = within(listener.recv_from(&mut buf)).await.unwrap();
        received.push(buf[..len].to_vec());
    }
    let _link = within(sender).await.unwrap();

    assert!(received == sent, "datagrams differ or arrived out of order");
}

#[tokio::test]
async fn two_clients_get_distinct_remotes_and_replies_reach_the_right_one() {
    let (listener, url) = listen(WssConfig::default()).await;
    let alice = connect(WssConfig::default(), &url).await;
    let bob = connect(WssConfig::default(), &url).await;
    let mut buf = [0u8; 64];

    within(alice.send(b"alice")).await.unwrap();
    let (len, from_alice) = within(listener.recv_from(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"alice");
    within(bob.send(b"bob")).await.unwrap();
    let (len, from_bob) = within(listener.recv_from(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"bob");
    listener.send_to(b"to bob", from_bob).await.unwrap();
    listener.send_to(b"to alice", from_alice).await.unwrap();

    assert_ne!(from_alice, from_bob);
    assert_ne!(from_alice.conn, from_bob.conn);
    let len = within(alice.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"to alice");
    let len = within(bob.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"to bob");
    assert_eq!(listener.connections(), 2);
}

#[tokio::test]
async fn a_recv_dropped_by_select_never_loses_a_datagram() {
    let (listener, url) = listen(WssConfig::default()).await;
    let link = connect(WssConfig::default(), &url).await;
    const COUNT: u32 = 500;
    let sender = tokio::spawn(async move {
        for i in 0..COUNT {
            link.send(&i.to_be_bytes()).await.unwrap();
            if i % 16 == 0 {
                tokio::task::yield_now().await;
            }
        }
        link
    });

    let mut buf = [0u8; 16];
    let mut received = Vec::new();
    within(async {
        while received.len() < COUNT as usize {
            // The yield wins whenever no datagram is ready, dropping the recv future.
            tokio::select! {
                result = listener.recv_from(&mut buf) => {
                    let (len, _) = result.unwrap();
                    received.push(u32::from_be_bytes(buf[..len].try_into().unwrap()));
                }
                () = tokio::task::yield_now() => {}
            }
        }
    })
    .await;
    let _link = within(sender).await.unwrap();

    assert_eq!(received, (0..COUNT).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_datagram_above_the_maximum_is_refused_on_send() {
    let (listener, url) = listen(WssConfig::default()).await;
    let link = connect(WssConfig::default(), &url).await;
    let big = vec![0u8; MAX_DATAGRAM + 1];
    let remote = jvpn_transport::Remote {
        addr: listener.local_addr_now(),
        conn: 1,
    };

    let from_link = link.send(&big).await.unwrap_err();
    let from_listener = listener.send_to(&big, remote).await.unwrap_err();

    assert_eq!(from_link.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(from_listener.kind(), io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn text_messages_are_ignored_and_binary_ones_delivered() {
    let (listener, _url) = listen(WssConfig::default()).await;
    let mut raw = common::raw_websocket(listener.local_addr_now(), "/jvpn").await;

    raw.write_all(&common::client_frame(0x1, b"text", 4))
        .await
        .unwrap();
    raw.write_all(&common::client_frame(0x2, b"datagram", 8))
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let (len, _) = within(listener.recv_from(&mut buf)).await.unwrap();

    assert_eq!(&buf[..len], b"datagram");
}

#[tokio::test]
async fn dropping_the_listener_aborts_the_link() {
    let (listener, url) = listen(WssConfig::default()).await;
    let link = connect(WssConfig::default(), &url).await;
    within(link.send(b"x")).await.unwrap();
    let mut buf = [0u8; 16];
    within(listener.recv_from(&mut buf)).await.unwrap();

    drop(listener);
    let error = within(link.recv(&mut buf)).await.unwrap_err();

    assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
    // Sends fail too, once the connection's writer has noticed.
    let send_error = within(async {
        loop {
            match link.send(b"y").await {
                Ok(()) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                Err(error) => return error,
            }
        }
    })
    .await;
    assert_eq!(send_error.kind(), io::ErrorKind::ConnectionAborted);
}

#[tokio::test]
async fn a_closed_link_is_forgotten_by_the_listener() {
    let (listener, url) = listen(WssConfig::default()).await;
    let link = connect(WssConfig::default(), &url).await;
    within(link.send(b"x")).await.unwrap();
    let mut buf = [0u8; 16];
    let (_, remote) = within(listener.recv_from(&mut buf)).await.unwrap();

    within(link.close()).await;
    drop(link);
    within(async {
        while listener.connections() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    let error = listener.send_to(b"late", remote).await.unwrap_err();

    assert_eq!(error.kind(), io::ErrorKind::NotConnected);
}

#[tokio::test]
async fn a_datagram_larger_than_the_receive_buffer_is_an_error_and_the_next_one_arrives() {
    let (listener, url) = listen(WssConfig::default()).await;
    let link = connect(WssConfig::default(), &url).await;
    within(link.send(&[7u8; 100])).await.unwrap();
    within(link.send(b"small")).await.unwrap();
    let mut small = [0u8; 16];

    let error = within(listener.recv_from(&mut small)).await.unwrap_err();
    let (len, _) = within(listener.recv_from(&mut small)).await.unwrap();

    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    assert_eq!(&small[..len], b"small");
}
