//! Long-running processes started inside a namespace (servers, clients, iperf3). The testbed keeps a
//! handle to each and ends it on cleanup: SIGTERM to its process group, a grace period, then SIGKILL.
//! Signals go to the exact process group the child leads, and only while the child is not yet
//! reaped, so its id cannot have been reused by an unrelated process.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::command::{self, signal_group};
use crate::error::{NetnsError, TimedOut};
use crate::time::Deadline;

/// A signal a test may send to a process it spawned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGKILL.
    Kill,
    /// SIGHUP.
    Hangup,
}

impl Signal {
    fn raw(self) -> rustix::process::Signal {
        match self {
            Self::Interrupt => rustix::process::Signal::INT,
            Self::Terminate => rustix::process::Signal::TERM,
            Self::Kill => rustix::process::Signal::KILL,
            Self::Hangup => rustix::process::Signal::HUP,
        }
    }
}

#[derive(Debug)]
struct Inner {
    child: Child,
    /// Set once the child is reaped; after that no signal may be sent to its id.
    status: Option<ExitStatus>,
}

/// A process running in a namespace of a [`crate::Testbed`]. Cloning gives another handle to the same
/// process. Its stdout and stderr go to log files (never to a pipe nobody reads, which would stall a
/// chatty server); read them with [`Process::stdout_text`] / [`Process::stderr_text`].
#[derive(Debug, Clone)]
pub struct Process {
    inner: Arc<Mutex<Inner>>,
    pid: u32,
    command: Arc<str>,
    stdout_path: Arc<Path>,
    stderr_path: Arc<Path>,
}

impl Process {
    pub(crate) fn new(child: Child, command: String, stdout: PathBuf, stderr: PathBuf) -> Self {
        Self {
            pid: child.id(),
            inner: Arc::new(Mutex::new(Inner {
                child,
                status: None,
            })),
            command: command.into(),
            stdout_path: stdout.into(),
            stderr_path: stderr.into(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` inconsistent: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The process id (of the command itself: `ip netns exec` execs it in place).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The command line it was started with.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Its exit status if it has exited, without blocking.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>, NetnsError> {
        let mut inner = self.lock();
        Self::poll(&mut inner)
    }

    fn poll(inner: &mut Inner) -> Result<Option<ExitStatus>, NetnsError> {
        if inner.status.is_none() {
            let pid = inner.child.id();
            inner.status = inner
                .child
                .try_wait()
                .map_err(|e| NetnsError::io(format!("wait for pid {pid}"), e))?;
        }
        Ok(inner.status)
    }

    /// Whether it is still running.
    pub fn is_running(&self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<ExitStatus, NetnsError> {
        let deadline = Deadline::after(timeout);
        let mut inner = self.lock();
        if let Some(status) = inner.status {
            return Ok(status);
        }
        match command::wait_child(&mut inner.child, &deadline)? {
            Some(status) => {
                inner.status = Some(status);
                Ok(status)
            }
            None => Err(TimedOut {
                what: format!("`{}` (pid {}) to exit", self.command, self.pid),
                waited: deadline.elapsed(),
            }
            .into()),
        }
    }

    /// Sends `signal` to its process group (itself and anything it forked). Does nothing once it has
    /// exited and been reaped.
    pub fn signal(&self, signal: Signal) -> Result<(), NetnsError> {
        let mut inner = self.lock();
        if Self::poll(&mut inner)?.is_none() {
            // Still unreaped while we hold the lock: the id is ours.
            signal_group(self.pid, signal.raw());
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`; returns its exit status.
    pub fn terminate(&self, grace: Duration) -> Result<ExitStatus, NetnsError> {
        self.signal(Signal::Terminate)?;
        match self.wait_timeout(grace) {
            Ok(status) => Ok(status),
            Err(NetnsError::TimedOut(_)) => self.kill(),
            Err(other) => Err(other),
        }
    }

    /// SIGKILL to its process group, then reaps it.
    pub fn kill(&self) -> Result<ExitStatus, NetnsError> {
        let mut inner = self.lock();
        if let Some(status) = Self::poll(&mut inner)? {
            return Ok(status);
        }
        signal_group(self.pid, rustix::process::Signal::KILL);
        let status = inner
            .child
            .wait()
            .map_err(|e| NetnsError::io(format!("reap pid {}", self.pid), e))?;
        inner.status = Some(status);
        Ok(status)
    }

    /// What it wrote to stdout so far (lossy UTF-8; empty if the log cannot be read).
    pub fn stdout_text(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    /// What it wrote to stderr so far (lossy UTF-8; empty if the log cannot be read).
    pub fn stderr_text(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// The file its stdout goes to (removed with the testbed).
    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    /// The file its stderr goes to (removed with the testbed).
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// The last `max` bytes of `text`, cut at a character boundary.
pub(crate) fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
