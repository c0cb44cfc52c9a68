//! The command line, as clap types: one struct of arguments per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The `jvpn` command line.
#[derive(Debug, Parser)]
#[command(
    name = "jvpn",
    version,
    about = "jvpn — a VPN session that survives transport changes",
    long_about = "jvpn — a VPN session that survives transport changes.\n\n\
        A jvpn session (keys, session id, inner addresses) outlives the UDP, QUIC or WebSocket \
        transport under it: when the network changes, the session proves who it is on a new path \
        and carries on.\n\n\
        Start by creating a key pair for each side:\n\
        \x20 jvpn genkey -o client.key\n\
        \x20 jvpn pubkey < client.key > client.pub",
    propagate_version = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate a new secret key (base64, WireGuard format)
    #[command(
        long_about = "Generate a new X25519 secret key, printed as one line of base64 \
        (the WireGuard key format).\n\n\
        With -o FILE the key is written atomically to a new file with mode 0600; an existing file \
        is kept unless --force is given. Without -o the key goes to stdout; if stdout is a file, \
        it is first restricted to mode 0600.\n\n\
        Examples:\n\
        \x20 jvpn genkey -o client.key\n\
        \x20 jvpn genkey -o client.key --force      # replace an existing key\n\
        \x20 jvpn genkey > client.key               # stdout file is set to 0600 first\n\
        \x20 jvpn genkey -o client.key && jvpn pubkey < client.key > client.pub"
    )]
    Genkey(GenkeyArgs),
    /// Print the public key of a secret key read on stdin
    #[command(
        long_about = "Read a secret key (one line of base64, as written by `jvpn genkey`) \
        on stdin and print its public key on stdout. Give the public key to the peer; keep the \
        secret key to yourself.\n\n\
        Examples:\n\
        \x20 jvpn pubkey < client.key\n\
        \x20 jvpn pubkey < server.key > server.pub"
    )]
    Pubkey(PubkeyArgs),
}

/// Arguments of `jvpn genkey`.
#[derive(Debug, Args)]
pub(crate) struct GenkeyArgs {
    /// Write the key to FILE (created with mode 0600) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Replace FILE if it exists (its old key is lost)
    #[arg(long, requires = "output")]
    pub(crate) force: bool,
}

/// Arguments of `jvpn pubkey` (none: stdin to stdout).
#[derive(Debug, Args)]
pub(crate) struct PubkeyArgs {}
