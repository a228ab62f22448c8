//! One verification: mask the call, build the prompt, ask the provider, read the answer.
//! Shared by the server and `eval`, so what `eval` measures is what the daemon gets.

use serde_json::{Map, Value};

use crate::config::DEFAULT_MAX_TOKENS;
use crate::parse::{Verdict, parse_answer};
use crate::prompt::{CallView, fresh_nonce, user_prompt};
use crate::providers::{Provider, ProviderError};
use crate::redact::{mask_params, mask_text};
use crate::request::VerifyRequest;

/// The health check's prompt and answer budget (the reference's `generate("say ok", 5)`).
const HEALTH_PROMPT: &str = "say ok";
const HEALTH_MAX_TOKENS: u32 = 5;

/// The parts of a request that leave the machine or are logged, masked. Even the tool,
/// agent and session names are, since a caller other than the daemon may put anything there.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskedCall {
    pub tool: String,
    pub agent: Option<String>,
    pub session: Option<String>,
    pub params: Map<String, Value>,
    /// `None` when absent or empty (the reference skips an empty context).
    pub task_context: Option<String>,
    pub lineage: Vec<String>,
}

impl MaskedCall {
    pub fn from_request(req: &VerifyRequest) -> MaskedCall {
        MaskedCall {
            tool: mask_text(&req.tool).into_owned(),
            agent: req.agent.as_deref().map(|a| mask_text(a).into_owned()),
            session: req.session.as_deref().map(|s| mask_text(s).into_owned()),
            params: mask_params(&req.params),
            task_context: req
                .task_context
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(|c| mask_text(c).into_owned()),
            lineage: req
                .lineage
                .iter()
                .map(|l| mask_text(l).into_owned())
                .collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("provider: {0}")]
    Provider(#[from] ProviderError),
    /// The answer names neither ALLOW nor DENY. The reference allows silently; ours reports
    /// it like a provider failure so the configured fail mode decides.
    #[error("the model's answer says neither ALLOW nor DENY: {0:?}")]
    Undecided(String),
}

impl VerifyError {
    pub fn class(&self) -> &'static str {
        match self {
            VerifyError::Provider(e) => e.class(),
            VerifyError::Undecided(_) => "undecided_answer",
        }
    }
}

pub struct Verifier {
    provider: Provider,
    system_prompt: String,
}

impl Verifier {
    pub fn new(provider: Provider, system_prompt: String) -> Verifier {
        Verifier {
            provider,
            system_prompt,
        }
    }

    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The model named in upstream requests and reported in answers.
    pub fn model(&self) -> &str {
        &self.provider.config().model
    }

    pub async fn review(&self, call: &MaskedCall) -> Result<Verdict, VerifyError> {
        let view = CallView {
            tool: &call.tool,
            params: &call.params,
            task_context: call.task_context.as_deref(),
            lineage: &call.lineage,
        };
        let prompt = user_prompt(&view, &fresh_nonce());
        let answer = self
            .provider
            .generate(&self.system_prompt, &prompt, DEFAULT_MAX_TOKENS)
            .await?;
        parse_answer(&answer).ok_or_else(|| {
            let head: String = answer.chars().take(200).collect();
            VerifyError::Undecided(mask_text(&head).into_owned())
        })
    }

    /// A real round trip to the provider, for `GET /health`.
    pub async fn probe(&self) -> Result<String, ProviderError> {
        self.provider
            .generate(&self.system_prompt, HEALTH_PROMPT, HEALTH_MAX_TOKENS)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_every_part() {
        let req = VerifyRequest {
            tool: "exec".into(),
            params: json!({"command": "curl -H 'Authorization: Bearer abc' https://x"})
                .as_object()
                .unwrap()
                .clone(),
            task_context: Some("use API_KEY=abc123secret456".into()),
            lineage: vec!["bash -c 'password=hunter2 ./x'".into()],
            agent: Some("bot password=hunter2".into()),
            ..VerifyRequest::default()
        };
        let m = MaskedCall::from_request(&req);
        assert_eq!(
            m.params["command"],
            "curl -H 'Authorization: Bearer [REDACTED] https://x"
        );
        assert_eq!(m.task_context.as_deref(), Some("use API_KEY=[REDACTED]"));
        assert_eq!(m.lineage, ["bash -c 'password=[REDACTED] ./x'"]);
        assert_eq!(m.agent.as_deref(), Some("bot password=[REDACTED]"));
        assert_eq!(m.tool, "exec");

        let empty = VerifyRequest {
            task_context: Some(String::new()),
            ..VerifyRequest::default()
        };
        assert_eq!(MaskedCall::from_request(&empty).task_context, None);
    }
}
