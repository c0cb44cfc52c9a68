//! `jvpn connect --wait`: run the tunnel as a background process and return once it is ready.
//!
//! The same binary is started again with the same arguments plus the hidden `--notify-ready`
//! flag, in its own process group (so the terminal's Ctrl-C no longer reaches it), with stdin
//! closed, stdout piped to us and stderr inherited. It prints one line `READY` on stdout once
//! the tunnel is ready; we then exit 0 and leave it running. If it exits first, its own error is
//! already on stderr and we exit with its code; on timeout or Ctrl-C we stop it with SIGTERM
//! (which closes the session and removes the TUN device) and exit 1.

use std::ffi::OsString;
use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::failure::EXIT_RUNTIME;
use crate::signals::Signals;

/// The line the background process prints once the tunnel is ready.
pub(crate) const READY_LINE: &str = "READY";

/// Extra time given to the background process beyond `--wait-timeout`, so that its own, more
/// precise "not ready" error arrives before ours.
const GRACE: Duration = Duration::from_secs(5);

/// How long a background process stopped with SIGTERM may take to close its session.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why `connect --wait` did not leave a ready tunnel behind.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WaitError {
    /// The background process could not be started.
    #[error("cannot start the background tunnel process: {0}")]
    Spawn(std::io::Error),
    /// The background process exited before the tunnel was ready; its error is printed above.
    #[error(
        "the tunnel process exited before the tunnel was ready ({status}); see its error above"
    )]
    Exited {
        /// How it exited.
        status: String,
        /// Its exit code, when it exited normally.
        code: Option<i32>,
    },
    /// The tunnel was not ready in time; the background process was stopped.
    #[error(
        "the tunnel was not ready after {secs} s and was stopped: check the server address and \
         port, that the server runs, and that each side lists the other's public key (or raise \
         --wait-timeout)"
    )]
    Timeout {
        /// The time waited, in seconds.
        secs: u64,
    },
    /// Ctrl-C or SIGTERM arrived while waiting; the background process was stopped.
    #[error("interrupted by {signal} before the tunnel was ready; the tunnel was stopped")]
    Interrupted {
        /// The signal's name.
        signal: &'static str,
    },
    /// Talking to the background process failed.
    #[error("lost contact with the background tunnel process: {0}")]
    Io(std::io::Error),
}

impl WaitError {
    /// The exit code: the background process's own code (1 or 2) when it exited, else 1.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            WaitError::Exited {
                code: Some(code @ 1..=2),
                ..
            } => u8::try_from(*code).unwrap_or(EXIT_RUNTIME),
            _ => EXIT_RUNTIME,
        }
    }
}

/// Starts the tunnel in the background and waits for it to be ready.
pub(crate) async fn run_in_background(timeout: Duration) -> Result<(), WaitError> {
    let mut signals = Signals::install().map_err(WaitError::Io)?;
    let exe = std::env::current_exe().map_err(WaitError::Spawn)?;
    let args = child_args(std::env::args_os().skip(1).collect());
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(WaitError::Spawn)?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| WaitError::Io(std::io::Error::other("the child's stdout is not piped")))?;
    let mut lines = BufReader::new(stdout).lines();

    let outcome = tokio::select! {
        line = lines.next_line() => match line {
            Ok(Some(line)) if line.trim() == READY_LINE => Outcome::Ready,
            // Anything else (or end of output) means the process is on its way out.
            Ok(_) => Outcome::Exited,
            Err(error) => Outcome::Failed(error),
        },
        _ = tokio::time::sleep(timeout + GRACE) => Outcome::TimedOut,
        signal = signals.recv() => Outcome::Interrupted(signal),
    };
    match outcome {
        Outcome::Ready => {
            let pid = child.id().map_or_else(|| "?".to_owned(), |p| p.to_string());
            // The parent's stdout may be closed; the tunnel runs regardless.
            let _ = writeln!(
                std::io::stdout(),
                "tunnel ready; `jvpn connect` keeps running in the background as process {pid} \
                 (stop it with `kill {pid}`; see it with `jvpn status`)"
            );
            Ok(())
        }
        Outcome::Exited => {
            let status = tokio::time::timeout(STOP_TIMEOUT, child.wait()).await;
            match status {
                Ok(Ok(status)) => Err(WaitError::Exited {
                    status: status.to_string(),
                    code: status.code(),
                }),
                Ok(Err(error)) => Err(WaitError::Io(error)),
                Err(_) => {
                    stop(&mut child).await;
                    Err(WaitError::Exited {
                        status: "closed its output".into(),
                        code: None,
                    })
                }
            }
        }
        Outcome::Failed(error) => {
            stop(&mut child).await;
            Err(WaitError::Io(error))
        }
        Outcome::TimedOut => {
            stop(&mut child).await;
            Err(WaitError::Timeout {
                secs: timeout.as_secs(),
            })
        }
        Outcome::Interrupted(signal) => {
            stop(&mut child).await;
            Err(WaitError::Interrupted { signal })
        }
    }
}

enum Outcome {
    Ready,
    Exited,
    Failed(std::io::Error),
    TimedOut,
    Interrupted(&'static str),
}

/// The background process's arguments: ours with `--notify-ready` right after the subcommand.
///
/// Only the value-less global flags (`-v`, `-q`) can precede the subcommand, so it is the first
/// argument that is not a flag. Inserting there (rather than appending) keeps the flag out of
/// anything after a `--`.
pub(crate) fn child_args(mut args: Vec<OsString>) -> Vec<OsString> {
    let at = args
        .iter()
        .position(|a| !a.to_string_lossy().starts_with('-'))
        .map_or(args.len(), |i| i + 1);
    args.insert(at, OsString::from("--notify-ready"));
    args
}

/// Stops the background process: SIGTERM for a clean close, SIGKILL if it does not exit in time.
async fn stop(child: &mut Child) {
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        // It may have exited meanwhile; then there is nothing to stop.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn notify_flag_goes_right_after_the_subcommand() {
        let args = strings(&["-v", "connect", "--wait", "--", "host"]);

        let child = child_args(args);

        assert_eq!(
            child,
            strings(&["-v", "connect", "--notify-ready", "--wait", "--", "host"])
        );
    }

    #[test]
    fn exit_code_of_an_exited_child_is_passed_on_when_it_is_a_jvpn_code() {
        let usage = WaitError::Exited {
            status: "exit status: 2".into(),
            code: Some(2),
        };
        let killed = WaitError::Exited {
            status: "signal: 9".into(),
            code: None,
        };

        assert_eq!(usage.exit_code(), 2);
        assert_eq!(killed.exit_code(), 1);
        assert_eq!(WaitError::Timeout { secs: 30 }.exit_code(), 1);
    }
}
