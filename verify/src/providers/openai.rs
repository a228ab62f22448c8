//! OpenAI chat completions, which every OpenAI-compatible server (vLLM, llama.cpp's server,
//! LM Studio, Ollama's `/v1`) also speaks.

use serde_json::{Value, json};

use super::{ProviderError, WireRequest, text_at};
use crate::config::ProviderConfig;

pub(super) fn request(
    config: &ProviderConfig,
    system: &str,
    prompt: &str,
    max_tokens: u32,
) -> WireRequest {
    let mut headers = Vec::new();
    // Local compatible servers often need no key; sending `Bearer ` with nothing would be
    // rejected by some of them.
    if let Some(key) = &config.api_key {
        headers.push(("authorization", format!("Bearer {key}")));
    }
    WireRequest {
        url: format!("{}/chat/completions", config.base_url),
        headers,
        body: json!({
            "model": config.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": prompt},
            ],
            "temperature": 0.1,
            "max_tokens": max_tokens,
        }),
    }
}

/// `choices[0].message.content`.
pub(super) fn answer(body: &Value) -> Result<String, ProviderError> {
    text_at(body, "/choices/0/message/content")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OllamaApi, ProviderKind};
    use std::time::Duration;

    fn config(key: Option<&str>) -> ProviderConfig {
        ProviderConfig {
            kind: ProviderKind::OpenAi,
            base_url: "http://h/v1".into(),
            api_key: key.map(str::to_string),
            model: "gpt-4o-mini".into(),
            ollama_api: OllamaApi::Chat,
            timeout: Duration::from_secs(1),
            max_tokens: 150,
        }
    }

    #[test]
    fn wire_format() {
        let r = request(&config(Some("k")), "sys", "user", 150);
        assert_eq!(r.url, "http://h/v1/chat/completions");
        assert_eq!(r.headers, [("authorization", "Bearer k".to_string())]);
        assert_eq!(
            r.body,
            json!({"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "sys"},
                   {"role": "user", "content": "user"}], "temperature": 0.1, "max_tokens": 150})
        );
        assert!(request(&config(None), "s", "u", 5).headers.is_empty());
        let a = json!({"choices": [{"message": {"role": "assistant", "content": "ALLOW"}}]});
        assert_eq!(answer(&a).unwrap(), "ALLOW");
        assert!(answer(&json!({"choices": []})).is_err());
        assert!(answer(&json!({"choices": [{"message": {"content": null}}]})).is_err());
    }
}
