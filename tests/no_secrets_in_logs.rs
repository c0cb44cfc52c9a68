//! Keys never reach the logs (issue 5, item 7): a session attaches, carries data, loses its UDP
//! path and jumps to another transport with every `tracing` event of every crate captured at
//! TRACE; neither static private key nor the PSK appears in the output in any of the forms a
//! careless `Debug`, `Display` or log line would print it (base64 as in key files, hex, or a
//! `Debug` byte list).

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jvpn::wire::keys::{Psk, StaticSecret};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use support::{JumpWorld, echo_until, settled_on};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every textual form a 32-byte secret could take in a log line (`base64`: as in key files).
fn renderings(secret: &[u8; 32], base64: &str) -> Vec<String> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let debug_list = secret[..6]
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        base64[..16].to_string(),
        hex[..24].to_string(),
        hex[..24].to_uppercase(),
        format!("[{debug_list}"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_static_key_or_psk_appears_in_trace_logs_of_an_attach_and_a_jump() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber here");
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let server_key = StaticSecret::generate(&mut rng);
    let client_key = StaticSecret::generate(&mut rng);
    let psk = Psk::generate(&mut rng);
    let secrets = [
        (
            "server key",
            *server_key.as_bytes(),
            server_key.to_base64().to_string(),
        ),
        (
            "client key",
            *client_key.as_bytes(),
            client_key.to_base64().to_string(),
        ),
        ("psk", *psk.as_bytes(), psk.to_base64().to_string()),
    ];
    let world = JumpWorld::start(server_key, client_key, psk).await;
    world
        .client
        .wait_ready(Duration::from_secs(20))
        .await
        .expect("attached");
    assert!(settled_on(&world.client, "udp", Duration::from_secs(30)).await);
    assert!(echo_until(&world.client, b"before", Duration::from_secs(10)).await);

    world.relay.abort();
    let jumped = echo_until(&world.client, b"after", Duration::from_secs(30)).await;
    world.client.close().await.expect("closes");
    world.echo.abort();

    assert!(
        jumped,
        "the session did not carry on after the UDP path went dark"
    );
    let logs = String::from_utf8_lossy(&capture.0.lock().expect("capture lock")).into_owned();
    assert!(logs.lines().count() > 20, "too little was logged:\n{logs}");
    assert!(
        logs.contains("reason=REATTACH_ACCEPTED"),
        "the jump is not in the logs:\n{logs}"
    );
    for (name, secret, base64) in &secrets {
        for form in renderings(secret, base64) {
            assert!(
                !logs.contains(&form),
                "the {name} appears in the logs as {form}"
            );
        }
    }
}
