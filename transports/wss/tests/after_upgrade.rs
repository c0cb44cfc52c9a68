//! How a WSS listener bounds connections after the WebSocket upgrade (attack scenario S22): the
//! first-datagram deadline, the idle timeout, and the per-IP cap on upgraded connections.
//!
//! Deadlines here are a few hundred milliseconds; every wait is bounded by `within`.

mod common;

use std::time::Duration;

use common::{LocalAddr, connect, listen, within};
use jvpn_transport::{Link, Listener};
use jvpn_transport_wss::{ListenerStats, WssConfig, WssListener};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;

fn short_deadlines() -> WssConfig {
    WssConfig {
        first_datagram_deadline: Duration::from_millis(250),
        idle_timeout: Duration::from_millis(300),
        ..WssConfig::default()
    }
}

/// Reads server frames until a close frame; returns its close code.
async fn close_code(raw: &mut TlsStream<TcpStream>) -> u16 {
    within(async {
        loop {
            let (opcode, payload) = common::read_server_frame(raw).await;
            if opcode == OPCODE_CLOSE {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    })
    .await
}

/// Reads one (unmasked, server) frame with a short length from a read half: opcode, payload.
async fn read_frame(reader: &mut (impl AsyncRead + Unpin)) -> (u8, Vec<u8>) {
    let mut header = [0u8; 2];
    reader.read_exact(&mut header).await.unwrap();
    let len = header[1] & 0x7f;
    assert!(len < 126, "a control frame is short");
    let mut payload = vec![0u8; usize::from(len)];
    reader.read_exact(&mut payload).await.unwrap();
    (header[0] & 0x0f, payload)
}

/// Waits until the listener's counters satisfy `done` and it holds no connection.
async fn settled(listener: &WssListener, done: impl Fn(&ListenerStats) -> bool) -> ListenerStats {
    within(async {
        loop {
            let stats = listener.stats();
            if done(&stats) && listener.connections() == 0 {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_client_that_upgrades_and_sends_nothing_is_closed_after_the_first_datagram_deadline() {
    let (listener, _url) = listen(short_deadlines()).await;
    let mut raw = common::raw_websocket(listener.local_addr_now(), "/jvpn").await;

    let code = close_code(&mut raw).await;

    assert_eq!(code, 1000);
    let stats = settled(&listener, |s| s.first_datagram_timeouts == 1).await;
    assert_eq!(stats.idle_timeouts, 0);
    assert_eq!(stats.upgraded, 1);
}

#[tokio::test]
async fn a_client_that_sends_one_datagram_then_goes_silent_is_closed_after_the_idle_timeout() {
    let (listener, _url) = listen(short_deadlines()).await;
    let mut raw = common::raw_websocket(listener.local_addr_now(), "/jvpn").await;
    raw.write_all(&common::client_frame(OPCODE_BINARY, b"hello", 5))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let (len, _) = within(listener.recv_from(&mut buf)).await.unwrap();

    let code = close_code(&mut raw).await;

    assert_eq!(&buf[..len], b"hello");
    assert_eq!(code, 1000);
    let stats = settled(&listener, |s| s.idle_timeouts == 1).await;
    assert_eq!(stats.first_datagram_timeouts, 0);
}

#[tokio::test]
async fn pings_do_not_keep_an_otherwise_silent_connection_open() {
    let (listener, _url) = listen(short_deadlines()).await;
    let mut raw = common::raw_websocket(listener.local_addr_now(), "/jvpn").await;
    raw.write_all(&common::client_frame(OPCODE_BINARY, b"once", 4))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    within(listener.recv_from(&mut buf)).await.unwrap();

    let (mut reader, mut writer) = tokio::io::split(raw);
    // Pings every 50 ms, far more often than the idle timeout, until the server closes.
    let pinger = tokio::spawn(async move {
        let ping = common::client_frame(OPCODE_PING, b"p", 1);
        while writer.write_all(&ping).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let code = within(async {
        loop {
            let (opcode, payload) = read_frame(&mut reader).await;
            if opcode == OPCODE_CLOSE {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    })
    .await;
    pinger.abort();

    assert_eq!(code, 1000);
    let stats = settled(&listener, |s| s.idle_timeouts == 1).await;
    assert_eq!(stats.first_datagram_timeouts, 0);
}

#[tokio::test]
async fn a_client_that_keeps_sending_within_the_idle_timeout_stays_up() {
    let config = WssConfig {
        idle_timeout: Duration::from_millis(400),
        ..short_deadlines()
    };
    let (listener, url) = listen(config).await;
    let link = connect(WssConfig::default(), &url).await;
    let mut buf = [0u8; 16];

    // 20 datagrams 50 ms apart: about 1 s in all, well past the idle timeout.
    for i in 0..20u8 {
        within(link.send(&[i])).await.unwrap();
        let (len, _) = within(listener.recv_from(&mut buf)).await.unwrap();
        assert_eq!(&buf[..len], &[i]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(listener.connections(), 1);
    assert_eq!(listener.stats().idle_timeouts, 0);
    assert_eq!(listener.stats().first_datagram_timeouts, 0);
}

#[tokio::test]
async fn an_upgrade_over_the_per_ip_cap_is_closed_with_1008_and_earlier_ones_keep_working() {
    let (listener, url) = listen(WssConfig {
        max_connections_per_ip: 2,
        ..WssConfig::default()
    })
    .await;
    let first = connect(WssConfig::default(), &url).await;
    let second = connect(WssConfig::default(), &url).await;
    let mut buf = [0u8; 16];
    // Each earlier connection has delivered a datagram, so the listener has counted both.
    for link in [&first, &second] {
        within(link.send(b"up")).await.unwrap();
        within(listener.recv_from(&mut buf)).await.unwrap();
    }

    let mut third = common::raw_websocket(listener.local_addr_now(), "/jvpn").await;
    let code = close_code(&mut third).await;

    assert_eq!(code, 1008);
    assert_eq!(listener.stats().refused_upgraded_per_ip, 1);
    assert_eq!(listener.stats().upgraded, 2);
    for (link, text) in [(&first, b"one"), (&second, b"two")] {
        within(link.send(text)).await.unwrap();
        let (len, remote) = within(listener.recv_from(&mut buf)).await.unwrap();
        assert_eq!(&buf[..len], text);
        within(listener.send_to(b"back", remote)).await.unwrap();
        let len = within(link.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..len], b"back");
    }
    assert_eq!(listener.connections(), 2);
}
