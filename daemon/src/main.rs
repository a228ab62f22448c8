//! The `rampart` command-line tool.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = rampart_daemon::cli::Cli::parse();
    rampart_daemon::cli::run(cli)
}
