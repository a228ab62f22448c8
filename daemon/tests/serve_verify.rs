//! The `verify` action end to end (issue 5, HTTP API spec §10): a real daemon asks a
//! stand-in verifier on 127.0.0.1 that speaks the rampart-verify contract, acts on its
//! verdict, reuses it from the verdict cache for a repeat, sends the process lineage for
//! socket requests, and applies the fail mode when the verifier fails or is too slow.

mod support;

use std::time::{Duration, Instant};

use rampart_proto::Reply;
use serde_json::{Value, json};
use support::{Workspace, audit_events, exec_frame, http_stub, socket_decision};

const POLICY: &str = r#"version: "1"
default_action: allow
policies:
  - name: semantic-check
    match: {tool: exec}
    rules:
      - action: verify
        when: {command_matches: ["nc *", "python3 -c *"]}
        message: needs a second opinion
"#;

fn workspace() -> Workspace {
    let ws = Workspace::new();
    std::fs::write(ws.policy(), POLICY).unwrap();
    ws
}

fn exec(cmd: &str) -> Value {
    json!({"agent": "a", "session": "s", "params": {"command": cmd}})
}

/// The audit records of the verifier's outcomes (they carry `verify_cache`).
fn outcomes(ws: &Workspace) -> Vec<Value> {
    audit_events(&ws.audit_dir())
        .into_iter()
        .filter(|e| e["request"].get("verify_cache").is_some())
        .collect()
}

#[test]
fn the_verifier_decides_and_a_repeat_comes_from_the_cache() {
    let ws = workspace();
    let (url, seen) = http_stub(
        r#"{"decision":"deny","reason":"opens a listener","model":"stand-in-1"}"#,
        Duration::ZERO,
    );
    let d = ws.start(&["--verify-url", &url]);
    let api = d.api();
    for _ in 0..3 {
        let r = api.tool("exec", &exec("nc -l 4444"));
        assert_eq!(r.status, 403, "{}", r.text());
        let body = r.json();
        assert_eq!(body["decision"], "deny");
        assert_eq!(body["message"], "opens a listener");
        assert_eq!(body["verify_model"], "stand-in-1");
    }
    assert_eq!(seen.lock().unwrap().len(), 1, "asked once, then cached");
    let sent: Value = serde_json::from_str(&seen.lock().unwrap()[0]).unwrap();
    assert_eq!(sent["tool"], "exec");
    assert_eq!(sent["params"]["command"], "nc -l 4444");
    assert_eq!(sent["policy"], "semantic-check");
    let caches: Vec<_> = outcomes(&ws)
        .iter()
        .map(|e| e["request"]["verify_cache"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(caches, ["miss", "hit", "hit"]);
    // Another command is another question.
    api.tool("exec", &exec("nc -l 5555"));
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn socket_requests_carry_the_process_lineage_and_follow_the_verdict() {
    let ws = workspace();
    let (url, seen) = http_stub(r#"{"decision":"allow","model":"m"}"#, Duration::ZERO);
    let d = ws.start(&["--verify-url", &url]);
    let reply = socket_decision(
        &d.socket,
        &exec_frame("/usr/bin/nc", &["nc", "-z", "h", "1"], "a"),
    );
    assert_eq!(reply, Reply::Allow);
    let sent: Value = serde_json::from_str(&seen.lock().unwrap()[0]).unwrap();
    let lineage = sent["lineage"].as_array().expect("lineage sent");
    // Oldest first, ending with the program being started; the test binary is in it.
    assert_eq!(lineage.last().unwrap(), "nc -z h 1");
    assert!(lineage.len() >= 2, "{lineage:?}");
    let outcome = &outcomes(&ws)[0];
    assert_eq!(outcome["request"]["lineage"], sent["lineage"]);
    assert_eq!(outcome["request"]["verify_model"], "m");
}

#[test]
fn verifier_failures_follow_the_fail_mode_and_are_not_cached() {
    let ws = workspace();
    // Nobody listens on port 9: the request fails at once.
    let d = ws.start(&[
        "--verify-url",
        "http://127.0.0.1:9/verify",
        "--verify-fail-closed",
    ]);
    let r = d.api().tool("exec", &exec("nc -l 1"));
    assert_eq!(r.status, 403);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("verifier unavailable, failing closed"),
        "{}",
        r.text()
    );
    let reply = socket_decision(
        &d.socket,
        &exec_frame("/usr/bin/nc", &["nc", "-l", "1"], "a"),
    );
    assert!(matches!(reply, Reply::Deny { .. }), "{reply:?}");
    drop(d);

    let ws = workspace();
    let d = ws.start(&[
        "--verify-url",
        "http://127.0.0.1:9/verify",
        "--verify-fail-open",
    ]);
    let r = d.api().tool("exec", &exec("nc -l 1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("failing open")
    );
    let caches: Vec<_> = outcomes(&ws)
        .iter()
        .map(|e| e["request"]["verify_cache"].clone())
        .collect();
    assert_eq!(caches, [json!("miss")]);
    d.api().tool("exec", &exec("nc -l 1"));
    assert_eq!(outcomes(&ws).len(), 2);
    assert!(
        outcomes(&ws)
            .iter()
            .all(|e| e["request"]["verify_cache"] == "miss")
    );
}

#[test]
fn a_slow_verifier_is_cut_off_at_the_timeout() {
    let ws = workspace();
    let (url, _) = http_stub(r#"{"decision":"allow"}"#, Duration::from_secs(10));
    let d = ws.start(&[
        "--verify-url",
        &url,
        "--verify-timeout",
        "300ms",
        "--verify-fail-closed",
    ]);
    let started = Instant::now();
    let reply = socket_decision(
        &d.socket,
        &exec_frame("/usr/bin/nc", &["nc", "-l", "2"], "a"),
    );
    assert!(matches!(reply, Reply::Deny { .. }), "{reply:?}");
    // Far below the stand-in's 10 s: the deadline cut it off.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_enforcing_preflight_audits_the_verifiers_answer_before_giving_it() {
    let ws = workspace();
    let (url, seen) = http_stub(
        r#"{"decision":"allow","reason":"a local test listener","model":"stand-in-1"}"#,
        Duration::ZERO,
    );
    let d = ws.start(&["--verify-url", &url]);
    let api = d.api();
    let mut call = exec("nc -l 4444");
    call["enforce"] = json!(true);
    let r = api.preflight("exec", &call);
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["allowed"], true, "{body}");
    assert_eq!(body["decision"], "allow");
    assert_eq!(body["policy_decision"], "verify");
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Two events: the policy's `verify`, then the verifier's answer, whose id is returned.
    let events = audit_events(&ws.audit_dir());
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["decision"]["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(actions, ["verify", "allow"], "{events:?}");
    let answer = &events[1];
    assert_eq!(body["audit_id"], answer["id"]);
    assert_eq!(answer["decision"]["message"], body["message"]);
    assert_eq!(answer["request"]["verify_cache"], "miss");
    // A preview (no enforce) asks nobody and writes one event.
    let r = api.preflight("exec", &exec("nc -l 5555"));
    assert_eq!(r.json()["decision"], "verify");
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(audit_events(&ws.audit_dir()).len(), 3);
}
