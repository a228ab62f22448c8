//! `GET /v1/approvals`, `GET /v1/approvals/{id}`, `POST /v1/approvals/{id}/resolve`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{Body, Shared, authenticate, decode_object, error, json_response, rfc3339};
use crate::approvals::{Approval, ApprovalError, Status};
use crate::recorder::Record;

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
        v["persisted"] = Value::Bool(false);
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
            state.announce_approvals();
            json_response(
                StatusCode::OK,
                &json!({"id": a.id, "status": a.status.as_str(), "approved": approved, "persisted": false}),
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
