//! `POST /v1/tool/{name}` (the enforcement boundary) and `POST /v1/preflight/{name}`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use rampart_engine::{Action, Decision};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::canonical::{Canonical, canonicalize, tool_name};
use super::{Body, Shared, authenticate, decode_object, error, json_response, rfc3339};
use crate::approvals::{NewApproval, Status};
use crate::recorder::Record;
use crate::state::{AppState, Mode};

fn opt_string(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The audit record of a decision.
fn record_of(c: &Canonical, body: &Map<String, Value>, d: &Decision) -> Record {
    let mut flags = Vec::new();
    if d.verify_unconfigured {
        flags.push("verify-unconfigured".to_string());
    }
    Record {
        tool: c.call.tool.clone(),
        agent: c.call.agent.clone(),
        session: c.call.session.clone(),
        run_id: opt_string(body, "run_id"),
        tool_call_id: opt_string(body, "tool_call_id"),
        request: c.params.clone(),
        action: d.action.as_str().to_string(),
        matched_policies: d.matched_policies.clone(),
        evaluation_time_us: d.eval_duration.as_micros() as u64,
        message: d.message.clone(),
        suggestions: d.suggestions.clone(),
        flags,
        ..Record::default()
    }
}

/// Writes a record before the answer. When the record `must` be written (enforcing), a
/// failure is the 503 refusal; otherwise it is logged and the call goes on unaudited.
async fn audit(state: &AppState, record: Record, must: bool) -> Result<Option<String>, Response> {
    match state.recorder.record(record).await {
        Ok(id) => Ok(Some(id)),
        Err(_) if must => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit storage is unavailable; refusing tool call",
        )),
        Err(_) => Ok(None),
    }
}

/// The grant fingerprint of a call: SHA-256 over its identity and payload.
fn fingerprint(c: &Canonical, body: &Map<String, Value>) -> String {
    let v = json!({
        "agent": c.call.agent, "agent_depth": c.call.agent_depth, "session": c.call.session,
        "run_id": opt_string(body, "run_id"), "tool_call_id": opt_string(body, "tool_call_id"),
        "tool": c.call.tool, "workdir": c.workdir, "params": c.params, "input": c.call.input,
    });
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

fn base_body(d: &Decision, audit_id: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("allowed".into(), Value::Bool(d.is_allowed()));
    m.insert("decision".into(), Value::from(d.action.as_str()));
    m.insert("message".into(), Value::from(d.message.clone()));
    m.insert(
        "eval_duration_us".into(),
        Value::from(d.eval_duration.as_micros() as u64),
    );
    m.insert("suggestions".into(), json!(d.suggestions));
    m.insert("matched_policies".into(), json!(d.matched()));
    if let Some(p) = d.matched_policies.first() {
        m.insert("policy".into(), Value::from(p.to_string()));
    }
    if let Some(id) = audit_id {
        m.insert("audit_id".into(), Value::from(id));
    }
    if d.verify_unconfigured {
        m.insert("verify_unconfigured".into(), Value::Bool(true));
    }
    m
}

/// Monitor mode: allowed, with what the policy said on the side.
fn observe_only(m: &mut Map<String, Value>, d: &Decision) {
    m.insert("enforced".into(), Value::Bool(false));
    m.insert("policy_decision".into(), Value::from(d.action.as_str()));
    m.insert("policy_message".into(), Value::from(d.message.clone()));
    m.insert("allowed".into(), Value::Bool(true));
    if !d.is_allowed() {
        m.insert("decision".into(), Value::from("allow"));
        let msg = if d.message.is_empty() {
            format!("monitor mode observed {}; action allowed", d.action)
        } else {
            format!(
                "monitor mode observed {}; action allowed: {}",
                d.action, d.message
            )
        };
        m.insert("message".into(), Value::from(msg));
    }
}

/// The delegate's answer to a `webhook`/`verify` decision, audited as a second event.
struct Delegated {
    verdict: crate::delegate::Verdict,
    audit_id: String,
}

/// Asks the webhook or the verifier about a `webhook`/`verify` decision and audits its
/// answer before it is given (an audit failure in enforce mode is the 503 answer).
async fn delegate_and_audit(
    state: &AppState,
    c: &Canonical,
    body: &Map<String, Value>,
    d: &Decision,
) -> Result<Delegated, Response> {
    let verdict = delegated_outcome(state, c, body, d).await;
    let mut second = record_of(c, body, d);
    second.action = if verdict.allowed { "allow" } else { "deny" }.into();
    second.message = verdict.message.clone();
    crate::delegate::annotate(&mut second.request, &verdict, d.action);
    let audit_id = audit(state, second, true).await?.unwrap_or_default();
    Ok(Delegated { verdict, audit_id })
}

/// Asks the webhook or the verifier about a `webhook`/`verify` decision.
async fn delegated_outcome(
    state: &AppState,
    c: &Canonical,
    body: &Map<String, Value>,
    d: &Decision,
) -> crate::delegate::Verdict {
    let task_context = opt_string(body, "task_context");
    let payload = crate::delegate::Payload {
        tool: &c.call.tool,
        params: &c.params,
        agent: &c.call.agent,
        session: &c.call.session,
        policy: d.matched_policies.first().map(|p| &**p),
        task_context: task_context.as_deref(),
        lineage: None,
    };
    let version = state.policies.generation();
    crate::delegate::decide(&state.http_client, &state.verify, version, d, &payload).await
}

fn parse_wait(body: &Map<String, Value>, query: &HashMap<String, String>) -> Result<u64, Response> {
    let bad = || error(StatusCode::BAD_REQUEST, "invalid wait value");
    let from_body = match body.get("wait_ms") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(bad)?),
    };
    let from_query = match query.get("wait") {
        None => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| bad())?),
    };
    Ok(match (from_body, from_query) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(0),
    })
}

/// What both eval endpoints do first, in the spec's order: authenticate (401), decode the
/// body (400), check the tool name (400).
fn eval_request(
    state: &AppState,
    headers: &HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<(Map<String, Value>, String), Response> {
    authenticate(state, headers, None)?;
    let body = decode_object(body)?;
    let Ok(Path(name)) = name else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid tool name: tool name is not valid UTF-8",
        ));
    };
    let tool = tool_name(&name).map_err(|e| error(StatusCode::BAD_REQUEST, &e))?;
    Ok((body, tool))
}

pub async fn tool(
    State(state): State<Shared>,
    name: Result<Path<String>, PathRejection>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (body, tool) = match eval_request(&state, &headers, name, body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if body.get("verification").and_then(Value::as_bool) == Some(true) {
        return error(
            StatusCode::BAD_REQUEST,
            "verification mode is only available on the preflight endpoint",
        );
    }
    let wait_ms = match parse_wait(&body, &query) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let c = match canonicalize(&tool, &body) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let d = state.decide(&c.call, true);
    let enforce = state.mode == Mode::Enforce;
    let audit_id = match audit(&state, record_of(&c, &body, &d), enforce).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    state.metrics.observe(
        d.action.as_str(),
        d.matched_policies.first().map(|p| &**p),
        d.eval_duration,
    );
    let mut out = base_body(&d, audit_id.as_deref());
    let mut status = StatusCode::OK;
    if !enforce {
        observe_only(&mut out, &d);
    } else {
        match d.action {
            Action::Deny => status = StatusCode::FORBIDDEN,
            Action::Webhook | Action::Verify => {
                let Delegated {
                    verdict,
                    audit_id: id,
                } = match delegate_and_audit(&state, &c, &body, &d).await {
                    Ok(x) => x,
                    Err(r) => return r,
                };
                let (allowed, message) = (verdict.allowed, verdict.message);
                if let Some(m) = &verdict.model {
                    out.insert("verify_model".into(), Value::from(m.clone()));
                }
                out.insert("policy_decision".into(), Value::from(d.action.as_str()));
                out.insert("allowed".into(), Value::Bool(allowed));
                out.insert(
                    "decision".into(),
                    Value::from(if allowed { "allow" } else { "deny" }),
                );
                out.insert("message".into(), Value::from(message));
                out.insert("audit_id".into(), Value::from(id));
                if !allowed {
                    status = StatusCode::FORBIDDEN;
                }
            }
            Action::Ask => {
                return ask(
                    &state,
                    &c,
                    &body,
                    &d,
                    audit_id.unwrap_or_default(),
                    out,
                    wait_ms,
                )
                .await;
            }
            Action::Allow | Action::Watch => {}
        }
    }
    if let Some(resp) = opt_string(&body, "response") {
        if let Err(r) = scan_response(
            &state,
            &c,
            &body,
            &resp,
            audit_id.as_deref(),
            enforce,
            &mut out,
        )
        .await
        {
            return r;
        }
    }
    json_response(status, &Value::Object(out))
}

/// The approval flow of an `ask` in enforce mode (HTTP API spec §7.1, §7.2).
async fn ask(
    state: &AppState,
    c: &Canonical,
    body: &Map<String, Value>,
    d: &Decision,
    ask_audit_id: String,
    mut out: Map<String, Value>,
    wait_ms: u64,
) -> Response {
    let fp = fingerprint(c, body);
    let now = Utc::now();
    let replay = opt_string(body, "run_id").is_some() && opt_string(body, "tool_call_id").is_some();
    if replay && let Some(grant) = state.approvals.take_grant(&fp, now) {
        return approved_once(
            state,
            c,
            body,
            d,
            &grant.approval_id,
            &grant.resolved_by,
            &ask_audit_id,
            out,
        )
        .await;
    }
    let command = c
        .params
        .get("command")
        .or_else(|| c.params.get("path"))
        .or_else(|| c.params.get("url"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let new = NewApproval {
        tool: c.call.tool.clone(),
        command,
        agent: c.call.agent.clone(),
        session: c.call.session.clone(),
        message: d.message.clone(),
        run_id: opt_string(body, "run_id"),
        tool_call_id: opt_string(body, "tool_call_id"),
        fingerprint: fp.clone(),
        policy_audit_id: ask_audit_id.clone(),
    };
    let (approval, created) = match state.approvals.create(new, now) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    if created {
        state.announce_approvals();
    }
    out.insert("approval_id".into(), Value::from(approval.id.clone()));
    out.insert("approval_status".into(), Value::from("pending"));
    out.insert(
        "expires_at".into(),
        Value::from(rfc3339(approval.expires_at)),
    );
    if wait_ms > 0 {
        let waited = tokio::select! {
            a = state.approvals.wait(&approval.id, Duration::from_millis(wait_ms)) => a,
            // Stopping: answer with the pending body; the approval survives the restart.
            _ = state.stopping() => None,
        };
        match waited {
            Some(a)
                if a.status == Status::Approved
                    && state.approvals.take_grant(&fp, Utc::now()).is_some() =>
            {
                let by = a.resolved_by.clone().unwrap_or_default();
                return approved_once(state, c, body, d, &a.id, &by, &ask_audit_id, out).await;
            }
            Some(a) if a.status == Status::Denied => {
                out.insert("allowed".into(), Value::Bool(false));
                out.insert("decision".into(), Value::from("deny"));
                out.insert("message".into(), Value::from("approval denied"));
                out.insert("approval_status".into(), Value::from("denied"));
                out.insert("approval_resolved_by".into(), json!(a.resolved_by));
                out.remove("expires_at");
                return json_response(StatusCode::FORBIDDEN, &Value::Object(out));
            }
            Some(a) if a.status == Status::Expired => {
                out.insert("allowed".into(), Value::Bool(false));
                out.insert("decision".into(), Value::from("deny"));
                out.insert(
                    "message".into(),
                    Value::from("approval timed out — command blocked"),
                );
                out.insert("approval_status".into(), Value::from("expired"));
                out.remove("expires_at");
                return json_response(StatusCode::FORBIDDEN, &Value::Object(out));
            }
            _ => {}
        }
    }
    json_response(StatusCode::ACCEPTED, &Value::Object(out))
}

/// A consumed one-shot grant: allow, audited as such.
#[allow(clippy::too_many_arguments)]
async fn approved_once(
    state: &AppState,
    c: &Canonical,
    body: &Map<String, Value>,
    d: &Decision,
    approval_id: &str,
    resolved_by: &str,
    ask_audit_id: &str,
    mut out: Map<String, Value>,
) -> Response {
    let mut rec = record_of(c, body, d);
    rec.action = "allow".into();
    rec.message = "approved once via Rampart approval".into();
    for (k, v) in [
        ("approval_id", approval_id),
        ("approval_status", "approved"),
        ("approval_scope", "once"),
        ("approval_resolved_by", resolved_by),
        ("approval_policy_audit_id", ask_audit_id),
    ] {
        rec.request.insert(k.into(), Value::from(v));
    }
    let id = match audit(state, rec, true).await {
        Ok(id) => id.unwrap_or_default(),
        Err(r) => return r,
    };
    out.insert("allowed".into(), Value::Bool(true));
    out.insert("decision".into(), Value::from("allow"));
    out.insert(
        "message".into(),
        Value::from("approved once via Rampart approval"),
    );
    out.insert("approval_id".into(), Value::from(approval_id));
    out.insert("approval_status".into(), Value::from("approved"));
    out.insert("approval_scope".into(), Value::from("once"));
    out.insert("approval_resolved_by".into(), Value::from(resolved_by));
    out.insert("approval_policy_audit_id".into(), Value::from(ask_audit_id));
    out.insert("audit_id".into(), Value::from(id));
    out.remove("expires_at");
    json_response(StatusCode::OK, &Value::Object(out))
}

/// Post-call scan of a tool's output (HTTP API spec §5.3). The raw output is never stored.
async fn scan_response(
    state: &AppState,
    c: &Canonical,
    body: &Map<String, Value>,
    response: &str,
    request_audit_id: Option<&str>,
    enforce: bool,
    out: &mut Map<String, Value>,
) -> Result<(), Response> {
    out.insert("response".into(), Value::from(response));
    let engine = state.policies.current();
    let r = engine.evaluate_response(&c.call, response);
    let mut rec = record_of(c, body, &r);
    rec.request
        .insert("rampart_phase".into(), Value::from("response"));
    rec.request
        .insert("response_bytes".into(), Value::from(response.len()));
    if let Some(id) = request_audit_id {
        rec.request
            .insert("request_audit_id".into(), Value::from(id));
    }
    rec.flags = vec!["response-evaluated".into()];
    if r.action == Action::Deny {
        rec.flags.push(
            if enforce {
                "response-redacted"
            } else {
                "response-observed-deny"
            }
            .into(),
        );
    }
    if state.recorder.record(rec).await.is_err() && enforce {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit storage is unavailable; refusing tool response",
        ));
    }
    if r.action == Action::Deny {
        if enforce {
            out.insert("allowed".into(), Value::Bool(false));
            out.insert("decision".into(), Value::from("deny"));
            out.insert("message".into(), Value::from(r.message.clone()));
            if let Some(p) = &r.policy {
                out.insert("policy".into(), Value::from(p.to_string()));
            }
            out.insert(
                "response".into(),
                Value::from("[REDACTED: sensitive content removed by Rampart]"),
            );
        } else {
            out.insert("response_policy_decision".into(), Value::from("deny"));
            out.insert(
                "response_policy_message".into(),
                Value::from(r.message.clone()),
            );
            out.insert(
                "response_eval_duration_us".into(),
                Value::from(r.eval_duration.as_micros() as u64),
            );
            out.insert("response_policy".into(), json!(r.policy.as_deref()));
        }
    }
    Ok(())
}

pub async fn preflight(
    State(state): State<Shared>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (body, tool) = match eval_request(&state, &headers, name, body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let flag = |key: &str| -> Result<bool, Response> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(error(
                StatusCode::BAD_REQUEST,
                &format!("invalid request body: {key} must be a boolean"),
            )),
        }
    };
    let (enforce_requested, verification) = match (flag("enforce"), flag("verification")) {
        (Ok(e), Ok(v)) => (e, v),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if enforce_requested && verification {
        return error(
            StatusCode::BAD_REQUEST,
            "verification and enforce modes cannot be combined",
        );
    }
    let c = match canonicalize(&tool, &body) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let d = state.decide(&c.call, enforce_requested);
    let enforced = enforce_requested && state.mode == Mode::Enforce;
    let audit_id = if verification {
        None
    } else {
        match audit(&state, record_of(&c, &body, &d), enforced).await {
            Ok(id) => id,
            Err(r) => return r,
        }
    };
    if enforce_requested {
        state.metrics.observe(
            d.action.as_str(),
            d.matched_policies.first().map(|p| &**p),
            d.eval_duration,
        );
    }
    let mut out = Map::new();
    out.insert("allowed".into(), Value::Bool(d.is_allowed()));
    out.insert("decision".into(), Value::from(d.action.as_str()));
    out.insert("message".into(), Value::from(d.message.clone()));
    out.insert(
        "matched_policies".into(),
        if d.matched_policies.is_empty() {
            Value::Null
        } else {
            json!(d.matched())
        },
    );
    out.insert(
        "eval_duration_us".into(),
        Value::from(d.eval_duration.as_micros() as u64),
    );
    out.insert("enforced".into(), Value::Bool(enforced));
    out.insert(
        "enforcement_requested".into(),
        Value::Bool(enforce_requested),
    );
    if let Some(id) = &audit_id {
        out.insert("audit_id".into(), Value::from(id.clone()));
    }
    if !d.suggestions.is_empty() {
        out.insert("suggestions".into(), json!(d.suggestions));
    }
    if d.verify_unconfigured {
        out.insert("verify_unconfigured".into(), Value::Bool(true));
    }
    if enforce_requested && state.mode == Mode::Monitor {
        observe_only(&mut out, &d);
        out.insert("enforced".into(), Value::Bool(false));
    } else if enforced && d.action == Action::Verify {
        // The verifier's answer is a decision of its own: audited before it is given.
        let Delegated { verdict, audit_id } = match delegate_and_audit(&state, &c, &body, &d).await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
        let (allowed, message) = (verdict.allowed, verdict.message);
        out.insert("audit_id".into(), Value::from(audit_id));
        out.insert("policy_decision".into(), Value::from("verify"));
        out.insert("allowed".into(), Value::Bool(allowed));
        out.insert(
            "decision".into(),
            Value::from(if allowed { "allow" } else { "deny" }),
        );
        out.insert("message".into(), Value::from(message));
    }
    json_response(StatusCode::OK, &Value::Object(out))
}
