//! Tool calls as JSON objects (`rampart eval` lines, and later the HTTP API bodies), and
//! decisions back as JSON.

use rampart_engine::{Decision, ToolCall};
use serde_json::{Map, Value, json};

/// Builds a call from `{"tool"?, "params"?, "input"?, "command"?, "path"?, "url"?,
/// "agent"?, "session"?, "agent_depth"?}`. Other keys are ignored. Top-level
/// `command`/`path`/`url` are merged into `params`.
pub fn call_from_json(obj: &Map<String, Value>) -> Result<ToolCall, String> {
    let text = |key: &str| -> Result<Option<String>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    };
    let map = |key: &str| -> Result<Map<String, Value>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(format!("`{key}` must be an object")),
        }
    };
    // Integration names (Claude Code's `Bash`, MCP `mcp__server__tool`) map to policy tools.
    let tool =
        rampart_engine::tools::canonical_tool(&text("tool")?.unwrap_or_else(|| "exec".into()));
    if tool.trim().is_empty() {
        return Err("`tool` must not be empty".into());
    }
    let mut params = map("params")?;
    for key in ["command", "path", "url"] {
        if let Some(v) = text(key)? {
            match params.get(key) {
                Some(Value::String(existing)) if *existing != v => {
                    return Err(format!("`{key}` differs from `params.{key}`"));
                }
                _ => {
                    params.insert(key.into(), Value::String(v));
                }
            }
        }
    }
    let agent_depth = match obj.get("agent_depth") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or("`agent_depth` must be an integer")?,
    };
    Ok(ToolCall {
        tool,
        agent: text("agent")?.unwrap_or_default(),
        session: text("session")?.unwrap_or_default(),
        agent_depth,
        params,
        input: map("input")?,
    })
}

/// The decision object of `rampart eval` and `rampart check --json`.
pub fn decision_json(id: &Value, d: &Decision) -> Value {
    let mut v = json!({
        "id": id,
        "decision": d.action.as_str(),
        "message": d.message,
        "policy": d.policy.as_deref(),
        "matched_policies": d.matched(),
        "eval_us": d.eval_duration.as_secs_f64() * 1e6,
    });
    if d.verify_unconfigured {
        v["verify_unconfigured"] = Value::Bool(true);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn aliases_merge_into_params() {
        let c = call_from_json(&obj(json!({"command": "ls", "expect": "allow"}))).unwrap();
        assert_eq!(c.tool, "exec");
        assert_eq!(c.params["command"], "ls");
        let c = call_from_json(&obj(json!({"tool": "read", "path": "/etc/hosts"}))).unwrap();
        assert_eq!(c.params["path"], "/etc/hosts");
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(call_from_json(&obj(json!({"command": 5}))).is_err());
        assert!(call_from_json(&obj(json!({"params": []}))).is_err());
        assert!(call_from_json(&obj(json!({"tool": ""}))).is_err());
        assert!(call_from_json(&obj(json!({"command": "a", "params": {"command": "b"}}))).is_err());
    }
}
