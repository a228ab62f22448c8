//! The `webhook` action end to end: a real daemon delegating to a real HTTP endpoint on
//! 127.0.0.1, which answers allow or deny (HTTP API spec §9).

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::Workspace;

/// A one-route HTTP server answering every POST with `answer`; returns its URL and the
/// request bodies it received.
fn webhook(answer: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/decide", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then Content-Length bytes of body.
            let body = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break String::new();
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break text[end + 4..end + 4 + len].to_string();
                    }
                }
            };
            log.lock().unwrap().push(body);
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    (url, seen)
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
