//! The HTTP service (HTTP API spec §14.1): `POST /verify`, `GET /health`, `GET /metrics`,
//! `GET /`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clock::{self, round_ms};
use crate::config::Config;
use crate::health::Health;
use crate::log::{DecisionLog, Entry};
use crate::metrics::{Metrics, Outcome};
use crate::prompt::describe;
use crate::ratelimit::RateLimiter;
use crate::request::parse_request;
use crate::verifier::{MaskedCall, Verifier, VerifyError};

/// Largest `/verify` body, counted on the bytes actually read (§14.8: a chunked body must not
/// slip past a `Content-Length` check).
pub const MAX_BODY: usize = 1 << 20;

/// The reason of every fail-open answer (the reference's wording).
pub const FAIL_OPEN_REASON: &str = "Verification unavailable, allowing by default";

pub struct AppState {
    pub config: Config,
    pub verifier: Verifier,
    pub limiter: RateLimiter,
    pub metrics: Metrics,
    pub health: Health,
    pub log: DecisionLog,
}

impl AppState {
    pub fn new(config: Config, verifier: Verifier, log: DecisionLog) -> AppState {
        AppState {
            limiter: RateLimiter::per_minute(config.rate_limit),
            metrics: Metrics::default(),
            health: Health::default(),
            config,
            verifier,
            log,
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/verify", post(verify))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/", get(root))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The answer to a decided `/verify`.
#[derive(Serialize)]
struct VerifyAnswer<'a> {
    decision: &'a str,
    reason: Option<&'a str>,
    timestamp: &'a str,
    model: &'a str,
    /// Set on fail-open answers only (§14.8): the daemon treats them as failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn detail(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "detail": text }))).into_response()
}

async fn verify(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large();
    }
    let body = match read_limited(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::Read) => {
            return detail(StatusCode::BAD_REQUEST, "Could not read the request body");
        }
    };
    let request = match parse_request(&body) {
        Ok(r) => r,
        Err(errors) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "detail": errors })),
            )
                .into_response();
        }
    };
    if !state.limiter.try_acquire() {
        state
            .metrics
            .record(Outcome::RateLimited, started.elapsed());
        tracing::warn!(tool = %request.tool, "rate limit exceeded");
        return detail(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Rate limit exceeded: max {} requests per minute",
                state.config.rate_limit
            ),
        );
    }

    let call = MaskedCall::from_request(&request);
    let result = state.verifier.review(&call).await;
    let latency = started.elapsed();
    let timestamp = clock::now();
    let model = state.verifier.model();
    let summary: String = describe(&call.tool, &call.params)
        .chars()
        .take(200)
        .collect();

    let (outcome, verdict, error) = match &result {
        Ok(v) => (Outcome::from(v), Some(v.clone()), None),
        Err(e) => {
            tracing::warn!(error = %e, class = e.class(), call = %summary, "verification failed");
            let outcome = if state.config.fail_open {
                Outcome::FailedOpen
            } else {
                Outcome::FailedClosed
            };
            (outcome, None, Some(e))
        }
    };
    state.metrics.record(outcome, latency);

    let (decision, reason) = match (&verdict, outcome) {
        (Some(v), _) => (Some(v.decision.as_str()), v.reason.as_deref()),
        (None, Outcome::FailedOpen) => (Some("allow"), Some(FAIL_OPEN_REASON)),
        (None, _) => (None, None),
    };
    write_log(
        &state, &request, &call, &timestamp, decision, reason, latency, error,
    );
    tracing::info!(
        tool = %call.tool,
        decision = decision.unwrap_or("unavailable"),
        latency_ms = round_ms(latency),
        call = %summary,
        "verified"
    );

    match decision {
        Some(decision) => Json(VerifyAnswer {
            decision,
            reason,
            timestamp: &timestamp,
            model,
            error: error.map(VerifyError::class),
        })
        .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "detail": "Verification unavailable",
                "error": error.map(VerifyError::class),
            })),
        )
            .into_response(),
    }
}

#[allow(clippy::too_many_arguments)]
fn write_log(
    state: &AppState,
    request: &crate::request::VerifyRequest,
    call: &MaskedCall,
    timestamp: &str,
    decision: Option<&str>,
    reason: Option<&str>,
    latency: std::time::Duration,
    error: Option<&VerifyError>,
) {
    let raw = state.config.log_raw_params;
    let entry = Entry {
        timestamp,
        tool: if raw { &request.tool } else { &call.tool },
        params: if raw { &request.params } else { &call.params },
        agent: if raw {
            request.agent.as_deref()
        } else {
            call.agent.as_deref()
        },
        session: if raw {
            request.session.as_deref()
        } else {
            call.session.as_deref()
        },
        task_context: if raw {
            request.task_context.as_deref()
        } else {
            call.task_context.as_deref()
        },
        lineage: if raw { &request.lineage } else { &call.lineage },
        decision,
        reason,
        model: state.verifier.model(),
        latency_ms: round_ms(latency),
        error: error.map(VerifyError::class),
    };
    if let Err(e) = state.log.append(&entry) {
        tracing::error!(path = %state.log.path().display(), error = %e, "decision log write failed");
    }
}

fn too_large() -> Response {
    detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
}

enum BodyError {
    TooLarge,
    Read,
}

/// Reads the body, stopping as soon as it exceeds `limit`.
async fn read_limited(mut body: Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut buf = Vec::new();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => return Ok(buf),
            Some(Err(_)) => return Err(BodyError::Read),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > limit {
                        return Err(BodyError::TooLarge);
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let report = state.health.check(&state.verifier).await;
    let mut body = json!({
        "status": if report.healthy { "healthy" } else { "degraded" },
        "timestamp": clock::now(),
        "model": state.verifier.model(),
        "provider": state.config.provider.kind.name(),
        "latency_ms": round_ms(report.latency),
        "log_dir": state.log.dir().display().to_string(),
    });
    if let Some(e) = report.error {
        body["error"] = json!(e);
    }
    Json(body).into_response()
}

#[derive(Deserialize)]
struct MetricsQuery {
    format: Option<String>,
}

async fn metrics(State(state): State<Arc<AppState>>, Query(q): Query<MetricsQuery>) -> Response {
    let model = state.verifier.model();
    match q.format.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("json") => Json(state.metrics.json(model)).into_response(),
        Some("prometheus") => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            state
                .metrics
                .prometheus(model, state.config.provider.kind.name()),
        )
            .into_response(),
        Some(_) => detail(
            StatusCode::BAD_REQUEST,
            "Unknown metrics format; use json or prometheus",
        ),
    }
}

async fn root(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({
        "service": "rampart-verify",
        "version": crate::API_VERSION,
        "model": state.verifier.model(),
        "provider": state.config.provider.kind.name(),
        "recommended_models": {
            "free": "qwen2.5-coder:1.5b",
            "budget": "gpt-4o-mini",
            "balanced": "claude-3-haiku-20240307",
        },
    }))
    .into_response()
}

async fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not Found")
}

async fn method_not_allowed() -> Response {
    detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}
