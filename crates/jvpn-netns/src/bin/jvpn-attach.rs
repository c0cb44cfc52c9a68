//! `jvpn-attach`: many honest clients attaching at once with real handshakes over UDP (the honest
//! side of the spoofed-flood scenario), run by hand inside a client namespace.
//!
//! ```text
//! # the public keys of 200 clients derived from seed 7 (one per line, for the server's --peer list)
//! jvpn-attach pubkeys --seed 7 --clients 200
//! # start them over 2 s; each waits at most 30 s to be ATTACHED
//! ip netns exec CLIENTS jvpn-attach run --server 10.201.1.2:51820 --server-key B64 \
//!     --seed 7 --clients 200 --spread-ms 2000 --timeout-secs 30 --retry-ms 1000
//! ```
//!
//! `run` prints one JSON line: `{"clients":…,"attached":…,"failed":…,"p50_ms":…,"p99_ms":…,
//! "max_ms":…,"secs":…}` and exits 0 if every client attached, 1 otherwise, 2 on a usage error.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use jvpn::wire::PublicKey;
use jvpn_netns::args::ToolArgs;
use jvpn_netns::load::{self, AttachConfig};

const USAGE: &str = "usage:\n  jvpn-attach pubkeys --seed S --clients N\n  \
                     jvpn-attach run --server ADDR:PORT --server-key B64 --seed S --clients N \
                     [--spread-ms MS] [--timeout-secs S] [--retry-ms MS]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io::stderr(), "jvpn-attach: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let args = ToolArgs::parse(args)?;
    let seed = args.number("--seed", None)?;
    let clients = usize::try_from(args.number("--clients", None)?).map_err(|e| e.to_string())?;
    let keys = load::keys_from_seed(seed, clients);
    match args.command {
        "pubkeys" => {
            let mut out = io::stdout().lock();
            for key in &keys {
                let _ = writeln!(out, "{}", key.public_key());
            }
            Ok(ExitCode::SUCCESS)
        }
        "run" => {
            let config = AttachConfig {
                server: args.parsed::<SocketAddr>("--server")?,
                server_key: args.parsed::<PublicKey>("--server-key")?,
                keys,
                spread: Duration::from_millis(args.number("--spread-ms", Some(0))?),
                timeout: Duration::from_secs(args.number("--timeout-secs", Some(30))?),
                handshake_retry: Duration::from_millis(
                    args.number("--retry-ms", Some(1000))?.max(1),
                ),
            };
            let report = load::run(config).map_err(|e| format!("runtime: {e}"))?;
            let _ = writeln!(io::stdout(), "{}", report.to_json());
            Ok(if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        other => Err(format!("unknown command {other}")),
    }
}
