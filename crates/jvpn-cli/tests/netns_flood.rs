//! The spoofed handshake flood (ATTACKS.md S18) and the replay burst (S19) against the real
//! `jvpn server` binary, across network namespaces: issue 5's figure "under a spoofed handshake
//! flood, at least 99 % of honest clients still attach; bytes sent to spoofed sources no more than
//! bytes received from them".
//!
//! Topology, made by the test: a `server` namespace running `jvpn server` on UDP 51820 with
//! [`HONEST`] + 1 peers; an `honest` namespace whose [`HONEST`] clients (real `jvpn::Client`s, each
//! with its own key and its own UDP socket, hence its own source port: the per-source buckets key
//! on address and port, so one address does not throttle them) attach during the flood; an
//! `attacker` namespace sending HANDSHAKE_INITs with a valid MAC1 (the attacker knows the server's
//! public key) from random addresses of 10.50.0.0/16 through a raw socket. The server namespace
//! routes that /16 back to the attacker (reverse-path filtering off), so every reply is really
//! sent; nftables counters in the server namespace count the IP bytes in from and out to the /16.
//!
//! Phases: (1) S19, one captured honest HANDSHAKE_INIT replayed as fast as the attacker can for
//! [`REPLAY_FOR`]: the server must not go under load (no cookie reply at all); (2) S18, the
//! spoofed flood at [`FLOOD_PPS`]; once the server answers it with cookies, the honest clients
//! start (spread over [`SPREAD`], each given [`ATTACH_TIMEOUT`]); the flood lasts at least
//! [`FLOOD_AT_LEAST`]. Pass criteria are ratios, not
//! wall-clock thresholds: attached / clients ≥ 0.99 and bytes out ≤ bytes in for the /16. The
//! figures (flood rate achieved, attach share, p50/p99, byte ratio, DH/s) are printed for
//! docs/attack-scenarios.md. The whole test is bounded by its waits: about 20 s on a quiet machine,
//! at most about 90 s on a loaded one.
//!
//! Needs root and `nft`; without them it prints `skipping: <reason>` and passes (with
//! `JVPN_NETNS_REQUIRE=1` it fails instead).

#[expect(
    dead_code,
    reason = "the support module is shared with the other netns suites, which use the parts this file does not"
)]
mod support;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jvpn::wire::PublicKey;
use jvpn_netns::flood::{self, FloodConfig, FloodMode, FloodReport};
use jvpn_netns::load::{self, AttachConfig, AttachReport};
use jvpn_netns::{Deadline, Namespace, wait_for};
use serde_json::Value;

use support::{Keys, Node, POLL, PORT, Policy, genkey, start_server, testbed, workdir};

/// Honest clients.
const HONEST: usize = 200;
/// Seed of the honest clients' keys.
const SEED: u64 = 0x5eed_0018;
/// The spoofed network.
const SPOOFED: Ipv4Addr = Ipv4Addr::new(10, 50, 0, 0);
const SPOOFED_LEN: u8 = 16;
/// The spoofed flood's target rate (datagrams per second), printed as achieved. 150 × the
/// server's "under load" threshold of DH starts: without cookies this would be 20 000 Diffie-Hellman
/// operations per second, more than the two cores can do. It stays below what the server can
/// *receive* on a loaded 2-core machine, because a flood that fills the socket buffer is a
/// volumetric attack, which jvpn does not claim to withstand (docs/threat-model.md §8); at
/// 20 000 pkt/s with other builds running, about half the datagrams were dropped by the kernel
/// and honest p99 rose to 12 s (still 200/200).
const FLOOD_PPS: u32 = 10_000;
/// How long the replay burst lasts.
const REPLAY_FOR: Duration = Duration::from_secs(3);
/// Honest client starts are spread over this.
const SPREAD: Duration = Duration::from_secs(2);
/// Each honest client gets this long to attach (about 30 handshake retries).
const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);
/// The clients' handshake retry (the `Policy::Fast` of the other suites uses the same).
const RETRY: Duration = Duration::from_secs(1);
/// The flood stops by itself after this even if the test goes wrong.
const FLOOD_AT_MOST: Duration = Duration::from_secs(60);
/// The flood lasts at least this long, even when the honest clients are done sooner, so that the
/// byte ratio and the DH rate are those of a sustained flood.
const FLOOD_AT_LEAST: Duration = Duration::from_secs(10);

/// The nftables table of this test (separate from the firewall helpers' `jvpn_test`).
const COUNTERS: &str = "jvpn_flood";

#[test]
fn under_a_spoofed_handshake_flood_honest_clients_attach_and_spoofed_sources_get_no_more_than_they_sent()
 {
    let Some(tb) = testbed("flood", &["nft"]) else {
        return;
    };
    let dir = workdir();
    let server_ns = tb.add_namespace("server").expect("server namespace");
    let honest_ns = tb.add_namespace("honest").expect("honest namespace");
    let attacker_ns = tb.add_namespace("attacker").expect("attacker namespace");
    let honest_path = tb.link(&honest_ns, &server_ns).expect("honest path");
    let attack_path = tb.link(&attacker_ns, &server_ns).expect("attack path");
    route_spoofed_back(&server_ns, attack_path.a_addr, &attack_path.b_dev);
    install_counters(&server_ns, dir.path());

    let server_keys = genkey(dir.path(), "server");
    let server_key: PublicKey = server_keys.public.parse().expect("server public key");
    let honest_keys = load::keys_from_seed(SEED, HONEST);
    let victim = load::keys_from_seed(SEED + 1, 1).remove(0);
    let peers = peer_list(&honest_keys, &victim);
    let peer_refs: Vec<(&Keys, &str)> = peers.iter().map(|(k, a)| (k, a.as_str())).collect();
    let server = start_server(
        &server_ns,
        dir.path(),
        "server",
        &server_keys,
        &peer_refs,
        Policy::Default,
    );
    let target = SocketAddrV4::new(attack_path.b_addr, PORT);

    // S19: one captured honest initiation, replayed as fast as the attacker can.
    let captured = flood::captured_init(&victim, server_key, SEED).expect("an initiation");
    let before = endpoint(&server);
    let replay = run_flood(
        &attacker_ns,
        FloodConfig {
            mode: FloodMode::Replay {
                datagram: captured,
                source: SocketAddrV4::new(Ipv4Addr::new(10, 50, 200, 1), 40_000),
            },
            target,
            rate: 0,
            duration: REPLAY_FOR,
            seed: SEED,
        },
        Arc::new(AtomicBool::new(false)),
    )
    .join()
    .expect("the replay thread ends");
    let after_replay = settled(&server);
    let replay_cookies = delta(&after_replay, &before, "cookie_replies");
    let replay_dh = delta(&after_replay, &before, "dh_started");
    let replays_dropped = delta(&after_replay, &before, "init_replays");

    // S18: the spoofed flood, and the honest clients once the server is under load.
    let before = endpoint(&server);
    let nft_before = counters(&server_ns);
    let stop = Arc::new(AtomicBool::new(false));
    let sustained = Deadline::after(FLOOD_AT_LEAST);
    let flooder = run_flood(
        &attacker_ns,
        FloodConfig {
            mode: FloodMode::Spoofed {
                server_key,
                network: SPOOFED,
                prefix_len: SPOOFED_LEN,
            },
            target,
            rate: FLOOD_PPS,
            duration: FLOOD_AT_MOST,
            seed: SEED,
        },
        Arc::clone(&stop),
    );
    let under_load = wait_for(Duration::from_secs(20), POLL, "cookie replies", || {
        let now = endpoint(&server);
        (delta(&now, &before, "cookie_replies") > 0).then_some(now)
    });
    let honest = under_load.as_ref().ok().map(|_| {
        attach_honest(
            &honest_ns,
            SocketAddr::from((honest_path.b_addr, PORT)),
            server_key,
            honest_keys,
        )
    });
    std::thread::sleep(sustained.remaining());
    // Still flooding: the spoofed sources must not have grown the server's path table.
    let during = endpoint(&server);
    stop.store(true, Ordering::Relaxed);
    let flood_report = flooder.join().expect("the flood thread ends");
    let after = settled(&server);
    let nft_after = counters(&server_ns);
    under_load.expect("the flood puts the server under load");
    let honest = honest.expect("the honest clients ran");

    let bytes_in = nft_after.bytes_in - nft_before.bytes_in;
    let bytes_out = nft_after.bytes_out - nft_before.bytes_out;
    let dh = delta(&after, &before, "dh_started");
    let cookies = delta(&after, &before, "cookie_replies");
    println!(
        "{}",
        figures(&honest, &flood_report, (bytes_in, bytes_out), (dh, cookies))
    );
    println!(
        "S19 replay: {:.0} pkt/s of one captured INIT for {:.1} s → {replays_dropped} dropped as \
         replays, {replay_dh} DH, {replay_cookies} cookie replies",
        replay.packets_per_sec(),
        replay.secs
    );
    println!("server endpoint counters during the flood: {during:#}");
    println!("server endpoint counters after: {after:#}");

    assert_eq!(
        replay_cookies, 0,
        "a replay burst must not put the server under load"
    );
    assert!(
        replay_dh <= 1,
        "only the first copy may cost a DH: {replay_dh}"
    );
    assert!(replays_dropped > 0, "the replays reached the server");
    assert!(
        cookies > 0,
        "the flood was answered with cookies (under load)"
    );
    assert!(
        honest.attached_ratio() >= 0.99,
        "{} of {} honest clients attached",
        honest.attached,
        honest.clients
    );
    assert!(bytes_in > 0, "the flood reached the server");
    assert!(
        bytes_out <= bytes_in,
        "{bytes_out} bytes sent to spoofed sources for {bytes_in} received"
    );
    assert_eq!(endpoint_u64(&after, "amplification_withheld"), 0);
    let paths = endpoint_u64(&during, "paths");
    assert!(
        paths <= HONEST as u64 + 10,
        "{paths} paths remembered during the flood: spoofed sources grow the table"
    );
}

/// Reverse-path filtering off in the server namespace, and the spoofed /16 routed back to the
/// attacker, so that replies really leave (and are counted).
fn route_spoofed_back(server: &Namespace, attacker: Ipv4Addr, dev: &str) {
    for key in ["all", "default", dev] {
        server
            .set_sysctl(&format!("net/ipv4/conf/{key}/rp_filter"), "0")
            .expect("rp_filter off");
    }
    let spoofed = format!("{SPOOFED}/{SPOOFED_LEN}");
    let via = attacker.to_string();
    server
        .ip(&["route", "add", &spoofed, "via", &via, "dev", dev])
        .expect("route the spoofed network back to the attacker");
}

/// Two named counters in the server namespace: IP bytes in from and out to the spoofed /16.
fn install_counters(server: &Namespace, dir: &Path) {
    let spoofed = format!("{SPOOFED}/{SPOOFED_LEN}");
    let rules = format!(
        "table ip {COUNTERS} {{\n\
         counter spoofed_in {{ }}\n\
         counter spoofed_out {{ }}\n\
         chain input {{ type filter hook input priority 0; policy accept; ip saddr {spoofed} counter name \"spoofed_in\"; }}\n\
         chain output {{ type filter hook output priority 0; policy accept; ip daddr {spoofed} counter name \"spoofed_out\"; }}\n\
         }}\n"
    );
    let file = dir.join("flood.nft");
    std::fs::write(&file, rules).expect("write the nftables rules");
    let file = file.to_str().expect("temporary paths are UTF-8");
    server
        .exec_ok("nft", &["-f", file])
        .expect("install the nftables counters");
}

/// Bytes counted by the nftables counters.
#[derive(Debug, Clone, Copy)]
struct Bytes {
    bytes_in: u64,
    bytes_out: u64,
}

fn counters(server: &Namespace) -> Bytes {
    let out = server
        .exec_ok("nft", &["-j", "list", "counters", "table", "ip", COUNTERS])
        .expect("list the nftables counters");
    let json: Value = serde_json::from_slice(&out.stdout).expect("nft -j prints JSON");
    let bytes = |name: &str| {
        json["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item.get("counter"))
            .find(|c| c["name"] == name)
            .and_then(|c| c["bytes"].as_u64())
            .unwrap_or_else(|| panic!("counter {name} in {json:#}"))
    };
    Bytes {
        bytes_in: bytes("spoofed_in"),
        bytes_out: bytes("spoofed_out"),
    }
}

/// `--peer` entries: honest client `i` owns 10.77.0.(i + 2)/32, the replay victim 10.77.0.250/32.
fn peer_list(
    honest: &[jvpn::wire::StaticSecret],
    victim: &jvpn::wire::StaticSecret,
) -> Vec<(Keys, String)> {
    assert!(honest.len() <= 240, "one /32 per client in 10.77.0.0/24");
    let key = |k: &jvpn::wire::StaticSecret| Keys {
        // The server only needs the public key; these clients never touch a key file.
        secret: PathBuf::new(),
        public: k.public_key().to_string(),
    };
    honest
        .iter()
        .enumerate()
        .map(|(i, k)| (key(k), format!("10.77.0.{}/32", i + 2)))
        .chain(std::iter::once((key(victim), "10.77.0.250/32".to_owned())))
        .collect()
}

/// Starts a flood on its own thread inside `attacker`.
fn run_flood(
    attacker: &Namespace,
    config: FloodConfig,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<FloodReport> {
    let attacker = attacker.clone();
    std::thread::spawn(move || {
        let bound = config.duration + Duration::from_secs(10);
        attacker
            .run_in(bound, move || flood::run(&config, &stop))
            .expect("enter the attacker's namespace")
            .expect("the raw socket works (root)")
    })
}

/// The honest clients, inside `honest`, until each attached or gave up.
fn attach_honest(
    honest: &Namespace,
    server: SocketAddr,
    server_key: PublicKey,
    keys: Vec<jvpn::wire::StaticSecret>,
) -> AttachReport {
    let config = AttachConfig {
        server,
        server_key,
        keys,
        spread: SPREAD,
        timeout: ATTACH_TIMEOUT,
        handshake_retry: RETRY,
    };
    let bound = SPREAD + ATTACH_TIMEOUT + Duration::from_secs(20);
    honest
        .run_in(bound, move || load::run(config))
        .expect("the honest clients finish in time")
        .expect("the honest clients' runtime starts")
}

/// The server's endpoint counters (`jvpn status --json`, field `endpoint`).
fn endpoint(server: &Node) -> Value {
    wait_for(Duration::from_secs(20), POLL, "the server's status", || {
        server
            .status()
            .and_then(|s| s.get("endpoint").cloned())
            .filter(Value::is_object)
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The endpoint counters once they have stopped moving (the server has drained its socket).
fn settled(server: &Node) -> Value {
    let mut last = endpoint(server);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        let now = endpoint(server);
        if now == last {
            break;
        }
        last = now;
    }
    last
}

fn endpoint_u64(counters: &Value, name: &str) -> u64 {
    counters[name]
        .as_u64()
        .unwrap_or_else(|| panic!("counter {name} in {counters:#}"))
}

fn delta(after: &Value, before: &Value, name: &str) -> u64 {
    endpoint_u64(after, name).saturating_sub(endpoint_u64(before, name))
}

/// The S18 figures, one per line (printed by the test for docs/attack-scenarios.md).
fn figures(
    honest: &AttachReport,
    flood: &FloodReport,
    (bytes_in, bytes_out): (u64, u64),
    (dh, cookies): (u64, u64),
) -> String {
    let ratio = if bytes_in == 0 {
        0.0
    } else {
        bytes_out as f64 / bytes_in as f64
    };
    format!(
        "S18 flood: {:.0} pkt/s of valid-MAC1 INITs from {SPOOFED}/{SPOOFED_LEN} for {:.1} s \
         ({} packets, {} send errors)\n\
         S18 honest: {}/{} attached ({:.1} %), p50 {} ms, p99 {} ms, max {} ms\n\
         S18 bytes: {bytes_in} in from spoofed sources, {bytes_out} out to them (ratio {ratio:.3})\n\
         S18 server: {dh} DH over {:.1} s ({:.0} DH/s), {cookies} cookie replies\n\
         S18 report JSON: {}",
        flood.packets_per_sec(),
        flood.secs,
        flood.packets,
        flood.send_errors,
        honest.attached,
        honest.clients,
        honest.attached_ratio() * 100.0,
        honest.p50_ms,
        honest.p99_ms,
        honest.max_ms,
        flood.secs,
        dh as f64 / flood.secs.max(0.001),
        honest.to_json()
    )
}
