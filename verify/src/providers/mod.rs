//! The model providers, each in its real wire format (HTTP API spec §14.3), and the retry
//! policy around them (§14.2).
//!
//! One [`Provider`] is built at startup and shared: its HTTP client keeps connections to the
//! provider alive across requests (the reference builds a client per request; §14.8 allows
//! reuse), which is most of the sidecar's own latency budget.

pub mod anthropic;
pub mod ollama;
pub mod openai;
mod transport;

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::config::{ProviderConfig, ProviderKind};

/// Retries after an HTTP 429, for the hosted APIs (Ollama is local and never rate limits).
const MAX_RETRIES: u32 = 2;
/// The reference's backoff: 1 s, then 2 s.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// A `Retry-After` longer than this is not waited for: the call fails at once (and the
/// server's fail mode applies) rather than holding the agent.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Transport(String),
    #[error("HTTP {status}: {excerpt}")]
    Status {
        status: u16,
        excerpt: String,
        retry_after: Option<Duration>,
    },
    #[error("still rate limited (HTTP 429) after {0} retries")]
    RateLimited(u32),
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    #[error("invalid answer: {0}")]
    InvalidResponse(String),
}

impl ProviderError {
    /// A short, stable name for the `error` field of fail-open answers and for logs.
    pub fn class(&self) -> &'static str {
        match self {
            ProviderError::Timeout(_) => "provider_timeout",
            ProviderError::Transport(_) => "provider_unreachable",
            ProviderError::Status { .. } => "provider_http_error",
            ProviderError::RateLimited(_) => "provider_rate_limited",
            ProviderError::TooLarge(_) => "provider_response_too_large",
            ProviderError::InvalidResponse(_) => "provider_invalid_response",
        }
    }
}

/// How one wire format builds a request and reads its answer.
struct WireRequest {
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

pub struct Provider {
    config: ProviderConfig,
    client: reqwest::Client,
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Result<Provider, ProviderError> {
        Ok(Provider {
            client: transport::client()?,
            config,
        })
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Asks the model; the whole call, retries and their waits included, ends within the
    /// configured timeout.
    pub async fn generate(
        &self,
        system: &str,
        prompt: &str,
        max_tokens: u32,
    ) -> Result<String, ProviderError> {
        let deadline = Instant::now() + self.config.timeout;
        let retries = match self.config.kind {
            ProviderKind::OpenAi | ProviderKind::Anthropic => MAX_RETRIES,
            ProviderKind::Ollama => 0,
        };
        let wire = self.wire_request(system, prompt, max_tokens);
        let mut attempt = 0;
        loop {
            let result = transport::post_json(
                &self.client,
                &wire.url,
                &wire.headers,
                &wire.body,
                deadline,
                self.config.timeout,
            )
            .await;
            match result {
                Ok(answer) => return self.read_answer(&answer),
                Err(ProviderError::Status {
                    status: 429,
                    retry_after,
                    ..
                }) if retries > 0 => {
                    let wait = match retry_after {
                        Some(w) if w > MAX_RETRY_AFTER => {
                            return Err(ProviderError::RateLimited(attempt));
                        }
                        Some(w) => w,
                        None => BACKOFF_BASE * 2u32.pow(attempt),
                    };
                    if attempt == retries || Instant::now() + wait >= deadline {
                        return Err(ProviderError::RateLimited(attempt));
                    }
                    tracing::info!(
                        attempt = attempt + 1,
                        wait_ms = wait.as_millis() as u64,
                        "provider rate limited (HTTP 429); retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn wire_request(&self, system: &str, prompt: &str, max_tokens: u32) -> WireRequest {
        match self.config.kind {
            ProviderKind::OpenAi => openai::request(&self.config, system, prompt, max_tokens),
            ProviderKind::Anthropic => anthropic::request(&self.config, system, prompt, max_tokens),
            ProviderKind::Ollama => ollama::request(&self.config, system, prompt, max_tokens),
        }
    }

    fn read_answer(&self, body: &Value) -> Result<String, ProviderError> {
        match self.config.kind {
            ProviderKind::OpenAi => openai::answer(body),
            ProviderKind::Anthropic => anthropic::answer(body),
            ProviderKind::Ollama => ollama::answer(&self.config, body),
        }
    }
}

/// The string at a JSON path, or a description of what was missing.
fn text_at(body: &Value, pointer: &str) -> Result<String, ProviderError> {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ProviderError::InvalidResponse(format!("no text at {pointer}")))
}
