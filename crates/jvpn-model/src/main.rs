//! `jvpn-model`: run the bounded model check from the command line.
//!
//! ```text
//! cargo run -p jvpn-model --release -- --depth 24 [--max-rc 3] [--budget 2] [--lossy]
//!     [--duplicating] [--no-attacker] [--threads 2] [--variant design|commit-on-init|no-freshness-check]
//! ```
//!
//! Prints the number of states explored and every property's verdict (with the counterexample
//! trace of a violated one); exits with status 1 when a property does not hold.

use std::process::ExitCode;

use jvpn_model::{ModelCfg, Variant, check};

const USAGE: &str = "usage: jvpn-model [--depth N] [--max-rc N] [--budget N] [--tokens N] \
[--threads N] [--lossy] [--duplicating] [--no-attacker] [--variant design|commit-on-init|no-freshness-check]";

fn parse(args: &[String]) -> Result<(ModelCfg, usize, usize), String> {
    let mut cfg = ModelCfg::default();
    let mut depth = 22;
    let mut threads = 1;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{arg} needs a value"))
                .cloned()
        };
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{arg}: {e}"));
        let small = |v: String| v.parse::<u8>().map_err(|e| format!("{arg}: {e}"));
        match arg.as_str() {
            "--depth" => depth = number(value()?)?,
            "--threads" => threads = number(value()?)?,
            "--max-rc" => cfg.max_rc = small(value()?)?,
            "--budget" => cfg.switch_budget = small(value()?)?,
            "--tokens" => cfg.tokens_per_grant = small(value()?)?,
            "--lossy" => cfg.lossy = true,
            "--duplicating" => cfg.duplicating = true,
            "--no-attacker" => cfg.attacker = false,
            "--variant" => {
                cfg.variant = match value()?.as_str() {
                    "design" => Variant::Design,
                    "commit-on-init" => Variant::CommitOnInit,
                    "no-freshness-check" => Variant::NoFreshnessCheck,
                    other => return Err(format!("unknown variant {other}")),
                }
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok((cfg, depth, threads))
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cfg, depth, threads) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let report = check(cfg, depth, threads);
    print!("{report}");
    if report.all_hold() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
