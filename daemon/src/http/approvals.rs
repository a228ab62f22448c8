//! `GET /v1/approvals`, `GET /v1/approvals/{id}`, `POST /v1/approvals/{id}/resolve` (with
//! `persist`, "always allow"), and the rules it writes: `GET /v1/rules/auto-allowed`,
//! `DELETE /v1/rules/auto-allowed/{name}`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{Body, Shared, authenticate, decode_object, error, json_response, rfc3339};
use crate::approvals::{Approval, ApprovalError, Status};
use crate::auto_allow::{self, AllowRule, Field};
use crate::recorder::Record;
use crate::state::AppState;

fn item(a: &Approval) -> Value {
    let mut m = json!({
        "id": a.id, "tool": a.tool, "command": a.command, "agent": a.agent,
        "session": a.session, "credential_owner": "server/admin", "message": a.message,
        "status": a.status.as_str(), "created_at": rfc3339(a.created_at),
        "expires_at": rfc3339(a.expires_at),
    });
    if let Some(r) = &a.run_id {
        m["run_id"] = Value::from(r.clone());
    }
    m
}

pub async fn list(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&state, &headers, None) {
        return r;
    }
    let pending = state.approvals.pending();
    let items: Vec<Value> = pending.iter().map(item).collect();
    // Groups of two or more pending approvals of one agent/session/run.
    let mut groups: Vec<(String, String, String, Vec<&Approval>)> = Vec::new();
    for a in &pending {
        let Some(run) = a.run_id.as_ref().filter(|r| !r.is_empty()) else {
            continue;
        };
        if a.agent.is_empty() || a.session.is_empty() {
            continue;
        }
        match groups
            .iter_mut()
            .find(|g| g.0 == a.agent && g.1 == a.session && &g.2 == run)
        {
            Some(g) => g.3.push(a),
            None => groups.push((a.agent.clone(), a.session.clone(), run.clone(), vec![a])),
        }
    }
    let run_groups: Vec<Value> = groups
        .into_iter()
        .filter(|g| g.3.len() >= 2)
        .map(|(agent, session, run_id, items)| {
            json!({
                "agent": agent, "session": session, "run_id": run_id,
                "credential_owner": "server/admin", "count": items.len(),
                "earliest_created_at": rfc3339(items[0].created_at),
                "items": items.iter().map(|a| item(a)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "approvals": items,
            "run_groups": run_groups,
            "run_grant_ttl_ms": state.approvals.timeout().as_millis() as u64,
        }),
    )
}

pub async fn get_one(
    State(state): State<Shared>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    if let Err(r) = authenticate(&state, &headers, None) {
        return r;
    }
    let Ok(Path(id)) = id else {
        return error(StatusCode::NOT_FOUND, "approval not found");
    };
    let Some(a) = state.approvals.get(&id) else {
        return error(StatusCode::NOT_FOUND, "approval not found");
    };
    let mut v = json!({
        "id": a.id, "tool": a.tool, "command": a.command, "agent": a.agent,
        "session": a.session, "message": a.message, "status": a.status.as_str(),
        "created_at": rfc3339(a.created_at), "expires_at": rfc3339(a.expires_at),
    });
    if a.status != Status::Pending {
        v["resolved_at"] = json!(a.resolved_at.map(rfc3339));
        v["resolved_by"] = json!(a.resolved_by);
        v["persisted"] = Value::Bool(a.persisted);
    }
    json_response(StatusCode::OK, &v)
}

pub async fn resolve(
    State(state): State<Shared>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Response {
    if let Err(r) = authenticate(&state, &headers, None) {
        return r;
    }
    let Ok(Path(id)) = id else {
        return error(StatusCode::NOT_FOUND, "approval not found");
    };
    let body: Map<String, Value> = match decode_object(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(approved) = body.get("approved").and_then(Value::as_bool) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid request body: approved must be a boolean",
        );
    };
    let by = body
        .get("resolved_by")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or("api")
        .to_string();
    let persist = body
        .get("persist")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    // "Always allow" is checked before anything changes: a call no exact rule can be written
    // for is refused and its approval stays pending (HTTP API spec §7.6).
    let rule = match (approved && persist, state.approvals.get(&id)) {
        (true, Some(a)) if a.status == Status::Pending => {
            let Some(file) = state.policies.durable_file() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "this daemon has no durable-allow file; approve without persist",
                );
            };
            match AllowRule::exact(&a.tool, &a.command, Utc::now()) {
                Ok(r) => Some((r, file.to_path_buf())),
                Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        }
        _ => None,
    };
    let resolution = if approved { "approved" } else { "denied" };
    let result = state
        .approvals
        .resolve(&id, approved, &by, Utc::now(), |a| {
            let mut request = Map::new();
            request.insert("action".into(), Value::from("approval_resolved"));
            request.insert("tool".into(), Value::from(a.tool.clone()));
            request.insert("command".into(), Value::from(a.command.clone()));
            request.insert("resolution".into(), Value::from(resolution));
            request.insert("resolved_by".into(), Value::from(by.clone()));
            request.insert("approval_id".into(), Value::from(a.id.clone()));
            request.insert("persist_requested".into(), Value::Bool(persist));
            request.insert("persist".into(), Value::Bool(false));
            if let Some(r) = &reason {
                request.insert("reason".into(), Value::from(r.clone()));
            }
            // Sync and under the approvals lock: a blocking append (resolutions are rare).
            state
                .recorder
                .record_blocking(Record {
                    id: Some(a.id.clone()),
                    tool: a.tool.clone(),
                    agent: a.agent.clone(),
                    session: a.session.clone(),
                    run_id: a.run_id.clone(),
                    tool_call_id: a.tool_call_id.clone(),
                    request,
                    action: resolution.into(),
                    message: format!("approval {resolution} by {by}"),
                    ..Record::default()
                })
                .map(|_| ())
        });
    match result {
        Ok(Ok(a)) => {
            let persisted = match rule {
                // Off the runtime: an fsync'd file write and a policy compile (~15 ms).
                Some((rule, file)) => {
                    let (state, a, by) = (state.clone(), a.clone(), by.clone());
                    tokio::task::spawn_blocking(move || persist_rule(&state, &a, &by, &rule, &file))
                        .await
                        .unwrap_or(false)
                }
                None => false,
            };
            state.announce_approvals();
            json_response(
                StatusCode::OK,
                &json!({"id": a.id, "status": a.status.as_str(), "approved": approved, "persisted": persisted}),
            )
        }
        Ok(Err(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit storage is unavailable; approval left pending",
        ),
        Err(ApprovalError::NotFound) => error(StatusCode::NOT_FOUND, "approval not found"),
        Err(ApprovalError::Gone) => error(
            StatusCode::GONE,
            "approval already resolved; URL cannot be reused",
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// Writes an approved call's exact allow rule: audited first (`approval_persistence_authorized`),
/// then appended to the durable-allow file and loaded. True when the rule is in force; a
/// failure is logged and leaves the approval approved once, as if without `persist`.
fn persist_rule(
    state: &AppState,
    a: &Approval,
    by: &str,
    rule: &AllowRule,
    file: &std::path::Path,
) -> bool {
    let mut request = Map::new();
    request.insert(
        "action".into(),
        Value::from("approval_persistence_authorized"),
    );
    request.insert("tool".into(), Value::from(a.tool.clone()));
    request.insert("command".into(), Value::from(a.command.clone()));
    request.insert("approval_id".into(), Value::from(a.id.clone()));
    request.insert("rule_name".into(), Value::from(rule.name.clone()));
    let key = match rule.field {
        Field::Command => "command_pattern",
        Field::Path => "path_pattern",
    };
    request.insert(key.into(), Value::from(rule.pattern.clone()));
    request.insert("file".into(), Value::from(file.display().to_string()));
    let audited = state.recorder.record_blocking(Record {
        tool: a.tool.clone(),
        agent: a.agent.clone(),
        session: a.session.clone(),
        run_id: a.run_id.clone(),
        tool_call_id: a.tool_call_id.clone(),
        request,
        action: "authorized".into(),
        message: format!("exact allow rule {} persisted by {by}", rule.name),
        ..Record::default()
    });
    if audited.is_err() {
        tracing::error!(approval = %a.id, "always-allow not persisted: the audit trail is unavailable");
        return false;
    }
    if let Err(e) = auto_allow::add(file, rule) {
        tracing::error!(approval = %a.id, "always-allow not persisted: {e}");
        return false;
    }
    match state.policies.reload() {
        Ok(_) => {
            tracing::info!(approval = %a.id, rule = %rule.name, "always-allow rule persisted");
            state.approvals.mark_persisted(&a.id);
            true
        }
        Err(e) => {
            tracing::error!(approval = %a.id, "always-allow rule written but the policy did not reload: {e}");
            false
        }
    }
}

/// `GET /v1/rules/auto-allowed`: the exact allow rules in force, in file order.
pub async fn auto_allowed(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&state, &headers, None) {
        return r;
    }
    let Some(file) = state.policies.durable_file() else {
        return json_response(StatusCode::OK, &json!({"rules": []}));
    };
    match auto_allow::rules(file) {
        Ok(rules) => {
            let items: Vec<Value> = rules
                .iter()
                .enumerate()
                .map(|(index, r)| {
                    let (command, path) = match r.field {
                        Field::Command => (r.pattern.as_str(), ""),
                        Field::Path => ("", r.pattern.as_str()),
                    };
                    json!({
                        "index": index, "tool": r.tool, "command_pattern": command,
                        "path_pattern": path, "name": r.name,
                        "created": r.created().map(rfc3339),
                    })
                })
                .collect();
            json_response(StatusCode::OK, &json!({"rules": items}))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `DELETE /v1/rules/auto-allowed/{name}`: revokes one rule and reloads the policy.
pub async fn revoke_auto_allowed(
    State(state): State<Shared>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    if let Err(r) = authenticate(&state, &headers, None) {
        return r;
    }
    let name = name.map(|Path(n)| n).unwrap_or_default();
    if name.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "rule name is required");
    }
    let Some(file) = state.policies.durable_file() else {
        return error(StatusCode::NOT_FOUND, "rule not found");
    };
    let (file, name) = (file.to_path_buf(), name.trim().to_string());
    // Off the runtime: an fsync'd file write and a policy compile.
    let revoked = {
        let (state, name) = (state.clone(), name.clone());
        tokio::task::spawn_blocking(move || {
            let removed = auto_allow::remove(&file, &name)?;
            Ok::<_, auto_allow::PersistError>(removed.then(|| state.policies.reload()))
        })
        .await
    };
    match revoked {
        Ok(Ok(Some(Ok(_)))) => {
            tracing::info!(rule = %name, "always-allow rule revoked");
            json_response(StatusCode::OK, &json!({"deleted": true}))
        }
        Ok(Ok(Some(Err(e)))) => {
            tracing::error!("auto-allowed rule {name} removed but the policy did not reload: {e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "rule not found"),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the rule removal did not finish",
        ),
    }
}
