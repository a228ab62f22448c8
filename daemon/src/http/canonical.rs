//! Eval request bodies: tool-name rules and canonicalization (HTTP API spec §4).

use base64::Engine as _;
use rampart_engine::ToolCall;
use rampart_engine::call::host_of;
use serde_json::{Map, Value};

/// Tool classes that must be written exactly in lowercase.
const RESERVED: &[&str] = &[
    "browser",
    "edit",
    "exec",
    "fetch",
    "http",
    "mcp",
    "mcp-dangerous",
    "mcp-destructive",
    "read",
    "web_fetch",
    "write",
];

/// Checks a tool name from the path: trimmed, 1..=128 bytes of `[A-Za-z0-9_.:-]`, and
/// reserved classes only in lowercase.
pub fn tool_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("invalid tool name: tool name is required".into());
    }
    if name.len() > 128 {
        return Err("invalid tool name: tool name exceeds 128 bytes".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
    {
        return Err(format!(
            "invalid tool name: {name:?} has characters outside [A-Za-z0-9_.:-]"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if lower != name && RESERVED.contains(&lower.as_str()) {
        return Err(format!(
            "invalid tool name: reserved tool {lower:?} must be lowercase"
        ));
    }
    Ok(name.to_string())
}

/// A canonicalized eval request.
#[derive(Debug)]
pub struct Canonical {
    pub call: ToolCall,
    /// The params as audited and as sent to webhooks and the verifier.
    pub params: Map<String, Value>,
    pub workdir: String,
}

fn is_url_tool(tool: &str) -> bool {
    matches!(tool, "fetch" | "http" | "web_fetch" | "browser")
}

fn is_path_tool(tool: &str) -> bool {
    matches!(tool, "read" | "write" | "edit" | "mcp-destructive")
}

/// The places a field may be written: the top level, `params`, `input`,
/// `params.arguments` and `params.tool_input`.
fn sources(body: &Map<String, Value>) -> Vec<&Map<String, Value>> {
    let mut out = vec![body];
    for key in ["params", "input"] {
        if let Some(Value::Object(m)) = body.get(key) {
            out.push(m);
        }
    }
    if let Some(Value::Object(p)) = body.get("params") {
        for key in ["arguments", "tool_input"] {
            if let Some(Value::Object(m)) = p.get(key) {
                out.push(m);
            }
        }
    }
    out
}

/// The agreed non-empty value of `field` across all places and its aliases.
fn agreed(body: &Map<String, Value>, keys: &[&str], field: &str) -> Result<Option<String>, String> {
    let mut found: Option<String> = None;
    for map in sources(body) {
        for key in keys {
            let v = match map.get(*key) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) => s,
                Some(_) => return Err(format!("invalid tool input: {field} must be a string")),
            };
            if v.trim().is_empty() {
                continue;
            }
            match &found {
                Some(prev) if prev != v => {
                    return Err(format!("invalid tool input: conflicting {field} aliases"));
                }
                _ => found = Some(v.clone()),
            }
        }
    }
    Ok(found)
}

/// Strips leading blank lines and `#` comment lines from an exec command.
fn strip_leading_comments(cmd: &str) -> String {
    let mut rest = cmd;
    loop {
        let (line, tail) = match rest.split_once('\n') {
            Some((l, t)) => (l, Some(t)),
            None => (rest, None),
        };
        let t = line.trim();
        match tail {
            Some(tail) if t.is_empty() || t.starts_with('#') => rest = tail,
            _ => return rest.to_string(),
        }
    }
}

/// Canonicalizes an eval body for `tool`. Errors are the 400 messages.
pub fn canonicalize(tool: &str, body: &Map<String, Value>) -> Result<Canonical, String> {
    let params_in = match body.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err("invalid request body: params must be an object".into()),
    };
    let input_in = match body.get("input") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err("invalid request body: input must be an object".into()),
    };
    let command_keys: &[&str] = if tool == "exec" {
        &["command", "cmd", "input"]
    } else {
        &["command"]
    };
    let mut command = agreed(body, command_keys, "command")?;
    if tool == "exec" {
        if let Some(b64) = agreed(body, &["command_b64"], "command_b64")? {
            if b64.len() > 4 * (1 << 20) / 3 + 4 {
                return Err("invalid tool input: command_b64 exceeds 1 MiB".into());
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| "invalid tool input: command_b64 is not valid base64".to_string())?;
            let decoded = String::from_utf8_lossy(&bytes).into_owned();
            match &command {
                Some(c) if *c != decoded => {
                    return Err("invalid tool input: conflicting command aliases".into());
                }
                _ => command = Some(decoded),
            }
        }
        command = command.map(|c| strip_leading_comments(&c));
    }
    let path_keys: &[&str] = if is_path_tool(tool) {
        &["path", "file_path", "file", "filepath", "target"]
    } else {
        &["path", "file_path"]
    };
    let mut path = agreed(body, path_keys, "path")?;
    let workdir = agreed(body, &["workdir", "cwd"], "workdir")?;
    let url_keys: &[&str] = if is_url_tool(tool) {
        &["url", "uri", "href"]
    } else {
        &["url"]
    };
    let url = agreed(body, url_keys, "url")?;
    let mut domain = agreed(body, &["domain"], "domain")?;
    let mut scheme = agreed(body, &["scheme"], "scheme")?;
    if tool == "agent" && command.is_none() {
        command = agreed(body, &["description", "prompt"], "description")?;
    }
    if is_url_tool(tool)
        && let Some(u) = &url
    {
        domain = host_of(u);
        scheme = u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if path.is_none() {
            let after = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
            path = after.find('/').map(|i| after[i..].to_string());
        }
    }

    let mut params = params_in.clone();
    params.remove("command_effective");
    params.remove("command_b64");
    let mut input = input_in.clone();
    input.remove("command_effective");
    let mut put = |key: &str, value: &Option<String>| {
        if let Some(v) = value {
            params.insert(key.into(), Value::String(v.clone()));
            if !input.is_empty() {
                input.insert(key.into(), Value::String(v.clone()));
            }
        }
    };
    put("command", &command);
    put("path", &path);
    put("workdir", &workdir);
    put("url", &url);
    put("domain", &domain);
    put("scheme", &scheme);
    // Aliases the engine would otherwise compare against the agreed value.
    for alias in [
        "cmd",
        "file_path",
        "file",
        "filepath",
        "target",
        "uri",
        "href",
        "cwd",
    ] {
        if params.get(alias).is_some_and(|v| v.is_string()) {
            params.remove(alias);
        }
        if input.get(alias).is_some_and(|v| v.is_string()) {
            input.remove(alias);
        }
    }
    if tool == "exec" && params.get("input").is_some_and(|v| v.is_string()) {
        params.remove("input");
    }
    // The policy-visible input: `input`, else `params.arguments`, else `params.tool_input`.
    let visible_input = if !input.is_empty() {
        input
    } else {
        match params.get("arguments").or_else(|| params.get("tool_input")) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        }
    };
    let text = |key: &str| -> Result<String, String> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("invalid request body: {key} must be a string")),
        }
    };
    let agent_depth = match body.get("agent_depth") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_i64()
            .ok_or("invalid request body: agent_depth must be an integer")?,
    };
    let call = ToolCall {
        tool: tool.to_string(),
        agent: text("agent")?,
        session: text("session")?,
        agent_depth,
        params: params.clone(),
        input: visible_input,
    };
    Ok(Canonical {
        call,
        params,
        workdir: workdir.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn tool_names() {
        assert_eq!(tool_name(" exec ").unwrap(), "exec");
        assert!(tool_name("").is_err());
        assert!(tool_name("Exec").is_err());
        assert!(tool_name("custom/tool?admin=true").is_err());
        assert!(tool_name(&"x".repeat(129)).is_err());
        assert_eq!(tool_name("MyTool").unwrap(), "MyTool");
        assert_eq!(tool_name("mcp__db__query").unwrap(), "mcp__db__query");
    }

    #[test]
    fn aliases_agree_and_are_written_back() {
        let c = canonicalize(
            "exec",
            &body(json!({"command": "ls", "params": {"cmd": "ls"}})),
        )
        .unwrap();
        assert_eq!(c.call.params["command"], "ls");
        assert!(c.call.params.get("cmd").is_none());
        let e = canonicalize(
            "exec",
            &body(json!({"command": "ls", "params": {"command": "rm"}})),
        )
        .unwrap_err();
        assert_eq!(e, "invalid tool input: conflicting command aliases");
        let e = canonicalize("exec", &body(json!({"params": {"command": 5}}))).unwrap_err();
        assert_eq!(e, "invalid tool input: command must be a string");
    }

    #[test]
    fn base64_and_comments() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("# note\n\nrm -rf /");
        let c = canonicalize("exec", &body(json!({"params": {"command_b64": b64}}))).unwrap();
        assert_eq!(c.call.params["command"], "rm -rf /");
        assert!(canonicalize("exec", &body(json!({"params": {"command_b64": "!!"}}))).is_err());
    }

    #[test]
    fn urls_derive_domain() {
        let c = canonicalize(
            "fetch",
            &body(json!({"params": {"url": "https://Webhook.site/x?y", "domain": "evil"}})),
        )
        .unwrap();
        assert_eq!(c.call.params["domain"], "webhook.site");
        assert_eq!(c.call.params["scheme"], "https");
        assert_eq!(c.call.params["path"], "/x?y");
    }
}
