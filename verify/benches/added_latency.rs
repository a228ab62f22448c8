//! The sidecar's added latency over the provider's own (issue 5 target: ≤ 2 ms at p50).
//!
//! A stand-in provider that answers at once runs in this process; the real `rampart-verify`
//! binary (built with the bench profile) is pointed at it. Each round makes, back to back
//! over keep-alive connections, the provider call the sidecar itself makes (the same body,
//! replayed), and a `POST /verify` through the sidecar. The difference is what the sidecar
//! adds: one loopback HTTP hop, validation, masking, the prompt, parsing, the decision log
//! line and the metrics.
//!
//! `cargo bench -p rampart-verify --bench added_latency` (or `scripts/bench-verify`);
//! `BENCH_ROUNDS` sets the rounds per scenario (default 5000). Under `cargo test` (no
//! `--bench` argument) it runs a few rounds only, as a smoke test.

#[path = "../tests/support/sidecar.rs"]
#[allow(dead_code)]
mod sidecar;
#[path = "../tests/support/standin.rs"]
#[allow(dead_code)]
mod standin;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Stats {
    p50: Duration,
    p90: Duration,
    p99: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    Stats {
        p50: percentile(&v, 50.0),
        p90: percentile(&v, 90.0),
        p99: percentile(&v, 99.0),
    }
}

async fn timed(req: reqwest::RequestBuilder) -> Duration {
    let start = Instant::now();
    let resp = req.send().await.expect("answered");
    assert!(resp.status().is_success(), "{}", resp.status());
    let _ = resp.bytes().await.expect("body read");
    start.elapsed()
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let rounds: usize = if benching {
        std::env::var("BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5000)
    } else {
        20
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(rounds, benching));
}

async fn run(rounds: usize, benching: bool) {
    let standin = standin::StandIn::answering("ALLOW").await;
    let env: Vec<(String, String)> = sidecar::provider_env("openai", &standin)
        .into_iter()
        .chain([
            ("VERIFY_RATE_LIMIT".to_string(), "100000000".to_string()),
            ("RUST_LOG".to_string(), "warn".to_string()),
        ])
        .collect();
    let sidecar = sidecar::Sidecar::start(&env, &[]);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let verify_url = format!("{}/verify", sidecar.url);

    let scenarios: [(&str, Value); 2] = [
        (
            "git status",
            json!({"tool": "exec", "params": {"command": "git status"},
                   "agent": "bench", "session": "s", "policy": "semantic-verify",
                   "timestamp": "2026-02-12T20:12:11Z"}),
        ),
        (
            "curl with a bearer token and a lineage",
            json!({"tool": "exec",
                   "params": {"command": "curl -sS -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig' \
                                          https://api.example.com/v1/items?api_key=abc123secret456"},
                   "agent": "bench", "session": "s", "policy": "semantic-verify",
                   "timestamp": "2026-02-12T20:12:11Z",
                   "task_context": "List the items",
                   "lineage": ["python3 agent.py", "bash -c 'curl -sS …'", "curl -sS …"]}),
        ),
    ];

    let mut rows = Vec::new();
    for (name, body) in scenarios {
        // The provider call the sidecar makes for this body, to replay directly.
        let seen = standin.count();
        let _ = timed(client.post(&verify_url).json(&body)).await;
        assert_eq!(standin.count(), seen + 1);
        let upstream = standin.last();
        let upstream_url = format!("{}{}", standin.url, upstream.path);
        let upstream_body = upstream.raw.clone();
        let direct = || {
            client
                .post(&upstream_url)
                .header("content-type", "application/json")
                .header("authorization", "Bearer test-openai-key")
                .body(upstream_body.clone())
        };
        for _ in 0..rounds.min(500) {
            let _ = timed(direct()).await;
            let _ = timed(client.post(&verify_url).json(&body)).await;
        }
        let mut d = Vec::with_capacity(rounds);
        let mut v = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            d.push(timed(direct()).await);
            v.push(timed(client.post(&verify_url).json(&body)).await);
        }
        rows.push((name, stats(d), stats(v)));
    }

    if !benching {
        return;
    }
    println!(
        "rampart-verify added latency, {rounds} sequential rounds per scenario (loopback, keep-alive)\n"
    );
    println!(
        "| scenario | provider direct p50 / p90 / p99 | through rampart-verify p50 / p90 / p99 | added p50 | added p99 | target p50 |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, d, v) in &rows {
        println!(
            "| {name} | {:.0} / {:.0} / {:.0} µs | {:.0} / {:.0} / {:.0} µs | {:.0} µs | {:.0} µs | ≤ 2000 µs |",
            us(d.p50),
            us(d.p90),
            us(d.p99),
            us(v.p50),
            us(v.p90),
            us(v.p99),
            us(v.p50.saturating_sub(d.p50)),
            us(v.p99.saturating_sub(d.p99)),
        );
    }
}
