//! Configuration from the environment (HTTP API spec §14.2 and §14.7), and the choice of
//! provider.
//!
//! Every variable is read once, at startup, through [`Config::from_lookup`] so tests can feed
//! a map instead of the process environment. An empty variable counts as unset, as Python's
//! `os.getenv(...) or default` does in the reference.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::prompt;

/// The reference's default model.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
/// What the reference asks Ollama when `VERIFY_MODEL` names a hosted model it has no key for.
pub const OLLAMA_FALLBACK_MODEL: &str = "qwen2.5-coder:1.5b";
/// The Anthropic model used when `VERIFY_PROVIDER=anthropic` and `VERIFY_MODEL` is unset.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-3-haiku-20240307";
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_OLLAMA_URL: &str = "http://localhost:11434";
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 8090;
pub const DEFAULT_RATE_LIMIT: u32 = 60;
/// The reference's upstream timeout. Ours bounds the whole provider call, retries included,
/// so the daemon's 15 s default is never outlasted.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_TOKENS: u32 = 150;

/// The environment variables, for `--help`.
pub const ENVIRONMENT_HELP: &str = "\
Environment:
  VERIFY_MODEL          model to ask [default: gpt-4o-mini]; also picks the provider:
                        a name containing \"claude\" with ANTHROPIC_API_KEY set -> Anthropic,
                        containing \"gpt\" with OPENAI_API_KEY set -> OpenAI, else Ollama
                        (asking qwen2.5-coder:1.5b when the name is a gpt/claude model)
  VERIFY_PROVIDER       openai | anthropic | ollama: overrides the choice above
  OPENAI_API_KEY        key for OpenAI or any OpenAI-compatible server (optional for the latter)
  OPENAI_BASE_URL       [default: https://api.openai.com/v1]; e.g. vLLM, llama.cpp, LM Studio,
                        http://localhost:11434/v1 for Ollama's OpenAI-compatible API
  ANTHROPIC_API_KEY     key for Anthropic's messages API
  ANTHROPIC_BASE_URL    [default: https://api.anthropic.com]
  OLLAMA_URL            [default: http://localhost:11434]
  VERIFY_OLLAMA_API     chat | generate: Ollama's /api/chat or /api/generate [default: chat]
  VERIFY_TIMEOUT        seconds for the whole provider call, 429 retries included [default: 10]
  VERIFY_FAIL_OPEN      1 (default): a provider failure answers allow, marked with \"error\";
                        0: it answers 503 so the daemon applies its own fail mode
  VERIFY_SYSTEM_PROMPT  replaces the system prompt entirely
  VERIFY_EXTRA_RULES    appended to the system prompt under ADDITIONAL RULES
  VERIFY_HOST           address to bind [default: 127.0.0.1] (no authentication: keep it local)
  VERIFY_PORT           port to bind [default: 8090]; 0 picks a free port
  VERIFY_RATE_LIMIT     /verify requests per minute before 429 [default: 60]
  VERIFY_LOG_DIR        decision log and text log directory [default: ~/.rampart/verify]
  VERIFY_LOG_RAW_PARAMS 1: log params unmasked in decisions.jsonl (secrets included!)
  RUST_LOG              log filter for the text log [default: info]";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("VERIFY_PROVIDER={0:?} is not a provider; use openai, anthropic or ollama")]
    Provider(String),
    #[error("VERIFY_OLLAMA_API={0:?} is not an Ollama API; use chat or generate")]
    OllamaApi(String),
    #[error("VERIFY_PORT={0:?} is not a port number (0-65535)")]
    Port(String),
    #[error("VERIFY_TIMEOUT={0:?} is not a positive number of seconds (at most 300)")]
    Timeout(String),
    #[error("{var}={value:?} is not an http:// or https:// URL")]
    Url { var: &'static str, value: String },
    #[error("VERIFY_LOG_DIR is unset and HOME is unknown; set VERIFY_LOG_DIR")]
    NoHome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
    Ollama,
}

impl ProviderKind {
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Ollama => "ollama",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OllamaApi {
    Chat,
    Generate,
}

/// Everything needed to reach one provider.
#[derive(Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// OpenAI: the API base including `/v1`; Anthropic: the host; Ollama: the server URL.
    /// Never ends with `/`.
    pub base_url: String,
    pub api_key: Option<String>,
    /// The model named in upstream requests (and reported as `model`).
    pub model: String,
    pub ollama_api: OllamaApi,
    pub timeout: Duration,
    pub max_tokens: u32,
}

// Hand-written so a key never reaches a log line through `{:?}`.
impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[set]"))
            .field("model", &self.model)
            .field("ollama_api", &self.ollama_api)
            .field("timeout", &self.timeout)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub provider: ProviderConfig,
    /// `VERIFY_MODEL` as given (or its default), which chose the provider.
    pub requested_model: String,
    pub host: String,
    pub port: u16,
    /// `None` when `VERIFY_LOG_DIR` is unset and `HOME` unknown: only serving needs it (see
    /// [`Config::log_dir`]), so `eval` still runs.
    pub log_dir: Option<PathBuf>,
    pub rate_limit: u32,
    pub system_prompt: String,
    pub fail_open: bool,
    pub log_raw_params: bool,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `get`; empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());

        let model_var = var("VERIFY_MODEL");
        let requested_model = model_var.clone().unwrap_or_else(|| DEFAULT_MODEL.into());
        let openai_key = var("OPENAI_API_KEY");
        let anthropic_key = var("ANTHROPIC_API_KEY");

        let kind = match var("VERIFY_PROVIDER") {
            Some(p) => match p.trim().to_ascii_lowercase().as_str() {
                "openai" => ProviderKind::OpenAi,
                "anthropic" => ProviderKind::Anthropic,
                "ollama" => ProviderKind::Ollama,
                _ => return Err(ConfigError::Provider(p)),
            },
            None => select_provider(&requested_model, &openai_key, &anthropic_key),
        };
        let names_hosted = {
            let m = requested_model.to_ascii_lowercase();
            m.contains("gpt") || m.contains("claude")
        };
        let (base_var, default_base, api_key, model) = match kind {
            ProviderKind::OpenAi => (
                "OPENAI_BASE_URL",
                DEFAULT_OPENAI_BASE_URL,
                openai_key,
                requested_model.clone(),
            ),
            ProviderKind::Anthropic => (
                "ANTHROPIC_BASE_URL",
                DEFAULT_ANTHROPIC_BASE_URL,
                anthropic_key,
                model_var
                    .clone()
                    .unwrap_or_else(|| DEFAULT_ANTHROPIC_MODEL.into()),
            ),
            ProviderKind::Ollama => (
                "OLLAMA_URL",
                DEFAULT_OLLAMA_URL,
                None,
                if names_hosted {
                    OLLAMA_FALLBACK_MODEL.into()
                } else {
                    requested_model.clone()
                },
            ),
        };
        let base_url = http_url(base_var, var(base_var).as_deref().unwrap_or(default_base))?;

        let ollama_api = match var("VERIFY_OLLAMA_API") {
            None => OllamaApi::Chat,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "chat" => OllamaApi::Chat,
                "generate" => OllamaApi::Generate,
                _ => return Err(ConfigError::OllamaApi(v)),
            },
        };
        let timeout = match var("VERIFY_TIMEOUT") {
            None => DEFAULT_TIMEOUT,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(s) if s > 0.0 && s <= 300.0 => Duration::from_secs_f64(s),
                _ => return Err(ConfigError::Timeout(v)),
            },
        };

        let host = var("VERIFY_HOST").unwrap_or_else(|| DEFAULT_HOST.into());
        let port = match var("VERIFY_PORT") {
            None => DEFAULT_PORT,
            Some(v) => v.trim().parse().map_err(|_| ConfigError::Port(v))?,
        };
        let log_dir = match var("VERIFY_LOG_DIR") {
            Some(d) => Some(expand_home(&d, var("HOME"))?),
            None => var("HOME").map(|h| PathBuf::from(h).join(".rampart/verify")),
        };
        // The reference: `int(...)`, falling back to 60 on a bad or non-positive value.
        let rate_limit = var("VERIFY_RATE_LIMIT")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|&n| n > 0)
            .map_or(DEFAULT_RATE_LIMIT, |n| n.min(u32::MAX as i64) as u32);

        let system_prompt =
            prompt::system_prompt(var("VERIFY_SYSTEM_PROMPT"), var("VERIFY_EXTRA_RULES"));

        Ok(Config {
            provider: ProviderConfig {
                kind,
                base_url,
                api_key,
                model,
                ollama_api,
                timeout,
                max_tokens: DEFAULT_MAX_TOKENS,
            },
            requested_model,
            host,
            port,
            log_dir,
            rate_limit,
            system_prompt,
            fail_open: var("VERIFY_FAIL_OPEN").is_none_or(|v| !is_false(&v)),
            log_raw_params: var("VERIFY_LOG_RAW_PARAMS").is_some_and(|v| is_true(&v)),
        })
    }
}

impl Config {
    /// The log directory, which serving requires.
    pub fn log_dir(&self) -> Result<&std::path::Path, ConfigError> {
        self.log_dir.as_deref().ok_or(ConfigError::NoHome)
    }
}

/// The reference's rule (§14.2): a hosted model's provider only when its key is present.
fn select_provider(
    model: &str,
    openai_key: &Option<String>,
    anthropic_key: &Option<String>,
) -> ProviderKind {
    let m = model.to_ascii_lowercase();
    if m.contains("claude") && anthropic_key.is_some() {
        ProviderKind::Anthropic
    } else if m.contains("gpt") && openai_key.is_some() {
        ProviderKind::OpenAi
    } else {
        ProviderKind::Ollama
    }
}

fn http_url(var: &'static str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() => Ok(v.trim_end_matches('/').to_string()),
        _ => Err(ConfigError::Url {
            var,
            value: value.to_string(),
        }),
    }
}

fn expand_home(dir: &str, home: Option<String>) -> Result<PathBuf, ConfigError> {
    if dir == "~" || dir.starts_with("~/") {
        let home = home.ok_or(ConfigError::NoHome)?;
        return Ok(PathBuf::from(home).join(dir.trim_start_matches('~').trim_start_matches('/')));
    }
    Ok(PathBuf::from(dir))
}

fn is_false(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "no" | "off"
    )
}

fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("HOME".to_string(), "/home/u".to_string())])
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        // No key for gpt-4o-mini: the reference falls back to Ollama with its small model.
        assert_eq!(c.provider.kind, ProviderKind::Ollama);
        assert_eq!(c.provider.model, OLLAMA_FALLBACK_MODEL);
        assert_eq!(c.requested_model, DEFAULT_MODEL);
        assert_eq!(c.provider.base_url, DEFAULT_OLLAMA_URL);
        assert_eq!(c.provider.ollama_api, OllamaApi::Chat);
        assert_eq!(c.provider.timeout, DEFAULT_TIMEOUT);
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8090));
        assert_eq!(
            c.log_dir().unwrap(),
            PathBuf::from("/home/u/.rampart/verify")
        );
        assert_eq!(c.rate_limit, 60);
        assert!(c.fail_open);
        assert!(!c.log_raw_params);
    }

    #[test]
    fn model_and_keys_choose_the_provider() {
        let c = config(&[("OPENAI_API_KEY", "k")]).unwrap();
        assert_eq!(c.provider.kind, ProviderKind::OpenAi);
        assert_eq!(c.provider.model, "gpt-4o-mini");
        assert_eq!(c.provider.base_url, DEFAULT_OPENAI_BASE_URL);
        assert_eq!(c.provider.api_key.as_deref(), Some("k"));

        let c = config(&[
            ("VERIFY_MODEL", "Claude-3-5-haiku-latest"),
            ("ANTHROPIC_API_KEY", "a"),
            ("OPENAI_API_KEY", "o"),
        ])
        .unwrap();
        assert_eq!(c.provider.kind, ProviderKind::Anthropic);
        assert_eq!(c.provider.model, "Claude-3-5-haiku-latest");
        assert_eq!(c.provider.api_key.as_deref(), Some("a"));

        // a claude model without its key does not go to OpenAI
        let c = config(&[("VERIFY_MODEL", "claude-x"), ("OPENAI_API_KEY", "o")]).unwrap();
        assert_eq!(c.provider.kind, ProviderKind::Ollama);
        assert_eq!(c.provider.model, OLLAMA_FALLBACK_MODEL);

        let c = config(&[("VERIFY_MODEL", "llama3.2:3b"), ("OPENAI_API_KEY", "o")]).unwrap();
        assert_eq!(c.provider.kind, ProviderKind::Ollama);
        assert_eq!(c.provider.model, "llama3.2:3b");

        // empty counts as unset
        let c = config(&[("OPENAI_API_KEY", "")]).unwrap();
        assert_eq!(c.provider.kind, ProviderKind::Ollama);
    }

    #[test]
    fn provider_override() {
        let c = config(&[
            ("VERIFY_PROVIDER", "OpenAI"),
            ("VERIFY_MODEL", "qwen2.5-coder:7b"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1/"),
        ])
        .unwrap();
        assert_eq!(c.provider.kind, ProviderKind::OpenAi);
        assert_eq!(c.provider.model, "qwen2.5-coder:7b");
        assert_eq!(c.provider.base_url, "http://127.0.0.1:8000/v1");
        assert_eq!(c.provider.api_key, None);

        let c = config(&[("VERIFY_PROVIDER", "anthropic")]).unwrap();
        assert_eq!(c.provider.kind, ProviderKind::Anthropic);
        assert_eq!(c.provider.model, DEFAULT_ANTHROPIC_MODEL);

        let c = config(&[("VERIFY_PROVIDER", "ollama"), ("OPENAI_API_KEY", "o")]).unwrap();
        assert_eq!(c.provider.kind, ProviderKind::Ollama);

        assert!(matches!(
            config(&[("VERIFY_PROVIDER", "bedrock")]),
            Err(ConfigError::Provider(_))
        ));
    }

    #[test]
    fn numbers_and_flags() {
        let c = config(&[
            ("VERIFY_RATE_LIMIT", "5"),
            ("VERIFY_PORT", "0"),
            ("VERIFY_TIMEOUT", "0.5"),
            ("VERIFY_FAIL_OPEN", "0"),
            ("VERIFY_LOG_RAW_PARAMS", "1"),
            ("VERIFY_LOG_DIR", "~/logs"),
            ("VERIFY_OLLAMA_API", "generate"),
        ])
        .unwrap();
        assert_eq!(c.rate_limit, 5);
        assert_eq!(c.port, 0);
        assert_eq!(c.provider.timeout, Duration::from_millis(500));
        assert!(!c.fail_open);
        assert!(c.log_raw_params);
        assert_eq!(c.log_dir().unwrap(), PathBuf::from("/home/u/logs"));
        assert_eq!(c.provider.ollama_api, OllamaApi::Generate);

        for bad in ["abc", "0", "-3", "1.5"] {
            assert_eq!(
                config(&[("VERIFY_RATE_LIMIT", bad)]).unwrap().rate_limit,
                60
            );
        }
        assert!(!config(&[("VERIFY_FAIL_OPEN", "false")]).unwrap().fail_open);
        assert!(config(&[("VERIFY_FAIL_OPEN", "1")]).unwrap().fail_open);
        assert!(matches!(
            config(&[("VERIFY_PORT", "99999")]),
            Err(ConfigError::Port(_))
        ));
        assert!(matches!(
            config(&[("VERIFY_TIMEOUT", "0")]),
            Err(ConfigError::Timeout(_))
        ));
        assert!(matches!(
            config(&[("OLLAMA_URL", "localhost:11434")]),
            Err(ConfigError::Url { .. })
        ));
    }

    #[test]
    fn debug_hides_the_key() {
        let c = config(&[("OPENAI_API_KEY", "sk-very-secret")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert!(shown.contains("[set]"));
    }
}
