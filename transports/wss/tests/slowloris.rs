//! ATTACKS.md S22 on loopback: a crowd of slowloris connections (each trickles a real TLS
//! ClientHello one byte every 200 ms, from 64 source addresses in 127.0.1.0/24, up to the per-IP
//! pre-auth cap and beyond) while honest clients attach over WSS from 127.0.0.1.
//!
//! Pass criteria (no wall-clock thresholds): every honest client attaches during the attack;
//! every slow connection is closed by the server (at the pre-auth deadline, or at once when over
//! its IP's cap) and counted; after two deadlines the process holds no more file descriptors
//! than before the attack. The honest attach latencies with and without the attack, the
//! descriptor counts and the resident memory are printed as figures
//! (`cargo test -p jvpn-transport-wss --test slowloris -- --nocapture`).
//!
//! 2,048 + 128 attacking connections with `JVPN_LONG=1` (CI), 256 + 16 by default.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{LocalAddr, client_hello, listen, within};
use jvpn_transport::{Link, Listener};
use jvpn_transport_wss::{WssConfig, WssListener, WssTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

const DEADLINE: Duration = Duration::from_secs(2);
const TRICKLE: Duration = Duration::from_millis(200);
const HONEST: usize = 20;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One slow client from `source`: connects, then sends `hello` a byte at a time until the
/// server closes the connection. Returns whether the server closed it (within a bound).
async fn slow_client(server: SocketAddr, source: Ipv4Addr, hello: Vec<u8>) -> bool {
    let Ok(socket) = TcpSocket::new_v4() else {
        return false;
    };
    if socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).is_err() {
        return false;
    }
    let Ok(mut tcp) = socket.connect(server).await else {
        return false;
    };
    let closed = async {
        let mut buf = [0u8; 256];
        for byte in hello.iter().cycle() {
            if tcp.write_all(std::slice::from_ref(byte)).await.is_err() {
                return;
            }
            if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(TRICKLE, tcp.read(&mut buf)).await {
                return;
            }
        }
    };
    tokio::time::timeout(DEADLINE * 4, closed).await.is_ok()
}

/// Honest attaches one after another: connect, send one datagram, see it arrive.
async fn honest_attaches(
    listener: &WssListener,
    url: &jvpn_transport::TransportUrl,
) -> Vec<Duration> {
    let mut took = Vec::new();
    let mut buf = vec![0u8; 2048];
    for n in 0..HONEST {
        #[expect(
            clippy::disallowed_methods,
            reason = "the attach latency is a reported figure, never a pass criterion"
        )]
        let started = Instant::now();
        let payload = format!("honest {n}");
        let attached = tokio::time::timeout(DEADLINE * 2, async {
            let link = WssTransport::default().connect_wss(url).await.ok()?;
            link.send(payload.as_bytes()).await.ok()?;
            loop {
                let (len, _) = listener.recv_from(&mut buf).await.ok()?;
                if &buf[..len] == payload.as_bytes() {
                    return Some(link);
                }
            }
        })
        .await;
        if let Ok(Some(_link)) = attached {
            took.push(started.elapsed());
        }
    }
    took
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_cut_at_the_deadline_while_every_honest_client_attaches() {
    let long = std::env::var("JVPN_LONG").is_ok_and(|v| v == "1");
    let ips: u8 = if long { 64 } else { 8 };
    let config = WssConfig {
        pre_auth_deadline: DEADLINE,
        ..WssConfig::default()
    };
    let per_ip = config.max_preauth_per_ip;
    let over_cap = 2;
    let (listener, url) = listen(config).await;
    let server = listener.local_addr_now();
    let hello = client_hello();
    let baseline = honest_attaches(&listener, &url).await;
    let (fds_before, rss_before) = (open_fds(), rss_kib());

    let mut attackers = tokio::task::JoinSet::new();
    for ip in 1..=ips {
        for _ in 0..per_ip + over_cap {
            let source = Ipv4Addr::new(127, 0, 1, ip);
            attackers.spawn(slow_client(server, source, hello.clone()));
        }
    }
    tokio::time::sleep(DEADLINE / 4).await;
    let (fds_attack, rss_attack) = (open_fds(), rss_kib());
    let during = honest_attaches(&listener, &url).await;
    let mut closed = 0usize;
    while let Some(result) = within(attackers.join_next()).await {
        closed += usize::from(result.expect("attacker task"));
    }
    tokio::time::sleep(DEADLINE * 2).await;
    let (fds_after, rss_after) = (open_fds(), rss_kib());

    let attacking = usize::from(ips) * (per_ip + over_cap);
    let stats = listener.stats();
    println!(
        "S22 slowloris: {attacking} slow connections from {ips} addresses; honest attach \
         p50/p99 {:?}/{:?} before, {:?}/{:?} during ({} of {HONEST} attached); pre-auth timeouts \
         {}, refused over the per-IP cap {}; fds {fds_before} before, {fds_attack} during, \
         {fds_after} after; RSS {rss_before} KiB before, {rss_attack} during, {rss_after} after",
        percentile(baseline.clone(), 0.5),
        percentile(baseline.clone(), 0.99),
        percentile(during.clone(), 0.5),
        percentile(during.clone(), 0.99),
        during.len(),
        stats.preauth_timeouts,
        stats.refused_per_ip,
    );
    assert_eq!(baseline.len(), HONEST);
    assert_eq!(
        during.len(),
        HONEST,
        "every honest client attaches during the attack"
    );
    assert_eq!(closed, attacking, "the server closed every slow connection");
    assert_eq!(
        stats.preauth_timeouts + stats.refused_per_ip + stats.preauth_failures,
        attacking as u64,
        "{stats:?}"
    );
    assert!(
        fds_after <= fds_before,
        "descriptors leaked: {fds_before} before, {fds_after} after"
    );
}
