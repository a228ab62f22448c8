//! Strict decoding of a YAML tree into the policy model.
//!
//! Every unknown key is an error (so a misspelled condition can never quietly become an
//! empty one), every error names file, line and column, and misspelled keys and actions
//! come with a suggestion.

use std::time::Duration;

use super::scalars::{parse_bool, parse_duration, parse_int, parse_timestamp};
use crate::error::{LoadError, did_you_mean};
use crate::glob;
use crate::policy::{
    Action, ActionSpelling, AskOptions, CallCount, Condition, Config, DepthRange, Located, Notify,
    Policy, Rule, Source, TestCase, VerifyOptions, Webhook,
};
use crate::yaml::{Mark, Node, NodeKind};

const TOP_KEYS: &[&str] = &["version", "default_action", "policies", "notify", "tests"];
const POLICY_KEYS: &[&str] = &[
    "name",
    "description",
    "priority",
    "enabled",
    "match",
    "rules",
];
const MATCH_KEYS: &[&str] = &["tool", "agent", "session"];
const RULE_KEYS: &[&str] = &[
    "action",
    "when",
    "message",
    "ask",
    "webhook",
    "verify",
    "expires_at",
    "once",
    "added",
];
pub const CONDITION_KEYS: &[&str] = &[
    "command_matches",
    "command_not_matches",
    "command_contains",
    "command_env_assignments",
    "path_matches",
    "path_not_matches",
    "url_matches",
    "domain_matches",
    "response_matches",
    "response_not_matches",
    "session_matches",
    "session_not_matches",
    "agent_depth",
    "tool_param_matches",
    "call_count",
    "default",
];
const TEST_KEYS: &[&str] = &[
    "name",
    "tool",
    "params",
    "expect",
    "expect_message",
    "agent",
];

/// Longest `response_matches` regex accepted.
const MAX_RESPONSE_REGEX: usize = 500;
const WEBHOOK_TIMEOUT_CAP: Duration = Duration::from_secs(30);
const VERIFY_TIMEOUT_CAP: Duration = Duration::from_secs(30);
const MAX_CALL_COUNT: i64 = 1000;
const MAX_CALL_WINDOW: Duration = Duration::from_secs(720 * 3600);

pub struct Decoder<'a> {
    pub file: &'a str,
    pub source: Source,
    /// Keys allowed at the top level besides the policy-file keys (suite files).
    pub extra_top_keys: &'a [&'a str],
}

type Result<T> = std::result::Result<T, LoadError>;

impl Decoder<'_> {
    fn err(&self, mark: Mark, message: impl Into<String>) -> LoadError {
        LoadError::at(self.file, mark, message)
    }

    fn map<'n>(&self, node: &'n Node, what: &str) -> Result<&'n [(Node, Node)]> {
        match &node.kind {
            NodeKind::Map(pairs) => Ok(pairs),
            _ if node.is_null() => Ok(&[]),
            _ => Err(self.err(
                node.mark,
                format!("{what} must be a mapping, found {}", node.kind_name()),
            )),
        }
    }

    /// Iterates a mapping's string keys, refusing keys outside `allowed`.
    fn keys<'n>(
        &self,
        pairs: &'n [(Node, Node)],
        allowed: &[&str],
        extra: &[&str],
        context: &str,
    ) -> Result<Vec<(&'n str, &'n Node, Mark)>> {
        let mut out = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let NodeKind::Scalar { text, .. } = &k.kind else {
                return Err(self.err(k.mark, format!("{context} keys must be strings")));
            };
            if !allowed.contains(&text.as_str()) && !extra.contains(&text.as_str()) {
                return Err(self.unknown_key(text, k.mark, allowed, extra, context));
            }
            out.push((text.as_str(), v, k.mark));
        }
        Ok(out)
    }

    fn unknown_key(
        &self,
        key: &str,
        mark: Mark,
        allowed: &[&str],
        extra: &[&str],
        context: &str,
    ) -> LoadError {
        let err = self.err(mark, format!("unknown key `{key}` in {context}"));
        let special: Option<String> = match (context, key) {
            ("a rule", "match") => Some("did you mean `when`? (`match` scopes a policy)".into()),
            ("a rule", "reason") => Some("did you mean `message`?".into()),
            ("a policy", "action") => {
                Some("`action` belongs on a rule: put it under `rules: - action: ...`".into())
            }
            ("a policy", "when") => {
                Some("`when` belongs on a rule: put it under `rules: - when: ...`".into())
            }
            _ => None,
        };
        if let Some(help) = special {
            return err.with_help(help);
        }
        let all: Vec<&str> = allowed.iter().chain(extra).copied().collect();
        match did_you_mean(key, &all) {
            Some(s) => err.with_help(format!("did you mean `{s}`?")),
            None => err.with_help(format!("expected one of: {}", all.join(", "))),
        }
    }

    fn string(&self, node: &Node, what: &str) -> Result<String> {
        match &node.kind {
            _ if node.is_null() => Ok(String::new()),
            NodeKind::Scalar { text, .. } => Ok(text.clone()),
            _ => Err(self.err(
                node.mark,
                format!("{what} must be a string, found {}", node.kind_name()),
            )),
        }
    }

    fn bool(&self, node: &Node, what: &str) -> Result<bool> {
        match &node.kind {
            NodeKind::Scalar { text, .. } => parse_bool(text).ok_or_else(|| {
                self.err(
                    node.mark,
                    format!("{what} must be true or false, found `{text}`"),
                )
            }),
            _ => Err(self.err(node.mark, format!("{what} must be true or false"))),
        }
    }

    fn int(&self, node: &Node, what: &str) -> Result<i64> {
        match &node.kind {
            NodeKind::Scalar { text, .. } => parse_int(text).ok_or_else(|| {
                self.err(
                    node.mark,
                    format!("{what} must be an integer, found `{text}`"),
                )
            }),
            _ => Err(self.err(node.mark, format!("{what} must be an integer"))),
        }
    }

    fn duration(&self, node: &Node, what: &str) -> Result<Duration> {
        let text = self.string(node, what)?;
        parse_duration(&text).ok_or_else(|| {
            self.err(node.mark, format!("{what} `{text}` is not a duration"))
                .with_help("write it like 90s, 5m or 1h30m")
        })
    }

    fn located(&self, node: &Node, what: &str) -> Result<Located> {
        Ok(Located {
            value: self.string(node, what)?,
            mark: node.mark,
        })
    }

    fn string_list(&self, node: &Node, what: &str) -> Result<Vec<Located>> {
        match &node.kind {
            _ if node.is_null() => Ok(Vec::new()),
            NodeKind::Seq(items) => items.iter().map(|i| self.located(i, what)).collect(),
            _ => Err(self
                .err(
                    node.mark,
                    format!(
                        "{what} must be a list of strings, found {}",
                        node.kind_name()
                    ),
                )
                .with_help(format!("write it as a list: {what}: [\"...\"]"))),
        }
    }

    fn globs(&self, node: &Node, what: &str) -> Result<Vec<Located>> {
        let list = self.string_list(node, what)?;
        for item in &list {
            self.check_glob(item, what)?;
        }
        Ok(list)
    }

    fn check_glob(&self, item: &Located, what: &str) -> Result<()> {
        glob::validate(&item.value)
            .map_err(|e| self.err(item.mark, format!("bad pattern in {what}: {e}")))
    }

    fn action(&self, node: &Node, what: &str) -> Result<(Action, ActionSpelling)> {
        let text = self.string(node, what)?;
        Action::parse(&text).ok_or_else(|| {
            let err = self.err(node.mark, format!("unknown action `{text}` in {what}"));
            let lower = text.trim().to_ascii_lowercase();
            const SYNONYMS: &[(&str, &str)] = &[
                ("block", "deny"),
                ("reject", "deny"),
                ("forbid", "deny"),
                ("permit", "allow"),
                ("accept", "allow"),
                ("approve", "ask"),
                ("prompt", "ask"),
                ("confirm", "ask"),
                ("warn", "watch"),
                ("audit", "watch"),
                ("monitor", "watch"),
            ];
            let words: Vec<&str> = Action::NAMES
                .iter()
                .copied()
                .chain(SYNONYMS.iter().map(|(w, _)| *w))
                .collect();
            let hint = did_you_mean(&lower, &words).map(|w| {
                SYNONYMS
                    .iter()
                    .find(|(s, _)| *s == w)
                    .map_or(w, |(_, a)| *a)
            });
            match hint {
                Some(h) => err.with_help(format!("did you mean `{h}`?")),
                None => err.with_help(format!("actions are: {}", Action::NAMES.join(", "))),
            }
        })
    }

    /// Decodes a whole file (a policy file or a test suite).
    pub fn config(&self, root: Option<&Node>) -> Result<(Config, Option<Located>)> {
        let mut config = Config::default();
        let mut suite_policy = None;
        let Some(root) = root else {
            return Ok((config, None));
        };
        let pairs = self.map(root, "the file")?;
        for (key, value, _) in self.keys(pairs, TOP_KEYS, self.extra_top_keys, "the file")? {
            match key {
                "version" => {
                    let v = self.string(value, "version")?;
                    if !matches!(v.trim(), "" | "1") {
                        return Err(self
                            .err(value.mark, format!("unsupported version `{v}`"))
                            .with_help("the only version is \"1\""));
                    }
                }
                "default_action" => {
                    let text = self.string(value, "default_action")?;
                    if text.trim().is_empty() {
                        continue;
                    }
                    let (action, spelling) = self.action(value, "default_action")?;
                    if matches!(action, Action::Webhook | Action::Verify) {
                        return Err(self
                            .err(value.mark, format!("default_action cannot be `{action}`"))
                            .with_help("use allow, deny, ask or watch"));
                    }
                    config.default_action = Some(action);
                    config.default_action_spelling = Some(spelling);
                }
                "policies" => {
                    let NodeKind::Seq(items) = &value.kind else {
                        if value.is_null() {
                            continue;
                        }
                        return Err(self.err(value.mark, "policies must be a list"));
                    };
                    for item in items {
                        let policy = self.policy(item)?;
                        if let Some(prev) = config.policies.iter().find(|p| p.name == policy.name) {
                            return Err(self
                                .err(
                                    policy.mark,
                                    format!("duplicate policy name `{}`", policy.name),
                                )
                                .with_help(format!(
                                    "first defined at line {}; policy names must be unique",
                                    prev.mark.line
                                )));
                        }
                        config.policies.push(policy);
                    }
                }
                "notify" => config.notify = Some(self.notify(value)?),
                "tests" => {
                    let NodeKind::Seq(items) = &value.kind else {
                        if value.is_null() {
                            continue;
                        }
                        return Err(self.err(value.mark, "tests must be a list"));
                    };
                    for item in items {
                        config.tests.push(self.test_case(item)?);
                    }
                }
                "policy" => suite_policy = Some(self.located(value, "policy")?),
                _ => unreachable!("keys() filters"),
            }
        }
        Ok((config, suite_policy))
    }

    fn notify(&self, node: &Node) -> Result<Notify> {
        let pairs = self.map(node, "notify")?;
        let mut n = Notify::default();
        for (key, value, _) in self.keys(pairs, &["url", "platform", "on"], &[], "notify")? {
            match key {
                "url" => n.url = self.string(value, "notify.url")?,
                "platform" => {
                    n.platform = self.string(value, "notify.platform")?;
                    let p = n.platform.trim().to_ascii_lowercase();
                    let known = [
                        "", "auto", "slack", "discord", "teams", "webhook", "openclaw",
                    ];
                    if !known.contains(&p.as_str()) {
                        return Err(self
                            .err(
                                value.mark,
                                format!("unknown notify platform `{}`", n.platform),
                            )
                            .with_help("platforms are auto, slack, discord, teams, webhook"));
                    }
                }
                "on" => {
                    for item in self.string_list(value, "notify.on")? {
                        let v = item.value.trim().to_ascii_lowercase();
                        if !["deny", "watch", "ask", "log", "require_approval"]
                            .contains(&v.as_str())
                        {
                            return Err(self
                                .err(item.mark, format!("unknown notify event `{}`", item.value))
                                .with_help("events are deny, watch, ask"));
                        }
                        n.on.push(item.value);
                    }
                }
                _ => unreachable!(),
            }
        }
        Ok(n)
    }

    fn policy(&self, node: &Node) -> Result<Policy> {
        let pairs = self.map(node, "a policy")?;
        let mut policy = Policy {
            name: String::new(),
            description: String::new(),
            priority: 100,
            enabled: true,
            tools: Vec::new(),
            agent: Located {
                value: "*".into(),
                mark: node.mark,
            },
            session: Located {
                value: "*".into(),
                mark: node.mark,
            },
            rules: Vec::new(),
            source: self.source.clone(),
            mark: node.mark,
        };
        for (key, value, _) in self.keys(pairs, POLICY_KEYS, &[], "a policy")? {
            match key {
                "name" => policy.name = self.string(value, "name")?,
                "description" => policy.description = self.string(value, "description")?,
                "priority" => {
                    let p = self.int(value, "priority")?;
                    policy.priority = if p == 0 { 100 } else { p };
                }
                "enabled" => policy.enabled = self.bool(value, "enabled")?,
                "match" => self.policy_match(value, &mut policy)?,
                "rules" => {
                    let NodeKind::Seq(items) = &value.kind else {
                        if value.is_null() {
                            continue;
                        }
                        return Err(self.err(value.mark, "rules must be a list"));
                    };
                    for item in items {
                        policy.rules.push(self.rule(item)?);
                    }
                }
                _ => unreachable!(),
            }
        }
        if policy.name.trim().is_empty() {
            return Err(self
                .err(node.mark, "policy has no name")
                .with_help("every policy needs a unique `name:`"));
        }
        Ok(policy)
    }

    fn policy_match(&self, node: &Node, policy: &mut Policy) -> Result<()> {
        let pairs = self.map(node, "match")?;
        for (key, value, _) in self.keys(pairs, MATCH_KEYS, &[], "match")? {
            match key {
                "tool" => {
                    policy.tools = match &value.kind {
                        NodeKind::Scalar { .. } if value.is_null() => Vec::new(),
                        NodeKind::Scalar { .. } => vec![self.located(value, "match.tool")?],
                        _ => self.string_list(value, "match.tool")?,
                    };
                    policy.tools.retain(|t| !t.value.is_empty());
                    for t in &policy.tools {
                        self.check_glob(t, "match.tool")?;
                    }
                }
                "agent" | "session" => {
                    let mut v = self.located(value, &format!("match.{key}"))?;
                    if v.value.is_empty() {
                        v.value = "*".into();
                    }
                    self.check_glob(&v, &format!("match.{key}"))?;
                    if key == "agent" {
                        policy.agent = v;
                    } else {
                        policy.session = v;
                    }
                }
                _ => unreachable!(),
            }
        }
        Ok(())
    }

    fn rule(&self, node: &Node) -> Result<Rule> {
        let pairs = self.map(node, "a rule")?;
        let mut action = None;
        let mut rule = Rule {
            action: Action::Deny,
            spelling: ActionSpelling::Canonical,
            when: Condition::default(),
            message: String::new(),
            ask: AskOptions::default(),
            webhook: None,
            verify: None,
            expires_at: None,
            once: false,
            mark: node.mark,
            unknown_hint_keys: Vec::new(),
        };
        let mut webhook_node = None;
        let mut verify_node = None;
        for (key, value, _) in self.keys(pairs, RULE_KEYS, &[], "a rule")? {
            match key {
                "action" => action = Some((self.action(value, "the rule's action")?, value.mark)),
                "when" => rule.when = self.condition(value)?,
                "message" => rule.message = self.string(value, "message")?,
                "ask" => {
                    let pairs = self.map(value, "ask")?;
                    for (k, v, _) in self.keys(pairs, &["audit", "headless_only"], &[], "ask")? {
                        let b = self.bool(v, &format!("ask.{k}"))?;
                        if k == "audit" {
                            rule.ask.audit = b;
                        } else {
                            rule.ask.headless_only = b;
                        }
                    }
                }
                "webhook" => webhook_node = Some(value),
                "verify" => verify_node = Some(value),
                "expires_at" => {
                    let text = self.string(value, "expires_at")?;
                    rule.expires_at = Some(parse_timestamp(&text).ok_or_else(|| {
                        self.err(
                            value.mark,
                            format!("expires_at `{text}` is not a timestamp"),
                        )
                        .with_help("use RFC 3339, e.g. 2026-12-31T23:59:59Z")
                    })?);
                }
                "once" => rule.once = self.bool(value, "once")?,
                "added" => {}
                _ => unreachable!(),
            }
        }
        let Some(((act, spelling), _)) = action else {
            return Err(self
                .err(node.mark, "rule has no action")
                .with_help(format!("add `action:` ({})", Action::NAMES.join(", "))));
        };
        rule.action = act;
        rule.spelling = spelling;
        if let Some(value) = webhook_node {
            rule.webhook = Some(self.webhook(value)?);
        }
        if act == Action::Webhook
            && rule
                .webhook
                .as_ref()
                .is_none_or(|w| w.url.trim().is_empty())
        {
            return Err(self
                .err(node.mark, "a webhook rule needs `webhook: {url: ...}`")
                .with_help("set the URL the decision is delegated to"));
        }
        if let Some(value) = verify_node {
            if act != Action::Verify {
                return Err(self
                    .err(
                        value.mark,
                        format!("a `verify:` block only fits `action: verify`, not `{act}`"),
                    )
                    .with_help("remove the block or change the action to verify"));
            }
            rule.verify = Some(self.verify(value)?);
        }
        if act == Action::Verify && rule.verify.is_none() {
            rule.verify = Some(VerifyOptions::default());
        }
        Ok(rule)
    }

    fn webhook(&self, node: &Node) -> Result<Webhook> {
        let pairs = self.map(node, "webhook")?;
        let mut w = Webhook {
            url: String::new(),
            timeout: Duration::from_secs(5),
            fail_open: false,
        };
        for (k, v, _) in self.keys(pairs, &["url", "timeout", "fail_open"], &[], "webhook")? {
            match k {
                "url" => w.url = self.string(v, "webhook.url")?,
                "timeout" => {
                    w.timeout = self
                        .duration(v, "webhook.timeout")?
                        .min(WEBHOOK_TIMEOUT_CAP)
                }
                "fail_open" => w.fail_open = self.bool(v, "webhook.fail_open")?,
                _ => unreachable!(),
            }
        }
        if w.timeout.is_zero() {
            w.timeout = Duration::from_secs(5);
        }
        Ok(w)
    }

    fn verify(&self, node: &Node) -> Result<VerifyOptions> {
        let pairs = self.map(node, "verify")?;
        let mut o = VerifyOptions::default();
        for (k, v, _) in self.keys(pairs, &["timeout", "fail_open"], &[], "verify")? {
            match k {
                "timeout" => {
                    o.timeout = self.duration(v, "verify.timeout")?.min(VERIFY_TIMEOUT_CAP)
                }
                "fail_open" => o.fail_open = self.bool(v, "verify.fail_open")?,
                _ => unreachable!(),
            }
        }
        if o.timeout.is_zero() {
            o.timeout = VerifyOptions::default().timeout;
        }
        Ok(o)
    }

    fn condition(&self, node: &Node) -> Result<Condition> {
        let pairs = self.map(node, "when")?;
        let mut c = Condition::default();
        for (key, value, _) in self.keys(pairs, CONDITION_KEYS, &[], "a `when` condition")? {
            match key {
                "command_matches" => c.command_matches = self.globs(value, key)?,
                "command_not_matches" => c.command_not_matches = self.globs(value, key)?,
                "command_contains" => {
                    c.command_contains = self.string_list(value, key)?;
                    if let Some(e) = c
                        .command_contains
                        .iter()
                        .find(|e| e.value.trim().is_empty())
                    {
                        return Err(self
                            .err(e.mark, "empty entry in command_contains")
                            .with_help("an empty substring would match every command; remove it"));
                    }
                }
                "command_env_assignments" => c.command_env_assignments = self.globs(value, key)?,
                "path_matches" => c.path_matches = self.globs(value, key)?,
                "path_not_matches" => c.path_not_matches = self.globs(value, key)?,
                "url_matches" => c.url_matches = self.globs(value, key)?,
                "domain_matches" => c.domain_matches = self.globs(value, key)?,
                "session_matches" => c.session_matches = self.globs(value, key)?,
                "session_not_matches" => c.session_not_matches = self.globs(value, key)?,
                "response_matches" => c.response_matches = self.regexes(value, key)?,
                "response_not_matches" => c.response_not_matches = self.regexes(value, key)?,
                "agent_depth" => {
                    let pairs = self.map(value, "agent_depth")?;
                    let mut d = DepthRange::default();
                    for (k, v, _) in self.keys(pairs, &["gte", "lte", "eq"], &[], "agent_depth")? {
                        let n = Some(self.int(v, &format!("agent_depth.{k}"))?);
                        match k {
                            "gte" => d.gte = n,
                            "lte" => d.lte = n,
                            _ => d.eq = n,
                        }
                    }
                    c.agent_depth = Some(d);
                }
                "tool_param_matches" => {
                    let pairs = self.map(value, "tool_param_matches")?;
                    for (k, v) in pairs {
                        let param = self.string(k, "a tool_param_matches key")?;
                        let glob = self.located(v, "tool_param_matches")?;
                        self.check_glob(&glob, "tool_param_matches")?;
                        c.tool_param_matches.push((param, glob));
                    }
                }
                "call_count" => c.call_count = Some(self.call_count(value)?),
                "default" => c.default = self.bool(value, "default")?,
                _ => unreachable!(),
            }
        }
        Ok(c)
    }

    fn regexes(&self, node: &Node, what: &str) -> Result<Vec<Located>> {
        let list = self.string_list(node, what)?;
        for item in &list {
            if item.value.len() > MAX_RESPONSE_REGEX {
                return Err(self.err(
                    item.mark,
                    format!(
                        "{what} pattern is {} chars; the limit is {MAX_RESPONSE_REGEX}",
                        item.value.len()
                    ),
                ));
            }
            if has_nested_quantifier(&item.value) {
                return Err(self
                    .err(item.mark, format!("{what} pattern has a nested quantifier"))
                    .with_help("patterns like (a+)+ are refused; flatten the repetition"));
            }
            if let Err(e) = regex::Regex::new(&item.value) {
                let first = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                return Err(self.err(
                    item.mark,
                    format!("bad regular expression in {what}: {first}"),
                ));
            }
        }
        Ok(list)
    }

    fn call_count(&self, node: &Node) -> Result<CallCount> {
        let pairs = self.map(node, "call_count")?;
        let mut tool = None;
        let mut gte = None;
        let mut window = None;
        for (k, v, _) in self.keys(pairs, &["tool", "gte", "window"], &[], "call_count")? {
            match k {
                "tool" => tool = Some(self.string(v, "call_count.tool")?).filter(|t| !t.is_empty()),
                "gte" => {
                    let n = self.int(v, "call_count.gte")?;
                    if !(0..=MAX_CALL_COUNT).contains(&n) {
                        return Err(self.err(
                            v.mark,
                            format!("call_count.gte must be 0..={MAX_CALL_COUNT}, found {n}"),
                        ));
                    }
                    gte = Some(n as u32);
                }
                "window" => {
                    let w = self.duration(v, "call_count.window")?;
                    if w.is_zero() || w > MAX_CALL_WINDOW {
                        return Err(
                            self.err(v.mark, "call_count.window must be above 0 and at most 720h")
                        );
                    }
                    window = Some(w);
                }
                _ => unreachable!(),
            }
        }
        let (Some(gte), Some(window)) = (gte, window) else {
            return Err(self
                .err(node.mark, "call_count needs both `gte` and `window`")
                .with_help("e.g. call_count: {gte: 100, window: 1h}"));
        };
        Ok(CallCount { tool, gte, window })
    }

    fn test_case(&self, node: &Node) -> Result<TestCase> {
        let pairs = self.map(node, "a test")?;
        let mut name = None;
        let mut tool = None;
        let mut params = serde_json::Map::new();
        let mut expect = None;
        let mut expect_message = None;
        let mut agent = "test".to_string();
        for (key, value, _) in self.keys(pairs, TEST_KEYS, &[], "a test")? {
            match key {
                "name" => name = Some(self.string(value, "name")?),
                "tool" => tool = Some((self.string(value, "tool")?, value.mark)),
                "params" => {
                    let serde_json::Value::Object(map) = to_json(value) else {
                        return Err(self.err(value.mark, "params must be a mapping"));
                    };
                    params = map;
                }
                "expect" => {
                    let text = self.string(value, "expect")?;
                    // Test expectations are case-sensitive, as in the reference.
                    let parsed = Action::NAMES
                        .contains(&text.as_str())
                        .then(|| Action::parse(&text))
                        .flatten();
                    let Some((a, _)) = parsed else {
                        return Err(self
                            .err(value.mark, format!("unknown expect `{text}`"))
                            .with_help(format!("expect one of: {}", Action::NAMES.join(", "))));
                    };
                    expect = Some(a);
                }
                "expect_message" => expect_message = Some(self.string(value, "expect_message")?),
                "agent" => {
                    let a = self.string(value, "agent")?;
                    if !a.is_empty() {
                        agent = a;
                    }
                }
                _ => unreachable!(),
            }
        }
        let name = name.filter(|n| !n.is_empty()).ok_or_else(|| {
            self.err(node.mark, "test has no name")
                .with_help("add `name:`")
        })?;
        let tool = match tool {
            Some((t, _)) if !t.trim().is_empty() => t,
            Some((_, mark)) => {
                return Err(self.err(mark, format!("test `{name}` has an empty tool")));
            }
            None => {
                return Err(self
                    .err(node.mark, format!("test `{name}` has no tool"))
                    .with_help("add `tool: exec` (or read, write, fetch, ...)"));
            }
        };
        let expect = expect.ok_or_else(|| {
            self.err(node.mark, format!("test `{name}` has no expect"))
                .with_help("add `expect: allow` (or deny, ask, watch, verify, webhook)")
        })?;
        Ok(TestCase {
            name,
            tool,
            params,
            expect,
            expect_message,
            agent,
            mark: node.mark,
            file: self.file.to_string(),
        })
    }
}

/// Nested quantifiers such as `(a+)+` or `(a*)*`: a group ending in a quantifier that is
/// itself quantified.
fn has_nested_quantifier(re: &str) -> bool {
    let b = re.as_bytes();
    let mut stack: Vec<bool> = Vec::new(); // per open group: saw a quantifier inside
    let mut i = 0;
    let mut last_closed_had_quant = false;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                i += 2;
                last_closed_had_quant = false;
                continue;
            }
            b'[' => {
                // Skip a character class.
                i += 1;
                if i < b.len() && b[i] == b']' {
                    i += 1;
                }
                while i < b.len() && b[i] != b']' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                last_closed_had_quant = false;
            }
            b'(' => {
                stack.push(false);
                last_closed_had_quant = false;
            }
            b')' => {
                last_closed_had_quant = stack.pop().unwrap_or(false);
            }
            b'*' | b'+' | b'{' => {
                if last_closed_had_quant {
                    return true;
                }
                if let Some(top) = stack.last_mut() {
                    *top = true;
                }
                last_closed_had_quant = false;
            }
            _ => last_closed_had_quant = false,
        }
        i += 1;
    }
    false
}

/// Converts a YAML value to JSON, resolving plain scalars (bool, int, float, null).
pub fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match &node.kind {
        NodeKind::Scalar { text, plain } => {
            if !*plain {
                return Value::String(text.clone());
            }
            if node.is_null() {
                return Value::Null;
            }
            if let Some(b) = match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            } {
                return Value::Bool(b);
            }
            if let Some(n) = parse_int(text).filter(|_| !text.starts_with('+')) {
                return Value::from(n);
            }
            if let Ok(f) = text.parse::<f64>()
                && text.chars().any(|c| c.is_ascii_digit())
                && let Some(n) = serde_json::Number::from_f64(f)
            {
                return Value::Number(n);
            }
            Value::String(text.clone())
        }
        NodeKind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeKind::Map(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    let key = match &k.kind {
                        NodeKind::Scalar { text, .. } => text.clone(),
                        _ => String::new(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::has_nested_quantifier;

    #[test]
    fn nested_quantifiers() {
        assert!(has_nested_quantifier("(a+)+"));
        assert!(has_nested_quantifier("(x*)*y"));
        assert!(!has_nested_quantifier("(ab)+"));
        assert!(!has_nested_quantifier("AKIA[0-9A-Z]{16}"));
        assert!(!has_nested_quantifier(r"\(a+\)+"));
    }
}
