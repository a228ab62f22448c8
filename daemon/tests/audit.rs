//! The audit trail on real files: rotation, resume, verification, tamper detection,
//! redaction, compaction, concurrent writers, the query helper and the CLI.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, NaiveDate, Utc};
use rampart_daemon::audit::{
    self, AuditLog, AuditOptions, AuditQuery, AuditSync, ChainErrorKind, Event, EventDecision,
    EventResponse, QueryError,
};
use serde_json::{Value, json};

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn at(rfc3339: &str) -> TestClock {
        let t = DateTime::parse_from_rfc3339(rfc3339).unwrap();
        TestClock(Arc::new(AtomicI64::new(t.timestamp_nanos_opt().unwrap())))
    }
    fn advance_secs(&self, s: i64) {
        self.0.fetch_add(s * 1_000_000_000, Ordering::SeqCst);
    }
    fn clock(&self) -> audit::Clock {
        let t = self.0.clone();
        Arc::new(move || DateTime::<Utc>::from_timestamp_nanos(t.load(Ordering::SeqCst)))
    }
}

fn options(clock: &TestClock, rotate_bytes: u64, fsync: bool) -> AuditOptions {
    AuditOptions {
        rotate_bytes,
        sync: if fsync {
            AuditSync::Always
        } else {
            AuditSync::Never
        },
        clock: Some(clock.clock()),
        ..AuditOptions::default()
    }
}

/// A varied event: several tools, actions and agents, optional fields on and off.
fn mk(i: usize) -> Event {
    let tools = ["exec", "read", "fetch", "mcp__github__create_issue"];
    let actions = ["allow", "deny", "ask", "watch", "allow", "approved"];
    let tool = tools[i % tools.len()];
    let mut e = Event {
        agent: format!("agent-{}", i % 3),
        session: format!("session-{}", i % 5),
        tool: tool.into(),
        decision: EventDecision {
            action: actions[i % actions.len()].into(),
            evaluation_time_us: (i * 7 % 50) as u64,
            ..Default::default()
        },
        ..Default::default()
    };
    match tool {
        "exec" => {
            e.request.insert(
                "command".into(),
                format!("echo step-{i} && ls -la /tmp").into(),
            );
        }
        "read" => {
            e.request.insert(
                "path".into(),
                format!("/home/user/project/src/file-{i}.rs").into(),
            );
        }
        "fetch" => {
            e.request.insert(
                "url".into(),
                format!("https://api.example.com/v1/items/{i}").into(),
            );
        }
        _ => {
            e.request.insert(
                "arguments".into(),
                json!({"title": format!("issue «{i}» ✓"), "labels": ["bug", "p1"], "weight": 0.25 * i as f64, "n": i}),
            );
        }
    }
    if e.decision.action == "deny" {
        e.decision.matched_policies = vec!["block-destructive".into(), "standard".into()];
        e.decision.message = format!("blocked step {i}: \"quoted\" \\ backslash");
        e.decision.suggestions = vec!["use a narrower path".into()];
    }
    if i % 4 == 0 {
        e.response = Some(EventResponse {
            exit_code: Some((i % 3) as i64 - 1),
            duration_ms: i as u64 * 3,
            flags: if i % 8 == 0 {
                vec!["response-evaluated".into()]
            } else {
                vec![]
            },
        });
    }
    if i % 10 == 0 {
        e.run_id = format!("run-{i}");
        e.tool_call_id = format!("call_{i}");
    }
    if i % 25 == 0 {
        e.approval_owner.insert("owner".into(), "alice".into());
    }
    e
}

/// Writes `n` events starting at `first`, one minute apart, returning what was stored.
fn write_events(log: &AuditLog, clock: &TestClock, first: usize, n: usize) -> Vec<Event> {
    (first..first + n)
        .map(|i| {
            clock.advance_secs(60);
            log.append(mk(i)).expect("append")
        })
        .collect()
}

fn lines(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(dir: &Path, name: &str, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join(name), text).unwrap();
}

/// A chain of 300 events over ~9 files crossing midnight (22:00 → 03:00 UTC).
fn build_chain(dir: &Path) -> Vec<String> {
    let clock = TestClock::at("2026-02-12T22:00:00Z");
    let log = AuditLog::open_with(dir, options(&clock, 16 * 1024, false)).unwrap();
    write_events(&log, &clock, 0, 300);
    let files = audit::chain_files(dir).unwrap();
    assert!(files.len() >= 6, "{files:?}");
    audit::verify(dir, None).expect("fresh chain verifies");
    files
}

fn broken(dir: &Path) -> audit::ChainError {
    audit::verify(dir, None).expect_err("tampering must be detected")
}

// ---------------------------------------------------------------------------------------------

#[test]
fn mixed_workload_with_rotation_and_resume_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let clock = TestClock::at("2026-02-12T21:00:00Z");
    let rotate = 12 * 1024;
    let mut stored = Vec::new();

    // 1. a first run (fsync on, as serve runs it)
    {
        let log = AuditLog::open_with(&dir, options(&clock, rotate, true)).unwrap();
        assert_eq!(log.event_count(), 0);
        stored.extend(write_events(&log, &clock, 0, 120));
        assert_eq!(log.event_count(), 120);
    }
    // 2. restart: resume from the checkpoint, cross midnight
    {
        let log = AuditLog::open_with(&dir, options(&clock, rotate, false)).unwrap();
        assert_eq!(log.event_count(), 120);
        assert_eq!(log.last_hash(), stored.last().unwrap().hash);
        stored.extend(write_events(&log, &clock, 120, 100));
    }
    // 3. restart without a checkpoint: resume by scanning the files
    std::fs::remove_file(dir.join(audit::CHECKPOINT_FILE)).unwrap();
    {
        let log = AuditLog::open_with(&dir, options(&clock, rotate, false)).unwrap();
        assert_eq!(log.event_count(), 220);
        assert_eq!(log.last_hash(), stored.last().unwrap().hash);
        stored.extend(write_events(&log, &clock, 220, 30));
    }
    // 4. restart with a stale checkpoint (as after a crash between a write and its checkpoint)
    let stale = std::fs::read(dir.join(audit::CHECKPOINT_FILE)).unwrap();
    {
        let log = AuditLog::open_with(&dir, options(&clock, rotate, false)).unwrap();
        stored.extend(write_events(&log, &clock, 250, 7));
    }
    std::fs::write(dir.join(audit::CHECKPOINT_FILE), &stale).unwrap();
    {
        let log = AuditLog::open_with(&dir, options(&clock, rotate, false)).unwrap();
        assert_eq!(log.event_count(), 257);
        stored.extend(write_events(&log, &clock, 257, 43));
        assert_eq!(log.event_count(), 300);
    }

    let report = audit::verify(&dir, None).expect("chain verifies");
    assert_eq!(report.events, 300);
    assert!(report.anchor_checked && report.checkpoint_checked);
    assert_eq!(report.last_hash, stored.last().unwrap().hash);
    assert_eq!(
        report.to_string(),
        format!(
            "✓ Chain verified: 300 events across {} files, no tampering detected",
            report.files
        )
    );

    // Files: both days, parts, headers only where the chain continues.
    let files = audit::chain_files(&dir).unwrap();
    assert_eq!(report.files, files.len());
    assert_eq!(files[0], "2026-02-12.jsonl");
    assert!(
        files.contains(&"2026-02-12.p1.jsonl".to_string()),
        "{files:?}"
    );
    assert!(files.contains(&"2026-02-13.jsonl".to_string()), "{files:?}");
    assert!(
        files.iter().any(|f| f.starts_with("2026-02-13.p")),
        "{files:?}"
    );
    assert!(!lines(&dir, &files[0])[0].starts_with("{\"chain_continue\""));
    for w in files.windows(2) {
        let header: Value = serde_json::from_str(&lines(&dir, &w[1])[0]).unwrap();
        assert_eq!(header["prev_file"], w[0].as_str());
        let prev_last: Value = serde_json::from_str(lines(&dir, &w[0]).last().unwrap()).unwrap();
        assert_eq!(header["chain_continue"], prev_last["hash"]);
        // rotation keeps files near the limit (one header + one line of slack)
        let size = std::fs::metadata(dir.join(&w[0])).unwrap().len();
        assert!(size <= rotate, "{} is {size} bytes", w[0]);
    }

    // Every stored line is canonical, its event is what append returned, and ids are ULIDs.
    let mut i = 0;
    for f in &files {
        for l in lines(&dir, f) {
            if l.starts_with("{\"chain_continue\"") {
                continue;
            }
            let v: Value = serde_json::from_str(&l).unwrap();
            assert_eq!(audit::to_canonical_string(&v), l);
            let e: Event = serde_json::from_value(v).unwrap();
            assert_eq!(e, stored[i]);
            assert_eq!(e.schema_version, "rampart.audit.v1");
            assert_eq!(e.id.len(), 26);
            assert!(e.host.is_some());
            assert!(
                e.timestamp.ends_with('Z') && e.timestamp.len() == 30,
                "{}",
                e.timestamp
            );
            i += 1;
        }
    }
    assert_eq!(i, 300);
    assert_eq!(stored[0].prev_hash, "");
    for w in stored.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
    }

    // Anchor at the 300th event; checkpoint at the end.
    let anchor: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(audit::ANCHOR_FILE)).unwrap())
            .unwrap();
    assert_eq!(anchor["event_count"], 300);
    assert_eq!(anchor["event_id"], stored[299].id.as_str());
    assert_eq!(anchor["hash"], stored[299].hash.as_str());
    assert_eq!(anchor["file"], files.last().unwrap().as_str());
    let ckpt: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(audit::CHECKPOINT_FILE)).unwrap())
            .unwrap();
    assert_eq!(ckpt["version"], 1);
    assert_eq!(ckpt["event_count"], 300);
    assert_eq!(ckpt["last_hash"], stored[299].hash.as_str());
    assert_eq!(ckpt["current_file"], files.last().unwrap().as_str());

    // Permissions: directory 0700, files 0600.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for f in files.iter().map(String::as_str).chain([
        audit::CHECKPOINT_FILE,
        audit::ANCHOR_FILE,
        audit::LOCK_FILE,
    ]) {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }

    // tail
    let last5 = audit::tail(&dir, 5).unwrap();
    assert_eq!(last5, stored[295..].to_vec());
    assert_eq!(audit::tail(&dir, 1000).unwrap().len(), 300);
    assert!(audit::tail(&dir, 0).unwrap().is_empty());
}

#[test]
fn verify_since_skips_older_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let day2 = NaiveDate::from_ymd_opt(2026, 2, 13).unwrap();
    let full = audit::verify(dir, None).unwrap();
    let partial = audit::verify(dir, Some(day2)).unwrap();
    assert!(partial.events < full.events && partial.events > 0);
    assert_eq!(partial.first_file, "2026-02-13.jsonl");
    // Deleting the whole first day breaks the full chain but not the --since walk.
    for f in files.iter().filter(|f| f.starts_with("2026-02-12")) {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), ("2026-02-13.jsonl", 1));
    assert!(
        matches!(e.kind, ChainErrorKind::ContinuationHash { ref expected, .. } if expected.is_empty())
    );
    assert_eq!(
        audit::verify(dir, Some(day2)).unwrap().events,
        partial.events
    );
    let far = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
    assert!(matches!(
        audit::verify(dir, Some(far)).unwrap_err().kind,
        ChainErrorKind::NoFiles
    ));
}

#[test]
fn edited_line_is_a_hash_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let f = &files[2];
    let mut ls = lines(dir, f);
    let mut v: Value = serde_json::from_str(&ls[4]).unwrap();
    v["decision"]["action"] = json!("allow");
    v["agent"] = json!("someone-else");
    ls[4] = audit::to_canonical_string(&v);
    write_lines(dir, f, &ls);
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (f.as_str(), 5));
    assert!(matches!(e.kind, ChainErrorKind::HashMismatch { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("CHAIN BROKEN: {f}:5: hash mismatch"))
    );

    // A plain text edit of the raw line is caught the same way.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let f = &files[1];
    let mut ls = lines(dir, f);
    ls[3] = ls[3]
        .replacen("echo step", "echo STEP", 1)
        .replacen("/home/user", "/home/eve", 1)
        .replacen("api.example.com", "evil.example.com", 1)
        .replacen("agent-", "agent_", 1);
    write_lines(dir, f, &ls);
    let e = broken(dir);
    assert_eq!(
        (
            e.file.as_str(),
            e.line,
            matches!(e.kind, ChainErrorKind::HashMismatch { .. })
        ),
        (f.as_str(), 4, true)
    );

    // Garbage is bad JSON.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let f = &files[3];
    let mut ls = lines(dir, f);
    ls[6].truncate(40);
    write_lines(dir, f, &ls);
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (f.as_str(), 7));
    assert!(matches!(e.kind, ChainErrorKind::BadJson(_)), "{e}");
}

#[test]
fn deleted_line_is_a_prev_hash_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let f = &files[2];
    let mut ls = lines(dir, f);
    ls.remove(6);
    write_lines(dir, f, &ls);
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (f.as_str(), 7));
    assert!(
        matches!(e.kind, ChainErrorKind::PrevHashMismatch { .. }),
        "{e}"
    );

    // The first event of the chain.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let mut ls = lines(dir, &files[0]);
    ls.remove(0);
    write_lines(dir, &files[0], &ls);
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (files[0].as_str(), 1));
    assert!(
        matches!(e.kind, ChainErrorKind::PrevHashMismatch { ref expected, .. } if expected.is_empty())
    );

    // The last line of a rotated file: the next file's header no longer continues it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let mut ls = lines(dir, &files[1]);
    ls.pop();
    write_lines(dir, &files[1], &ls);
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (files[2].as_str(), 1));
    assert!(
        matches!(e.kind, ChainErrorKind::ContinuationHash { .. }),
        "{e}"
    );

    // The very last line: only the checkpoint remembers it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let last = files.last().unwrap();
    let mut ls = lines(dir, last);
    let n = ls.len();
    ls.pop();
    write_lines(dir, last, &ls);
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (last.as_str(), n));
    assert!(
        matches!(e.kind, ChainErrorKind::CheckpointHashMissing { .. }),
        "{e}"
    );

    // A continuation header.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let mut ls = lines(dir, &files[3]);
    ls.remove(0);
    write_lines(dir, &files[3], &ls);
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (files[3].as_str(), 1));
    assert!(
        matches!(e.kind, ChainErrorKind::MissingContinuationHeader { .. }),
        "{e}"
    );
}

#[test]
fn reordered_lines_are_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let f = &files[1];
    let mut ls = lines(dir, f);
    ls.swap(3, 4);
    write_lines(dir, f, &ls);
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (f.as_str(), 4));
    assert!(
        matches!(e.kind, ChainErrorKind::PrevHashMismatch { .. }),
        "{e}"
    );

    // Moving the header down is a misplaced header.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let f = &files[1];
    let mut ls = lines(dir, f);
    ls.swap(0, 1);
    write_lines(dir, f, &ls);
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (f.as_str(), 1));
    assert!(
        matches!(e.kind, ChainErrorKind::MissingContinuationHeader { .. }),
        "{e}"
    );

    // Swapping two whole files (renaming) breaks the headers.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    std::fs::rename(dir.join(&files[1]), dir.join("tmp")).unwrap();
    std::fs::rename(dir.join(&files[2]), dir.join(&files[1])).unwrap();
    std::fs::rename(dir.join("tmp"), dir.join(&files[2])).unwrap();
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (files[1].as_str(), 1));
    assert!(
        matches!(e.kind, ChainErrorKind::ContinuationPrevFile { .. }),
        "{e}"
    );
}

#[test]
fn truncated_last_line_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let last = files.last().unwrap();
    let n = lines(dir, last).len();
    let path = dir.join(last);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 25).unwrap();
    drop(f);
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (last.as_str(), n));
    assert_eq!(e.kind, ChainErrorKind::UnterminatedLine);

    // The writer refuses to resume onto a torn line rather than extend it.
    let clock = TestClock::at("2026-02-13T05:00:00Z");
    let err = AuditLog::open_with(dir, options(&clock, 16 * 1024, false))
        .err()
        .expect("open refuses a torn tail");
    assert!(err.to_string().contains("unterminated"), "{err}");
}

#[test]
fn deleted_rotated_file_is_detected() {
    // A file in the middle.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    std::fs::remove_file(dir.join(&files[2])).unwrap();
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (files[3].as_str(), 1));
    match &e.kind {
        ChainErrorKind::ContinuationPrevFile {
            expected,
            found,
            found_exists,
        } => {
            assert_eq!(expected, &files[1]);
            assert_eq!(found, &files[2]);
            assert!(!found_exists);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("(missing)"), "{e}");

    // The newest file.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    let last = files.last().unwrap();
    std::fs::remove_file(dir.join(last)).unwrap();
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (last.as_str(), 0));
    assert_eq!(e.kind, ChainErrorKind::CheckpointFileMissing);

    // The first file.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = build_chain(dir);
    std::fs::remove_file(dir.join(&files[0])).unwrap();
    let e = broken(dir);
    assert_eq!((e.file.as_str(), e.line), (files[1].as_str(), 1));
    assert!(
        matches!(e.kind, ChainErrorKind::ContinuationHash { .. }),
        "{e}"
    );
}

#[test]
fn rewritten_anchored_event_is_detected() {
    // Re-chaining everything from one file on hides the edit from the chain, but the anchor
    // remembers the 300th event's hash.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    build_chain(dir);
    let anchor_path = dir.join(audit::ANCHOR_FILE);
    let mut anchor: Value =
        serde_json::from_str(&std::fs::read_to_string(&anchor_path).unwrap()).unwrap();
    anchor["hash"] = json!("sha256:0000");
    std::fs::write(&anchor_path, anchor.to_string()).unwrap();
    let e = broken(dir);
    assert!(
        matches!(e.kind, ChainErrorKind::AnchorHashMismatch { .. }),
        "{e}"
    );
    assert!(e.line > 0);
    anchor["event_id"] = json!("01JNOTTHERE000000000000000");
    std::fs::write(&anchor_path, anchor.to_string()).unwrap();
    assert!(matches!(
        broken(dir).kind,
        ChainErrorKind::AnchorEventMissing { .. }
    ));
}

#[test]
fn secrets_never_reach_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let clock = TestClock::at("2026-02-12T10:00:00Z");
    let log = AuditLog::open_with(dir, options(&clock, 1 << 20, true)).unwrap();
    let aws = "AKIAIOSFODNN7EXAMPLE";
    let ghp = "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij";
    let pw = "hunter2-S3cret";

    let mut e = mk(0);
    e.request.insert(
        "command".into(),
        format!("AWS_ACCESS_KEY_ID={aws} aws s3 ls && mysql -u root --password={pw}").into(),
    );
    e.request.insert(
        "env".into(),
        json!({"GITHUB_TOKEN": ghp, "NOTE": format!("token {ghp}"), "list": [format!("x {ghp}")]}),
    );
    e.request.insert("password".into(), pw.into());
    e.request.insert(
        "argv".into(),
        json!(["psql", "--password", pw, format!("password={pw}")]),
    );
    e.approval_owner
        .insert("api_key".into(), "owner-key-value".into());
    e.decision.message = format!("saw password={pw} and {aws}");
    e.decision.suggestions = vec![format!("rotate {ghp}")];
    let stored = log.append(e).unwrap();
    let mut e = mk(1);
    e.request.insert(
        "command".into(),
        format!("curl -H 'Authorization: Bearer {ghp}' https://x").into(),
    );
    log.append(e).unwrap();
    let mut e = mk(2);
    e.request.insert(
        "command".into(),
        format!("PASSWORD={pw} ./deploy.sh").into(),
    );
    log.append(e).unwrap();

    assert_eq!(stored.request["password"], "[REDACTED]");
    assert_eq!(stored.approval_owner["api_key"], "[REDACTED]");
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        all.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    for secret in [aws, ghp, pw, "owner-key-value"] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
    assert!(all.contains("[REDACTED]"));
    assert!(all.contains("aws s3 ls"), "the rest of the command is kept");
    audit::verify(dir, None).unwrap();
}

#[test]
fn oversized_records_are_compacted_and_still_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let clock = TestClock::at("2026-02-12T10:00:00Z");
    let log = AuditLog::open_with(dir, options(&clock, 64 << 20, false)).unwrap();
    let mut e = mk(0);
    e.request
        .insert("content".into(), "x".repeat(3 * 1024 * 1024).into());
    let stored = log.append(e).unwrap();
    assert!(stored.request.contains_key("_rampart_compacted"));
    let c = &stored.compacted_fields["request"];
    assert_eq!(c.disposition, "replaced");
    assert!(c.original_json_bytes > 3 * 1024 * 1024);
    let mut e = mk(1);
    e.decision.message = "m".repeat(2 * 1024 * 1024 + 10);
    e.decision.suggestions = vec!["s".into()];
    let stored = log.append(e).unwrap();
    assert!(stored.decision.message.ends_with("... [truncated]"));
    assert!(stored.decision.suggestions.is_empty());
    assert_eq!(
        stored.compacted_fields["decision.message"].disposition,
        "truncated"
    );
    let max = lines(dir, &audit::chain_files(dir).unwrap()[0])
        .iter()
        .map(String::len)
        .max()
        .unwrap();
    assert!(max <= audit::MAX_RECORD_BYTES);
    log.append(mk(2)).unwrap();
    assert_eq!(audit::verify(dir, None).unwrap().events, 3);
}

#[test]
fn concurrent_writers_share_one_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let opts = AuditOptions {
        rotate_bytes: 8 * 1024,
        sync: AuditSync::Never,
        ..AuditOptions::default()
    };
    // Two independent writers (as two processes would be), four threads each.
    let a = Arc::new(AuditLog::open_with(&dir, opts.clone()).unwrap());
    let b = Arc::new(AuditLog::open_with(&dir, opts).unwrap());
    let mut handles = Vec::new();
    for t in 0..8 {
        let log = if t % 2 == 0 { a.clone() } else { b.clone() };
        handles.push(std::thread::spawn(move || {
            for i in 0..40 {
                log.append(mk(t * 1000 + i)).unwrap();
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let report = audit::verify(&dir, None).unwrap();
    assert_eq!(report.events, 320);
    assert!(report.files > 2);
    assert_eq!(a.append(mk(1)).unwrap().prev_hash, report.last_hash);
    b.append(mk(2)).unwrap();
    assert_eq!(b.event_count(), 322);
    audit::verify(&dir, None).unwrap();
}

#[test]
fn query_helper_follows_the_events_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    build_chain(dir); // 22:01 … 03:00: 120 events on the 12th, 180 on the 13th
    let day1 = NaiveDate::from_ymd_opt(2026, 2, 12).unwrap();
    let q = |pairs: &[(&str, &str)]| {
        let mut q = AuditQuery::default();
        for (k, v) in pairs {
            let v = Some(v.to_string());
            match *k {
                "date" => q.date = v,
                "limit" => q.limit = v,
                "offset" => q.offset = v,
                "tool" => q.tool = v,
                "action" => q.action = v,
                "agent" => q.agent = v,
                "session" => q.session = v,
                _ => unreachable!(),
            }
        }
        q
    };

    let page = audit::query_events(dir, &q(&[]), day1).unwrap();
    assert_eq!(page.date, "2026-02-12");
    assert_eq!(page.total_in_file, 119);
    assert_eq!(page.events.len(), 50);
    assert_eq!(page.next_offset, 50);
    // newest first, no header lines
    assert!(
        page.events
            .windows(2)
            .all(|w| w[0].timestamp > w[1].timestamp)
    );
    assert!(page.events.iter().all(|e| !e.id.is_empty()));

    let page =
        audit::query_events(dir, &q(&[("date", "2026-02-13"), ("limit", "1000")]), day1).unwrap();
    assert_eq!(page.total_in_file, 181);
    assert_eq!(page.events.len(), 181);
    assert_eq!(page.next_offset, 0);

    let page = audit::query_events(
        dir,
        &q(&[
            ("tool", "exec"),
            ("action", "allow"),
            ("limit", "x"),
            ("offset", "-3"),
        ]),
        day1,
    )
    .unwrap();
    assert!(!page.events.is_empty());
    assert!(
        page.events
            .iter()
            .all(|e| e.tool == "exec" && e.decision.action == "allow")
    );

    let all =
        audit::query_events(dir, &q(&[("agent", "agent-1"), ("limit", "500")]), day1).unwrap();
    let second = audit::query_events(
        dir,
        &q(&[("agent", "agent-1"), ("limit", "10"), ("offset", "10")]),
        day1,
    )
    .unwrap();
    assert_eq!(second.events, all.events[10..20].to_vec());
    assert_eq!(second.next_offset, 20);
    let sess = audit::query_events(dir, &q(&[("session", "session-3")]), day1).unwrap();
    assert!(sess.events.iter().all(|e| e.session == "session-3"));

    let none = audit::query_events(dir, &q(&[("date", "2025-01-01")]), day1).unwrap();
    assert!(none.events.is_empty() && none.total_in_file == 0 && none.next_offset == 0);
    let e = audit::query_events(dir, &q(&[("date", "12/02/2026")]), day1).unwrap_err();
    assert!(matches!(e, QueryError::InvalidDate));
    assert_eq!(e.to_string(), "invalid date format, expected YYYY-MM-DD");
    assert_eq!(e.status(), 400);
    let e = audit::query_events(&dir.join("nope"), &q(&[]), day1).unwrap_err();
    assert_eq!(e.status(), 503);

    // A legacy hook file of the same day counts and is interleaved by time.
    let legacy = json!({"id": "01JLEGACY00000000000000000", "timestamp": "2026-02-12T23:59:59.5Z",
        "agent": "hook", "session": "", "tool": "exec", "request": {"command": "ls"},
        "decision": {"action": "allow", "evaluation_time_us": 1}, "prev_hash": "", "hash": "x"});
    std::fs::write(
        dir.join("audit-hook-2026-02-12.jsonl"),
        format!("{legacy}\n"),
    )
    .unwrap();
    let page = audit::query_events(dir, &q(&[("limit", "1")]), day1).unwrap();
    assert_eq!(page.total_in_file, 120);
    assert_eq!(page.events[0].agent, "hook");
    // legacy files are not part of the chain
    audit::verify(dir, None).unwrap();
}

// --- the CLI (needs `rampart audit` wired into the binary) -----------------------------------

fn rampart(args: &[&str], home: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .env("RAMPART_HOME", home)
        .env("NO_COLOR", "1")
        .output()
        .expect("rampart runs")
}

#[test]
fn cli_verify_and_tail() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("audit");
    let files = build_chain(&dir);

    // default directory comes from $RAMPART_HOME
    let out = rampart(&["audit", "verify"], home.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!(
            "✓ Chain verified: 300 events across {} files, no tampering detected",
            files.len()
        )
    );
    let out = rampart(
        &[
            "audit",
            "verify",
            "--audit-dir",
            dir.to_str().unwrap(),
            "--since",
            "2026-02-13",
        ],
        Path::new("/nonexistent"),
    );
    assert_eq!(out.status.code(), Some(0));
    let out = rampart(&["audit", "verify", "--since", "13/02/2026"], home.path());
    assert_eq!(out.status.code(), Some(2));

    let out = rampart(&["audit", "tail", "-n", "3"], home.path());
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let tail: Vec<&str> = text.lines().collect();
    assert_eq!(tail.len(), 3, "{text}");
    // events 297 (read, 02:58), 298 (fetch), 299 (mcp tool, 03:00)
    assert!(tail[0].starts_with("2026-02-13 02:58:00  "), "{text}");
    assert!(
        tail[0].contains(" read ") && tail[0].contains("/home/user/project/src/file-297.rs"),
        "{text}"
    );
    assert!(
        tail[1].contains("https://api.example.com/v1/items/298"),
        "{text}"
    );
    assert!(
        tail[2].starts_with("2026-02-13 03:00:00  ")
            && tail[2].contains("mcp__github__create_issue"),
        "{text}"
    );

    // broken chain: exit 1 naming file:line
    let f = &files[2];
    let mut ls = lines(&dir, f);
    ls.remove(5);
    write_lines(&dir, f, &ls);
    let out = rampart(&["audit", "verify"], home.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("audit: CHAIN BROKEN: {f}:6: prev_hash mismatch")),
        "{stderr}"
    );

    // nothing to verify
    let empty = tempfile::tempdir().unwrap();
    let out = rampart(&["audit", "verify"], empty.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cli_tail_follow_prints_new_events() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("audit");
    let log = AuditLog::open_with(
        &dir,
        AuditOptions {
            rotate_bytes: 2048,
            sync: AuditSync::Never,
            ..AuditOptions::default()
        },
    )
    .unwrap();
    log.append(mk(0)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["audit", "tail", "-f", "-n", "1"])
        .env("RAMPART_HOME", home.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    for i in 1..=12 {
        log.append(mk(i * 4)).unwrap(); // exec events, rotating every few lines
    }
    std::thread::sleep(std::time::Duration::from_millis(1000));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(audit::chain_files(&dir).unwrap().len() > 1);
    for i in 1..=12 {
        assert!(
            text.contains(&format!("echo step-{} ", i * 4)),
            "missing {i}:\n{text}"
        );
    }
    assert_eq!(text.lines().count(), 13, "{text}");
}

#[test]
fn verify_while_writing_sees_a_consistent_snapshot() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<AuditLog>();

    // A shared directory (the lock per append) and an exclusive writer (the lock held
    // between sync passes, here every 5 ms).
    for exclusive in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let log = AuditLog::open_with(
            &dir,
            AuditOptions {
                rotate_bytes: 4096,
                sync: if exclusive {
                    AuditSync::Interval(std::time::Duration::from_millis(5))
                } else {
                    AuditSync::Never
                },
                exclusive,
                ..AuditOptions::default()
            },
        )
        .unwrap();
        log.append(mk(0)).unwrap();
        let writer = std::thread::spawn(move || {
            for i in 1..400 {
                log.append(mk(i)).unwrap();
            }
        });
        let mut checks = 0;
        while !writer.is_finished() {
            let r = audit::verify(&dir, None).expect("a verify during writes sees a whole chain");
            assert!(r.events >= 1);
            checks += 1;
        }
        writer.join().unwrap();
        assert!(checks > 0, "exclusive: {exclusive}");
        assert_eq!(audit::verify(&dir, None).unwrap().events, 400);
    }
}

#[test]
fn an_interrupted_write_is_cut_off_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = rampart_daemon::audit::AuditLog::open(dir.path()).unwrap();
        for i in 0..5 {
            let mut e = rampart_daemon::audit::Event {
                tool: "exec".into(),
                ..Default::default()
            };
            e.request
                .insert("command".into(), json!(format!("echo {i}")));
            e.decision.action = "allow".into();
            log.append(e).unwrap();
        }
    }
    let files = rampart_daemon::audit::chain_files(dir.path()).unwrap();
    let newest = dir.path().join(files.last().unwrap());
    let before = std::fs::metadata(&newest).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap()
        .write_all(b"{\"id\":\"01TORN")
        .unwrap();
    assert!(rampart_daemon::audit::verify(dir.path(), None).is_err());
    let repaired = rampart_daemon::audit::repair_torn_tail(dir.path()).unwrap();
    assert_eq!(repaired.map(|(_, n)| n), Some(13));
    assert_eq!(std::fs::metadata(&newest).unwrap().len(), before);
    rampart_daemon::audit::verify(dir.path(), None).expect("intact after the repair");
    assert_eq!(
        rampart_daemon::audit::repair_torn_tail(dir.path()).unwrap(),
        None
    );
    // Cutting an answered event short is not a torn write: the checkpoint still names it.
    let text = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &text[..text.len() - 20]).unwrap();
    rampart_daemon::audit::repair_torn_tail(dir.path()).unwrap();
    assert!(rampart_daemon::audit::verify(dir.path(), None).is_err());
}
