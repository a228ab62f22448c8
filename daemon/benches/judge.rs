//! The daemon's own CPU per socket decision, without the socket: decoding the request,
//! the policy decision, the audit record (redaction, canonical JSON, hash chain, the
//! `write(2)`) and the reply's encoding, as a decider thread does them.
//!
//! `cargo bench -p rampart-daemon --bench judge`; the audit trail goes to a temporary
//! directory on the default temp filesystem (`TMPDIR`). Before each case it prints how many
//! heap allocations one decision makes (counted on top of mimalloc, the `rampart` binary's
//! allocator).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_daemon::approvals::ApprovalStore;
use rampart_daemon::audit::AuditSync;
use rampart_daemon::delegate::VerifySettings;
use rampart_daemon::metrics::Metrics;
use rampart_daemon::policy_store::{PolicySource, PolicyStore};
use rampart_daemon::recorder::Recorder;
use rampart_daemon::socket::{Judged, judge};
use rampart_daemon::state::{AppState, Mode};
use rampart_daemon::verdict_cache::VerdictCache;
use rampart_engine::CallCounter;
use rampart_proto::{EntryPoint, Flags, RequestRef, decode_request, encode_reply, encode_request};

fn state(audit: &std::path::Path) -> Arc<AppState> {
    let (events, _) = tokio::sync::broadcast::channel(32);
    let (shutdown, _) = tokio::sync::watch::channel(false);
    Arc::new(AppState {
        policies: PolicyStore::open(PolicySource::Profile("standard".into()), None)
            .expect("standard profile"),
        approvals: ApprovalStore::open(Duration::from_secs(120), None).expect("approvals"),
        recorder: Recorder::open(audit, AuditSync::Interval(Duration::from_millis(100)))
            .expect("audit trail"),
        counter: Mutex::new(CallCounter::new()),
        token: "bench".into(),
        mode: Mode::Enforce,
        strict: None,
        verify_url: None,
        verify: VerifySettings {
            url: None,
            timeout: None,
            fail_open: None,
            cache: VerdictCache::new(Duration::from_secs(60), 1024),
        },
        http_client: rampart_daemon::delegate::client(),
        metrics: Metrics::default(),
        events,
        started: Instant::now(),
        shutdown,
    })
}

fn frame(path: &[u8], argv: &[&[u8]]) -> Vec<u8> {
    let req = RequestRef {
        entry: EntryPoint::Execvp,
        flags: Flags::empty(),
        mode: rampart_proto::Mode::Enforce,
        pid: 4242,
        ppid: 4241,
        uid: 1000,
        path,
        requested: argv[0],
        cwd: b"/home/u/project",
        agent: b"bench",
        session: b"bench-judge",
        interpreter: None,
        argv,
    };
    let mut buf = [0u8; 1024];
    let n = encode_request(&req, &mut buf).expect("fits");
    buf[..n].to_vec()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state(dir.path());
    let cases: [(&str, Vec<u8>, bool); 2] = [
        (
            "allow git status",
            frame(b"/usr/bin/git", &[b"git", b"status"]),
            true,
        ),
        (
            "deny rm -rf /",
            frame(b"/usr/bin/rm", &[b"rm", b"-rf", b"/"]),
            false,
        ),
    ];
    let mut out = Vec::with_capacity(8192);
    for (name, bytes, allowed) in &cases {
        // Warm the caches (and the audit file) first; then count one decision's allocations.
        for _ in 0..3 {
            let _ = judge(&state, decode_request(bytes).expect("valid frame"));
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let _ = judge(&state, decode_request(bytes).expect("valid frame"));
        let n = ALLOCATIONS.load(Ordering::Relaxed) - before;
        eprintln!("judge: {name}: {n} heap allocations per decision (decoding included)");
        c.bench_function(&format!("judge: {name}"), |b| {
            b.iter(|| {
                let req = decode_request(bytes).expect("valid frame");
                let Judged::Reply(reply) = judge(&state, req) else {
                    panic!("expected a final reply");
                };
                assert_eq!(matches!(reply, rampart_proto::Reply::Allow), *allowed);
                out.clear();
                encode_reply(&reply, &mut out).expect("reply fits")
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
/// The binary's allocator, counting allocations (the figure printed before each case).
struct Counting;

static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to mimalloc.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { INNER.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { INNER.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { INNER.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
