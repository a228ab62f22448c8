//! Evaluation of one call against a compiled policy set (policy spec §4 and §6).

use std::sync::Arc;
use std::time::Instant;

use crate::call::{MAX_COMMAND_BYTES, MAX_FIELD_BYTES, Resolved, ToolCall, param_text, resolve};
use crate::candidates::{Candidates, restrictive_candidates};
use crate::compile::{CompiledCondition, CompiledPolicy, CompiledRule, Engine};
use crate::counter::CallCounter;
use crate::decision::Decision;
use crate::matcher::FieldHits;
use crate::paths::{PathCandidates, path_candidates};
use crate::policy::{Action, AskOptions};
use crate::shell::{ParsedCommand, parse};

/// How a call is evaluated. The engine reads no clock and no environment: everything
/// time- or deployment-dependent comes in here.
#[derive(Clone, Copy, Debug)]
pub struct EvalOptions<'a> {
    /// Now, in milliseconds since the Unix epoch (expiry and `call_count`).
    pub now_ms: i64,
    /// Call counts for `call_count`; without a counter such conditions never hold.
    pub counter: Option<&'a CallCounter>,
    /// A verifier is configured. Without one, `verify` rules act as `watch`.
    pub verifier_configured: bool,
    /// Force the default action to deny (per-agent tokens).
    pub default_deny: bool,
    /// Keep only the policies of this profile (file base name or `embedded:<name>`).
    pub policy_filter: Option<&'a str>,
    /// Resolve symlinks in paths (touches the filesystem; off for pure previews).
    pub resolve_symlinks: bool,
}

impl Default for EvalOptions<'_> {
    fn default() -> Self {
        EvalOptions {
            now_ms: 0,
            counter: None,
            verifier_configured: true,
            default_deny: false,
            policy_filter: None,
            resolve_symlinks: false,
        }
    }
}

/// The readings of a command, matched against every command pattern once.
struct CommandView {
    parsed: ParsedCommand,
    candidates: Candidates,
    /// Slots (normalized text, raw segment) of the executed components.
    executed: Vec<(Option<usize>, Option<usize>)>,
    hits: FieldHits,
    excludable: Vec<u64>,
    quoted: bool,
    /// Hits of the lowercased restrictive patterns on the lowercased readings (only for
    /// commands with an explicit Windows wrapper).
    folded: Option<FieldHits>,
}

impl CommandView {
    fn new(engine: &Engine, command: &str) -> CommandView {
        let parsed = parse(command);
        let candidates = restrictive_candidates(command, &parsed);
        let texts: Vec<&str> = candidates.items.iter().map(|c| c.text.as_str()).collect();
        let hits = engine.commands.hits(&texts);
        let folded = parsed.windows.then(|| {
            let lower: Vec<String> = texts.iter().map(|t| t.to_lowercase()).collect();
            engine.folded.hits(&lower)
        });
        let mut excludable = vec![0u64; texts.len().div_ceil(64).max(1)];
        for (i, c) in candidates.items.iter().enumerate() {
            if c.excludable {
                excludable[i / 64] |= 1 << (i % 64);
            }
        }
        let executed = parsed
            .components
            .iter()
            .zip(&candidates.components)
            .filter(|(c, _)| c.origin != crate::shell::Origin::Restrictive)
            .map(|(_, slots)| *slots)
            .collect();
        CommandView {
            parsed,
            candidates,
            executed,
            hits,
            excludable,
            quoted: command.contains(['\'', '"', '\\']),
            folded,
        }
    }

    fn test(&self, field: Option<u32>, slot: Option<usize>) -> bool {
        matches!((field, slot), (Some(f), Some(i)) if self.hits.test(f, i))
    }

    /// Deny, ask and verify: any reading matching, unless that reading is excluded.
    fn restrictive(&self, f: &crate::compile::CommandFields) -> bool {
        if self.candidates.fail_closed {
            return true;
        }
        if let (Some(hits), Some(fm)) = (&self.folded, f.folded)
            && hits.any(fm)
        {
            return true;
        }
        if let Some(m) = f.matches {
            let pos = self.hits.row(m);
            let fired = match f.not_matches {
                None => pos.iter().any(|&w| w != 0),
                Some(n) => {
                    // Exclusions apply to the readings of single commands. A match of the
                    // whole compound line counts on its own only when no single command
                    // matched, i.e. the match exists only across operators.
                    let neg = self.hits.row(n);
                    let single = pos.iter().zip(&self.excludable).any(|(p, e)| p & e != 0);
                    if single {
                        pos.iter()
                            .zip(neg)
                            .zip(&self.excludable)
                            .any(|((p, n), e)| p & e & !n != 0)
                    } else {
                        pos.iter().any(|&w| w != 0)
                    }
                }
            };
            if fired {
                return true;
            }
        }
        let Some(c) = f.contains else {
            return false;
        };
        let on_line = self.test(Some(c), self.candidates.raw)
            || (self.quoted && self.test(Some(c), self.candidates.normalized));
        if !on_line {
            return false;
        }
        let Some(n) = f.not_matches else {
            return true;
        };
        // The substring may sit in components that are all excluded; a match that only
        // spans operators cannot be excluded.
        let mut containing = self
            .candidates
            .components
            .iter()
            .filter(|(t, r)| self.test(Some(c), *t) || self.test(Some(c), *r))
            .peekable();
        if containing.peek().is_none() {
            return true;
        }
        containing.any(|(t, r)| !self.test(Some(n), *t) && !self.test(Some(n), *r))
    }

    /// Allow, watch and webhook: every executed part covered, nothing excluded.
    fn granting(&self, f: &crate::compile::CommandFields) -> bool {
        let cands = &self.candidates;
        let executed = &self.executed;
        if let Some(n) = f.not_matches {
            let excluded = self.test(Some(n), cands.raw)
                || self.test(Some(n), cands.normalized)
                || executed.iter().any(|(t, _)| self.test(Some(n), *t));
            if excluded {
                return false;
            }
        }
        if executed.is_empty() {
            return false;
        }
        let covered = |(t, r): &(Option<usize>, Option<usize>)| {
            self.test(f.matches, *t) || self.test(f.contains, *t) || self.test(f.contains, *r)
        };
        if !self.parsed.is_composite() {
            return covered(&executed[0]);
        }
        if self.test(f.composite, cands.raw) || self.test(f.composite, cands.normalized) {
            return true;
        }
        executed.iter().all(covered)
    }
}

/// Per-call state: resolved fields, and the command and path readings computed lazily.
struct Call<'a> {
    engine: &'a Engine,
    call: &'a ToolCall,
    fields: Resolved,
    opts: &'a EvalOptions<'a>,
    command: Option<CommandView>,
    path: Option<(PathCandidates, FieldHits)>,
}

impl Call<'_> {
    fn command(&mut self) -> &CommandView {
        if self.command.is_none() {
            self.command = Some(CommandView::new(self.engine, &self.fields.command));
        }
        self.command.as_ref().expect("just set")
    }

    fn paths(&mut self) -> &(PathCandidates, FieldHits) {
        if self.path.is_none() {
            let cands = path_candidates(
                &self.fields.path,
                self.fields.workdir.as_deref(),
                self.opts.resolve_symlinks,
            );
            let hits = self.engine.paths.hits(&cands.items);
            self.path = Some((cands, hits));
        }
        self.path.as_ref().expect("just set")
    }

    fn rule_matches(&mut self, rule: &CompiledRule) -> bool {
        let c = &rule.when;
        if c.always {
            return true;
        }
        if c.response_only {
            return false;
        }
        let restrictive = rule.action.is_restrictive_matcher();
        let mut matched = false;
        if let Some(f) = &c.command {
            if self.fields.command.trim().is_empty() {
                return false;
            }
            let view = self.command();
            let ok = if restrictive {
                view.restrictive(f)
            } else {
                view.granting(f)
            };
            if !ok {
                return false;
            }
            matched = true;
        }
        if !c.env.is_empty() {
            if self.fields.command.trim().is_empty() {
                return false;
            }
            let names = &self.command().parsed.assigned;
            if !names.iter().any(|n| c.env.iter().any(|g| g.is_match(n))) {
                return false;
            }
            matched = true;
        }
        if let Some(p) = &c.path {
            if self.fields.path.is_empty() {
                return false;
            }
            let (cands, hits) = self.paths();
            let pos = |i: usize| hits.test(p.matches, i);
            let neg = |i: usize| p.not_matches.is_some_and(|f| hits.test(f, i));
            let ok = if restrictive {
                let n = cands.items.len();
                (0..n).any(pos) && !(p.not_matches.is_some() && (0..n).all(neg))
            } else {
                let n = cands.primary;
                (0..n).all(pos) && !(0..n).any(neg)
            };
            if !ok {
                return false;
            }
            matched = true;
        }
        if !c.urls.is_empty() {
            let url = &self.fields.url;
            if url.is_empty() || !c.urls.iter().any(|g| g.is_match(url)) {
                return false;
            }
            matched = true;
        }
        if !c.domains.is_empty() {
            let d = &self.fields.domain;
            if d.is_empty() || !c.domains.iter().any(|g| g.is_match(d)) {
                return false;
            }
            matched = true;
        }
        if let Some(d) = &c.depth {
            let v = self.call.agent_depth;
            if d.gte.is_some_and(|g| v < g)
                || d.lte.is_some_and(|l| v > l)
                || d.eq.is_some_and(|e| v != e)
            {
                return false;
            }
            matched = true;
        }
        if !c.params.is_empty() {
            let hit = c.params.iter().any(|(name, glob)| {
                self.call
                    .input
                    .get(name)
                    .is_some_and(|v| glob.is_match(&param_text(v).to_lowercase()))
            });
            if !hit {
                return false;
            }
            matched = true;
        }
        if let Some(cc) = &c.call_count {
            let Some(counter) = self.opts.counter else {
                return false;
            };
            let tool = cc.tool.as_deref().unwrap_or(&self.call.tool);
            let window = cc.window.as_millis() as i64;
            if counter.count(tool, window, self.opts.now_ms) < cc.gte {
                return false;
            }
            matched = true;
        }
        if !session_filters(c, &self.call.session) {
            return false;
        }
        matched || !c.sessions.is_empty()
    }
}

fn session_filters(c: &CompiledCondition, session: &str) -> bool {
    if !c.sessions.is_empty() && !c.sessions.iter().any(|g| g.is_match(session)) {
        return false;
    }
    !c.sessions_not.iter().any(|g| g.is_match(session))
}

fn in_scope(p: &CompiledPolicy, call: &ToolCall) -> bool {
    p.agent.is_match(&call.agent)
        && p.session.is_match(&call.session)
        && (p.tools.is_empty() || p.tools.iter().any(|g| g.is_match(&call.tool)))
}

/// The strongest action so far and the rule that supplied it.
struct Winner<'a> {
    action: Action,
    policy: &'a CompiledPolicy,
    rule: &'a CompiledRule,
    rule_index: usize,
    unconfigured_verify: bool,
}

impl Engine {
    /// Evaluates a call. Pure apart from optional symlink resolution; never panics on
    /// any input.
    pub fn evaluate(&self, call: &ToolCall, opts: &EvalOptions<'_>) -> Decision {
        let start = Instant::now();
        let mut d = self.decide(call, opts);
        d.eval_duration = start.elapsed();
        d
    }

    /// Evaluates a call that is about to run: the call is counted first (when a
    /// `call_count` rule can see it, so the current call counts), then evaluated against the
    /// updated counts. A counter failure denies the call. Consuming a `once` allow
    /// (`Decision::once`) is left to the caller, which owns the policy files.
    pub fn enforce(
        &self,
        call: &ToolCall,
        counter: &mut CallCounter,
        opts: &EvalOptions<'_>,
    ) -> Decision {
        let start = Instant::now();
        if self.counts_calls_of(&call.tool)
            && let Err(e) = counter.record(&call.tool, opts.now_ms)
        {
            let mut d = Decision::new(Action::Deny, format!("call counter: {e}; failing closed"));
            d.eval_duration = start.elapsed();
            return d;
        }
        let opts = EvalOptions {
            counter: Some(counter),
            ..*opts
        };
        let mut d = self.decide(call, &opts);
        d.eval_duration = start.elapsed();
        d
    }

    fn decide(&self, call: &ToolCall, opts: &EvalOptions<'_>) -> Decision {
        let fields = match resolve(call) {
            Ok(f) => f,
            Err(message) => return Decision::new(Action::Deny, message),
        };
        if let Some(message) = self.size_gate(call, &fields) {
            return Decision::new(Action::Deny, message);
        }
        let default = if opts.default_deny {
            Action::Deny
        } else {
            self.default_action
        };
        let scoped: Vec<&CompiledPolicy> = match self.by_tool.get(&call.tool) {
            Some(indices) => indices
                .iter()
                .map(|&i| &self.policies[i])
                .filter(|p| p.agent.is_match(&call.agent) && p.session.is_match(&call.session))
                .collect(),
            None => self.policies.iter().filter(|p| in_scope(p, call)).collect(),
        };
        let mut state = Call {
            engine: self,
            call,
            fields,
            opts,
            command: None,
            path: None,
        };

        let mut durable: Option<(&CompiledPolicy, &CompiledRule)> = None;
        for p in scoped.iter().filter(|p| p.durable) {
            if let Some((_, rule)) = first_rule(&mut state, p, opts.now_ms)
                && rule.action == Action::Allow
            {
                durable = Some((p, rule));
                break;
            }
        }
        let scoped: Vec<&CompiledPolicy> = match opts.policy_filter {
            Some(f) => scoped
                .into_iter()
                .filter(|p| p.profile == f || format!("embedded:{}", p.profile) == f)
                .collect(),
            None => scoped,
        };
        if scoped.is_empty() {
            if let Some((p, r)) = durable {
                return allow_from(p, r);
            }
            return Decision::new(default, "no matching policy; using default action");
        }

        if !state.fields.command.trim().is_empty() && state.command().candidates.fail_closed {
            return Decision::new(
                Action::Deny,
                "command is nested or repeated beyond what can be read safely; failing closed",
            );
        }
        let mut fired: Vec<&Arc<str>> = Vec::new();
        let mut winner: Option<Winner> = None;
        let mut global_fired = false;
        for (pi, p) in scoped.iter().enumerate() {
            let Some((rule_index, rule)) = first_rule(&mut state, p, opts.now_ms) else {
                continue;
            };
            fired.push(&p.name);
            global_fired |= !p.project;
            if rule.action == Action::Deny {
                let mut d = Decision::new(Action::Deny, rule.message.clone());
                d.policy = Some(p.name.clone());
                d.matched_policies = fired.iter().map(|s| Arc::clone(s)).collect();
                d.matched_policies
                    .extend(scoped[pi + 1..].iter().map(|q| Arc::clone(&q.name)));
                d.suggestions = suggestions(call, &state.fields);
                return d;
            }
            let unconfigured = rule.action == Action::Verify && !opts.verifier_configured;
            let action = if unconfigured {
                Action::Watch
            } else {
                rule.action
            };
            if winner
                .as_ref()
                .is_none_or(|w| action.rank() > w.action.rank())
            {
                winner = Some(Winner {
                    action,
                    policy: p,
                    rule,
                    rule_index,
                    unconfigured_verify: unconfigured,
                });
            }
        }

        if let Some((p, r)) = durable {
            let mut d = allow_from(p, r);
            d.matched_policies = fired.iter().map(|s| Arc::clone(s)).collect();
            return d;
        }
        if !global_fired {
            let final_allow = winner.as_ref().is_some_and(|w| w.action == Action::Allow);
            match default {
                Action::Deny => {
                    let mut d = Decision::new(
                        Action::Deny,
                        "project policy cannot weaken global default deny",
                    );
                    d.matched_policies = fired.iter().map(|s| Arc::clone(s)).collect();
                    return d;
                }
                Action::Ask if winner.is_some() => {
                    let mut d = Decision::new(
                        Action::Ask,
                        "project policy cannot weaken global default ask",
                    );
                    d.matched_policies = fired.iter().map(|s| Arc::clone(s)).collect();
                    return d;
                }
                Action::Watch if final_allow => {
                    let mut d = Decision::new(
                        Action::Watch,
                        "project policy cannot weaken global default watch",
                    );
                    d.matched_policies = fired.iter().map(|s| Arc::clone(s)).collect();
                    return d;
                }
                _ => {}
            }
        }
        let Some(w) = winner else {
            return Decision::new(default, "no matching rule; using default action");
        };
        let mut d = Decision::new(w.action, w.rule.message.clone());
        d.policy = Some(w.policy.name.clone());
        d.matched_policies = fired.iter().map(|s| Arc::clone(s)).collect();
        d.verify_unconfigured = w.unconfigured_verify;
        match w.action {
            Action::Ask => d.ask = w.rule.ask,
            Action::Webhook => d.webhook = w.rule.webhook.clone(),
            Action::Verify => d.verify = w.rule.verify.clone(),
            Action::Allow if w.rule.once => {
                d.once = Some((w.policy.name.to_string(), w.rule_index))
            }
            _ => {}
        }
        if w.unconfigured_verify {
            d.verify = w.rule.verify.clone();
        }
        d
    }

    /// Post-call check of a tool's output against `response_matches` rules (policy spec
    /// §4.3). Restrictive actions all become deny (the tool already ran); watch beats allow.
    /// Rust's regex engine runs in linear time, so no per-match timeout is needed.
    pub fn evaluate_response(&self, call: &ToolCall, response: &str) -> Decision {
        let start = Instant::now();
        let mut result = Decision::new(Action::Allow, "no response rule matched");
        let mut rules = self
            .policies
            .iter()
            .filter(|p| in_scope(p, call))
            .flat_map(|p| {
                p.rules
                    .iter()
                    .filter(|r| !r.when.responses.is_empty())
                    .map(move |r| (p, r))
            })
            .peekable();
        if rules.peek().is_some() && response.len() > MAX_COMMAND_BYTES {
            let mut d = Decision::new(
                Action::Deny,
                "response exceeds the 1 MiB matching limit; failing closed",
            );
            d.eval_duration = start.elapsed();
            return d;
        }
        let mut decided_policy: Option<&str> = None;
        for (p, r) in rules {
            if decided_policy == Some(&*p.name) {
                continue;
            }
            let hit = r.when.responses.iter().any(|re| re.is_match(response))
                && !r.when.responses_not.iter().any(|re| re.is_match(response));
            if !hit {
                continue;
            }
            decided_policy = Some(&p.name);
            result.matched_policies.push(p.name.clone());
            match r.action {
                Action::Allow => {}
                Action::Watch => {
                    if result.action == Action::Allow {
                        result.action = Action::Watch;
                        result.message = r.message.clone();
                        result.policy = Some(p.name.clone());
                    }
                }
                _ => {
                    result.action = Action::Deny;
                    result.message = r.message.clone();
                    result.policy = Some(p.name.clone());
                    break;
                }
            }
        }
        result.eval_duration = start.elapsed();
        result
    }

    fn size_gate(&self, call: &ToolCall, f: &Resolved) -> Option<String> {
        if f.command.len() > MAX_COMMAND_BYTES {
            return Some(format!(
                "command exceeds the {MAX_COMMAND_BYTES}-byte policy matching limit; failing closed"
            ));
        }
        let fields = [
            ("agent", call.agent.as_str()),
            ("session", call.session.as_str()),
            ("tool", call.tool.as_str()),
            ("path", f.path.as_str()),
            ("url", f.url.as_str()),
            ("domain", f.domain.as_str()),
        ];
        for (name, value) in fields {
            if value.len() > MAX_FIELD_BYTES {
                return Some(format!(
                    "{name} exceeds the {MAX_FIELD_BYTES}-byte policy matching limit; failing closed"
                ));
            }
        }
        for name in &self.param_names {
            if call
                .input
                .get(name)
                .is_some_and(|v| param_text(v).len() > MAX_FIELD_BYTES)
            {
                return Some(format!(
                    "tool parameter {name} exceeds the {MAX_FIELD_BYTES}-byte policy matching limit; failing closed"
                ));
            }
        }
        None
    }
}

fn first_rule<'p>(
    state: &mut Call<'_>,
    p: &'p CompiledPolicy,
    now_ms: i64,
) -> Option<(usize, &'p CompiledRule)> {
    p.rules
        .iter()
        .enumerate()
        .find(|(_, r)| r.expires_at.is_none_or(|e| e * 1000 > now_ms) && state.rule_matches(r))
}

fn allow_from(p: &CompiledPolicy, r: &CompiledRule) -> Decision {
    let mut d = Decision::new(Action::Allow, r.message.clone());
    d.policy = Some(p.name.clone());
    d.matched_policies = vec![p.name.clone()];
    d.ask = AskOptions::default();
    d
}

/// Ready-to-run commands that would allow a denied call.
fn suggestions(call: &ToolCall, f: &Resolved) -> Vec<String> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    match call.tool.as_str() {
        "exec" if !f.command.is_empty() => vec![format!("rampart allow {}", quote(&f.command))],
        "read" | "write" | "edit" if !f.path.is_empty() => {
            vec![format!(
                "rampart allow --tool {} {}",
                call.tool,
                quote(&f.path)
            )]
        }
        _ => Vec::new(),
    }
}
