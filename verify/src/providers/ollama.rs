//! Ollama's native API: `/api/chat` (default: the system prompt stays a separate message) or
//! `/api/generate` (the reference's choice: system prompt and prompt joined).

use serde_json::{Value, json};

use super::{ProviderError, WireRequest, text_at};
use crate::config::{OllamaApi, ProviderConfig};

pub(super) fn request(
    config: &ProviderConfig,
    system: &str,
    prompt: &str,
    max_tokens: u32,
) -> WireRequest {
    let options = json!({"temperature": 0.1, "num_predict": max_tokens});
    let (path, body) = match config.ollama_api {
        OllamaApi::Chat => (
            "/api/chat",
            json!({
                "model": config.model,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": prompt},
                ],
                "stream": false,
                "options": options,
            }),
        ),
        OllamaApi::Generate => (
            "/api/generate",
            json!({
                "model": config.model,
                "prompt": format!("{system}\n\n{prompt}"),
                "stream": false,
                "options": options,
            }),
        ),
    };
    WireRequest {
        url: format!("{}{path}", config.base_url),
        headers: Vec::new(),
        body,
    }
}

/// `message.content` (chat) or `response` (generate).
pub(super) fn answer(config: &ProviderConfig, body: &Value) -> Result<String, ProviderError> {
    match config.ollama_api {
        OllamaApi::Chat => text_at(body, "/message/content"),
        OllamaApi::Generate => text_at(body, "/response"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderKind;
    use std::time::Duration;

    fn config(api: OllamaApi) -> ProviderConfig {
        ProviderConfig {
            kind: ProviderKind::Ollama,
            base_url: "http://h:11434".into(),
            api_key: None,
            model: "qwen2.5-coder:1.5b".into(),
            ollama_api: api,
            timeout: Duration::from_secs(1),
            max_tokens: 150,
        }
    }

    #[test]
    fn chat_wire_format() {
        let c = config(OllamaApi::Chat);
        let r = request(&c, "sys", "user", 150);
        assert_eq!(r.url, "http://h:11434/api/chat");
        assert!(r.headers.is_empty());
        assert_eq!(
            r.body,
            json!({"model": "qwen2.5-coder:1.5b", "messages": [
                {"role": "system", "content": "sys"}, {"role": "user", "content": "user"}],
                "stream": false, "options": {"temperature": 0.1, "num_predict": 150}})
        );
        let a = json!({"message": {"role": "assistant", "content": "ALLOW"}, "done": true});
        assert_eq!(answer(&c, &a).unwrap(), "ALLOW");
        assert!(answer(&c, &json!({"response": "ALLOW"})).is_err());
    }

    #[test]
    fn generate_wire_format() {
        let c = config(OllamaApi::Generate);
        let r = request(&c, "sys", "user", 5);
        assert_eq!(r.url, "http://h:11434/api/generate");
        assert_eq!(
            r.body,
            json!({"model": "qwen2.5-coder:1.5b", "prompt": "sys\n\nuser", "stream": false,
                   "options": {"temperature": 0.1, "num_predict": 5}})
        );
        assert_eq!(answer(&c, &json!({"response": "DENY"})).unwrap(), "DENY");
    }
}
