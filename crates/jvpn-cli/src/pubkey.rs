//! `jvpn pubkey`: secret key on stdin, public key on stdout.

use std::io::{self, Read as _, Write as _};

use jvpn::keyfile::{self, KeyFileError, KeyProblem};
use zeroize::Zeroizing;

use crate::cli::PubkeyArgs;

/// More than this on stdin is not a key (a key line is 45 bytes).
const MAX_INPUT: u64 = 4096;

/// Why `jvpn pubkey` failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PubkeyError {
    /// Stdin could not be read.
    #[error("cannot read the secret key from stdin: {0}")]
    Stdin(io::Error),
    /// Stdin does not hold a secret key (the message never shows the input).
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// Writing the public key to stdout failed (e.g. a closed pipe).
    #[error("cannot write the public key to stdout: {0}")]
    Stdout(io::Error),
}

/// Reads a secret key on stdin and prints its public key.
pub(crate) fn run(_args: &PubkeyArgs) -> Result<(), PubkeyError> {
    let mut input = Zeroizing::new(Vec::with_capacity(64));
    io::stdin()
        .lock()
        .take(MAX_INPUT)
        .read_to_end(&mut input)
        .map_err(PubkeyError::Stdin)?;
    let text = std::str::from_utf8(&input).map_err(|_| KeyFileError::InvalidSecretKey {
        problem: KeyProblem::NotBase64,
    })?;
    let secret = keyfile::parse_secret_key(text)?;

    let mut out = io::stdout().lock();
    writeln!(out, "{}", secret.public_key())
        .and_then(|()| out.flush())
        .map_err(PubkeyError::Stdout)
}
