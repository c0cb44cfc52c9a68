//! `jvpn server`, `jvpn connect` and `jvpn status` as the built binary, on the paths that need no
//! root: every bad flag, bad config file and bad key file gives a clear error and the right exit
//! code (2 usage, 1 runtime) before anything touches the network or creates a TUN device, and
//! every subcommand's `--help` reads well.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A public key that parses (any 32 bytes are a valid X25519 public key).
const PEER_KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

fn jvpn(args: &[&str]) -> Output {
    jvpn_in(Path::new("."), args)
}

fn jvpn_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jvpn"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("the jvpn binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts the exit code and that stderr holds every `needle`; returns stderr.
fn assert_fails(out: &Output, code: i32, needles: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr:\n{err}");
    for needle in needles {
        assert!(err.contains(needle), "missing {needle:?} in stderr:\n{err}");
    }
    err
}

/// A private key file made by `jvpn genkey`, with the given mode.
fn key_file(dir: &Path, name: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    let out = jvpn(&["genkey", "-o", path.to_str().expect("UTF-8 temp path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn server_peer() -> String {
    format!("{PEER_KEY}=10.77.0.2/32")
}

// --- key files (runtime errors, exit 1) ---------------------------------------------------------

#[test]
fn server_with_a_missing_key_file_says_how_to_create_one() {
    let peer = server_peer();
    let out = jvpn(&[
        "server",
        "--key",
        "/nonexistent/server.key",
        "--address",
        "10.77.0.1/24",
        "--peer",
        &peer,
    ]);

    assert_fails(
        &out,
        1,
        &[
            "error: key file /nonexistent/server.key does not exist",
            "jvpn genkey",
        ],
    );
}

#[test]
fn connect_refuses_a_key_file_others_can_read_and_says_chmod_600() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "client.key", 0o644);

    let out = jvpn(&[
        "connect",
        "--key",
        key.to_str().unwrap(),
        "--server-key",
        PEER_KEY,
        "--address",
        "10.77.0.2/32",
        "127.0.0.1",
    ]);

    assert_fails(&out, 1, &["accessible by group or others", "chmod 600"]);
}

#[test]
fn connect_wait_reports_key_problems_itself_before_going_to_the_background() {
    let out = jvpn(&[
        "connect",
        "--key",
        "/nonexistent/client.key",
        "--server-key",
        PEER_KEY,
        "--address",
        "10.77.0.2/32",
        "--wait",
        "127.0.0.1",
    ]);

    assert_fails(&out, 1, &["does not exist"]);
}

// --- bad flags (usage errors, exit 2) -----------------------------------------------------------

#[test]
fn a_malformed_peer_shows_the_expected_form() {
    let out = jvpn(&[
        "server",
        "--key",
        "k",
        "--address",
        "10.77.0.1/24",
        "--peer",
        "nonsense",
    ]);

    assert_fails(&out, 2, &["--peer", "nonsense", "PUBKEY=ALLOWED_IPS"]);
}

#[test]
fn a_peer_with_a_bad_key_says_it_is_not_a_public_key() {
    let out = jvpn(&[
        "server",
        "--key",
        "k",
        "--address",
        "10.77.0.1/24",
        "--peer",
        "AAAA=10.77.0.2/32",
    ]);

    assert_fails(&out, 2, &["not a public key"]);
}

#[test]
fn a_bad_address_names_the_bad_part() {
    let out = jvpn(&[
        "connect",
        "--key",
        "k",
        "--server-key",
        PEER_KEY,
        "--address",
        "10.77.0.300/24",
        "h",
    ]);

    assert_fails(
        &out,
        2,
        &[
            "--address",
            "\"10.77.0.300\" is not an IPv4 or IPv6 address",
        ],
    );
}

#[test]
fn an_unknown_transport_lists_the_known_ones() {
    let out = jvpn(&[
        "connect",
        "--key",
        "k",
        "--server-key",
        PEER_KEY,
        "--address",
        "10.77.0.2/32",
        "--transports",
        "udp,carrier-pigeon",
        "h",
    ]);

    assert_fails(&out, 2, &["carrier-pigeon", "udp", "quic", "wss"]);
}

#[test]
fn an_unknown_transport_name_is_refused_with_the_known_ones() {
    let out = jvpn(&[
        "connect",
        "--key",
        "k",
        "--server-key",
        PEER_KEY,
        "--address",
        "10.77.0.2/32",
        "--transports",
        "carrier-pigeon",
        "h",
    ]);

    assert_fails(&out, 2, &["carrier-pigeon", "udp"]);
}

#[test]
fn a_missing_required_setting_names_the_flag() {
    let out = jvpn(&[
        "connect",
        "--server-key",
        PEER_KEY,
        "--address",
        "10.77.0.2/32",
        "h",
    ]);

    assert_fails(&out, 2, &["error: missing --key", "jvpn genkey"]);
}

#[test]
fn a_bad_server_key_says_what_a_key_looks_like() {
    let out = jvpn(&[
        "connect",
        "--key",
        "k",
        "--server-key",
        "hunter2",
        "--address",
        "10.77.0.2/32",
        "h",
    ]);

    assert_fails(&out, 2, &["error: --server-key: not a public key"]);
}

#[test]
fn wait_timeout_without_wait_is_a_usage_error() {
    let out = jvpn(&["connect", "--wait-timeout", "5", "h"]);

    assert_fails(&out, 2, &["--wait"]);
}

// --- config files (usage errors, exit 2) --------------------------------------------------------

#[test]
fn an_unknown_config_key_names_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    fs::write(&file, "key = \"server.key\"\nlisten-port = 51820\n").unwrap();

    let out = jvpn(&["server", "-c", file.to_str().unwrap()]);

    assert_fails(
        &out,
        2,
        &["server.toml", "listen-port", "unknown field", "line 2"],
    );
}

#[test]
fn a_config_value_of_the_wrong_type_names_the_key_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client.toml");
    fs::write(&file, "key = \"client.key\"\nmtu = \"large\"\n").unwrap();

    let out = jvpn(&["connect", "-c", file.to_str().unwrap()]);

    assert_fails(&out, 2, &["client.toml", "mtu", "line 2"]);
}

#[test]
fn a_bad_value_in_a_config_file_names_the_file_the_key_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    fs::write(
        &file,
        format!("key = \"k\"\naddress = \"10.77.0.1/24\"\npeer = [\"{PEER_KEY}\"]\n"),
    )
    .unwrap();

    let out = jvpn(&["server", "-c", file.to_str().unwrap()]);

    assert_fails(&out, 2, &["server.toml", "`peer`", "PUBKEY=ALLOWED_IPS"]);
}

#[test]
fn an_unknown_policy_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client.toml");
    fs::write(&file, "[policy]\nkeepalive_secs = 5\n").unwrap();

    let out = jvpn(&["connect", "-c", file.to_str().unwrap()]);

    assert_fails(&out, 2, &["keepalive_secs", "keepalive_interval_ms"]);
}

#[test]
fn a_missing_config_file_is_a_usage_error() {
    let out = jvpn(&["server", "-c", "/nonexistent/server.toml"]);

    assert_fails(
        &out,
        2,
        &["cannot read config file /nonexistent/server.toml"],
    );
}

#[test]
fn config_paths_are_relative_to_the_config_file_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    fs::create_dir(&conf).unwrap();
    key_file(&conf, "loose.key", 0o644);
    fs::write(
        conf.join("client.toml"),
        format!(
            "key = \"loose.key\"\nserver-key = \"{PEER_KEY}\"\nserver = \"127.0.0.1\"\n\
             address = \"10.77.0.2/32\"\n"
        ),
    )
    .unwrap();

    // Run from elsewhere: `loose.key` is found next to the config file (and refused as too open).
    let from_file = jvpn_in(dir.path(), &["connect", "-c", "conf/client.toml"]);
    // A flag replaces the file's key.
    let from_flag = jvpn_in(
        dir.path(),
        &[
            "connect",
            "-c",
            "conf/client.toml",
            "--key",
            "/nonexistent/flag.key",
        ],
    );

    assert_fails(&from_file, 1, &["conf/loose.key", "chmod 600"]);
    assert_fails(&from_flag, 1, &["/nonexistent/flag.key does not exist"]);
}

// --- status -------------------------------------------------------------------------------------

#[test]
fn status_without_a_running_jvpn_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");

    let out = jvpn(&["status", "--control", socket.to_str().unwrap()]);

    assert_fails(
        &out,
        1,
        &[
            "no jvpn running at",
            "none.sock",
            "jvpn connect",
            "--control",
        ],
    );
}

#[test]
fn status_on_the_default_sockets_names_them_when_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_jvpn"))
        .args(["status", "--json"])
        .env("XDG_RUNTIME_DIR", dir.path())
        .output()
        .unwrap();

    assert_fails(
        &out,
        1,
        &["no jvpn running at", "client.sock", "server.sock"],
    );
}

// --- help ---------------------------------------------------------------------------------------

#[test]
fn each_subcommand_help_explains_itself_with_examples() {
    let cases: [(&str, &[&str]); 3] = [
        (
            "server",
            &[
                "--peer <PUBKEY=ALLOWED_IPS>",
                "--listen <URL>",
                "-c, --config <FILE>",
                "Examples:",
                "[policy]",
            ],
        ),
        (
            "connect",
            &[
                "[SERVER_HOST]",
                "--wait",
                "--transports <LIST>",
                "--allowed-ips",
                "/24",
                "Examples:",
            ],
        ),
        (
            "status",
            &[
                "--json",
                "--control <SOCKET>",
                "schema_version",
                "Examples:",
            ],
        ),
    ];
    for (command, needles) in cases {
        let out = jvpn(&[command, "--help"]);

        assert!(out.status.success(), "{command} --help: {}", stderr(&out));
        let help = stdout(&out);
        for needle in needles {
            assert!(
                help.contains(needle),
                "{command} --help lacks {needle:?}:\n{help}"
            );
        }
    }
}

#[test]
fn top_level_help_lists_every_command_and_the_exit_codes() {
    let out = jvpn(&["--help"]);

    let help = stdout(&out);
    for needle in ["server", "connect", "status", "demo", "Exit codes"] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    assert!(!help.contains("notify-ready"), "internal flags stay hidden");
}
