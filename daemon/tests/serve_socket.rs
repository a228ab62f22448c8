//! End-to-end tests of `rampart serve`'s preload socket (architecture §5): a real daemon,
//! a client speaking rampart-proto, approvals released with the `rampart approve|deny`
//! CLI, refusal of bad frames and foreign peers, the audit trail across both front doors,
//! library monitor mode, `--strict`, reply size bounds, audit failures, `--audit-sync
//! always`, and graceful shutdown.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use rampart_proto::{EPERM, EntryPoint, Flags, HEADER_LEN, MAGIC, Mode, Reply};
use serde_json::{Value, json};
use support::{
    SockConn, Workspace, audit_events, chain_files, copy_dir, exec_frame, poll, python_dir,
    python_ok, scrub_env, shell_frame, socket_decision,
};

fn deny_message(r: &Reply) -> &str {
    match r {
        Reply::Deny { errno, message } => {
            assert_eq!(*errno, EPERM, "a policy deny carries EPERM");
            message
        }
        other => panic!("expected a deny, got {other:?}"),
    }
}

#[test]
fn socket_allows_and_denies_per_policy() {
    let ws = Workspace::new();
    let d = ws.start(&[]);

    assert_eq!(
        socket_decision(
            &d.socket,
            &exec_frame("/usr/bin/ls", &["ls", "-la"], "sock")
        ),
        Reply::Allow
    );
    assert_eq!(
        socket_decision(
            &d.socket,
            &exec_frame("/usr/bin/printenv", &["printenv", "HOME"], "sock")
        ),
        Reply::Allow,
        "watch allows"
    );
    let r = socket_decision(
        &d.socket,
        &exec_frame("/usr/bin/rm", &["rm", "-rf", "/srv/victim"], "sock"),
    );
    let msg = deny_message(&r);
    assert!(
        msg.contains("protect-victim") && msg.contains("the victim directory is protected"),
        "the message names the policy: {msg:?}"
    );
    // system(3): the shell string is the command.
    let r = socket_decision(&d.socket, &shell_frame("touch /tmp/denied.marker", "sock"));
    assert!(deny_message(&r).contains("block-denied-markers"), "{r:?}");

    // Audited before the reply, with the preload fields.
    let events = audit_events(&ws.audit_dir());
    assert_eq!(events.len(), 4, "{events:#?}");
    let rm = &events[2];
    assert_eq!(rm["tool"], "exec");
    assert_eq!(rm["agent"], "sock");
    assert_eq!(rm["decision"]["action"], "deny");
    assert_eq!(rm["decision"]["matched_policies"][0], "protect-victim");
    assert_eq!(rm["request"]["command"], "rm -rf /srv/victim");
    assert_eq!(rm["request"]["argv"], json!(["rm", "-rf", "/srv/victim"]));
    assert_eq!(rm["request"]["entry"], "execve");
    assert_eq!(rm["request"]["pid"], std::process::id());
    assert_eq!(events[3]["request"]["entry"], "system");
    assert_eq!(events[3]["request"]["command"], "touch /tmp/denied.marker");
}

#[test]
fn socket_approvals_are_released_by_the_cli() {
    let ws = Workspace::new();
    let d = ws.start(&[]);
    let api = d.api();
    let url = d.url();

    // Approve.
    let mut c = SockConn::connect(&d.socket);
    c.send(&exec_frame(
        "/usr/local/bin/deploy",
        &["deploy", "prod"],
        "sock",
    ));
    let id = match c.reply() {
        Some(Reply::Pending { approval_id }) => approval_id,
        other => panic!("expected Pending, got {other:?}"),
    };
    let listed = api.pending();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["command"], "deploy prod");
    let out = ws.cli(&["approvals", "--url", &url]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&id),
        "{out:?}"
    );
    let out = ws.cli(&["approve", &id, "--url", &url]);
    assert!(
        out.status.success(),
        "rampart approve: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(c.reply(), Some(Reply::Allow), "released with Allow");
    assert!(c.read_until_closed(support::IO_TIMEOUT).is_empty());
    let v = api.approval(&id).json();
    assert_eq!(v["status"], "approved");
    assert_eq!(v["resolved_by"], "cli:e2e");
    // Approving twice fails (410) with a non-zero exit.
    let out = ws.cli(&["approve", &id, "--url", &url]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    // Deny.
    let mut c = SockConn::connect(&d.socket);
    c.send(&shell_frame("deploy staging", "sock"));
    let id = match c.reply() {
        Some(Reply::Pending { approval_id }) => approval_id,
        other => panic!("expected Pending, got {other:?}"),
    };
    let out = ws.cli(&["deny", &id, "--url", &url, "--reason", "not today"]);
    assert!(
        out.status.success(),
        "rampart deny: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = c.reply().expect("a final reply");
    assert_eq!(deny_message(&r), "approval denied");
    assert_eq!(api.approval(&id).json()["status"], "denied");
    let events = audit_events(&ws.audit_dir());
    let resolution = events
        .iter()
        .find(|e| e["id"] == id.as_str())
        .expect("the resolution event");
    assert_eq!(resolution["decision"]["action"], "denied");
    assert_eq!(resolution["request"]["reason"], "not today");
}

#[test]
fn approve_always_allows_the_exact_command_on_top_of_the_standard_profile() {
    let ws = Workspace::new();
    // No --policy: the standard profile runs while $RAMPART_HOME/policies holds no policy
    // files, and must keep running once "always allow" has written one there.
    let d = support::Daemon::start(&ws.home(), &["--listen", "127.0.0.1:0"]);
    let api = d.api();
    let url = d.url();
    let prune = ["docker", "system", "prune", "-a"];

    let mut c = SockConn::connect(&d.socket);
    c.send(&exec_frame("/usr/bin/docker", &prune, "sock"));
    let id = match c.reply() {
        Some(Reply::Pending { approval_id }) => approval_id,
        other => panic!("expected Pending, got {other:?}"),
    };
    let out = ws.cli(&["approve", &id, "--always", "--url", &url]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("always allowed from now on"),
        "{out:?}"
    );
    assert_eq!(c.reply(), Some(Reply::Allow), "released with Allow");

    // Asked no more; a different command still is, and the profile's denies still deny.
    let frame = exec_frame("/usr/bin/docker", &prune, "sock");
    assert_eq!(socket_decision(&d.socket, &frame), Reply::Allow);
    let other = exec_frame(
        "/usr/bin/docker",
        &["docker", "system", "prune", "-af"],
        "sock",
    );
    let mut c = SockConn::connect(&d.socket);
    c.send(&other);
    assert!(matches!(c.reply(), Some(Reply::Pending { .. })));
    drop(c);
    let rm = exec_frame("/usr/bin/rm", &["rm", "-rf", "/"], "sock");
    assert!(matches!(
        socket_decision(&d.socket, &rm),
        Reply::Deny { .. }
    ));
    let status = api.get("/v1/status").json();
    let source = status["config_path"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        source.starts_with("embedded:standard + ") && source.ends_with("auto-allowed.yaml"),
        "{status}"
    );
}

#[test]
fn socket_approvals_expire_and_deny() {
    let ws = Workspace::new();
    let d = ws.start(&["--approval-timeout", "2s"]);
    let start = std::time::Instant::now();
    let mut c = SockConn::connect(&d.socket);
    c.send(&exec_frame("/usr/bin/deploy", &["deploy", "never"], "sock"));
    let Some(Reply::Pending { approval_id }) = c.reply() else {
        panic!("expected Pending")
    };
    let r = c.reply().expect("a final reply at expiry");
    assert_eq!(deny_message(&r), "approval timed out — command blocked");
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    let v = d.api().approval(&approval_id).json();
    assert_eq!(v["status"], "expired");
    assert!(
        audit_events(&ws.audit_dir())
            .iter()
            .any(|e| e["request"]["action"] == "approval_expired"
                && e["request"]["command"] == "deploy never")
    );

    // A client that goes away while pending leaves the approval to a human.
    let mut c = SockConn::connect(&d.socket);
    c.send(&exec_frame(
        "/usr/bin/deploy",
        &["deploy", "abandoned"],
        "sock",
    ));
    let Some(Reply::Pending { approval_id }) = c.reply() else {
        panic!("expected Pending")
    };
    drop(c);
    assert_eq!(d.api().approval(&approval_id).json()["status"], "pending");
}

#[test]
fn bad_socket_input_closes_that_connection_only() {
    let ws = Workspace::new();
    // A socket outside the private home, so another uid can be let in (below).
    let sock_dir = ws.path().join("sock");
    let sock_path = sock_dir.join("r.sock");
    let d = ws.start(&["--socket", sock_path.to_str().unwrap()]);
    assert_eq!(d.socket, sock_path);

    // A client that never sends anything is dropped after the daemon's read timeout.
    let silent = {
        let p = d.socket.clone();
        std::thread::spawn(move || {
            let mut c = SockConn::connect(&p);
            c.send(b"RM");
            c.read_until_closed(Duration::from_secs(60))
        })
    };

    let allow = exec_frame("/usr/bin/ls", &["ls"], "sock");
    let deny = exec_frame("/usr/bin/rm", &["rm", "-rf", "/srv/victim"], "sock");
    assert_eq!(socket_decision(&d.socket, &allow), Reply::Allow);
    let before = audit_events(&ws.audit_dir()).len();

    let header = |magic: [u8; 4], version: u16, len: u32| {
        let mut h = magic.to_vec();
        h.extend_from_slice(&version.to_le_bytes());
        h.extend_from_slice(&len.to_le_bytes());
        h
    };
    let with = |mut f: Vec<u8>, at: usize, bytes: &[u8]| {
        f[at..at + bytes.len()].copy_from_slice(bytes);
        f
    };
    // (what, bytes, then close our write side?)
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "garbage bytes",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            false,
        ),
        ("a few garbage bytes then EOF", b"hey".to_vec(), true),
        ("truncated header", deny[..6].to_vec(), true),
        ("truncated frame", deny[..deny.len() - 5].to_vec(), true),
        ("wrong magic", with(deny.clone(), 0, b"XXXX"), false),
        (
            "wrong version",
            with(deny.clone(), 4, &2u16.to_le_bytes()),
            false,
        ),
        (
            "declared length over 4 MiB",
            header(MAGIC, 1, (4 << 20) + 1),
            false,
        ),
        (
            "declared length u32::MAX",
            header(MAGIC, 1, u32::MAX),
            false,
        ),
        (
            "undecodable payload",
            [header(MAGIC, 1, 16), vec![0xff; 16]].concat(),
            false,
        ),
        (
            "unknown flag bits",
            with(deny.clone(), HEADER_LEN + 4, &0x8000_0000u32.to_le_bytes()),
            false,
        ),
        (
            "payload shorter than declared, then EOF",
            {
                let mut f = deny.clone();
                let len = (deny.len() - HEADER_LEN + 100) as u32;
                f[6..10].copy_from_slice(&len.to_le_bytes());
                f
            },
            true,
        ),
    ];
    for (what, bytes, close) in &cases {
        let mut c = SockConn::connect(&d.socket);
        c.send(bytes);
        if *close {
            c.shutdown_write();
        }
        let got = c.read_until_closed(Duration::from_secs(30));
        assert!(got.is_empty(), "{what}: the daemon replied {got:?}");
        // The daemon is still serving.
        assert_eq!(
            socket_decision(&d.socket, &allow),
            Reply::Allow,
            "after {what}"
        );
    }

    // A peer with another uid is refused without a reply.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !python_ok("import os, socket") {
        eprintln!("SKIPPED the foreign-uid peer case: needs root and python3");
    } else {
        let open = |p: &std::path::Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        open(ws.path(), 0o755);
        open(&sock_dir, 0o755);
        open(&sock_path, 0o666);
        let hex: String = deny.iter().map(|b| format!("{b:02x}")).collect();
        let mut cmd = Command::new("python3");
        scrub_env(&mut cmd)
            .arg(python_dir().join("foreign_peer.py"))
            .arg(&sock_path)
            .arg(hex)
            .arg("65534");
        let out = support::output_with_timeout(cmd, Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "foreign_peer.py: {out:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_str(stdout.trim()).expect("JSON report");
        assert_eq!(report["uid"], 65534, "{report}");
        assert_eq!(
            report["connected"], true,
            "the socket was reachable: {report}"
        );
        assert_eq!(report["error"], Value::Null, "{report}");
        assert_eq!(
            report["reply_bytes"], 0,
            "no reply to a foreign uid: {report}"
        );
        poll("the daemon to log the refused uid", || {
            d.log()
                .contains("socket peer with a uid that is not allowed")
                .then_some(())
        });
    }

    let silent = silent.join().unwrap();
    assert!(silent.is_empty(), "the silent client got {silent:?}");

    // Nothing refused reached the audit trail; a good request still does.
    assert_eq!(socket_decision(&d.socket, &allow), Reply::Allow);
    let after = audit_events(&ws.audit_dir());
    let new: Vec<&Value> = after[before..].iter().collect();
    assert!(
        new.iter().all(|e| e["request"]["command"] == "ls"),
        "only the good requests were audited: {new:#?}"
    );
    assert_eq!(new.len(), cases.len() + 1, "{new:#?}");
}

#[test]
fn audit_trail_of_a_mixed_workload_verifies_and_tampering_is_caught() {
    let ws = Workspace::new();
    let mut d = ws.start(&[]);
    let api = d.api();
    let url = d.url();

    // HTTP: allow, deny, watch preview, ask → approve → identical re-send.
    assert_eq!(
        api.tool(
            "exec",
            &json!({"agent": "http", "session": "s", "params": {"command": "git status"}})
        )
        .status,
        200
    );
    assert_eq!(
        api.tool("exec", &json!({"agent": "http", "session": "s", "params": {"command": "touch /tmp/denied.marker"}})).status,
        403
    );
    assert_eq!(
        api.preflight(
            "exec",
            &json!({"agent": "http", "session": "s", "params": {"command": "printenv PATH"}})
        )
        .status,
        200
    );
    let call = json!({"agent": "http", "session": "s", "run_id": "r", "tool_call_id": "t",
                      "params": {"command": "deploy http", "token": "hunter2-secret"}});
    let r = api.tool("exec", &call);
    assert_eq!(r.status, 202);
    let id = r.json()["approval_id"].as_str().unwrap().to_string();
    assert_eq!(api.resolve(&id, true).status, 200);
    assert_eq!(api.tool("exec", &call).status, 200);

    // Socket: allow, deny, ask → approved with the CLI.
    assert_eq!(
        socket_decision(&d.socket, &exec_frame("/usr/bin/ls", &["ls"], "sock")),
        Reply::Allow
    );
    assert!(matches!(
        socket_decision(
            &d.socket,
            &exec_frame("/usr/bin/rm", &["rm", "-rf", "/srv/victim"], "sock")
        ),
        Reply::Deny { .. }
    ));
    let mut c = SockConn::connect(&d.socket);
    c.send(&exec_frame("/usr/bin/deploy", &["deploy", "sock"], "sock"));
    let Some(Reply::Pending { approval_id }) = c.reply() else {
        panic!("expected Pending")
    };
    assert!(
        ws.cli(&["approve", &approval_id, "--url", &url])
            .status
            .success()
    );
    assert_eq!(c.reply(), Some(Reply::Allow));
    d.stop();

    let audit = ws.audit_dir();
    let events = audit_events(&audit);
    // HTTP: allow, deny, preview, ask, resolution, re-send (ask + allow) = 7;
    // socket: allow, deny, ask, resolution = 4.
    assert_eq!(events.len(), 11, "{events:#?}");
    // Secrets are redacted before they are written.
    let raw: String = chain_files(&audit)
        .iter()
        .map(|f| std::fs::read_to_string(audit.join(f)).unwrap())
        .collect();
    assert!(
        !raw.contains("hunter2-secret"),
        "a token param reached the audit trail"
    );

    let verify =
        |dir: &std::path::Path| ws.cli(&["audit", "verify", "--audit-dir", dir.to_str().unwrap()]);
    let out = verify(&audit);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("Chain verified: {} events", events.len())),
        "{stdout}"
    );

    // Tamper with copies: the file with most lines, around its middle.
    let file = chain_files(&audit)
        .into_iter()
        .max_by_key(|f| {
            std::fs::read_to_string(audit.join(f))
                .unwrap()
                .lines()
                .count()
        })
        .unwrap();
    let text = std::fs::read_to_string(audit.join(&file)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let k = lines.len() / 2; // 1-based line number of the tampered line
    assert!(k >= 2 && k + 1 < lines.len(), "{} lines", lines.len());
    let rewrite = |name: &str, f: &dyn Fn(&mut Vec<String>)| {
        let dir = ws.path().join(name);
        copy_dir(&audit, &dir);
        let mut ls: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        f(&mut ls);
        std::fs::write(dir.join(&file), ls.join("\n") + "\n").unwrap();
        dir
    };
    let edited = rewrite("edited", &|ls| {
        let before = ls[k - 1].clone();
        ls[k - 1] = before.replacen("\"timestamp\":\"2", "\"timestamp\":\"1", 1);
        assert_ne!(ls[k - 1], before);
    });
    let deleted = rewrite("deleted", &|ls| {
        ls.remove(k - 1);
    });
    let swapped = rewrite("swapped", &|ls| ls.swap(k - 1, k));
    let untouched = rewrite("untouched", &|_| {});
    assert_eq!(
        verify(&untouched).status.code(),
        Some(0),
        "the copy itself verifies"
    );
    for (what, dir) in [("edit", edited), ("delete", deleted), ("swap", swapped)] {
        let out = verify(&dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains("CHAIN BROKEN"), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("{file}:{k}:")),
            "{what} at {file}:{k} is named: {stderr}"
        );
    }
}

#[test]
fn sigterm_while_idle_exits_cleanly_and_removes_the_socket() {
    let ws = Workspace::new();
    let mut d = ws.start(&[]);
    let api = d.api();
    assert!(d.socket.exists());
    // Warm both front doors, then go idle.
    assert_eq!(
        socket_decision(&d.socket, &exec_frame("/usr/bin/ls", &["ls"], "sock")),
        Reply::Allow
    );
    assert_eq!(api.get("/v1/status").status, 200);

    let (status, took) = d.stop_with(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{status}: {}", d.log());
    assert!(
        took < Duration::from_secs(10),
        "idle shutdown should be prompt, took {took:?}"
    );
    assert!(!d.socket.exists(), "the socket file is removed");
    assert!(
        std::net::TcpStream::connect(api.addr).is_err(),
        "the HTTP port is closed"
    );
    // The audit trail is intact after shutdown.
    let out = ws.verify_audit();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// A request as the library would send it, with its flags and mode.
fn flagged_frame(path: &str, argv: &[&str], flags: Flags, mode: Mode) -> Vec<u8> {
    support::frame_with(EntryPoint::Execve, path, argv, "sock", flags, mode)
}

/// The audit event of the last decision on `command`.
fn last_event_of(ws: &Workspace, command: &str) -> Value {
    audit_events(&ws.audit_dir())
        .into_iter()
        .rev()
        .find(|e| e["request"]["command"] == command)
        .unwrap_or_else(|| panic!("no audit event for {command:?}"))
}

#[test]
fn library_monitor_mode_is_audited_as_usual_and_allowed() {
    let ws = Workspace::new();
    let d = ws.start(&[]);
    let api = d.api();
    let monitor = |path: &str, argv: &[&str]| {
        socket_decision(
            &d.socket,
            &flagged_frame(path, argv, Flags::empty(), Mode::Monitor),
        )
    };

    // A deny, an ask and a webhook (its URL refuses connections: enforced, it fails closed).
    assert_eq!(
        monitor("/usr/bin/rm", &["rm", "-rf", "/srv/victim"]),
        Reply::Allow
    );
    assert_eq!(
        monitor("/usr/bin/deploy", &["deploy", "prod"]),
        Reply::Allow
    );
    assert_eq!(
        monitor("/usr/bin/notify-hook", &["notify-hook", "x"]),
        Reply::Allow
    );
    assert!(api.pending().is_empty(), "no approval is created");

    // The audit trail says what would have happened.
    let rm = last_event_of(&ws, "rm -rf /srv/victim");
    assert_eq!(rm["decision"]["action"], "deny");
    assert_eq!(rm["decision"]["matched_policies"][0], "protect-victim");
    assert_eq!(rm["request"]["library_mode"], "monitor");
    let deploy = last_event_of(&ws, "deploy prod");
    assert_eq!(deploy["decision"]["action"], "ask");
    assert_eq!(deploy["request"]["library_mode"], "monitor");
    let hook = last_event_of(&ws, "notify-hook x");
    assert_eq!(hook["decision"]["action"], "webhook");
    let all = audit_events(&ws.audit_dir());
    assert_eq!(
        all.len(),
        3,
        "one record each, no webhook outcome: {all:#?}"
    );

    // The same requests in enforce mode are enforced, and carry no library mode.
    let r = socket_decision(
        &d.socket,
        &flagged_frame(
            "/usr/bin/rm",
            &["rm", "-rf", "/srv/victim"],
            Flags::empty(),
            Mode::Enforce,
        ),
    );
    assert!(deny_message(&r).contains("protect-victim"), "{r:?}");
    let rm = last_event_of(&ws, "rm -rf /srv/victim");
    assert!(rm["request"].get("library_mode").is_none(), "{rm}");
    let r = socket_decision(
        &d.socket,
        &flagged_frame(
            "/usr/bin/notify-hook",
            &["notify-hook", "x"],
            Flags::empty(),
            Mode::Enforce,
        ),
    );
    assert!(deny_message(&r).contains("webhook"), "{r:?}");
}

#[test]
fn strict_denies_execs_the_library_cannot_follow() {
    let ws = Workspace::new();
    let d = ws.start(&["--strict", "--strict-allow", "/opt/tools/static-ok"]);
    let api = d.api();
    let ask = |path: &str, argv: &[&str], flags: Flags| {
        socket_decision(&d.socket, &flagged_frame(path, argv, flags, Mode::Enforce))
    };

    let r = ask("/usr/bin/ls", &["ls"], Flags::STATIC);
    assert_eq!(
        deny_message(&r),
        "strict: /usr/bin/ls is static; the preload library cannot follow it"
    );
    let r = ask(
        "/usr/local/bin/gotool",
        &["gotool", "run"],
        Flags::GO | Flags::SETUID | Flags::ENV_SCRUBBED,
    );
    assert_eq!(
        deny_message(&r),
        "strict: /usr/local/bin/gotool is go, setuid; the preload library cannot follow it"
    );
    for flag in [Flags::FOREIGN_CLASS, Flags::MEMFD] {
        let r = ask("/usr/bin/true", &["true"], flag);
        assert!(
            deny_message(&r).starts_with("strict: /usr/bin/true is "),
            "{r:?}"
        );
    }
    // Exempt by exact path; flags the library can follow through are fine.
    assert_eq!(
        ask("/opt/tools/static-ok", &["static-ok"], Flags::STATIC),
        Reply::Allow
    );
    assert!(matches!(
        ask("/opt/tools/static-ok2", &["static-ok2"], Flags::STATIC),
        Reply::Deny { .. }
    ));
    assert_eq!(
        ask(
            "/usr/bin/ls",
            &["ls"],
            Flags::ENV_SCRUBBED | Flags::SCRIPT | Flags::RELATIVE_UNRESOLVED
        ),
        Reply::Allow
    );
    // A policy deny keeps its own message; an ask is refused without asking anyone.
    let r = ask("/usr/bin/rm", &["rm", "-rf", "/srv/victim"], Flags::STATIC);
    assert!(deny_message(&r).contains("protect-victim"), "{r:?}");
    let r = ask("/usr/bin/deploy", &["deploy", "static"], Flags::STATIC);
    assert!(deny_message(&r).starts_with("strict: "), "{r:?}");
    assert!(api.pending().is_empty());

    // Audited like any deny, with the policy's own verdict kept.
    let ls = audit_events(&ws.audit_dir())
        .into_iter()
        .find(|e| e["request"]["command"] == "ls")
        .unwrap();
    assert_eq!(ls["decision"]["action"], "deny");
    assert_eq!(ls["decision"]["matched_policies"][0], "strict");
    assert_eq!(
        ls["decision"]["message"],
        "/usr/bin/ls is static; the preload library cannot follow it"
    );
    assert_eq!(ls["request"]["policy_action"], "allow");
    assert_eq!(ls["request"]["flags"], json!(["static"]));
    let deploy = last_event_of(&ws, "deploy static");
    assert_eq!(deploy["decision"]["action"], "deny");
    assert_eq!(deploy["request"]["policy_action"], "ask");

    // Without --strict the flags are only recorded.
    drop(d);
    let ws = Workspace::new();
    let d = ws.start(&[]);
    let r = socket_decision(
        &d.socket,
        &flagged_frame(
            "/usr/bin/ls",
            &["ls"],
            Flags::STATIC | Flags::GO,
            Mode::Enforce,
        ),
    );
    assert_eq!(r, Reply::Allow);
    let ls = last_event_of(&ws, "ls");
    assert_eq!(ls["decision"]["action"], "allow");
    assert_eq!(ls["request"]["flags"], json!(["static", "go"]));
}

#[test]
fn long_deny_messages_are_cut_to_fit_the_library_buffer() {
    let ws = Workspace::new();
    // Multi-byte characters, so the cut has to find a character boundary.
    let message = "é→".repeat(800); // 4000 bytes
    let policy = format!(
        "{}\n  - name: long-message\n    match: {{tool: exec}}\n    rules:\n      - action: deny\n        when: {{command_matches: [\"longmsg *\"]}}\n        message: \"{message}\"\n",
        support::POLICY.trim_end()
    );
    std::fs::write(ws.policy(), policy).unwrap();
    let d = ws.start(&[]);

    let mut c = SockConn::connect(&d.socket);
    c.send(&exec_frame("/usr/bin/longmsg", &["longmsg", "x"], "sock"));
    let mut raw = Vec::new();
    c.stream.read_to_end(&mut raw).unwrap();
    assert!(raw.len() <= 4096, "the reply frame is {} bytes", raw.len());
    let r = rampart_proto::decode_reply(&raw).expect("one whole reply frame");
    let text = deny_message(&r);
    assert!(text.len() <= 1024, "{} bytes", text.len());
    assert!(
        text.len() > 1000,
        "cut no shorter than needed: {} bytes",
        text.len()
    );
    let kept = text.strip_suffix('…').expect("ends with an ellipsis");
    assert!(format!("long-message: {message}").starts_with(kept));

    // The audit trail keeps the whole message; short messages are not touched.
    assert_eq!(
        last_event_of(&ws, "longmsg x")["decision"]["message"],
        message
    );
    let r = socket_decision(
        &d.socket,
        &exec_frame("/usr/bin/rm", &["rm", "-rf", "/srv/victim"], "sock"),
    );
    assert_eq!(
        deny_message(&r),
        "protect-victim: the victim directory is protected"
    );
}

#[test]
fn an_audit_failure_is_answered_with_a_deny() {
    let ws = Workspace::new();
    let d = ws.start(&[]);
    let allow = exec_frame("/usr/bin/ls", &["ls"], "sock");
    assert_eq!(socket_decision(&d.socket, &allow), Reply::Allow);
    // Something else writes a torn line into the chain: the daemon can no longer append
    // to it (it will not chain onto a line it cannot read).
    let audit = ws.audit_dir();
    let newest = audit.join(chain_files(&audit).last().unwrap());
    std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap()
        .write_all(b"{\"id\":\"torn")
        .unwrap();
    for _ in 0..2 {
        let r = socket_decision(&d.socket, &allow);
        assert_eq!(
            deny_message(&r),
            "audit storage is unavailable; refusing tool call"
        );
    }
    // A library in monitor mode is still let through.
    let r = socket_decision(
        &d.socket,
        &flagged_frame("/usr/bin/ls", &["ls"], Flags::empty(), Mode::Monitor),
    );
    assert_eq!(r, Reply::Allow);
    assert!(d.log().contains("audit write failed"), "{}", d.log());
}

#[test]
fn a_request_sent_in_pieces_is_answered() {
    let ws = Workspace::new();
    let d = ws.start(&[]);
    for (frame, expect_allow) in [
        (exec_frame("/usr/bin/ls", &["ls", "-l"], "sock"), true),
        (
            exec_frame("/usr/bin/rm", &["rm", "-rf", "/srv/victim"], "sock"),
            false,
        ),
    ] {
        let mut c = SockConn::connect(&d.socket);
        c.send(&frame[..7]);
        std::thread::sleep(Duration::from_millis(150));
        c.send(&frame[7..HEADER_LEN + 3]);
        std::thread::sleep(Duration::from_millis(150));
        c.send(&frame[HEADER_LEN + 3..]);
        let r = c.reply().expect("a reply");
        assert_eq!(r == Reply::Allow, expect_allow, "{r:?}");
        assert!(c.read_until_closed(support::IO_TIMEOUT).is_empty());
    }
    assert_eq!(audit_events(&ws.audit_dir()).len(), 2);
}

#[test]
fn audit_sync_always_answers_after_the_sync_and_the_chain_verifies() {
    let ws = Workspace::new();
    let mut d = ws.start(&["--audit-sync", "always"]);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let socket = d.socket.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    let arg = format!("t{t}-{i}");
                    let r =
                        socket_decision(&socket, &exec_frame("/usr/bin/ls", &["ls", &arg], "sock"));
                    assert_eq!(r, Reply::Allow);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every answered decision is in the files before the daemon stops.
    assert_eq!(audit_events(&ws.audit_dir()).len(), 160);
    d.stop();
    let out = ws.verify_audit();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
