//! `jvpn genkey`: create a secret key.

use std::io::{self, IsTerminal as _, Write as _};

use jvpn::keyfile::{self, KeyFileError};
use jvpn_wire::keys::StaticSecret;
use rand::SeedableRng as _;
use rand::rngs::StdRng;

use crate::cli::GenkeyArgs;

/// Why `jvpn genkey` failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GenkeyError {
    /// The OS random number generator failed; nothing was written. Retry; if it persists, the
    /// system's entropy source is broken.
    #[error("cannot get randomness from the operating system: {0}; no key was written")]
    Random(Box<dyn std::error::Error + Send + Sync>),
    /// Writing the key file failed (it exists, or the directory is not writable).
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// Stdout is a file whose mode could not be set to 0600; the key was not written to it.
    #[error(
        "stdout is a file that cannot be restricted to mode 0600 ({0}); the key was not written: \
         use `jvpn genkey -o FILE` instead"
    )]
    StdoutMode(io::Error),
    /// Writing the key to stdout failed (e.g. a closed pipe).
    #[error("cannot write the key to stdout: {0}")]
    Stdout(io::Error),
}

/// Generates a key and writes it to `-o FILE` or stdout.
pub(crate) fn run(args: &GenkeyArgs) -> Result<(), GenkeyError> {
    // A long-term key comes straight from an OS-seeded CSPRNG, used once.
    let mut rng = StdRng::try_from_os_rng().map_err(|e| GenkeyError::Random(e.into()))?;
    let key = StaticSecret::generate(&mut rng);
    match &args.output {
        Some(path) => Ok(keyfile::write_secret_key(path, &key, args.force)?),
        None => print_key(&key),
    }
}

fn print_key(key: &StaticSecret) -> Result<(), GenkeyError> {
    let stdout = io::stdout();
    if stdout.is_terminal() {
        // Best effort: a warning that cannot be shown changes nothing.
        let _ = writeln!(
            io::stderr(),
            "warning: printing a secret key to the terminal; save it with `jvpn genkey -o FILE`"
        );
    }
    restrict_if_file(&stdout).map_err(GenkeyError::StdoutMode)?;
    let mut out = stdout.lock();
    out.write_all(key.to_base64().as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(GenkeyError::Stdout)
}

/// `jvpn genkey > client.key`: the shell created the file with the umask's mode (often 0644), so
/// restrict it before the key goes in. Done on the open descriptor (fstat/fchmod through rustix's
/// safe API), not on a path, so it is the very file stdout writes to. Pipes and terminals are
/// left alone.
#[cfg(unix)]
fn restrict_if_file(stdout: &io::Stdout) -> io::Result<()> {
    use rustix::fs::{FileType, Mode, fchmod, fstat};
    let stat = fstat(stdout)?;
    if FileType::from_raw_mode(stat.st_mode).is_file() {
        fchmod(stdout, Mode::from_raw_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_if_file(_stdout: &io::Stdout) -> io::Result<()> {
    Ok(())
}
