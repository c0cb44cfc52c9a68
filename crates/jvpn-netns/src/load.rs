//! Many honest clients attaching at once (ATTACKS.md S18's honest side): each is a real
//! [`jvpn::Client`] over UDP with its own static key and its own socket (so its own source port),
//! doing a real handshake, cookie round included when the server is under load.
//!
//! Keys come from a seed ([`keys_from_seed`]), so the server's peer list and the clients agree
//! without writing key files. Starts are spread evenly over `spread`; each client waits at most
//! `timeout` to be ATTACHED. Latency is from a client's start to ATTACHED. Every client stays up
//! until all have finished (so a server sees no CLOSE in the middle of the run), then all are
//! closed, bounded.
//!
//! Run it inside the clients' namespace ([`crate::Namespace::run_in`]): it builds a
//! current-thread tokio runtime on the calling thread, so every socket is created there.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use jvpn::wire::{PublicKey, StaticSecret};
use jvpn::{Client, ClientOptions};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::time::now;

/// How long closing every client may take at the end of a run.
const CLOSE_BOUND: Duration = Duration::from_secs(10);

/// One run of honest clients.
#[derive(Debug, Clone)]
pub struct AttachConfig {
    /// The server's UDP address.
    pub server: SocketAddr,
    /// The server's static public key.
    pub server_key: PublicKey,
    /// One key per client (see [`keys_from_seed`]).
    pub keys: Vec<StaticSecret>,
    /// Client starts are spread evenly over this.
    pub spread: Duration,
    /// A client that is not ATTACHED this long after its start has failed.
    pub timeout: Duration,
    /// The clients' handshake retry interval (the policy's `handshake_retry`).
    pub handshake_retry: Duration,
}

/// What a run measured.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AttachReport {
    /// Clients started.
    pub clients: usize,
    /// Clients that reached ATTACHED within their timeout.
    pub attached: usize,
    /// Clients that did not (timed out, or could not start).
    pub failed: usize,
    /// Median attach latency of the attached clients, in milliseconds.
    pub p50_ms: u64,
    /// 99th percentile attach latency, in milliseconds.
    pub p99_ms: u64,
    /// Slowest attach, in milliseconds.
    pub max_ms: u64,
    /// Wall time of the whole run, in seconds.
    pub secs: f64,
}

impl AttachReport {
    /// The share of clients that attached, 0.0 to 1.0.
    pub fn attached_ratio(&self) -> f64 {
        if self.clients == 0 {
            0.0
        } else {
            self.attached as f64 / self.clients as f64
        }
    }

    /// One JSON object with every field.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"clients\":{},\"attached\":{},\"failed\":{},\"p50_ms\":{},\"p99_ms\":{},\"max_ms\":{},\"secs\":{:.3}}}",
            self.clients,
            self.attached,
            self.failed,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.secs
        )
    }
}

/// `count` static keys derived from `seed` (the same seed always gives the same keys).
pub fn keys_from_seed(seed: u64, count: usize) -> Vec<StaticSecret> {
    (0..count as u64)
        .map(|i| StaticSecret::generate(&mut ChaCha20Rng::seed_from_u64(seed ^ (i << 20))))
        .collect()
}

/// Runs every client of `config` to the end on the calling thread.
pub fn run(config: AttachConfig) -> io::Result<AttachReport> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(attach_all(config));
    Ok(report)
}

/// The `p`-th percentile (0..=100, nearest rank) of sorted `values`.
fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p as usize * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

async fn attach_all(config: AttachConfig) -> AttachReport {
    let start = now();
    let url: jvpn::transport::TransportUrl = match format!("udp://{}", config.server).parse() {
        Ok(url) => url,
        Err(_) => {
            return AttachReport {
                clients: config.keys.len(),
                failed: config.keys.len(),
                ..AttachReport::default()
            };
        }
    };
    let transport = jvpn::udp();
    let count = config.keys.len().max(1) as u32;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, key) in config.keys.iter().cloned().enumerate() {
        let delay = config.spread * i as u32 / count;
        let mut options = ClientOptions::new(key, config.server_key, url.clone());
        options.policy.handshake_retry = config.handshake_retry;
        let transport = transport.clone();
        let timeout = config.timeout;
        tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            let begun = now();
            let client = Client::connect(options, transport).await.ok()?;
            let attached = client.wait_attached(timeout).await.is_ok();
            let latency = now().saturating_duration_since(begun);
            Some((client, attached.then_some(latency)))
        });
    }
    let mut clients = Vec::new();
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some((client, latency))) = done {
            if let Some(latency) = latency {
                latencies.push(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX));
            }
            clients.push(client);
        }
    }
    let mut report = AttachReport {
        clients: config.keys.len(),
        attached: latencies.len(),
        failed: config.keys.len() - latencies.len(),
        ..AttachReport::default()
    };
    latencies.sort_unstable();
    report.p50_ms = percentile(&latencies, 50);
    report.p99_ms = percentile(&latencies, 99);
    report.max_ms = latencies.last().copied().unwrap_or(0);
    report.secs = now().saturating_duration_since(start).as_secs_f64();
    let close_all = async {
        for client in clients {
            // A client that cannot close cleanly is dropped; the server expires it.
            let _ = client.close().await;
        }
    };
    let _ = tokio::time::timeout(CLOSE_BOUND, close_all).await;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_one_seed_are_distinct_and_reproducible() {
        let a = keys_from_seed(7, 3);
        let b = keys_from_seed(7, 3);

        let public: Vec<_> = a.iter().map(StaticSecret::public_key).collect();
        assert_eq!(
            public,
            b.iter().map(StaticSecret::public_key).collect::<Vec<_>>()
        );
        assert_ne!(public[0], public[1]);
        assert_ne!(public[1], public[2]);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();

        assert_eq!(percentile(&values, 50), 50);
        assert_eq!(percentile(&values, 99), 99);
        assert_eq!(percentile(&[5], 99), 5);
        assert_eq!(percentile(&[], 99), 0);
    }
}
