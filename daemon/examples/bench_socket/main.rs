//! Load generator for the daemon's Unix socket (architecture spec §8, issue 3).
//!
//! Speaks rampart-proto exactly like `librampart.so`: a blocking `std` `UnixStream`, one
//! request per connection (connect, write the encoded request, read the 10-byte header and
//! the reply payload, close).
//!
//! * **latency** (mode A): one client, `--rounds` sequential round trips, each timed with
//!   `Instant` from before `connect` to after the reply is decoded → p50/p90/p99/max.
//! * **throughput** (mode B): `--threads` clients hammering for `--seconds` → decisions/s,
//!   and the per-request latency under that load. `--driver threads` (the default) gives
//!   each client a thread of its own, blocking like the library; `--driver multiplexed`
//!   keeps the same number of requests in flight from `--loops` epoll loops instead (see
//!   [`multiplexed`]), which measures the daemon with less of the load generator's cost
//!   mixed in on a small machine; `--driver both` runs one after the other.
//!
//! Both modes run for an allowed exec (`/usr/bin/git status`, cwd `/tmp`) and a denied one
//! (`/usr/bin/rm -rf /`) unless `--case` picks one. Every reply is checked against the
//! expected verdict; mismatches and I/O errors are counted and reported.
//!
//! ```text
//! cargo run --release -p rampart-daemon --example bench_socket -- \
//!     --socket "$RAMPART_HOME/rampart.sock" [--rounds 5000] [--threads 32] [--seconds 5] [--json]
//! ```
//!
//! `--json` prints one JSON object per measurement (for `scripts/bench-daemon.sh`).

mod multiplexed;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use rampart_proto::{
    EntryPoint, Flags, HEADER_LEN, MAX_REPLY_PAYLOAD, Mode, ReplyRef, RequestRef,
    decode_reply_payload_ref, encode_request, read_reply_frame_len,
};
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Case {
    Allow,
    Deny,
    Both,
    /// `nc -l 4444`: a `verify` rule of the standard profile. Against a daemon with a
    /// verifier, every round trip after the first is a verdict-cache hit.
    Verify,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Driver {
    /// A blocking client per thread, as the library behaves.
    Threads,
    /// Non-blocking connections driven by a few epoll loops (like `wrk`).
    Multiplexed,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    Latency,
    Throughput,
    Both,
}

#[derive(Parser, Debug)]
#[command(about = "rampart daemon socket benchmark (one request per connection)")]
struct Args {
    /// The daemon socket [default: $RAMPART_HOME/rampart.sock, else ~/.rampart/rampart.sock].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Sequential round trips measured in latency mode (after the warm-up).
    #[arg(long, default_value_t = 5000)]
    rounds: usize,
    /// Unmeasured round trips before each measurement.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Concurrent clients in throughput mode.
    #[arg(long, default_value_t = 32)]
    threads: usize,
    /// How throughput mode generates its load.
    #[arg(long, value_enum, default_value = "threads")]
    driver: Driver,
    /// Event loops of `--driver multiplexed` [default: one per CPU].
    #[arg(long)]
    loops: Option<usize>,
    /// Duration of each throughput run, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Which verdicts to exercise.
    #[arg(long, value_enum, default_value = "both")]
    case: Case,
    /// Which modes to run.
    #[arg(long, value_enum, default_value = "both")]
    mode: Which,
    /// Print one JSON object per measurement instead of text.
    #[arg(long)]
    json: bool,
}

/// One benchmark request and the verdict it must get.
struct Call {
    name: &'static str,
    path: &'static [u8],
    requested: &'static [u8],
    argv: &'static [&'static [u8]],
    expect_allow: bool,
}

const ALLOW: Call = Call {
    name: "allow",
    path: b"/usr/bin/git",
    requested: b"git",
    argv: &[b"git", b"status"],
    expect_allow: true,
};

const VERIFY: Call = Call {
    name: "verify (cache hit)",
    path: b"/usr/bin/nc",
    requested: b"nc",
    argv: &[b"nc", b"-l", b"4444"],
    expect_allow: true,
};

const DENY: Call = Call {
    name: "deny",
    path: b"/usr/bin/rm",
    requested: b"rm",
    argv: &[b"rm", b"-rf", b"/"],
    expect_allow: false,
};

#[derive(Debug)]
enum Outcome {
    Allow,
    Deny,
    Other,
}

/// The encoded request frame (what the library writes in one `write`).
fn frame(call: &Call) -> Vec<u8> {
    let pid = std::process::id() as i32;
    // SAFETY: getppid/getuid have no preconditions.
    let (ppid, uid) = unsafe { (libc::getppid(), libc::getuid()) };
    let req = RequestRef {
        entry: EntryPoint::Execvp,
        flags: Flags::empty(),
        mode: Mode::Enforce,
        pid,
        ppid,
        uid,
        path: call.path,
        requested: call.requested,
        cwd: b"/tmp",
        agent: b"bench",
        session: b"bench-socket",
        interpreter: None,
        argv: call.argv,
    };
    let mut buf = [0u8; 1024];
    let n = encode_request(&req, &mut buf).expect("request fits in 1 KiB");
    buf[..n].to_vec()
}

/// One round trip on a fresh connection, as the preload library does it. The reply is
/// read into one buffer as it comes (usually a single `recv`).
fn round_trip(socket: &Path, request: &[u8], reply: &mut [u8]) -> std::io::Result<Outcome> {
    let mut s = UnixStream::connect(socket)?;
    s.write_all(request)?;
    let mut got = 0;
    let mut need = HEADER_LEN;
    while got < need {
        let n = s.read(&mut reply[got..])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
        if got >= HEADER_LEN && need == HEADER_LEN {
            let header: &[u8; HEADER_LEN] = reply[..HEADER_LEN].try_into().expect("header");
            let (_, len) = read_reply_frame_len(header).map_err(std::io::Error::other)?;
            need = HEADER_LEN + len;
        }
    }
    drop(s);
    decode_outcome(&reply[HEADER_LEN..need]).map_err(std::io::Error::other)
}

/// The verdict in a reply payload.
fn decode_outcome(payload: &[u8]) -> Result<Outcome, String> {
    Ok(
        match decode_reply_payload_ref(payload).map_err(|e| e.to_string())? {
            ReplyRef::Allow => Outcome::Allow,
            ReplyRef::Deny { .. } => Outcome::Deny,
            ReplyRef::Pending { .. } => Outcome::Other,
        },
    )
}

#[derive(Default)]
struct Tally {
    ok: u64,
    wrong_verdict: u64,
    errors: u64,
    first_error: Option<String>,
    /// Nanoseconds per successful round trip.
    lat: Vec<u64>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        self.wrong_verdict += o.wrong_verdict;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.lat.extend(o.lat);
    }
}

fn one(socket: &Path, call: &Call, request: &[u8], reply: &mut [u8], t: &mut Tally) {
    let start = Instant::now();
    let outcome = round_trip(socket, request, reply).map_err(|e| e.to_string());
    if !record(t, call, outcome, start) {
        // Do not spin on a refused connection (backlog full, daemon gone).
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Counts one finished exchange (started at `start`); false when it failed.
fn record(t: &mut Tally, call: &Call, outcome: Result<Outcome, String>, start: Instant) -> bool {
    match outcome {
        Ok(o) => {
            let ns = start.elapsed().as_nanos() as u64;
            let right = matches!(
                (&o, call.expect_allow),
                (Outcome::Allow, true) | (Outcome::Deny, false)
            );
            if right {
                t.ok += 1;
            } else {
                t.wrong_verdict += 1;
                if t.first_error.is_none() {
                    t.first_error = Some(format!("unexpected verdict {o:?}"));
                }
            }
            t.lat.push(ns);
            true
        }
        Err(e) => {
            t.errors += 1;
            if t.first_error.is_none() {
                t.first_error = Some(e);
            }
            false
        }
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

struct Stats {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

fn stats(lat: &mut [u64]) -> Stats {
    lat.sort_unstable();
    let mean = if lat.is_empty() {
        f64::NAN
    } else {
        lat.iter().sum::<u64>() as f64 / lat.len() as f64 / 1000.0
    };
    Stats {
        p50: pct(lat, 0.50),
        p90: pct(lat, 0.90),
        p99: pct(lat, 0.99),
        max: pct(lat, 1.0),
        mean,
    }
}

fn latency(args: &Args, socket: &Path, call: &Call) {
    let request = frame(call);
    let mut reply = vec![0u8; HEADER_LEN + MAX_REPLY_PAYLOAD];
    let mut warm = Tally::default();
    for _ in 0..args.warmup {
        one(socket, call, &request, &mut reply, &mut warm);
    }
    let mut t = Tally {
        lat: Vec::with_capacity(args.rounds),
        ..Tally::default()
    };
    let wall = Instant::now();
    for _ in 0..args.rounds {
        one(socket, call, &request, &mut reply, &mut t);
    }
    let wall = wall.elapsed().as_secs_f64();
    let s = stats(&mut t.lat);
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "socket", "mode": "latency", "case": call.name, "clients": 1,
                "rounds": args.rounds, "ok": t.ok, "wrong_verdict": t.wrong_verdict,
                "errors": t.errors + warm.errors, "first_error": t.first_error.or(warm.first_error),
                "p50_us": s.p50, "p90_us": s.p90, "p99_us": s.p99, "max_us": s.max,
                "mean_us": s.mean, "rate_per_s": t.ok as f64 / wall,
            })
        );
    } else {
        println!(
            "latency  {:<5} 1 client, {} round trips: p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  max {:.1} µs  mean {:.1} µs  ({:.0}/s){}",
            call.name,
            args.rounds,
            s.p50,
            s.p90,
            s.p99,
            s.max,
            s.mean,
            t.ok as f64 / wall,
            problems(&t),
        );
    }
}

fn throughput(args: &Args, socket: &Path, call: &'static Call, driver: Driver) {
    let request = Arc::new(frame(call));
    let (mut total, wall, warm, label) = match driver {
        Driver::Multiplexed => {
            let loops = args
                .loops
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            let (t, wall) =
                multiplexed::run(socket, request, call, loops, args.threads, args.seconds);
            (t, wall, 0, "multiplexed")
        }
        _ => {
            let (t, wall, warm) = threaded(args, socket, call, request);
            (t, wall, warm, "threads")
        }
    };
    let rate = total.ok as f64 / wall;
    let s = stats(&mut total.lat);
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "socket", "mode": "throughput", "case": call.name, "driver": label,
                "clients": args.threads, "seconds": wall, "ok": total.ok,
                "wrong_verdict": total.wrong_verdict, "errors": total.errors,
                "first_error": total.first_error, "rate_per_s": rate,
                "all_responses": total.lat.len() as u64 + warm + 2,
                "p50_us": s.p50, "p90_us": s.p90, "p99_us": s.p99, "max_us": s.max,
                "mean_us": s.mean,
            })
        );
    } else {
        println!(
            "throughput {:<5} {} clients ({label}), {:.1} s: {:.0} decisions/s ({} ok); latency p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  max {:.1} µs{}",
            call.name,
            args.threads,
            wall,
            rate,
            total.ok,
            s.p50,
            s.p90,
            s.p99,
            s.max,
            problems(&total),
        );
    }
}

/// A blocking client per thread; returns the measured tally, its length in seconds and the
/// number of warm-up round trips.
fn threaded(
    args: &Args,
    socket: &Path,
    call: &'static Call,
    request: Arc<Vec<u8>>,
) -> (Tally, f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(args.threads + 1));
    let workers: Vec<_> = (0..args.threads)
        .map(|_| {
            let (request, stop, barrier, socket) = (
                request.clone(),
                stop.clone(),
                barrier.clone(),
                socket.to_path_buf(),
            );
            let warmup = args.warmup / args.threads.max(1) + 1;
            std::thread::spawn(move || {
                let mut reply = vec![0u8; HEADER_LEN + MAX_REPLY_PAYLOAD];
                let mut warm = Tally::default();
                for _ in 0..warmup {
                    one(&socket, call, &request, &mut reply, &mut warm);
                }
                barrier.wait();
                let mut t = Tally {
                    lat: Vec::with_capacity(1 << 16),
                    ..Tally::default()
                };
                while !stop.load(Ordering::Relaxed) {
                    one(&socket, call, &request, &mut reply, &mut t);
                }
                (t, warm.lat.len() as u64)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    let mut warm = 0;
    for w in workers {
        let (t, w) = w.join().expect("worker panicked");
        total.merge(t);
        warm += w;
    }
    // Includes the tail of requests in flight when the flag flipped.
    (total, start.elapsed().as_secs_f64(), warm)
}

fn problems(t: &Tally) -> String {
    if t.errors == 0 && t.wrong_verdict == 0 {
        return String::new();
    }
    format!(
        "  [{} errors, {} wrong verdicts; first: {}]",
        t.errors,
        t.wrong_verdict,
        t.first_error.as_deref().unwrap_or("?")
    )
}

fn main() {
    let args = Args::parse();
    let socket = args.socket.clone().unwrap_or_else(|| {
        let home = std::env::var_os("RAMPART_HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
                    .join(".rampart")
            });
        home.join("rampart.sock")
    });
    let calls: Vec<&'static Call> = match args.case {
        Case::Allow => vec![&ALLOW],
        Case::Deny => vec![&DENY],
        Case::Both => vec![&ALLOW, &DENY],
        Case::Verify => vec![&VERIFY],
    };
    // Fail fast (and clearly) when the daemon is not there or answers wrongly.
    for &call in &calls {
        let mut reply = vec![0u8; HEADER_LEN + MAX_REPLY_PAYLOAD];
        match round_trip(&socket, &frame(call), &mut reply) {
            Ok(o) => {
                let right = matches!(
                    (&o, call.expect_allow),
                    (Outcome::Allow, true) | (Outcome::Deny, false)
                );
                if !right {
                    eprintln!(
                        "bench_socket: warning: the {} case got {o:?} (the policy is not the standard profile?)",
                        call.name
                    );
                }
            }
            Err(e) => {
                eprintln!("bench_socket: cannot reach {}: {e}", socket.display());
                std::process::exit(1);
            }
        }
    }
    if matches!(args.mode, Which::Latency | Which::Both) {
        for c in &calls {
            latency(&args, &socket, c);
        }
    }
    if matches!(args.mode, Which::Throughput | Which::Both) {
        let drivers: &[Driver] = match args.driver {
            Driver::Both => &[Driver::Threads, Driver::Multiplexed],
            Driver::Threads => &[Driver::Threads],
            Driver::Multiplexed => &[Driver::Multiplexed],
        };
        for c in &calls {
            for &d in drivers {
                throughput(&args, &socket, c, d);
            }
        }
    }
}
