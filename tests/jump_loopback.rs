//! A transport jump on 127.0.0.1: the client reaches the server's UDP listener through a relay
//! that the test stops mid-session (a UDP blackhole); the session must carry on over QUIC or WSS
//! with the same session id, the binding epoch one higher, and inner datagrams flowing again.

use std::sync::Arc;
use std::time::Duration;

use jvpn::session::{PeerConfig, State};
use jvpn::transport::TransportUrl;
use jvpn::wire::keys::{Psk, StaticSecret};
use jvpn::{Client, ClientOptions, Server, ServerOptions, Transports};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

const LISTEN: [&str; 3] = [
    "udp://127.0.0.1:0",
    "quic://127.0.0.1:0",
    "wss://127.0.0.1:0/jvpn",
];

/// Forwards UDP between one client and `server`; aborting its task blackholes the path.
async fn udp_relay(server: std::net::SocketAddr) -> (std::net::SocketAddr, JoinHandle<()>) {
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

async fn echo_until(client: &Client, payload: &[u8], within: Duration) -> bool {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_udp_path_moves_the_session_to_another_transport_with_the_same_id() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let server_key = StaticSecret::generate(&mut rng);
    let client_key = StaticSecret::generate(&mut rng);
    let transports = Transports::builtin();
    let mut listeners = Vec::new();
    for url in LISTEN {
        let url: TransportUrl = url.parse().expect("a URL");
        let transport = transports.get(&url.kind).expect("built in");
        listeners.push(transport.listen(&url).await.expect("listens"));
    }
    let peer = PeerConfig {
        public_key: client_key.public_key(),
        psk: Psk::zero(),
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
    let options = ClientOptions::with_candidates(client_key, server_key.public_key(), candidates);
    let client = Client::connect_via(options, &transports)
        .await
        .expect("client starts");
    let before = client
        .wait_ready(Duration::from_secs(20))
        .await
        .expect("ready over UDP");
    assert!(echo_until(&client, b"before", Duration::from_secs(10)).await);
    let status = client.status_source().snapshot().await.expect("status");
    assert_eq!(status.sessions[0].transport.as_deref(), Some("udp"));

    relay.abort();
    let flowing_again = echo_until(&client, b"after the jump", Duration::from_secs(30)).await;

    assert!(flowing_again, "no echo after the UDP path went dark");
    let after = client.state();
    assert_eq!(after.session_id, before.session_id, "the same session");
    assert_eq!(after.epoch, before.epoch + 1, "one rebind");
    assert_ne!(after.state, State::Terminated);
    let status = client.status_source().snapshot().await.expect("status");
    let session = &status.sessions[0];
    assert!(
        matches!(session.transport.as_deref(), Some("quic" | "wss")),
        "{session:#?}"
    );
    assert_eq!(
        session.last_switch.as_ref().map(|s| s.reason.as_str()),
        Some("TRANSPORT_DEAD"),
        "{session:#?}"
    );
    client.close().await.expect("closes");
    echo.abort();
}
