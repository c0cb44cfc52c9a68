use super::*;

fn sample() -> TunnelStatus {
    serde_json::from_value(serde_json::json!({
        "schema_version": 1,
        "role": "client",
        "tun": {"name": "jvpn0", "mtu": 1420},
        "unknown_destination_drops": 4,
        "source_not_allowed_drops": 0,
        "reconnects": 1,
        "sessions": [{
            "session_id": "9f86d081884c7d65",
            "peer": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
            "state": "ATTACHED",
            "version": 2,
            "epoch": 1,
            "transport": "udp",
            "remote": "10.201.1.1:51820",
            "candidates": [{
                "kind": "udp", "remote": "10.201.1.1:51820", "state": "active",
                "rtt_ms": 0.42, "loss_percent": null
            }],
            "bytes_in": 1_572_864, "bytes_out": 900, "packets_in": 1200, "packets_out": 1,
            "drops": {"REPLAY": 2, "TOO_SHORT": 0},
            "handshake_age_secs": 75.5,
            "last_transitions": [
                {"session_id": null, "version": 1, "from": "BIRTH", "to": "BIRTH",
                 "reason": "HANDSHAKE_COMPLETE", "epoch": 0, "path": null, "transport": null,
                 "unix_ms": 1_700_000_000_123u64},
                {"session_id": "9f86d081884c7d65", "version": 2, "from": "BIRTH", "to": "ATTACHED",
                 "reason": "HANDSHAKE_COMPLETE", "epoch": 1, "path": 0, "transport": "udp",
                 "unix_ms": 1_700_000_001_000u64}
            ]
        }]
    }))
    .expect("the sample matches the status schema")
}

#[test]
fn human_status_shows_state_transport_paths_counters_and_transitions() {
    let text = human(&sample());

    for expected in [
        "jvpn client · TUN jvpn0 (MTU 1420) · 1 session · reconnects 1",
        "4 to no peer",
        "session 9f86d081884c7d65",
        "ATTACHED (version 2, epoch 1)",
        "udp to 10.201.1.1:51820",
        "1 min 15 s ago",
        "1.5 MiB, 1200 packets",
        "900 bytes, 1 packet",
        "REPLAY 2",
        "0.4 ms",
        "22:13:20.123",
        "HANDSHAKE_COMPLETE",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("TOO_SHORT"),
        "zero drop counters are left out:\n{text}"
    );
}

#[test]
fn table_columns_line_up() {
    let text = human(&sample());

    let header = text.lines().find(|l| l.contains("VERSION")).unwrap();
    let row = text.lines().find(|l| l.contains("ATTACHED  ")).unwrap();
    assert_eq!(
        header.find("REASON"),
        row.find("HANDSHAKE_COMPLETE"),
        "\n{header}\n{row}"
    );
}

#[test]
fn a_server_without_sessions_says_it_waits_for_clients() {
    let mut status = sample();
    status.role = "server".into();
    status.sessions.clear();

    let text = human(&status);

    assert!(text.contains("0 sessions"));
    assert!(text.contains("waiting for clients"));
}

#[test]
fn sizes_and_durations_read_naturally() {
    assert_eq!(bytes(1), "1 byte");
    assert_eq!(bytes(2048), "2.0 KiB");
    assert_eq!(duration(0.25), "250 ms");
    assert_eq!(duration(7200.0), "2 h 0 min");
    assert_eq!(duration(f64::NAN), "?");
}
