//! Policy tests (`rampart test`): inline `tests:` of policy files and reference-format
//! suites, evaluated without side effects and as if a verifier were configured (D4).

use std::time::Duration;

use crate::call::ToolCall;
use crate::glob::{Dialect, Glob};
use crate::policy::{Action, TestCase};
use crate::{Engine, EvalOptions};

/// The result of one test case.
#[derive(Clone, Debug)]
pub struct TestOutcome {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub passed: bool,
    pub expected: Action,
    pub got: Action,
    pub message: String,
    pub matched_policies: Vec<String>,
    pub eval_duration: Duration,
    /// Why it failed, in words.
    pub failure: Option<String>,
}

/// Runs `tests` against `engine`; `filter` keeps tests whose name matches the glob.
pub fn run_tests(engine: &Engine, tests: &[TestCase], filter: Option<&str>) -> Vec<TestOutcome> {
    let filter = filter.map(|f| {
        Glob::new(
            f,
            Dialect::Command {
                star_crosses_slash: false,
            },
        )
    });
    let opts = EvalOptions {
        verifier_configured: true,
        ..EvalOptions::default()
    };
    tests
        .iter()
        .filter(|t| filter.as_ref().is_none_or(|g| g.is_match(&t.name)))
        .map(|t| {
            let call = ToolCall {
                tool: t.tool.clone(),
                agent: t.agent.clone(),
                params: t.params.clone(),
                ..ToolCall::default()
            };
            let d = engine.evaluate(&call, &opts);
            let mut failure = None;
            if d.action != t.expect {
                failure = Some(format!("expected {}, got {}", t.expect, d.action));
            } else if let Some(want) = &t.expect_message
                && !Glob::new(want, Dialect::Path).is_match(&d.message)
            {
                failure = Some(format!(
                    "expected message matching {want:?}, got {:?}",
                    d.message
                ));
            }
            TestOutcome {
                name: t.name.clone(),
                file: t.file.clone(),
                line: t.mark.line,
                passed: failure.is_none(),
                expected: t.expect,
                got: d.action,
                message: d.message,
                matched_policies: d.matched_policies.iter().map(|p| p.to_string()).collect(),
                eval_duration: d.eval_duration,
                failure,
            }
        })
        .collect()
}
