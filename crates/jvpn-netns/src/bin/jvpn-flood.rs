//! `jvpn-flood`: a spoofed-source HANDSHAKE_INIT flood or a replay burst through a raw socket, for
//! the DoS scenarios run by hand inside an attacker namespace (root).
//!
//! ```text
//! # fresh INITs with a valid MAC1 from random addresses of 10.50.0.0/16, 20 000 per second, 10 s
//! ip netns exec ATTACKER jvpn-flood spoofed --to 10.201.2.2:51820 --server-key B64 \
//!     --spoof 10.50.0.0/16 --rate 20000 --secs 10
//! # one captured datagram (hex) replayed from 10.50.9.9:40000 as fast as possible for 5 s
//! ip netns exec ATTACKER jvpn-flood replay --to 10.201.2.2:51820 --hex 0101... \
//!     --from 10.50.9.9:40000 --secs 5
//! ```
//!
//! Prints one JSON line: `{"packets":…,"ip_bytes":…,"send_errors":…,"secs":…,"pps":…}`. Exit 2 on a
//! usage error, 1 if the raw socket cannot be made.

use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use jvpn::wire::PublicKey;
use jvpn_netns::args::ToolArgs;
use jvpn_netns::flood::{self, FloodConfig, FloodMode};

const USAGE: &str = "usage:\n  jvpn-flood spoofed --to ADDR:PORT --server-key B64 --spoof NET/LEN \
                     [--rate PPS] [--secs N] [--seed S]\n  \
                     jvpn-flood replay --to ADDR:PORT --hex DATAGRAM --from ADDR:PORT [--rate PPS] [--secs N]";

fn parse(args: &[String]) -> Result<FloodConfig, String> {
    let args = ToolArgs::parse(args)?;
    let mode = match args.command {
        "spoofed" => {
            let server_key: PublicKey = args.parsed("--server-key")?;
            let (net, len) = args
                .get("--spoof")?
                .split_once('/')
                .ok_or("--spoof takes NET/LEN")?;
            FloodMode::Spoofed {
                server_key,
                network: net
                    .parse::<Ipv4Addr>()
                    .map_err(|e| format!("--spoof: {e}"))?,
                prefix_len: len.parse().map_err(|e| format!("--spoof: {e}"))?,
            }
        }
        "replay" => {
            let hex = args.get("--hex")?;
            let datagram = (0..hex.len())
                .step_by(2)
                .map(|i| {
                    hex.get(i..i + 2)
                        .and_then(|b| u8::from_str_radix(b, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .ok_or("--hex: not hex")?;
            FloodMode::Replay {
                datagram,
                source: args.parsed::<SocketAddrV4>("--from")?,
            }
        }
        other => return Err(format!("unknown command {other}")),
    };
    Ok(FloodConfig {
        mode,
        target: args.parsed::<SocketAddrV4>("--to")?,
        rate: u32::try_from(args.number("--rate", Some(0))?).map_err(|e| format!("--rate: {e}"))?,
        duration: Duration::from_secs(args.number("--secs", Some(10))?),
        seed: args.number("--seed", Some(1))?,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse(&args) {
        Ok(config) => config,
        Err(e) => {
            let _ = writeln!(io::stderr(), "jvpn-flood: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match flood::run(&config, &Arc::new(AtomicBool::new(false))) {
        Ok(report) => {
            let _ = writeln!(io::stdout(), "{}", report.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "jvpn-flood: raw socket: {e} (run as root)");
            ExitCode::from(1)
        }
    }
}
