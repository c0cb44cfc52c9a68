//! End to end through the runtime over real UDP on 127.0.0.1: the client sends 10,000 inner
//! datagrams of random sizes, the server checks each one byte for byte and echoes it, and the
//! client checks every echo byte for byte.
//!
//! UDP on loopback may still drop under load (full socket buffers), so the client keeps at most
//! `WINDOW` datagrams in flight and re-sends the outstanding ones when nothing arrives for a while;
//! the pass criterion is that every datagram is eventually verified and none is ever corrupted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jvpn::session::{Event, PeerConfig, Reason, State};
use jvpn::transport::TransportUrl;
use jvpn::wire::keys::{Psk, StaticSecret};
use jvpn::{Client, ClientOptions, Server, ServerOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const COUNT: u32 = 10_000;
const WINDOW: usize = 64;
const MAX_INNER: usize = 1400;

/// The datagram with index `i`: its index, then bytes derived from the index alone, so either
/// side can check it without shared state.
fn datagram(i: u32) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(u64::from(i) ^ 0x6a76_706e);
    let len = rng.random_range(4..=MAX_INNER);
    let mut out = vec![0u8; len];
    out[..4].copy_from_slice(&i.to_be_bytes());
    rng.fill(&mut out[4..]);
    out
}

fn index_of(packet: &[u8]) -> Option<u32> {
    let i = u32::from_be_bytes(packet.get(..4)?.try_into().ok()?);
    (i < COUNT && datagram(i) == packet).then_some(i)
}

async fn start_pair() -> (Server, Client) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let server_key = StaticSecret::generate(&mut rng);
    let client_key = StaticSecret::generate(&mut rng);
    let udp = jvpn::udp();
    let listen: TransportUrl = "udp://127.0.0.1:0".parse().unwrap();
    let server = Server::start(
        ServerOptions::new(
            server_key.clone(),
            vec![PeerConfig {
                public_key: client_key.public_key(),
                psk: Psk::zero(),
            }],
        ),
        vec![udp.listen(&listen).await.unwrap()],
    )
    .await
    .unwrap();
    let url: TransportUrl = format!("udp://{}", server.local_addrs()[0])
        .parse()
        .unwrap();
    let client = Client::connect(
        ClientOptions::new(client_key, server_key.public_key(), url),
        udp,
    )
    .await
    .unwrap();
    (server, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_datagrams_of_random_sizes_arrive_intact_both_ways() {
    let (server, client) = start_pair().await;
    let mut events = client.events();
    let view = client
        .wait_attached(Duration::from_secs(10))
        .await
        .expect("session attaches on loopback");
    assert_eq!(view.state, State::Attached);
    assert_eq!(view.epoch, 1);

    // Server: verify every inner datagram, echo it back, count corrupt ones.
    let server_corrupt = Arc::new(AtomicU64::new(0));
    let corrupt_seen_by_server = Arc::clone(&server_corrupt);
    let echo = tokio::spawn(async move {
        while let Some(incoming) = server.recv().await {
            if index_of(&incoming.packet).is_some() {
                server
                    .send(incoming.session, &incoming.packet)
                    .await
                    .unwrap();
            } else {
                corrupt_seen_by_server.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let mut verified = BTreeSet::new();
    let mut outstanding = BTreeSet::new();
    let mut next = 0u32;
    let mut resent = 0u64;
    let mut corrupt_echoes = 0u64;
    // Bounded in time: 20 consecutive 500 ms receive timeouts (10 s without any echo) fail the
    // test; every other round makes progress.
    let mut stalls = 0u32;
    while verified.len() < COUNT as usize {
        assert!(
            stalls < 20,
            "no echo for 10 s; only {} of {COUNT} datagrams verified",
            verified.len()
        );
        while outstanding.len() < WINDOW && next < COUNT {
            client.send(&datagram(next)).await.unwrap();
            outstanding.insert(next);
            next += 1;
        }
        match tokio::time::timeout(Duration::from_millis(500), client.recv()).await {
            Ok(Some(echoed)) => match index_of(&echoed) {
                Some(i) => {
                    stalls = 0;
                    outstanding.remove(&i);
                    verified.insert(i);
                }
                None => corrupt_echoes += 1,
            },
            Ok(None) => panic!("client session ended early"),
            Err(_) => {
                stalls += 1;
                for &i in &outstanding {
                    client.send(&datagram(i)).await.unwrap();
                    resent += 1;
                }
            }
        }
    }
    eprintln!("verified {COUNT} datagrams; {resent} re-sent after loopback loss");
    assert_eq!(corrupt_echoes, 0);

    let status = client.status().await.unwrap();
    assert_eq!(status.view.state, State::Attached);
    assert_eq!(status.view.epoch, 1, "no rebind happened on a healthy path");

    let end = client.close().await.unwrap();
    assert_eq!(end.state, State::Terminated);
    assert_eq!(end.last_reason, Some(Reason::Closed));
    // The client saw BIRTH -> ATTACHED then ATTACHED -> TERMINATED (Closed), nothing else.
    let mut transitions = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let Event::Transition(record) = event {
            transitions.push((record.from, record.to, record.reason));
        }
    }
    assert_eq!(
        transitions.last(),
        Some(&(State::Attached, State::Terminated, Reason::Closed))
    );

    echo.abort();
    assert_eq!(server_corrupt.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_client_with_an_unknown_key_never_attaches() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let server_key = StaticSecret::generate(&mut rng);
    let stranger = StaticSecret::generate(&mut rng);
    let udp = jvpn::udp();
    let server = Server::start(
        ServerOptions::new(server_key.clone(), Vec::new()),
        vec![
            udp.listen(&"udp://127.0.0.1:0".parse().unwrap())
                .await
                .unwrap(),
        ],
    )
    .await
    .unwrap();
    let url: TransportUrl = format!("udp://{}", server.local_addrs()[0])
        .parse()
        .unwrap();
    let client = Client::connect(
        ClientOptions::new(stranger, server_key.public_key(), url),
        udp,
    )
    .await
    .unwrap();
    let result = client.wait_attached(Duration::from_millis(1500)).await;
    assert!(
        matches!(result, Err(jvpn::ClientError::AttachTimeout { .. })),
        "{result:?}"
    );
    assert_eq!(client.state().state, State::Birth);
}
