//! Helpers shared by the loopback tests.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use jvpn_transport::TransportUrl;
use jvpn_transport_quic::{QuicConfig, QuicLink, QuicListener, QuicTransport};

/// Every wait in the tests is bounded by this, so a bug fails the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the test if it takes longer than [`WAIT`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub fn url(s: &str) -> TransportUrl {
    TransportUrl::parse(s).unwrap()
}

pub async fn listener(config: QuicConfig) -> QuicListener {
    QuicTransport::new(config)
        .listen_quic(&url("quic://127.0.0.1:0"))
        .await
        .unwrap()
}

pub async fn link_to(listener: &QuicListener, config: QuicConfig) -> QuicLink {
    let addr = jvpn_transport::Listener::local_addr(listener).unwrap();
    within(
        "connect",
        QuicTransport::new(config).connect_quic(&url(&format!("quic://{addr}"))),
    )
    .await
    .unwrap()
}

/// A small deterministic generator, so failures replay (sizes and contents only).
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
