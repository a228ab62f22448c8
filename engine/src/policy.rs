//! The policy model: what a policy file says, after strict decoding and before compilation.

use std::fmt;
use std::time::Duration;

use crate::yaml::Mark;

/// What a rule (or the default) does with a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Allow,
    Watch,
    Ask,
    Webhook,
    Verify,
    Deny,
}

impl Action {
    /// The name reported in decisions (`log` reads as `watch`, `require_approval` as `ask`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Watch => "watch",
            Action::Ask => "ask",
            Action::Webhook => "webhook",
            Action::Verify => "verify",
            Action::Deny => "deny",
        }
    }

    /// Deny, ask and verify look at every reading of a command and fire on any part.
    pub fn is_restrictive_matcher(self) -> bool {
        matches!(self, Action::Deny | Action::Ask | Action::Verify)
    }

    /// Precedence: deny > webhook = verify > ask > watch > allow.
    pub fn rank(self) -> u8 {
        match self {
            Action::Allow => 0,
            Action::Watch => 1,
            Action::Ask => 2,
            Action::Webhook | Action::Verify => 3,
            Action::Deny => 4,
        }
    }

    /// Parses an action as written in a policy file (case-insensitive, trimmed).
    pub fn parse(text: &str) -> Option<(Action, ActionSpelling)> {
        let lower = text.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "allow" => (Action::Allow, ActionSpelling::Canonical),
            "deny" => (Action::Deny, ActionSpelling::Canonical),
            "ask" => (Action::Ask, ActionSpelling::Canonical),
            "watch" => (Action::Watch, ActionSpelling::Canonical),
            "log" => (Action::Watch, ActionSpelling::Log),
            "require_approval" => (Action::Ask, ActionSpelling::RequireApproval),
            "webhook" => (Action::Webhook, ActionSpelling::Canonical),
            "verify" => (Action::Verify, ActionSpelling::Canonical),
            _ => return None,
        })
    }

    pub const NAMES: &'static [&'static str] = &[
        "allow",
        "deny",
        "ask",
        "watch",
        "log",
        "webhook",
        "verify",
        "require_approval",
    ];
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an action was spelled, for lint's deprecation warnings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionSpelling {
    Canonical,
    Log,
    RequireApproval,
}

/// A string value together with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub value: String,
    pub mark: Mark,
}

/// Where a policy came from; decides durable-allow and project-guard behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// The file path (or `embedded:<name>` for built-in profiles).
    pub file: String,
    /// Loaded from a project's `.rampart/policy.yaml`.
    pub project: bool,
}

impl Source {
    /// Policies from `user-overrides.yaml` and `auto-allowed.yaml` hold durable operator allows.
    pub fn is_durable_allow_file(&self) -> bool {
        let base = self.file.rsplit(['/', '\\']).next().unwrap_or("");
        base == "user-overrides.yaml" || base == "auto-allowed.yaml"
    }

    /// The profile name used by `policy_filter`: the file's base name without extension.
    pub fn profile_name(&self) -> &str {
        if let Some(name) = self.file.strip_prefix("embedded:") {
            return name;
        }
        let base = self.file.rsplit(['/', '\\']).next().unwrap_or("");
        base.strip_suffix(".yaml")
            .or_else(|| base.strip_suffix(".yml"))
            .unwrap_or(base)
    }
}

/// A whole policy configuration: one file, or several merged like a directory.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The default action; `None` when no file set one (which means deny).
    pub default_action: Option<Action>,
    pub default_action_spelling: Option<ActionSpelling>,
    pub policies: Vec<Policy>,
    pub notify: Option<Notify>,
    pub tests: Vec<TestCase>,
}

impl Config {
    pub fn effective_default(&self) -> Action {
        self.default_action.unwrap_or(Action::Deny)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Notify {
    pub url: String,
    pub platform: String,
    pub on: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    pub description: String,
    /// Effective priority (0 or absent reads as 100).
    pub priority: i64,
    pub enabled: bool,
    /// Tool globs; empty means every tool.
    pub tools: Vec<Located>,
    pub agent: Located,
    pub session: Located,
    pub rules: Vec<Rule>,
    pub source: Source,
    pub mark: Mark,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub action: Action,
    pub spelling: ActionSpelling,
    pub when: Condition,
    pub message: String,
    pub ask: AskOptions,
    pub webhook: Option<Webhook>,
    pub verify: Option<VerifyOptions>,
    /// Unix seconds after which the rule is skipped.
    pub expires_at: Option<i64>,
    pub once: bool,
    pub mark: Mark,
    /// Keys written on the rule, for lint (e.g. `match`, `reason`).
    pub unknown_hint_keys: Vec<Located>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AskOptions {
    pub audit: bool,
    pub headless_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub timeout: Duration,
    pub fail_open: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    pub timeout: Duration,
    pub fail_open: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            timeout: Duration::from_secs(15),
            fail_open: false,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DepthRange {
    pub gte: Option<i64>,
    pub lte: Option<i64>,
    pub eq: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallCount {
    pub tool: Option<String>,
    pub gte: u32,
    pub window: Duration,
}

/// A rule's `when:` block. Every present field must hold; inside a list any entry may match.
#[derive(Clone, Debug, Default)]
pub struct Condition {
    pub default: bool,
    pub command_matches: Vec<Located>,
    pub command_not_matches: Vec<Located>,
    pub command_contains: Vec<Located>,
    pub command_env_assignments: Vec<Located>,
    pub path_matches: Vec<Located>,
    pub path_not_matches: Vec<Located>,
    pub url_matches: Vec<Located>,
    pub domain_matches: Vec<Located>,
    pub response_matches: Vec<Located>,
    pub response_not_matches: Vec<Located>,
    pub session_matches: Vec<Located>,
    pub session_not_matches: Vec<Located>,
    pub agent_depth: Option<DepthRange>,
    pub tool_param_matches: Vec<(String, Located)>,
    pub call_count: Option<CallCount>,
}

impl Condition {
    /// No field at all: the rule matches every call in scope.
    pub fn is_empty(&self) -> bool {
        !self.default
            && self.command_matches.is_empty()
            && self.command_not_matches.is_empty()
            && self.command_contains.is_empty()
            && self.command_env_assignments.is_empty()
            && self.path_matches.is_empty()
            && self.path_not_matches.is_empty()
            && self.url_matches.is_empty()
            && self.domain_matches.is_empty()
            && self.response_matches.is_empty()
            && self.response_not_matches.is_empty()
            && self.session_matches.is_empty()
            && self.session_not_matches.is_empty()
            && self.agent_depth.is_none()
            && self.tool_param_matches.is_empty()
            && self.call_count.is_none()
    }

    /// Only response fields: such a rule never fires before the call.
    pub fn is_response_only(&self) -> bool {
        (!self.response_matches.is_empty() || !self.response_not_matches.is_empty())
            && Condition {
                response_matches: Vec::new(),
                response_not_matches: Vec::new(),
                ..self.clone()
            }
            .is_empty()
    }
}

/// One inline or suite test case.
#[derive(Clone, Debug)]
pub struct TestCase {
    pub name: String,
    pub tool: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub expect: Action,
    pub expect_message: Option<String>,
    pub agent: String,
    pub mark: Mark,
    pub file: String,
}
