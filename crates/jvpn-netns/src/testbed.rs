//! The testbed: a set of namespaces joined by veth paths, and everything started in them, torn down
//! on drop (also when the test panics).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::command::{self, SETUP_TIMEOUT};
use crate::error::NetnsError;
use crate::firewall::{self, Block, Direction};
use crate::names;
use crate::namespace::Namespace;
use crate::process::{self, Process, Signal};
use crate::time::Deadline;

/// First two octets of every path address: `10.201.<subnet>.1` and `.2`.
const NET_PREFIX: [u8; 2] = [10, 201];
/// Prefix length of every path subnet.
const PREFIX_LEN: u8 = 24;
/// Default time a process gets between SIGTERM and SIGKILL on cleanup.
const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);
/// Environment variable: when `1`, process logs are kept after cleanup (their directory is printed).
pub const KEEP_LOGS_ENV: &str = "JVPN_NETNS_KEEP_LOGS";

/// Serializes `ip netns add/del` within the process: concurrent first-time adds race on setting up
/// the `/run/netns` mount.
static NETNS_LOCK: Mutex<()> = Mutex::new(());

/// State shared by a testbed and its namespace handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) prefix: String,
    /// Short hash of the prefix used in interface names.
    tag: String,
    pub(crate) log_dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) closed: bool,
    /// `(role, namespace name)` in creation order.
    namespaces: Vec<(String, String)>,
    pub(crate) processes: Vec<Process>,
    /// Namespaces where we created `table inet jvpn_test`.
    pub(crate) nft_namespaces: BTreeSet<String>,
    subnets: BTreeSet<u8>,
    pub(crate) spawned: u32,
    kill_grace: Option<Duration>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // State stays consistent across a panic (every update is a single push/insert).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Options for [`Testbed::link_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkOptions {
    subnet: Option<u8>,
    disable_offloads: bool,
    mtu: Option<u32>,
}

impl Default for LinkOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl LinkOptions {
    /// The next free subnet, offloads off, default MTU.
    pub fn new() -> Self {
        Self {
            subnet: None,
            disable_offloads: true,
            mtu: None,
        }
    }

    /// Use `10.201.<subnet>.0/24` (1..=254, unused in this testbed) instead of the next free one.
    #[must_use]
    pub fn subnet(mut self, subnet: u8) -> Self {
        self.subnet = Some(subnet);
        self
    }

    /// Keep TSO/GSO/GRO on (for raw throughput baselines; loss rules then hit 64 KB bursts).
    #[must_use]
    pub fn keep_offloads(mut self) -> Self {
        self.disable_offloads = false;
        self
    }

    /// Set both ends' MTU.
    #[must_use]
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }
}

/// One veth pair between two namespaces: `a_dev` with `a_addr` in namespace `a_ns`, `b_dev` with
/// `b_addr` in `b_ns`, both in `10.201.<subnet>.0/24`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VethPath {
    /// Third octet of the path's addresses.
    pub subnet: u8,
    /// Namespace name of end A.
    pub a_ns: String,
    /// Namespace name of end B.
    pub b_ns: String,
    /// Interface name of end A (inside `a_ns`).
    pub a_dev: String,
    /// Interface name of end B (inside `b_ns`).
    pub b_dev: String,
    /// `10.201.<subnet>.1`.
    pub a_addr: Ipv4Addr,
    /// `10.201.<subnet>.2`.
    pub b_addr: Ipv4Addr,
    /// Always 24.
    pub prefix_len: u8,
    /// Whether `ethtool -K … tso off gso off gro off tx-udp-segmentation off` succeeded on both ends
    /// (false when asked to keep offloads, or when ethtool is missing).
    pub offloads_disabled: bool,
}

/// A network testbed for one test. Build it with [`Testbed::new`], add namespaces and paths; on drop
/// (or [`Testbed::cleanup`]) every process it spawned is ended (by exact process group), its nftables
/// tables are removed and its namespaces are deleted (which deletes their interfaces).
#[derive(Debug)]
pub struct Testbed {
    shared: Arc<Shared>,
}

impl Testbed {
    /// An empty testbed whose names derive from `test_name`, this process id and a per-process counter.
    /// Does not check the capability: call [`crate::check_capability`] or
    /// [`crate::testbed_or_skip`] first.
    pub fn new(test_name: &str) -> Result<Self, NetnsError> {
        let prefix = names::testbed_prefix(test_name);
        let log_dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&log_dir)
            .map_err(|e| NetnsError::io(format!("create {}", log_dir.display()), e))?;
        Ok(Self {
            shared: Arc::new(Shared {
                tag: names::short_hash(&prefix),
                prefix,
                log_dir,
                state: Mutex::new(State::default()),
            }),
        })
    }

    /// The unique prefix of every namespace of this testbed.
    pub fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// How long cleanup waits between SIGTERM and SIGKILL (default 2 s).
    pub fn set_kill_grace(&self, grace: Duration) {
        self.shared.lock().kill_grace = Some(grace);
    }

    /// Creates the namespace `<prefix>-<role>` with loopback up. `role` (e.g. `client`) must be unique
    /// in this testbed.
    pub fn add_namespace(&self, role: &str) -> Result<Namespace, NetnsError> {
        let role_slug = names::slug(role, 20);
        let name = format!("{}-{role_slug}", self.shared.prefix);
        {
            let mut state = self.shared.lock();
            if state.closed {
                return Err(NetnsError::Closed(self.shared.prefix.clone()));
            }
            if state.namespaces.iter().any(|(_, n)| *n == name) {
                return Err(NetnsError::Invalid(format!(
                    "namespace role `{role}` used twice in one testbed"
                )));
            }
            // Recorded before creation so that cleanup deletes it even if setup fails halfway.
            state.namespaces.push((role.to_owned(), name.clone()));
        }
        netns_add(&name)?;
        let ns = Namespace::new(name, role.to_owned(), Arc::clone(&self.shared));
        ns.set_link_up("lo", true)?;
        Ok(ns)
    }

    /// The namespace added with `role`, if any.
    pub fn namespace(&self, role: &str) -> Option<Namespace> {
        self.namespaces().into_iter().find(|ns| ns.role() == role)
    }

    /// Every namespace of the testbed, in creation order.
    pub fn namespaces(&self) -> Vec<Namespace> {
        self.shared
            .lock()
            .namespaces
            .iter()
            .map(|(role, name)| {
                Namespace::new(name.clone(), role.clone(), Arc::clone(&self.shared))
            })
            .collect()
    }

    /// Joins `a` and `b` with a new veth pair on the next free subnet, offloads off; see
    /// [`Testbed::link_with`].
    pub fn link(&self, a: &Namespace, b: &Namespace) -> Result<VethPath, NetnsError> {
        self.link_with(a, b, LinkOptions::new())
    }

    /// Joins `a` and `b` with a new veth pair: `10.201.<subnet>.1/24` in `a`, `.2/24` in `b`, both
    /// up, offloads off unless asked otherwise (best effort: needs ethtool).
    pub fn link_with(
        &self,
        a: &Namespace,
        b: &Namespace,
        options: LinkOptions,
    ) -> Result<VethPath, NetnsError> {
        if a == b {
            return Err(NetnsError::Invalid(format!(
                "a path needs two different namespaces, got {} twice",
                a.name()
            )));
        }
        let subnet = self.claim_subnet(options.subnet)?;
        let [n0, n1] = NET_PREFIX;
        let path = VethPath {
            subnet,
            a_ns: a.name().to_owned(),
            b_ns: b.name().to_owned(),
            a_dev: names::veth_name(&self.shared.tag, subnet, 'a'),
            b_dev: names::veth_name(&self.shared.tag, subnet, 'b'),
            a_addr: Ipv4Addr::new(n0, n1, subnet, 1),
            b_addr: Ipv4Addr::new(n0, n1, subnet, 2),
            prefix_len: PREFIX_LEN,
            offloads_disabled: false,
        };
        // Both ends are created directly inside their namespaces, never in the root namespace.
        let mut cmd = command::tool("ip");
        cmd.args(["link", "add", &path.a_dev, "netns", &path.a_ns])
            .args([
                "type",
                "veth",
                "peer",
                "name",
                &path.b_dev,
                "netns",
                &path.b_ns,
            ]);
        command::run(&mut cmd, SETUP_TIMEOUT)?;
        let mut offloads_disabled = options.disable_offloads && crate::has_tool("ethtool");
        for (ns, dev, addr) in [(a, &path.a_dev, path.a_addr), (b, &path.b_dev, path.b_addr)] {
            if let Some(mtu) = options.mtu {
                ns.ip(&["link", "set", dev, "mtu", &mtu.to_string()])?;
            }
            ns.ip(&["addr", "add", &format!("{addr}/{PREFIX_LEN}"), "dev", dev])?;
            if offloads_disabled {
                offloads_disabled = disable_offloads(ns, dev);
            }
            ns.set_link_up(dev, true)?;
        }
        Ok(VethPath {
            offloads_disabled,
            ..path
        })
    }

    fn claim_subnet(&self, wanted: Option<u8>) -> Result<u8, NetnsError> {
        let mut state = self.shared.lock();
        if state.closed {
            return Err(NetnsError::Closed(self.shared.prefix.clone()));
        }
        let subnet = match wanted {
            Some(s) if s == 0 || s == u8::MAX => {
                return Err(NetnsError::Invalid(format!("subnet {s} is not in 1..=254")));
            }
            Some(s) if state.subnets.contains(&s) => {
                return Err(NetnsError::Invalid(format!(
                    "subnet 10.201.{s}.0/24 is already used in this testbed"
                )));
            }
            Some(s) => s,
            None => (1..u8::MAX)
                .find(|s| !state.subnets.contains(s))
                .ok_or_else(|| NetnsError::Invalid("all 254 subnets are used".into()))?,
        };
        state.subnets.insert(subnet);
        Ok(subnet)
    }

    /// Deletes the veth pair of `path` (both ends): the path is cut and its addresses disappear, as
    /// when a device loses its Wi-Fi. The subnet stays reserved.
    pub fn remove_path(&self, path: &VethPath) -> Result<(), NetnsError> {
        let mut cmd = command::tool("ip");
        cmd.args(["-n", &path.a_ns, "link", "del", &path.a_dev]);
        command::run(&mut cmd, SETUP_TIMEOUT).map(drop)
    }

    /// Takes both ends of `path` down (addresses stay configured).
    pub fn set_down(&self, path: &VethPath) -> Result<(), NetnsError> {
        self.set_path(path, false)
    }

    /// Brings both ends of `path` back up.
    pub fn set_up(&self, path: &VethPath) -> Result<(), NetnsError> {
        self.set_path(path, true)
    }

    fn set_path(&self, path: &VethPath, up: bool) -> Result<(), NetnsError> {
        let state = if up { "up" } else { "down" };
        for (ns, dev) in [(&path.a_ns, &path.a_dev), (&path.b_ns, &path.b_dev)] {
            let mut cmd = command::tool("ip");
            cmd.args(["-n", ns, "link", "set", dev, state]);
            command::run(&mut cmd, SETUP_TIMEOUT)?;
        }
        Ok(())
    }

    /// Applies `block` to the inbound traffic of every namespace of the testbed: with a block at each
    /// receiver, traffic is dropped both ways as by a middlebox.
    pub fn block_everywhere(&self, block: Block) -> Result<(), NetnsError> {
        firewall::validate(block).map_err(NetnsError::Invalid)?;
        self.namespaces()
            .iter()
            .try_for_each(|ns| ns.block(block, Direction::Inbound))
    }

    /// Removes our rules from every namespace of the testbed.
    pub fn unblock_everywhere(&self) -> Result<(), NetnsError> {
        self.namespaces().iter().try_for_each(Namespace::unblock)
    }

    /// Tears the testbed down now and reports the first problem (dropping it does the same silently,
    /// printing problems to stderr). Idempotent.
    pub fn cleanup(self) -> Result<(), NetnsError> {
        let mut errors = self.teardown();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.swap_remove(0))
        }
    }

    fn teardown(&self) -> Vec<NetnsError> {
        let (processes, nft_namespaces, namespaces, grace) = {
            let mut state = self.shared.lock();
            if state.closed {
                return Vec::new();
            }
            state.closed = true;
            (
                std::mem::take(&mut state.processes),
                std::mem::take(&mut state.nft_namespaces),
                std::mem::take(&mut state.namespaces),
                state.kill_grace.unwrap_or(DEFAULT_KILL_GRACE),
            )
        };
        let mut errors = Vec::new();
        if std::thread::panicking() {
            dump_logs(&self.shared.prefix, &processes);
        }
        errors.extend(end_processes(&processes, grace));
        for ns in &nft_namespaces {
            // Best effort: the namespace deletion below removes the table anyway.
            let mut cmd = command::tool("ip");
            cmd.args(["netns", "exec", ns, "nft", "-f", "-"]);
            let _ =
                command::run_with_stdin(&mut cmd, Some(&firewall::unblock_script()), SETUP_TIMEOUT);
        }
        for (_, ns) in namespaces.iter().rev() {
            if let Err(e) = netns_del(ns) {
                errors.push(e);
            }
        }
        if std::env::var(KEEP_LOGS_ENV).is_ok_and(|v| v == "1") {
            crate::loud(&format!(
                "jvpn-netns: kept logs in {}",
                self.shared.log_dir.display()
            ));
        } else if let Err(e) = std::fs::remove_dir_all(&self.shared.log_dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            errors.push(NetnsError::io(
                format!("remove {}", self.shared.log_dir.display()),
                e,
            ));
        }
        errors
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for e in self.teardown() {
            crate::loud(&format!(
                "jvpn-netns: testbed {} cleanup: {e}",
                self.shared.prefix
            ));
        }
    }
}

/// SIGTERM to all, one shared grace period, then SIGKILL to whatever is left.
fn end_processes(processes: &[Process], grace: Duration) -> Vec<NetnsError> {
    let mut errors = Vec::new();
    for p in processes {
        if let Err(e) = p.signal(Signal::Terminate) {
            errors.push(e);
        }
    }
    let deadline = Deadline::after(grace);
    for p in processes {
        if p.wait_timeout(deadline.remaining()).is_err()
            && let Err(e) = p.kill()
        {
            errors.push(e);
        }
    }
    errors
}

fn dump_logs(prefix: &str, processes: &[Process]) {
    const TAIL: usize = 2048;
    for p in processes {
        report(&format!(
            "--- testbed {prefix}: `{}` (pid {}) stdout tail ---\n{}\n--- stderr tail ---\n{}",
            p.command(),
            p.pid(),
            process::tail(&p.stdout_text(), TAIL),
            process::tail(&p.stderr_text(), TAIL),
        ));
    }
}

#[expect(
    clippy::print_stderr,
    reason = "the output tails belong to the failing test's captured output"
)]
fn report(message: &str) {
    eprintln!("jvpn-netns: {message}");
}

/// Best effort: a device that refuses some feature keeps it; the caller learns it from the result.
fn disable_offloads(ns: &Namespace, dev: &str) -> bool {
    ns.exec(
        "ethtool",
        &[
            "-K",
            dev,
            "tso",
            "off",
            "gso",
            "off",
            "gro",
            "off",
            "tx-udp-segmentation",
            "off",
        ],
    )
    .is_ok_and(|out| out.status.success())
}

fn netns_lock() -> MutexGuard<'static, ()> {
    NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `ip netns add name`. A namespace that already has this exact name was left by a dead process
/// that had our process id (ids are unique among live processes), so it is deleted and re-added.
pub(crate) fn netns_add(name: &str) -> Result<(), NetnsError> {
    let _guard = netns_lock();
    let add = || {
        command::run(
            command::tool("ip").args(["netns", "add", name]),
            SETUP_TIMEOUT,
        )
    };
    match add() {
        Ok(_) => Ok(()),
        Err(NetnsError::CommandFailed { ref stderr, .. }) if stderr.contains("File exists") => {
            command::run(
                command::tool("ip").args(["netns", "del", name]),
                SETUP_TIMEOUT,
            )?;
            add().map(drop)
        }
        Err(e) => Err(e),
    }
}

/// `ip netns del name`, retried briefly (a namespace can be busy for a moment after its last
/// process exits).
pub(crate) fn netns_del(name: &str) -> Result<(), NetnsError> {
    let _guard = netns_lock();
    let mut last = None;
    for attempt in 0..3u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        match command::run(
            command::tool("ip").args(["netns", "del", name]),
            SETUP_TIMEOUT,
        ) {
            Ok(_) => return Ok(()),
            Err(NetnsError::CommandFailed { ref stderr, .. })
                if stderr.contains("No such file") =>
            {
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| NetnsError::Invalid(format!("could not delete {name}"))))
}

/// The names of all namespaces (`ip netns list`), first column only.
pub fn list_namespaces() -> Result<Vec<String>, NetnsError> {
    let out = command::run(command::tool("ip").args(["netns", "list"]), SETUP_TIMEOUT)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Deletes namespaces this crate created in processes that no longer exist (a test run killed before
/// its `Drop` ran) and returns their names. Namespaces of live processes, and names not made by this
/// crate, are never touched.
pub fn remove_stale_namespaces() -> Result<Vec<String>, NetnsError> {
    let mut removed = Vec::new();
    for name in list_namespaces()? {
        let Some(pid) = names::owner_pid(&name) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        netns_del(&name)?;
        removed.push(name);
    }
    Ok(removed)
}
