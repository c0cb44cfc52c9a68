//! Errors of the testbed library. Every error that comes from a command carries the exact command line
//! and what the command printed on stderr, so a failing test says what to run by hand.

use std::time::Duration;

/// The machine cannot run namespace tests (not root, `ip` missing, `ip netns add` refused, a tool
/// missing). Tests print `skipping: <reason>` and return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unavailable {
    /// Why, in words a person can act on (e.g. "not root (euid 1000): run the tests as root").
    pub reason: String,
}

impl Unavailable {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// A bounded wait ran out of time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {waited:?} waiting for {what}")]
pub struct TimedOut {
    /// What was being waited for.
    pub what: String,
    /// How long the wait lasted.
    pub waited: Duration,
}

/// Everything that can go wrong while building, using or tearing down a testbed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// A setup command ran but exited unsuccessfully. Run `command` by hand to see why; `stderr` is
    /// what it printed.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The full command line.
        command: String,
        /// The exit status as printed by the OS (`exit status: 2`, `signal: 9`).
        status: String,
        /// The command's stderr, trimmed.
        stderr: String,
    },
    /// A command did not finish within its time bound and was killed (its whole process group). Either
    /// the bound is too short for this machine or the command hangs: run it by hand.
    #[error("`{command}` did not finish within {timeout:?} and was killed")]
    CommandTimedOut {
        /// The full command line.
        command: String,
        /// The bound that was exceeded.
        timeout: Duration,
    },
    /// A command could not be started at all (usually: the program is not installed or not in `PATH`).
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The full command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file or system call failed (log files, `/run/netns/<name>`, `setns`, signals).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The caller asked for something the testbed cannot do (a duplicate namespace role, a subnet
    /// already used in this testbed, a loss percentage above 100, …). Fix the test.
    #[error("invalid testbed request: {0}")]
    Invalid(String),
    /// The testbed was already cleaned up; handles that outlive it cannot start new things.
    #[error("the testbed {0} is already cleaned up")]
    Closed(String),
    /// A bounded wait ran out of time.
    #[error(transparent)]
    TimedOut(#[from] TimedOut),
    /// The machine cannot run namespace tests and `JVPN_NETNS_REQUIRE=1` says they must run.
    #[error("namespace tests are required (JVPN_NETNS_REQUIRE=1) but unavailable: {0}")]
    Unavailable(#[from] Unavailable),
    /// A closure given to [`crate::Namespace::run_in`] or [`crate::bounded`] panicked; the panic
    /// message was printed by the panic hook.
    #[error("{0} panicked")]
    Panicked(String),
}

impl NetnsError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
