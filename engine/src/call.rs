//! The engine's input: a tool call, and the fields policies look at, resolved once.

use serde_json::{Map, Value};

/// Most bytes of a command matched (D6); larger calls fail closed.
pub const MAX_COMMAND_BYTES: usize = 1 << 20;
/// Most bytes of any other matched field (agent, session, tool, path, url, domain).
pub const MAX_FIELD_BYTES: usize = 64 << 10;

/// One tool call as an agent (or the preload library) presents it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolCall {
    pub tool: String,
    pub agent: String,
    pub session: String,
    pub agent_depth: i64,
    /// Legacy parameters (`command`, `path`, `url`, ...).
    pub params: Map<String, Value>,
    /// MCP-style raw arguments; read after `params` for every alias, and by
    /// `tool_param_matches`.
    pub input: Map<String, Value>,
}

impl ToolCall {
    /// An `exec` call of a shell command line.
    pub fn exec(command: impl Into<String>) -> ToolCall {
        let mut params = Map::new();
        params.insert("command".into(), Value::String(command.into()));
        ToolCall {
            tool: "exec".into(),
            params,
            ..ToolCall::default()
        }
    }

    /// A call of `tool` whose subject is `path` (read/write/edit) or `url` (fetch...).
    pub fn with_param(tool: &str, key: &str, value: impl Into<String>) -> ToolCall {
        let mut params = Map::new();
        params.insert(key.into(), Value::String(value.into()));
        ToolCall {
            tool: tool.into(),
            params,
            ..ToolCall::default()
        }
    }
}

/// The security-relevant fields of a call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub command: String,
    pub path: String,
    pub url: String,
    pub domain: String,
    pub workdir: Option<String>,
}

const COMMAND_KEYS: &[&str] = &["command", "cmd", "input"];
const PATH_KEYS: &[&str] = &["file_path", "path", "file", "filepath", "target"];
const URL_KEYS: &[&str] = &["url", "uri", "href"];
const WORKDIR_KEYS: &[&str] = &["WorkDir", "workdir", "cwd"];

fn path_tool(tool: &str) -> bool {
    matches!(tool, "read" | "write" | "edit" | "mcp-destructive")
}

fn url_tool(tool: &str) -> bool {
    matches!(
        tool,
        "fetch" | "http" | "web_fetch" | "browser" | "web_search"
    )
}

/// Resolves aliases (`params` before `input`). Two spellings with different non-blank
/// values, or a non-string value, make the call ambiguous: `Err` names the field.
pub fn resolve(call: &ToolCall) -> Result<Resolved, String> {
    let command_keys: &[&str] = if call.tool == "exec" {
        COMMAND_KEYS
    } else {
        &COMMAND_KEYS[..2]
    };
    let path_keys: &[&str] = if path_tool(&call.tool) {
        PATH_KEYS
    } else {
        &PATH_KEYS[..2]
    };
    let url_keys: &[&str] = if url_tool(&call.tool) {
        URL_KEYS
    } else {
        &URL_KEYS[..1]
    };
    let command = field(call, command_keys, "command")?;
    let path = field(call, path_keys, "path")?;
    let url = field(call, url_keys, "url")?;
    let workdir = field(call, WORKDIR_KEYS, "workdir")?;
    let explicit_domain = field(call, &["domain"], "domain")?;
    field(call, &["scheme"], "scheme")?;
    let domain = match host_of(&url) {
        Some(h) => h,
        None => explicit_domain,
    };
    let domain = domain.trim_end_matches('.').to_lowercase();
    Ok(Resolved {
        command,
        path,
        url,
        domain,
        workdir: (!workdir.is_empty()).then_some(workdir),
    })
}

fn field(call: &ToolCall, keys: &[&str], what: &str) -> Result<String, String> {
    let mut found: Option<&str> = None;
    for map in [&call.params, &call.input] {
        for key in keys {
            let Some(v) = map.get(*key) else { continue };
            let s = match v {
                Value::String(s) => s.as_str(),
                Value::Null => continue,
                _ => {
                    return Err(format!(
                        "ambiguous tool input ({what} parameter `{key}` is not a string); failing closed"
                    ));
                }
            };
            if s.trim().is_empty() {
                continue;
            }
            match found {
                Some(prev) if prev != s => {
                    return Err(format!(
                        "ambiguous tool input ({what} given twice with different values); failing closed"
                    ));
                }
                _ => found = Some(s),
            }
        }
    }
    Ok(found.unwrap_or("").to_string())
}

/// The host of a URL, lowercased, without port or credentials; `None` without a host.
pub fn host_of(url: &str) -> Option<String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .or_else(|| url.strip_prefix("//"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then(|| host.to_lowercase())
}

/// Renders an `input` value as text for `tool_param_matches`.
pub fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(tool: &str, params: Value, input: Value) -> ToolCall {
        ToolCall {
            tool: tool.into(),
            params: params.as_object().cloned().unwrap_or_default(),
            input: input.as_object().cloned().unwrap_or_default(),
            ..ToolCall::default()
        }
    }

    #[test]
    fn aliases_resolve_params_then_input() {
        let r = resolve(&call("exec", json!({}), json!({"cmd": "ls"}))).unwrap();
        assert_eq!(r.command, "ls");
        let r = resolve(&call(
            "read",
            json!({"file_path": "/a"}),
            json!({"path": "/a"}),
        ))
        .unwrap();
        assert_eq!(r.path, "/a");
        let r = resolve(&call(
            "fetch",
            json!({"href": "https://X.Example.COM.:8443/a"}),
            json!({}),
        ))
        .unwrap();
        assert_eq!(r.domain, "x.example.com");
    }

    #[test]
    fn conflicting_or_non_string_aliases_are_ambiguous() {
        assert!(
            resolve(&call(
                "exec",
                json!({"command": "ls", "cmd": "rm -rf /"}),
                json!({})
            ))
            .is_err()
        );
        assert!(
            resolve(&call(
                "exec",
                json!({"command": "ls"}),
                json!({"command": "rm -rf /"})
            ))
            .is_err()
        );
        assert!(resolve(&call("exec", json!({"command": ["rm"]}), json!({}))).is_err());
        assert!(
            resolve(&call(
                "exec",
                json!({"command": "ls", "cmd": "  "}),
                json!({})
            ))
            .is_ok()
        );
    }

    #[test]
    fn hosts() {
        assert_eq!(
            host_of("https://user@webhook.site/x").as_deref(),
            Some("webhook.site")
        );
        assert_eq!(host_of("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(host_of("not a url"), None);
    }
}
