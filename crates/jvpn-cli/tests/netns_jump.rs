//! Transport-jump scenarios (issue 4, a–g) with the real `jvpn` binary across network namespaces:
//! a server listening on UDP 51820, QUIC 443 and WSS 443 at once, a client with `--transports
//! udp,quic,wss`, nftables rules that drop UDP (or everything) like a middlebox, a path that
//! disappears, and an HTTP CONNECT proxy as the only way out.
//!
//! Every scenario measures what a user would feel and prints it: the **blackout** (the longest gap of
//! an inner UDP stream of one datagram every 5 ms, each way, around the event: last inner packet
//! before → first after), the time until the session is on its new transport (from the audit log's
//! timestamps), the switches (rebinds: the audit log's epoch increments), and for the bulk transfer
//! the longest receive stall. Behaviour is checked from the audit log (`--audit-log`, JSON lines)
//! and `jvpn status --json`.
//!
//! They need root, `nft` (nftables) and, for the proxy scenario, `tinyproxy`. Without them each test
//! prints `skipping: <reason>` and passes; with `JVPN_NETNS_REQUIRE=1` (CI) a missing capability
//! fails it instead. The scenarios run one at a time (a process-wide lock): their time bounds are
//! derived from the policy in force, and two of them sharing the 2-core machine would only add
//! noise. The whole file takes about two minutes.

#[path = "support/jump.rs"]
mod jump;
#[expect(
    dead_code,
    reason = "the support module is shared with netns_tunnel.rs, which uses the parts this file does not"
)]
mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jvpn_netns::traffic::millis;
use jvpn_netns::traffic::tcp::{self, TcpSink};
use jvpn_netns::{Block, Deadline, Testbed, wait_for};

use jump::{
    ALL_TRANSPORTS, CLIENT_ALLOWED, ClientSpec, QUIC_PORT, Streams, WSS_PORT, Watch, live_sessions,
    show, start_jump_client, start_jump_server, switches, transport, unix_ms, wait_transport,
};
use support::{
    Node, SERVER_INNER, genkey, link_exists, ping_all, session_id, testbed, tun_name, wait_ping,
    workdir,
};

/// Inner UDP port of the blackout streams.
const STREAM_PORT: u16 = 6001;
/// Inner TCP port of the bulk transfer.
const XFER_PORT: u16 = 5001;
/// Bound for a session to reach its new transport after an event: far more than any policy here
/// needs (the default detects a dead path within ~5 probe intervals and reattaches at once), far
/// less than the default recovery window (120 s).
const MOVE: Duration = Duration::from_secs(30);

/// One scenario at a time: the timing criteria come from the policy, not from a quiet machine, but
/// two scenarios at once on two cores would only add noise to the figures they print.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keys, a server (UDP, QUIC, WSS) in `server_ns` and a client in `client_ns` towards `host`.
struct Pair {
    /// Keys, sockets, audit logs and configs: alive as long as the processes.
    _dir: tempfile::TempDir,
    server: Node,
    client: Node,
}

fn start_pair(
    client_ns: &jvpn_netns::Namespace,
    server_ns: &jvpn_netns::Namespace,
    (host, listen): (Ipv4Addr, Ipv4Addr),
    spec: ClientSpec<'_>,
) -> Pair {
    let dir = workdir();
    let server_keys = genkey(dir.path(), "server");
    let client_keys = genkey(dir.path(), "client");
    let server = start_jump_server(
        server_ns,
        dir.path(),
        "server",
        (&server_keys, listen),
        &[(&client_keys, CLIENT_ALLOWED)],
        spec.policy,
    );
    let client = start_jump_client(
        client_ns,
        dir.path(),
        "client",
        (&client_keys, &server_keys),
        host,
        spec,
    );
    Pair {
        _dir: dir,
        server,
        client,
    }
}

/// A client and a server namespace joined by one veth path, and a pair on it; the client waits for
/// its first inner round trip on UDP (the preferred transport).
fn one_path(
    tb: &Testbed,
    policy: Option<&str>,
) -> (Pair, jvpn_netns::Namespace, jvpn_netns::Namespace) {
    let client_ns = tb.add_namespace("client").expect("client namespace");
    let server_ns = tb.add_namespace("server").expect("server namespace");
    let path = tb.link(&client_ns, &server_ns).expect("a veth path");
    let pair = start_pair(
        &client_ns,
        &server_ns,
        (path.b_addr, Ipv4Addr::UNSPECIFIED),
        ClientSpec {
            transports: ALL_TRANSPORTS,
            proxy: None,
            policy,
        },
    );
    pair.client.wait_ready(SERVER_INNER);
    wait_transport(&pair.client, "udp", support::ATTACH);
    (pair, client_ns, server_ns)
}

/// The session id the client's status shows (it must have one once attached).
fn current_session(node: &Node) -> String {
    let status = node.status().expect("the client answers its status");
    session_id(&status).expect("an attached session has an id")
}

/// The first switch (rebind) of `session` onto `kind` in `node`'s audit log, with the log.
fn switch_to(node: &Node, session: &str, kind: &str) -> (jump::Switch, Vec<serde_json::Value>) {
    let records = node.audit_records();
    let found = switches(&records, session)
        .into_iter()
        .find(|s| s.transport.as_deref() == Some(kind))
        .unwrap_or_else(|| {
            panic!(
                "the audit log shows a rebind of session {session} onto {kind}:\n{}",
                show(&records)
            )
        });
    (found, records)
}

fn assert_never_terminated(records: &[serde_json::Value], session: &str) {
    let ended: Vec<_> = records
        .iter()
        .filter(|r| r["session_id"] == session && r["to"] == "TERMINATED")
        .collect();
    assert!(
        ended.is_empty(),
        "session {session} is never TERMINATED:\n{}",
        show(records)
    );
}

/// a. All UDP dropped in the middle of a 200 MB inner TCP transfer: the session continues on WSS,
/// the transfer completes with the same SHA-256 at both ends, the inner connection is never reset.
#[test]
fn all_udp_dropped_mid_transfer_continues_on_wss_and_the_inner_tcp_connection_survives() {
    let _serial = serial();
    let Some(tb) = testbed("jump_a_udp_dropped", &["nft"]) else {
        return;
    };
    let (pair, client_ns, server_ns) = one_path(&tb, None);
    let session = current_session(&pair.client);
    let streams = Streams::start(
        &client_ns,
        &server_ns,
        STREAM_PORT,
        Duration::from_secs(300),
    );
    let bytes: u64 = 200 * 1024 * 1024;
    let deadline = Deadline::after(Duration::from_secs(240));
    let target = SocketAddr::from((SERVER_INNER, XFER_PORT));
    let listener = server_ns
        .run_in(support::STARTUP, move || TcpListener::bind(target))
        .expect("enter the server namespace")
        .expect("bind the inner TCP receiver");
    let sink = TcpSink::start(listener, deadline).expect("start the receiver");
    let sender_ns = client_ns.clone();
    let sender = std::thread::spawn(move || {
        sender_ns.run_in(Duration::from_secs(250), move || {
            let stream = TcpStream::connect_timeout(&target, Duration::from_secs(10))?;
            tcp::send(stream, bytes, 200, deadline)
        })
    });
    wait_for(
        Duration::from_secs(120),
        Duration::from_millis(10),
        "50 MB to arrive",
        || (sink.received() >= 50 * 1024 * 1024 || sink.is_finished()).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}: only {} bytes arrived over UDP", sink.received()));
    let at_block = sink.received();
    assert!(
        at_block < bytes,
        "the block happens in the middle of the transfer"
    );

    let mark = streams.mark();
    let blocked_ms = unix_ms();
    tb.block_everywhere(Block::Udp).expect("drop all UDP");
    let (_, waited) = wait_transport(&pair.client, "wss", MOVE);
    streams.wait_flowing(MOVE, "the inner UDP streams to flow again over WSS");
    let sent = sender
        .join()
        .expect("the sender thread does not panic")
        .expect("the sender finishes in time");
    let received = sink.finish();

    let blackout = streams.blackout_after(mark);
    let (moved, records) = switch_to(&pair.client, &session, "wss");
    let sent = sent.unwrap_or_else(|e| panic!("the inner TCP sender failed (reset?): {e}"));
    let received =
        received.unwrap_or_else(|e| panic!("the inner TCP receiver failed (reset?): {e}"));
    let rebinds = switches(&records, &session);
    println!("client audit trail:\n{}", show(&records));
    println!(
        "scenario a: UDP dropped at {:.0} MB of {} MB; blackout {}; on WSS {} ms after the block \
         (status seen after {:.0} ms); inner TCP longest stall {:.0} ms (at {:.0} MB); {} switch(es): {:?}",
        at_block as f64 / 1048576.0,
        bytes / 1048576,
        blackout.describe(),
        moved.unix_ms.saturating_sub(blocked_ms),
        millis(waited),
        millis(received.max_stall),
        received.max_stall_at_byte as f64 / 1048576.0,
        rebinds.len(),
        rebinds
            .iter()
            .map(|s| s.transport.clone())
            .collect::<Vec<_>>(),
    );
    assert_eq!(received.bytes, bytes, "every byte arrived");
    assert_eq!(
        received.sha256, sent.sha256,
        "what arrived is what was sent"
    );
    assert_eq!(
        current_session(&pair.client),
        session,
        "the same session carries on"
    );
    assert_never_terminated(&records, &session);
    assert!(
        blackout.up.is_some() && blackout.down.is_some(),
        "dropping UDP interrupts the inner streams, and they come back: {}",
        blackout.describe()
    );
    assert!(
        blackout.worst() < MOVE,
        "the blackout ends well within the bound of a move: {}",
        blackout.describe()
    );
    streams.stop();
    drop(pair);
}

/// b. UDP dropped except the QUIC port: the session moves to QUIC.
#[test]
fn udp_dropped_except_the_quic_port_moves_the_session_to_quic() {
    let _serial = serial();
    let Some(tb) = testbed("jump_b_quic_only", &["nft"]) else {
        return;
    };
    let (pair, client_ns, server_ns) = one_path(&tb, None);
    let session = current_session(&pair.client);
    let streams = Streams::start(
        &client_ns,
        &server_ns,
        STREAM_PORT,
        Duration::from_secs(120),
    );

    let mark = streams.mark();
    let blocked_ms = unix_ms();
    tb.block_everywhere(Block::UdpExceptPort(QUIC_PORT))
        .expect("drop UDP except the QUIC port");
    let (_, waited) = wait_transport(&pair.client, "quic", MOVE);
    streams.wait_flowing(MOVE, "the inner UDP streams to flow again over QUIC");

    let blackout = streams.blackout_after(mark);
    let (moved, records) = switch_to(&pair.client, &session, "quic");
    println!("client audit trail:\n{}", show(&records));
    println!(
        "scenario b: UDP dropped except port {QUIC_PORT}; blackout {}; on QUIC {} ms after the \
         block (status seen after {:.0} ms), reason {}",
        blackout.describe(),
        moved.unix_ms.saturating_sub(blocked_ms),
        millis(waited),
        moved.reason
    );
    assert_eq!(
        current_session(&pair.client),
        session,
        "the same session carries on"
    );
    assert_never_terminated(&records, &session);
    assert!(
        ping_all(&client_ns, SERVER_INNER, 3),
        "inner ping over QUIC"
    );
    streams.stop();
}

/// The return scenario's policy: standby paths probed every second even while dead (the default
/// backs off to 20 s), and a dwell of two standby probe periods, so that "dwell + one probe period"
/// is a few seconds.
const RETURN_POLICY: &str = "probe_interval_ms = 500\n\
    probe_timeout_min_ms = 500\n\
    standby_probe_factor = 2\n\
    standby_probe_max_interval_ms = 1000\n\
    dwell_ms = 2000\n";
/// [`RETURN_POLICY`]'s dwell.
const RETURN_DWELL: Duration = Duration::from_millis(2000);
/// [`RETURN_POLICY`]'s standby probe period (`standby_probe_factor × probe_interval`, also the cap).
const RETURN_STANDBY_PERIOD: Duration = Duration::from_millis(1000);
/// Beyond dwell + one probe period: one active-path probe period (500 ms: when the controller
/// looks again) and 500 ms for the reattach round trip and scheduling on a loaded 2-core machine.
const RETURN_TOLERANCE: Duration = Duration::from_millis(1000);

/// c. The block lifted: the session moves back up to UDP within the policy's dwell plus one probe
/// period (plus [`RETURN_TOLERANCE`]).
#[test]
fn the_block_lifted_moves_the_session_back_to_udp_within_dwell_and_one_probe_period() {
    let _serial = serial();
    let Some(tb) = testbed("jump_c_back_to_udp", &["nft"]) else {
        return;
    };
    let (pair, client_ns, server_ns) = one_path(&tb, Some(RETURN_POLICY));
    let session = current_session(&pair.client);
    let streams = Streams::start(
        &client_ns,
        &server_ns,
        STREAM_PORT,
        Duration::from_secs(120),
    );
    tb.block_everywhere(Block::UdpExceptPort(QUIC_PORT))
        .expect("drop UDP except the QUIC port");
    wait_transport(&pair.client, "quic", MOVE);
    streams.wait_flowing(MOVE, "the inner UDP streams to flow over QUIC");
    // Let the UDP candidate be known dead (its probes fail) before the block is lifted.
    std::thread::sleep(RETURN_STANDBY_PERIOD * 3);

    let mark = streams.mark();
    let lifted_ms = unix_ms();
    tb.unblock_everywhere().expect("lift the block");
    let (_, waited) = wait_transport(&pair.client, "udp", MOVE);
    streams.wait_flowing(MOVE, "the inner UDP streams to flow over UDP again");

    let records = pair.client.audit_records();
    let back = switches(&records, &session)
        .into_iter()
        .rfind(|s| s.transport.as_deref() == Some("udp"))
        .unwrap_or_else(|| panic!("a rebind back onto UDP:\n{}", show(&records)));
    let took = Duration::from_millis(back.unix_ms.saturating_sub(lifted_ms));
    let bound = RETURN_DWELL + RETURN_STANDBY_PERIOD + RETURN_TOLERANCE;
    let blackout = streams.blackout_after(mark);
    println!(
        "scenario c: block lifted; back on UDP after {} ms (bound {} ms = dwell {} + standby probe \
         period {} + tolerance {}; status seen after {:.0} ms), reason {}; blackout of the move {}",
        took.as_millis(),
        bound.as_millis(),
        RETURN_DWELL.as_millis(),
        RETURN_STANDBY_PERIOD.as_millis(),
        RETURN_TOLERANCE.as_millis(),
        millis(waited),
        back.reason,
        blackout.describe()
    );
    assert!(
        took <= bound,
        "back on UDP within dwell + one probe period + tolerance ({} ms), took {} ms:\n{}",
        bound.as_millis(),
        took.as_millis(),
        show(&records)
    );
    assert_never_terminated(&records, &session);
    assert_eq!(
        current_session(&pair.client),
        session,
        "the same session carries on"
    );
    streams.stop();
}

/// d. Path 1 removed, so the client's source address changes: the session continues over path 2.
/// The server's address (10.201.250.1 on its loopback) is routed over path 1 (metric 10) and path 2
/// (metric 20); deleting path 1's veth deletes its route, and the same socket's packets then leave
/// from path 2's address.
#[test]
fn path_one_removed_changes_the_source_address_and_the_session_continues_over_path_two() {
    let _serial = serial();
    let Some(tb) = testbed("jump_d_path_removed", &["nft"]) else {
        return;
    };
    let client_ns = tb.add_namespace("client").expect("client namespace");
    let server_ns = tb.add_namespace("server").expect("server namespace");
    let p1 = tb.link(&client_ns, &server_ns).expect("path 1");
    let p2 = tb.link(&client_ns, &server_ns).expect("path 2");
    let host = Ipv4Addr::new(10, 201, 250, 1);
    server_ns
        .ip(&["addr", "add", &format!("{host}/32"), "dev", "lo"])
        .expect("the server's stable address");
    for (path, metric) in [(&p1, "10"), (&p2, "20")] {
        client_ns
            .ip(&[
                "route",
                "add",
                &format!("{host}/32"),
                "via",
                &path.b_addr.to_string(),
                "dev",
                &path.a_dev,
                "metric",
                metric,
            ])
            .expect("a route to the server over the path");
    }
    // The server listens on that address only: a wildcard UDP socket would answer from the
    // veth's address (the kernel picks the source by route), which the client's connected socket
    // ignores.
    let pair = start_pair(
        &client_ns,
        &server_ns,
        (host, host),
        ClientSpec {
            transports: ALL_TRANSPORTS,
            proxy: None,
            policy: None,
        },
    );
    pair.client.wait_ready(SERVER_INNER);
    let (before, _) = wait_transport(&pair.client, "udp", support::ATTACH);
    let session = session_id(&before).expect("an attached session has an id");
    let server_before = pair.server.status().expect("server status");
    let remote_before = live_sessions(&server_before)
        .first()
        .and_then(|s| s["remote"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        remote_before.starts_with(&p1.a_addr.to_string()),
        "the session starts on path 1 ({}), the server sees {remote_before}",
        p1.a_addr
    );
    let streams = Streams::start(
        &client_ns,
        &server_ns,
        STREAM_PORT,
        Duration::from_secs(120),
    );

    let mark = streams.mark();
    let cut_ms = unix_ms();
    tb.remove_path(&p1).expect("delete path 1");
    let p2_addr = p2.a_addr.to_string();
    let epoch_before = live_sessions(&server_before)
        .first()
        .and_then(|s| s["epoch"].as_u64())
        .unwrap_or_default();
    // Path 1 no longer exists, so a new binding of the same session carries its packets over
    // path 2 whatever the transport: a UDP binding shows path 2's address, a QUIC connection
    // that migrated keeps its first address in the status.
    let server_after = pair.server.wait_status(
        MOVE,
        &format!("the server to rebind the session after path 1 went away (path 2: {p2_addr})"),
        |s| {
            live_sessions(s).iter().any(|x| {
                x["session_id"] == session.as_str()
                    && x["state"] == "ATTACHED"
                    && x["epoch"].as_u64().is_some_and(|e| e > epoch_before)
            })
        },
    );
    streams.wait_flowing(MOVE, "the inner UDP streams to flow again over path 2");

    let blackout = streams.blackout_after(mark);
    let records = pair.client.audit_records();
    let rebinds = switches(&records, &session);
    let after = pair.client.status().expect("client status");
    println!(
        "scenario d: path 1 removed; blackout {}; {} switch(es) {:?}, first {} ms after the cut; \
         server binding now {} over {}",
        blackout.describe(),
        rebinds.len(),
        rebinds
            .iter()
            .map(|s| (s.transport.clone(), s.reason.clone()))
            .collect::<Vec<_>>(),
        rebinds
            .first()
            .map_or(0, |s| s.unix_ms.saturating_sub(cut_ms)),
        live_sessions(&server_after)[0]["remote"],
        transport(&after).unwrap_or("?"),
    );
    assert_eq!(
        session_id(&after).as_deref(),
        Some(session.as_str()),
        "the same session"
    );
    assert!(
        !rebinds.is_empty(),
        "the move is a rebind:\n{}",
        show(&records)
    );
    assert_never_terminated(&records, &session);
    assert!(
        ping_all(&client_ns, SERVER_INNER, 3),
        "inner ping over path 2"
    );
    streams.stop();
}

/// e. UDP blocked and unblocked every 500 ms for 20 s: switches stay within the policy's budget
/// (default: a burst of 6, one more per 60 s), the session is never TERMINATED and never has two
/// bindings at once (the server never shows two live sessions, the client never two active paths).
#[test]
fn udp_flapping_every_500_ms_stays_within_the_switch_budget_and_never_terminates() {
    const FLAP: Duration = Duration::from_millis(500);
    const FLAPPING: Duration = Duration::from_secs(20);
    const BUDGET_BURST: u64 = 6;
    const BUDGET_REFILL: Duration = Duration::from_secs(60);
    let _serial = serial();
    let Some(tb) = testbed("jump_e_flapping", &["nft"]) else {
        return;
    };
    let (pair, client_ns, server_ns) = one_path(&tb, None);
    let session = current_session(&pair.client);
    let streams = Streams::start(
        &client_ns,
        &server_ns,
        STREAM_PORT,
        Duration::from_secs(120),
    );
    let watch = Watch::start(&pair.client, &pair.server);

    let mark = streams.mark();
    let started_ms = unix_ms();
    let flapping = Deadline::after(FLAPPING);
    let mut flaps = 0_u32;
    while !flapping.expired() {
        let step = Deadline::after(FLAP);
        if flaps.is_multiple_of(2) {
            tb.block_everywhere(Block::Udp).expect("drop UDP");
        } else {
            tb.unblock_everywhere().expect("lift the block");
        }
        flaps += 1;
        step.sleep(step.remaining());
    }
    tb.unblock_everywhere().expect("lift the block");
    let ended_ms = unix_ms();
    let seen = watch.stop();

    let records = pair.client.audit_records();
    let rebinds: Vec<_> = switches(&records, &session)
        .into_iter()
        .filter(|s| s.unix_ms >= started_ms && s.unix_ms <= ended_ms + 1000)
        .collect();
    let elapsed = Duration::from_millis(ended_ms - started_ms);
    let budget = BUDGET_BURST + elapsed.as_secs() / BUDGET_REFILL.as_secs();
    let (up_gaps, down_gaps) = streams.gaps_after(mark);
    wait_ping(&client_ns, SERVER_INNER, MOVE);
    println!(
        "scenario e: {flaps} block/unblock steps in {:.1} s; {} switch(es) (budget {budget}): {:?}; \
         {} status polls: states {:?}, at most {} live server session(s), at most {} active \
         client path(s); inner gaps >= 50 ms: {} up (longest {:.0} ms), {} down (longest {:.0} ms)",
        elapsed.as_secs_f64(),
        rebinds.len(),
        rebinds
            .iter()
            .map(|s| (s.transport.clone(), s.reason.clone()))
            .collect::<Vec<_>>(),
        seen.polls,
        seen.states,
        seen.max_server_sessions,
        seen.max_active,
        up_gaps.len(),
        up_gaps.iter().map(|g| millis(g.length)).fold(0.0, f64::max),
        down_gaps.len(),
        down_gaps
            .iter()
            .map(|g| millis(g.length))
            .fold(0.0, f64::max),
    );
    assert!(
        rebinds.len() as u64 <= budget,
        "at most {budget} switches in {elapsed:?}:\n{}",
        show(&records)
    );
    assert!(seen.polls > 10, "the watcher saw the session throughout");
    assert!(
        !seen.states.contains("TERMINATED"),
        "never TERMINATED: {:?}",
        seen.states
    );
    assert_never_terminated(&records, &session);
    assert!(
        seen.max_server_sessions <= 1,
        "never two bindings on the server"
    );
    assert!(seen.max_active <= 1, "never two active paths on the client");
    assert!(
        seen.sessions.len() <= 1,
        "one session throughout: {:?}",
        seen.sessions
    );
    streams.stop();
}

/// The termination scenario's policy: a dead path is noticed after 3 probes 500 ms apart, and the
/// recovery window is 3 s.
const SHORT_WINDOW_POLICY: &str = "keepalive_interval_ms = 500\n\
    dead_after_ms = 2000\n\
    handshake_retry_ms = 500\n\
    probe_interval_ms = 500\n\
    probe_timeout_min_ms = 500\n\
    probes_lost_suspect = 2\n\
    probes_lost_dead = 3\n\
    standby_probe_factor = 2\n\
    standby_probe_max_interval_ms = 1000\n\
    recovery_window_ms = 3000\n";
/// [`SHORT_WINDOW_POLICY`]'s recovery window.
const SHORT_WINDOW: Duration = Duration::from_millis(3000);
/// One timer tick of [`SHORT_WINDOW_POLICY`]: its probe interval, the period of the session's
/// timers while it recovers.
const SHORT_WINDOW_TICK: Duration = Duration::from_millis(500);

/// f. Every transport blocked for longer than the recovery window: TERMINATED with reason
/// RECOVERY_WINDOW_EXCEEDED within one timer tick of the window, and a clean teardown (the client
/// exits, its TUN device is gone).
#[test]
fn everything_blocked_longer_than_the_recovery_window_terminates_within_one_tick_and_tears_down() {
    let _serial = serial();
    let Some(tb) = testbed("jump_f_window", &["nft"]) else {
        return;
    };
    let (pair, client_ns, _server_ns) = one_path(&tb, Some(SHORT_WINDOW_POLICY));
    let status = pair.client.status().expect("client status");
    let session = session_id(&status).expect("an attached session has an id");
    let tun = tun_name(&status);
    assert!(
        link_exists(&client_ns, &tun),
        "the TUN device exists while attached"
    );

    let blocked_ms = unix_ms();
    tb.block_everywhere(Block::RandomLoss { percent: 100 })
        .expect("drop everything");
    let exit = pair
        .client
        .process
        .wait_timeout(Duration::from_secs(30))
        .expect("the client exits once its session is TERMINATED");

    let records = pair.client.audit_records();
    let end = records
        .iter()
        .rfind(|r| r["session_id"] == session.as_str() && r["to"] == "TERMINATED")
        .unwrap_or_else(|| panic!("the session ends TERMINATED:\n{}", show(&records)));
    let recovering = records
        .iter()
        .rfind(|r| {
            r["session_id"] == session.as_str()
                && r["to"] == "RECOVERING"
                && r["unix_ms"].as_u64() <= end["unix_ms"].as_u64()
        })
        .unwrap_or_else(|| panic!("the session was RECOVERING before:\n{}", show(&records)));
    let window = Duration::from_millis(
        end["unix_ms"].as_u64().unwrap_or_default()
            - recovering["unix_ms"].as_u64().unwrap_or_default(),
    );
    println!(
        "scenario f: everything dropped; RECOVERING {} ms after the block, TERMINATED ({}) {} ms \
         after RECOVERING (window {} ms, tick {} ms); client exited ({exit})",
        recovering["unix_ms"]
            .as_u64()
            .unwrap_or_default()
            .saturating_sub(blocked_ms),
        end["reason"],
        window.as_millis(),
        SHORT_WINDOW.as_millis(),
        SHORT_WINDOW_TICK.as_millis(),
    );
    assert_eq!(
        end["reason"],
        "RECOVERY_WINDOW_EXCEEDED",
        "{}",
        show(&records)
    );
    assert!(
        window >= SHORT_WINDOW && window <= SHORT_WINDOW + SHORT_WINDOW_TICK,
        "TERMINATED within one tick ({} ms) of the {} ms window, after {} ms:\n{}",
        SHORT_WINDOW_TICK.as_millis(),
        SHORT_WINDOW.as_millis(),
        window.as_millis(),
        show(&records)
    );
    assert!(
        exit.code().is_some(),
        "the client exits by itself, not by a signal: {exit}"
    );
    assert!(!link_exists(&client_ns, &tun), "the TUN device is gone");
    drop(pair);
}

/// tinyproxy's configuration: CONNECT to port 443 only, clients of path 1 only, log to stdout.
fn tinyproxy_conf(listen: Ipv4Addr, allow: Ipv4Addr) -> String {
    format!(
        "Port 8888\nListen {listen}\nTimeout 120\nAllow {allow}\nConnectPort {WSS_PORT}\n\
         MaxClients 20\nLogLevel Info\n"
    )
}

/// g. Only an HTTP CONNECT proxy (tinyproxy, in a third namespace) reaches the server: the session
/// attaches over WSS through it.
#[test]
fn only_an_http_connect_proxy_reaches_the_server_and_the_session_attaches_over_wss() {
    let _serial = serial();
    let Some(tb) = testbed("jump_g_proxy", &["nft", "tinyproxy"]) else {
        return;
    };
    let client_ns = tb.add_namespace("client").expect("client namespace");
    let proxy_ns = tb.add_namespace("proxy").expect("proxy namespace");
    let server_ns = tb.add_namespace("server").expect("server namespace");
    let outer = tb.link(&client_ns, &proxy_ns).expect("client <-> proxy");
    let inner = tb.link(&proxy_ns, &server_ns).expect("proxy <-> server");
    let dir = workdir();
    let conf = dir.path().join("tinyproxy.conf");
    std::fs::write(&conf, tinyproxy_conf(outer.b_addr, outer.a_addr))
        .expect("write tinyproxy.conf");
    let proxy = proxy_ns
        .spawn(
            "tinyproxy",
            &["-d", "-c", conf.to_str().expect("UTF-8 path")],
        )
        .expect("tinyproxy starts");
    let proxy_addr = SocketAddr::from((outer.b_addr, 8888));
    wait_for(
        support::STARTUP,
        support::POLL,
        "tinyproxy to listen",
        || {
            client_ns
                .run_in(support::STARTUP, move || {
                    TcpStream::connect_timeout(&proxy_addr, Duration::from_secs(1)).is_ok()
                })
                .ok()
                .filter(|ok| *ok)
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}", proxy.stdout_text()));
    let server_addr = SocketAddr::from((inner.b_addr, WSS_PORT));
    let direct = client_ns
        .run_in(support::STARTUP, move || {
            TcpStream::connect_timeout(&server_addr, Duration::from_secs(1)).is_ok()
        })
        .expect("enter the client namespace");
    assert!(
        !direct,
        "the client cannot reach the server except through the proxy"
    );

    let proxy_url = format!("http://{proxy_addr}");
    let pair = start_pair(
        &client_ns,
        &server_ns,
        (inner.b_addr, Ipv4Addr::UNSPECIFIED),
        ClientSpec {
            transports: ALL_TRANSPORTS,
            proxy: Some(&proxy_url),
            policy: None,
        },
    );
    let attach = Deadline::after(Duration::from_secs(60));
    let (status, _) = wait_transport(&pair.client, "wss", Duration::from_secs(60));
    wait_ping(&client_ns, SERVER_INNER, support::ATTACH);
    let took = attach.elapsed();

    let log = proxy.stdout_text();
    let connect_line = format!("CONNECT {}", server_addr);
    println!(
        "scenario g: attached over {} through tinyproxy at {proxy_addr} in {:.0} ms; proxy log has \
         `{connect_line}`: {}",
        transport(&status).unwrap_or("?"),
        millis(took),
        log.contains(&connect_line)
    );
    assert!(
        ping_all(&client_ns, SERVER_INNER, 3),
        "inner ping through the proxy"
    );
    assert!(
        log.contains(&connect_line),
        "the proxy carried a CONNECT to the server:\n{log}"
    );
    drop(pair);
}
