//! p50/p99 evaluation latency on the standard profile, measured the way the reference
//! numbers were (policy spec §12): one call repeated 3000 times, each call timed on its
//! own with `Instant`, after a short warm-up.
//!
//! `cargo run --release -p rampart-engine --example latency [ITERATIONS]`

use std::time::{Duration, Instant};

use rampart_engine::{Engine, EvalOptions, ToolCall, profiles};

/// Each call, and the binding target from the spec: the reference p50/p99 divided by 50,
/// with architecture §8's absolute p50 budgets (5 µs simple, 30 µs compound or wrapped)
/// where lower.
fn cases() -> Vec<(&'static str, ToolCall, &'static str)> {
    vec![
        ("`git status`", ToolCall::exec("git status"), "5 / 29.6"),
        ("`rm -rf /`", ToolCall::exec("rm -rf /"), "2.3 / 14"),
        (
            "`cd /repo && npm ci && npm test -- --coverage \\| tee out.log`",
            ToolCall::exec("cd /repo && npm ci && npm test -- --coverage | tee out.log"),
            "30 / 134",
        ),
        (
            "`bash -lc 'git status --short && ls -la'`",
            ToolCall::exec("bash -lc 'git status --short && ls -la'"),
            "30 / 246",
        ),
        (
            "read `~/.ssh/id_rsa`",
            ToolCall::with_param("read", "path", "~/.ssh/id_rsa"),
            "–",
        ),
        (
            "read `/home/u/.ssh/id_rsa`",
            ToolCall::with_param("read", "path", "/home/u/.ssh/id_rsa"),
            "1.1 / 4.1",
        ),
        (
            "fetch `https://webhook.site/x`",
            ToolCall::with_param("fetch", "url", "https://webhook.site/x"),
            "0.32 / 1.1",
        ),
        (
            "`curl https://x.ngrok.io/a`",
            ToolCall::exec("curl https://x.ngrok.io/a"),
            "5 / 30.3",
        ),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e6
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3000);
    let start = Instant::now();
    let engine = Engine::new(profiles::load_profile("standard").expect("standard loads"));
    let load = start.elapsed();
    let opts = EvalOptions::default();

    println!("Standard profile, {iterations} evaluations per call, each timed on its own.\n");
    println!("| call | decision | p50 (µs) | p99 (µs) | target p50 / p99 (µs) |");
    println!("|---|---|---:|---:|---:|");
    for (name, call, target) in cases() {
        for _ in 0..iterations / 10 {
            std::hint::black_box(engine.evaluate(&call, &opts));
        }
        let mut times = Vec::with_capacity(iterations);
        let mut action = None;
        for _ in 0..iterations {
            let t = Instant::now();
            let d = engine.evaluate(std::hint::black_box(&call), &opts);
            times.push(t.elapsed());
            action = Some(d.action);
        }
        times.sort_unstable();
        let action = action.map_or("–".to_string(), |a| a.to_string());
        println!(
            "| {name} | {action} | {:.2} | {:.2} | {target} |",
            percentile(&times, 0.50),
            percentile(&times, 0.99),
        );
    }
    println!(
        "\nLoad + compile of the standard profile: {:.2} ms (one cold run).",
        load.as_secs_f64() * 1e3
    );
}
