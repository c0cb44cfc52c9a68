//! Certificate pinning, ALPN, connection limits and idle connections.

mod common;

use std::io;
use std::time::Duration;

use common::{link_to, listener, url, within};
use jvpn_transport::{Link, Listener, TransportError};
use jvpn_transport_quic::{QuicConfig, QuicError, QuicTransport, ServerCert};

/// Short timeouts so that the tests about timeouts finish quickly.
fn quick() -> QuicConfig {
    QuicConfig {
        keep_alive_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(1),
        ..QuicConfig::default()
    }
}

async fn connect(
    listener: &jvpn_transport_quic::QuicListener,
    config: QuicConfig,
) -> Result<jvpn_transport_quic::QuicLink, TransportError> {
    let addr = listener.local_addr().unwrap();
    within(
        "connect",
        QuicTransport::new(config).connect_quic(&url(&format!("quic://{addr}"))),
    )
    .await
}

#[tokio::test]
async fn a_client_pinning_the_servers_certificate_connects() {
    let listener = listener(QuicConfig::default()).await;
    let pinned = QuicConfig {
        pin_sha256: Some(listener.cert_sha256()),
        ..QuicConfig::default()
    };

    let link = connect(&listener, pinned).await.unwrap();

    link.send(b"pinned").await.unwrap();
    let mut buf = [0u8; 64];
    let (len, _) = within("recv_from", listener.recv_from(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf[..len], b"pinned");
}

#[tokio::test]
async fn a_wrong_pin_fails_with_a_pin_mismatch_naming_both_fingerprints() {
    let listener = listener(QuicConfig::default()).await;
    let wrong = QuicConfig {
        pin_sha256: Some([0x11; 32]),
        ..QuicConfig::default()
    };

    let err = connect(&listener, wrong).await.unwrap_err();

    let TransportError::Other(inner) = &err else {
        panic!("expected TransportError::Other, got {err:?}");
    };
    let quic = inner.downcast_ref::<QuicError>().expect("a QuicError");
    assert!(matches!(quic, QuicError::PinMismatch { .. }), "{quic:?}");
    let msg = err.to_string();
    assert!(msg.contains(&"11".repeat(32)), "{msg}");
    assert!(
        msg.contains(&jvpn_transport_quic_hex(listener.cert_sha256())),
        "{msg}"
    );
    assert!(msg.contains("update the pin"), "{msg}");
}

fn jvpn_transport_quic_hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_configured_server_certificate_is_presented_and_can_be_pinned() {
    let cert = ServerCert::self_signed(vec!["vpn.example".into()]).unwrap();
    let pin = cert.sha256();
    let listener = listener(QuicConfig {
        server_cert: Some(cert),
        ..QuicConfig::default()
    })
    .await;

    assert_eq!(listener.cert_sha256(), pin);
    let link = connect(
        &listener,
        QuicConfig {
            pin_sha256: Some(pin),
            ..QuicConfig::default()
        },
    )
    .await;
    assert!(link.is_ok(), "{link:?}");
}

#[tokio::test]
async fn a_client_with_another_alpn_is_refused_by_the_tls_handshake() {
    let listener = listener(QuicConfig::default()).await;
    let other_alpn = QuicConfig {
        alpn: b"h3".to_vec(),
        ..QuicConfig::default()
    };

    let err = connect(&listener, other_alpn).await.unwrap_err();

    let TransportError::Other(inner) = &err else {
        panic!("expected TransportError::Other, got {err:?}");
    };
    assert!(
        matches!(
            inner.downcast_ref::<QuicError>(),
            Some(QuicError::Handshake { .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_with_a_clear_error() {
    let listener = listener(QuicConfig {
        max_connections: 1,
        ..QuicConfig::default()
    })
    .await;
    let _first = link_to(&listener, QuicConfig::default()).await;

    let err = connect(&listener, QuicConfig::default()).await.unwrap_err();

    let TransportError::Connect { source, .. } = &err else {
        panic!("expected TransportError::Connect, got {err:?}");
    };
    assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    assert!(err.to_string().contains("connection limit"), "{err}");
}

#[tokio::test]
async fn a_connection_that_sends_no_datagram_for_the_idle_timeout_is_dropped() {
    let listener = listener(quick()).await;
    // The client keeps sending keep-alive PINGs; only datagrams count as activity.
    let link = link_to(&listener, quick()).await;
    link.send(b"hello").await.unwrap();
    let mut buf = [0u8; 64];
    let (_, remote) = within("recv_from", listener.recv_from(&mut buf))
        .await
        .unwrap();
    assert_eq!(listener.connection_count(), 1);

    within("the idle connection to be dropped", async {
        while listener.connection_count() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    let err = listener.send_to(b"late", remote).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    let err = within("the link to notice", link.recv(&mut buf))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted, "{err}");
}

#[tokio::test]
async fn connecting_where_no_server_listens_times_out_with_a_connect_error() {
    // A bound UDP socket that never answers.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();

    let err = within(
        "connect",
        QuicTransport::new(quick()).connect_quic(&url(&format!("quic://{addr}"))),
    )
    .await
    .unwrap_err();

    let TransportError::Connect { source, .. } = &err else {
        panic!("expected TransportError::Connect, got {err:?}");
    };
    assert_eq!(source.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("not blocked"), "{err}");
}

#[tokio::test]
async fn dropping_the_link_closes_its_connection_on_the_server() {
    let listener = listener(QuicConfig::default()).await;
    let link = link_to(&listener, QuicConfig::default()).await;
    link.send(b"hi").await.unwrap();
    let mut buf = [0u8; 64];
    let (_, remote) = within("recv_from", listener.recv_from(&mut buf))
        .await
        .unwrap();

    drop(link);

    within("the server to see the close", async {
        while listener.connection_count() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let err = listener.send_to(b"gone", remote).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
}
