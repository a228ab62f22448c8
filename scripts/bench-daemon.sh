#!/usr/bin/env bash
# Daemon benchmarks against the targets of architecture spec §8 (issue 3), non-interactively.
#
# For each variant (`disk`: the audit trail in $RAMPART_HOME/audit on the temp directory's
# filesystem, exactly the shipped configuration; `tmpfs`: `--audit-dir` on /dev/shm, to show
# what the storage costs; either with `-always` appended: `--audit-sync always`, an fdatasync
# before every answer instead of the default background sync within 100 ms), this script
#   1. starts `rampart serve --listen 127.0.0.1:0` (release build, standard profile, enforce
#      mode, hash-chained audit log written before every answer) with a fresh RAMPART_HOME
#      and waits for its `rampart serve ready:` line;
#   2. runs `daemon/examples/bench_socket/`: sequential round trips (1 client) and a
#      fixed-duration hammer with 32 requests in flight, for an allowed and a denied exec,
#      driven two ways: 32 blocking client threads (as 32 processes using the library
#      would), and 2 epoll loops keeping 32 connections going (`--driver multiplexed`, the
#      way wrk drives an HTTP server: less of the load generator's own cost on the 2 CPUs
#      the daemon shares with it);
#   3. runs `daemon/examples/bench_http.rs`: keep-alive load on POST /v1/preflight/exec
#      (and `wrk` on the same endpoint when it is installed, as a cross-check);
#   4. reads VmRSS/VmHWM from /proc/<pid>/status before and after the load, and the daemon's
#      CPU time (utime+stime) around each load phase;
#   5. stops the daemon with SIGTERM and runs `rampart audit verify` on its audit trail;
# then prints one Markdown table with every figure next to its target.
#
# Usage: scripts/bench-daemon.sh
# Knobs (environment):
#   BENCH_VARIANTS="disk tmpfs disk-always tmpfs-always"
#                                which audit placements and sync modes to run
#   BENCH_IDLE=0|1               before each variant, wait (up to 10 min) for the machine to be
#                                under 5% busy: other work skews every figure here
#   BENCH_SECONDS=5              duration of each throughput run
#   BENCH_ROUNDS=5000            sequential round trips per latency run
#   BENCH_REPEAT=3               runs of each socket measurement (daemon and floor), one after
#                                the other in turn; the table shows the median run and the range
#   BENCH_CLIENTS=32             socket client threads        BENCH_CONNECTIONS=32  HTTP connections
#   BENCH_WRK=auto|0|1           also run wrk (auto: when installed)
#   BENCH_PERF=0|1               `perf record` the daemon during the 32-client socket run and the
#                                HTTP run; prints where the time goes (needs perf)
#   BENCH_OUT=DIR                where results, daemon logs and perf data are kept [mktemp -d]
#   BENCH_FLOOR=1|0              also measure scripts/bench/allow-server.c (the floor) in every
#                                round, right after the daemon, and compare them pair by pair [1]
#   BENCH_TMP=DIR                parent of the temporary RAMPART_HOME [${TMPDIR:-/tmp}]
#   BENCH_BIN=PATH               the `rampart` binary to measure (another build, for a before/after)
#                                [the release build of this tree]
# The table goes to stdout; cargo's output and progress go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

VARIANTS=${BENCH_VARIANTS:-"disk tmpfs disk-always tmpfs-always"}
IDLE=${BENCH_IDLE:-0}
RUN_SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-5000}
REPEAT=${BENCH_REPEAT:-3}
CLIENTS=${BENCH_CLIENTS:-32}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
WRK=${BENCH_WRK:-auto}
PERF=${BENCH_PERF:-0}
FLOOR=${BENCH_FLOOR:-1}
TMP_PARENT=${BENCH_TMP:-${TMPDIR:-/tmp}}
OUT=${BENCH_OUT:-$(mktemp -d "${TMP_PARENT}/rampart-bench-out.XXXXXX")}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

log() { printf '%s\n' "bench-daemon: $*" >&2; }

cargo build --release -p rampart-daemon --bin rampart --example bench_socket --example bench_http >&2
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
BIN=${BENCH_BIN:-"$target_dir/release/rampart"}
BENCH_SOCKET="$target_dir/release/examples/bench_socket"
BENCH_HTTP="$target_dir/release/examples/bench_http"

if [[ $WRK == auto ]]; then
    if command -v wrk >/dev/null; then WRK=1; else WRK=0; fi
fi
if [[ $PERF == 1 ]] && ! command -v perf >/dev/null; then
    log "BENCH_PERF=1 but perf is not installed; profiling skipped"
    PERF=0
fi

# State of the variant being run, for the cleanup trap.
DAEMON_PID=""
TMP_DIRS=()
cleanup() {
    if [[ -n ${FLOOR_PID:-} ]]; then
        kill "$FLOOR_PID" 2>/dev/null || true
    fi
    if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    for d in ${TMP_DIRS[@]+"${TMP_DIRS[@]}"}; do rm -rf "$d"; done
}
trap cleanup EXIT

# Emits one JSON line into the results.
emit() { printf '%s\n' "$1" >>"$RESULTS"; }

status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# utime + stime of a process, in clock ticks (the comm field is skipped safely).
cpu_ticks() {
    local f
    read -r -a f < <(sed 's/^.*) //' "/proc/$1/stat")
    echo $((f[11] + f[12]))
}

memory() { # variant phase
    emit "$(printf '{"variant":"%s","phase":"%s","rss_kb":%s,"hwm_kb":%s}' \
        "$1" "$2" "$(status_kb "$DAEMON_PID" VmRSS)" "$(status_kb "$DAEMON_PID" VmHWM)")"
}

# Runs one load command (its stdout is one JSON object) and records it with the daemon CPU
# time it cost. With BENCH_PERF=1 and a profile name, perf records the daemon meanwhile.
phase() { # variant phase profile-name|"" cmd...
    local variant=$1 name=$2 prof=$3
    shift 3
    local perf_pid="" before after line
    if [[ $PERF == 1 && -n $prof ]]; then
        perf record -q -F 499 --call-graph dwarf,16384 -p "$DAEMON_PID" \
            -o "$OUT/perf-$variant-$prof.data" -- sleep "$RUN_SECS" 2>>"$OUT/perf.log" &
        perf_pid=$!
    fi
    before=$(cpu_ticks "$DAEMON_PID")
    line=$("$@")
    after=$(cpu_ticks "$DAEMON_PID")
    [[ -n $perf_pid ]] && wait "$perf_pid" || true
    emit "$(printf '{"variant":"%s","phase":"%s","run":%s,"cpu_ticks":%s,"clk_tck":%s,"result":%s}' \
        "$variant" "$name" "$RUN" "$((after - before))" "$(getconf CLK_TCK)" "$line")"
    log "  $name: $(printf '%s' "$line" | python3 -c 'import json, sys
r = json.load(sys.stdin)
print("%.0f/s, p50 %.1f us, p99 %.1f us, %d errors" % (r["rate_per_s"], r["p50_us"], r["p99_us"], r.get("errors", 0)))')"
}

# Percentage of the machine's CPU busy over one second (other work skews every figure here).
machine_busy() {
    local a b
    read -r -a a < <(grep '^cpu ' /proc/stat)
    sleep 1
    read -r -a b < <(grep '^cpu ' /proc/stat)
    local total=0 idle i
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    idle=$((b[4] - a[4] + b[5] - a[5]))
    echo $((total > 0 ? 100 * (total - idle) / total : 0))
}

# Reads `perf script -F comm,tid,ip,sym` from stdin; prints {"samples": N, "frames": {key: n}}.
FOLD='
import json, sys
KEYS = ["AuditLog::write", "AuditLog::prepare", "Tail::append", "ksys_write", "Shared::pass",
        "File>::sync_data", "event::redact_event", "lock_contended", "Engine>::enforce",
        "Engine>::evaluate", "UnixListener>::accept", "deciders::peer_uid", "frame::peek_request",
        "judge::judge", "frame::read_request", "frame::reply_blocking", "frame::discard",
        "frame::write_reply",
        "__x64_sys_close", "sock_def_readable", "unix_write_space", "__x64_sys_epoll_ctl",
        "http::eval::preflight", "canonical::canonicalize", "http::decode_object",
        "http::json_response", "h1::dispatch::Dispatcher", "poll_flush", "worker::Context::park"]
n, counts, seen = 0, dict.fromkeys(KEYS, 0), set()
def end():
    global n, seen
    if seen is not None:
        n += 1
        for k in seen:
            counts[k] += 1
    seen = set()
seen = None
for line in sys.stdin:
    if not line.strip():
        continue
    if not line.startswith("\t"):
        end()
        continue
    sym = line.strip().split(None, 1)[-1]
    for k in KEYS:
        if k in sym:
            seen.add(k)
end()
print(json.dumps({"samples": n, "frames": counts}))
'

# The floor: the same socket benchmark against scripts/bench/allow-server.c, which answers
# Allow without decoding, deciding or auditing. No daemon that asks before every exec over
# a fresh connection can beat it on this machine. It is measured in every round, right
# after the daemon (which then sits idle in `accept`), so that each daemon figure has a
# floor figure taken under the same conditions: on this VM both move by ±15% from one
# minute to the next.
RUN=0
FLOOR_PID=""
if [[ $FLOOR == 1 ]]; then
    cc -O2 -pthread -o "$OUT/allow-server" scripts/bench/allow-server.c
    FLOOR_SOCKET="$OUT/floor.sock"
    rm -f "$FLOOR_SOCKET"
    "$OUT/allow-server" "$FLOOR_SOCKET" &
    FLOOR_PID=$!
    for _ in $(seq 50); do [[ -S $FLOOR_SOCKET ]] && break; sleep 0.1; done
fi

floor_round() { # variant
    [[ $FLOOR == 1 ]] || return 0
    local cmd=("$BENCH_SOCKET" --socket "$FLOOR_SOCKET" --json --rounds "$ROUNDS" --threads "$CLIENTS" --seconds "$RUN_SECS" --case allow)
    local mode line summary=()
    for mode in latency throughput multiplexed; do
        if [[ $mode == multiplexed ]]; then
            line=$("${cmd[@]}" --mode throughput --driver multiplexed)
        else
            line=$("${cmd[@]}" --mode "$mode")
        fi
        emit "$(printf '{"variant":"floor","with":"%s","run":%s,"phase":"socket-%s-allow","result":%s}' "$1" "$RUN" "$mode" "$line")"
        summary+=("$mode $(printf '%s' "$line" | python3 -c 'import json, sys
r = json.load(sys.stdin)
print("p50 %.1f us" % r["p50_us"] if r.get("mode") == "latency" else "%.0f/s" % r["rate_per_s"])')")
    done
    log "  floor: ${summary[*]}"
}

run_variant() { # variant
    local variant=$1 home audit_dir fs stdout stderr ready socket http token
    home=$(mktemp -d "${TMP_PARENT}/rampart-bench-home.XXXXXX")
    TMP_DIRS+=("$home")
    local audit_args=()
    if [[ $variant == *-always ]]; then
        audit_args=(--audit-sync always)
    fi
    case ${variant%-always} in
    disk) audit_dir="$home/audit" ;;
    tmpfs)
        local shm
        shm=$(mktemp -d /dev/shm/rampart-bench.XXXXXX)
        TMP_DIRS+=("$shm")
        audit_dir="$shm/audit"
        audit_args+=(--audit-dir "$audit_dir")
        ;;
    *)
        log "unknown variant $variant (disk, tmpfs, disk-always, tmpfs-always)"
        return 1
        ;;
    esac
    fs=$(df --output=fstype "$(dirname "$audit_dir")" | tail -1 | tr -d ' ')
    stdout="$OUT/serve-$variant.out"
    stderr="$OUT/serve-$variant.err"
    local busy
    busy=$(machine_busy)
    if [[ $IDLE == 1 ]]; then
        local waited=0
        while ((busy >= 5 && waited < 300)); do
            busy=$(machine_busy)
            waited=$((waited + 1))
        done
    fi
    log "variant $variant: RAMPART_HOME=$home, audit on $fs ($audit_dir); machine ${busy}% busy before start"

    RAMPART_HOME=$home "$BIN" serve --listen 127.0.0.1:0 ${audit_args[@]+"${audit_args[@]}"} \
        >"$stdout" 2>"$stderr" &
    DAEMON_PID=$!
    ready=""
    for _ in $(seq 300); do
        ready=$(grep -m1 '^rampart serve ready:' "$stdout" || true)
        [[ -n $ready ]] && break
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            log "the daemon exited before it was ready:"
            cat "$stderr" >&2
            return 1
        fi
        sleep 0.1
    done
    if [[ -z $ready ]]; then
        log "no ready line after 30 s"
        return 1
    fi
    socket=$(sed -E 's/.*socket=([^ ]*).*/\1/' <<<"$ready")
    http=$(sed -E 's/.*http=([^ ]*).*/\1/' <<<"$ready")
    token="$home/token"
    local policy_src
    policy_src=$(sed 's/\x1b\[[0-9;]*m//g' "$stderr" | grep -o 'source=[^ ]*' | head -1 || true)
    emit "$(printf '{"variant":"%s","phase":"start","fs":"%s","audit_dir":"%s","pid":%s,"source":"%s","busy_before":%s}' \
        "$variant" "$fs" "$audit_dir" "$DAEMON_PID" "${policy_src#source=}" "$busy")"
    sleep 0.5
    memory "$variant" mem-idle

    local sock=("$BENCH_SOCKET" --socket "$socket" --json --rounds "$ROUNDS" --threads "$CLIENTS" --seconds "$RUN_SECS")
    # In turn rather than each N times in a row: a noisy minute then spreads over every
    # measurement instead of sinking one. Only the first run is profiled.
    local run prof_socket=socket
    for run in $(seq "$REPEAT"); do
        phase "$variant" socket-latency-allow "" "${sock[@]}" --mode latency --case allow
        phase "$variant" socket-latency-deny "" "${sock[@]}" --mode latency --case deny
        phase "$variant" socket-throughput-allow "$prof_socket" "${sock[@]}" --mode throughput --case allow
        phase "$variant" socket-throughput-deny "" "${sock[@]}" --mode throughput --case deny
        phase "$variant" socket-multiplexed-allow "" "${sock[@]}" --mode throughput --case allow --driver multiplexed
        phase "$variant" socket-multiplexed-deny "" "${sock[@]}" --mode throughput --case deny --driver multiplexed
        prof_socket=""
        floor_round "$variant"
        RUN=$((RUN + 1))
    done
    memory "$variant" mem-after-socket

    phase "$variant" http-raw http "$BENCH_HTTP" --addr "$http" --token-file "$token" --json \
        --connections "$CONNECTIONS" --seconds "$RUN_SECS"
    if [[ $WRK == 1 ]]; then
        cat >"$OUT/wrk-post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"agent":"bench","session":"s","params":{"command":"git status"}}'
wrk.headers["Content-Type"] = "application/json"
LUA
        local before after
        before=$(cpu_ticks "$DAEMON_PID")
        wrk -t2 -c"$CONNECTIONS" -d"${RUN_SECS}s" --latency -s "$OUT/wrk-post.lua" \
            -H "Authorization: Bearer $(cat "$token")" "http://$http/v1/preflight/exec" \
            >"$OUT/wrk-$variant.txt"
        after=$(cpu_ticks "$DAEMON_PID")
        emit "$(printf '{"variant":"%s","phase":"http-wrk","cpu_ticks":%s,"clk_tck":%s,"file":"%s"}' \
            "$variant" "$((after - before))" "$(getconf CLK_TCK)" "$OUT/wrk-$variant.txt")"
        log "  http-wrk: $(grep 'Requests/sec' "$OUT/wrk-$variant.txt")"
    fi
    memory "$variant" mem-after-http

    local t0 rc=0 t1
    t0=$(date +%s.%N)
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID" || rc=$?
    t1=$(date +%s.%N)
    DAEMON_PID=""
    local verify vrc=0
    verify=$("$BIN" audit verify --audit-dir "$audit_dir" 2>&1) || vrc=$?
    emit "$(python3 -c 'import json,sys; print(json.dumps({"variant":sys.argv[1],"phase":"stop","exit":int(sys.argv[2]),"stop_s":float(sys.argv[4])-float(sys.argv[3]),"verify_rc":int(sys.argv[5]),"verify":sys.argv[6].strip(),"audit_bytes":int(sys.argv[7])}))' \
        "$variant" "$rc" "$t0" "$t1" "$vrc" "$verify" "$(cat "$audit_dir"/*.jsonl | wc -c)")"
    log "  stopped (exit $rc); audit verify: $verify"

    if [[ $PERF == 1 ]]; then
        for prof in socket http; do
            local data="$OUT/perf-$variant-$prof.data"
            [[ -s $data ]] || continue
            # Inclusive share of samples per frame of interest, each sample counted once per
            # frame (perf report --children splits inlined and outlined copies of a symbol).
            perf script -i "$data" -F comm,tid,ip,sym 2>/dev/null | python3 -c "$FOLD" \
                >"$OUT/perf-$variant-$prof.json"
            perf report -i "$data" --no-children --sort dso,sym --no-call-graph --percent-limit 0.5 \
                >"$OUT/perf-$variant-$prof.self.txt" 2>/dev/null || true
        done
    fi
    for d in ${TMP_DIRS[@]+"${TMP_DIRS[@]}"}; do rm -rf "$d"; done
    TMP_DIRS=()
}

for v in $VARIANTS; do
    run_variant "$v"
done

if [[ -n $FLOOR_PID ]]; then
    kill "$FLOOR_PID" 2>/dev/null || true
    wait "$FLOOR_PID" 2>/dev/null || true
    FLOOR_PID=""
fi

python3 - "$RESULTS" "$OUT" "$PERF" <<'PY'
import json, os, platform, re, subprocess, sys

results, out, perf = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rows = [json.loads(l) for l in open(results) if l.strip()]
variants = []
by = {}
for r in rows:
    v = r["variant"]
    if v not in variants and v != "floor":
        variants.append(v)
    by.setdefault((v, r["phase"]), []).append(r)

def measure_of(phase):
    """What a repeated phase is ranked by: the round trip's p50, or the rate."""
    return "p50_us" if "latency" in phase else "rate_per_s"

def runs(v, phase):
    return [r for r in by.get((v, phase), []) if "result" in r]

def get(v, phase):
    """The phase's run, or the median run (the lower of the middle two) when repeated."""
    rs = by.get((v, phase))
    if not rs:
        return None
    done = runs(v, phase)
    if len(done) < 2:
        return rs[-1]
    k = measure_of(phase)
    done.sort(key=lambda r: r["result"].get(k) or 0)
    return done[(len(done) - 1) // 2]

def spread(v, phase, fmt):
    """` (lo–hi, N runs)` for a repeated phase."""
    vals = [r["result"].get(measure_of(phase)) for r in runs(v, phase)]
    vals = [x for x in vals if x is not None]
    if len(vals) < 2:
        return ""
    return f" ({fmt(min(vals))}–{fmt(max(vals))}, {len(vals)} runs)"

def us(x):
    return "—" if x is None else (f"{x:,.0f} µs" if x >= 100 else f"{x:.1f} µs")

def rate(x):
    return "—" if x is None else f"{x:,.0f}/s"

def mb(kb):
    return "—" if kb is None else f"{kb / 1024:.1f} MB"

def mark(ok):
    return "" if ok is None else (" ✅" if ok else " ❌")

def res(v, phase, key):
    r = get(v, phase)
    return None if r is None or "result" not in r else r["result"].get(key)

def cpu_per(v, phase):
    """Daemon CPU time per answered request over the whole phase (warm-up included)."""
    r = get(v, phase)
    if r is None or "result" not in r:
        return None
    n = r["result"].get("all_responses") or 0
    return None if n == 0 else r["cpu_ticks"] / r["clk_tck"] / n * 1e6

def wrk(v):
    r = get(v, "http-wrk")
    if r is None:
        return None
    text = open(r["file"]).read()
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", text)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
    n = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    def t(m):
        if not m:
            return None
        return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
    reqs = int(n.group(1)) if n else 0
    return {
        "rate": float(m.group(1)) if m else None,
        "p50": t(p50), "p99": t(p99),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "cpu_us": r["cpu_ticks"] / r["clk_tck"] / reqs * 1e6 if reqs else None,
    }

def label(v):
    s = get(v, "start") or {}
    sync = "fdatasync before each answer" if v.endswith("-always") else "synced within 100 ms"
    where = "" if v.startswith("disk") else " /dev/shm,"
    return f"{v}: audit on {s.get('fs', '?')},{where} {sync}"

lines = []
def row(name, target, cells):
    lines.append(f"| {name} | {target} | " + " | ".join(cells) + " |")

cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                     capture_output=True, text=True).stdout.strip()
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
src = (get(variants[0], "start") or {}).get("source", "?") if variants else "?"
print(f"### rampart daemon benchmarks ({os.cpu_count()} CPUs: {cpu}; kernel {platform.release()}; "
      f"git {rev}{' + local changes' if dirty else ''}; policy {src}, enforce mode)\n")
print("| measure | target | " + " | ".join(label(v) for v in variants) + " |")
print("|---|---|" + "---:|" * len(variants))

for case in ("allow", "deny"):
    cmd = "git status" if case == "allow" else "rm -rf /"
    ph = f"socket-latency-{case}"
    row(f"socket round trip, 1 client, {case} (`{cmd}`): p50", "≤ 50 µs",
        [us(res(v, ph, "p50_us")) + mark(None if res(v, ph, "p50_us") is None else res(v, ph, "p50_us") <= 50) + spread(v, ph, us) for v in variants])
    row(f"socket round trip, 1 client, {case}: p99 / max", "",
        [f"{us(res(v, ph, 'p99_us'))} / {us(res(v, ph, 'max_us'))}" for v in variants])
for driver, how in (("multiplexed", "in flight from 2 epoll loops"), ("throughput", "blocking client threads")):
    for case in ("allow", "deny"):
        ph = f"socket-{driver}-{case}"
        row(f"socket decisions/s, {res(variants[0], ph, 'clients') or 32} {how}, {case}", "≥ 50,000/s",
            [rate(res(v, ph, "rate_per_s")) + mark(None if res(v, ph, "rate_per_s") is None else res(v, ph, "rate_per_s") >= 50000) + spread(v, ph, rate) for v in variants])
        row(f"socket latency under that load, {case}: p50 / p99", "",
            [f"{us(res(v, ph, 'p50_us'))} / {us(res(v, ph, 'p99_us'))}" for v in variants])
row("daemon CPU per socket decision (allow, epoll loops / client threads)", "",
    [f"{us(cpu_per(v, 'socket-multiplexed-allow'))} / {us(cpu_per(v, 'socket-throughput-allow'))}" for v in variants])

def floor_vals(v, phase, key):
    return [r["result"][key] for r in rows
            if r["variant"] == "floor" and r.get("with") == v and r["phase"] == phase]

def paired(v, phase, floor_phase, key, op):
    """op(daemon, floor) for each round that measured both."""
    fl = {r["run"]: r["result"][key] for r in rows
          if r["variant"] == "floor" and r.get("with") == v and r["phase"] == floor_phase}
    return [op(r["result"][key], fl[r["run"]]) for r in runs(v, phase) if r.get("run") in fl]

def mid(xs, fmt):
    """Median (the lower of the middle two) with the range, or —."""
    if not xs:
        return "—"
    xs = sorted(xs)
    m = fmt(xs[(len(xs) - 1) // 2])
    return m if len(xs) < 2 else f"{m} ({fmt(xs[0])} to {fmt(xs[-1])})"

def diff_us(x):
    return f"{x:+.1f} µs"

def pct(x):
    return f"{x * 100:.0f}%"

if any(floor_vals(v, "socket-latency-allow", "p50_us") for v in variants):
    row("floor in the same rounds: round trip p50", "",
        [mid(floor_vals(v, "socket-latency-allow", "p50_us"), us) for v in variants])
    for case in ("allow", "deny"):
        row(f"daemon − floor, round trip p50, paired by round, {case}", "",
            [mid(paired(v, f"socket-latency-{case}", "socket-latency-allow", "p50_us",
                        lambda d, f: d - f), diff_us) for v in variants])
    row("floor in the same rounds: decisions/s from the epoll loops", "",
        [mid(floor_vals(v, "socket-multiplexed-allow", "rate_per_s"), rate) for v in variants])
    for case in ("allow", "deny"):
        row(f"daemon ÷ floor, decisions/s from the epoll loops, paired by round, {case}", "",
            [mid(paired(v, f"socket-multiplexed-{case}", "socket-multiplexed-allow", "rate_per_s",
                        lambda d, f: d / f), pct) for v in variants])

ph = "http-raw"
row(f"HTTP `POST /v1/preflight/exec`, {res(variants[0], ph, 'connections') or 32} keep-alive conns (bench_http): requests/s", "≥ 20,000/s",
    [rate(res(v, ph, "rate_per_s")) + mark(None if res(v, ph, "rate_per_s") is None else res(v, ph, "rate_per_s") >= 20000) for v in variants])
row("HTTP latency (bench_http): p50 / p99", "",
    [f"{us(res(v, ph, 'p50_us'))} / {us(res(v, ph, 'p99_us'))}" for v in variants])
row("daemon CPU per HTTP request (bench_http)", "",
    [us(cpu_per(v, ph)) for v in variants])
if any(wrk(v) for v in variants):
    ws = {v: wrk(v) for v in variants}
    row("HTTP, same load with `wrk -t2` (cross-check): requests/s", "≥ 20,000/s",
        [("—" if not ws[v] else rate(ws[v]["rate"]) + mark(ws[v]["rate"] >= 20000)) for v in variants])
    row("HTTP latency (wrk): p50 / p99", "",
        [("—" if not ws[v] else f"{us(ws[v]['p50'])} / {us(ws[v]['p99'])}") for v in variants])
for phase, name in (("mem-idle", "after start, idle"), ("mem-after-socket", "after the socket load"),
                    ("mem-after-http", "after the HTTP load")):
    row(f"daemon VmRSS {name}", "≤ 30 MB",
        [mb((get(v, phase) or {}).get("rss_kb")) + mark(None if get(v, phase) is None else get(v, phase)["rss_kb"] <= 30 * 1024) for v in variants])
row("daemon VmHWM (peak RSS) at the end", "≤ 30 MB",
    [mb((get(v, "mem-after-http") or {}).get("hwm_kb")) + mark(None if get(v, "mem-after-http") is None else get(v, "mem-after-http")["hwm_kb"] <= 30 * 1024) for v in variants])

def problems(v):
    n = 0
    for r in rows:
        if r["variant"] == v and "result" in r:
            x = r["result"]
            n += x.get("errors", 0) + x.get("wrong_verdict", 0) + x.get("bad_status", 0) + x.get("not_allowed", 0)
    w = wrk(v)
    if w:
        n += w["non2xx"]
    return n
row("client errors / wrong verdicts / non-200", "0", [f"{problems(v)}" + mark(problems(v) == 0) for v in variants])
def audit(v):
    s = get(v, "stop")
    if not s:
        return "—"
    m = re.search(r"(\d+) events", s["verify"])
    ok = s["verify_rc"] == 0
    n = int(m.group(1)) if m else 0
    per = f", {s['audit_bytes'] / n:.0f} B/record" if n else ""
    return f"{n:,} records{per}, verify {'intact' if ok else 'FAILED (rc ' + str(s['verify_rc']) + ')'}" + mark(ok)
row("audit trail after the run (`rampart audit verify`)", "intact", [audit(v) for v in variants])
row("machine CPU busy (other processes) in the second before the daemon started", "idle",
    [f"{(get(v, 'start') or {}).get('busy_before', '?')}%" for v in variants])
row("SIGTERM → exit", "exit 0",
    [("—" if not get(v, "stop") else f"exit {get(v, 'stop')['exit']} in {get(v, 'stop')['stop_s']:.2f} s" + mark(get(v, "stop")["exit"] == 0)) for v in variants])
print("\n".join(lines))

if "disk" in variants and "tmpfs" in variants:
    print("\n**Storage cost** (disk − tmpfs):", end=" ")
    parts = []
    for case in ("allow", "deny"):
        a, b = res("disk", f"socket-latency-{case}", "p50_us"), res("tmpfs", f"socket-latency-{case}", "p50_us")
        if a is not None and b is not None:
            parts.append(f"{case} round-trip p50 +{a - b:,.0f} µs")
    a, b = res("disk", "socket-throughput-allow", "rate_per_s"), res("tmpfs", "socket-throughput-allow", "rate_per_s")
    if a and b:
        parts.append(f"socket throughput on disk {a / b * 100:.0f}% of tmpfs")
    a, b = res("disk", "http-raw", "rate_per_s"), res("tmpfs", "http-raw", "rate_per_s")
    if a and b:
        parts.append(f"HTTP throughput on disk {a / b * 100:.0f}% of tmpfs")
    print("; ".join(parts) + ".")

fl_p50, fl_rate = res("floor", "socket-latency-allow", "p50_us"), res("floor", "socket-throughput-allow", "rate_per_s")
fl_mux = res("floor", "socket-multiplexed-allow", "rate_per_s")
if fl_p50 is not None and fl_rate is not None:
    print(f"\n**Floor** (`scripts/bench/allow-server.c`: accept, read, answer Allow, close; no decision, no audit), "
          f"same clients: round trip p50 {us(fl_p50)}{spread('floor', 'socket-latency-allow', us)}; "
          f"{rate(fl_mux)}{spread('floor', 'socket-multiplexed-allow', rate)} from the epoll loops and "
          f"{rate(fl_rate)}{spread('floor', 'socket-throughput-allow', rate)} from the client threads "
          f"under the same concurrent load.")

if perf:
    keys = [
        ("AuditLog::write", "audit: `AuditLog::write` on the request's task (total)"),
        ("AuditLog::prepare", "  redaction and serialization (`prepare`)"),
        ("event::redact_event", "    of which `redact_event`"),
        ("Tail::append", "  under the log's mutex: chain, hash, `write(2)`"),
        ("ksys_write", "    of which the `write(2)` system call"),
        ("lock_contended", "all `std::sync::Mutex` contention (futex wait)"),
        ("Shared::pass", "audit flusher: sync pass (own thread)"),
        ("File>::sync_data", "  `fdatasync`"),
        ("Engine>::enforce", "engine: `Engine::enforce` (policy evaluation)"),
        ("Engine>::evaluate", "engine: `Engine::evaluate` (policy evaluation)"),
        ("UnixListener>::accept", "socket: accept (decider threads)"),
        ("deciders::peer_uid", "socket: `SO_PEERCRED`"),
        ("frame::peek_request", "socket: peek the request"),
        ("judge::judge", "socket: `judge` (decision and audit record, total)"),
        ("frame::read_request", "socket: read a request as it arrives (general path)"),
        ("frame::reply_blocking", "socket: answer (send, consume the request)"),
        ("frame::discard", "  of which consuming the answered request"),
        ("sock_def_readable", "waking the client (socket and HTTP sends)"),
        ("unix_write_space", "socket: client woken by a consumed request"),
        ("__x64_sys_close", "close(2) (sockets, mostly)"),
        ("__x64_sys_epoll_ctl", "epoll registration of connections"),
        ("http::eval::preflight", "http: `eval::preflight` handler (total)"),
        ("canonical::canonicalize", "http: `canonicalize`"),
        ("http::decode_object", "http: `decode_object` (request JSON)"),
        ("http::json_response", "http: `json_response`"),
        ("poll_flush", "http: hyper response write (TCP send)"),
        ("worker::Context::park", "tokio: worker park/unpark (idle, wake-ups)"),
    ]
    profs = [(v, p) for v in variants for p in ("socket", "http")
             if os.path.exists(os.path.join(out, f"perf-{v}-{p}.json"))]
    data = {vp: json.load(open(os.path.join(out, f"perf-{vp[0]}-{vp[1]}.json"))) for vp in profs}
    print("\n### where the daemon's CPU goes (perf, % of the daemon's on-CPU samples whose stack holds the frame)\n")
    print("| frame | " + " | ".join(f"{v} {'socket 32 clients' if p == 'socket' else 'HTTP'}" for v, p in profs) + " |")
    print("|---|" + "---:|" * len(profs))
    print("| samples | " + " | ".join(str(data[vp]["samples"]) for vp in profs) + " |")
    for k, name in keys:
        cells = [data[vp]["frames"].get(k, 0) / max(data[vp]["samples"], 1) * 100 for vp in profs]
        if all(c < 0.05 for c in cells):
            continue
        print(f"| {name} | " + " | ".join(f"{c:.1f}%" for c in cells) + " |")
    print(f"\nperf data: {out}/perf-*.data (perf report -i FILE --children)")
PY
log "results, daemon logs: $OUT"
