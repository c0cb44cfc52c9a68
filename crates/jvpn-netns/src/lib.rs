//! Network-namespace testbeds for jvpn's end-to-end tests (dev-only, never published).
//!
//! A [`Testbed`] builds real networks out of Linux network namespaces: namespaces joined by veth
//! pairs (each pair one "path" with its own `10.201.<n>.0/24` subnet), nftables rules that drop UDP or
//! everything but one TCP port or a random share of packets, and `tc tbf` rate limits. Processes are
//! started inside the namespaces and ended with the testbed. Everything is shelled out to `ip`, `nft`,
//! `tc` and `ethtool` — during setup only, never per packet.
//!
//! Guarantees, so that every namespace test is deterministic, self-cleaning and bounded:
//! - **Unique names.** `jvpn-<pid>-<counter>-<test>-<role>` for namespaces; interface names fit 15
//!   bytes and are created directly inside the testbed's namespaces. Tests on parallel threads or in
//!   parallel processes never collide.
//! - **Cleanup on drop**, also during a panic: spawned processes get SIGTERM then SIGKILL (by exact
//!   process group, never by name), nftables tables are removed, namespaces deleted. During a panic
//!   the tail of every process's output is printed first.
//! - **Bounded.** Every command has a time bound (10 s by default) after which it is killed;
//!   [`wait_until`], [`wait_for`], [`Deadline`] and [`bounded`] bound the test's own loops.
//! - **Capability skip.** [`testbed_or_skip`] prints `skipping: <reason>` and returns `None` when the
//!   machine cannot run namespace tests (not root, tools missing), unless `JVPN_NETNS_REQUIRE=1`
//!   turns that into an error (for CI).
//!
//! DoS tools for the flood scenarios (ATTACKS.md S18, S19): [`flood`] sends valid-MAC1
//! HANDSHAKE_INITs from spoofed sources (or replays one captured datagram) through a raw socket;
//! [`load`] attaches many honest `jvpn` clients at once and reports attach latency percentiles.
//! Both have a command-line twin for runs by hand (`jvpn-flood`, `jvpn-attach`).
//!
//! Not here: a userspace relay for delay/reorder/duplication (the kernel has no netem on our
//! machines), IPv6 path addresses, and anything outside namespaces the testbed created (the root
//! namespace's interfaces and firewall are never touched).
//!
//! ```no_run
//! # fn main() -> Result<(), jvpn_netns::NetnsError> {
//! let Some(tb) = jvpn_netns::testbed_or_skip("ping_over_two_paths", &["ping"])? else {
//!     return Ok(());
//! };
//! let client = tb.add_namespace("client")?;
//! let server = tb.add_namespace("server")?;
//! let path = tb.link(&client, &server)?;
//! assert!(client.ping(path.b_addr.into())?);
//! server.block_udp()?; // UDP from the client is now dropped on arrival
//! # Ok(()) }
//! ```

pub mod args;
mod capability;
mod command;
mod error;
mod firewall;
pub mod flood;
pub mod load;
mod names;
mod namespace;
mod process;
mod testbed;
mod time;
pub mod traffic;

pub use capability::{REQUIRE_ENV, available_or_skip, check_capability, require};
pub use command::has_tool;
pub use error::{NetnsError, TimedOut, Unavailable};
pub use firewall::{Block, Direction, TABLE};
pub use names::NAME_PREFIX;
pub use namespace::Namespace;
pub use process::{Process, Signal};
pub use testbed::{
    KEEP_LOGS_ENV, LinkOptions, Testbed, VethPath, list_namespaces, remove_stale_namespaces,
};
pub use time::{Deadline, bounded, wait_for, wait_until};

/// The usual start of a namespace test: checks the capability and `tools`, then builds an empty
/// testbed for `test_name`. `Ok(None)` means the machine cannot run it and `skipping: <reason>` was
/// printed: return from the test. With `JVPN_NETNS_REQUIRE=1` a missing capability is an `Err`.
pub fn testbed_or_skip(test_name: &str, tools: &[&str]) -> Result<Option<Testbed>, NetnsError> {
    if capability::skip_check(tools, Some(test_name))? {
        Testbed::new(test_name).map(Some)
    } else {
        Ok(None)
    }
}

/// Writes one line straight to the process's stderr, bypassing the test harness's output capture, so
/// that a skip or a leftover is visible even when the test passes.
pub(crate) fn loud(message: &str) {
    use std::io::Write as _;
    // Nothing sensible to do if stderr is closed.
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}
