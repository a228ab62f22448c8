//! A policy configuration compiled for evaluation: every pattern compiled once, policies
//! sorted by priority, every rule field registered in one [`PatternIndex`] per subject
//! kind (commands, paths).

use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;

use crate::glob::{Dialect, Glob};
use crate::matcher::{FieldId, FieldKind, IndexBuilder, PatternIndex};
use crate::policy::{
    Action, AskOptions, CallCount, Config, DepthRange, Located, VerifyOptions, Webhook,
};

const STRICT: Dialect = Dialect::Command {
    star_crosses_slash: false,
};
const D1: Dialect = Dialect::Command {
    star_crosses_slash: true,
};

/// A loaded, compiled policy set. Cheap to share between threads; evaluation never
/// mutates it.
#[derive(Debug)]
pub struct Engine {
    pub(crate) config: Config,
    pub(crate) default_action: Action,
    pub(crate) policies: Vec<CompiledPolicy>,
    pub(crate) commands: PatternIndex,
    /// Lowercased positive patterns of restrictive rules, for commands with an explicit
    /// `cmd`/PowerShell wrapper (Windows folds case).
    pub(crate) folded: PatternIndex,
    pub(crate) paths: PatternIndex,
    /// Input params named by any `tool_param_matches` (for the size gate).
    pub(crate) param_names: Vec<String>,
    /// Which calls `call_count` rules can see (so `enforce` records them and reads counts).
    pub(crate) counting: Counting,
    /// For every tool named literally in some policy scope: the enabled policies whose
    /// tool scope includes it, in evaluation order (other tool names are scoped per call).
    pub(crate) by_tool: HashMap<String, Vec<usize>>,
}

#[derive(Debug)]
pub(crate) struct CompiledPolicy {
    pub name: Arc<str>,
    pub tools: Vec<Glob>,
    /// The tool patterns written without wildcards.
    pub tool_names: Vec<String>,
    pub agent: Glob,
    pub session: Glob,
    pub rules: Vec<CompiledRule>,
    pub durable: bool,
    pub project: bool,
    pub profile: String,
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub action: Action,
    pub message: String,
    pub ask: AskOptions,
    pub webhook: Option<Webhook>,
    pub verify: Option<VerifyOptions>,
    pub expires_at: Option<i64>,
    pub once: bool,
    pub when: CompiledCondition,
}

/// Command fields of a rule, as ids into the command index.
#[derive(Debug)]
pub(crate) struct CommandFields {
    pub matches: Option<FieldId>,
    /// Granting rules: the subset of `matches` that spans operators (`a && b`).
    pub composite: Option<FieldId>,
    pub contains: Option<FieldId>,
    pub not_matches: Option<FieldId>,
    /// Restrictive rules: `matches` lowercased, in the `folded` index.
    pub folded: Option<FieldId>,
}

#[derive(Debug)]
pub(crate) struct PathFields {
    pub matches: FieldId,
    pub not_matches: Option<FieldId>,
}

#[derive(Debug, Default)]
pub(crate) struct CompiledCondition {
    /// `default: true` or no field at all.
    pub always: bool,
    /// Only response fields: never fires before the call.
    pub response_only: bool,
    pub command: Option<CommandFields>,
    pub env: Vec<Glob>,
    pub path: Option<PathFields>,
    pub urls: Vec<Glob>,
    pub domains: Vec<Glob>,
    pub sessions: Vec<Glob>,
    pub sessions_not: Vec<Glob>,
    pub depth: Option<DepthRange>,
    pub params: Vec<(String, Glob)>,
    pub call_count: Option<CallCount>,
    pub responses: Vec<Regex>,
    pub responses_not: Vec<Regex>,
}

fn globs(list: &[Located], dialect: Dialect) -> Vec<Glob> {
    list.iter().map(|l| Glob::new(&l.value, dialect)).collect()
}

fn texts(list: &[Located]) -> impl Iterator<Item = &str> {
    list.iter().map(|l| l.value.as_str())
}

/// A pattern that spans shell operators, so it can grant a whole compound line.
fn is_composite_pattern(p: &str) -> bool {
    p.contains("&&") || p.contains(['|', ';', '\n'])
}

impl Engine {
    /// Compiles a configuration. Patterns were validated by the loader; anything invalid
    /// that reaches here compiles to a pattern that never matches.
    pub fn new(config: Config) -> Engine {
        let mut commands = IndexBuilder::default();
        let mut folded = IndexBuilder::default();
        let mut paths = IndexBuilder::default();
        let mut order: Vec<usize> = (0..config.policies.len()).collect();
        order.sort_by_key(|&i| config.policies[i].priority);
        let mut policies = Vec::with_capacity(order.len());
        let mut param_names: Vec<String> = Vec::new();
        for &i in &order {
            let p = &config.policies[i];
            if !p.enabled {
                continue;
            }
            let mut rules = Vec::with_capacity(p.rules.len());
            for r in &p.rules {
                let c = &r.when;
                let restrictive = r.action.is_restrictive_matcher();
                let command = (!c.command_matches.is_empty() || !c.command_contains.is_empty())
                    .then(|| CommandFields {
                        matches: (!c.command_matches.is_empty()).then(|| {
                            commands.field(
                                FieldKind::Glob(if restrictive { D1 } else { STRICT }),
                                texts(&c.command_matches),
                            )
                        }),
                        composite: (!restrictive
                            && c.command_matches
                                .iter()
                                .any(|m| is_composite_pattern(&m.value)))
                        .then(|| {
                            commands.field(
                                FieldKind::Glob(STRICT),
                                texts(&c.command_matches).filter(|m| is_composite_pattern(m)),
                            )
                        }),
                        contains: (!c.command_contains.is_empty()).then(|| {
                            commands.field(
                                if restrictive {
                                    FieldKind::ContainsFold
                                } else {
                                    FieldKind::Contains
                                },
                                texts(&c.command_contains),
                            )
                        }),
                        not_matches: (!c.command_not_matches.is_empty()).then(|| {
                            commands.field(FieldKind::Glob(STRICT), texts(&c.command_not_matches))
                        }),
                        folded: (restrictive && !c.command_matches.is_empty()).then(|| {
                            let lower: Vec<String> = c
                                .command_matches
                                .iter()
                                .map(|m| m.value.to_lowercase())
                                .collect();
                            folded.field(FieldKind::Glob(D1), lower.iter().map(String::as_str))
                        }),
                    });
                let path = (!c.path_matches.is_empty()).then(|| PathFields {
                    matches: paths.field(FieldKind::Glob(Dialect::Path), texts(&c.path_matches)),
                    not_matches: (!c.path_not_matches.is_empty()).then(|| {
                        paths.field(FieldKind::Glob(Dialect::Path), texts(&c.path_not_matches))
                    }),
                });
                for (name, _) in &c.tool_param_matches {
                    if !param_names.contains(name) {
                        param_names.push(name.clone());
                    }
                }
                let regexes = |l: &[Located]| -> Vec<Regex> {
                    l.iter().filter_map(|r| Regex::new(&r.value).ok()).collect()
                };
                rules.push(CompiledRule {
                    action: r.action,
                    message: r.message.clone(),
                    ask: r.ask,
                    webhook: r.webhook.clone(),
                    verify: r.verify.clone(),
                    expires_at: r.expires_at,
                    once: r.once,
                    when: CompiledCondition {
                        always: c.default || c.is_empty(),
                        response_only: c.is_response_only(),
                        command,
                        env: globs(&c.command_env_assignments, STRICT),
                        path,
                        urls: globs(&c.url_matches, STRICT),
                        domains: c
                            .domain_matches
                            .iter()
                            .map(|d| {
                                Glob::new(
                                    &d.value.trim_end_matches('.').to_lowercase(),
                                    Dialect::Path,
                                )
                            })
                            .collect(),
                        sessions: globs(&c.session_matches, STRICT),
                        sessions_not: globs(&c.session_not_matches, STRICT),
                        depth: c.agent_depth,
                        params: c
                            .tool_param_matches
                            .iter()
                            .map(|(k, g)| (k.clone(), Glob::new(&g.value.to_lowercase(), STRICT)))
                            .collect(),
                        call_count: c.call_count.clone(),
                        responses: regexes(&c.response_matches),
                        responses_not: regexes(&c.response_not_matches),
                    },
                });
            }
            policies.push(CompiledPolicy {
                name: Arc::from(p.name.as_str()),
                tools: globs(&p.tools, STRICT),
                tool_names: p
                    .tools
                    .iter()
                    .filter(|t| !t.value.contains(['*', '?', '[', '\\']))
                    .map(|t| t.value.clone())
                    .collect(),
                agent: Glob::new(&p.agent.value, STRICT),
                session: Glob::new(&p.session.value, STRICT),
                rules,
                durable: p.source.is_durable_allow_file(),
                project: p.source.project,
                profile: p.source.profile_name().to_string(),
            });
        }
        let mut by_tool: HashMap<String, Vec<usize>> = HashMap::new();
        for p in &policies {
            for tool in &p.tool_names {
                by_tool.entry(tool.clone()).or_insert_with(|| {
                    policies
                        .iter()
                        .enumerate()
                        .filter(|(_, q)| {
                            q.tools.is_empty() || q.tools.iter().any(|g| g.is_match(tool))
                        })
                        .map(|(i, _)| i)
                        .collect()
                });
            }
        }
        let counting = Counting::of(&policies);
        Engine {
            by_tool,
            counting,
            default_action: config.effective_default(),
            config,
            policies,
            commands: commands.build(),
            folded: folded.build(),
            paths: paths.build(),
            param_names,
        }
    }

    /// The configuration this engine was compiled from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The default action (deny when no file set one).
    pub fn default_action(&self) -> Action {
        self.default_action
    }

    /// Number of enabled policies.
    pub fn policy_count(&self) -> usize {
        self.policies.len()
    }

    /// Names of enabled policies holding `verify` rules (the daemon warns about them when
    /// no verifier is configured).
    pub fn verify_policies(&self) -> Vec<&str> {
        self.policies
            .iter()
            .filter(|p| p.rules.iter().any(|r| r.action == Action::Verify))
            .map(|p| &*p.name)
            .collect()
    }

    /// Whether any enabled rule counts calls (so `enforce` must record them first).
    pub fn uses_call_count(&self) -> bool {
        !self.counting.policies.is_empty()
    }

    /// Whether [`enforce`](Self::enforce) touches the call counter for a call of `tool`:
    /// some `call_count` rule counts calls of that tool, or applies to it. When it does not,
    /// `enforce` and [`evaluate`](Self::evaluate) decide the same, and a caller that shares
    /// one counter between threads need not lock it.
    pub fn counts_calls_of(&self, tool: &str) -> bool {
        self.counting.named.iter().any(|t| t == tool)
            || self.counting.policies.iter().any(|&i| {
                let p = &self.policies[i];
                p.tools.is_empty() || p.tools.iter().any(|g| g.is_match(tool))
            })
    }
}

/// The policies holding `call_count` rules, and the tools those rules name explicitly.
#[derive(Debug, Default)]
pub(crate) struct Counting {
    policies: Vec<usize>,
    named: Vec<String>,
}

impl Counting {
    fn of(policies: &[CompiledPolicy]) -> Counting {
        let mut c = Counting::default();
        for (i, p) in policies.iter().enumerate() {
            let counts = p.rules.iter().filter_map(|r| r.when.call_count.as_ref());
            let mut any = false;
            for cc in counts {
                any = true;
                if let Some(t) = &cc.tool
                    && !c.named.contains(t)
                {
                    c.named.push(t.clone());
                }
            }
            if any {
                c.policies.push(i);
            }
        }
        c
    }
}
