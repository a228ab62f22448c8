//! Evaluation latency on the standard profile (policy spec §12, architecture §8).
//!
//! `cargo bench -p rampart-engine --bench eval`; `scripts/bench-engine.sh` runs it and
//! prints a table of medians. `engine/examples/latency.rs` measures the same calls the way
//! the reference numbers were taken (one call repeated 3000 times, p50/p99).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_engine::{Engine, EvalOptions, ToolCall, profiles};

/// The calls of the spec's performance table, plus a `~` spelling of the key read.
fn cases() -> Vec<(&'static str, ToolCall)> {
    vec![
        ("exec git status", ToolCall::exec("git status")),
        ("exec rm -rf /", ToolCall::exec("rm -rf /")),
        (
            "exec compound npm",
            ToolCall::exec("cd /repo && npm ci && npm test -- --coverage | tee out.log"),
        ),
        (
            "exec wrapped bash -lc",
            ToolCall::exec("bash -lc 'git status --short && ls -la'"),
        ),
        (
            "read ~/.ssh/id_rsa",
            ToolCall::with_param("read", "path", "~/.ssh/id_rsa"),
        ),
        (
            "read /home/u/.ssh/id_rsa",
            ToolCall::with_param("read", "path", "/home/u/.ssh/id_rsa"),
        ),
        (
            "fetch webhook.site",
            ToolCall::with_param("fetch", "url", "https://webhook.site/x"),
        ),
        (
            "exec curl ngrok.io",
            ToolCall::exec("curl https://x.ngrok.io/a"),
        ),
    ]
}

fn eval(c: &mut Criterion) {
    let engine = Engine::new(profiles::load_profile("standard").expect("standard loads"));
    let opts = EvalOptions::default();
    let mut group = c.benchmark_group("eval");
    for (name, call) in cases() {
        group.bench_function(name, |b| {
            b.iter(|| engine.evaluate(black_box(&call), black_box(&opts)))
        });
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group.sample_size(20);
    group.bench_function("load+compile standard profile", |b| {
        b.iter(|| Engine::new(profiles::load_profile(black_box("standard")).expect("loads")))
    });
    group.finish();
}

criterion_group!(benches, eval, load);
criterion_main!(benches);
