//! Shared by the loopback jump tests: a three-listener server that echoes, a UDP relay whose
//! abort blackholes the client's UDP path, and a client with UDP (through the relay), QUIC and
//! WSS candidates.

#![allow(dead_code, reason = "each test binary uses its own subset")]

use std::sync::Arc;
use std::time::Duration;

use jvpn::session::PeerConfig;
use jvpn::transport::TransportUrl;
use jvpn::wire::keys::{Psk, StaticSecret};
use jvpn::{Client, ClientOptions, Server, ServerOptions, Transports};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

pub(crate) const LISTEN: [&str; 3] = [
    "udp://127.0.0.1:0",
    "quic://127.0.0.1:0",
    "wss://127.0.0.1:0/jvpn",
];

/// Forwards UDP between one client and `server`; aborting its task blackholes the path.
pub(crate) async fn udp_relay(
    server: std::net::SocketAddr,
) -> (std::net::SocketAddr, JoinHandle<()>) {
    let front = UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind the relay");
    let back = UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind the relay");
    back.connect(server).await.expect("connect to the server");
    let addr = front.local_addr().expect("relay address");
    let task = tokio::spawn(async move {
        let mut client = None;
        let (mut up, mut down) = (vec![0u8; 65_535], vec![0u8; 65_535]);
        loop {
            tokio::select! {
                Ok((len, from)) = front.recv_from(&mut up) => {
                    client = Some(from);
                    let _ = back.send(&up[..len]).await;
                }
                Ok(len) = back.recv(&mut down) => {
                    if let Some(to) = client {
                        let _ = front.send_to(&down[..len], to).await;
                    }
                }
            }
        }
    });
    (addr, task)
}

pub(crate) async fn echo_until(client: &Client, payload: &[u8], within: Duration) -> bool {
    let attempt = async {
        loop {
            // Sends may be refused while the session has no binding; the next round retries.
            let _ = client.send(payload).await;
            if let Ok(Some(echo)) =
                tokio::time::timeout(Duration::from_millis(100), client.recv()).await
                && echo == payload
            {
                return;
            }
        }
    };
    tokio::time::timeout(within, attempt).await.is_ok()
}

/// Waits (bounded) until the client's active transport is `kind`: under load another candidate
/// may come up first and carry the session until the prober moves it to the preferred one.
pub(crate) async fn settled_on(client: &Client, kind: &str, within: Duration) -> bool {
    let settle = async {
        loop {
            if let Some(status) = client.status_source().snapshot().await
                && status.sessions.first().and_then(|s| s.transport.as_deref()) == Some(kind)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(within, settle).await.is_ok()
}

/// A running server (echoing every inner datagram), the UDP relay in front of its UDP listener,
/// and a client with UDP (through the relay), QUIC and WSS candidates.
pub(crate) struct JumpWorld {
    pub(crate) server: Arc<Server>,
    pub(crate) client: Client,
    pub(crate) relay: JoinHandle<()>,
    pub(crate) echo: JoinHandle<()>,
}

impl JumpWorld {
    pub(crate) async fn start(
        server_key: StaticSecret,
        client_key: StaticSecret,
        psk: Psk,
    ) -> Self {
        let transports = Transports::builtin();
        let mut listeners = Vec::new();
        for url in LISTEN {
            let url: TransportUrl = url.parse().expect("a URL");
            let transport = transports.get(&url.kind).expect("built in");
            listeners.push(transport.listen(&url).await.expect("listens"));
        }
        let peer = PeerConfig {
            public_key: client_key.public_key(),
            psk: psk.clone(),
        };
        let server = Arc::new(
            Server::start(
                ServerOptions::new(server_key.clone(), vec![peer]),
                listeners,
            )
            .await
            .expect("server starts"),
        );
        let addrs = server.local_addrs().to_vec();
        let echo_server = Arc::clone(&server);
        let echo = tokio::spawn(async move {
            while let Some(incoming) = echo_server.recv().await {
                let _ = echo_server.send(incoming.session, &incoming.packet).await;
            }
        });
        let (relay_addr, relay) = udp_relay(addrs[0]).await;
        let candidates: Vec<TransportUrl> = vec![
            format!("udp://{relay_addr}").parse().expect("udp URL"),
            format!("quic://{}", addrs[1]).parse().expect("quic URL"),
            format!("wss://{}/jvpn", addrs[2]).parse().expect("wss URL"),
        ];
        let mut options =
            ClientOptions::with_candidates(client_key, server_key.public_key(), candidates);
        options.psk = psk;
        let client = Client::connect_via(options, &transports)
            .await
            .expect("client starts");
        Self {
            server,
            client,
            relay,
            echo,
        }
    }
}
