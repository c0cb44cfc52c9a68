//! Helpers of the transport-jump scenarios (tests/netns_jump.rs): a server listening on UDP, QUIC and
//! WSS at once, a client with several transports, inner UDP streams that measure the blackout of an
//! event in both directions, and readers of the audit trail (switches) and of the status (transport,
//! bindings).
//!
//! Included only by netns_jump.rs (`#[path]`), next to the shared `support` module.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use jvpn_netns::traffic::millis;
use jvpn_netns::traffic::udp::{
    DEFAULT_GAP_THRESHOLD, DEFAULT_INTERVAL, Gap, StreamReport, UdpStreamReceiver, UdpStreamSender,
};
use jvpn_netns::{Deadline, Namespace, wait_for};
use serde_json::Value;

use crate::support::{
    Keys, Node, NodeFiles, SERVER_INNER, STARTUP, config_file_args, session_id, session_state,
};

/// The server's UDP port (jvpn's default).
pub(crate) const UDP_PORT: u16 = 51820;
/// The server's QUIC port (UDP; the client's default for `quic`).
pub(crate) const QUIC_PORT: u16 = 443;
/// The server's WSS port (TCP; the client's default for `wss`).
pub(crate) const WSS_PORT: u16 = 443;
/// The client's inner address.
pub(crate) const CLIENT_INNER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The client's inner prefix, as `--address` and the server's `--peer` take it.
pub(crate) const CLIENT_ALLOWED: &str = "10.77.0.2/32";
/// Every transport, in the order of preference the scenarios use.
pub(crate) const ALL_TRANSPORTS: &str = "udp,quic,wss";

/// The wall clock in milliseconds since the Unix epoch, to line up events of the test with the
/// `unix_ms` of audit records written by the jvpn processes.
#[expect(
    clippy::disallowed_methods,
    reason = "the test lines its own events up with the audit log's wall-clock timestamps"
)]
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `-c FILE` arguments for a `[policy]` table body (`None`: the built-in defaults).
fn policy_args(dir: &Path, name: &str, policy: Option<&str>) -> Vec<String> {
    match policy {
        None => Vec::new(),
        Some(body) => config_file_args(dir, name, &format!("[policy]\n{body}")),
    }
}

/// Starts `jvpn server` in `ns` listening on UDP 51820, QUIC 443 and WSS 443 (`/jvpn`) on
/// `listen` (`0.0.0.0`: every address), inner 10.77.0.1/24, serving `peers`, with the `[policy]`
/// body `policy`.
pub(crate) fn start_jump_server(
    ns: &Namespace,
    dir: &Path,
    name: &str,
    (key, listen): (&Keys, Ipv4Addr),
    peers: &[(&Keys, &str)],
    policy: Option<&str>,
) -> Node {
    let files = NodeFiles::new(dir, name);
    let listen = [
        format!("udp://{listen}:{UDP_PORT}"),
        format!("quic://{listen}:{QUIC_PORT}"),
        format!("wss://{listen}:{WSS_PORT}/jvpn"),
    ];
    let mut args = files.server_args(key, &listen, peers);
    args.extend(policy_args(dir, name, policy));
    files.spawn_server(ns, &args)
}

/// How a jump client is started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientSpec<'a> {
    /// `--transports`.
    pub(crate) transports: &'a str,
    /// `--proxy`, if any.
    pub(crate) proxy: Option<&'a str>,
    /// The `[policy]` body, `None` for the defaults.
    pub(crate) policy: Option<&'a str>,
}

/// Starts `jvpn connect --transports SPEC SERVER_HOST` in `ns` (host only: each transport uses its
/// default port), inner [`CLIENT_ALLOWED`].
pub(crate) fn start_jump_client(
    ns: &Namespace,
    dir: &Path,
    name: &str,
    (key, server_key): (&Keys, &Keys),
    host: Ipv4Addr,
    spec: ClientSpec<'_>,
) -> Node {
    let files = NodeFiles::new(dir, name);
    let mut args = files.client_args((key, server_key), CLIENT_ALLOWED, spec.transports);
    if let Some(proxy) = spec.proxy {
        args.push("--proxy".into());
        args.push(proxy.into());
    }
    args.extend(policy_args(dir, name, spec.policy));
    args.push(host.to_string());
    files.spawn(ns, &args, "jvpn connect starts")
}

/// The transport carrying the status's first session (`"udp"`, `"quic"`, `"wss"`).
pub(crate) fn transport(status: &Value) -> Option<&str> {
    status["sessions"].get(0)?["transport"].as_str()
}

/// Waits until the client's session is carried by `kind` while ATTACHED (or another bound state),
/// at most `timeout`; returns the status and how long it took.
pub(crate) fn wait_transport(node: &Node, kind: &str, timeout: Duration) -> (Value, Duration) {
    let waited = Deadline::after(timeout);
    let status = node.wait_status(
        timeout,
        &format!("the session to be carried by {kind}"),
        |s| {
            transport(s) == Some(kind)
                && matches!(
                    crate::support::session_state(s),
                    Some("ATTACHED" | "VOLATILE" | "DEGRADED")
                )
        },
    );
    (status, waited.elapsed())
}

/// Sessions of a status that are not TERMINATED (the server's live bindings, one per session).
pub(crate) fn live_sessions(status: &Value) -> Vec<&Value> {
    status["sessions"]
        .as_array()
        .map(|all| all.iter().filter(|s| s["state"] != "TERMINATED").collect())
        .unwrap_or_default()
}

/// Candidates of the status's first session marked `"active"`.
pub(crate) fn active_candidates(status: &Value) -> usize {
    status["sessions"]
        .get(0)
        .and_then(|s| s["candidates"].as_array())
        .map_or(0, |c| c.iter().filter(|c| c["state"] == "active").count())
}

/// One rebind seen in an audit trail: a record whose binding epoch is higher than every earlier
/// record's, after the first binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Switch {
    pub(crate) epoch: u64,
    pub(crate) transport: Option<String>,
    pub(crate) reason: String,
    pub(crate) to: String,
    pub(crate) unix_ms: u64,
}

/// The rebinds of `session` in `records` (audit records, oldest first).
pub(crate) fn switches(records: &[Value], session: &str) -> Vec<Switch> {
    let mut out = Vec::new();
    let mut highest: Option<u64> = None;
    for r in records.iter().filter(|r| r["session_id"] == session) {
        let Some(epoch) = r["epoch"].as_u64() else {
            continue;
        };
        if epoch == 0 {
            continue;
        }
        match highest {
            None => highest = Some(epoch),
            Some(h) if epoch > h => {
                highest = Some(epoch);
                out.push(Switch {
                    epoch,
                    transport: r["transport"].as_str().map(str::to_owned),
                    reason: r["reason"].as_str().unwrap_or_default().to_owned(),
                    to: r["to"].as_str().unwrap_or_default().to_owned(),
                    unix_ms: r["unix_ms"].as_u64().unwrap_or_default(),
                });
            }
            Some(_) => {}
        }
    }
    out
}

/// The audit records as one compact line each, for failure messages and the test's output.
pub(crate) fn show(records: &[Value]) -> String {
    records
        .iter()
        .map(|r| {
            format!(
                "  v{} {} -> {} {} epoch {} {} @{}",
                r["version"],
                r["from"].as_str().unwrap_or("?"),
                r["to"].as_str().unwrap_or("?"),
                r["reason"].as_str().unwrap_or("?"),
                r["epoch"],
                r["transport"].as_str().unwrap_or("-"),
                r["unix_ms"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Two inner UDP streams through the tunnel, one datagram every 5 ms each way (client → server and
/// server → client), each receiver recording its gaps: the blackout meter of the scenarios.
#[derive(Debug)]
pub(crate) struct Streams {
    up_tx: UdpStreamSender,
    up_rx: UdpStreamReceiver,
    down_tx: UdpStreamSender,
    down_rx: UdpStreamReceiver,
}

/// The time of an event on both receivers' clocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    up: Duration,
    down: Duration,
}

/// The blackout of one event, each way (`None`: no gap of 50 ms or more ended after the event).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blackout {
    pub(crate) up: Option<Gap>,
    pub(crate) down: Option<Gap>,
}

impl Blackout {
    /// The longer of the two directions (zero when neither saw a gap).
    pub(crate) fn worst(&self) -> Duration {
        let len = |g: Option<Gap>| g.map_or(Duration::ZERO, |g| g.length);
        len(self.up).max(len(self.down))
    }

    /// `up 312.0 ms, down 298.5 ms` for the test's output.
    pub(crate) fn describe(&self) -> String {
        let one = |g: Option<Gap>| {
            g.map_or("< 50 ms".to_owned(), |g| {
                format!("{:.1} ms", millis(g.length))
            })
        };
        format!("up {}, down {}", one(self.up), one(self.down))
    }
}

impl Streams {
    /// Starts both streams on inner UDP port `port` and waits until both flow (at most 20 s).
    pub(crate) fn start(
        client: &Namespace,
        server: &Namespace,
        port: u16,
        bound: Duration,
    ) -> Self {
        let deadline = Deadline::after(bound);
        let bind = |ns: &Namespace, addr: Ipv4Addr| {
            ns.run_in(STARTUP, move || {
                UdpSocket::bind(SocketAddr::from((addr, port)))
            })
            .expect("enter the namespace")
            .expect("bind an inner UDP socket")
        };
        let up_rx =
            UdpStreamReceiver::start(bind(server, SERVER_INNER), DEFAULT_GAP_THRESHOLD, deadline)
                .expect("start the client → server receiver");
        let down_rx =
            UdpStreamReceiver::start(bind(client, CLIENT_INNER), DEFAULT_GAP_THRESHOLD, deadline)
                .expect("start the server → client receiver");
        let up_tx = UdpStreamSender::start(
            bind_any(client, CLIENT_INNER),
            SocketAddr::from((SERVER_INNER, port)),
            DEFAULT_INTERVAL,
            deadline,
        )
        .expect("start the client → server stream");
        let down_tx = UdpStreamSender::start(
            bind_any(server, SERVER_INNER),
            SocketAddr::from((CLIENT_INNER, port)),
            DEFAULT_INTERVAL,
            deadline,
        )
        .expect("start the server → client stream");
        let streams = Self {
            up_tx,
            up_rx,
            down_tx,
            down_rx,
        };
        streams.wait_flowing(Duration::from_secs(20), "the inner UDP streams to flow");
        streams
    }

    /// Waits until a datagram arrived in the last 100 ms each way, at most `timeout`.
    pub(crate) fn wait_flowing(&self, timeout: Duration, what: &str) {
        let recent = Duration::from_millis(100);
        wait_for(timeout, Duration::from_millis(20), what, || {
            let (up, down) = (self.up_rx.snapshot(), self.down_rx.snapshot());
            (up.received > 0
                && down.received > 0
                && up.silent_for < recent
                && down.silent_for < recent)
                .then_some(())
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}: up {:?}, down {:?}",
                self.up_rx.snapshot(),
                self.down_rx.snapshot()
            )
        });
    }

    /// The current time on both receivers' clocks: take it right before an event.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            up: self.up_rx.elapsed(),
            down: self.down_rx.elapsed(),
        }
    }

    /// The longest gap each way that ended after `mark`.
    pub(crate) fn blackout_after(&self, mark: Mark) -> Blackout {
        Blackout {
            up: self.up_rx.snapshot().largest_gap_after(mark.up),
            down: self.down_rx.snapshot().largest_gap_after(mark.down),
        }
    }

    /// Gaps each way that ended after `mark`.
    pub(crate) fn gaps_after(&self, mark: Mark) -> (Vec<Gap>, Vec<Gap>) {
        let after = |r: StreamReport, at: Duration| -> Vec<Gap> {
            r.gaps.into_iter().filter(|g| g.end() > at).collect()
        };
        (
            after(self.up_rx.snapshot(), mark.up),
            after(self.down_rx.snapshot(), mark.down),
        )
    }

    /// Stops all four threads; returns the receivers' final reports (up, down).
    pub(crate) fn stop(self) -> (StreamReport, StreamReport) {
        self.up_tx.stop();
        self.down_tx.stop();
        (self.up_rx.stop(), self.down_rx.stop())
    }
}

/// A UDP socket in `ns` bound to `addr` on an ephemeral port.
fn bind_any(ns: &Namespace, addr: Ipv4Addr) -> UdpSocket {
    ns.run_in(STARTUP, move || {
        UdpSocket::bind(SocketAddr::from((addr, 0)))
    })
    .expect("enter the namespace")
    .expect("bind an inner UDP socket")
}

/// What [`Watch`] saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) polls: u32,
    pub(crate) states: std::collections::BTreeSet<String>,
    pub(crate) sessions: std::collections::BTreeSet<String>,
    pub(crate) max_server_sessions: usize,
    pub(crate) max_active: usize,
}

/// Polls the client's and the server's status on a thread until stopped.
pub(crate) struct Watch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<Seen>,
}

impl Watch {
    pub(crate) fn start(client: &Node, server: &Node) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (client, server, flag) = (client.clone(), server.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut seen = Seen::default();
            let bound = Deadline::after(Duration::from_secs(120));
            while !flag.load(std::sync::atomic::Ordering::Relaxed) && !bound.expired() {
                if let (Some(c), Some(s)) = (client.status(), server.status()) {
                    seen.polls += 1;
                    if let Some(state) = session_state(&c) {
                        seen.states.insert(state.to_owned());
                    }
                    if let Some(id) = session_id(&c) {
                        seen.sessions.insert(id);
                    }
                    seen.max_server_sessions =
                        seen.max_server_sessions.max(live_sessions(&s).len());
                    seen.max_active = seen.max_active.max(active_candidates(&c));
                }
                bound.sleep(Duration::from_millis(100));
            }
            seen
        });
        Self { stop, handle }
    }

    pub(crate) fn stop(self) -> Seen {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().expect("the watcher does not panic")
    }
}
