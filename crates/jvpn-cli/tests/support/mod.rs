//! Helpers of the network-namespace end-to-end tests: keys made by `jvpn genkey`, the real `jvpn`
//! binary run as server and clients inside namespaces of a `jvpn_netns::Testbed`, status queries
//! over the control socket, audit logs, and a checksummed inner TCP transfer.
//!
//! Every wait here is bounded (`jvpn_netns::wait_for`, socket timeouts, `Deadline`); a wait that runs
//! out panics with what it saw, and the testbed's drop then prints the tail of every process's log.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use jvpn_netns::traffic::tcp::{self, TcpSink};
use jvpn_netns::{Deadline, Namespace, Process, Testbed, VethPath, testbed_or_skip, wait_for};
use serde_json::Value;

/// The binary under test.
pub(crate) const JVPN: &str = env!("CARGO_BIN_EXE_jvpn");
/// The server's inner address (its TUN), in the 10.77.0.0/24 tunnel network.
pub(crate) const SERVER_INNER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The UDP port the server listens on.
pub(crate) const PORT: u16 = 51820;
/// Bound for a process to come up (bind, TUN, control socket).
pub(crate) const STARTUP: Duration = Duration::from_secs(20);
/// Bound for a first handshake and a first inner round trip.
pub(crate) const ATTACH: Duration = Duration::from_secs(20);
/// How often a bounded wait polls.
pub(crate) const POLL: Duration = Duration::from_millis(200);

/// The testbed for one test, or `None` after printing `skipping: …` (no root, no `ip netns`, a tool
/// missing). With `JVPN_NETNS_REQUIRE=1` a missing capability fails the test instead.
pub(crate) fn testbed(name: &str, tools: &[&str]) -> Option<Testbed> {
    testbed_or_skip(name, tools).expect("namespace tests are required (JVPN_NETNS_REQUIRE=1)")
}

/// A fresh private directory for keys, sockets, logs and config of one test.
pub(crate) fn workdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("jvpn-e2e-")
        .tempdir()
        .expect("a temporary directory");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod 0700");
    dir
}

/// A key pair on disk: the secret key file (0600, written by `jvpn genkey -o`) and the public key.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) secret: PathBuf,
    pub(crate) public: String,
}

/// `jvpn genkey -o DIR/NAME.key`, then `jvpn pubkey < DIR/NAME.key`.
pub(crate) fn genkey(dir: &Path, name: &str) -> Keys {
    let secret = dir.join(format!("{name}.key"));
    let out = Command::new(JVPN)
        .args(["genkey", "-o"])
        .arg(&secret)
        .output()
        .expect("jvpn genkey runs");
    assert!(out.status.success(), "jvpn genkey: {out:?}");
    let mode = fs::metadata(&secret)
        .expect("key file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "a secret key file is private");
    let out = Command::new(JVPN)
        .arg("pubkey")
        .stdin(fs::File::open(&secret).expect("open key file"))
        .stderr(Stdio::piped())
        .output()
        .expect("jvpn pubkey runs");
    assert!(out.status.success(), "jvpn pubkey: {out:?}");
    let public = String::from_utf8(out.stdout)
        .expect("utf-8 public key")
        .trim()
        .to_owned();
    Keys { secret, public }
}

/// A `jvpn server` or `jvpn connect` running in a namespace, with its control socket and audit log.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) ns: Namespace,
    pub(crate) process: Process,
    pub(crate) control: PathBuf,
    pub(crate) audit: PathBuf,
}

/// Starts `jvpn server` in `ns`: inner address 10.77.0.1/24, UDP on port 51820 on every address,
/// one `--peer PUBKEY=ALLOWED` per entry of `peers`. `name` distinguishes its files in `dir`
/// (a restarted server gets a new name, hence a new control socket and audit log).
pub(crate) fn start_server(
    ns: &Namespace,
    dir: &Path,
    name: &str,
    key: &Keys,
    peers: &[(&Keys, &str)],
    policy: Policy,
) -> Node {
    start_server_on(ns, dir, name, key, peers, policy, Over::Udp)
}

/// The transport a test runs the tunnel over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// UDP on port [`PORT`].
    Udp,
    /// QUIC on port [`PORT`] (UDP underneath).
    Quic,
    /// WebSocket over TLS on TCP port [`PORT`].
    Wss,
}

impl Over {
    fn listen(self) -> String {
        match self {
            Over::Udp => format!("udp://0.0.0.0:{PORT}"),
            Over::Quic => format!("quic://0.0.0.0:{PORT}"),
            Over::Wss => format!("wss://0.0.0.0:{PORT}/jvpn"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Over::Udp => "udp",
            Over::Quic => "quic",
            Over::Wss => "wss",
        }
    }
}

/// [`start_server`] listening on the transport `over`.
pub(crate) fn start_server_on(
    ns: &Namespace,
    dir: &Path,
    name: &str,
    key: &Keys,
    peers: &[(&Keys, &str)],
    policy: Policy,
    over: Over,
) -> Node {
    let files = NodeFiles::new(dir, name);
    let mut args = files.server_args(key, &[over.listen()], peers);
    args.extend(policy.args(dir, name));
    files.spawn_server(ns, &args)
}

/// Starts `jvpn connect` in `ns` towards the server's outer address `server`, with the key `key`
/// and the inner address `address` (e.g. `10.77.0.2/32`).
pub(crate) fn start_client(
    ns: &Namespace,
    dir: &Path,
    name: &str,
    (key, address): (&Keys, &str),
    server_key: &Keys,
    server: Ipv4Addr,
    policy: Policy,
) -> Node {
    start_client_over(
        ns,
        dir,
        name,
        (key, address),
        server_key,
        (server, Over::Udp),
        policy,
    )
}

/// [`start_client`] over the transport `over`.
pub(crate) fn start_client_over(
    ns: &Namespace,
    dir: &Path,
    name: &str,
    (key, address): (&Keys, &str),
    server_key: &Keys,
    (server, over): (Ipv4Addr, Over),
    policy: Policy,
) -> Node {
    let files = NodeFiles::new(dir, name);
    let mut args = files.client_args((key, server_key), address, over.name());
    args.extend(policy.args(dir, name));
    args.push(format!("{server}:{PORT}"));
    files.spawn(ns, &args, "jvpn connect starts")
}

/// Timers of the tests' policy: a dead path is noticed within a few seconds instead of the default
/// 25 s, so the restart scenario stays short. Written as a `-c` config file's `[policy]` table.
const FAST_POLICY: &str = "[policy]\n\
    keepalive_interval_ms = 1000\n\
    dead_after_ms = 4000\n\
    handshake_retry_ms = 1000\n\
    probe_interval_ms = 500\n";

/// Which session policy a node runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// The built-in defaults (what a user gets).
    Default,
    /// [`FAST_POLICY`], through a `-c` config file.
    Fast,
}

impl Policy {
    fn args(self, dir: &Path, name: &str) -> Vec<String> {
        match self {
            Policy::Default => Vec::new(),
            Policy::Fast => config_file_args(dir, name, FAST_POLICY),
        }
    }
}

fn path_arg(path: &Path) -> String {
    path.to_str().expect("temporary paths are UTF-8").to_owned()
}

/// Writes `text` to the config file `DIR/NAME.toml` and returns the `-c FILE` arguments.
pub(crate) fn config_file_args(dir: &Path, name: &str, text: &str) -> Vec<String> {
    let file = dir.join(format!("{name}.toml"));
    fs::write(&file, text).expect("write the config file");
    vec!["-c".into(), path_arg(&file)]
}

/// Where a node named NAME keeps its control socket and audit log, and the arguments naming them.
pub(crate) struct NodeFiles {
    control: PathBuf,
    audit: PathBuf,
}

impl NodeFiles {
    /// `DIR/NAME.sock` and `DIR/NAME.audit.jsonl`.
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        Self {
            control: dir.join(format!("{name}.sock")),
            audit: dir.join(format!("{name}.audit.jsonl")),
        }
    }

    fn file_args(&self) -> [String; 4] {
        [
            "--audit-log".into(),
            path_arg(&self.audit),
            "--control".into(),
            path_arg(&self.control),
        ]
    }

    /// `jvpn server` with `key`, inner [`SERVER_INNER`]/24, one `--listen` per entry of `listen`,
    /// these files and one `--peer` per entry of `peers`.
    pub(crate) fn server_args(
        &self,
        key: &Keys,
        listen: &[String],
        peers: &[(&Keys, &str)],
    ) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "server".into(),
            "--key".into(),
            path_arg(&key.secret),
            "--address".into(),
            format!("{SERVER_INNER}/24"),
        ];
        for l in listen {
            args.push("--listen".into());
            args.push(l.clone());
        }
        args.extend(self.file_args());
        for (peer, allowed) in peers {
            args.push("--peer".into());
            args.push(format!("{}={allowed}", peer.public));
        }
        args
    }

    /// `jvpn connect` with `key` towards `server_key`, inner `address`, `--transports transports`
    /// and these files (the server host still to add).
    pub(crate) fn client_args(
        &self,
        (key, server_key): (&Keys, &Keys),
        address: &str,
        transports: &str,
    ) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "connect".into(),
            "--key".into(),
            path_arg(&key.secret),
            "--server-key".into(),
            server_key.public.clone(),
            "--address".into(),
            address.into(),
            "--transports".into(),
            transports.into(),
        ];
        args.extend(self.file_args());
        args
    }

    /// Runs `jvpn ARGS` in `ns` (panicking with `what` if it does not start).
    pub(crate) fn spawn(self, ns: &Namespace, args: &[String], what: &str) -> Node {
        let process = ns
            .spawn_with_env(JVPN, args, &[("RUST_LOG", "info")])
            .expect(what);
        Node {
            ns: ns.clone(),
            process,
            control: self.control,
            audit: self.audit,
        }
    }

    /// [`NodeFiles::spawn`] for a server, returning once its control socket answers.
    pub(crate) fn spawn_server(self, ns: &Namespace, args: &[String]) -> Node {
        let node = self.spawn(ns, args, "jvpn server starts");
        node.wait_status(STARTUP, "the server's control socket to answer", |_| true);
        node
    }
}

impl Node {
    /// `jvpn status --json --control SOCKET`, parsed; `None` while it does not answer.
    pub(crate) fn status(&self) -> Option<Value> {
        let out = self
            .ns
            .exec(
                JVPN,
                &[
                    "status",
                    "--json",
                    "--control",
                    self.control.to_str().expect("UTF-8 socket path"),
                ],
            )
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Polls the status until `accept` holds, at most `timeout`; panics naming `what` and showing the
    /// last status otherwise. Also panics at once if the process has exited.
    pub(crate) fn wait_status(
        &self,
        timeout: Duration,
        what: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut last = None;
        let waited = wait_for(timeout, POLL, what, || {
            if let Ok(Some(exit)) = self.process.try_wait() {
                panic!(
                    "`{}` exited ({exit}) while waiting for {what}:\n{}",
                    self.process.command(),
                    self.process.stderr_text()
                );
            }
            let status = self.status()?;
            let ok = accept(&status);
            last = Some(status.clone());
            ok.then_some(status)
        });
        match waited {
            Ok(status) => status,
            Err(e) => panic!("{e}; last status: {last:#?}"),
        }
    }

    /// Waits until the client's session is ATTACHED, then until `peer_inner` answers a ping through
    /// the tunnel. Returns the status seen once attached.
    pub(crate) fn wait_ready(&self, peer_inner: Ipv4Addr) -> Value {
        let status = self.wait_status(ATTACH, "the session to be ATTACHED", |s| {
            session_state(s) == Some("ATTACHED")
        });
        wait_ping(&self.ns, peer_inner, ATTACH);
        status
    }

    /// The audit log's records, each line parsed as JSON (panics on a line that is not JSON).
    pub(crate) fn audit_records(&self) -> Vec<Value> {
        let text = fs::read_to_string(&self.audit).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l}"))
            })
            .collect()
    }
}

/// The state of the status's first session, if it has one.
pub(crate) fn session_state(status: &Value) -> Option<&str> {
    status["sessions"].get(0)?["state"].as_str()
}

/// The session id of the status's first session, if known.
pub(crate) fn session_id(status: &Value) -> Option<String> {
    status["sessions"].get(0)?["session_id"]
        .as_str()
        .map(str::to_owned)
}

/// The TUN device's name from a status.
pub(crate) fn tun_name(status: &Value) -> String {
    status["tun"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("the status names its TUN device: {status:#}"))
        .to_owned()
}

/// Pings `addr` from `ns` until it answers, at most `timeout`.
pub(crate) fn wait_ping(ns: &Namespace, addr: Ipv4Addr, timeout: Duration) {
    let what = format!("{addr} to answer a ping from {}", ns.role());
    wait_for(timeout, POLL, &what, || {
        ns.ping(addr.into()).ok().filter(|ok| *ok).map(drop)
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

/// `ping -c COUNT -i 0.2 -W 2 ADDR` in `ns`: whether every echo was answered.
pub(crate) fn ping_all(ns: &Namespace, addr: Ipv4Addr, count: u32) -> bool {
    let out = ns
        .exec_timeout(
            "ping",
            &[
                "-n",
                "-q",
                "-c",
                &count.to_string(),
                "-i",
                "0.2",
                "-W",
                "2",
                &addr.to_string(),
            ],
            Duration::from_secs(u64::from(count) + 10),
        )
        .expect("ping runs");
    out.status.success()
}

/// Sends `count` pings from `ns` to `addr` and ignores whether they are answered.
pub(crate) fn ping_and_ignore(ns: &Namespace, addr: Ipv4Addr, count: u32) {
    let _ = ping_all(ns, addr, count);
}

/// A packet counter of `dev` in `ns` (`rx_packets`, `tx_packets`, …) from sysfs.
pub(crate) fn link_counter(ns: &Namespace, dev: &str, counter: &str) -> u64 {
    let file = format!("/sys/class/net/{dev}/statistics/{counter}");
    let out = ns.exec_ok("cat", &[&file]).expect("read a link counter");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a counter is a number")
}

/// Whether a link named `dev` exists in `ns`.
pub(crate) fn link_exists(ns: &Namespace, dev: &str) -> bool {
    ns.exec("ip", &["link", "show", "dev", dev])
        .is_ok_and(|out| out.status.success())
}

/// A client and a server namespace joined by one veth path (client side A `10.201.1.1`, server side B
/// `10.201.1.2`).
pub(crate) fn client_and_server(tb: &Testbed) -> (Namespace, Namespace, VethPath) {
    let client = tb.add_namespace("client").expect("client namespace");
    let server = tb.add_namespace("server").expect("server namespace");
    let path = tb.link(&client, &server).expect("a veth path");
    (client, server, path)
}

/// One server and one client (inner `10.77.0.2/32`) running in their own namespaces, joined by
/// one veth path, with keys and files in a fresh temporary directory.
/// Keep `dir` alive as long as the processes run: it holds their keys, sockets and audit logs.
pub(crate) struct OneClient {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) client_ns: Namespace,
    pub(crate) server_ns: Namespace,
    pub(crate) server: Node,
    pub(crate) client: Node,
}

/// The client's inner address in [`OneClient`].
pub(crate) const ONE_CLIENT_ALLOWED: &str = "10.77.0.2/32";

/// Starts [`OneClient`]: the server (named "server") first, then the client.
pub(crate) fn one_client(tb: &Testbed, policy: Policy) -> OneClient {
    one_client_over(tb, policy, Over::Udp)
}

/// [`one_client`] over the transport `over`.
pub(crate) fn one_client_over(tb: &Testbed, policy: Policy, over: Over) -> OneClient {
    let dir = workdir();
    let (client_ns, server_ns, path) = client_and_server(tb);
    let server_keys = genkey(dir.path(), "server");
    let client_keys = genkey(dir.path(), "client");
    let server = start_server_on(
        &server_ns,
        dir.path(),
        "server",
        &server_keys,
        &[(&client_keys, ONE_CLIENT_ALLOWED)],
        policy,
        over,
    );
    let client = start_client_over(
        &client_ns,
        dir.path(),
        "client",
        (&client_keys, ONE_CLIENT_ALLOWED),
        &server_keys,
        (path.b_addr, over),
        policy,
    );
    OneClient {
        dir,
        client_ns,
        server_ns,
        server,
        client,
    }
}

/// What one end of a transfer saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digest {
    pub(crate) bytes: u64,
    pub(crate) sha256: String,
}

/// Streams `bytes` bytes of seeded pseudo-random data over TCP from namespace `from` to
/// `to_addr:port` (a listener bound in namespace `to`); returns what the sender sent and what the
/// receiver received. The whole transfer is bounded by `timeout`.
pub(crate) fn transfer(
    from: &Namespace,
    to: &Namespace,
    to_addr: Ipv4Addr,
    port: u16,
    bytes: u64,
    seed: u64,
    timeout: Duration,
) -> (Digest, Digest) {
    let target = SocketAddr::from((to_addr, port));
    let listener = to
        .run_in(STARTUP, move || TcpListener::bind(target))
        .expect("enter the receiver's namespace")
        .expect("bind the receiver");
    let deadline = Deadline::after(timeout);
    let sink = TcpSink::start(listener, deadline).expect("start the receiver");
    let sent = from
        .run_in(timeout, move || {
            let stream = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT)?;
            tcp::send(stream, bytes, seed, deadline)
        })
        .expect("the sender finishes in time")
        .expect("the sender streams every byte");
    let received = sink.finish().expect("the receiver reads to the end");
    (
        Digest {
            bytes: sent.bytes,
            sha256: sent.sha256,
        },
        Digest {
            bytes: received.bytes,
            sha256: received.sha256,
        },
    )
}

/// Bound of the sender's connect; the deadline bounds the whole transfer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
