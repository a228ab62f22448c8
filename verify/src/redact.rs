//! Masking everything that leaves the machine (to the provider) or is written down (decision
//! log, text log), using the engine's patterns (`rampart_engine::redact`, HTTP API spec §14.6)
//! so a pattern added there protects the audit trail and the verifier alike.
//!
//! Ours masks more than the reference's `redact_params`, which leaves lists and anything
//! nested two levels deep untouched: every string at any depth goes through
//! [`redact_secrets`], and the whole value of any key that names a secret
//! (`password`, `api_key`, `Authorization`, `client_secret`, … as the audit trail decides) is
//! replaced, whatever its shape, since a secret's value need not look like one.

use std::borrow::Cow;

use base64::Engine as _;
use rampart_engine::redact::{REDACTED, is_sensitive_audit_key, redact_secrets};
use serde_json::{Map, Value};

/// Masks secrets in free text (a task context, a lineage entry, an error message).
pub fn mask_text(text: &str) -> Cow<'_, str> {
    redact_secrets(text)
}

/// The params as the provider and the decision log may see them. The input is not modified.
///
/// A base64 `command_b64` is a blob the patterns cannot see into, so it is decoded (as the
/// daemon's canonicalization does, spec §4.3), masked, and shown as `command` when no
/// `command` is given; the blob itself is replaced.
pub fn mask_params(params: &Map<String, Value>) -> Map<String, Value> {
    let mut out = mask_map(params);
    let has_command = params
        .get("command")
        .is_some_and(|c| c.as_str().is_none_or(|s| !s.is_empty()));
    if !has_command
        && let Some(decoded) = params
            .get("command_b64")
            .and_then(Value::as_str)
            .and_then(decode_b64)
    {
        out.insert(
            "command".into(),
            Value::String(redact_secrets(&decoded).into_owned()),
        );
    }
    out
}

fn decode_b64(s: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn mask_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| {
            let key = redact_secrets(k).into_owned();
            let value = if is_sensitive_audit_key(k) && !is_empty(v) {
                Value::String(REDACTED.into())
            } else {
                mask_value(v)
            };
            (key, value)
        })
        .collect()
}

/// `""` and `null` hide nothing and are kept, so the model still sees that a field was empty.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn mask_value(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(redact_secrets(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(mask_value).collect()),
        Value::Object(m) => Value::Object(mask_map(m)),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn masked(v: Value) -> Value {
        Value::Object(mask_params(v.as_object().unwrap()))
    }

    #[test]
    fn spec_examples() {
        let out = masked(json!({
            "command": "curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig' \
                        https://api.example.com/v1",
            "timeout": 30,
            "empty": "",
        }));
        assert_eq!(
            out["command"],
            "curl -H 'Authorization: Bearer [REDACTED] https://api.example.com/v1"
        );
        assert_eq!(out["timeout"], 30);
        assert_eq!(out["empty"], "");
        assert!(out.get("missing").is_none());
        let out = masked(json!({"command": "git push origin main"}));
        assert_eq!(out["command"], "git push origin main");
    }

    #[test]
    fn deeper_than_the_reference() {
        let out = masked(json!({
            "argv": ["mysql", "--password=hunter2", ["AKIAIOSFODNN7EXAMPLE"]],
            "env": {"deep": {"x": "password=hunter2"}},
        }));
        assert_eq!(out["argv"][1], "--password=[REDACTED]");
        assert_eq!(out["argv"][2][0], "[REDACTED_AWS_KEY]");
        assert_eq!(out["env"]["deep"]["x"], "password=[REDACTED]");
    }

    #[test]
    fn secret_named_keys_lose_their_values() {
        let out = masked(json!({
            "password": "correct horse battery staple",
            "headers": {"Authorization": "Basic dXNlcjpwYXNz", "Accept": "*/*"},
            "client_secret": {"nested": "x"},
            "pin_password": 1234,
            "token": "",
            "api_key": null,
        }));
        assert_eq!(out["password"], REDACTED);
        assert_eq!(out["headers"]["Authorization"], REDACTED);
        assert_eq!(out["headers"]["Accept"], "*/*");
        assert_eq!(out["client_secret"], REDACTED);
        assert_eq!(out["pin_password"], REDACTED);
        assert_eq!(out["token"], "");
        assert_eq!(out["api_key"], Value::Null);
    }

    #[test]
    fn command_b64_is_decoded_and_masked() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(
            "curl -u admin:pw https://x.example -H 'X: sk-proj-abcdefghijklmnopqrstuvwxyz'",
        );
        let out = masked(json!({"command_b64": b64}));
        assert_eq!(out["command_b64"], REDACTED);
        assert_eq!(
            out["command"],
            "curl -u admin:pw https://x.example -H 'X: [REDACTED_API_KEY]'"
        );
        // a given command wins; garbage stays hidden
        let out = masked(json!({"command": "ls", "command_b64": b64}));
        assert_eq!(out["command"], "ls");
        let out = masked(json!({"command_b64": "%%%"}));
        assert_eq!(out["command_b64"], REDACTED);
        assert!(out.get("command").is_none());
    }

    #[test]
    fn input_unchanged() {
        let v = json!({"password": "p", "command": "API_KEY=abc123secret456 x"});
        let before = v.clone();
        let _ = masked(v.clone());
        assert_eq!(v, before);
    }
}
