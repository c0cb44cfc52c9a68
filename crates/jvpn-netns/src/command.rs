//! Running setup commands (`ip`, `nft`, `tc`, `ethtool`, or anything inside a namespace) with a time
//! bound. Each command runs in its own process group so a timeout kills it and anything it forked, by
//! exact group id.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use std::os::unix::process::CommandExt as _;

use crate::error::NetnsError;
use crate::time::Deadline;

/// Default bound for one setup command.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where system tools live when `PATH` lacks the sbin directories (non-login root shells).
const FALLBACK_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Whether `name` (e.g. `nft`, `ethtool`, `tc`, `iperf3`, `ping`) is an executable in `PATH` or in the
/// usual system directories.
pub fn has_tool(name: &str) -> bool {
    find_tool(name).is_some()
}

/// The absolute path of the executable `name`, searching `PATH` and then the system directories.
pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    let from_env = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    from_env
        .into_iter()
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A system tool by absolute path when found, else the bare name (the spawn error then says it is
/// missing).
pub(crate) fn tool(name: &str) -> Command {
    Command::new(find_tool(name).unwrap_or_else(|| PathBuf::from(name)))
}

/// The command line as a person would type it, for error messages.
pub(crate) fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(shell_word)
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_word(word: &OsStr) -> String {
    let s = word.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` to completion within `timeout`, capturing stdout and stderr; a non-zero exit is not an
/// error here (see [`check`]).
pub(crate) fn output(cmd: &mut Command, timeout: Duration) -> Result<Output, NetnsError> {
    output_with_stdin(cmd, None, timeout)
}

/// Like [`output`], feeding `stdin` to the command (used for `nft -f -`).
pub(crate) fn output_with_stdin(
    cmd: &mut Command,
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<Output, NetnsError> {
    let line = command_line(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd.spawn().map_err(|source| NetnsError::Spawn {
        command: line.clone(),
        source,
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write as _;
        // Scripts are small (well under the pipe buffer); a write error shows up as the
        // command's own failure.
        let _ = pipe.write_all(text.as_bytes());
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Deadline::after(timeout);
    let status = match wait_child(&mut child, &deadline)? {
        Some(status) => status,
        None => {
            kill_group_and_reap(&mut child);
            return Err(NetnsError::CommandTimedOut {
                command: line,
                timeout,
            });
        }
    };
    // A grandchild may keep a pipe open after the command exits; do not wait for it forever.
    let grace = Duration::from_secs(1);
    Ok(Output {
        status,
        stdout: stdout.recv_timeout(grace).unwrap_or_default(),
        stderr: stderr.recv_timeout(grace).unwrap_or_default(),
    })
}

/// Runs `cmd` within `timeout` and turns a non-zero exit into [`NetnsError::CommandFailed`].
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, NetnsError> {
    run_with_stdin(cmd, None, timeout)
}

/// Like [`run`], feeding `stdin` to the command.
pub(crate) fn run_with_stdin(
    cmd: &mut Command,
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<Output, NetnsError> {
    let out = output_with_stdin(cmd, stdin, timeout)?;
    check(cmd, out)
}

/// `Ok(out)` when the command succeeded, else `CommandFailed` with its line, status and stderr.
pub(crate) fn check(cmd: &Command, out: Output) -> Result<Output, NetnsError> {
    if out.status.success() {
        Ok(out)
    } else {
        Err(failed(cmd, &out))
    }
}

pub(crate) fn failed(cmd: &Command, out: &Output) -> NetnsError {
    NetnsError::CommandFailed {
        command: command_line(cmd),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::sync_channel(1);
    if let Some(mut pipe) = pipe {
        let spawned = std::thread::Builder::new()
            .name("jvpn-netns pipe".into())
            .spawn(move || {
                let mut buf = Vec::new();
                // A read error leaves what was read so far; the exit status tells the story.
                let _ = pipe.read_to_end(&mut buf);
                let _ = tx.send(buf);
            });
        // Without a reader thread the output is simply lost; the exit status still counts.
        drop(spawned);
    }
    rx
}

/// Polls the child until it exits or the deadline passes (`Ok(None)`).
pub(crate) fn wait_child(
    child: &mut Child,
    deadline: &Deadline,
) -> Result<Option<ExitStatus>, NetnsError> {
    let mut interval = Duration::from_millis(1);
    loop {
        let expired = deadline.expired();
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) if expired => return Ok(None),
            Ok(None) => {}
            Err(e) => return Err(NetnsError::io(format!("wait for pid {}", child.id()), e)),
        }
        deadline.sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(20));
    }
}

/// SIGKILLs the child's process group (the child leads it: spawned with `process_group(0)`) and
/// reaps the child. The child is not yet reaped, so its id cannot have been reused.
pub(crate) fn kill_group_and_reap(child: &mut Child) {
    signal_group(child.id(), rustix::process::Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends `signal` to the process group led by `pid`; errors (already gone) are ignored.
pub(crate) fn signal_group(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_quotes_words_with_spaces() {
        let mut cmd = Command::new("nft");
        cmd.args(["add", "rule", "a b", "it's"]);
        assert_eq!(command_line(&cmd), r"nft add rule 'a b' 'it'\''s'");
    }

    #[test]
    fn output_captures_stdout_and_stderr() {
        let out = output(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            SETUP_TIMEOUT,
        )
        .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn run_reports_the_command_line_and_stderr_of_a_failure() {
        let err = run(
            Command::new("sh").args(["-c", "echo nope >&2; exit 1"]),
            SETUP_TIMEOUT,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("nope"), "{text}");
    }

    #[test]
    fn a_hanging_command_is_killed_at_its_bound() {
        let err = output(
            Command::new("sh").args(["-c", "sleep 30 & sleep 30"]),
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(matches!(err, NetnsError::CommandTimedOut { .. }), "{err}");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error_naming_it() {
        let err = output(&mut Command::new("/nonexistent/jvpn-tool"), SETUP_TIMEOUT).unwrap_err();
        assert!(matches!(err, NetnsError::Spawn { .. }));
        assert!(err.to_string().contains("/nonexistent/jvpn-tool"));
    }

    #[test]
    fn has_tool_finds_sh_and_not_a_made_up_name() {
        assert!(has_tool("sh"));
        assert!(!has_tool("jvpn-no-such-tool-xyz"));
    }
}
