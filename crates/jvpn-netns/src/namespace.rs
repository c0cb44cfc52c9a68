//! A handle to one network namespace of a testbed: run commands in it (bounded), start processes
//! (ended on cleanup), run Rust code in it, and filter or shape its traffic.

use std::ffi::OsStr;
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::command::{self, SETUP_TIMEOUT};
use crate::error::NetnsError;
use crate::firewall::{self, Block, Direction};
use crate::process::Process;
use crate::testbed::Shared;
use crate::time::bounded;

/// Where `ip netns add` bind-mounts namespaces.
const NETNS_DIRS: [&str; 2] = ["/run/netns", "/var/run/netns"];

/// One namespace of a [`crate::Testbed`]. Cheap to clone; every clone refers to the same namespace.
/// The namespace itself lives until the testbed is cleaned up.
#[derive(Debug, Clone)]
pub struct Namespace {
    name: Arc<str>,
    role: Arc<str>,
    shared: Arc<Shared>,
}

impl PartialEq for Namespace {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Namespace {}

impl Namespace {
    pub(crate) fn new(name: String, role: String, shared: Arc<Shared>) -> Self {
        Self {
            name: name.into(),
            role: role.into(),
            shared,
        }
    }

    /// The full namespace name (`jvpn-<pid>-<n>-<test>-<role>`), as `ip netns list` shows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The role given to [`crate::Testbed::add_namespace`] (e.g. `client`).
    pub fn role(&self) -> &str {
        &self.role
    }

    /// `ip netns exec <name> <program> <args…>`, not yet run. A bare `program` is resolved like
    /// [`crate::has_tool`] does (also in the sbin directories) so that a found tool also runs.
    pub fn command<S: AsRef<OsStr>>(&self, program: &str, args: &[S]) -> Command {
        let resolved = command::find_tool(program)
            .map(PathBuf::into_os_string)
            .unwrap_or_else(|| program.into());
        let mut cmd = command::tool("ip");
        cmd.args(["netns", "exec", &self.name])
            .arg(resolved)
            .args(args);
        cmd
    }

    /// Runs `program args…` in the namespace and returns its output whatever its exit status, killing
    /// it if it runs longer than 10 s.
    pub fn exec<S: AsRef<OsStr>>(&self, program: &str, args: &[S]) -> Result<Output, NetnsError> {
        self.exec_timeout(program, args, SETUP_TIMEOUT)
    }

    /// [`Namespace::exec`] with an explicit time bound.
    pub fn exec_timeout<S: AsRef<OsStr>>(
        &self,
        program: &str,
        args: &[S],
        timeout: Duration,
    ) -> Result<Output, NetnsError> {
        command::output(&mut self.command(program, args), timeout)
    }

    /// Like [`Namespace::exec`], but a non-zero exit is [`NetnsError::CommandFailed`].
    pub fn exec_ok<S: AsRef<OsStr>>(
        &self,
        program: &str,
        args: &[S],
    ) -> Result<Output, NetnsError> {
        command::run(&mut self.command(program, args), SETUP_TIMEOUT)
    }

    /// `ip -n <name> <args…>` (must succeed), e.g. `ns.ip(&["route", "add", "10.9.0.0/16", "via", …])`.
    pub fn ip(&self, args: &[&str]) -> Result<Output, NetnsError> {
        let mut cmd = command::tool("ip");
        cmd.args(["-n", &self.name]).args(args);
        command::run(&mut cmd, SETUP_TIMEOUT)
    }

    /// Starts `program args…` in the namespace. The testbed ends it on cleanup (SIGTERM to its process
    /// group, then SIGKILL after the grace period). stdin is `/dev/null`; stdout and stderr go to log
    /// files (see [`Process::stdout_text`]).
    pub fn spawn<S: AsRef<OsStr>>(&self, program: &str, args: &[S]) -> Result<Process, NetnsError> {
        self.spawn_with_env(program, args, &[])
    }

    /// [`Namespace::spawn`] with extra environment variables (e.g. `RUST_LOG`).
    pub fn spawn_with_env<S: AsRef<OsStr>>(
        &self,
        program: &str,
        args: &[S],
        env: &[(&str, &str)],
    ) -> Result<Process, NetnsError> {
        let mut cmd = self.command(program, args);
        cmd.envs(env.iter().copied());
        let line = command::command_line(&cmd);
        // Hold the testbed lock across the spawn so a concurrent cleanup cannot miss this process.
        let mut state = self.shared.lock();
        if state.closed {
            return Err(NetnsError::Closed(self.shared.prefix.clone()));
        }
        state.spawned += 1;
        let stem = format!(
            "{}-{}-{}",
            self.role,
            state.spawned,
            crate::names::slug(program.rsplit('/').next().unwrap_or(program), 24)
        );
        let (stdout_path, stdout) = self.log_file(&stem, "stdout")?;
        let (stderr_path, stderr) = self.log_file(&stem, "stderr")?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|source| NetnsError::Spawn {
                command: line.clone(),
                source,
            })?;
        let process = Process::new(child, line, stdout_path, stderr_path);
        state.processes.push(process.clone());
        Ok(process)
    }

    fn log_file(&self, stem: &str, stream: &str) -> Result<(PathBuf, File), NetnsError> {
        let path = self.shared.log_dir.join(format!("{stem}.{stream}"));
        let file = File::create(&path)
            .map_err(|e| NetnsError::io(format!("create log file {}", path.display()), e))?;
        Ok((path, file))
    }

    /// Runs `f` on a thread that has entered this namespace (setns), so sockets it creates belong to
    /// the namespace (and stay there when returned to the caller's thread). Gives up after `timeout`:
    /// `f` should bound its own blocking calls (socket read timeouts), since an overrunning thread is
    /// abandoned, not stopped.
    pub fn run_in<T, F>(&self, timeout: Duration, f: F) -> Result<T, NetnsError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let path = NETNS_DIRS
            .iter()
            .map(|dir| PathBuf::from(dir).join(&*self.name))
            .find(|p| p.exists())
            .ok_or_else(|| {
                NetnsError::io(
                    format!("find namespace {}", self.name),
                    std::io::ErrorKind::NotFound.into(),
                )
            })?;
        let file =
            File::open(&path).map_err(|e| NetnsError::io(format!("open {}", path.display()), e))?;
        let what = format!("code in namespace {}", self.name);
        let entered = bounded(timeout, &what, move || {
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .map(|()| f())
        })?;
        entered.map_err(|e| NetnsError::io(format!("setns into {}", path.display()), e.into()))
    }

    /// Sets a sysctl of this namespace's network stack, e.g. `("net/ipv4/ip_forward", "1")`.
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<(), NetnsError> {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        let value = value.to_owned();
        let shown = path.display().to_string();
        self.run_in(SETUP_TIMEOUT, move || std::fs::write(&path, value))?
            .map_err(|e| NetnsError::io(format!("write {shown}"), e))
    }

    /// One ICMP echo to `addr` (`ping -c1 -W2 -n`): `Ok(true)` if answered. Needs `ping` (iputils-ping).
    pub fn ping(&self, addr: IpAddr) -> Result<bool, NetnsError> {
        let target = addr.to_string();
        let out = self.exec_timeout(
            "ping",
            &["-c1", "-W2", "-n", &target],
            Duration::from_secs(5),
        )?;
        Ok(out.status.success())
    }

    /// Brings the interface `dev` of this namespace up or down.
    pub fn set_link_up(&self, dev: &str, up: bool) -> Result<(), NetnsError> {
        self.ip(&["link", "set", dev, if up { "up" } else { "down" }])
            .map(drop)
    }

    /// Replaces this namespace's rules with `block` (see [`Block`] and [`Direction`]). Needs `nft`.
    pub fn block(&self, block: Block, direction: Direction) -> Result<(), NetnsError> {
        firewall::validate(block).map_err(NetnsError::Invalid)?;
        self.shared
            .lock()
            .nft_namespaces
            .insert(self.name.to_string());
        self.nft(&firewall::script(block, direction))
    }

    /// Drops all UDP arriving in this namespace.
    pub fn block_udp(&self) -> Result<(), NetnsError> {
        self.block(Block::Udp, Direction::Inbound)
    }

    /// Drops UDP arriving in this namespace except to or from `port`.
    pub fn block_udp_except_port(&self, port: u16) -> Result<(), NetnsError> {
        self.block(Block::UdpExceptPort(port), Direction::Inbound)
    }

    /// Drops everything arriving in this namespace except TCP to or from `port`.
    pub fn block_all_except_tcp_port(&self, port: u16) -> Result<(), NetnsError> {
        self.block(Block::AllExceptTcpPort(port), Direction::Inbound)
    }

    /// Drops `percent`% of the packets arriving in this namespace, at random.
    pub fn random_loss(&self, percent: u8) -> Result<(), NetnsError> {
        self.block(Block::RandomLoss { percent }, Direction::Inbound)
    }

    /// Removes this namespace's rules (our table only); a no-op when there are none.
    pub fn unblock(&self) -> Result<(), NetnsError> {
        if !self.shared.lock().nft_namespaces.contains(&*self.name) {
            return Ok(());
        }
        self.nft(&firewall::unblock_script())?;
        self.shared.lock().nft_namespaces.remove(&*self.name);
        Ok(())
    }

    fn nft(&self, script: &str) -> Result<(), NetnsError> {
        command::run_with_stdin(
            &mut self.command("nft", &["-f", "-"]),
            Some(script),
            SETUP_TIMEOUT,
        )
        .map(drop)
    }

    /// Limits what `dev` (in this namespace) sends to `mbit` Mbit/s with a `tc tbf` root qdisc
    /// (replacing any previous one).
    pub fn rate_limit(&self, dev: &str, mbit: u32) -> Result<(), NetnsError> {
        if mbit == 0 {
            return Err(NetnsError::Invalid("a rate limit of 0 Mbit/s".into()));
        }
        let mut cmd = self.command("tc", &firewall::tbf_args(dev, mbit));
        command::run(&mut cmd, SETUP_TIMEOUT).map(drop)
    }

    /// Removes a rate limit set by [`Namespace::rate_limit`].
    pub fn clear_rate_limit(&self, dev: &str) -> Result<(), NetnsError> {
        let mut cmd = self.command("tc", &["qdisc", "del", "dev", dev, "root"]);
        command::run(&mut cmd, SETUP_TIMEOUT).map(drop)
    }
}
