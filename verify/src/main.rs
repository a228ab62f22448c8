//! The `rampart-verify` command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = rampart_verify::cli::Cli::parse();
    rampart_verify::cli::run(cli)
}
