//! Key files: WireGuard-style, one line of standard base64 holding a 32-byte X25519 key.
//!
//! A secret key file is created atomically with mode 0600 (a temporary file in the same
//! directory, written and synced, then linked into place) and is refused on read when its group
//! or others may read or write it. No error ever contains key material, only the file name, what
//! is wrong and how to fix it.
//!
//! ```no_run
//! # fn demo() -> Result<(), jvpn::keyfile::KeyFileError> {
//! use std::path::Path;
//! let key = jvpn::keyfile::read_secret_key(Path::new("/etc/jvpn/server.key"))?;
//! let public = key.public_key();
//! # Ok(()) }
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use jvpn_wire::KeyError;
use jvpn_wire::keys::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// A key file larger than this is not a key file (a key line is 44 characters).
const MAX_KEY_FILE_LEN: u64 = 1024;

/// What went wrong reading, parsing or writing a key. Messages name the file and the fix and
/// never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The key file does not exist. Check the path, or create a key with `jvpn genkey -o FILE`.
    #[error(
        "key file {} does not exist: check the path, or create a key with `jvpn genkey -o {}`",
        .path.display(), .path.display()
    )]
    NotFound {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The key file exists but could not be read (permissions, a directory, an I/O error).
    #[error(
        "cannot read key file {}: {source}; check that it is a file you own and can read",
        .path.display()
    )]
    Read {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A secret key file may be read or written by the group or by others. Restrict it with
    /// `chmod 600 FILE` (and consider the key leaked if others could read it).
    #[error(
        "key file {} is accessible by group or others (mode {mode:03o}): run `chmod 600 {}` \
         and consider replacing the key if anyone else could read it",
        .path.display(), .path.display()
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file does not hold one base64-encoded 32-byte key. Regenerate it with
    /// `jvpn genkey -o FILE` or restore the right file.
    #[error(
        "key file {} does not hold a key: {problem}; a key file is one line of base64 as written \
         by `jvpn genkey`",
        .path.display()
    )]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong with the content (never the content itself).
        problem: KeyProblem,
    },
    /// Text that should be a secret key (e.g. on stdin) is not one.
    #[error(
        "the input is not a secret key: {problem}; expected one line of base64 as written by \
         `jvpn genkey`"
    )]
    InvalidSecretKey {
        /// What is wrong with the text.
        problem: KeyProblem,
    },
    /// Text that should be a public key is not one. Copy it again from `jvpn pubkey`'s output.
    #[error("not a public key: {problem}; expected one line of base64 as printed by `jvpn pubkey`")]
    InvalidPublicKey {
        /// What is wrong with the text.
        problem: KeyProblem,
    },
    /// Writing would replace an existing key file. Remove it first, choose another path, or
    /// overwrite on purpose (`jvpn genkey --force`): the old key is then lost.
    #[error(
        "key file {} already exists: refusing to overwrite it; choose another path or pass \
         --force to replace it (the old key is lost)",
        .path.display()
    )]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// The key file could not be written (directory missing or not writable, disk full).
    #[error(
        "cannot write key file {}: {source}; check that the directory exists and is writable",
        .path.display()
    )]
    Write {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// What is wrong with the text of a key. Never holds the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The text is not standard base64 (or not UTF-8 text at all).
    #[error("it is not base64")]
    NotBase64,
    /// The text decodes to the wrong number of bytes.
    #[error("it decodes to {got} bytes instead of 32")]
    WrongLength {
        /// The decoded length.
        got: usize,
    },
    /// The text is far longer than a key.
    #[error("it is far longer than a key")]
    TooLong,
}

/// Writes `key` to `path` as a new key file with mode 0600, atomically: readers see either no
/// file or the whole key, never a partial one.
///
/// Refuses to replace an existing file unless `overwrite` is true.
///
/// # Errors
/// [`KeyFileError::Exists`] if the file exists and `overwrite` is false;
/// [`KeyFileError::Write`] if the directory is missing or not writable.
pub fn write_secret_key(
    path: &Path,
    key: &StaticSecret,
    overwrite: bool,
) -> Result<(), KeyFileError> {
    let write_err = |source| KeyFileError::Write {
        path: path.to_owned(),
        source,
    };
    let (tmp_path, mut file) = create_temp_beside(path).map_err(write_err)?;
    // Removes the temporary file on every early return.
    let tmp = TempGuard(&tmp_path);

    // Two writes rather than pushing '\n': growing the zeroizing String would reallocate and
    // leave an unwiped copy of the key behind.
    file.write_all(key.to_base64().as_bytes())
        .map_err(write_err)?;
    file.write_all(b"\n").map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    drop(file);

    if overwrite {
        fs::rename(&tmp_path, path).map_err(write_err)?;
    } else {
        // link(2) fails if the target exists, so "create if absent" is atomic, unlike a check
        // followed by rename.
        match fs::hard_link(&tmp_path, path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(KeyFileError::Exists {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(write_err(e)),
        }
    }
    drop(tmp);
    sync_dir(path);
    Ok(())
}

/// Reads a secret key file, refusing it if group or others may read or write it.
///
/// # Errors
/// [`KeyFileError::NotFound`], [`KeyFileError::Read`], [`KeyFileError::TooOpen`] (with the
/// `chmod 600` fix) or [`KeyFileError::Malformed`].
pub fn read_secret_key(path: &Path) -> Result<StaticSecret, KeyFileError> {
    let file = open_for_read(path)?;
    check_private(path, &file)?;
    let text = read_small(path, file)?;
    StaticSecret::from_base64(&text).map_err(|e| KeyFileError::Malformed {
        path: path.to_owned(),
        problem: problem_of(&text, e),
    })
}

/// Reads a public key file (any permissions: public keys are not secret).
///
/// # Errors
/// [`KeyFileError::NotFound`], [`KeyFileError::Read`] or [`KeyFileError::Malformed`].
pub fn read_public_key(path: &Path) -> Result<PublicKey, KeyFileError> {
    let file = open_for_read(path)?;
    let text = read_small(path, file)?;
    PublicKey::from_base64(&text).map_err(|e| KeyFileError::Malformed {
        path: path.to_owned(),
        problem: problem_of(&text, e),
    })
}

/// Parses a public key from its base64 text (surrounding whitespace ignored).
///
/// # Errors
/// [`KeyFileError::InvalidPublicKey`] saying what is wrong.
pub fn parse_public_key(text: &str) -> Result<PublicKey, KeyFileError> {
    PublicKey::from_base64(text).map_err(|e| KeyFileError::InvalidPublicKey {
        problem: problem_of(text, e),
    })
}

/// Parses a secret key from its base64 text (surrounding whitespace ignored), e.g. read from
/// stdin. The error never contains the text.
///
/// # Errors
/// [`KeyFileError::InvalidSecretKey`] saying what is wrong.
pub fn parse_secret_key(text: &str) -> Result<StaticSecret, KeyFileError> {
    StaticSecret::from_base64(text).map_err(|e| KeyFileError::InvalidSecretKey {
        problem: problem_of(text, e),
    })
}

/// Classifies a rejected key text without revealing it.
fn problem_of(text: &str, error: KeyError) -> KeyProblem {
    if text.len() as u64 > MAX_KEY_FILE_LEN {
        return KeyProblem::TooLong;
    }
    match error {
        KeyError::WrongLength { got } => KeyProblem::WrongLength { got },
        _ => KeyProblem::NotBase64,
    }
}

fn open_for_read(path: &Path) -> Result<File, KeyFileError> {
    File::open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            KeyFileError::NotFound {
                path: path.to_owned(),
            }
        } else {
            KeyFileError::Read {
                path: path.to_owned(),
                source,
            }
        }
    })
}

/// Checks the permissions of the open file (not of the path, which could change meanwhile).
#[cfg(unix)]
fn check_private(path: &Path, file: &File) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = file.metadata().map_err(|source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Windows ACLs are not modelled; the file's directory is expected to be private.
#[cfg(not(unix))]
fn check_private(_path: &Path, _file: &File) -> Result<(), KeyFileError> {
    Ok(())
}

/// Reads at most a little more than [`MAX_KEY_FILE_LEN`] bytes into a buffer wiped on drop.
fn read_small(path: &Path, file: File) -> Result<Zeroizing<String>, KeyFileError> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(64));
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| KeyFileError::Read {
            path: path.to_owned(),
            source,
        })?;
    let malformed = |problem| KeyFileError::Malformed {
        path: path.to_owned(),
        problem,
    };
    if bytes.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(malformed(KeyProblem::TooLong));
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(malformed(KeyProblem::NotBase64)),
    }
}

/// Creates `.NAME.tmp-PID-N` next to `path` with `O_EXCL` and mode 0600, so no other process
/// can open it in between and its content is never visible under the final name half-written.
fn create_temp_beside(path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let pid = std::process::id();
    let mut last_error = None;
    for attempt in 0..16u32 {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{pid}-{attempt}"));
        let tmp_path = dir.join(tmp_name);
        match private_options().open(&tmp_path) {
            Ok(file) => {
                restrict(&file)?;
                return Ok((tmp_path, file));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free temporary file name")))
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// Sets exactly 0600, whatever the umask did to the creation mode.
#[cfg(unix)]
fn restrict(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_file: &File) -> io::Result<()> {
    Ok(())
}

/// Makes the new directory entry durable. Best effort: the key is already complete on disk, and
/// some systems cannot sync a directory.
fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

struct TempGuard<'a>(&'a Path);

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        // The temp file is either already linked into place (then this removes the extra name)
        // or abandoned; either way it must go. A failure leaves a stray 0600 file, nothing worse.
        let _ = fs::remove_file(self.0);
    }
}

#[cfg(all(test, unix))]
mod tests;
