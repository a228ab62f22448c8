//! The `POST /verify` body and its validation, with FastAPI/pydantic-shaped errors (HTTP API
//! spec §14.1) so clients written for the reference read our 422s the same way.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// A validated `/verify` request: the daemon's webhook payload plus `task_context` and our
/// `lineage`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VerifyRequest {
    pub tool: String,
    pub params: Map<String, Value>,
    pub agent: Option<String>,
    pub session: Option<String>,
    pub policy: Option<String>,
    pub timestamp: Option<String>,
    pub task_context: Option<String>,
    /// The process chain, oldest first (sent as a list of strings, or one string).
    pub lineage: Vec<String>,
}

/// One entry of a 422's `detail` list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub loc: Vec<Value>,
    pub msg: &'static str,
    pub input: Value,
}

impl FieldError {
    fn new(kind: &'static str, loc: Vec<Value>, msg: &'static str, input: Value) -> FieldError {
        FieldError {
            kind,
            loc,
            msg,
            input,
        }
    }
}

/// Parses and validates a body; every problem is reported, not just the first.
pub fn parse_request(body: &[u8]) -> Result<VerifyRequest, Vec<FieldError>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        vec![FieldError::new(
            "json_invalid",
            vec![json!("body"), json!(e.column())],
            "JSON decode error",
            json!({}),
        )]
    })?;
    let Value::Object(obj) = &value else {
        return Err(vec![FieldError::new(
            "model_attributes_type",
            vec![json!("body")],
            "Input should be a valid dictionary or object to extract fields from",
            value,
        )]);
    };

    let mut errors = Vec::new();
    let mut req = VerifyRequest::default();
    let loc = |field: &str| vec![json!("body"), json!(field)];

    match obj.get("tool") {
        Some(Value::String(s)) => req.tool = s.clone(),
        None => errors.push(missing(loc("tool"), &value)),
        Some(other) => errors.push(not_a_string(loc("tool"), other)),
    }
    match obj.get("params") {
        Some(Value::Object(m)) => req.params = m.clone(),
        None => errors.push(missing(loc("params"), &value)),
        Some(other) => errors.push(FieldError::new(
            "dict_type",
            loc("params"),
            "Input should be a valid dictionary",
            other.clone(),
        )),
    }
    for (field, slot) in [
        ("agent", &mut req.agent),
        ("session", &mut req.session),
        ("policy", &mut req.policy),
        ("timestamp", &mut req.timestamp),
        ("task_context", &mut req.task_context),
    ] {
        match obj.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => *slot = Some(s.clone()),
            Some(other) => errors.push(not_a_string(loc(field), other)),
        }
    }
    match obj.get("lineage") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => req.lineage = vec![s.clone()],
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => req.lineage.push(s.clone()),
                    other => errors.push(not_a_string(
                        vec![json!("body"), json!("lineage"), json!(i)],
                        other,
                    )),
                }
            }
        }
        Some(other) => errors.push(FieldError::new(
            "list_type",
            loc("lineage"),
            "Input should be a valid list or string",
            other.clone(),
        )),
    }

    if errors.is_empty() {
        Ok(req)
    } else {
        Err(errors)
    }
}

fn missing(loc: Vec<Value>, body: &Value) -> FieldError {
    FieldError::new("missing", loc, "Field required", body.clone())
}

fn not_a_string(loc: Vec<Value>, input: &Value) -> FieldError {
    FieldError::new(
        "string_type",
        loc,
        "Input should be a valid string",
        input.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<VerifyRequest, Vec<FieldError>> {
        parse_request(v.to_string().as_bytes())
    }

    #[test]
    fn full_request() {
        let r = parse(json!({
            "tool": "exec", "params": {"command": "ls"}, "agent": "a", "session": "s",
            "policy": "p", "timestamp": "2026-01-01T00:00:00Z", "task_context": "t",
            "lineage": ["python3 agent.py", "ls"], "extra": 1,
        }))
        .unwrap();
        assert_eq!(r.tool, "exec");
        assert_eq!(r.params["command"], "ls");
        assert_eq!(r.agent.as_deref(), Some("a"));
        assert_eq!(r.task_context.as_deref(), Some("t"));
        assert_eq!(r.lineage, ["python3 agent.py", "ls"]);

        let r = parse(json!({"tool": "exec", "params": {}, "agent": null,
                             "lineage": "python agent.py → bash -c … → curl …"}))
        .unwrap();
        assert_eq!(r.agent, None);
        assert_eq!(r.lineage, ["python agent.py → bash -c … → curl …"]);
    }

    #[test]
    fn errors_are_pydantic_shaped() {
        let e = parse(json!({"params": []})).unwrap_err();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].kind, "missing");
        assert_eq!(e[0].loc, [json!("body"), json!("tool")]);
        assert_eq!(e[0].msg, "Field required");
        assert_eq!(e[1].kind, "dict_type");
        assert_eq!(e[1].loc, [json!("body"), json!("params")]);

        let e =
            parse(json!({"tool": 1, "params": {}, "agent": 5, "lineage": ["a", 2]})).unwrap_err();
        let kinds: Vec<_> = e.iter().map(|x| (x.kind, x.loc.clone())).collect();
        assert_eq!(
            kinds,
            [
                ("string_type", vec![json!("body"), json!("tool")]),
                ("string_type", vec![json!("body"), json!("agent")]),
                (
                    "string_type",
                    vec![json!("body"), json!("lineage"), json!(1)]
                ),
            ]
        );
        let e = parse(json!({"tool": "x", "params": {}, "lineage": 3})).unwrap_err();
        assert_eq!(e[0].kind, "list_type");

        let e = parse_request(b"{not json").unwrap_err();
        assert_eq!(e[0].kind, "json_invalid");
        let e = parse(json!([1, 2])).unwrap_err();
        assert_eq!(e[0].kind, "model_attributes_type");
        let shown = serde_json::to_value(&e[0]).unwrap();
        assert_eq!(shown["type"], "model_attributes_type");
        assert_eq!(shown["loc"], json!(["body"]));
    }
}
