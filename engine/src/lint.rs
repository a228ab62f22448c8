//! `rampart policy lint`: load errors, plus warnings and advice about policies that load
//! but probably do not do what their author meant (policy spec §11).

use crate::error::LoadError;
use crate::policy::{Action, ActionSpelling, Config, Policy};
use crate::yaml::Mark;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub file: String,
    pub mark: Option<Mark>,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.mark {
            Some(m) => write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file,
                m.line,
                m.col,
                self.severity.as_str(),
                self.message
            ),
            None => write!(
                f,
                "{}: {}: {}",
                self.file,
                self.severity.as_str(),
                self.message
            ),
        }
    }
}

impl From<LoadError> for Finding {
    fn from(e: LoadError) -> Finding {
        Finding {
            severity: Severity::Error,
            file: e.file.clone(),
            mark: e.mark,
            message: match &e.help {
                Some(h) => format!("{} ({h})", e.message),
                None => e.message.clone(),
            },
        }
    }
}

/// Findings about a loaded config (one file).
pub fn lint(config: &Config, file: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |severity, mark: Option<Mark>, message: String| {
        out.push(Finding {
            severity,
            file: file.to_string(),
            mark,
            message,
        })
    };
    match config.default_action {
        None => add(
            Severity::Info,
            None,
            "default_action is not set: calls no rule matches are denied".into(),
        ),
        Some(Action::Allow) => add(
            Severity::Warning,
            None,
            "default_action: allow lets every call no rule matches through".into(),
        ),
        _ => {}
    }
    if config.default_action_spelling == Some(ActionSpelling::RequireApproval) {
        add(
            Severity::Warning,
            None,
            "`require_approval` is a deprecated alias of `ask`".into(),
        );
    }
    if config.default_action_spelling == Some(ActionSpelling::Log) {
        add(
            Severity::Warning,
            None,
            "`log` is deprecated; write `watch`".into(),
        );
    }
    for (pi, p) in config.policies.iter().enumerate() {
        if p.rules.is_empty() {
            add(
                Severity::Warning,
                Some(p.mark),
                format!("policy `{}` has no rules", p.name),
            );
        }
        let mut deny_all_at: Option<usize> = None;
        for (ri, r) in p.rules.iter().enumerate() {
            match r.spelling {
                ActionSpelling::Log => add(
                    Severity::Warning,
                    Some(r.mark),
                    "`log` is deprecated; write `watch`".into(),
                ),
                ActionSpelling::RequireApproval => add(
                    Severity::Warning,
                    Some(r.mark),
                    "`require_approval` is a deprecated alias of `ask`".into(),
                ),
                ActionSpelling::Canonical => {}
            }
            if r.when.is_empty() && !r.when.default {
                add(
                    Severity::Info,
                    Some(r.mark),
                    format!(
                        "rule {} of `{}` has no conditions: it matches every call in scope",
                        ri + 1,
                        p.name
                    ),
                );
            }
            if r.action == Action::Ask {
                add(
                    Severity::Info,
                    Some(r.mark),
                    "ask rules wait for a human: make sure someone watches approvals (rampart approvals)".into(),
                );
            }
            if r.action == Action::Verify {
                add(
                    Severity::Info,
                    Some(r.mark),
                    "verify rules need a configured verifier (--verify-url); without one they act as watch".into(),
                );
            }
            if let Some(at) = deny_all_at {
                add(
                    Severity::Info,
                    Some(r.mark),
                    format!(
                        "rule {} of `{}` is shadowed by the deny-all rule {} before it",
                        ri + 1,
                        p.name,
                        at + 1
                    ),
                );
            } else if r.action == Action::Deny && (r.when.default || r.when.is_empty()) {
                deny_all_at = Some(ri);
            }
        }
        if let Some(q) = config.policies[..pi]
            .iter()
            .find(|q| is_deny_all(q) && covers(q, p))
        {
            add(
                Severity::Info,
                Some(p.mark),
                format!(
                    "policy `{}` is shadowed by the deny-all policy `{}`",
                    p.name, q.name
                ),
            );
        }
    }
    out
}

fn is_deny_all(p: &Policy) -> bool {
    p.enabled
        && p.rules
            .first()
            .is_some_and(|r| r.action == Action::Deny && (r.when.default || r.when.is_empty()))
}

/// `q`'s scope includes every call in `p`'s (approximated: all tools, or the same list).
fn covers(q: &Policy, p: &Policy) -> bool {
    q.priority <= p.priority
        && q.agent.value == "*"
        && q.session.value == "*"
        && (q.tools.is_empty()
            || (!p.tools.is_empty()
                && p.tools
                    .iter()
                    .all(|t| q.tools.iter().any(|u| u.value == t.value))))
}
