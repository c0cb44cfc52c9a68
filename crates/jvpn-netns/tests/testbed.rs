//! Real namespace tests: they need root and create namespaces, veths and nftables rules. Without the
//! capability each prints `skipping: <reason>` and passes (unless `JVPN_NETNS_REQUIRE=1`).

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use jvpn_netns::{
    Block, LinkOptions, Namespace, NetnsError, Testbed, list_namespaces, testbed_or_skip,
};

const STEP: Duration = Duration::from_secs(5);

fn testbed(name: &str, tools: &[&str]) -> Option<Testbed> {
    testbed_or_skip(name, tools).expect("namespace tests are required but unavailable")
}

fn client_and_server(tb: &Testbed) -> (Namespace, Namespace) {
    (
        tb.add_namespace("client").unwrap(),
        tb.add_namespace("server").unwrap(),
    )
}

/// Sends up to five datagrams from `from` to `to_addr:port` (a socket bound in `to`); true as soon as
/// one arrives. Each attempt waits at most 200 ms, so a blocked path costs at most one second.
fn udp_gets_through(from: &Namespace, to: &Namespace, to_addr: Ipv4Addr, port: u16) -> bool {
    let receiver = to
        .run_in(STEP, move || UdpSocket::bind((to_addr, port)))
        .unwrap()
        .unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let sender = from
        .run_in(STEP, || UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))
        .unwrap()
        .unwrap();
    let mut buf = [0u8; 16];
    (0..5).any(|_| {
        sender.send_to(b"jvpn", (to_addr, port)).unwrap();
        matches!(receiver.recv_from(&mut buf), Ok((4, _)))
    })
}

fn exists(namespace: &str) -> bool {
    list_namespaces().unwrap().iter().any(|n| n == namespace)
}

#[test]
fn two_namespaces_joined_by_two_paths_ping_each_other_over_both() {
    let Some(tb) = testbed("two_paths_ping", &["ping"]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);

    let first = tb.link(&client, &server).unwrap();
    let second = tb.link(&client, &server).unwrap();

    assert_ne!(first.subnet, second.subnet);
    for path in [&first, &second] {
        assert!(client.ping(path.b_addr.into()).unwrap(), "{path:?}");
        assert!(server.ping(path.a_addr.into()).unwrap(), "{path:?}");
    }
    tb.cleanup().unwrap();
}

#[test]
fn a_path_on_a_chosen_subnet_uses_that_subnet_and_a_short_device_name() {
    let Some(tb) = testbed("chosen_subnet", &[]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);

    let path = tb
        .link_with(&client, &server, LinkOptions::new().subnet(254).mtu(1400))
        .unwrap();

    assert_eq!(path.a_addr, Ipv4Addr::new(10, 201, 254, 1));
    assert_eq!(path.b_addr, Ipv4Addr::new(10, 201, 254, 2));
    assert!(path.a_dev.len() <= 15 && path.b_dev.len() <= 15);
    let shown = client.ip(&["link", "show", &path.a_dev]).unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("mtu 1400"));
    let reused = tb.link_with(&client, &server, LinkOptions::new().subnet(254));
    assert!(matches!(reused, Err(NetnsError::Invalid(_))));
}

#[test]
fn paths_have_offloads_off_when_ethtool_is_present() {
    let Some(tb) = testbed("offloads_off", &["ethtool"]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);

    let path = tb.link(&client, &server).unwrap();

    assert!(path.offloads_disabled);
    let features = client.exec_ok("ethtool", &["-k", &path.a_dev]).unwrap();
    let text = String::from_utf8_lossy(&features.stdout);
    assert!(text.contains("tcp-segmentation-offload: off"), "{text}");
}

#[test]
fn block_udp_drops_a_datagram_while_icmp_still_passes() {
    let Some(tb) = testbed("block_udp", &["nft", "ping"]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);
    let path = tb.link(&client, &server).unwrap();
    assert!(udp_gets_through(&client, &server, path.b_addr, 40001));

    server.block_udp().unwrap();

    assert!(!udp_gets_through(&client, &server, path.b_addr, 40002));
    assert!(client.ping(path.b_addr.into()).unwrap());
    server.unblock().unwrap();
    assert!(udp_gets_through(&client, &server, path.b_addr, 40003));
}

#[test]
fn udp_except_one_port_lets_only_that_port_through() {
    let Some(tb) = testbed("udp_except_port", &["nft"]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);
    let path = tb.link(&client, &server).unwrap();

    server.block_udp_except_port(4433).unwrap();

    assert!(udp_gets_through(&client, &server, path.b_addr, 4433));
    assert!(!udp_gets_through(&client, &server, path.b_addr, 51820));
}

#[test]
fn all_except_a_tcp_port_also_drops_icmp() {
    let Some(tb) = testbed("all_except_tcp", &["nft", "ping"]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);
    let path = tb.link(&client, &server).unwrap();

    server.block_all_except_tcp_port(443).unwrap();

    assert!(!client.ping(path.b_addr.into()).unwrap());
    assert!(!udp_gets_through(&client, &server, path.b_addr, 443));
}

#[test]
fn total_random_loss_drops_pings_until_unblocked() {
    let Some(tb) = testbed("random_loss", &["nft", "ping"]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);
    let path = tb.link(&client, &server).unwrap();

    server.random_loss(100).unwrap();
    let lost = !client.ping(path.b_addr.into()).unwrap();
    server.unblock().unwrap();

    assert!(lost);
    assert!(client.ping(path.b_addr.into()).unwrap());
    assert!(matches!(
        server.random_loss(101),
        Err(NetnsError::Invalid(_))
    ));
}

#[test]
fn partial_random_loss_is_accepted_by_nft_as_a_numgen_rule() {
    let Some(tb) = testbed("partial_loss", &["nft"]) else {
        return;
    };
    let server = tb.add_namespace("server").unwrap();

    server.random_loss(30).unwrap();

    let table = server
        .exec_ok("nft", &["list", "table", "inet", jvpn_netns::TABLE])
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("numgen random mod 100 < 30"), "{text}");
}

#[test]
fn block_everywhere_applies_to_every_namespace() {
    let Some(tb) = testbed("block_everywhere", &["nft"]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);
    let path = tb.link(&client, &server).unwrap();

    tb.block_everywhere(Block::Udp).unwrap();

    assert!(!udp_gets_through(&client, &server, path.b_addr, 5000));
    assert!(!udp_gets_through(&server, &client, path.a_addr, 5001));
    tb.unblock_everywhere().unwrap();
    assert!(udp_gets_through(&server, &client, path.a_addr, 5002));
}

#[test]
fn rate_limit_installs_a_token_bucket_on_the_device() {
    let Some(tb) = testbed("rate_limit", &["tc"]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);
    let path = tb.link(&client, &server).unwrap();

    client.rate_limit(&path.a_dev, 50).unwrap();

    let qdisc = client
        .exec_ok("tc", &["qdisc", "show", "dev", &path.a_dev])
        .unwrap();
    let text = String::from_utf8_lossy(&qdisc.stdout);
    assert!(text.contains("tbf") && text.contains("50Mbit"), "{text}");
    client.clear_rate_limit(&path.a_dev).unwrap();
}

#[test]
fn removing_a_path_cuts_it_and_leaves_the_other_working() {
    let Some(tb) = testbed("remove_path", &["ping"]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);
    let first = tb.link(&client, &server).unwrap();
    let second = tb.link(&client, &server).unwrap();

    tb.remove_path(&first).unwrap();

    assert!(!client.ping(first.b_addr.into()).unwrap());
    assert!(client.ping(second.b_addr.into()).unwrap());
    let links = client.ip(&["-o", "link", "show"]).unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&first.a_dev));
}

#[test]
fn a_path_set_down_stops_carrying_traffic_until_set_up() {
    let Some(tb) = testbed("set_down_up", &["ping"]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);
    let path = tb.link(&client, &server).unwrap();

    tb.set_down(&path).unwrap();
    let while_down = client.ping(path.b_addr.into()).unwrap();
    tb.set_up(&path).unwrap();

    assert!(!while_down);
    assert!(client.ping(path.b_addr.into()).unwrap());
}

#[test]
fn dropping_a_testbed_deletes_its_namespaces() {
    let Some(tb) = testbed("drop_cleans", &[]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);
    tb.link(&client, &server).unwrap();
    let names = [client.name().to_owned(), server.name().to_owned()];
    assert!(names.iter().all(|n| exists(n)));

    drop(tb);

    assert!(names.iter().all(|n| !exists(n)), "{names:?}");
}

#[test]
fn a_panicking_test_body_still_cleans_up() {
    if testbed("panic_probe", &[]).is_none() {
        return;
    }
    let mut created = Vec::new();

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let tb = Testbed::new("panicking_body").unwrap();
        let ns = tb.add_namespace("doomed").unwrap();
        created.push(ns.name().to_owned());
        ns.spawn("sleep", &["60"]).unwrap();
        panic!("the test body fails");
    }));

    assert!(outcome.is_err());
    assert_eq!(created.len(), 1);
    assert!(!exists(&created[0]));
}

#[test]
fn cleanup_ends_spawned_processes_and_their_children() {
    let Some(tb) = testbed("ends_processes", &[]) else {
        return;
    };
    let ns = tb.add_namespace("host").unwrap();
    // A shell that ignores SIGTERM and forks a child: only the SIGKILL to the group ends both.
    let shell = ns
        .spawn("sh", &["-c", "trap '' TERM; sleep 60 & echo $!; wait"])
        .unwrap();
    let grandchild: u32 =
        jvpn_netns::wait_for(STEP, Duration::from_millis(10), "child pid", || {
            shell.stdout_text().trim().parse().ok()
        })
        .unwrap();
    tb.set_kill_grace(Duration::from_millis(200));

    tb.cleanup().unwrap();

    assert!(shell.try_wait().unwrap().is_some());
    // The grandchild is not ours to reap; it was killed, so it is gone or a zombie of init.
    let status = std::fs::read_to_string(format!("/proc/{grandchild}/status")).unwrap_or_default();
    let alive = status
        .lines()
        .any(|l| l.starts_with("State:") && !l.contains("zombie"))
        && status.contains("sleep");
    assert!(!alive, "{status}");
}

#[test]
fn spawned_output_is_readable_and_env_is_passed() {
    let Some(tb) = testbed("spawn_env", &[]) else {
        return;
    };
    let ns = tb.add_namespace("host").unwrap();

    let p = ns
        .spawn_with_env(
            "sh",
            &["-c", "echo \"$JVPN_X\"; echo oops >&2"],
            &[("JVPN_X", "hello")],
        )
        .unwrap();
    let status = p.wait_timeout(STEP).unwrap();

    assert!(status.success());
    assert_eq!(p.stdout_text(), "hello\n");
    assert_eq!(p.stderr_text(), "oops\n");
}

#[test]
fn exec_kills_a_command_that_outlives_its_bound() {
    let Some(tb) = testbed("exec_timeout", &[]) else {
        return;
    };
    let ns = tb.add_namespace("host").unwrap();

    let result = ns.exec_timeout("sleep", &["30"], Duration::from_millis(200));

    assert!(matches!(result, Err(NetnsError::CommandTimedOut { .. })));
}

#[test]
fn a_failing_setup_command_reports_its_command_line_and_stderr() {
    let Some(tb) = testbed("failing_command", &[]) else {
        return;
    };
    let ns = tb.add_namespace("host").unwrap();

    let err = ns.ip(&["link", "set", "jvpn-nodev", "up"]).unwrap_err();

    let text = err.to_string();
    assert!(
        text.contains(ns.name()) && text.contains("jvpn-nodev"),
        "{text}"
    );
    assert!(matches!(err, NetnsError::CommandFailed { ref stderr, .. } if !stderr.is_empty()));
}

#[test]
fn code_run_in_a_namespace_sees_that_namespace_only() {
    let Some(tb) = testbed("run_in", &[]) else {
        return;
    };
    let (client, server) = client_and_server(&tb);
    let path = tb.link(&client, &server).unwrap();
    let addr = path.a_addr;

    let inside = client.run_in(STEP, move || UdpSocket::bind((addr, 0)).is_ok());
    let in_server = server.run_in(STEP, move || UdpSocket::bind((addr, 0)).is_ok());

    assert!(inside.unwrap());
    assert!(!in_server.unwrap());
}

#[test]
fn parallel_testbeds_get_distinct_names() {
    if testbed("parallel_probe", &[]).is_none() {
        return;
    }

    let handles: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let tb = Testbed::new("same_name").unwrap();
                let (client, server) = client_and_server(&tb);
                tb.link(&client, &server).unwrap();
                let names = (client.name().to_owned(), server.name().to_owned());
                (tb, names)
            })
        })
        .collect();
    let built: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    let mut all: Vec<&str> = built
        .iter()
        .flat_map(|(_, (c, s))| [c.as_str(), s.as_str()])
        .collect();
    assert!(all.iter().all(|n| exists(n)));
    let count = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), count);
    assert!(
        all.iter()
            .all(|n| n.contains(&std::process::id().to_string()))
    );
}

#[test]
fn stale_namespace_removal_leaves_live_testbeds_alone() {
    let Some(tb) = testbed("stale_sweep", &[]) else {
        return;
    };
    let ns = tb.add_namespace("host").unwrap();

    let removed = jvpn_netns::remove_stale_namespaces().unwrap();

    assert!(!removed.iter().any(|n| n == ns.name()));
    assert!(exists(ns.name()));
}
