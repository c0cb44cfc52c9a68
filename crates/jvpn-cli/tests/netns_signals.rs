//! ATTACKS.md S27, off-path injected teardown, with the real `jvpn server` / `jvpn connect` binaries
//! across network namespaces: while a checksummed inner TCP transfer runs through the tunnel, the
//! test injects unauthenticated "teardown" signals at the running session —
//!
//! - (a) ICMP port unreachable and host unreachable errors, sent from the server's address to the
//!   client's UDP socket, each quoting the client's real 5-tuple (a raw ICMP socket in the server
//!   namespace);
//! - (b) TCP RSTs on the WSS connection (bursts of an nftables `reject with tcp reset` rule in the
//!   server namespace, counted by the rule);
//! - (c) fake STATELESS_RESETs (DATA-shaped, random tokens, docs/protocol.md §14) from the server's
//!   UDP address and port to the client's UDP port (a raw UDP socket in the server namespace).
//!
//! Pass: the session is never TERMINATED (client and server audit logs), the client process keeps
//! running with the same session id, and the inner transfer completes with the same SHA-256 at both
//! ends. At most a transport detach (RECOVERING, then a reattach) is allowed. Each scenario prints
//! the signals injected and the sessions lost (0).
//!
//! Root, `nft` and `tc` are needed; without them each test prints `skipping: <reason>` and passes
//! (`JVPN_NETNS_REQUIRE=1` makes that a failure). One scenario at a time (a process-wide lock); the
//! file takes about a minute.

#[expect(
    dead_code,
    reason = "the support module is shared with the other netns suites, which use the parts this file does not"
)]
mod support;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use jvpn_netns::traffic::tcp::{self, TcpReceived, TcpSent, TcpSink};
use jvpn_netns::{Deadline, Namespace, wait_for};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use rand::{Rng as _, RngCore as _};
use serde_json::Value;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use support::{
    Keys, Node, Over, PORT, Policy, SERVER_INNER, client_and_server, genkey, session_id,
    session_state, start_client_over, start_server_on, testbed, workdir,
};

/// Inner TCP port of the transfer.
const XFER_PORT: u16 = 5002;
/// The client's inner address.
const CLIENT_ALLOWED: &str = "10.77.0.2/32";
/// The client's outer sending rate (tc tbf), so that the transfer outlasts the injection on any
/// machine.
const RATE_MBIT: u32 = 40;
/// Bound of a whole transfer, outages included.
const TRANSFER_BOUND: Duration = Duration::from_secs(150);

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A client and a server over `over`, the client's outer rate limited, attached.
struct Setup {
    _dir: tempfile::TempDir,
    client_ns: Namespace,
    server_ns: Namespace,
    server_addr: Ipv4Addr,
    client_addr: Ipv4Addr,
    server: Node,
    client: Node,
    session: String,
}

fn setup(tb: &jvpn_netns::Testbed, over: Over) -> Setup {
    let dir = workdir();
    let (client_ns, server_ns, path) = client_and_server(tb);
    let server_keys: Keys = genkey(dir.path(), "server");
    let client_keys = genkey(dir.path(), "client");
    let server = start_server_on(
        &server_ns,
        dir.path(),
        "server",
        &server_keys,
        &[(&client_keys, CLIENT_ALLOWED)],
        Policy::Fast,
        over,
    );
    let client = start_client_over(
        &client_ns,
        dir.path(),
        "client",
        (&client_keys, CLIENT_ALLOWED),
        &server_keys,
        (path.b_addr, over),
        Policy::Fast,
    );
    client_ns
        .rate_limit(&path.a_dev, RATE_MBIT)
        .expect("rate limit the client's outer link");
    let status = client.wait_ready(SERVER_INNER);
    let session = session_id(&status).expect("an attached session has an id");
    Setup {
        _dir: dir,
        client_ns,
        server_ns,
        server_addr: path.b_addr,
        client_addr: path.a_addr,
        server,
        client,
        session,
    }
}

/// A checksummed inner TCP transfer from the client to the server, running in the background.
struct Transfer {
    sink: TcpSink,
    sender: JoinHandle<Result<std::io::Result<TcpSent>, jvpn_netns::NetnsError>>,
}

impl Transfer {
    fn start(s: &Setup, bytes: u64, seed: u64) -> Self {
        let target = SocketAddr::from((SERVER_INNER, XFER_PORT));
        let deadline = Deadline::after(TRANSFER_BOUND);
        let listener = s
            .server_ns
            .run_in(support::STARTUP, move || TcpListener::bind(target))
            .expect("enter the server namespace")
            .expect("bind the inner receiver");
        let sink = TcpSink::start(listener, deadline).expect("start the receiver");
        let ns = s.client_ns.clone();
        let sender = std::thread::spawn(move || {
            ns.run_in(TRANSFER_BOUND + Duration::from_secs(5), move || {
                let stream = TcpStream::connect_timeout(&target, Duration::from_secs(10))?;
                tcp::send(stream, bytes, seed, deadline)
            })
        });
        Transfer { sink, sender }
    }

    fn running(&self) -> bool {
        !self.sink.is_finished()
    }

    /// Waits for both ends; panics if either failed (a reset inner connection fails at once).
    fn finish(self) -> (TcpSent, TcpReceived) {
        let sent = self
            .sender
            .join()
            .expect("the sender thread does not panic")
            .expect("the sender finishes in time")
            .unwrap_or_else(|e| panic!("the inner TCP sender failed: {e}"));
        let received = self
            .sink
            .finish()
            .unwrap_or_else(|e| panic!("the inner TCP receiver failed: {e}"));
        (sent, received)
    }
}

/// The client's outer UDP address as the server sees it (its status's session `remote`).
fn client_udp_port(s: &Setup) -> u16 {
    let status = s
        .server
        .wait_status(support::ATTACH, "the server to show the session", |st| {
            remote_port(st).is_some()
        });
    remote_port(&status).expect("a remote with a port")
}

fn remote_port(status: &Value) -> Option<u16> {
    let remote = status["sessions"].get(0)?["remote"].as_str()?;
    remote.parse::<SocketAddr>().ok().map(|a| a.port())
}

/// What every scenario checks at the end; returns the figures for the test to print.
fn check_survived(s: &Setup, scenario: &str, injected: u64, transfer: Transfer) -> String {
    let (sent, received) = transfer.finish();
    let running = s.client.process.try_wait().ok().flatten().is_none();
    let status = s.client.status().expect("the client answers its status");
    let client_records = s.client.audit_records();
    let server_records = s.server.audit_records();
    let terminated = |records: &[Value]| {
        records
            .iter()
            .filter(|r| r["session_id"] == s.session.as_str() && r["to"] == "TERMINATED")
            .count()
    };
    let lost = terminated(&client_records) + terminated(&server_records);
    let recoveries = client_records
        .iter()
        .filter(|r| r["to"] == "RECOVERING")
        .count();
    let session = &status["sessions"][0];
    let trail: Vec<String> = client_records
        .iter()
        .map(|r| {
            format!(
                "{}->{} {}",
                r["from"].as_str().unwrap_or("?"),
                r["to"].as_str().unwrap_or("?"),
                r["reason"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let report = format!(
        "S27 {scenario}: client audit trail {trail:?}\nS27 {scenario}: {injected} signals injected; sessions lost {lost}; client running \
         {running}; session {} (same: {}), state {}, {recoveries} transport detach(es); client \
         resets rejected {}, honoured {}; inner transfer {} bytes in {:.1} s, longest stall {} ms, \
         sha256 equal {}",
        session["session_id"],
        session_id(&status).as_deref() == Some(s.session.as_str()),
        session_state(&status).unwrap_or("?"),
        session["resets_rejected"],
        session["resets_honoured"],
        received.bytes,
        received.elapsed.as_secs_f64(),
        received.max_stall.as_millis(),
        received.sha256 == sent.sha256,
    );
    assert!(running, "the client process keeps running\n{report}");
    assert_eq!(lost, 0, "no session is ever TERMINATED\n{report}");
    assert_eq!(
        session_id(&status).as_deref(),
        Some(s.session.as_str()),
        "the same session carries on\n{report}"
    );
    assert_eq!(received.bytes, sent.bytes, "every byte arrived\n{report}");
    assert_eq!(
        received.sha256, sent.sha256,
        "what arrived is what was sent\n{report}"
    );
    assert_eq!(
        session["resets_honoured"].as_u64(),
        Some(0),
        "no reset was honoured (the server never lost the session)\n{report}"
    );
    report
}

/// The Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP destination-unreachable message (`code` 1 host, 3 port) quoting the IPv4 + UDP header
/// of a datagram `from` → `to`, as a router or the server's kernel would send it.
fn icmp_unreachable(code: u8, from: SocketAddrV4, to: SocketAddrV4) -> Vec<u8> {
    let udp_len: u16 = 8 + 120;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&from.ip().octets());
    ip[16..20].copy_from_slice(&to.ip().octets());
    let ip_sum = checksum(&ip);
    ip[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let mut msg = vec![3, code, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&ip);
    msg.extend_from_slice(&from.port().to_be_bytes());
    msg.extend_from_slice(&to.port().to_be_bytes());
    msg.extend_from_slice(&udp_len.to_be_bytes());
    msg.extend_from_slice(&[0, 0]);
    let sum = checksum(&msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    msg
}

/// A raw IPv4 socket of `protocol` created inside `ns` (the kernel writes the IP header, with the
/// namespace's own address as the source).
fn raw_socket(ns: &Namespace, protocol: Protocol) -> Socket {
    ns.run_in(support::STARTUP, move || {
        Socket::new(Domain::IPV4, Type::RAW, Some(protocol))
    })
    .expect("enter the server namespace")
    .expect("a raw socket (root)")
}

/// Sends `make(i)` to `to` for i in 0..count, in batches of 20 every 10 ms, while `keep_going`;
/// returns how many left.
fn inject(
    socket: &Socket,
    to: Ipv4Addr,
    count: u64,
    mut make: impl FnMut(u64) -> Vec<u8>,
    keep_going: impl Fn() -> bool,
) -> u64 {
    let dest = SockAddr::from(SocketAddrV4::new(to, 0));
    let deadline = Deadline::after(Duration::from_secs(60));
    let mut sent = 0;
    for i in 0..count {
        if i % 20 == 0 {
            if !keep_going() || deadline.expired() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if socket.send_to(&make(i), &dest).is_ok() {
            sent += 1;
        }
    }
    sent
}

/// The namespace's count of ICMP destination-unreachable messages received (`/proc/net/snmp`,
/// `Icmp: InDestUnreachs`): proof that the injected errors reached the client's kernel.
fn dest_unreachs_received(ns: &Namespace) -> u64 {
    let out = ns
        .exec_ok("cat", &["/proc/net/snmp"])
        .expect("read /proc/net/snmp");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut icmp = text.lines().filter(|l| l.starts_with("Icmp:"));
    let (Some(names), Some(values)) = (icmp.next(), icmp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "InDestUnreachs")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

/// (a) ICMP port and host unreachable errors quoting the client's UDP 5-tuple, from the server's
/// address: the connected UDP socket reports ECONNREFUSED, which the runtime treats as transient.
#[test]
fn spoofed_icmp_unreachables_never_terminate_a_udp_session() {
    let _serial = serial();
    let Some(tb) = testbed("signals_icmp", &["nft", "tc"]) else {
        return;
    };
    let s = setup(&tb, Over::Udp);
    let client = SocketAddrV4::new(s.client_addr, client_udp_port(&s));
    let server = SocketAddrV4::new(s.server_addr, PORT);
    let socket = raw_socket(&s.server_ns, Protocol::ICMPV4);
    let transfer = Transfer::start(&s, 40 * 1024 * 1024, 11);
    let arrived_before = dest_unreachs_received(&s.client_ns);

    let injected = inject(
        &socket,
        s.client_addr,
        4_000,
        |i| icmp_unreachable(if i % 2 == 0 { 3 } else { 1 }, client, server),
        || transfer.running(),
    );
    let arrived = dest_unreachs_received(&s.client_ns) - arrived_before;

    println!("S27 (a): {arrived} of {injected} ICMP errors reached the client's kernel");
    assert!(
        injected >= 1_000,
        "at least 1000 ICMP errors went out while the transfer ran ({injected})"
    );
    assert!(
        arrived >= injected,
        "every injected ICMP error reached the client ({arrived} of {injected})"
    );
    println!(
        "{}",
        check_survived(&s, "(a) ICMP unreachable", injected, transfer)
    );
}

/// nftables in the server namespace: every TCP segment to the WSS port is answered with a RST (and
/// dropped), counted.
const RST_TABLE: &str = "jvpn_s27";

fn rst_rule(ns: &Namespace, on: bool) {
    let script = if on {
        format!(
            "table inet {RST_TABLE}\ndelete table inet {RST_TABLE}\ntable inet {RST_TABLE} {{\n  \
             chain input {{\n    type filter hook input priority 0; policy accept;\n    \
             tcp dport {PORT} counter reject with tcp reset\n  }}\n}}\n"
        )
    } else {
        format!("table inet {RST_TABLE}\ndelete table inet {RST_TABLE}\n")
    };
    let path = std::env::temp_dir().join(format!("{}-{RST_TABLE}.nft", ns.name()));
    std::fs::write(&path, script).expect("write the nft script");
    ns.exec_ok("nft", &["-f", path.to_str().expect("UTF-8 path")])
        .expect("nft applies the rule");
    let _ = std::fs::remove_file(path);
}

/// RSTs the rule has sent so far (its counter), 0 when the rule is off.
fn rsts_sent(ns: &Namespace) -> u64 {
    let Ok(out) = ns.exec("nft", &["list", "table", "inet", RST_TABLE]) else {
        return 0;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// (b) Bursts of TCP RSTs on the WSS connection: the link drops and reconnects, the session
/// reattaches on the new connection; it is never TERMINATED.
#[test]
fn tcp_resets_on_the_wss_connection_never_terminate_the_session() {
    const BURSTS: u32 = 3;
    const BURST: Duration = Duration::from_millis(1500);
    let _serial = serial();
    let Some(tb) = testbed("signals_rst", &["nft", "tc"]) else {
        return;
    };
    let s = setup(&tb, Over::Wss);
    let transfer = Transfer::start(&s, 60 * 1024 * 1024, 12);
    let mut rsts = 0;

    for _ in 0..BURSTS {
        if !transfer.running() {
            break;
        }
        rst_rule(&s.server_ns, true);
        std::thread::sleep(BURST);
        rsts += rsts_sent(&s.server_ns);
        rst_rule(&s.server_ns, false);
        s.client.wait_status(
            Duration::from_secs(60),
            "the session to be bound again after the RSTs",
            |st| {
                matches!(
                    session_state(st),
                    Some("ATTACHED" | "VOLATILE" | "DEGRADED")
                )
            },
        );
        wait_for(
            Duration::from_secs(30),
            support::POLL,
            "the transfer to move on",
            || {
                let at = transfer.sink.received();
                std::thread::sleep(Duration::from_millis(500));
                (transfer.sink.received() > at || !transfer.running()).then_some(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    assert!(rsts > 0, "the rule sent RSTs while the transfer ran");
    println!(
        "{}",
        check_survived(&s, "(b) TCP RST on WSS", rsts, transfer)
    );
}

/// A fake reset: the DATA header, random bytes, a random token last; 32 to 200 bytes.
fn fake_reset(rng: &mut StdRng) -> Vec<u8> {
    let mut token = [0u8; 16];
    rng.fill_bytes(&mut token);
    let trigger = rng.random_range(jvpn_wire::RESET_MIN_LEN + 1..=201);
    let mut reset = vec![0u8; jvpn_wire::RESET_MAX_LEN.max(trigger)];
    let len = jvpn_wire::write_reset(
        &jvpn_wire::ResetToken::from_bytes(token),
        trigger,
        rng,
        &mut reset,
    )
    .expect("the trigger is long enough");
    reset.truncate(len);
    reset
}

/// (c) Thousands of fake stateless resets (right shape, wrong tokens) from the server's UDP address
/// and port to the client's UDP socket: every one is dropped and counted; none is honoured.
#[test]
fn fake_stateless_resets_are_all_rejected_and_never_terminate_the_session() {
    const RESETS: u64 = 10_000;
    let _serial = serial();
    let Some(tb) = testbed("signals_reset", &["nft", "tc"]) else {
        return;
    };
    let s = setup(&tb, Over::Udp);
    let client_port = client_udp_port(&s);
    let socket = raw_socket(&s.server_ns, Protocol::UDP);
    let transfer = Transfer::start(&s, 64 * 1024 * 1024, 13);
    let mut rng = StdRng::seed_from_u64(27);

    let injected = inject(
        &socket,
        s.client_addr,
        RESETS,
        |_| {
            let reset = fake_reset(&mut rng);
            let mut datagram = Vec::with_capacity(8 + reset.len());
            datagram.extend_from_slice(&PORT.to_be_bytes());
            datagram.extend_from_slice(&client_port.to_be_bytes());
            datagram.extend_from_slice(&u16::try_from(8 + reset.len()).unwrap_or(0).to_be_bytes());
            datagram.extend_from_slice(&[0, 0]);
            datagram.extend_from_slice(&reset);
            datagram
        },
        || true,
    );
    let status = s.client.status().expect("client status");
    let rejected = status["sessions"][0]["resets_rejected"]
        .as_u64()
        .unwrap_or(0);
    let during = transfer.running();

    assert_eq!(injected, RESETS, "every fake reset went out");
    assert!(
        during,
        "the transfer was still running when the injection ended"
    );
    assert!(
        rejected * 10 >= injected * 9,
        "the client saw and rejected (nearly) every fake reset: {rejected} of {injected}"
    );
    println!(
        "{}",
        check_survived(&s, "(c) fake stateless resets", injected, transfer)
    );
}
