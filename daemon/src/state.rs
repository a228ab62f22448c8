//! What every request handler shares: the running policy, approvals, the audit trail,
//! call counts, metrics and the event stream. Passed explicitly; no globals.

use std::sync::Mutex;
use std::time::Instant;

use chrono::Utc;
use rampart_engine::{CallCounter, Decision, EvalOptions, ToolCall};
use tokio::sync::broadcast;

use crate::approvals::ApprovalStore;
use crate::metrics::Metrics;
use crate::policy_store::PolicyStore;
use crate::recorder::Recorder;

/// Whether decisions are enforced or only observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Monitor,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

pub struct AppState {
    pub policies: PolicyStore,
    pub approvals: ApprovalStore,
    pub recorder: Recorder,
    pub counter: Mutex<CallCounter>,
    pub token: String,
    pub mode: Mode,
    /// `--strict`: execs the preload library cannot follow into are denied.
    pub strict: Option<crate::socket::Strict>,
    pub verify_url: Option<String>,
    /// The verifier's timeout and fail-mode overrides and its verdict cache.
    pub verify: crate::delegate::VerifySettings,
    /// Client for webhook and verifier calls (no redirects).
    pub http_client: reqwest::Client,
    pub metrics: Metrics,
    /// Server-sent event frames (compact JSON) for `/v1/events/stream`.
    pub events: broadcast::Sender<String>,
    pub started: Instant,
    /// Turns true when the daemon stops: requests held for an approval answer at once.
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// Resolves once the daemon is stopping.
    pub async fn stopping(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

impl AppState {
    /// Evaluates `call` against the running policy: counted toward rate limits
    /// (`enforce`, for a call about to happen) or as a preview that counts nothing.
    pub fn decide(&self, call: &ToolCall, enforce: bool) -> Decision {
        let engine = self.policies.current();
        let opts = EvalOptions {
            now_ms: Utc::now().timestamp_millis(),
            verifier_configured: self.verify_url.is_some(),
            resolve_symlinks: true,
            ..EvalOptions::default()
        };
        // The counter is locked only for calls a `call_count` rule can see: deciders on
        // every core would otherwise queue behind each other for the whole evaluation.
        if enforce && engine.counts_calls_of(&call.tool) {
            let mut counter = self.counter.lock().expect("counter lock");
            engine.enforce(call, &mut counter, &opts)
        } else {
            engine.evaluate(call, &opts)
        }
    }

    /// Tells stream subscribers that the approval queue changed.
    pub fn announce_approvals(&self) {
        let _ = self.events.send(r#"{"type":"approvals"}"#.to_string());
    }
}
