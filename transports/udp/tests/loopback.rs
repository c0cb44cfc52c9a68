//! The UDP transport over loopback: datagrams both ways, many sizes, bind errors, truncation.

use std::io;

use jvpn_transport::{Link, Listener, Remote, Transport, TransportError, TransportUrl};
use jvpn_transport_udp::{MAX_DATAGRAM_V4, MAX_DATAGRAM_V6, UdpTransport};

async fn listener_and_link(host: &str) -> (Box<dyn Listener>, Box<dyn Link>) {
    let transport = UdpTransport::default();
    let listener = transport
        .listen(&TransportUrl::parse(&format!("udp://{host}:0")).unwrap())
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let link = transport
        .connect(&TransportUrl::parse(&format!("udp://{host}:{port}")).unwrap())
        .await
        .unwrap();
    (listener, link)
}

/// A small deterministic generator, so failures replay (sizes and contents only).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test]
async fn listener_and_link_exchange_datagrams_both_ways() {
    let (listener, link) = listener_and_link("127.0.0.1").await;
    let mut buf = [0u8; 2048];

    link.send(b"hello server").await.unwrap();
    let (len, remote) = listener.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..len], b"hello server");
    assert_eq!(remote.conn, 0);
    assert_eq!(
        Some(remote.addr),
        link.info()
            .local_addr
            .map(|a| { std::net::SocketAddr::new("127.0.0.1".parse().unwrap(), a.port()) })
    );

    listener.send_to(b"hello client", remote).await.unwrap();
    let len = link.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..len], b"hello client");
}

#[tokio::test]
async fn link_info_describes_an_unreliable_ipv4_udp_link() {
    let (listener, link) = listener_and_link("127.0.0.1").await;

    let info = link.info();

    assert_eq!(info.kind, jvpn_transport::TransportKind::Udp);
    assert_eq!(info.max_datagram_size, MAX_DATAGRAM_V4);
    assert_eq!(info.max_datagram_size, 1472);
    assert!(!info.reliable);
    assert_eq!(info.remote_addr, Some(listener.local_addr().unwrap()));
    assert!(info.local_addr.is_some());
    assert_eq!(listener.max_datagram_size(), 1472);
}

#[tokio::test]
async fn a_thousand_datagrams_of_random_sizes_arrive_intact() {
    let (listener, link) = listener_and_link("127.0.0.1").await;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut sent = Vec::new();
    let mut received = Vec::new();
    let mut buf = vec![0u8; MAX_DATAGRAM_V4];

    // In batches well below the socket buffer, so that loopback never has a reason to drop.
    for _ in 0..1000 / 25 {
        for _ in 0..25 {
            let len = 1 + (rng.next() % MAX_DATAGRAM_V4 as u64) as usize;
            let datagram: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            link.send(&datagram).await.unwrap();
            sent.push(datagram);
        }
        for _ in 0..25 {
            let (len, _) = listener.recv_from(&mut buf).await.unwrap();
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
async fn binding_an_address_in_use_gives_the_bind_error_with_the_fix() {
    let transport = UdpTransport::default();
    let first = transport
        .listen(&TransportUrl::parse("udp://127.0.0.1:0").unwrap())
        .await
        .unwrap();
    let addr = first.local_addr().unwrap();

    let err = transport
        .listen(&TransportUrl::parse(&format!("udp://{addr}")).unwrap())
        .await
        .unwrap_err();

    let TransportError::Bind {
        addr: failed,
        source,
    } = &err
    else {
        panic!("expected a Bind error, got {err:?}");
    };
    assert_eq!(*failed, addr);
    assert_eq!(source.kind(), io::ErrorKind::AddrInUse);
    let msg = err.to_string();
    assert!(msg.contains("address in use"), "{msg}");
    assert!(msg.contains(&addr.to_string()), "{msg}");
    assert!(msg.contains("--listen"), "{msg}");
}

#[tokio::test]
async fn a_datagram_larger_than_the_listener_buffer_is_an_error_not_a_partial_datagram() {
    let (listener, link) = listener_and_link("127.0.0.1").await;
    link.send(&[0xAB; 100]).await.unwrap();
    link.send(b"next").await.unwrap();
    let mut small = [0u8; 99];

    let err = listener.recv_from(&mut small).await.unwrap_err();
    let (len, _) = listener.recv_from(&mut small).await.unwrap();

    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(&small[..len], b"next", "the next datagram arrives whole");
}

#[tokio::test]
async fn a_datagram_larger_than_the_link_buffer_is_an_error_not_a_partial_datagram() {
    let (listener, link) = listener_and_link("127.0.0.1").await;
    link.send(b"hi").await.unwrap();
    let mut buf = [0u8; 16];
    let (_, remote) = listener.recv_from(&mut buf).await.unwrap();
    listener.send_to(&[1u8; 17], remote).await.unwrap();

    let err = link.recv(&mut buf).await.unwrap_err();

    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn a_datagram_exactly_as_long_as_the_buffer_is_accepted() {
    let (listener, link) = listener_and_link("127.0.0.1").await;
    link.send(&[5u8; 64]).await.unwrap();
    let mut exact = [0u8; 64];

    let (len, _) = listener.recv_from(&mut exact).await.unwrap();

    assert_eq!(len, 64);
    assert_eq!(exact, [5u8; 64]);
}

#[tokio::test]
async fn sending_more_than_the_maximum_datagram_size_is_refused() {
    let (listener, link) = listener_and_link("127.0.0.1").await;
    let too_big = vec![0u8; MAX_DATAGRAM_V4 + 1];
    let remote = Remote::connectionless(link.info().local_addr.unwrap());

    let from_link = link.send(&too_big).await.unwrap_err();
    let from_listener = listener.send_to(&too_big, remote).await.unwrap_err();

    assert_eq!(from_link.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(from_listener.kind(), io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn try_send_and_try_send_to_deliver_once_the_socket_is_known_writable() {
    // tokio learns writability from the first send; before that, try_* may say WouldBlock,
    // which the contract allows (the caller then falls back to the async send).
    let (listener, link) = listener_and_link("127.0.0.1").await;
    let mut buf = [0u8; 32];
    link.send(b"warm up").await.unwrap();
    let (_, remote) = listener.recv_from(&mut buf).await.unwrap();
    listener.send_to(b"warm up", remote).await.unwrap();
    link.recv(&mut buf).await.unwrap();

    link.try_send(b"fast path").unwrap();
    let (len, remote) = listener.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..len], b"fast path");
    listener.try_send_to(b"fast back", remote).unwrap();
    let len = link.recv(&mut buf).await.unwrap();

    assert_eq!(&buf[..len], b"fast back");
}

#[tokio::test]
async fn a_url_of_another_kind_is_refused() {
    let transport = UdpTransport::default();

    let err = transport
        .connect(&TransportUrl::parse("quic://127.0.0.1:1").unwrap())
        .await
        .unwrap_err();

    assert!(
        matches!(err, TransportError::KindMismatch { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn ipv6_loopback_links_use_the_ipv6_datagram_size() {
    let transport = UdpTransport::default();
    let Ok(listener) = transport
        .listen(&TransportUrl::parse("udp://[::1]:0").unwrap())
        .await
    else {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let link = transport
        .connect(&TransportUrl::parse(&format!("udp://[::1]:{port}")).unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 8];

    link.send(b"v6").await.unwrap();
    let (len, _) = listener.recv_from(&mut buf).await.unwrap();

    assert_eq!(&buf[..len], b"v6");
    assert_eq!(link.info().max_datagram_size, MAX_DATAGRAM_V6);
    assert_eq!(listener.max_datagram_size(), 1452);
}

#[tokio::test]
async fn a_dual_stack_listener_accepts_ipv4_links() {
    let transport = UdpTransport::default();
    let Ok(listener) = transport
        .listen(&TransportUrl::parse("udp://[::]:0").unwrap())
        .await
    else {
        eprintln!("no IPv6 here; skipping");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let link = transport
        .connect(&TransportUrl::parse(&format!("udp://127.0.0.1:{port}")).unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 8];

    link.send(b"v4").await.unwrap();
    let (len, remote) = listener.recv_from(&mut buf).await.unwrap();
    listener.send_to(b"ok", remote).await.unwrap();
    let back = link.recv(&mut buf).await.unwrap();

    assert_eq!(len, 2);
    assert_eq!(&buf[..back], b"ok");
}

#[tokio::test]
async fn a_send_after_an_icmp_port_unreachable_still_goes_out() {
    // A port with nobody listening: every datagram to it draws an ICMP port unreachable, which
    // the connected socket reports on the next call (ATTACKS.md S27: spoofed ICMP errors).
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let link = UdpTransport::default()
        .connect(&TransportUrl::parse(&format!("udp://127.0.0.1:{port}")).unwrap())
        .await
        .unwrap();

    let sends: Vec<io::Result<()>> = {
        let mut out = Vec::new();
        for _ in 0..5 {
            out.push(link.send(b"still here").await);
        }
        out
    };

    assert!(sends.iter().all(Result::is_ok), "{sends:?}");
}
