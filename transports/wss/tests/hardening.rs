//! What a WSS listener shows to strangers and how it bounds them (attack scenarios S22, S23):
//! the web page, TLS 1.3 only, pinning, oversized frames, the pre-auth deadline and the caps.

mod common;

use std::time::Duration;

use common::{LocalAddr, connect, listen, within};
use jvpn_transport::{Link, Listener, TransportError};
use jvpn_transport_wss::{WssConfig, WssError, WssTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn get(addr: std::net::SocketAddr, request: &str) -> String {
    let mut tls = common::raw_tls(addr, &[&rustls::version::TLS13])
        .await
        .unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    within(tls.read_to_end(&mut answer)).await.unwrap();
    String::from_utf8(answer).unwrap()
}

#[tokio::test]
async fn a_plain_https_get_on_another_path_gets_the_web_page() {
    let (listener, _url) = listen(WssConfig::default()).await;

    let answer = get(
        listener.local_addr_now(),
        "GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;

    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("It works!"), "{answer}");
    assert!(!answer.to_lowercase().contains("jvpn"), "{answer}");
    assert_eq!(listener.stats().pages_served, 1);
}

#[tokio::test]
async fn a_get_without_upgrade_on_the_jvpn_path_gets_the_same_page() {
    let (listener, _url) = listen(WssConfig::default()).await;

    let answer = get(
        listener.local_addr_now(),
        "GET /jvpn HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;

    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("It works!"), "{answer}");
}

#[tokio::test]
async fn a_link_to_another_path_is_refused() {
    let (listener, url) = listen(WssConfig::default()).await;
    let mut other = url.clone();
    other.path = Some("/elsewhere".into());

    let error = within(WssTransport::default().connect_wss(&other))
        .await
        .unwrap_err();

    assert!(error.to_string().contains("WebSocket upgrade"), "{error}");
    assert_eq!(listener.stats().upgraded, 0);
}

#[tokio::test]
async fn a_tls12_only_client_is_refused() {
    let (listener, _url) = listen(WssConfig::default()).await;

    let result = within(common::raw_tls(
        listener.local_addr_now(),
        &[&rustls::version::TLS12],
    ))
    .await;

    assert!(result.is_err(), "a TLS 1.2 handshake succeeded");
}

#[tokio::test]
async fn a_wrong_pin_fails_and_the_right_pin_works() {
    let (listener, url) = listen(WssConfig::default()).await;
    let mut wrong = listener.cert_sha256();
    wrong[0] ^= 1;

    let error = within(
        WssTransport::new(WssConfig {
            pin_sha256: Some(wrong),
            ..WssConfig::default()
        })
        .connect_wss(&url),
    )
    .await
    .unwrap_err();
    let pinned = connect(
        WssConfig {
            pin_sha256: Some(listener.cert_sha256()),
            ..WssConfig::default()
        },
        &url,
    )
    .await;

    assert!(
        matches!(&error, TransportError::Other(e) if e.downcast_ref::<WssError>().is_some_and(|e| matches!(e, WssError::PinMismatch { .. }))),
        "{error:?}"
    );
    assert!(error.to_string().contains("pinned"), "{error}");
    within(pinned.send(b"pinned")).await.unwrap();
    let mut buf = [0u8; 16];
    let (len, _) = within(listener.recv_from(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"pinned");
}

#[tokio::test]
async fn a_message_over_the_cap_closes_the_connection_with_1009_from_its_header_alone() {
    let (listener, _url) = listen(WssConfig::default()).await;
    let mut raw = common::raw_websocket(listener.local_addr_now(), "/jvpn").await;

    // A binary frame announcing 1 MiB, of which only 16 bytes are ever sent: the server can
    // only answer by judging the length header, before buffering any payload.
    raw.write_all(&common::client_frame(0x2, &[0u8; 16], 1 << 20))
        .await
        .unwrap();
    let (opcode, payload) = within(common::read_server_frame(&mut raw)).await;

    assert_eq!(opcode, 0x8, "expected a close frame");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1009);
    let mut rest = Vec::new();
    // Then the server closes the connection.
    let _ = within(raw.read_to_end(&mut rest)).await;
    within(async {
        while listener.connections() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_message_just_under_the_cap_is_delivered() {
    let (listener, _url) = listen(WssConfig::default()).await;
    let mut raw = common::raw_websocket(listener.local_addr_now(), "/jvpn").await;
    let datagram = vec![5u8; 65_535];

    raw.write_all(&common::client_frame(0x2, &datagram, 65_535))
        .await
        .unwrap();
    let mut buf = vec![0u8; 65_535];
    let (len, _) = within(listener.recv_from(&mut buf)).await.unwrap();

    assert_eq!(&buf[..len], &datagram[..]);
}

fn short_deadline() -> WssConfig {
    WssConfig {
        pre_auth_deadline: Duration::from_millis(300),
        ..WssConfig::default()
    }
}

/// Waits until the server closes `tcp` (end of stream or reset).
async fn closed_by_server(tcp: &mut TcpStream) {
    let mut buf = [0u8; 64];
    loop {
        match within(tcp.read(&mut buf)).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_dropped_at_the_pre_auth_deadline() {
    let (listener, _url) = listen(short_deadline()).await;
    let mut tcp = TcpStream::connect(listener.local_addr_now()).await.unwrap();

    closed_by_server(&mut tcp).await;

    assert_eq!(listener.stats().preauth_timeouts, 1);
}

#[tokio::test]
async fn a_client_that_stops_after_tls_is_dropped_at_the_pre_auth_deadline() {
    let (listener, _url) = listen(short_deadline()).await;
    let mut tls = common::raw_tls(listener.local_addr_now(), &[&rustls::version::TLS13])
        .await
        .unwrap();
    tls.write_all(b"GET /jvpn HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();

    let mut buf = Vec::new();
    let _ = within(tls.read_to_end(&mut buf)).await;

    assert!(buf.is_empty());
    assert_eq!(listener.stats().preauth_timeouts, 1);
}

#[tokio::test]
async fn connections_over_the_per_ip_pre_auth_cap_are_closed_at_once() {
    let (listener, url) = listen(WssConfig {
        max_preauth_per_ip: 2,
        ..WssConfig::default()
    })
    .await;
    let first = TcpStream::connect(listener.local_addr_now()).await.unwrap();
    let second = TcpStream::connect(listener.local_addr_now()).await.unwrap();

    let mut third = TcpStream::connect(listener.local_addr_now()).await.unwrap();
    closed_by_server(&mut third).await;

    assert_eq!(listener.stats().refused_per_ip, 1);
    assert_eq!(listener.stats().preauth_timeouts, 0);
    // Once the silent ones leave, the IP may connect again.
    drop((first, second));
    let link = within(async {
        loop {
            match WssTransport::default().connect_wss(&url).await {
                Ok(link) => return link,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    within(link.send(b"back")).await.unwrap();
}

#[tokio::test]
async fn connections_over_the_global_cap_are_closed_at_once() {
    let (listener, url) = listen(WssConfig {
        max_connections: 1,
        ..WssConfig::default()
    })
    .await;
    let first = connect(WssConfig::default(), &url).await;

    let refused = within(WssTransport::default().connect_wss(&url)).await;

    assert!(refused.is_err());
    assert_eq!(listener.stats().refused_global, 1);
    within(first.send(b"still here")).await.unwrap();
    let mut buf = [0u8; 16];
    let (len, _) = within(listener.recv_from(&mut buf)).await.unwrap();
    assert_eq!(&buf[..len], b"still here");
}

#[tokio::test]
async fn a_slow_reader_only_loses_its_own_datagrams() {
    let (listener, url) = listen(WssConfig::default()).await;
    // A peer that upgrades, sends one datagram, then never reads.
    let mut slow = common::raw_websocket(listener.local_addr_now(), "/jvpn").await;
    slow.write_all(&common::client_frame(0x2, b"slow", 4))
        .await
        .unwrap();
    let mut buf = vec![0u8; 65_535];
    let (_, slow_remote) = within(listener.recv_from(&mut buf)).await.unwrap();
    let fast = connect(WssConfig::default(), &url).await;
    within(fast.send(b"fast")).await.unwrap();
    let (_, fast_remote) = within(listener.recv_from(&mut buf)).await.unwrap();

    let big = vec![9u8; 32 * 1024];
    for _ in 0..2000 {
        // Never waits, however full the slow peer's queue and socket are.
        within(listener.send_to(&big, slow_remote)).await.unwrap();
        tokio::task::yield_now().await;
    }
    within(listener.send_to(b"for fast", fast_remote))
        .await
        .unwrap();
    let len = within(fast.recv(&mut buf)).await.unwrap();

    assert_eq!(&buf[..len], b"for fast");
    assert!(listener.stats().dropped_queue_full > 0);
    drop(slow);
}
