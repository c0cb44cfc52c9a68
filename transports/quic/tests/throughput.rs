//! Loopback datagram throughput, printed (run with `cargo test -p jvpn-transport-quic --test
//! throughput -- --ignored --nocapture`). Ignored by default: it measures, and the machine's
//! speed is no pass/fail criterion.

mod common;

use std::io;
use std::time::Duration;

use common::{link_to, listener, within};
use jvpn_transport::{Link, Listener};
use jvpn_transport_quic::QuicConfig;

const COUNT: usize = 50_000;

/// Retries `try_send` until quinn's send buffer has room, so the sender is paced by QUIC's
/// congestion control instead of discarding its own queued datagrams.
async fn paced(mut try_send: impl FnMut() -> io::Result<()>) {
    loop {
        match try_send() {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Receives until `COUNT` datagrams or 1 s of silence; yields how many and when the last came.
macro_rules! count {
    ($start:expr, $recv:expr) => {{
        let mut received = 0usize;
        let mut last = Duration::ZERO;
        while received < COUNT {
            match tokio::time::timeout(Duration::from_secs(1), $recv).await {
                Ok(Ok(_)) => {
                    received += 1;
                    last = $start.elapsed();
                }
                Ok(Err(e)) => panic!("{e}"),
                Err(_) => break,
            }
        }
        (received, last)
    }};
}

fn report(direction: &str, received: usize, size: usize, elapsed: Duration) -> (f64, String) {
    let mbit = (received * size * 8) as f64 / elapsed.as_secs_f64() / 1e6;
    let line = format!(
        "QUIC loopback {direction}: {received}/{COUNT} datagrams of {size} B in {elapsed:?}: \
         {mbit:.0} Mbit/s"
    );
    (mbit, line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run it by hand"]
#[expect(
    clippy::disallowed_methods,
    reason = "measuring throughput needs the wall clock"
)]
async fn loopback_datagram_throughput_is_printed() {
    let listener = listener(QuicConfig::default()).await;
    let link = link_to(&listener, QuicConfig::default()).await;
    // Let path MTU discovery raise the datagram size first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let size = link.info().max_datagram_size;
    let payload = vec![0xA5u8; size];
    let mut buf = vec![0u8; 65536];
    link.send(b"hello").await.unwrap();
    let (_, remote) = within("hello", listener.recv_from(&mut buf)).await.unwrap();

    let start = std::time::Instant::now();
    let sender = async {
        for _ in 0..COUNT {
            paced(|| link.try_send(&payload)).await;
        }
    };
    let mut up_buf = vec![0u8; 65536];
    let receiver = async { count!(start, listener.recv_from(&mut up_buf)) };
    let ((), (up, up_time)) = within("upload", async { tokio::join!(sender, receiver) }).await;

    let start = std::time::Instant::now();
    let sender = async {
        for _ in 0..COUNT {
            paced(|| listener.try_send_to(&payload, remote)).await;
        }
    };
    let mut down_buf = vec![0u8; 65536];
    let receiver = async { count!(start, link.recv(&mut down_buf)) };
    let ((), (down, down_time)) =
        within("download", async { tokio::join!(sender, receiver) }).await;

    let (up_mbit, up_line) = report("client -> server", up, size, up_time);
    let (down_mbit, down_line) = report("server -> client", down, size, down_time);
    println!("{up_line}\n{down_line}");
    assert!(up_mbit > 0.0 && down_mbit > 0.0, "no datagram arrived");
}
