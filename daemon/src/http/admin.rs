//! Health, status, reload, test, metrics, the event stream and audit queries.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use rampart_engine::{EvalOptions, ToolCall};
use serde_json::{Map, Value, json};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;

use super::{Body, Shared, authenticate, decode_object, error, json_response};

pub async fn healthz(State(state): State<Shared>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "service": "rampart", "status": "ok", "mode": state.mode.as_str(),
            "uptime_seconds": state.started.elapsed().as_secs(),
            "version": env!("CARGO_PKG_VERSION"),
        }),
    )
}

pub async fn metrics(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&state, &headers, None) {
        return r;
    }
    let text = state.metrics.render(
        state.approvals.pending_count(),
        state.policies.current().policy_count(),
        state.started.elapsed(),
    );
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

pub async fn status(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&state, &headers, None) {
        return r;
    }
    let engine = state.policies.current();
    let config = engine.config();
    let now = Utc::now().timestamp_millis();
    let counter = state.counter.lock().expect("counter lock").clone();
    let mut counts = Map::new();
    for tool in [
        "exec",
        "read",
        "write",
        "edit",
        "fetch",
        "web_fetch",
        "http",
        "browser",
        "mcp",
    ] {
        let n = counter.count(tool, 3_600_000, now);
        if n > 0 {
            counts.insert(tool.into(), Value::from(n));
        }
    }
    json_response(
        StatusCode::OK,
        &json!({
            "config_path": state.policies.label(),
            "mode": state.mode.as_str(),
            "default_action": engine.default_action().as_str(),
            "policy_count": engine.policy_count(),
            "rule_count": config.policies.iter().filter(|p| p.enabled).map(|p| p.rules.len()).sum::<usize>(),
            "call_counts": counts,
        }),
    )
}

pub async fn reload(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&state, &headers, None) {
        return r;
    }
    if state.policies.cooldown_active() {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "reload rate limited, try again in 1 second",
        );
    }
    match state.policies.reload() {
        Ok(stats) => {
            crate::serve::warn_unconfigured_verify(&state);
            tracing::info!(policies = stats.policies, "policy reloaded");
            json_response(
                StatusCode::OK,
                &json!({
                    "success": true, "policies_loaded": stats.policies,
                    "rules_total": stats.rules, "reload_time_ms": stats.millis,
                }),
            )
        }
        Err(e) => {
            tracing::error!("policy reload failed, keeping the running policy: {e}");
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"success": false, "error": e.to_string()}),
            )
        }
    }
}

pub async fn test(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    if let Err(r) = authenticate(&state, &headers, None) {
        return r;
    }
    let body = match decode_object(body) {
        Ok(b) => b,
        Err(_) => return error(StatusCode::BAD_REQUEST, "invalid request body"),
    };
    let Some(command) = body
        .get("command")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    else {
        return error(StatusCode::BAD_REQUEST, "command is required");
    };
    let tool = body
        .get("tool")
        .and_then(Value::as_str)
        .unwrap_or("exec")
        .to_string();
    let key = if matches!(tool.as_str(), "read" | "write") {
        "path"
    } else {
        "command"
    };
    let mut call = ToolCall::with_param(&tool, key, command);
    call.agent = body
        .get("agent")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .into();
    call.session = body
        .get("session")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .into();
    let d = state
        .policies
        .current()
        .evaluate(&call, &EvalOptions::default());
    json_response(
        StatusCode::OK,
        &json!({
            "command": command, "tool": tool, "action": d.action.as_str(),
            "message": d.message, "matched_policies": d.matched(), "policy_scope": "global",
        }),
    )
}

pub async fn events(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authenticate(&state, &headers, q.get("token").map(String::as_str)) {
        return r;
    }
    let first = tokio_stream::once(Ok::<_, Infallible>(
        Event::default().data(r#"{"type":"connected"}"#),
    ));
    let rest = BroadcastStream::new(state.events.subscribe())
        .filter_map(|frame| frame.ok())
        .map(|frame| Ok::<_, Infallible>(Event::default().data(frame)));
    let mut resp = Sse::new(first.chain(rest)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

pub async fn audit_events(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authenticate(&state, &headers, None) {
        return r;
    }
    match state.recorder.query(&q) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err((status, message)) => error(status, &message),
    }
}
