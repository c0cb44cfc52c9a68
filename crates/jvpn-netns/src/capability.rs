//! Can this machine run namespace tests? Checked once per process: root, `ip`, and a real
//! `ip netns add` / `ip netns del` of a uniquely named probe namespace.

use std::sync::OnceLock;

use crate::command::has_tool;
use crate::error::{NetnsError, Unavailable};
use crate::names;

/// Environment variable: when set to `1`, a missing capability is an error instead of a skip (set it
/// in CI so that a namespace suite cannot pass by skipping everything).
pub const REQUIRE_ENV: &str = "JVPN_NETNS_REQUIRE";

/// `Ok` when this process can create network namespaces: it runs as root, `ip` is installed, and a
/// probe namespace can be added and deleted. The result is computed once per process.
pub fn check_capability() -> Result<(), Unavailable> {
    static RESULT: OnceLock<Result<(), Unavailable>> = OnceLock::new();
    RESULT.get_or_init(probe).clone()
}

/// [`check_capability`] plus every tool in `tools` (e.g. `["nft", "ping"]`).
pub fn require(tools: &[&str]) -> Result<(), Unavailable> {
    check_capability()?;
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !has_tool(t)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Unavailable::new(format!(
            "missing tool(s): {} (CI installs them in .ci/run; locally: apt-get install {})",
            missing.join(", "),
            missing
                .iter()
                .map(|t| package_of(t))
                .collect::<Vec<_>>()
                .join(" ")
        )))
    }
}

/// What a test does with an [`Unavailable`]: `Ok(false)` after printing `skipping: <reason>` to stderr,
/// or `Err` when `JVPN_NETNS_REQUIRE=1` demands the test really run. `Ok(true)` means go ahead.
pub fn available_or_skip(tools: &[&str]) -> Result<bool, NetnsError> {
    skip_check(tools, None)
}

/// [`available_or_skip`], naming the test in the skip line when known.
pub(crate) fn skip_check(tools: &[&str], test_name: Option<&str>) -> Result<bool, NetnsError> {
    match require(tools) {
        Ok(()) => Ok(true),
        Err(why) if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") => Err(why.into()),
        Err(why) => {
            let test = test_name.map(|t| format!(" [{t}]")).unwrap_or_default();
            crate::loud(&format!("skipping: {why}{test}"));
            Ok(false)
        }
    }
}

/// The Debian package that provides `tool`, for the hint in the skip reason.
fn package_of(tool: &str) -> &str {
    match tool {
        "ip" | "tc" => "iproute2",
        "nft" => "nftables",
        "ping" => "iputils-ping",
        "python3" => "python3-minimal",
        other => other,
    }
}

fn probe() -> Result<(), Unavailable> {
    let euid = rustix::process::geteuid();
    if !euid.is_root() {
        return Err(Unavailable::new(format!(
            "not root (euid {}): network-namespace tests need root (CI runs them as root)",
            euid.as_raw()
        )));
    }
    if !has_tool("ip") {
        return Err(Unavailable::new(
            "`ip` not found: install iproute2 (apt-get install iproute2)",
        ));
    }
    let name = format!(
        "{}{}-probe-{}",
        names::NAME_PREFIX,
        std::process::id(),
        names::next_counter()
    );
    if let Err(e) = crate::testbed::netns_add(&name) {
        return Err(Unavailable::new(format!(
            "cannot create network namespaces: {e}"
        )));
    }
    crate::testbed::netns_del(&name)
        .map_err(|e| Unavailable::new(format!("cannot delete the probe namespace {name}: {e}")))
}
