//! One exec request, judged: the policy decision, the `--strict` check and the audit
//! record, all on the calling thread and without waiting on anything but the audit write.
//!
//! What cannot be settled here is handed back as a continuation for the runtime: asking
//! the verifier or a webhook ([`Delegation`]) and waiting for a human ([`Approval`]).

use std::path::PathBuf;

use chrono::Utc;
use rampart_engine::{Action, Decision, ToolCall, command_string};
use rampart_proto::{Flags, Reply, Request};
use serde_json::{Map, Value};

use crate::approvals::{Approval, NewApproval};
use crate::recorder::Record;
use crate::state::{AppState, Mode};

/// What [`judge`] concluded.
pub enum Judged {
    /// The final answer.
    Reply(Reply),
    /// A `verify` or `webhook` rule decided: its delegate must be asked (and the answer
    /// audited) before replying.
    Delegate(Box<Delegation>),
    /// An approval was created: answer `Pending`, then wait for a human.
    Ask(Box<Approval>),
}

/// A decision waiting on its delegate, with everything needed to ask it and audit the
/// answer.
pub struct Delegation {
    pub call: ToolCall,
    pub decision: Decision,
    /// The record of the policy decision, to be re-recorded with the delegate's answer.
    pub outcome: Record,
    /// The policy generation the decision was made under (part of the verdict-cache key).
    pub policy_version: u64,
    pub pid: i32,
    pub argv: Vec<Vec<u8>>,
}

pub fn deny(message: impl Into<String>) -> Reply {
    Reply::Deny {
        errno: libc::EPERM,
        message: message.into(),
    }
}

pub const AUDIT_UNAVAILABLE: &str = "audit storage is unavailable; refusing tool call";

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `rampart serve --strict`: execs of binaries the preload library cannot follow into
/// (nothing they start is checked) are denied unless the policy already denies them.
#[derive(Clone, Debug, Default)]
pub struct Strict {
    /// Executables exempted by exact path (`--strict-allow`).
    pub allow: Vec<PathBuf>,
}

impl Strict {
    /// What the library cannot follow: no dynamic loader to load it into (static, Go's raw
    /// system calls, another ELF class), a loader that drops `LD_PRELOAD` (set-id), or a
    /// target without a path to check again (memfd).
    pub const UNFOLLOWABLE: Flags = Flags::STATIC
        .union(Flags::GO)
        .union(Flags::SETUID)
        .union(Flags::FOREIGN_CLASS)
        .union(Flags::MEMFD);

    /// The deny message for an exec of `path` with `flags`, or `None` when it may run.
    fn refusal(&self, path: &str, flags: Flags) -> Option<String> {
        let blind = flags & Self::UNFOLLOWABLE;
        if blind.is_empty() || self.allow.iter().any(|p| p.as_os_str() == path) {
            return None;
        }
        let labels: Vec<&str> = blind.labels().collect();
        Some(format!(
            "{path} is {}; the preload library cannot follow it",
            labels.join(", ")
        ))
    }
}

/// Runs full enforcement for one exec, as `/v1/tool` does in enforce mode. The decision is
/// in the audit trail before this returns (with `--audit-sync always`, synced: this blocks
/// the calling thread for it).
pub fn judge(state: &AppState, req: Request) -> Judged {
    let shell = req.entry.is_shell();
    let (command, path) = if shell {
        (
            req.argv.first().map(|a| lossy(a)).unwrap_or_default(),
            "/bin/sh".to_string(),
        )
    } else {
        let argv: Vec<&[u8]> = req.argv.iter().map(Vec::as_slice).collect();
        (command_string(&req.path, &argv), lossy(&req.path))
    };
    let workdir = lossy(&req.cwd);
    let mut params = Map::new();
    params.insert("command".into(), Value::from(command.clone()));
    params.insert("path".into(), Value::from(path.clone()));
    if !workdir.is_empty() {
        params.insert("workdir".into(), Value::from(workdir));
    }
    let mut call = ToolCall {
        tool: "exec".into(),
        agent: lossy(&req.agent),
        session: lossy(&req.session),
        params,
        ..ToolCall::default()
    };
    let mut d = state.decide(&call, true);
    // A library in monitor mode only reports: the decision is made and audited as usual,
    // but it is answered with Allow and nothing is acted on.
    let library_monitor = req.mode == rampart_proto::Mode::Monitor;
    let strict = match (&state.strict, d.action) {
        (_, Action::Deny) | (None, _) => None,
        (Some(s), _) => s.refusal(&path, req.flags),
    };
    let acts = state.mode == Mode::Enforce && !library_monitor;
    let delegated =
        acts && strict.is_none() && matches!(d.action, Action::Webhook | Action::Verify);

    let mut request = if delegated {
        call.params.clone()
    } else {
        std::mem::take(&mut call.params)
    };
    request.insert(
        "argv".into(),
        Value::Array(req.argv.iter().map(|a| Value::from(lossy(a))).collect()),
    );
    request.insert("requested".into(), Value::from(lossy(&req.requested)));
    request.insert("entry".into(), Value::from(req.entry.as_str()));
    request.insert(
        "flags".into(),
        Value::Array(req.flags.labels().map(Value::from).collect()),
    );
    request.insert("pid".into(), Value::from(req.pid));
    request.insert("ppid".into(), Value::from(req.ppid));
    request.insert("uid".into(), Value::from(req.uid));
    if library_monitor {
        request.insert("library_mode".into(), Value::from(req.mode.as_str()));
    }
    // A deny names every policy in scope: moved into the record unless the delegation
    // still needs the decision whole.
    let first_policy = d.matched_policies.first().cloned();
    let mut matched_policies = if delegated {
        d.matched_policies.clone()
    } else {
        std::mem::take(&mut d.matched_policies)
    };
    let (action, message) = match &strict {
        Some(why) => {
            // The policy's own verdict stays visible next to the refusal.
            request.insert("policy_action".into(), Value::from(d.action.as_str()));
            matched_policies.insert(0, "strict".into());
            ("deny", why.clone())
        }
        None => (d.action.as_str(), d.message.clone()),
    };
    let record = Record {
        tool: "exec".into(),
        agent: call.agent.clone(),
        session: call.session.clone(),
        request,
        action: action.into(),
        matched_policies,
        evaluation_time_us: d.eval_duration.as_micros() as u64,
        message,
        suggestions: d.suggestions.clone(),
        ..Record::default()
    };
    let outcome = delegated.then(|| record.clone());
    let audit_id = match state.recorder.record_blocking(record) {
        Ok(id) => id,
        Err(_) if acts => return Judged::Reply(deny(AUDIT_UNAVAILABLE)),
        Err(_) => String::new(),
    };
    let policy = match &strict {
        Some(_) => Some("strict"),
        None => first_policy.as_deref(),
    };
    state.metrics.observe(action, policy, d.eval_duration);
    if !acts {
        return Judged::Reply(Reply::Allow);
    }
    if let Some(why) = strict {
        return Judged::Reply(deny(format!("strict: {why}")));
    }
    let policy = d.policy.as_deref().unwrap_or("default");
    Judged::Reply(match d.action {
        Action::Allow | Action::Watch => Reply::Allow,
        Action::Deny => deny(format!("{policy}: {}", d.message)),
        Action::Webhook | Action::Verify => {
            return Judged::Delegate(Box::new(Delegation {
                call,
                outcome: outcome.expect("cloned for a delegated decision"),
                policy_version: state.policies.generation(),
                decision: d,
                pid: req.pid,
                argv: req.argv,
            }));
        }
        Action::Ask => {
            let new = NewApproval {
                tool: "exec".into(),
                command,
                agent: call.agent.clone(),
                session: call.session.clone(),
                message: d.message.clone(),
                run_id: None,
                tool_call_id: None,
                fingerprint: format!("socket:{audit_id}"),
                policy_audit_id: audit_id,
            };
            match state.approvals.create(new, Utc::now()) {
                Ok((a, _)) => {
                    state.announce_approvals();
                    return Judged::Ask(Box::new(a));
                }
                Err(e) => deny(e.to_string()),
            }
        }
    })
}
