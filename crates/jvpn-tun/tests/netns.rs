//! Root-only: a real TUN device inside a throwaway network namespace.
//!
//! The outer run (plain `cargo test`) creates a namespace `jvpntun-<pid>-<n>`, re-runs this very
//! test binary inside it with `ip netns exec` (marked by `JVPN_TUN_INNER`), and deletes the
//! namespace afterwards whatever happens (a drop guard). Without root or `ip netns` it prints
//! "skipping: …" and passes. Nothing touches the host's own namespace, and all traffic stays in
//! the namespace (it is routed into the TUN device, which this test reads).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jvpn_tun::{Tun, TunConfig, TunError, capability_check, packet_destination, packet_source};

/// Set in the child that runs inside the namespace.
const INNER_ENV: &str = "JVPN_TUN_INNER";
/// How long the child may run before it is killed: 600 polls of 100 ms.
const CHILD_POLLS: u32 = 600;
/// Bound on every wait for a packet or a socket inside the namespace.
const WAIT: Duration = Duration::from_secs(5);

static NEXT_NAMESPACE: AtomicUsize = AtomicUsize::new(0);

/// Deletes the namespace when dropped, even if the test panicked.
struct Namespace {
    name: String,
}

impl Namespace {
    fn create() -> Result<Self, String> {
        let n = NEXT_NAMESPACE.fetch_add(1, Ordering::Relaxed);
        let name = format!("jvpntun-{}-{n}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map_err(|e| format!("ip netns add: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ip netns add {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self { name })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Why the namespace tests cannot run here, if they cannot.
fn missing_prerequisite() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned));
    if euid.as_deref() != Some("0") {
        return Some("not running as root".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run `ip`: {e}")),
    }
}

/// Runs the named test of this binary inside a fresh namespace; panics with its output if it
/// fails or overruns.
#[expect(
    clippy::print_stdout,
    reason = "a skipped test must say why on the test output"
)]
fn run_inside_namespace(test_name: &str) {
    if let Some(why) = missing_prerequisite() {
        println!("skipping: needs root and ip netns ({why})");
        return;
    }
    let namespace = Namespace::create().expect("create the test namespace");
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &namespace.name])
        .arg(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(INNER_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the test inside the namespace");

    let mut finished = None;
    for _ in 0..CHILD_POLLS {
        if let Some(status) = child.try_wait().expect("poll the child") {
            finished = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if finished.is_none() {
        let _ = child.kill();
    }
    let output = child
        .wait_with_output()
        .expect("collect the child's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        finished.is_some(),
        "the test inside the namespace did not finish in time\n{stdout}\n{stderr}"
    );
    assert!(
        output.status.success(),
        "the test inside the namespace failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // The inner run must really have run the test, not filtered it away.
    assert!(
        stdout.contains("1 passed"),
        "the inner run did not run {test_name}:\n{stdout}"
    );
    drop(namespace);
}

fn in_namespace() -> bool {
    std::env::var_os(INNER_ENV).is_some()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn ip_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new("ip")
        .arg("-j")
        .args(args)
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ip -j prints JSON")
}

fn test_config() -> TunConfig {
    TunConfig {
        name: Some("jvpntest%d".into()),
        addresses: vec![
            "10.201.1.1/24".parse().unwrap(),
            "fd00:201::1/64".parse().unwrap(),
        ],
        mtu: 1400,
        routes: vec![
            "10.201.2.0/24".parse().unwrap(),
            "fd00:202::/64".parse().unwrap(),
            // Same as the first address's subnet: must be skipped, not fail with EEXIST.
            "10.201.1.0/24".parse().unwrap(),
        ],
    }
}

/// Reads packets from `tun` until one goes to `destination` (the kernel may send others first,
/// e.g. IPv6 router solicitations); every wait is bounded.
async fn recv_packet_to(tun: &Tun, buf: &mut [u8], destination: IpAddr) -> usize {
    for _ in 0..20 {
        let len = tokio::time::timeout(WAIT, tun.recv(buf))
            .await
            .expect("a packet arrives on the TUN in time")
            .expect("recv from the TUN");
        if packet_destination(&buf[..len]) == Some(destination) {
            return len;
        }
    }
    panic!("no packet to {destination} among the first 20 read from the TUN");
}

/// An IPv4/UDP packet with a correct header checksum and no UDP checksum (allowed for IPv4).
fn udp_ipv4_packet(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        panic!("IPv4 only");
    };
    let total = 20 + 8 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&u16::try_from(total).unwrap().to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&s.octets());
    p[16..20].copy_from_slice(&d.octets());
    let sum = p[..20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let checksum = !u16::try_from((folded & 0xffff) + (folded >> 16)).unwrap();
    p[10..12].copy_from_slice(&checksum.to_be_bytes());
    p[20..22].copy_from_slice(&src.port().to_be_bytes());
    p[22..24].copy_from_slice(&dst.port().to_be_bytes());
    p[24..26].copy_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
    p[28..].copy_from_slice(payload);
    p
}

#[test]
fn tun_in_a_namespace_is_configured_and_carries_packets_both_ways() {
    if !in_namespace() {
        run_inside_namespace("tun_in_a_namespace_is_configured_and_carries_packets_both_ways");
        return;
    }
    runtime().block_on(async {
        capability_check().expect("TUN is usable inside the namespace");
        let tun = Tun::create(&test_config()).expect("create the TUN device");
        let name = tun.name().to_owned();
        assert!(name.starts_with("jvpntest"), "kernel-picked name {name}");
        assert_eq!(tun.mtu(), 1400);

        // The device exists, is up, has the MTU and both addresses.
        let links = ip_json(&["addr", "show", "dev", &name]);
        let link = &links[0];
        assert_eq!(link["mtu"], 1400);
        assert!(link["flags"].as_array().unwrap().contains(&"UP".into()));
        let addrs: Vec<String> = link["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect();
        assert!(addrs.contains(&"10.201.1.1/24".to_owned()), "{addrs:?}");
        assert!(addrs.contains(&"fd00:201::1/64".to_owned()), "{addrs:?}");

        // The allowed-IPs routes point into it.
        let routes4 = ip_json(&["route", "show", "dev", &name]);
        assert!(
            routes4
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["dst"] == "10.201.2.0/24"),
            "{routes4}"
        );
        let routes6 = ip_json(&["-6", "route", "show", "dev", &name]);
        assert!(
            routes6
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["dst"] == "fd00:202::/64"),
            "{routes6}"
        );

        // Outbound: a datagram to a routed address comes out of `recv`, with the right addresses.
        let mut buf = vec![0u8; usize::from(tun.mtu())];
        let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await.unwrap();
        socket
            .send_to(b"to the tunnel", "10.201.2.7:9")
            .await
            .unwrap();
        let peer4: IpAddr = "10.201.2.7".parse().unwrap();
        let len = recv_packet_to(&tun, &mut buf, peer4).await;
        assert_eq!(
            packet_source(&buf[..len]),
            Some("10.201.1.1".parse().unwrap())
        );
        assert!(buf[..len].ends_with(b"to the tunnel"));

        let socket6 = tokio::net::UdpSocket::bind("[::]:0").await.unwrap();
        socket6.send_to(b"v6", "[fd00:202::7]:9").await.unwrap();
        let peer6: IpAddr = "fd00:202::7".parse().unwrap();
        let len = recv_packet_to(&tun, &mut buf, peer6).await;
        assert_eq!(
            packet_source(&buf[..len]),
            Some("fd00:201::1".parse().unwrap())
        );

        // Inbound: a packet written with `send` reaches a local socket.
        let listener = tokio::net::UdpSocket::bind("10.201.1.1:0").await.unwrap();
        let to = listener.local_addr().unwrap();
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 201, 2, 7)), 5000);
        tun.send(&udp_ipv4_packet(from, to, b"from the tunnel"))
            .await
            .expect("send into the TUN");
        let mut got = [0u8; 64];
        let (n, sender) = tokio::time::timeout(WAIT, listener.recv_from(&mut got))
            .await
            .expect("the injected packet is delivered in time")
            .unwrap();
        assert_eq!(&got[..n], b"from the tunnel");
        assert_eq!(sender, from);

        // A second device may not take the same name.
        let clash = TunConfig {
            name: Some(name.clone()),
            ..test_config()
        };
        let err = Tun::create(&clash).expect_err("the name is taken");
        assert!(matches!(err, TunError::NameInUse { .. }), "{err}");

        // Dropping the Tun removes the device and its routes.
        drop(tun);
        let gone = Command::new("ip")
            .args(["link", "show", "dev", &name])
            .output()
            .unwrap();
        assert!(!gone.status.success(), "{name} still exists after drop");
    });
}

#[test]
fn a_route_that_already_exists_is_reported_not_replaced() {
    if !in_namespace() {
        run_inside_namespace("a_route_that_already_exists_is_reported_not_replaced");
        return;
    }
    runtime().block_on(async {
        let first = Tun::create(&TunConfig {
            name: Some("jvpnfirst".into()),
            addresses: vec!["10.201.5.1/32".parse().unwrap()],
            mtu: 1400,
            routes: vec!["10.201.9.0/24".parse().unwrap()],
        })
        .expect("first TUN");

        let err = Tun::create(&TunConfig {
            name: Some("jvpnsecond".into()),
            addresses: vec!["10.201.6.1/32".parse().unwrap()],
            mtu: 1400,
            routes: vec!["10.201.9.0/24".parse().unwrap()],
        })
        .expect_err("the prefix is already routed into the first TUN");

        assert!(matches!(err, TunError::Route { .. }), "{err}");
        assert!(
            err.to_string().contains("ip route show 10.201.9.0/24"),
            "{err}"
        );
        // The failed device was removed again, and the first one's route is untouched.
        let second = Command::new("ip")
            .args(["link", "show", "dev", "jvpnsecond"])
            .output()
            .unwrap();
        assert!(!second.status.success(), "jvpnsecond was left behind");
        let routes = ip_json(&["route", "show", "10.201.9.0/24"]);
        assert_eq!(routes[0]["dev"], "jvpnfirst", "{routes}");
        drop(first);
    });
}
