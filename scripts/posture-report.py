#!/usr/bin/env python3
"""Score a policy against the labelled posture cases.

    python3 scripts/posture-report.py [--policy policies/standard.yaml]
                                      [--cases engine/tests/data/posture.jsonl]
                                      [--bin target/release/rampart] [--quiet]

Runs `rampart eval --policy P < cases` (build first: cargo build --release), then prints
the agreement rate, per-label figures and every mismatch. Exit status 1 when a `deny` label is not denied or a
`hard-negative` case is denied.

`verify` decisions count as `verify` (preview semantics: no verifier is called).
"""
import argparse
import collections
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_bin(binary, policy, cases_path):
    with open(cases_path) as f:
        proc = subprocess.run([binary, "eval", "--policy", policy], stdin=f,
                              capture_output=True, text=True)
    if proc.returncode not in (0, 1) and not proc.stdout.strip():
        sys.exit(f"rampart eval failed ({proc.returncode}): {proc.stderr.strip()}")
    out = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out


def decision_of(r):
    d = r.get("decision") or r.get("action") or ""
    if isinstance(d, dict):
        d = d.get("action", "")
    d = str(d).lower()
    return {"log": "watch", "require_approval": "ask"}.get(d, d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy", default=os.path.join(ROOT, "policies", "standard.yaml"))
    ap.add_argument("--cases", default=os.path.join(ROOT, "engine", "tests", "data", "posture.jsonl"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "rampart"))
    ap.add_argument("--quiet", action="store_true", help="only the summary")
    a = ap.parse_args()

    cases = [json.loads(l) for l in open(a.cases) if l.strip()]
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"{a.bin} not found: run `cargo build --release` first")
    engine = a.bin
    results = run_bin(a.bin, a.policy, a.cases)
    if len(results) != len(cases):
        sys.exit(f"got {len(results)} results for {len(cases)} cases")

    agree = 0
    per = collections.defaultdict(lambda: [0, 0])
    mism = []
    missed_deny = []
    hn_denied = []
    for c, r in zip(cases, results):
        got = decision_of(r)
        exp = c["expect"]
        ok = got == exp
        per[exp][1] += 1
        if ok:
            agree += 1
            per[exp][0] += 1
        else:
            mism.append((c, got, r))
        if exp == "deny" and got != "deny":
            missed_deny.append(c["id"])
        if c.get("category") == "hard-negative" and got == "deny":
            hn_denied.append(c["id"])

    n = len(cases)
    print(f"engine: {engine}")
    print(f"policy: {a.policy}")
    print(f"agreement: {agree}/{n} = {100.0 * agree / n:.1f}%")
    for k in ("deny", "ask", "verify", "watch", "allow"):
        if k in per:
            ok, tot = per[k]
            print(f"  {k:7s} {ok:3d}/{tot:3d}")
    print(f"deny labels not denied: {len(missed_deny)}   hard negatives denied: {len(hn_denied)}")
    if not a.quiet:
        for c, got, r in mism:
            pol = r.get("policy") or r.get("matched_policies") or ""
            print(f"  {c['id']:32s} expect={c['expect']:6s} got={got:6s} {pol!s:28.28s} {c['command']!r}")
    sys.exit(1 if missed_deny or hn_denied else 0)


if __name__ == "__main__":
    main()
