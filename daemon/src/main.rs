//! The `rampart` command-line tool.

use std::process::ExitCode;

use clap::Parser;

// A socket decision makes about a hundred short-lived allocations on a decider thread;
// mimalloc's thread-local free lists cut the daemon's user CPU per decision by about a
// tenth against glibc's malloc. Built without transparent huge pages (`no_thp`): with them
// its arenas' first touches cost ~20 MB of resident memory (spec budget: 30 MB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = rampart_daemon::cli::Cli::parse();
    rampart_daemon::cli::run(cli)
}
