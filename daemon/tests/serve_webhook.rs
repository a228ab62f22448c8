//! The `webhook` action end to end: a real daemon delegating to a real HTTP endpoint on
//! 127.0.0.1, which answers allow or deny (HTTP API spec §9).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::Workspace;

fn webhook(answer: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    support::http_stub(answer, Duration::ZERO)
}

fn policy(url: &str) -> String {
    format!(
        "default_action: allow\npolicies:\n  - name: deploys\n    rules:\n      - action: webhook\n        webhook: {{url: \"{url}\", timeout: 3s}}\n        when: {{command_matches: [\"deploy *\"]}}\n"
    )
}

#[test]
fn webhook_answers_decide_tool_calls() {
    for (answer, status, allowed, message) in [
        (
            r#"{"decision":"deny","reason":"change freeze"}"#,
            403,
            false,
            "change freeze",
        ),
        (r#"{"decision":"allow"}"#, 200, true, "allowed by webhook"),
    ] {
        let (url, seen) = webhook(answer);
        let ws = Workspace::new();
        std::fs::write(ws.policy(), policy(&url)).unwrap();
        let daemon = ws.start(&[]);
        let r = daemon.api().tool(
            "exec",
            &json!({"agent": "a", "session": "s", "params": {"command": "deploy prod"}}),
        );
        assert_eq!(r.status, status, "{}", r.text());
        let v: Value = r.json();
        assert_eq!(v["allowed"], allowed);
        assert_eq!(v["message"], message);
        assert_eq!(v["policy_decision"], "webhook");
        let sent: Value = serde_json::from_str(&seen.lock().unwrap()[0]).unwrap();
        assert_eq!(sent["tool"], "exec");
        assert_eq!(sent["params"]["command"], "deploy prod");
        assert_eq!(sent["policy"], "deploys");
        // Preflight previews the webhook decision without calling it.
        let before = seen.lock().unwrap().len();
        let p = daemon
            .api()
            .preflight("exec", &json!({"params": {"command": "deploy prod"}}));
        assert_eq!(p.json()["decision"], "webhook");
        assert_eq!(seen.lock().unwrap().len(), before);
    }
}

#[test]
fn unreachable_webhook_fails_closed() {
    let ws = Workspace::new();
    std::fs::write(ws.policy(), policy("http://127.0.0.1:1/decide")).unwrap();
    let daemon = ws.start(&[]);
    let r = daemon
        .api()
        .tool("exec", &json!({"params": {"command": "deploy prod"}}));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "webhook unavailable, failing closed: webhook request failed"
    );
}
