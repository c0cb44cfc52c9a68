//! Shared helpers of the WSS integration tests: listeners and links on 127.0.0.1, a raw TLS
//! client (any TLS version set, any certificate), raw WebSocket frames, timeouts.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jvpn_transport::TransportUrl;
use jvpn_transport_wss::{WssConfig, WssLink, WssListener, WssTransport};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Every wait in these tests is bounded by this (generous: it only catches hangs).
pub const LIMIT: Duration = Duration::from_secs(20);

/// Awaits `future`, failing the test if it hangs.
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("the operation hung")
}

pub fn url(addr: SocketAddr, path: &str) -> TransportUrl {
    TransportUrl::parse(&format!("wss://{addr}{path}")).unwrap()
}

pub async fn listen(config: WssConfig) -> (WssListener, TransportUrl) {
    let listener = WssTransport::new(config)
        .listen_wss(&TransportUrl::parse("wss://127.0.0.1:0/jvpn").unwrap())
        .await
        .unwrap();
    let url = url(listener.local_addr_now(), "/jvpn");
    (listener, url)
}

pub async fn connect(config: WssConfig, url: &TransportUrl) -> WssLink {
    within(WssTransport::new(config).connect_wss(url))
        .await
        .unwrap()
}

/// Extension: the listener's address without the `Listener` trait's `io::Result`.
pub trait LocalAddr {
    fn local_addr_now(&self) -> SocketAddr;
}

impl LocalAddr for WssListener {
    fn local_addr_now(&self) -> SocketAddr {
        jvpn_transport::Listener::local_addr(self).unwrap()
    }
}

/// A deterministic generator, so failures replay.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Accepts any certificate: the raw test client is not what is under test.
#[derive(Debug)]
struct AcceptAny(rustls::crypto::WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The bytes of a TLS 1.3 ClientHello to "localhost", as a real client would send first.
pub fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AcceptAny(provider.signature_verification_algorithms));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

/// A raw TLS connection to `addr` offering only `versions`.
pub async fn raw_tls(
    addr: SocketAddr,
    versions: &[&'static SupportedProtocolVersion],
) -> std::io::Result<TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AcceptAny(provider.signature_verification_algorithms));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// A raw TLS 1.3 connection that has completed a WebSocket upgrade on `path`.
pub async fn raw_websocket(addr: SocketAddr, path: &str) -> TlsStream<TcpStream> {
    let mut tls = raw_tls(addr, &[&rustls::version::TLS13]).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tls
}

/// A client (masked) WebSocket frame: `opcode` with FIN, a length header saying
/// `declared_len`, and `payload` (which may be shorter than declared).
pub fn client_frame(opcode: u8, payload: &[u8], declared_len: u64) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut frame = vec![0x80 | opcode];
    if declared_len < 126 {
        frame.push(0x80 | u8::try_from(declared_len).unwrap());
    } else if let Ok(len) = u16::try_from(declared_len) {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&len.to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&declared_len.to_be_bytes());
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads one (unmasked, server) frame: its opcode and payload.
pub async fn read_server_frame(tls: &mut TlsStream<TcpStream>) -> (u8, Vec<u8>) {
    let mut header = [0u8; 2];
    tls.read_exact(&mut header).await.unwrap();
    let len = match header[1] & 0x7f {
        126 => u64::from(tls.read_u16().await.unwrap()),
        127 => tls.read_u64().await.unwrap(),
        len => u64::from(len),
    };
    let mut payload = vec![0u8; usize::try_from(len).unwrap()];
    tls.read_exact(&mut payload).await.unwrap();
    (header[0] & 0x0f, payload)
}
