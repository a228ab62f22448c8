#!/usr/bin/env bash
# Engine benchmarks on the standard profile, non-interactively.
#
# 1. criterion (`engine/benches/eval.rs`): a Markdown table of the median (p50) of each
#    benchmark, read from target/criterion/*/*/new/estimates.json;
# 2. `engine/examples/latency.rs`: each call repeated 3000 times, each timed on its own,
#    p50/p99 next to the spec's targets (how the reference numbers were measured).
#
# Usage: scripts/bench-engine.sh [CRITERION_ARGS...]   e.g. --quick, or a name filter
# The tables go to stdout; cargo's and criterion's progress go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT

cargo bench -p rampart-engine --bench eval -- "$@" >&2

python3 - "$target_dir/criterion" "$stamp" <<'PY'
import json, os, sys

root, stamp = sys.argv[1], os.path.getmtime(sys.argv[2])
rows = []
for dirpath, _, files in os.walk(root):
    if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
        continue
    path = os.path.join(dirpath, "estimates.json")
    mtime = os.path.getmtime(path)
    if mtime < stamp:
        continue  # left over from an earlier run or a benchmark that no longer exists
    with open(path) as f:
        median = json.load(f)["median"]
    name = os.path.relpath(os.path.dirname(dirpath), root)
    try:
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            name = json.load(f)["full_id"]
    except (OSError, KeyError, ValueError):
        pass
    ci = median["confidence_interval"]
    rows.append((mtime, name, median["point_estimate"], ci["lower_bound"], ci["upper_bound"]))

def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"

if not rows:
    sys.exit("no criterion results from this run")
print("### criterion: median (p50) per benchmark, standard profile\n")
print("| benchmark | median | 95% CI of the median |")
print("|---|---:|---:|")
for _, name, p50, lo, hi in sorted(rows):
    print(f"| {name} | {fmt(p50)} | {fmt(lo)} – {fmt(hi)} |")
print()
PY

echo "### latency example: one call repeated 3000 times, p50/p99"
echo
cargo run --release -q -p rampart-engine --example latency
