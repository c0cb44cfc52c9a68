//! `jvpn netcheck` as the built binary against a server running in this test process on
//! 127.0.0.1 (UDP, QUIC and WSS listeners): no root, no TUN device.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jvpn::session::PeerConfig;
use jvpn::transport::TransportUrl;
use jvpn::wire::keys::Psk;
use jvpn::{Server, ServerOptions, Transports};

const LISTEN: [&str; 3] = [
    "udp://127.0.0.1:0",
    "quic://127.0.0.1:0",
    "wss://127.0.0.1:0/jvpn",
];

fn jvpn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jvpn"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .output()
        .expect("the jvpn binary runs")
}

/// A secret key file from `jvpn genkey`, and its public key from `jvpn pubkey`.
fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let secret = dir.join(name);
    let out = jvpn(&["genkey", "-o", secret.to_str().expect("UTF-8 path")]);
    assert!(out.status.success());
    let public = Command::new(env!("CARGO_BIN_EXE_jvpn"))
        .arg("pubkey")
        .stdin(std::fs::File::open(&secret).expect("the key file"))
        .output()
        .expect("jvpn pubkey runs");
    let public = String::from_utf8(public.stdout).expect("base64");
    (secret, public.trim().to_owned())
}

/// Starts a server for `client_public` on every [`LISTEN`] URL; returns it and its client URLs.
async fn serve(server_key: &Path, client_public: &str) -> (Server, Vec<String>) {
    let key = jvpn::keyfile::read_secret_key(server_key).expect("the server key");
    let transports = Transports::builtin();
    let mut listeners = Vec::new();
    for url in LISTEN {
        let url: TransportUrl = url.parse().expect("a URL");
        let transport = transports.get(&url.kind).expect("built in");
        listeners.push(transport.listen(&url).await.expect("listens"));
    }
    let peer = PeerConfig {
        public_key: jvpn::keyfile::parse_public_key(client_public).expect("a public key"),
        psk: Psk::zero(),
    };
    let server = Server::start(ServerOptions::new(key, vec![peer]), listeners)
        .await
        .expect("the server starts");
    let urls = LISTEN
        .iter()
        .zip(server.local_addrs())
        .map(|(listen, addr)| {
            let kind = listen.split(':').next().expect("a scheme");
            format!("{kind}://{addr}")
        })
        .collect();
    (server, urls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netcheck_against_a_loopback_server_reports_each_transport_as_json() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (client_key, client_public) = keypair(dir.path(), "client.key");
    let (server_key, server_public) = keypair(dir.path(), "server.key");
    let (_server, urls) = serve(&server_key, &client_public).await;
    let mut args: Vec<String> = [
        "netcheck",
        "--key",
        client_key.to_str().expect("UTF-8"),
        "--server-key",
        &server_public,
        "--json",
        "--timeout",
        "5",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(urls.iter().cloned());

    let out = tokio::task::spawn_blocking(move || {
        jvpn(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .expect("the command ran");

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr:\n{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["schema_version"], 1);
    let results = report["results"].as_array().expect("a list");
    let kinds: Vec<&str> = results
        .iter()
        .map(|r| r["transport"].as_str().expect("a kind"))
        .collect();
    assert_eq!(kinds, ["udp", "quic", "wss"]);
    for result in results {
        assert_eq!(result["reachable"], true, "{report:#}");
        assert!(result["rtt_ms"].is_number(), "{report:#}");
        assert!(result["handshake_ms"].is_number(), "{report:#}");
    }
    assert_eq!(
        report["recommended"].as_array().expect("a list").len(),
        3,
        "{report:#}"
    );
}

#[test]
fn netcheck_with_nothing_reachable_prints_why_and_exits_1() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (client_key, _) = keypair(dir.path(), "client.key");
    let (_, server_public) = keypair(dir.path(), "server.key");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("an address");
    drop(closed);

    let out = jvpn(&[
        "netcheck",
        "--key",
        client_key.to_str().expect("UTF-8"),
        "--server-key",
        &server_public,
        "--timeout",
        "1",
        &format!("wss://{addr}/jvpn"),
    ]);

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stdout.contains("unreachable"), "{stdout}");
    assert!(stdout.contains("recommended order: none"), "{stdout}");
    assert!(
        stderr.contains("no transport reached the server"),
        "{stderr}"
    );
}

#[test]
fn netcheck_help_shows_the_shared_target_flags() {
    let out = jvpn(&["netcheck", "--help"]);

    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--transports <LIST>",
        "--proxy <URL>",
        "--json",
        "--timeout <SECS>",
        "recommend",
    ] {
        assert!(help.contains(needle), "missing {needle:?}:\n{help}");
    }
}
