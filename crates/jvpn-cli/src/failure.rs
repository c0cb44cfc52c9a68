//! How a failed command is reported: `error: <message>` and `hint: ...` lines on stderr, and an
//! exit code (1 runtime failure, 2 usage error).

use std::io::Write as _;
use std::process::ExitCode;

use jvpn::control::ControlError;
use jvpn::keyfile::KeyFileError;
use jvpn::tunnel::TunnelError;

use crate::config::{ConfigError, Origin};

/// Exit code of a runtime failure (permissions, network, key files, a session that ended).
pub(crate) const EXIT_RUNTIME: u8 = 1;
/// Exit code of a usage error (bad flags or config file), as clap uses.
pub(crate) const EXIT_USAGE: u8 = 2;

/// Why `jvpn server`, `jvpn connect`, `jvpn status` or `jvpn netcheck` failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// The flags or the config file are wrong (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A key file is missing, unreadable, too open or malformed.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The tunnel could not start or failed (not root, no /dev/net/tun, address in use, ...).
    #[error(transparent)]
    Tunnel(#[from] TunnelError),
    /// The control socket could not be served or asked.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// `jvpn status` found no running jvpn on any default socket.
    #[error(
        "no jvpn running at {}: start one with `jvpn connect` or `jvpn server`, or pass --control \
         with its socket",
        .tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or ")
    )]
    NotRunning {
        /// The sockets tried.
        tried: Vec<std::path::PathBuf>,
    },
    /// The signal handlers could not be installed.
    #[error("cannot install the SIGINT/SIGTERM handlers: {0}")]
    Signal(std::io::Error),
    /// The async runtime could not start (out of threads or memory).
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The session ended by itself (the peer closed it, or it could not recover in time).
    #[error("the session ended: {reason}")]
    Ended {
        /// The reason of the final transition.
        reason: String,
    },
    /// `connect --wait`: the background tunnel did not become ready.
    #[error(transparent)]
    Wait(#[from] crate::wait::WaitError),
    /// `jvpn netcheck`: no candidate reached the server (the table above says why for each).
    #[error(
        "no transport reached the server: check the address, that the server runs and listens on \
         these transports, and that each side knows the other's public key"
    )]
    Unreachable,
    /// `jvpn demo` failed (its message says why).
    #[error("{0}")]
    Demo(String),
}

impl RunError {
    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) => EXIT_USAGE,
            RunError::Tunnel(e) => e.exit_code(),
            RunError::Wait(e) => e.exit_code(),
            _ => EXIT_RUNTIME,
        }
    }

    /// Extra advice printed after the error.
    pub(crate) fn hints(&self) -> Vec<&'static str> {
        match self {
            RunError::Config(
                ConfigError::Parse { .. }
                | ConfigError::Value {
                    origin: Origin::File(_),
                    ..
                },
            ) => {
                vec!["`jvpn server --help` and `jvpn connect --help` list the config keys"]
            }
            RunError::Ended { .. } => vec![
                "run with -v for details, or read the --audit-log file for the session's history",
            ],
            _ => Vec::new(),
        }
    }
}

/// Prints `error: ...` and the hints to stderr and returns the exit code.
pub(crate) fn report(error: &RunError) -> ExitCode {
    let mut stderr = std::io::stderr().lock();
    // Nothing useful is left to do if stderr itself is gone.
    let _ = writeln!(stderr, "error: {error}");
    for hint in error.hints() {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    ExitCode::from(error.exit_code())
}
