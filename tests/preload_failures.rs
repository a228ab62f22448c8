//! When the daemon cannot answer (preload spec R4, §9 row 24) and when a human has to
//! (R5): enforce mode fails closed, `RAMPART_FAIL_OPEN=1` opens only for an absent or silent
//! daemon, monitor mode never blocks, nothing waits past its deadline, and `ask` holds the
//! exec until someone approves or denies it. Also `rampart preload` end to end.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rampart_e2e::{Lab, artifacts, eventually, run_text};

/// How a stand-in daemon misbehaves.
#[derive(Clone, Copy)]
enum Misbehaviour {
    /// Reads the request, never answers.
    Silent,
    /// Answers with bytes that are not a frame.
    Garbage,
    /// Closes right after accepting.
    Hangup,
    /// Answers a well-formed Allow (for the peer-uid test).
    Allow,
}

/// A stand-in daemon on `socket` serving every connection the same way, in a thread.
fn stand_in(socket: &Path, how: Misbehaviour) {
    let listener = UnixListener::bind(socket).expect("bind stand-in");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                match how {
                    Misbehaviour::Hangup => {}
                    Misbehaviour::Silent => {
                        let _ = conn.read(&mut buf);
                        std::thread::sleep(Duration::from_secs(30));
                    }
                    Misbehaviour::Garbage => {
                        let _ = conn.read(&mut buf);
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n\r\n{\"allowed\":true}");
                    }
                    Misbehaviour::Allow => {
                        let _ = conn.read(&mut buf);
                        let mut out = Vec::new();
                        rampart_proto::encode_reply(&rampart_proto::Reply::Allow, &mut out)
                            .expect("encode");
                        let _ = conn.write_all(&out);
                    }
                }
            });
        }
    });
}

/// Runs `sh -c 'allowed NAME'` under the library with `env`; returns whether it ran, the
/// stderr, and how long it took.
fn attempt(lab: &Lab, name: &str, env: &[(&str, &str)]) -> (bool, String, Duration) {
    let mut cmd = lab.command("/bin/sh");
    cmd.args(["-c", &format!("allowed {name}")]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let (_, err, _) = run_text(&mut cmd);
    (
        lab.marker(&format!("allowed-{name}")),
        err,
        started.elapsed(),
    )
}

#[test]
fn no_daemon_fails_closed_unless_told_otherwise() {
    let lab = Lab::new(); // no daemon: the socket does not exist
    let (ran, err, _) = attempt(&lab, "down1", &[]);
    assert!(!ran, "ran without a daemon");
    assert!(
        err.contains("rampart: blocked: allowed down1 — no rampart daemon at"),
        "{err}"
    );
    let (ran, err, _) = attempt(&lab, "down2", &[("RAMPART_FAIL_OPEN", "1")]);
    assert!(ran, "fail-open: {err}");
    let (ran, err, _) = attempt(&lab, "down3", &[("RAMPART_MODE", "monitor")]);
    assert!(ran, "monitor: {err}");
    // A value other than exactly "1" does not open.
    let (ran, _, _) = attempt(&lab, "down4", &[("RAMPART_FAIL_OPEN", "true")]);
    assert!(!ran);
    // A stale socket file with nobody listening is the same as no daemon.
    drop(UnixListener::bind(lab.socket()).unwrap());
    let (ran, err, _) = attempt(&lab, "down5", &[]);
    assert!(!ran && err.contains("no rampart daemon"), "{err}");
    let (ran, _, _) = attempt(&lab, "down6", &[("RAMPART_FAIL_OPEN", "1")]);
    assert!(ran);
}

#[test]
fn a_silent_daemon_times_out_at_the_deadline() {
    let lab = Lab::new();
    stand_in(&lab.socket(), Misbehaviour::Silent);
    let (ran, err, took) = attempt(&lab, "slow1", &[("RAMPART_TIMEOUT_MS", "300")]);
    assert!(!ran);
    assert!(
        err.contains("no answer from the rampart daemon within 300 ms"),
        "{err}"
    );
    // The deadline bounds the wait (generously: a loaded machine still finishes far
    // below the daemon's 30 s silence).
    assert!(took < Duration::from_secs(10), "waited {took:?}");
    let (ran, _, _) = attempt(
        &lab,
        "slow2",
        &[("RAMPART_TIMEOUT_MS", "300"), ("RAMPART_FAIL_OPEN", "1")],
    );
    assert!(ran, "fail-open covers timeouts");
}

#[test]
fn garbage_and_early_close_deny_even_with_fail_open() {
    for (how, name) in [
        (Misbehaviour::Garbage, "garbage"),
        (Misbehaviour::Hangup, "hangup"),
    ] {
        let lab = Lab::new();
        stand_in(&lab.socket(), how);
        for fail_open in ["0", "1"] {
            let marker = format!("{name}{fail_open}");
            let (ran, err, _) = attempt(&lab, &marker, &[("RAMPART_FAIL_OPEN", fail_open)]);
            assert!(!ran, "{name} with fail-open={fail_open} ran");
            assert!(err.contains("(failing closed)"), "{err}");
        }
        let (ran, _, _) = attempt(&lab, &format!("{name}m"), &[("RAMPART_MODE", "monitor")]);
        assert!(ran, "monitor never blocks");
    }
}

#[test]
fn a_daemon_socket_owned_by_another_uid_is_refused() {
    let lab = Lab::new();
    stand_in(&lab.socket(), Misbehaviour::Allow);
    let (ran, err, _) = attempt(&lab, "uid0", &[]);
    assert!(ran, "a well-formed allow from our own uid: {err}");
    // SAFETY: getuid cannot fail.
    let other = (unsafe { libc::getuid() } + 4242).to_string();
    let (ran, err, _) = attempt(&lab, "uid1", &[("RAMPART_DAEMON_UID", &other)]);
    assert!(!ran);
    assert!(err.contains("belongs to another user"), "{err}");
}

#[test]
fn monitor_mode_runs_everything_and_the_daemon_records_the_would_be_denial() {
    let mut lab = Lab::new();
    lab.start(&[]);
    let (_, err, _) = run_text(
        lab.command("/bin/sh")
            .args(["-c", "forbidden mon1"])
            .env("RAMPART_MODE", "monitor"),
    );
    assert!(lab.marker("forbidden-mon1"), "monitor blocked: {err}");
    let reqs = lab.requests_for("forbidden mon1");
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(
        reqs[0]["decision"], "deny",
        "the record says what enforce would do"
    );
}

/// Starts `probe execve allowed NAME` in the background under the library.
fn background(lab: &Lab, name: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = lab.command(&artifacts().probe);
    cmd.args(["execve", &lab.bin("allowed").display().to_string(), name]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn probe")
}

fn pending_id(lab: &Lab) -> String {
    let daemon = lab.daemon.as_ref().expect("daemon");
    let home = lab.root().join("home");
    eventually(Duration::from_secs(30), "a pending approval", || {
        let (out, _, _) = daemon.cli(&home, &["approvals", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).ok()?;
        let list = v
            .get("approvals")
            .and_then(|a| a.as_array())
            .cloned()
            .or_else(|| v.as_array().cloned())?;
        list.iter()
            .find(|a| a["status"] == "pending")
            .and_then(|a| a["id"].as_str().map(str::to_string))
    })
}

fn finish(child: std::process::Child) -> (String, String) {
    let out = child.wait_with_output().expect("wait");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ask_waits_for_the_human_approve_runs_and_deny_blocks() {
    let mut lab = Lab::new();
    lab.start(&[]);
    let home = lab.root().join("home");
    let child = background(&lab, "needs-approval-1", &[]);
    let id = pending_id(&lab);
    assert!(
        !lab.marker("allowed-needs-approval-1"),
        "ran before approval"
    );
    let (_, err, code) = lab.daemon.as_ref().unwrap().cli(&home, &["approve", &id]);
    assert_eq!(code, Some(0), "{err}");
    let (_, err) = finish(child);
    assert!(
        err.contains(&format!("rampart: waiting for approval {id}: ")),
        "{err}"
    );
    assert!(
        lab.marker("allowed-needs-approval-1"),
        "approved but not run: {err}"
    );

    let child = background(&lab, "needs-approval-2", &[]);
    let id = pending_id(&lab);
    let (_, err, code) = lab.daemon.as_ref().unwrap().cli(&home, &["deny", &id]);
    assert_eq!(code, Some(0), "{err}");
    let (out, err) = finish(child);
    assert!(out.contains("ret=-1 errno=1"), "{out}{err}");
    assert!(!lab.marker("allowed-needs-approval-2"));
}

#[test]
fn the_approval_deadline_bounds_the_wait() {
    let mut lab = Lab::new();
    lab.start(&[]);
    let started = Instant::now();
    let child = background(
        &lab,
        "needs-approval-3",
        &[("RAMPART_APPROVAL_TIMEOUT_MS", "500")],
    );
    let (out, err) = finish(child);
    assert!(out.contains("ret=-1 errno=1"), "{out}{err}");
    assert!(!lab.marker("allowed-needs-approval-3"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// The pid of the `rampart serve` whose command line names `socket`.
fn daemon_pid_for(socket: &Path) -> Option<i32> {
    let needle = socket.display().to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("serve") && cmdline.contains(&needle) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn rampart_preload_starts_a_daemon_and_runs_the_agent_under_the_library() {
    let lab = Lab::new();
    let home = lab.root().join("home");
    let socket = lab.root().join("p.sock");
    let mut cmd = Command::new(&artifacts().rampart);
    cmd.env_remove("LD_PRELOAD")
        .env_remove("RAMPART_SOCKET")
        .env("RAMPART_HOME", &home)
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", lab.root().join("bin").display()),
        )
        .args(["preload", "--socket"])
        .arg(&socket)
        .args(["--listen", "127.0.0.1:0", "--agent", "e2e", "--"])
        .args(["/bin/sh", "-c", "allowed pre1; rm -rf / ; echo done"]);
    let (out, err, code) = run_text(&mut cmd);
    let pid = daemon_pid_for(&socket);
    if let Some(pid) = pid {
        // SAFETY: stopping the daemon this test started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    assert!(pid.is_some(), "no daemon left running: {err}");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("rampart: started a daemon on"), "{err}");
    assert!(lab.marker("allowed-pre1"), "{err}");
    // The embedded standard profile is in force: `rm -rf /` is blocked.
    assert!(err.contains("rampart: blocked: rm -rf /"), "{err}");
    assert!(out.contains("done"));
}

#[test]
fn rampart_preload_explains_a_missing_library() {
    let lab = Lab::new();
    let (_, err, code) = run_text(
        Command::new(&artifacts().rampart)
            .env("RAMPART_HOME", lab.root().join("home"))
            .args([
                "preload",
                "--library",
                "/nonexistent/librampart.so",
                "--",
                "true",
            ]),
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--library /nonexistent/librampart.so: no such file"),
        "{err}"
    );
}

#[test]
fn rampart_preload_sets_no_new_privs_and_the_environment() {
    let lab = Lab::new();
    let script = "while read -r k v; do case $k in NoNewPrivs:) echo nnp=$v;; esac; done \
                  < /proc/self/status; echo mode=$RAMPART_MODE agent=$RAMPART_AGENT \
                  fail=$RAMPART_FAIL_OPEN preload=$LD_PRELOAD";
    let (out, err, code) = run_text(
        Command::new(&artifacts().rampart)
            .env_remove("LD_PRELOAD")
            .env("RAMPART_HOME", lab.root().join("home"))
            .args([
                "preload",
                "--no-start",
                "--no-new-privs",
                "--mode",
                "monitor",
            ])
            .args(["--agent", "a1", "--socket"])
            .arg(lab.root().join("none.sock"))
            .args(["--", "/bin/sh", "-c", script]),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("nnp=1"), "{out}");
    assert!(out.contains("mode=monitor agent=a1 fail=0"), "{out}");
    let lib = std::fs::canonicalize(&artifacts().library).unwrap();
    assert!(out.contains(&format!("preload={}", lib.display())), "{out}");
    assert!(err.contains("no daemon answers"), "{err}");
}
