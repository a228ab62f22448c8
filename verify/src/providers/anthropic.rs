//! Anthropic's messages API.

use serde_json::{Value, json};

use super::{ProviderError, WireRequest};
use crate::config::ProviderConfig;

pub const ANTHROPIC_VERSION: &str = "2023-06-01";

pub(super) fn request(
    config: &ProviderConfig,
    system: &str,
    prompt: &str,
    max_tokens: u32,
) -> WireRequest {
    let mut headers = vec![("anthropic-version", ANTHROPIC_VERSION.to_string())];
    if let Some(key) = &config.api_key {
        headers.push(("x-api-key", key.clone()));
    }
    WireRequest {
        url: format!("{}/v1/messages", config.base_url),
        headers,
        body: json!({
            "model": config.model,
            "system": system,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }),
    }
}

/// The first text block (`content[0].text` in the reference; a model that opens with
/// another block type, such as thinking, is still read).
pub(super) fn answer(body: &Value) -> Result<String, ProviderError> {
    body.get("content")
        .and_then(Value::as_array)
        .and_then(|blocks| {
            blocks
                .iter()
                .find_map(|b| b.get("text").and_then(Value::as_str))
        })
        .map(str::to_string)
        .ok_or_else(|| ProviderError::InvalidResponse("no text block in content".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OllamaApi, ProviderKind};
    use std::time::Duration;

    #[test]
    fn wire_format() {
        let config = ProviderConfig {
            kind: ProviderKind::Anthropic,
            base_url: "http://h".into(),
            api_key: Some("ak".into()),
            model: "claude-3-haiku-20240307".into(),
            ollama_api: OllamaApi::Chat,
            timeout: Duration::from_secs(1),
            max_tokens: 150,
        };
        let r = request(&config, "sys", "user", 150);
        assert_eq!(r.url, "http://h/v1/messages");
        assert_eq!(
            r.headers,
            [
                ("anthropic-version", "2023-06-01".to_string()),
                ("x-api-key", "ak".to_string())
            ]
        );
        assert_eq!(
            r.body,
            json!({"model": "claude-3-haiku-20240307", "system": "sys", "max_tokens": 150,
                   "messages": [{"role": "user", "content": "user"}]})
        );
        let a = json!({"content": [{"type": "text", "text": "DENY: x"}]});
        assert_eq!(answer(&a).unwrap(), "DENY: x");
        let a = json!({"content": [{"type": "thinking", "thinking": "hm"},
                                   {"type": "text", "text": "ALLOW"}]});
        assert_eq!(answer(&a).unwrap(), "ALLOW");
        assert!(answer(&json!({"content": []})).is_err());
        assert!(answer(&json!({"type": "error"})).is_err());
    }
}
