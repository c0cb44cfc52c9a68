//! A transport jump on 127.0.0.1: the client reaches the server's UDP listener through a relay
//! that the test stops mid-session (a UDP blackhole); the session must carry on over QUIC or WSS
//! with the same session id, the binding epoch one higher, and inner datagrams flowing again.

mod support;

use std::time::Duration;

use jvpn::session::State;
use jvpn::wire::keys::{Psk, StaticSecret};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use support::{JumpWorld, echo_until, settled_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_udp_path_moves_the_session_to_another_transport_with_the_same_id() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let server_key = StaticSecret::generate(&mut rng);
    let client_key = StaticSecret::generate(&mut rng);
    let JumpWorld {
        client,
        relay,
        echo,
        ..
    } = JumpWorld::start(server_key, client_key, Psk::zero()).await;
    client
        .wait_ready(Duration::from_secs(20))
        .await
        .expect("attached");
    assert!(
        settled_on(&client, "udp", Duration::from_secs(30)).await,
        "the session never settled on UDP, its preferred candidate"
    );
    assert!(echo_until(&client, b"before", Duration::from_secs(10)).await);
    let before = client.state();

    relay.abort();
    let flowing_again = echo_until(&client, b"after the jump", Duration::from_secs(30)).await;

    assert!(flowing_again, "no echo after the UDP path went dark");
    let after = client.state();
    assert_eq!(after.session_id, before.session_id, "the same session");
    // At least one rebind: on a loaded machine the prober may move the session once more
    // (QUIC and WSS on one loopback score alike), each move one epoch.
    assert!(
        after.epoch > before.epoch,
        "no rebind: epoch {} before, {} after",
        before.epoch,
        after.epoch
    );
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
