//! `jvpn`, the command-line tool: key management now; client and server commands build on the
//! `jvpn` library facade.
//!
//! Errors print as `error: <message>` on stderr with exit code 1; usage errors exit with 2
//! (clap's convention).

mod cli;
mod genkey;
mod pubkey;

use std::error::Error;
use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), Box<dyn Error>> = match cli.command {
        Command::Genkey(args) => genkey::run(&args).map_err(Into::into),
        Command::Pubkey(args) => pubkey::run(&args).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Nothing useful is left to do if stderr itself is gone.
            let _ = writeln!(std::io::stderr(), "error: {error}");
            ExitCode::FAILURE
        }
    }
}
