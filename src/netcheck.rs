//! `jvpn netcheck`: which transports reach the server, how fast, and in which order to use them.
//!
//! Each candidate URL gets a real, authenticated check — not a TCP or ICMP ping, which says
//! nothing about whether a jvpn server answers there or whether a middlebox lets a handshake
//! through: a [`Client`] session over that URL alone, waited until ATTACHED, then one
//! authenticated PROBE round trip through the tunnel, then a clean CLOSE. Candidates are checked
//! one after the other, so that the server sees one session of this client at a time and the
//! timings do not disturb each other.

use std::time::Duration;

use jvpn_transport::TransportUrl;
use serde::Serialize;

use crate::clock;
use crate::error::ClientError;
use crate::transports::Transports;
use crate::{Client, ClientOptions};

/// The version of the [`NetcheckReport`] JSON layout; bumped on incompatible changes.
pub const NETCHECK_SCHEMA_VERSION: u32 = 1;

/// The outcome of one candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// The transport kind.
    pub transport: String,
    /// The URL checked.
    pub url: String,
    /// The session attached and a probe came back.
    pub reachable: bool,
    /// Why not, if not reachable.
    pub error: Option<String>,
    /// From the start (link connect included) to ATTACHED, in milliseconds.
    pub handshake_ms: Option<f64>,
    /// The authenticated PROBE round trip, in milliseconds.
    pub rtt_ms: Option<f64>,
}

/// Every candidate's outcome and the order to use them in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetcheckReport {
    /// Layout version ([`NETCHECK_SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// One per candidate, in the order given.
    pub results: Vec<CheckResult>,
    /// The reachable candidates' URLs, best first ([`recommend`]).
    pub recommended: Vec<String>,
}

/// Checks every URL of `options.servers` in turn, each within `timeout`.
pub async fn check(
    options: &ClientOptions,
    transports: &Transports,
    timeout: Duration,
) -> NetcheckReport {
    let mut results = Vec::with_capacity(options.servers.len());
    for url in &options.servers {
        results.push(check_one(options, url, transports, timeout).await);
    }
    let recommended = recommend(&results)
        .into_iter()
        .map(|i| results[i].url.clone())
        .collect();
    NetcheckReport {
        schema_version: NETCHECK_SCHEMA_VERSION,
        results,
        recommended,
    }
}

/// The order to use the candidates in: the reachable ones only, by RTT (fastest first); equal
/// RTTs (at a 1 ms resolution, below which loopback and LAN jitter decide) keep the user's order
/// of preference. Returns indices into `results`.
#[must_use]
pub fn recommend(results: &[CheckResult]) -> Vec<usize> {
    let mut order: Vec<(u64, usize)> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.reachable)
        .map(|(i, r)| {
            // Whole milliseconds; a reachable result always has an RTT.
            let ms = r.rtt_ms.map_or(u64::MAX, |ms| ms.max(0.0).floor() as u64);
            (ms, i)
        })
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, i)| i).collect()
}

async fn check_one(
    options: &ClientOptions,
    url: &TransportUrl,
    transports: &Transports,
    timeout: Duration,
) -> CheckResult {
    let mut result = CheckResult {
        transport: url.kind.to_string(),
        url: url.to_string(),
        reachable: false,
        error: None,
        handshake_ms: None,
        rtt_ms: None,
    };
    let single = ClientOptions {
        servers: vec![url.clone()],
        ..options.clone()
    };
    let started = clock::now();
    let client = match Client::connect_via(single, transports).await {
        Ok(client) => client,
        Err(error) => {
            result.error = Some(error.to_string());
            return result;
        }
    };
    let attached = client.wait_attached(timeout).await;
    let attached_at = clock::now();
    match attached {
        Ok(_) => {
            result.handshake_ms = Some(crate::tunnel::millis(attached_at - started));
            let left = timeout.saturating_sub(attached_at - started);
            match client.wait_ready(left.max(Duration::from_millis(1))).await {
                Ok(view) => {
                    result.reachable = true;
                    result.rtt_ms = view.rtt.map(crate::tunnel::millis);
                }
                Err(error) => result.error = Some(explain(&client, error).await),
            }
        }
        Err(error) => result.error = Some(explain(&client, error).await),
    }
    if let Err(error) = client.close().await {
        tracing::debug!(%error, "closing the netcheck session");
    }
    result
}

/// The most telling reason a check failed: the link's own error (connection refused, TLS
/// failure, proxy refusal) when the link never came up, else the session's.
async fn explain(client: &Client, error: ClientError) -> String {
    let link_error = client.status_source().snapshot().await.and_then(|status| {
        status
            .sessions
            .into_iter()
            .flat_map(|s| s.candidates)
            .find_map(|c| c.error)
    });
    match (link_error, error) {
        (Some(link), _) => link,
        (None, ClientError::AttachTimeout { waited }) => format!(
            "no answer within {waited:?}: the server does not run there, does not know this \
             client's key, or something drops the traffic"
        ),
        (None, error) => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(url: &str, rtt_ms: Option<f64>) -> CheckResult {
        CheckResult {
            transport: url.split(':').next().unwrap_or_default().into(),
            url: url.into(),
            reachable: rtt_ms.is_some(),
            error: rtt_ms.is_none().then(|| "refused".into()),
            handshake_ms: rtt_ms,
            rtt_ms,
        }
    }

    #[test]
    fn reachable_candidates_come_first_by_rtt_and_unreachable_ones_are_left_out() {
        let results = [
            result("udp://h:51820", None),
            result("quic://h:443", Some(30.0)),
            result("wss://h:443/jvpn", Some(12.0)),
        ];

        assert_eq!(recommend(&results), [2, 1]);
    }

    #[test]
    fn equal_rtts_keep_the_users_order_of_preference() {
        let results = [
            result("udp://h:51820", Some(0.4)),
            result("quic://h:443", Some(0.2)),
            result("wss://h:443/jvpn", Some(0.9)),
        ];

        assert_eq!(recommend(&results), [0, 1, 2]);
    }
}
