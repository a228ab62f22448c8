//! The HTTP API (HTTP API spec): small handlers over shared [`AppState`].

mod admin;
mod approvals;
pub mod canonical;
mod eval;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};

use crate::home::tokens_equal;
use crate::state::AppState;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1 << 20;

pub type Shared = Arc<AppState>;

/// The whole API.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/healthz", get(admin::healthz).fallback(not_found))
        .route("/metrics", get(admin::metrics).fallback(not_found))
        .route("/v1/tool/{name}", post(eval::tool).fallback(not_found))
        .route(
            "/v1/preflight/{name}",
            post(eval::preflight).fallback(not_found),
        )
        .route("/v1/approvals", get(approvals::list).fallback(not_found))
        .route(
            "/v1/approvals/{id}",
            get(approvals::get_one).fallback(not_found),
        )
        .route(
            "/v1/approvals/{id}/resolve",
            post(approvals::resolve).fallback(not_found),
        )
        .route(
            "/v1/rules/auto-allowed",
            get(approvals::auto_allowed).fallback(not_found),
        )
        .route(
            "/v1/rules/auto-allowed/",
            delete(approvals::revoke_auto_allowed).fallback(not_found),
        )
        .route(
            "/v1/rules/auto-allowed/{name}",
            delete(approvals::revoke_auto_allowed).fallback(not_found),
        )
        .route("/v1/status", get(admin::status).fallback(not_found))
        .route("/v1/policy/reload", post(admin::reload).fallback(not_found))
        .route("/v1/test", post(admin::test).fallback(not_found))
        .route("/v1/events/stream", get(admin::events).fallback(not_found))
        .route(
            "/v1/audit/events",
            get(admin::audit_events).fallback(not_found),
        )
        .fallback(not_found)
        // Handlers take the body as `Result<Bytes, _>`, so an oversized body reaches them as
        // an error they answer with the documented JSON 400.
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

/// A JSON response with a trailing newline.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut text = body.to_string();
    text.push('\n');
    let mut resp = (status, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

/// Checks the admin token: `Authorization: Bearer <token>` (or `?token=` where allowed).
pub fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<(), Response> {
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = header_token.or(query_token.filter(|t| !t.is_empty())) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "missing authorization token",
        ));
    };
    if !tokens_equal(token, &state.token) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid authorization token",
        ));
    }
    Ok(())
}

/// A request body as handlers receive it.
pub type Body = Result<Bytes, BytesRejection>;

/// Decodes a body holding exactly one JSON object (HTTP API spec §1.2 messages).
pub fn decode_object(body: Body) -> Result<Map<String, Value>, Response> {
    let bad = |m: String| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("invalid request body: {m}"),
        )
    };
    let body = match body {
        Ok(b) if b.len() <= BODY_LIMIT => b,
        Ok(_) => return Err(bad("http: request body too large".into())),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(bad("http: request body too large".into()));
        }
        Err(e) => return Err(bad(e.body_text())),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("EOF".into()));
    }
    let mut stream = serde_json::Deserializer::from_slice(&body).into_iter::<Value>();
    let first = match stream.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(bad(e.to_string())),
        None => return Err(bad("EOF".into())),
    };
    match stream.next() {
        None => {}
        Some(Ok(_)) => {
            return Err(bad(
                "request body must contain exactly one JSON value".into()
            ));
        }
        Some(Err(e)) => return Err(bad(format!("invalid trailing data: {e}"))),
    }
    match first {
        Value::Object(m) => Ok(m),
        other => Err(bad(format!(
            "json: cannot unmarshal {} into Go value of type request",
            match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                _ => "null",
            }
        ))),
    }
}

/// RFC 3339 with second precision.
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
