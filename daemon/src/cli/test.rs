//! `rampart test`: policy tests and suites.

use std::path::{Path, PathBuf};

use clap::Args;
use rampart_engine::load::{load_file, parse_suite};
use rampart_engine::policy::{Config, TestCase};
use rampart_engine::profiles::load_profile;
use rampart_engine::testing::{TestOutcome, run_tests};
use rampart_engine::{Engine, LoadError};
use serde_json::json;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  rampart test my-policy.yaml          # the file's inline tests\n  rampart test suite.yaml              # a suite naming `policy: ...`\n  rampart test --profile standard      # a built-in profile's tests\n  rampart test --config p.yaml suite.yaml --run 'ssh*' --verbose"
)]
pub struct TestArgs {
    /// Suites or policy files with inline tests [default: rampart-tests.yaml, then
    /// rampart.yaml].
    #[arg(value_name = "SUITE_OR_POLICY")]
    files: Vec<PathBuf>,
    /// Policy to test against, overriding a suite's `policy:`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run the inline tests of a built-in profile.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Only run tests whose name matches this glob.
    #[arg(long, value_name = "GLOB")]
    run: Option<String>,
    /// Show message, matched policies and evaluation time of every test.
    #[arg(long, short)]
    verbose: bool,
    /// Print {passed, failed, errors, total, tests[]} as JSON.
    #[arg(long)]
    json: bool,
}

/// One unit of work: tests and the engine they run against.
struct Job {
    engine: Engine,
    tests: Vec<TestCase>,
}

pub fn run(a: TestArgs) -> u8 {
    let mut jobs = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    if let Some(p) = &a.profile {
        match load_profile(p) {
            Ok(c) => jobs.push(Job {
                tests: c.tests.clone(),
                engine: Engine::new(c),
            }),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let mut files = a.files.clone();
    if files.is_empty() && a.profile.is_none() {
        match ["rampart-tests.yaml", "rampart.yaml"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        {
            Some(p) => files.push(p),
            None => {
                eprintln!(
                    "rampart: no test file given and no rampart-tests.yaml or rampart.yaml here"
                );
                return super::EXIT_USAGE;
            }
        }
    }
    for file in &files {
        match job_for(file, a.config.as_deref()) {
            Ok(job) => jobs.push(job),
            Err(e) => errors.push(e),
        }
    }
    let mut outcomes: Vec<TestOutcome> = Vec::new();
    for job in &jobs {
        outcomes.extend(run_tests(&job.engine, &job.tests, a.run.as_deref()));
    }
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let failed = outcomes.len() - passed;
    if a.json {
        let tests: Vec<_> = outcomes
            .iter()
            .map(|o| {
                json!({
                    "name": o.name, "file": o.file, "line": o.line, "passed": o.passed,
                    "expected": o.expected.as_str(), "got": o.got.as_str(), "message": o.message,
                    "matched_policies": o.matched_policies,
                    "eval_us": o.eval_duration.as_secs_f64() * 1e6, "failure": o.failure,
                })
            })
            .collect();
        let out = json!({
            "passed": passed, "failed": failed, "errors": errors,
            "total": outcomes.len(), "tests": tests,
        });
        println!("{out}");
    } else {
        for e in &errors {
            println!("ERROR {e}");
        }
        for o in &outcomes {
            if !o.passed {
                println!(
                    "FAIL  {} ({}:{}): {}",
                    o.name,
                    o.file,
                    o.line,
                    o.failure.as_deref().unwrap_or("")
                );
            } else if a.verbose {
                println!("ok    {}", o.name);
            }
            if a.verbose {
                println!(
                    "      {} — {:?} [{}] {:.1}µs",
                    o.got,
                    o.message,
                    o.matched_policies.join(", "),
                    o.eval_duration.as_secs_f64() * 1e6
                );
            }
        }
        println!(
            "{passed} passed, {failed} failed ({} total)",
            outcomes.len()
        );
    }
    u8::from(failed > 0 || !errors.is_empty())
}

fn job_for(file: &Path, config_override: Option<&Path>) -> Result<Job, String> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let (suite, policy_ref) = parse_suite(&text, &name).map_err(|e| e.to_string())?;
    let target: Option<PathBuf> = match (config_override, &policy_ref) {
        (Some(c), _) => Some(c.to_path_buf()),
        (None, Some(p)) if !p.value.trim().is_empty() => Some(resolve_relative(file, &p.value)),
        _ => None,
    };
    let engine_config: Config = match target {
        Some(path) => load_file(&path).map_err(|e: LoadError| e.to_string())?,
        None if !suite.policies.is_empty() || suite.default_action.is_some() => suite.clone(),
        None => {
            return Err(format!(
                "{name}: no policy to test against (set policy: or --config)"
            ));
        }
    };
    Ok(Job {
        engine: Engine::new(engine_config),
        tests: suite.tests,
    })
}

/// `~/` expands to the home directory; a relative path resolves against the suite's folder.
fn resolve_relative(suite: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let path = PathBuf::from(p);
    if path.is_absolute() {
        path
    } else {
        suite.parent().unwrap_or(Path::new(".")).join(path)
    }
}
