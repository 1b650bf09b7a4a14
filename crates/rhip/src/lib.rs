//! The `rhip` command line: `init`, `serve`, `migrate`, `token`, `facility`,
//! `person`, `demo`, `federation`, `reference`, `audit`.
//!
//! Exit status follows the contract: 0 success, 1 runtime failure, 2 bad
//! usage or bad input, with one line on stderr naming the problem.

mod cli;
mod commands;
mod failure;
mod telemetry;
pub mod topology;
pub mod workload;

pub use failure::Failure;

use clap::Parser;
use std::process::ExitCode;

/// Runs the command line and returns the exit status.
pub fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    telemetry::init(cli.command.default_log_level());
    match commands::dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("rhip: {failure}");
            failure.exit_code()
        }
    }
}
