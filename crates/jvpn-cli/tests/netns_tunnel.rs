//! End-to-end tests of the real `jvpn` binary across network namespaces: `jvpn server` and
//! `jvpn connect` with TUN devices, inner traffic (ping, checksummed TCP), a server restart, two
//! clients, and the audit trail of a closed session.
//!
//! They need root (namespaces, veth, TUN). Without it each test prints `skipping: <reason>` and
//! passes; with `JVPN_NETNS_REQUIRE=1` (CI) a missing capability fails it instead. Every test builds
//! its own testbed (unique namespace names), keeps its keys, sockets and logs in its own temporary
//! directory, bounds every wait, and leaves nothing behind (the testbed's drop ends the processes
//! and deletes the namespaces, which deletes their TUN devices and routes).
//!
//! All of them run by default, `JVPN_LONG` or not: the whole file takes about 10–15 s on the 2-core
//! test machine (the 100 MB transfer about 3 s, the server restart about 6 s with the fast policy),
//! so nothing needs the long-suite gate.

mod support;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use jvpn_netns::Signal;
use serde_json::Value;

use support::{
    OneClient, Over, Policy, SERVER_INNER, client_and_server, genkey, link_counter, link_exists,
    one_client, one_client_over, ping_all, ping_and_ignore, session_id, session_state,
    start_client, start_server, testbed, transfer, tun_name, wait_ping, workdir,
};

const CLIENT_INNER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const CLIENT_B_INNER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);
/// Inside the tunnel network, owned by no peer.
const NOBODY_INNER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 99);
/// Inner TCP port of the transfers.
const XFER_PORT: u16 = 5001;

#[test]
fn ping_crosses_the_tunnel_both_ways() {
    let Some(tb) = testbed("tunnel_ping", &["ping"]) else {
        return;
    };
    let OneClient {
        dir: _dir,
        client_ns,
        server_ns,
        server: _server,
        client,
    } = one_client(&tb, Policy::Default);

    client.wait_ready(SERVER_INNER);

    assert!(ping_all(&client_ns, SERVER_INNER, 5), "client → server");
    assert!(ping_all(&server_ns, CLIENT_INNER, 5), "server → client");
}

#[test]
fn the_tunnel_runs_over_quic_and_carries_ping_and_a_tcp_transfer() {
    tunnel_carries_ping_and_a_tcp_transfer_over("tunnel_quic", Over::Quic, "quic");
}

#[test]
fn the_tunnel_runs_over_wss_and_carries_ping_and_a_tcp_transfer() {
    tunnel_carries_ping_and_a_tcp_transfer_over("tunnel_wss", Over::Wss, "wss");
}

fn tunnel_carries_ping_and_a_tcp_transfer_over(name: &str, over: Over, kind: &str) {
    let Some(tb) = testbed(name, &["ping"]) else {
        return;
    };
    let OneClient {
        dir: _dir,
        client_ns,
        server_ns,
        server: _server,
        client,
    } = one_client_over(&tb, Policy::Default, over);

    let status = client.wait_ready(SERVER_INNER);

    assert_eq!(
        status["sessions"][0]["transport"], kind,
        "the session is carried by {kind}: {status:#}"
    );
    assert!(ping_all(&client_ns, SERVER_INNER, 3), "client → server");
    assert!(ping_all(&server_ns, CLIENT_INNER, 3), "server → client");
    let (sent, received) = transfer(
        &client_ns,
        &server_ns,
        SERVER_INNER,
        XFER_PORT,
        8 * 1024 * 1024,
        7,
        Duration::from_secs(60),
    );
    assert_eq!(received, sent, "8 MB arrive intact over {kind}");
}

#[test]
fn inner_tcp_transfer_of_100_mb_has_the_same_sha256_at_both_ends() {
    let Some(tb) = testbed("tunnel_100mb", &["ping"]) else {
        return;
    };
    let OneClient {
        dir: _dir,
        client_ns,
        server_ns,
        server: _server,
        client,
    } = one_client(&tb, Policy::Default);
    client.wait_ready(SERVER_INNER);
    let bytes = 100 * 1024 * 1024;

    let (sent, received) = transfer(
        &client_ns,
        &server_ns,
        SERVER_INNER,
        XFER_PORT,
        bytes,
        100,
        Duration::from_secs(120),
    );

    assert_eq!(sent.bytes, bytes);
    assert_eq!(received, sent, "what arrived is exactly what was sent");
}

#[test]
fn a_killed_and_restarted_server_gets_a_new_session_and_traffic_resumes() {
    let Some(tb) = testbed("tunnel_restart", &["ping"]) else {
        return;
    };
    let dir = workdir();
    let (client_ns, server_ns, path) = client_and_server(&tb);
    let server_keys = genkey(dir.path(), "server");
    let client_keys = genkey(dir.path(), "client");
    let peers = [(&client_keys, "10.77.0.2/32")];
    let first_server = start_server(
        &server_ns,
        dir.path(),
        "server1",
        &server_keys,
        &peers,
        Policy::Fast,
    );
    let client = start_client(
        &client_ns,
        dir.path(),
        "client",
        (&client_keys, "10.77.0.2/32"),
        &server_keys,
        path.b_addr,
        Policy::Fast,
    );
    let before = client.wait_ready(SERVER_INNER);
    let first_session = session_id(&before).expect("an attached session has an id");
    let bytes = 4 * 1024 * 1024;
    let (sent, received) = transfer(
        &client_ns,
        &server_ns,
        SERVER_INNER,
        XFER_PORT,
        bytes,
        1,
        Duration::from_secs(60),
    );
    assert_eq!(received, sent, "the first file arrives intact");

    first_server.process.kill().expect("SIGKILL the server");
    start_server(
        &server_ns,
        dir.path(),
        "server2",
        &server_keys,
        &peers,
        Policy::Fast,
    );
    let after = client.wait_status(
        Duration::from_secs(60),
        "a new session to be ATTACHED after the server restart",
        |s| {
            session_state(s) == Some("ATTACHED")
                && session_id(s).is_some_and(|id| id != first_session)
        },
    );
    wait_ping(&client_ns, SERVER_INNER, Duration::from_secs(20));
    let (sent, received) = transfer(
        &client_ns,
        &server_ns,
        SERVER_INNER,
        XFER_PORT + 1,
        bytes,
        2,
        Duration::from_secs(60),
    );

    assert_eq!(
        received, sent,
        "a new file arrives intact after the restart"
    );
    let records = client.audit_records();
    for record in &records {
        println!("client audit: {record}");
    }
    let sessions: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r["session_id"].as_str())
        .collect();
    assert!(
        sessions.contains(first_session.as_str()) && sessions.len() >= 2,
        "the audit log shows the old and the new session: {records:#?}"
    );
    let old_end = records
        .iter()
        .rfind(|r| r["session_id"].as_str() == Some(first_session.as_str()))
        .expect("the old session has records");
    assert_eq!(
        old_end["to"], "TERMINATED",
        "the old session ends for good: {records:#?}"
    );
    let reason = old_end["reason"].as_str().unwrap_or_default();
    assert!(
        !reason.is_empty() && reason != "CLOSED",
        "the end of the old session says why (not a local close): {old_end}"
    );
    let new_birth = records
        .iter()
        .filter(|r| r["from"] == "BIRTH")
        .filter(|r| r["session_id"].as_str() == session_id(&after).as_deref())
        .count();
    assert_eq!(new_birth, 1, "the new session was born once: {records:#?}");
}

#[test]
fn two_clients_reach_the_server_and_each_other_and_unknown_destinations_are_dropped() {
    let Some(tb) = testbed("tunnel_two_clients", &["ping"]) else {
        return;
    };
    let dir = workdir();
    let server_ns = tb.add_namespace("server").expect("server namespace");
    let a_ns = tb.add_namespace("client-a").expect("client A namespace");
    let b_ns = tb.add_namespace("client-b").expect("client B namespace");
    let path_a = tb.link(&a_ns, &server_ns).expect("path A");
    let path_b = tb.link(&b_ns, &server_ns).expect("path B");
    let server_keys = genkey(dir.path(), "server");
    let a_keys = genkey(dir.path(), "client-a");
    let b_keys = genkey(dir.path(), "client-b");
    let server = start_server(
        &server_ns,
        dir.path(),
        "server",
        &server_keys,
        &[(&a_keys, "10.77.0.2/32"), (&b_keys, "10.77.0.3/32")],
        Policy::Default,
    );
    let a = start_client(
        &a_ns,
        dir.path(),
        "client-a",
        (&a_keys, "10.77.0.2/32"),
        &server_keys,
        path_a.b_addr,
        Policy::Default,
    );
    let b = start_client(
        &b_ns,
        dir.path(),
        "client-b",
        (&b_keys, "10.77.0.3/32"),
        &server_keys,
        path_b.b_addr,
        Policy::Default,
    );
    a.wait_ready(SERVER_INNER);
    let b_status = b.wait_ready(SERVER_INNER);
    let b_tun = tun_name(&b_status);

    let a_reaches_b = ping_all(&a_ns, CLIENT_B_INNER, 3);
    let b_reaches_a = ping_all(&b_ns, CLIENT_INNER, 3);
    let drops_before = unknown_drops(&server.status().expect("server status"));
    let b_rx_before = link_counter(&b_ns, &b_tun, "rx_packets");
    ping_and_ignore(&a_ns, NOBODY_INNER, 5);
    let b_rx_after = link_counter(&b_ns, &b_tun, "rx_packets");
    server.wait_status(
        Duration::from_secs(10),
        &format!(
            "the server to drop and count client A's 5 packets for 10.77.0.99 (an unused address \
             of the tunnel subnet) as unknown_destination_drops (it counted {drops_before} before)"
        ),
        |s| unknown_drops(s) >= drops_before + 5,
    );
    ping_and_ignore(&server_ns, NOBODY_INNER, 5);

    assert!(a_reaches_b, "client A reaches client B through the server");
    assert!(b_reaches_a, "client B reaches client A through the server");
    assert_eq!(
        b_rx_after, b_rx_before,
        "packets for an address nobody owns never reach client B's TUN"
    );
    server.wait_status(
        Duration::from_secs(10),
        &format!(
            "the server to count its own 5 packets for 10.77.0.99 (no peer owns it) as \
             unknown_destination_drops too (it counted {drops_before} before client A's)"
        ),
        |s| unknown_drops(s) >= drops_before + 10,
    );
}

fn unknown_drops(status: &Value) -> u64 {
    status["unknown_destination_drops"]
        .as_u64()
        .unwrap_or_else(|| panic!("the status has unknown_destination_drops: {status:#}"))
}

#[test]
fn a_terminated_client_leaves_an_audit_trail_from_birth_to_closed_and_removes_its_tun() {
    let Some(tb) = testbed("tunnel_audit", &["ping"]) else {
        return;
    };
    let OneClient {
        dir: _dir,
        client_ns,
        server_ns: _server_ns,
        server,
        client,
    } = one_client(&tb, Policy::Default);
    let status = client.wait_ready(SERVER_INNER);
    let tun = tun_name(&status);
    let id = session_id(&status).expect("an attached session has an id");
    assert!(
        link_exists(&client_ns, &tun),
        "the TUN device exists while running"
    );

    client
        .process
        .signal(Signal::Terminate)
        .expect("SIGTERM the client");
    let exit = client
        .process
        .wait_timeout(Duration::from_secs(10))
        .expect("the client exits after SIGTERM");

    assert!(exit.success(), "SIGTERM is a clean exit: {exit}");
    assert!(!link_exists(&client_ns, &tun), "the TUN device is gone");
    let records = client.audit_records();
    assert!(!records.is_empty(), "the audit log has records");
    for record in &records {
        for field in ["version", "from", "to", "reason", "epoch", "unix_ms"] {
            assert!(!record[field].is_null(), "`{field}` in {record}");
        }
    }
    let first = &records[0];
    let last = records.last().expect("non-empty");
    assert_eq!(first["from"], "BIRTH", "history starts at BIRTH: {first}");
    assert_eq!(first["to"], "ATTACHED", "then ATTACHED: {first}");
    assert_eq!(last["to"], "TERMINATED", "history ends TERMINATED: {last}");
    assert_eq!(last["reason"], "CLOSED", "closed locally: {last}");
    for pair in records.windows(2) {
        assert_eq!(
            pair[1]["from"], pair[0]["to"],
            "one unbroken chain: {pair:#?}"
        );
        assert!(
            pair[1]["version"].as_u64() > pair[0]["version"].as_u64(),
            "versions increase: {pair:#?}"
        );
    }
    assert!(
        records
            .iter()
            .all(|r| r["session_id"].is_null() || r["session_id"] == id.as_str()),
        "one session: {records:#?}"
    );
    server.wait_status(
        Duration::from_secs(10),
        "the server to see the client's CLOSE",
        |s| {
            s["sessions"]
                .as_array()
                .is_some_and(|all| all.iter().all(|x| x["state"] == "TERMINATED"))
        },
    );
}
