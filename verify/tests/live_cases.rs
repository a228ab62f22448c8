//! The reference's 26 live-test commands (`live_test.py`, HTTP API spec §14.9) and the 11
//! calls of its `test_verify.py`, sent through `POST /verify` as its harnesses send them.
//! The stand-in answers what each case expects, but only after finding the call, unaltered,
//! inside the prompt's fence: this checks plumbing and formats, not a model.

mod support;

use std::collections::HashMap;

use serde_json::{Value, json};
use support::sidecar::Sidecar;
use support::standin::{Reply, StandIn};

fn data(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The text between a fence's BEGIN and END lines.
fn fenced(prompt: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label} ");
    let start = prompt.find(&begin)?;
    let rest = &prompt[start + begin.len()..];
    let (nonce, rest) = rest.split_once("-----\n")?;
    let end = format!("\n-----END {label} {nonce}-----");
    Some(rest[..rest.find(&end)?].to_string())
}

/// Answers each call with its expected decision, looked up by what the prompt shows.
async fn oracle(expected: HashMap<String, String>) -> StandIn {
    StandIn::start(move |r, _| {
        let prompt = r.user_prompt();
        let info = fenced(&prompt, "TOOL CALL").unwrap_or_default();
        match expected.get(&info).map(String::as_str) {
            Some("allow") => Reply::Answer("ALLOW".into()),
            Some(_) => Reply::Answer(format!("DENY: live case: {info}")),
            None => Reply::Answer(format!("the stand-in does not know {info:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_26_live_cases() {
    let cases = data("live-cases.jsonl");
    assert_eq!(cases.len(), 26);
    assert_eq!(
        cases.iter().filter(|c| c["expected"] == "allow").count(),
        13
    );
    let expected: HashMap<String, String> = cases
        .iter()
        .map(|c| {
            (
                format!("Shell command: {}", c["command"].as_str().unwrap()),
                c["expected"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    for provider in ["openai", "anthropic", "ollama"] {
        let standin = oracle(expected.clone()).await;
        let sidecar = Sidecar::for_provider(provider, &standin, &[]);
        let mut passed = 0;
        for case in &cases {
            let mut body = json!({"tool": "exec", "params": {"command": case["command"]},
                                  "agent": "test"});
            if !case["task_context"].is_null() {
                body["task_context"] = case["task_context"].clone();
            }
            let (status, answer) = sidecar.verify(&body).await;
            assert_eq!(status, 200, "case {}: {answer}", case["n"]);
            assert!(
                answer.get("error").is_none(),
                "case {}: {answer}",
                case["n"]
            );

            let prompt = standin.last().user_prompt();
            let ctx = fenced(&prompt, "TASK CONTEXT");
            assert_eq!(
                ctx.as_deref(),
                case["task_context"].as_str(),
                "case {}: {prompt}",
                case["n"]
            );
            if answer["decision"] == case["expected"] {
                passed += 1;
            }
            if case["expected"] == "deny" {
                assert!(
                    answer["reason"]
                        .as_str()
                        .unwrap()
                        .starts_with("live case: Shell command: ")
                );
            } else {
                assert_eq!(answer["reason"], Value::Null);
            }
        }
        assert_eq!(
            passed, 26,
            "{provider}: the run passes only if all 26 match"
        );
        assert_eq!(sidecar.decisions().len(), 26);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_verify_calls() {
    let cases = data("test-verify-cases.jsonl");
    assert_eq!(cases.len(), 11);
    let expected: HashMap<String, String> = cases
        .iter()
        .map(|c| {
            (
                c["info"].as_str().unwrap().to_string(),
                c["expected"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let standin = oracle(expected).await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[]);
    assert_eq!(sidecar.get("/health").await.status(), 200);
    for case in &cases {
        let body = json!({
            "tool": case["tool"], "params": case["params"], "agent": "claude-code",
            "session": "test-session", "policy": "test-policy",
            "timestamp": "2026-02-12T20:12:11.123456+00:00",
        });
        let (status, answer) = sidecar.verify(&body).await;
        assert_eq!(status, 200);
        assert_eq!(answer["decision"], case["expected"], "{case}: {answer}");
    }
}
