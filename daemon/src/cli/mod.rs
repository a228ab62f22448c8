//! Command-line interface: argument definitions and dispatch.

mod approvals;
pub mod audit;
mod check;
mod eval;
mod policy;
mod preload;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for usage errors and policies that fail to load.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "rampart",
    version,
    about = "A firewall for the commands AI agents run",
    long_about = "rampart decides whether a tool call an AI agent makes (a shell command, a file \
read or write, a fetch) may run, using YAML policies compatible with peg/rampart.\n\n\
Try:  rampart check -- rm -rf /\n      rampart check -- git status\n      \
rampart policy show --profile standard"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Evaluate one tool call and print the decision.
    ///
    /// Exit status: 0 allow or watch, 1 deny, 3 ask, 4 verify or webhook, 2 usage or
    /// policy error. A preview: verify and webhook decisions are reported, not carried out.
    Check(check::CheckArgs),
    /// Evaluate tool calls read as JSON Lines from stdin, one decision line out per line in.
    ///
    /// Input lines: {"id"?, "tool"? (default exec), "params"?, "input"?, "command"?,
    /// "path"?, "url"?, "agent"?, "session"?}; other keys are ignored. Output lines:
    /// {"id", "decision", "message", "policy", "matched_policies", "eval_us"}, or
    /// {"id", "error"} for a line that is not a valid call.
    Eval(eval::EvalArgs),
    /// Run policy tests: inline `tests:` of policy files and test suites.
    ///
    /// Prints "N passed, N failed (N total)" and exits 1 on any failure or error.
    Test(test::TestArgs),
    /// Inspect policy files.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Check or read the audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Run the daemon: the preload socket, the HTTP API, approvals and the audit trail.
    Serve(crate::serve::ServeArgs),
    /// List approvals waiting for a human (asks the running daemon).
    Approvals(approvals::ListArgs),
    /// Approve a pending approval: the waiting command runs.
    Approve(approvals::ApproveArgs),
    /// Deny a pending approval: the waiting command is blocked.
    Deny(approvals::ResolveArgs),
    /// Run a command (an agent) under librampart.so: every program it or its descendants
    /// start is decided by the daemon, which is started first when none answers.
    Preload(preload::PreloadArgs),
}

pub fn run(cli: Cli) -> ExitCode {
    let code = match cli.command {
        Command::Check(a) => check::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Test(a) => test::run(a),
        Command::Policy(p) => policy::run(p),
        Command::Serve(a) => match crate::serve::run(a) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("rampart serve: {e:#}");
                1
            }
        },
        Command::Audit(a) => audit::run(a),
        Command::Approvals(a) => report(approvals::list(a)),
        Command::Approve(a) => report(approvals::approve(a)),
        Command::Deny(a) => report(approvals::deny(a)),
        Command::Preload(a) => report(preload::run(a)),
    };
    ExitCode::from(code)
}

fn report(r: anyhow::Result<u8>) -> u8 {
    r.unwrap_or_else(|e| {
        eprintln!("rampart: {e:#}");
        1
    })
}

/// Prints a load error and returns the usage exit code.
fn load_failed(e: &rampart_engine::LoadError) -> u8 {
    eprintln!("rampart: {e}");
    EXIT_USAGE
}
