//! `jvpn demo`: a whole VPN on one machine that jumps between transports. Two network namespaces
//! ("client" and "server") joined by a veth path, `jvpn server` listening on UDP 51820, QUIC 443
//! and WSS 443 and `jvpn connect --transports udp,quic,wss` (this very binary) with TUN devices
//! inside them, inner traffic (a TCP stream and two 5 ms UDP streams) through the tunnel, and
//! nftables rules that push the session from UDP to QUIC (UDP dropped except port 443), to WSS
//! (everything dropped but TCP 443) and back to UDP (rules lifted), with one line of live status
//! per second and each move's blackout; the client's audit trail at the end. Everything is
//! removed on exit, on Ctrl-C and on SIGTERM (namespaces, veths, TUN devices, processes, keys).
//!
//! It needs root: namespaces, veth pairs and TUN devices need `CAP_SYS_ADMIN` and `CAP_NET_ADMIN`,
//! and `nft` (nftables) for the firewall rules.

mod jumps;

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use jvpn_netns::{Namespace, Process, Signal, Testbed, wait_for};
use serde_json::Value;

/// Arguments of `jvpn demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Seconds of live status on each transport (UDP, QUIC, WSS, UDP again)
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub(crate) duration: u64,
    /// Print each second's client and server status as one JSON line instead of a human line
    #[arg(long)]
    pub(crate) json: bool,
}

const SERVER_INNER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const CLIENT_INNER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const STREAM_PORT: u16 = 5001;
/// Bound for the tunnel to come up (processes start, handshake, first inner round trip).
const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// Runs the demo; returns once everything it created is gone. Ctrl-C or SIGTERM end it early
/// (still cleaning up).
pub(crate) async fn run(args: DemoArgs) -> Result<(), String> {
    preflight()?;
    let stop = Arc::new(AtomicBool::new(false));
    let worker_stop = Arc::clone(&stop);
    let mut worker = tokio::task::spawn_blocking(move || demo(&args, &worker_stop));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    let finished = tokio::select! {
        result = &mut worker => Some(result),
        _ = tokio::signal::ctrl_c() => None,
        _ = terminate.recv() => None,
    };
    let result = match finished {
        Some(result) => result,
        None => {
            say("\ninterrupted: stopping the tunnel and removing the namespaces …");
            stop.store(true, Ordering::Relaxed);
            worker.await
        }
    };
    result.map_err(|e| format!("the demo stopped unexpectedly: {e}"))?
}

/// A clear error before anything is created when the demo cannot run here.
fn preflight() -> Result<(), String> {
    let euid = rustix::process::geteuid();
    if !euid.is_root() {
        return Err(format!(
            "jvpn demo needs root (running as uid {}): it creates network namespaces, veth pairs \
             and TUN devices, which needs CAP_SYS_ADMIN and CAP_NET_ADMIN. Run it as root, e.g. \
             `sudo jvpn demo`",
            euid.as_raw()
        ));
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err(
            "jvpn demo needs /dev/net/tun (the TUN driver): load it with `modprobe tun`".into(),
        );
    }
    jvpn_netns::require(&["ping", "nft"]).map_err(|why| format!("jvpn demo cannot run here: {why}"))
}

fn demo(args: &DemoArgs, stop: &AtomicBool) -> Result<(), String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the jvpn binary itself: {e}"))?
        .to_str()
        .ok_or("the jvpn binary's path is not UTF-8")?
        .to_owned();
    let dir = tempfile::Builder::new()
        .prefix("jvpn-demo-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot restrict {}: {e}", dir.path().display()))?;
    let tb = Testbed::new("demo").map_err(|e| e.to_string())?;
    let outcome = run_tunnel(&tb, &exe, dir.path(), args, stop);
    say("cleaning up: processes, namespaces, veths, TUN devices, keys");
    let cleaned = tb.cleanup().map_err(|e| format!("cleanup: {e}"));
    outcome.and(cleaned)
}

/// Files and processes of one side.
struct Side {
    ns: Namespace,
    process: Process,
    control: PathBuf,
    audit: PathBuf,
}

fn run_tunnel(
    tb: &Testbed,
    exe: &str,
    dir: &Path,
    args: &DemoArgs,
    stop: &AtomicBool,
) -> Result<(), String> {
    let e = |e: jvpn_netns::NetnsError| e.to_string();
    let client_ns = tb.add_namespace("client").map_err(e)?;
    let server_ns = tb.add_namespace("server").map_err(e)?;
    let path = tb.link(&client_ns, &server_ns).map_err(e)?;
    say(&format!(
        "namespaces: {} (client), {} (server)\npath: {} {} <-> {} {}",
        client_ns.name(),
        server_ns.name(),
        path.a_dev,
        path.a_addr,
        path.b_addr,
        path.b_dev,
    ));
    let config = dir.join("policy.toml");
    std::fs::write(&config, jumps::DEMO_POLICY)
        .map_err(|e| format!("write {}: {e}", config.display()))?;
    let config = path_str(&config)?;
    say(&format!(
        "both sides run with -c $DIR/policy.toml:\n{}",
        jumps::DEMO_POLICY.trim_end()
    ));

    let server_key = genkey(exe, dir, "server")?;
    let client_key = genkey(exe, dir, "client")?;
    let server_pub = public_key(&server_key)?;
    let client_pub = public_key(&client_key)?;

    let server = start(
        &server_ns,
        exe,
        dir,
        "server",
        &[
            "server",
            "--key",
            &path_str(&server_key)?,
            "--address",
            "10.77.0.1/24",
            "-c",
            &config,
            "--listen",
            "udp://0.0.0.0:51820",
            "--listen",
            "quic://0.0.0.0:443",
            "--listen",
            "wss://0.0.0.0:443/jvpn",
            "--peer",
            &format!("{client_pub}=10.77.0.2/32"),
        ],
    )?;
    let client = start(
        &client_ns,
        exe,
        dir,
        "client",
        &[
            "connect",
            "--key",
            &path_str(&client_key)?,
            "--server-key",
            &server_pub,
            "--address",
            "10.77.0.2/32",
            "-c",
            &config,
            "--transports",
            "udp,quic,wss",
            &path.b_addr.to_string(),
        ],
    )?;

    let attached = wait_attached(exe, &client, &server, stop)?;
    if !attached {
        return Ok(());
    }
    say(&format!(
        "tunnel up: {CLIENT_INNER} (client) <-> {SERVER_INNER} (server); pushing a TCP stream \
         through it"
    ));
    let stream = TcpStreamLoad::start(&client_ns, &server_ns, stop)?;
    let shown = jumps::run(tb, exe, (&client, &server), args, stop);
    let received = stream.finish().load(Ordering::Relaxed);
    say(&format!(
        "TCP stream: {:.1} MB received through the tunnel, one connection across every move",
        received as f64 / 1e6
    ));
    shown?;

    say("stopping the client (SIGTERM: it sends CLOSE and removes its TUN device)");
    let _ = client.process.signal(Signal::Terminate);
    match client.process.wait_timeout(Duration::from_secs(10)) {
        Ok(status) => say(&format!("client exited: {status}")),
        Err(err) => say(&format!(
            "client did not exit in time ({err}); it will be killed"
        )),
    }
    print_audit_trail(&client.audit);
    Ok(())
}

fn path_str(path: &Path) -> Result<String, String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

/// `jvpn genkey -o DIR/NAME.key` with this binary.
fn genkey(exe: &str, dir: &Path, name: &str) -> Result<PathBuf, String> {
    let path = dir.join(format!("{name}.key"));
    let out = std::process::Command::new(exe)
        .args(["genkey", "-o"])
        .arg(&path)
        .output()
        .map_err(|e| format!("cannot run `{exe} genkey`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`jvpn genkey` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(path)
}

fn public_key(secret: &Path) -> Result<String, String> {
    jvpn::keyfile::read_secret_key(secret)
        .map(|key| key.public_key().to_base64())
        .map_err(|e| e.to_string())
}

/// Starts `jvpn ARGS… --audit-log DIR/ROLE.audit.jsonl --control DIR/ROLE.sock` in `ns`.
fn start(ns: &Namespace, exe: &str, dir: &Path, role: &str, args: &[&str]) -> Result<Side, String> {
    let control = dir.join(format!("{role}.sock"));
    let audit = dir.join(format!("{role}.audit.jsonl"));
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    all.extend([
        "--audit-log".to_owned(),
        path_str(&audit)?,
        "--control".to_owned(),
        path_str(&control)?,
    ]);
    say(&format!(
        "{role}: ip netns exec {} jvpn {}",
        ns.name(),
        shown_line(dir, &all)
    ));
    let process = ns
        .spawn_with_env(exe, &all, &[("RUST_LOG", "info")])
        .map_err(|e| e.to_string())?;
    Ok(Side {
        ns: ns.clone(),
        process,
        control,
        audit,
    })
}

/// The command line as shown to the user, the temporary directory shortened to `$DIR`.
fn shown_line(dir: &Path, args: &[String]) -> String {
    let dir = dir.to_string_lossy();
    args.iter()
        .map(|a| match a.strip_prefix(dir.as_ref()) {
            Some(file) => format!("$DIR{file}"),
            None => a.clone(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `jvpn status --json --control SOCKET`, parsed; `None` while it does not answer.
fn status(exe: &str, side: &Side) -> Option<Value> {
    let control = side.control.to_str()?;
    let out = side
        .ns
        .exec(exe, &["status", "--json", "--control", control])
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// Waits until the client is ATTACHED and the server answers a ping through the tunnel. `Ok(false)`
/// when interrupted.
fn wait_attached(
    exe: &str,
    client: &Side,
    server: &Side,
    stop: &AtomicBool,
) -> Result<bool, String> {
    say("waiting for the handshake and a first inner round trip …");
    let result = wait_for(ATTACH_TIMEOUT, POLL, "the tunnel to come up", || {
        if stop.load(Ordering::Relaxed) {
            return Some(Ok(false));
        }
        for side in [client, server] {
            if let Ok(Some(exit)) = side.process.try_wait() {
                return Some(Err(format!(
                    "`{}` exited ({exit}):\n{}",
                    side.process.command(),
                    side.process.stderr_text().trim()
                )));
            }
        }
        let attached = status(exe, client)
            .is_some_and(|s| s["sessions"][0]["state"].as_str() == Some("ATTACHED"));
        (attached && client.ns.ping(SERVER_INNER.into()).unwrap_or(false)).then_some(Ok(true))
    });
    result.map_err(|e| {
        format!(
            "{e}\nclient said:\n{}\nserver said:\n{}",
            client.process.stderr_text().trim(),
            server.process.stderr_text().trim()
        )
    })?
}

/// A bulk TCP stream from the client's namespace to the server's inner address, until stopped.
struct TcpStreamLoad {
    /// Bytes the server side has read so far.
    received: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl TcpStreamLoad {
    fn start(client: &Namespace, server: &Namespace, stop: &AtomicBool) -> Result<Self, String> {
        let target = SocketAddr::from((SERVER_INNER, STREAM_PORT));
        let step = Duration::from_secs(5);
        let listener = server
            .run_in(step, move || TcpListener::bind(target))
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("bind {target} in the server namespace: {e}"))?;
        let stream = client
            .run_in(step, move || TcpStream::connect_timeout(&target, step))
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("connect to {target} through the tunnel: {e}"))?;
        let (mut inbound, _) = listener
            .accept()
            .map_err(|e| format!("accept on {target}: {e}"))?;
        let received = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(stop.load(Ordering::Relaxed)));
        let counter = Arc::clone(&received);
        let reader = std::thread::spawn(move || {
            let _ = inbound.set_read_timeout(Some(step));
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = inbound.read(&mut buf) {
                if n == 0 {
                    break;
                }
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
        let writer_done = Arc::clone(&done);
        let writer = std::thread::spawn(move || {
            let mut stream = stream;
            let _ = stream.set_write_timeout(Some(step));
            let buf = vec![0x5a_u8; 64 * 1024];
            while !writer_done.load(Ordering::Relaxed) && stream.write_all(&buf).is_ok() {}
            let _ = stream.shutdown(std::net::Shutdown::Write);
        });
        Ok(Self {
            received,
            done,
            threads: vec![writer, reader],
        })
    }

    /// Stops the writer; both threads end within one socket timeout.
    fn finish(self) -> Arc<AtomicU64> {
        self.done.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        self.received
    }
}

/// One status line (`--json`: one JSON object) for second `second` of the show.
fn print_status(
    exe: &str,
    (client, server): (&Side, &Side),
    json: bool,
    second: u64,
    last_out: &mut Option<u64>,
) {
    let client_status = status(exe, client);
    let server_status = status(exe, server);
    if json {
        let line = serde_json::json!({
            "t": second, "client": client_status, "server": server_status,
        });
        say(&line.to_string());
    } else {
        say(&human_line(
            second,
            client_status.as_ref(),
            server_status.as_ref(),
            last_out,
        ));
    }
}

fn human_line(
    second: u64,
    client: Option<&Value>,
    server: Option<&Value>,
    last_out: &mut Option<u64>,
) -> String {
    let Some(session) = client.and_then(|s| s["sessions"].get(0)) else {
        return format!("[{second:>3}s] client: no status");
    };
    let bytes_out = session["bytes_out"].as_u64().unwrap_or(0);
    let rate = last_out.map_or_else(
        || "-".to_owned(),
        |prev| format!("{:.0}", bytes_out.saturating_sub(prev) as f64 * 8.0 / 1e6),
    );
    *last_out = Some(bytes_out);
    let remote = session["remote"].as_str().unwrap_or("-");
    let rtt = session["candidates"]
        .as_array()
        .and_then(|paths| {
            paths
                .iter()
                .find(|p| p["remote"].as_str() == Some(remote))
                .or_else(|| paths.first())
        })
        .and_then(|p| p["rtt_ms"].as_f64())
        .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2} ms"));
    let server_sessions = server
        .and_then(|s| s["sessions"].as_array())
        .map_or(0, Vec::len);
    format!(
        "[{second:>3}s] {:<10} epoch {}  {} {}  rtt {rtt}  out {:.1} MB ({rate} Mbit/s)  in {:.1} MB  \
         | server: {server_sessions} session(s)",
        session["state"].as_str().unwrap_or("?"),
        session["epoch"].as_u64().unwrap_or(0),
        session["transport"].as_str().unwrap_or("-"),
        remote,
        bytes_out as f64 / 1e6,
        session["bytes_in"].as_u64().unwrap_or(0) as f64 / 1e6,
    )
}

/// The client's audit log, one transition per line.
fn print_audit_trail(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    say("client audit trail:");
    for line in text.lines() {
        match serde_json::from_str::<Value>(line) {
            Ok(r) => say(&format!(
                "  v{} {} -> {} ({}) epoch {} {}",
                r["version"],
                r["from"].as_str().unwrap_or("?"),
                r["to"].as_str().unwrap_or("?"),
                r["reason"].as_str().unwrap_or("?"),
                r["epoch"],
                r["transport"].as_str().unwrap_or("-"),
            )),
            Err(_) => say(&format!("  (not JSON) {line}")),
        }
    }
}

fn say(line: &str) {
    // Nothing sensible to do if stdout is closed; cleanup still runs.
    let _ = writeln!(io::stdout().lock(), "{line}");
}
