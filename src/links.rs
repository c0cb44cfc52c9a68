//! The client's links: one per candidate server URL, each kept open by its own task.
//!
//! A candidate task connects its link in the background (so an unreachable candidate never
//! delays the others), retries a failed connect after a bounded, deterministic backoff
//! ([`backoff`]: 250 ms doubling to 10 s, no jitter, so tests and the audit trail replay), and
//! once connected reads datagrams into recycled buffers and hands them, tagged with the
//! candidate's [`PathId`], to the one channel the driver waits on. A link that fails for good
//! (the QUIC connection or the TCP stream is gone) is reported down and connected again.
//!
//! The driver owns the sending side: `Links::send` puts a datagram on the link of its path, or
//! counts it as dropped when that link is down. Whether a path is *good* is never decided here
//! (a connected UDP socket says nothing about the server); the session's prober decides that.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jvpn_session::PathId;
use jvpn_transport::{Link, LinkInfo, Transport, TransportUrl};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::clock;
use crate::driver::{self, BufferPool};

/// The first wait after a failed connect.
pub const BACKOFF_START: Duration = Duration::from_millis(250);

/// The longest wait between two connect attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Buffers circulating between the candidate tasks and the driver.
const RECV_BUFFERS: usize = 256;

/// The wait before connect attempt `failures + 1`, after `failures` failed attempts in a row:
/// [`BACKOFF_START`] doubled per failure, at most [`BACKOFF_MAX`].
#[must_use]
pub fn backoff(failures: u32) -> Duration {
    BACKOFF_START
        .checked_mul(1u32.checked_shl(failures).unwrap_or(u32::MAX))
        .map_or(BACKOFF_MAX, |d| d.min(BACKOFF_MAX))
}

/// One server URL to try, with the transport that reaches it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) url: TransportUrl,
    pub(crate) transport: Arc<dyn Transport>,
}

/// What a candidate task reports to the driver.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// One datagram: `buf[..len]`. Give `buf` back with [`Links::recycle`].
    Datagram {
        path: PathId,
        buf: Vec<u8>,
        len: usize,
    },
    /// The link of `path` is connected.
    Up { path: PathId, link: Arc<dyn Link> },
    /// The link of `path` failed and is being connected again.
    Down { path: PathId, error: String },
    /// A connect attempt failed; the next one follows after `retry_in`.
    ConnectFailed {
        path: PathId,
        error: String,
        retry_in: Duration,
    },
}

/// What is known of one candidate's link, for status reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkReport {
    /// The candidate's path id (its index in the candidate list).
    pub path: PathId,
    /// The server URL.
    pub url: TransportUrl,
    /// The link is connected.
    pub up: bool,
    /// What the link said of itself when it came up.
    #[serde(skip)]
    pub info: Option<LinkInfo>,
    /// The last connect or receive error, if the link is down because of it.
    pub last_error: Option<String>,
    /// Connect attempts that failed in a row.
    pub connect_failures: u32,
    /// Datagrams the session sent on this path while its link was down (or refused by it).
    pub send_drops: u64,
    /// When the link last came up.
    #[serde(skip)]
    pub up_since: Option<Instant>,
}

#[derive(Debug)]
struct Slot {
    url: TransportUrl,
    link: Option<Arc<dyn Link>>,
    info: Option<LinkInfo>,
    last_error: Option<String>,
    connect_failures: u32,
    send_drops: u64,
    up_since: Option<Instant>,
}

/// Every candidate's link, as the driver sees them. Dropping it stops the candidate tasks.
#[derive(Debug)]
pub(crate) struct Links {
    slots: Vec<Slot>,
    events: mpsc::Receiver<LinkEvent>,
    recycle: mpsc::Sender<Vec<u8>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Links {
    /// Starts one task per candidate; candidate `i` is [`PathId`]`(i)`.
    pub(crate) fn start(candidates: Vec<Candidate>) -> Links {
        let (events_tx, events) = mpsc::channel(RECV_BUFFERS);
        let (recycle, pool) = driver::buffer_pool(RECV_BUFFERS);
        let mut slots = Vec::with_capacity(candidates.len());
        let mut tasks = Vec::with_capacity(candidates.len());
        for (index, candidate) in candidates.into_iter().enumerate() {
            let path = PathId(u32::try_from(index).unwrap_or(u32::MAX));
            slots.push(Slot {
                url: candidate.url.clone(),
                link: None,
                info: None,
                last_error: None,
                connect_failures: 0,
                send_drops: 0,
                up_since: None,
            });
            tasks.push(tokio::spawn(run_candidate(
                path,
                candidate,
                events_tx.clone(),
                Arc::clone(&pool),
            )));
        }
        Links {
            slots,
            events,
            recycle,
            tasks,
        }
    }

    /// The next report from a candidate task. Cancel-safe (a channel receive): nothing is lost
    /// when the driver's `select!` picks another branch.
    pub(crate) async fn next(&mut self) -> Option<LinkEvent> {
        self.events.recv().await
    }

    /// Records an `Up`, `Down` or `ConnectFailed` report (datagrams change nothing here).
    pub(crate) fn apply(&mut self, event: &LinkEvent) {
        match event {
            LinkEvent::Datagram { .. } => {}
            LinkEvent::Up { path, link } => {
                if let Some(slot) = self.slot_mut(*path) {
                    slot.info = Some(link.info());
                    slot.link = Some(Arc::clone(link));
                    slot.last_error = None;
                    slot.connect_failures = 0;
                    slot.up_since = Some(clock::now());
                }
            }
            LinkEvent::Down { path, error } => {
                if let Some(slot) = self.slot_mut(*path) {
                    slot.link = None;
                    slot.up_since = None;
                    slot.last_error = Some(error.clone());
                }
            }
            LinkEvent::ConnectFailed { path, error, .. } => {
                if let Some(slot) = self.slot_mut(*path) {
                    slot.connect_failures = slot.connect_failures.saturating_add(1);
                    slot.last_error = Some(error.clone());
                }
            }
        }
    }

    /// Gives a datagram buffer back to the candidate tasks.
    pub(crate) fn recycle(&self, buf: Vec<u8>) {
        // A full pool means enough buffers circulate; this one is simply freed.
        let _ = self.recycle.try_send(buf);
    }

    /// Sends one datagram on the link of `path`. A datagram for a path whose link is down is
    /// counted and dropped: loss is the session's business (retries, dead-path detection).
    pub(crate) async fn send(&mut self, path: PathId, datagram: &[u8]) {
        let Some(slot) = self.slot_mut(path) else {
            return;
        };
        let Some(link) = &slot.link else {
            slot.send_drops += 1;
            return;
        };
        let result = match link.try_send(datagram) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => link.send(datagram).await,
            other => other,
        };
        if let Err(error) = result {
            slot.send_drops += 1;
            tracing::debug!(%error, path = path.0, "link send error");
        }
    }

    /// The number of candidates.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the link of `path` is connected.
    pub(crate) fn is_up(&self, path: PathId) -> bool {
        self.slot(path).is_some_and(|s| s.link.is_some())
    }

    /// The candidate's URL.
    pub(crate) fn url(&self, path: PathId) -> Option<&TransportUrl> {
        self.slot(path).map(|s| &s.url)
    }

    /// The first connected candidate at or after `from` in preference order, wrapping around.
    pub(crate) fn next_up_from(&self, from: usize) -> Option<PathId> {
        let n = self.slots.len();
        (0..n)
            .map(|i| (from + i) % n)
            .find(|&i| self.slots[i].link.is_some())
            .map(path_of)
    }

    /// A snapshot of every candidate.
    pub(crate) fn reports(&self) -> Vec<LinkReport> {
        self.slots
            .iter()
            .enumerate()
            .map(|(i, s)| LinkReport {
                path: path_of(i),
                url: s.url.clone(),
                up: s.link.is_some(),
                info: s.info.clone(),
                last_error: s.last_error.clone(),
                connect_failures: s.connect_failures,
                send_drops: s.send_drops,
                up_since: s.up_since,
            })
            .collect()
    }

    fn slot(&self, path: PathId) -> Option<&Slot> {
        self.slots.get(usize::try_from(path.0).ok()?)
    }

    fn slot_mut(&mut self, path: PathId) -> Option<&mut Slot> {
        self.slots.get_mut(usize::try_from(path.0).ok()?)
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn path_of(index: usize) -> PathId {
    PathId(u32::try_from(index).unwrap_or(u32::MAX))
}

/// Keeps one candidate's link open for as long as the driver listens.
async fn run_candidate(
    path: PathId,
    candidate: Candidate,
    out: mpsc::Sender<LinkEvent>,
    pool: BufferPool,
) {
    let mut failures = 0u32;
    loop {
        match candidate.transport.connect(&candidate.url).await {
            Ok(link) => {
                failures = 0;
                let link: Arc<dyn Link> = Arc::from(link);
                let up = LinkEvent::Up {
                    path,
                    link: Arc::clone(&link),
                };
                if out.send(up).await.is_err() {
                    return;
                }
                let Some(error) = read_link(path, link.as_ref(), &out, &pool).await else {
                    return;
                };
                tracing::info!(%error, url = %candidate.url, "link down; connecting again");
                if out.send(LinkEvent::Down { path, error }).await.is_err() {
                    return;
                }
                link.close().await;
                drop(link);
                // A link that just failed is not retried in a tight loop either.
                tokio::time::sleep(backoff(0)).await;
            }
            Err(error) => {
                let retry_in = backoff(failures);
                failures = failures.saturating_add(1);
                let failed = LinkEvent::ConnectFailed {
                    path,
                    error: error.to_string(),
                    retry_in,
                };
                if out.send(failed).await.is_err() {
                    return;
                }
                tokio::time::sleep(retry_in).await;
            }
        }
    }
}

/// Forwards datagrams until the link fails for good (its error, as text) or the driver is gone
/// (`None`).
async fn read_link(
    path: PathId,
    link: &dyn Link,
    out: &mpsc::Sender<LinkEvent>,
    pool: &BufferPool,
) -> Option<String> {
    loop {
        let mut buf = driver::take_buffer(pool);
        match link.recv(&mut buf).await {
            Ok(len) => {
                if out
                    .send(LinkEvent::Datagram { path, buf, len })
                    .await
                    .is_err()
                {
                    return None;
                }
            }
            Err(error) if is_transient(&error) => {
                // ICMP-induced errors on UDP, an oversized datagram: the link itself lives on.
                tracing::debug!(%error, path = path.0, "link receive error");
                if !is_consumed(&error) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            Err(error) => return Some(error.to_string()),
        }
    }
}

/// Receive errors after which the link still works.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::InvalidData
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// Transient errors that one arriving packet caused and the failed call consumed (an ICMP error
/// report, a truncated datagram): the next receive reads the next datagram, so there is no reason
/// to pause. Pausing would hand a spoofer of ICMP errors the receive path: at one error per 10 ms
/// the reader would sleep all the time and the session would see its path die (ATTACKS.md S27).
fn is_consumed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::InvalidData
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_250_ms_and_stops_at_10_s() {
        let waits: Vec<u128> = (0..8).map(|n| backoff(n).as_millis()).collect();

        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn a_refused_udp_receive_is_transient_and_a_lost_connection_is_not() {
        assert!(is_transient(&io::ErrorKind::ConnectionRefused.into()));
        assert!(!is_transient(&io::ErrorKind::ConnectionAborted.into()));
        assert!(!is_transient(&io::ErrorKind::TimedOut.into()));
    }

    #[test]
    fn an_icmp_error_report_is_read_past_without_a_pause() {
        assert!(is_consumed(&io::ErrorKind::ConnectionRefused.into()));
        assert!(is_consumed(&io::ErrorKind::HostUnreachable.into()));
        assert!(!is_consumed(&io::ErrorKind::Interrupted.into()));
    }
}
