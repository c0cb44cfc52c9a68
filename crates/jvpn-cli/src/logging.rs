//! Logs go to stderr through `tracing`: `info` by default, `-v`/`-vv` for debug/trace, `-q`/`-qq`
//! for warnings/errors only; `RUST_LOG` (e.g. `RUST_LOG=jvpn=debug`) overrides both.
//!
//! No secret reaches the log: keys are never passed to a log call, and their `Debug` is redacted.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// The log level named by the `-v` / `-q` counts.
fn level(verbose: u8, quiet: u8) -> &'static str {
    match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    }
}

/// Installs the stderr logger. Call once, before anything logs.
pub(crate) fn init(verbose: u8, quiet: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(level(verbose, quiet)),
    };
    // A second initialisation (impossible here) would only keep the first logger.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not in a log file or a journal.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_flags_pick_the_level() {
        assert_eq!(level(0, 0), "info");
        assert_eq!(level(1, 0), "debug");
        assert_eq!(level(3, 0), "trace");
        assert_eq!(level(0, 1), "warn");
        assert_eq!(level(0, 2), "error");
    }
}
