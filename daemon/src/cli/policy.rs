//! `rampart policy lint` and `rampart policy show`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use rampart_engine::lint::{Finding, Severity, lint};
use rampart_engine::load::load_file;
use rampart_engine::policy::{Condition, Located, Policy};

use crate::policy_args::PolicyArgs;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Check policy files: errors (with file:line:column), warnings and advice.
    ///
    /// Exit status: 0 when no file has errors, 1 otherwise.
    Lint(LintArgs),
    /// Print policies, rules and patterns in evaluation order.
    Show(ShowArgs),
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// Policy files to check.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Only print errors and warnings.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    policy: PolicyArgs,
}

pub fn run(cmd: PolicyCommand) -> u8 {
    match cmd {
        PolicyCommand::Lint(a) => run_lint(a),
        PolicyCommand::Show(a) => run_show(a),
    }
}

fn run_lint(a: LintArgs) -> u8 {
    let mut errors = 0;
    let mut warnings = 0;
    for path in &a.files {
        let findings: Vec<Finding> = match load_file(path) {
            Ok(config) => lint(&config, &path.display().to_string()),
            Err(e) => vec![Finding::from(e)],
        };
        for f in &findings {
            match f.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
                Severity::Info if a.quiet => continue,
                Severity::Info => {}
            }
            println!("{f}");
        }
    }
    println!(
        "{} file(s): {errors} error(s), {warnings} warning(s)",
        a.files.len()
    );
    u8::from(errors > 0)
}

fn run_show(a: ShowArgs) -> u8 {
    let config = match a.policy.config() {
        Ok(c) => c,
        Err(e) => return super::load_failed(&e),
    };
    println!("default_action: {}", config.effective_default());
    let mut order: Vec<&Policy> = config.policies.iter().collect();
    order.sort_by_key(|p| p.priority);
    for (i, p) in order.iter().enumerate() {
        let scope = if p.tools.is_empty() {
            "all tools".to_string()
        } else {
            join(&p.tools)
        };
        let state = if p.enabled { "" } else { " (disabled)" };
        println!(
            "\n{}. {} [priority {}; {}]{}",
            i + 1,
            p.name,
            p.priority,
            scope,
            state
        );
        if !p.description.is_empty() {
            println!("   {}", p.description);
        }
        for (ri, r) in p.rules.iter().enumerate() {
            println!("   rule {}: {}{}", ri + 1, r.action, message(&r.message));
            print_condition(&r.when);
        }
    }
    0
}

fn message(m: &str) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(" — {m}")
    }
}

fn join(list: &[Located]) -> String {
    list.iter()
        .map(|l| format!("{:?}", l.value))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_condition(c: &Condition) {
    if c.default || c.is_empty() {
        println!("      always");
        return;
    }
    let fields: [(&str, &[Located]); 13] = [
        ("command_matches", &c.command_matches),
        ("command_not_matches", &c.command_not_matches),
        ("command_contains", &c.command_contains),
        ("command_env_assignments", &c.command_env_assignments),
        ("path_matches", &c.path_matches),
        ("path_not_matches", &c.path_not_matches),
        ("url_matches", &c.url_matches),
        ("domain_matches", &c.domain_matches),
        ("response_matches", &c.response_matches),
        ("response_not_matches", &c.response_not_matches),
        ("session_matches", &c.session_matches),
        ("session_not_matches", &c.session_not_matches),
        ("", &[]),
    ];
    for (name, list) in fields {
        if !list.is_empty() {
            println!("      {name}: {}", join(list));
        }
    }
    for (param, glob) in &c.tool_param_matches {
        println!("      tool_param_matches: {param} = {:?}", glob.value);
    }
    if let Some(d) = &c.agent_depth {
        println!(
            "      agent_depth: gte {:?} lte {:?} eq {:?}",
            d.gte, d.lte, d.eq
        );
    }
    if let Some(cc) = &c.call_count {
        println!(
            "      call_count: tool {} >= {} within {:?}",
            cc.tool.as_deref().unwrap_or("(this tool)"),
            cc.gte,
            cc.window
        );
    }
}
