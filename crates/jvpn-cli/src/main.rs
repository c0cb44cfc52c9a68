//! `jvpn`, the command-line tool: keys (`genkey`, `pubkey`), the VPN itself (`server`,
//! `connect`), its state (`status`), which transports reach a server (`netcheck`) and a
//! self-contained demonstration (`demo`).
//!
//! Errors print as `error: <message>` (with `hint: ...` lines where useful) on stderr. Exit codes:
//! 0 success, 1 runtime failure (permissions, network, key files, a session that ended), 2 usage
//! error (bad flags — clap's convention — or a bad config file).

mod cli;
mod config;
mod connect;
mod demo;
mod failure;
mod genkey;
mod logging;
mod netcheck;
mod pubkey;
mod server;
mod settings;
mod signals;
mod status;
mod values;
mod wait;

use std::error::Error;
use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::failure::RunError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let sync_result: Result<(), Box<dyn Error>> = match cli.command {
        Command::Genkey(args) => genkey::run(&args).map_err(Into::into),
        Command::Pubkey(args) => pubkey::run(&args).map_err(Into::into),
        command => return run_async(command, cli.verbose, cli.quiet),
    };
    match sync_result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Nothing useful is left to do if stderr itself is gone.
            let _ = writeln!(std::io::stderr(), "error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The commands that run the tunnel or talk to it, on a tokio runtime.
fn run_async(command: Command, verbose: u8, quiet: u8) -> ExitCode {
    logging::init(verbose, quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(async move {
            match command {
                Command::Server(args) => server::run(args).await,
                Command::Connect(args) => connect::run(args).await,
                Command::Status(args) => status::run(args).await,
                Command::Netcheck(args) => netcheck::run(args).await,
                Command::Demo(args) => demo::run(args).await.map_err(RunError::Demo),
                Command::Genkey(_) | Command::Pubkey(_) => Ok(()),
            }
        }),
        Err(error) => Err(RunError::Runtime(error)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => failure::report(&error),
    }
}
