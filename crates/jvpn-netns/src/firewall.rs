//! nftables rules and tc shaping scoped to one namespace. Each namespace gets at most one table of
//! ours, `table inet jvpn_test`; applying a block replaces it atomically (one `nft -f -` transaction),
//! so blocks do not stack: the last one applied is the one in force.
//!
//! Rules sit in a `prerouting` chain at raw priority: a packet dropped there was sent by its peer and
//! is lost on the way, exactly like a middlebox drop (the sender sees no local error). Loopback
//! traffic is never touched, so local control sockets and proxies inside the namespace keep working.
//! Only packets on Ethernet-type links (the veth paths: the "outer" network) are filtered: packets
//! of TUN devices (`ARPHRD_NONE`, the tunnel's inner traffic) pass, so a test can block the outer
//! UDP a VPN runs on while measuring an inner UDP stream through it.
//! [`Direction::InboundAndOutbound`] adds the same rules to an `output` chain; a sender dropped there
//! gets `EPERM` from `send`, which is *not* what a real network does, so prefer blocking inbound on
//! both ends.

/// The name of the nftables table this crate creates (family `inet`).
pub const TABLE: &str = "jvpn_test";

/// What to drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Block {
    /// Every UDP datagram (IPv4 and IPv6).
    Udp,
    /// Every UDP datagram except those to or from `port` (e.g. leave QUIC through).
    UdpExceptPort(u16),
    /// Everything except TCP to or from `port` (e.g. only 443 reaches the server); IPv6 neighbour
    /// discovery still passes so that TCP over IPv6 keeps working.
    AllExceptTcpPort(u16),
    /// Each packet independently with probability `percent`/100 (`numgen random mod 100 < percent`).
    /// Turn veth offloads off on the path (the default of [`crate::LinkOptions`]) or the loss hits
    /// 64 KB bursts instead of wire packets.
    RandomLoss {
        /// 0..=100.
        percent: u8,
    },
}

/// Which packets of the namespace the rules apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Direction {
    /// Packets arriving in the namespace (prerouting): looks like a middlebox drop.
    Inbound,
    /// Packets arriving and packets the namespace sends (output); local senders see `EPERM`.
    InboundAndOutbound,
}

/// The body of one chain for `block`, each statement on its own line.
fn rules(block: Block, hook_is_output: bool) -> Vec<String> {
    let (lo, link_type) = if hook_is_output {
        ("oifname", "oiftype")
    } else {
        ("iifname", "iiftype")
    };
    let mut out = vec![
        format!("{lo} \"lo\" accept"),
        // TUN devices carry inner traffic, which a middlebox on the outer path never sees.
        format!("meta {link_type} != ether accept"),
    ];
    match block {
        Block::Udp => out.push("meta l4proto udp drop".into()),
        Block::UdpExceptPort(port) => {
            out.push(format!("udp dport {port} accept"));
            out.push(format!("udp sport {port} accept"));
            out.push("meta l4proto udp drop".into());
        }
        Block::AllExceptTcpPort(port) => {
            out.push(format!("tcp dport {port} accept"));
            out.push(format!("tcp sport {port} accept"));
            out.push("icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept".into());
            out.push("drop".into());
        }
        // nft rejects `< 100` (the value must be in 0..=99): 100% is a plain drop, 0% no rule.
        Block::RandomLoss { percent: 0 } => {}
        Block::RandomLoss { percent } if percent >= 100 => out.push("drop".into()),
        Block::RandomLoss { percent } => {
            out.push(format!("numgen random mod 100 < {percent} drop"));
        }
    }
    out
}

/// The complete `nft -f` script that replaces our table with one enforcing `block`.
pub(crate) fn script(block: Block, direction: Direction) -> String {
    let mut chains = vec![chain("prerouting", "prerouting", rules(block, false))];
    if direction == Direction::InboundAndOutbound {
        chains.push(chain("output", "output", rules(block, true)));
    }
    // Declaring the table first makes the delete valid even when it does not exist yet; the whole
    // script is one transaction, so there is no moment without rules.
    format!(
        "table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n{}}}\n",
        chains.concat()
    )
}

/// The script that removes our table (valid whether or not it exists).
pub(crate) fn unblock_script() -> String {
    format!("table inet {TABLE}\ndelete table inet {TABLE}\n")
}

fn chain(name: &str, hook: &str, rules: Vec<String>) -> String {
    let body: String = rules.iter().map(|r| format!("    {r}\n")).collect();
    format!(
        "  chain {name} {{\n    type filter hook {hook} priority raw; policy accept;\n{body}  }}\n"
    )
}

/// Validates a block's parameters.
pub(crate) fn validate(block: Block) -> Result<(), String> {
    match block {
        Block::RandomLoss { percent } if percent > 100 => {
            Err(format!("loss of {percent}% is above 100%"))
        }
        _ => Ok(()),
    }
}

/// `tc` arguments for a token-bucket rate limit of `mbit` Mbit/s on `dev` (root qdisc, replaced).
/// The bucket holds 10 ms of traffic but at least 64 KiB, so a full-size packet always fits.
pub(crate) fn tbf_args(dev: &str, mbit: u32) -> Vec<String> {
    let bytes_per_sec = u64::from(mbit) * 1_000_000 / 8;
    let burst = (bytes_per_sec / 100).max(64 * 1024);
    ["qdisc", "replace", "dev", dev, "root", "tbf", "rate"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([
            format!("{mbit}mbit"),
            "burst".into(),
            burst.to_string(),
            "latency".into(),
            "50ms".into(),
        ])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_block_drops_udp_in_prerouting_only() {
        let text = script(Block::Udp, Direction::Inbound);
        assert!(text.contains("hook prerouting priority raw"));
        assert!(text.contains("meta l4proto udp drop"));
        assert!(!text.contains("hook output"));
    }

    #[test]
    fn rules_spare_inner_traffic_of_tun_devices_in_both_chains() {
        let text = script(Block::Udp, Direction::InboundAndOutbound);
        let spare = text.find("meta iiftype != ether accept").unwrap();
        assert!(spare < text.find("meta l4proto udp drop").unwrap());
        assert!(text.contains("meta oiftype != ether accept"));
    }

    #[test]
    fn udp_except_port_lets_both_directions_of_that_port_through() {
        let text = script(Block::UdpExceptPort(4433), Direction::Inbound);
        let accept_dport = text.find("udp dport 4433 accept").unwrap();
        let accept_sport = text.find("udp sport 4433 accept").unwrap();
        let drop = text.find("meta l4proto udp drop").unwrap();
        assert!(accept_dport < drop && accept_sport < drop);
    }

    #[test]
    fn outbound_direction_adds_an_output_chain_that_spares_loopback() {
        let text = script(Block::AllExceptTcpPort(443), Direction::InboundAndOutbound);
        assert!(text.contains("hook output"));
        assert!(text.contains("oifname \"lo\" accept"));
    }

    #[test]
    fn loss_above_one_hundred_percent_is_rejected() {
        assert!(validate(Block::RandomLoss { percent: 101 }).is_err());
        assert!(validate(Block::RandomLoss { percent: 100 }).is_ok());
    }

    #[test]
    fn total_loss_is_a_plain_drop_because_nft_rejects_less_than_100() {
        let text = script(Block::RandomLoss { percent: 100 }, Direction::Inbound);
        assert!(!text.contains("numgen"));
        assert!(text.contains("    drop\n"));
        let partial = script(Block::RandomLoss { percent: 10 }, Direction::Inbound);
        assert!(partial.contains("numgen random mod 100 < 10 drop"));
    }

    #[test]
    fn tbf_burst_is_at_least_64_kib() {
        let args = tbf_args("eth0", 1);
        let burst = args.iter().position(|a| a == "burst").unwrap();
        assert_eq!(args[burst + 1], "65536");
        assert!(args.contains(&"1mbit".to_owned()));
    }
}
