//! CPython under the real library against a real daemon (preload spec §5 CPython rows, §9
//! rows 3–14 and 25–27, and the `ask` → approve/deny flow): every way CPython starts a
//! program is checked, a denied program never runs (its marker is absent) and Python sees
//! the documented deny shape (`PermissionError` errno 1, `os.system` → -1), an allowed one
//! runs, and descendants stay covered when Python scrubs the environment.
//!
//! Each Python snippet starts with [`PRELUDE`]: `attempt(name, fn)` records what `fn`
//! returned or raised, and `done()` prints everything as one `RESULTS=<json>` line that
//! [`py`] parses. Paths reach Python through the `LAB` variable, never by formatting.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rampart_e2e::{Lab, artifacts, audit_events, eventually, run_text};
use serde_json::Value;

/// Shared Python helpers, prepended to every snippet.
const PRELUDE: &str = r#"
import json, os, subprocess, sys
LAB = os.environ["LAB"]
BIN = LAB + "/bin/"
results = {}

def attempt(name, fn):
    try:
        value = fn()
        if not isinstance(value, (int, str, type(None))):
            value = repr(value)
        results[name] = {"ok": True, "value": value}
    except PermissionError as e:
        results[name] = {"ok": False, "perm": True, "errno": e.errno}
    except BaseException as e:
        results[name] = {"ok": False, "perm": False, "error": repr(e),
                         "errno": getattr(e, "errno", None)}

def done():
    sys.stdout.flush()
    print("\nRESULTS=" + json.dumps(results), flush=True)
"#;

fn lab() -> Lab {
    let mut lab = Lab::new();
    lab.start(&[]);
    lab
}

/// What one Python run printed and recorded.
struct PyRun {
    results: Value,
    out: String,
    err: String,
}

impl PyRun {
    /// The entry `name` recorded by `attempt`.
    fn get(&self, name: &str) -> &Value {
        let v = &self.results[name];
        assert!(
            !v.is_null(),
            "no result {name}: {}\nstderr: {}",
            self.results,
            self.err
        );
        v
    }

    /// `name` raised `PermissionError` with errno 1 (EPERM).
    fn assert_denied(&self, name: &str) {
        let v = self.get(name);
        assert!(
            v["perm"] == true && v["errno"] == 1,
            "{name}: expected PermissionError errno 1, got {v}\nstderr: {}",
            self.err
        );
    }

    /// `name` returned `value` without raising.
    fn assert_returned(&self, name: &str, value: impl Into<Value>) {
        let v = self.get(name);
        let value = value.into();
        assert!(
            v["ok"] == true && v["value"] == value,
            "{name}: expected a return of {value}, got {v}\nstderr: {}",
            self.err
        );
    }
}

/// Runs `PRELUDE + script` under the library; the script must call `done()` and exit 0.
fn py(lab: &Lab, script: &str) -> PyRun {
    let (out, err, code) = run_text(&mut lab.python(&[PRELUDE, script].concat()));
    assert_eq!(code, Some(0), "python failed\nstdout: {out}\nstderr: {err}");
    let line = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULTS="))
        .unwrap_or_else(|| panic!("no RESULTS line\nstdout: {out}\nstderr: {err}"));
    let results = serde_json::from_str(line).expect("RESULTS json");
    PyRun { results, out, err }
}

/// What a Python run printed, when it may end in an exec (no `done()`).
struct RawRun {
    out: String,
    err: String,
    code: Option<i32>,
}

/// Runs `PRELUDE + script` under the library without parsing results.
fn py_raw(lab: &Lab, script: &str) -> RawRun {
    let (out, err, code) = run_text(&mut lab.python(&[PRELUDE, script].concat()));
    RawRun { out, err, code }
}

/// The exec decisions the daemon recorded (not the approval resolutions, which also carry
/// a `request` object).
fn exec_decisions(lab: &Lab) -> Vec<Value> {
    lab.exec_requests()
        .into_iter()
        .filter(|r| r["entry"].is_string())
        .collect()
}

/// The exec requests whose policy command is exactly `command`.
fn requests_exact(lab: &Lab, command: &str) -> Vec<Value> {
    exec_decisions(lab)
        .into_iter()
        .filter(|r| r["command"] == command)
        .collect()
}

/// The single exec request whose argv is exactly `argv`.
fn request_with_argv(lab: &Lab, argv: &[&str]) -> Value {
    let reqs: Vec<Value> = exec_decisions(lab)
        .into_iter()
        .filter(|r| r["argv"] == serde_json::json!(argv))
        .collect();
    assert_eq!(
        reqs.len(),
        1,
        "expected exactly one request with argv {argv:?}: {reqs:#?}\nall: {:#?}",
        lab.exec_requests()
    );
    reqs.into_iter().next().expect("one")
}

/// The single exec request whose command is exactly `command`.
fn one_request(lab: &Lab, command: &str) -> Value {
    let reqs = requests_exact(lab, command);
    assert_eq!(
        reqs.len(),
        1,
        "expected exactly one request for {command:?}: {reqs:#?}\nall: {:#?}",
        lab.exec_requests()
    );
    reqs.into_iter().next().expect("one")
}

fn has_flag(request: &Value, flag: &str) -> bool {
    request["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

fn lab_path(lab: &Lab, name: &str) -> String {
    lab.bin(name).display().to_string()
}

/// Asserts that `output` (an `env` listing) carries the trusted preload and the lab's
/// daemon socket.
fn assert_trusted_env(lab: &Lab, output: &str) {
    let preload = format!("LD_PRELOAD={}", artifacts().library.display());
    let socket = format!("RAMPART_SOCKET={}", lab.socket().display());
    for want in [preload.as_str(), socket.as_str(), "RAMPART_MODE=enforce"] {
        assert!(
            output.lines().any(|l| l == want),
            "missing {want} in the child's environment:\n{output}"
        );
    }
}

/// Marker files whose name starts with `prefix`.
fn markers_with_prefix(lab: &Lab, prefix: &str) -> Vec<String> {
    std::fs::read_dir(lab.root().join("markers"))
        .expect("markers dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Row #3: `subprocess.run` default path (vfork + execv with CPython's PATH loop).
#[test]
fn subprocess_run_default_path_blocks_denied_and_stays_lean() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
# Candidates before the lab's bin: a missing dir (ENOENT) and a file used as a dir (ENOTDIR).
os.environ["PATH"] = "/nonexistent-rampart:" + BIN + "allowed:" + LAB + "/bin:/usr/bin:/bin"
attempt("deny", lambda: subprocess.run(["forbidden", "x"]).returncode)
attempt("allow", lambda: subprocess.run(["allowed", "y"]).returncode)

def fds():
    return len(os.listdir("/proc/self/fd"))

def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

# Warm up both paths, then measure 50 allowed + 50 denied runs.
subprocess.run(["allowed", "warm"])
try:
    subprocess.run(["forbidden", "warm"])
except PermissionError:
    pass
fd0, rss0 = fds(), rss_kb()
problems = []
for i in range(50):
    rc = subprocess.run(["allowed", "loop%d" % i]).returncode
    if rc != 0:
        problems.append("allowed loop%d rc=%d" % (i, rc))
    try:
        subprocess.run(["forbidden", "loop%d" % i])
        problems.append("forbidden loop%d ran" % i)
    except PermissionError as e:
        if e.errno != 1:
            problems.append("errno %d" % e.errno)
fd1, rss1 = fds(), rss_kb()
results["loop"] = {"fd0": fd0, "fd1": fd1, "rss0": rss0, "rss1": rss1, "problems": problems}
done()
"#,
    );
    run.assert_denied("deny");
    run.assert_returned("allow", 0);
    assert!(!lab.marker("forbidden-x"), "denied program ran");
    assert!(lab.marker("allowed-y"), "allowed program did not run");
    assert!(
        run.err.contains("rampart: blocked: forbidden x"),
        "{}",
        run.err
    );

    // Exactly one request per run: the ENOENT/ENOTDIR candidates never reach the daemon.
    let deny = one_request(&lab, "forbidden x");
    assert_eq!(deny["path"], lab_path(&lab, "forbidden"));
    assert_eq!(deny["entry"], "execv");
    assert_eq!(deny["decision"], "deny");
    let allow = one_request(&lab, "allowed y");
    assert_eq!(allow["path"], lab_path(&lab, "allowed"));
    assert_eq!(allow["decision"], "allow");
    let all = lab.exec_requests();
    assert!(
        !all.iter().any(|r| {
            let p = r["path"].as_str().unwrap_or_default();
            p.starts_with("/nonexistent") || p.contains("/bin/allowed/")
        }),
        "a nonexistent PATH candidate was queried: {all:#?}"
    );

    // The loop: every run decided correctly, one request each, no fd or memory growth.
    let l = &run.results["loop"];
    assert_eq!(l["problems"], serde_json::json!([]), "{l}\n{}", run.err);
    for i in 0..50 {
        assert!(lab.marker(&format!("allowed-loop{i}")), "allowed loop{i}");
        assert!(
            !lab.marker(&format!("forbidden-loop{i}")),
            "forbidden loop{i}"
        );
        one_request(&lab, &format!("allowed loop{i}"));
        one_request(&lab, &format!("forbidden loop{i}"));
    }
    assert_eq!(l["fd0"], l["fd1"], "the parent's fd count changed: {l}");
    let growth = l["rss1"].as_i64().unwrap() - l["rss0"].as_i64().unwrap();
    assert!(
        growth < 8 * 1024,
        "RSS grew by {growth} KiB over 100 runs: {l}"
    );
}

/// Row #4: `shell=True` (execv /bin/sh) and `shell=True, env={}` (execve).
#[test]
fn subprocess_shell_true_is_checked_and_env_empty_shell_stays_preloaded() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
attempt("deny", lambda: subprocess.run("forbidden s1", shell=True).returncode)
attempt("allow", lambda: subprocess.run("allowed s2", shell=True).returncode)
attempt("deny_env", lambda: subprocess.run("forbidden s3", shell=True, env={}).returncode)
inner = "/usr/bin/env; /bin/sh " + BIN + "indirect s4; " + BIN + "allowed s5"
r = subprocess.run(inner, shell=True, env={}, stdout=subprocess.PIPE)
results["inner_rc"] = r.returncode
results["inner_env"] = r.stdout.decode()
done()
"#,
    );
    run.assert_denied("deny");
    run.assert_returned("allow", 0);
    run.assert_denied("deny_env");
    assert!(!lab.marker("forbidden-s1"));
    assert!(lab.marker("allowed-s2"), "{}", run.err);
    assert!(!lab.marker("forbidden-s3"));

    let r = one_request(&lab, "/bin/sh -c 'forbidden s1'");
    assert_eq!(
        r["argv"],
        serde_json::json!(["/bin/sh", "-c", "forbidden s1"])
    );
    assert_eq!(r["path"], "/bin/sh");
    assert_eq!(r["entry"], "execv");
    assert_eq!(r["decision"], "deny");
    let r = one_request(&lab, "/bin/sh -c 'allowed s2'");
    assert_eq!(r["entry"], "execv");
    assert_eq!(r["decision"], "allow");
    let r = one_request(&lab, "/bin/sh -c 'forbidden s3'");
    assert_eq!(r["entry"], "execve");
    assert!(has_flag(&r, "env-scrubbed"), "{r}");

    // env={}: the inner shell still has the trusted preload and config, and its
    // grandchild (indirect → forbidden) is blocked.
    let env = run.get("inner_env").as_str().unwrap().to_string();
    assert_trusted_env(&lab, &env);
    assert!(
        !lab.marker("forbidden-s4"),
        "the env={{}} grandchild escaped"
    );
    assert!(lab.marker("allowed-s5"), "{}", run.err);
    let r = one_request(&lab, &format!("{} s4", lab_path(&lab, "forbidden")));
    assert_eq!(r["decision"], "deny");
    assert!(
        lab.exec_requests().iter().any(|r| r["path"] == "/bin/sh"
            && r["entry"] == "execve"
            && r["argv"][2]
                .as_str()
                .is_some_and(|c| c.contains("indirect s4"))),
        "no request for the env={{}} shell: {:#?}",
        lab.exec_requests()
    );
}

/// Row #5: `close_fds=False` with an absolute path goes through posix_spawn.
#[test]
fn subprocess_posix_spawn_path_is_checked() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
results["use_posix_spawn"] = int(subprocess._USE_POSIX_SPAWN)
attempt("deny", lambda: subprocess.run([BIN + "forbidden", "p1"], close_fds=False).returncode)
attempt("allow", lambda: subprocess.run([BIN + "allowed", "p2"], close_fds=False).returncode)
done()
"#,
    );
    assert_eq!(
        run.results["use_posix_spawn"], 1,
        "CPython lacks posix_spawn"
    );
    run.assert_denied("deny");
    run.assert_returned("allow", 0);
    assert!(!lab.marker("forbidden-p1"));
    assert!(lab.marker("allowed-p2"), "{}", run.err);
    let forbidden = lab_path(&lab, "forbidden");
    let r = one_request(&lab, &format!("{forbidden} p1"));
    assert_eq!(r["entry"], "posix_spawn");
    assert_eq!(r["path"], forbidden);
    assert_eq!(r["decision"], "deny");
    let r = one_request(&lab, &format!("{} p2", lab_path(&lab, "allowed")));
    assert_eq!(r["entry"], "posix_spawn");
    assert_eq!(r["decision"], "allow");
}

/// Row #6: `preexec_fn` forces the fork path; the decisions are those of row #3.
#[test]
fn subprocess_preexec_fn_fork_path_same_decisions() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
os.environ["PATH"] = "/nonexistent-rampart:" + LAB + "/bin:/usr/bin:/bin"
hook = lambda: None
attempt("deny", lambda: subprocess.run(["forbidden", "f1"], preexec_fn=hook).returncode)
attempt("allow", lambda: subprocess.run(["allowed", "f2"], preexec_fn=hook).returncode)
attempt("deny2", lambda: subprocess.run(["forbidden", "f3"], preexec_fn=hook).returncode)
attempt("allow2", lambda: subprocess.run(["allowed", "f4"], preexec_fn=hook).returncode)
done()
"#,
    );
    run.assert_denied("deny");
    run.assert_denied("deny2");
    run.assert_returned("allow", 0);
    run.assert_returned("allow2", 0);
    assert!(!lab.marker("forbidden-f1"));
    assert!(!lab.marker("forbidden-f3"));
    assert!(lab.marker("allowed-f2"), "{}", run.err);
    assert!(lab.marker("allowed-f4"), "{}", run.err);
    for (cmd, decision) in [
        ("forbidden f1", "deny"),
        ("allowed f2", "allow"),
        ("forbidden f3", "deny"),
        ("allowed f4", "allow"),
    ] {
        let r = one_request(&lab, cmd);
        assert_eq!(r["decision"], decision, "{r}");
        assert_eq!(r["entry"], "execv", "{r}");
    }
}

/// Row #7: `os.system` → libc `system`: deny returns -1.
#[test]
fn os_system_is_checked() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
attempt("deny", lambda: os.system("forbidden s7"))
attempt("allow", lambda: os.system("allowed s8"))
done()
"#,
    );
    run.assert_returned("deny", -1);
    run.assert_returned("allow", 0);
    assert!(!lab.marker("forbidden-s7"));
    assert!(lab.marker("allowed-s8"), "{}", run.err);
    let r = one_request(&lab, "forbidden s7");
    assert_eq!(r["entry"], "system");
    assert_eq!(r["decision"], "deny");
    // The allowed shell string is asked once as a whole, then the shell's exec once more.
    let reqs = requests_exact(&lab, "allowed s8");
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert!(reqs.iter().any(|r| r["entry"] == "system"), "{reqs:#?}");
    assert!(
        reqs.iter()
            .any(|r| r["entry"] == "execve" && r["path"] == lab_path(&lab, "allowed").as_str()),
        "{reqs:#?}"
    );
}

/// Row #8: `os.popen` (subprocess, execv of /bin/sh -c): no output, no marker.
#[test]
fn os_popen_is_checked() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
def popen_read(cmd):
    with os.popen(cmd) as f:
        return f.read()
attempt("deny", lambda: popen_read("echo leaked; forbidden p8"))
attempt("allow", lambda: popen_read("echo hi; allowed p9"))
done()
"#,
    );
    // CPython 3.11's os.popen raises the child's exec error; an empty read would be the
    // other acceptable shape. Either way nothing of the command ran.
    let deny = run.get("deny");
    assert!(
        (deny["perm"] == true && deny["errno"] == 1) || (deny["ok"] == true && deny["value"] == ""),
        "os.popen of a denied command: {deny}"
    );
    assert!(!lab.marker("forbidden-p8"));
    run.assert_returned("allow", "hi\n");
    assert!(lab.marker("allowed-p9"), "{}", run.err);
    let r = one_request(&lab, "/bin/sh -c 'echo leaked; forbidden p8'");
    assert_eq!(r["entry"], "execv");
    assert_eq!(r["path"], "/bin/sh");
    assert_eq!(r["decision"], "deny");
}

/// Row #9: `os.execv`, `os.execl`, `os.execvp`: deny raises and Python keeps running.
/// Each in its own Python (see `a_denial_is_not_reused_for_a_different_exec`).
#[test]
fn os_exec_family_denies_and_python_keeps_running() {
    let lab = lab();
    for (name, call) in [
        ("e1", r#"os.execv(BIN + "forbidden", ["forbidden", "e1"])"#),
        ("e2", r#"os.execl(BIN + "forbidden", "forbidden", "e2")"#),
        ("e3", r#"os.execvp("forbidden", ["forbidden", "e3"])"#),
    ] {
        let script = format!(
            "attempt('exec', lambda: {call})\nprint('still running after the denied exec')\ndone()\n"
        );
        let run = py(&lab, &script);
        run.assert_denied("exec");
        assert!(
            run.out.contains("still running after the denied exec"),
            "{name}: {}",
            run.out
        );
        assert!(!lab.marker(&format!("forbidden-{name}")), "{name} ran");
        let r = one_request(&lab, &format!("forbidden {name}"));
        assert_eq!(r["path"], lab_path(&lab, "forbidden"), "{r}");
        assert_eq!(r["entry"], "execv", "{r}");
        assert_eq!(r["decision"], "deny", "{r}");
    }
    // An allowed exec replaces Python.
    let (_, err, code) = run_text(&mut lab.python(
        r#"
import os
os.execvp("allowed", ["allowed", "e4"])
"#,
    ));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        lab.marker("allowed-e4"),
        "the allowed os.execvp did not run"
    );
    let r = one_request(&lab, "allowed e4");
    assert_eq!(r["path"], lab_path(&lab, "allowed"));
    assert_eq!(r["decision"], "allow");
}

/// Row #10: `os.execve("/bin/sh", …, {})`: the shell gets the trusted preload and config.
#[test]
fn os_execve_with_empty_env_reinjects_the_library() {
    let lab = lab();
    let (out, err, code) = run_text(&mut lab.python(
        r#"
import os, sys
inner = "/usr/bin/env; /bin/sh " + os.environ["LAB"] + "/bin/indirect x10"
sys.stdout.flush()
os.execve("/bin/sh", ["sh", "-c", inner], {})
"#,
    ));
    assert_trusted_env(&lab, &out);
    assert!(
        !lab.marker("forbidden-x10"),
        "the grandchild escaped: {err}"
    );
    assert!(err.contains("rampart: blocked:"), "{err}");
    // dash exits with the status of the blocked command (126).
    assert_eq!(code, Some(126), "{err}");
    let r = lab
        .exec_requests()
        .into_iter()
        .find(|r| r["argv"][0] == "sh" && r["entry"] == "execve")
        .unwrap_or_else(|| panic!("no execve request: {:#?}", lab.exec_requests()));
    assert_eq!(r["path"], "/bin/sh");
    assert!(has_flag(&r, "env-scrubbed"), "{r}");
}

/// Python helper for row #11: start with `start()`, wait, return the exit code.
const SPAWN_WAIT: &str = r#"
def spawn_wait(start):
    pid = start()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
"#;

/// Row #11: `os.posix_spawn` and `os.posix_spawnp`. The two denials run in separate
/// Pythons (see `a_denial_is_not_reused_for_a_different_exec`).
#[test]
fn os_posix_spawn_and_spawnp_are_checked() {
    let lab = lab();
    let spawn = py(
        &lab,
        &[
            SPAWN_WAIT,
            r#"
attempt("spawn_deny", lambda: spawn_wait(
    lambda: os.posix_spawn(BIN + "forbidden", ["forbidden", "q1"], {})))
sys.stdout.flush()
inner = "/usr/bin/env; /bin/sh " + BIN + "indirect q4; " + BIN + "allowed q5"
attempt("spawn_env", lambda: spawn_wait(
    lambda: os.posix_spawn("/bin/sh", ["sh", "-c", inner], {})))
done()
"#,
        ]
        .concat(),
    );
    let spawnp = py(
        &lab,
        &[
            SPAWN_WAIT,
            r#"
attempt("spawnp_deny", lambda: spawn_wait(
    lambda: os.posix_spawnp("forbidden", ["forbidden", "q2"], os.environ)))
attempt("spawnp_allow", lambda: spawn_wait(
    lambda: os.posix_spawnp("allowed", ["allowed", "q3"], os.environ)))
done()
"#,
        ]
        .concat(),
    );
    spawn.assert_denied("spawn_deny");
    spawnp.assert_denied("spawnp_deny");
    spawnp.assert_returned("spawnp_allow", 0);
    assert!(!lab.marker("forbidden-q1"));
    assert!(!lab.marker("forbidden-q2"));
    assert!(lab.marker("allowed-q3"), "{}", spawnp.err);
    let forbidden = lab_path(&lab, "forbidden");
    let r = one_request(&lab, "forbidden q1");
    assert_eq!(r["entry"], "posix_spawn");
    assert_eq!(r["path"], forbidden);
    assert_eq!(r["decision"], "deny");
    let r = one_request(&lab, "forbidden q2");
    assert_eq!(r["entry"], "posix_spawnp");
    assert_eq!(
        r["path"], forbidden,
        "posix_spawnp reports the resolved path"
    );
    assert_eq!(r["requested"], "forbidden");
    assert_eq!(r["decision"], "deny");
    let r = one_request(&lab, "allowed q3");
    assert_eq!(r["entry"], "posix_spawnp");
    assert_eq!(r["path"], lab_path(&lab, "allowed"));

    // posix_spawn with env {}: re-injected; the grandchild stays blocked.
    spawn.assert_returned("spawn_env", 0);
    assert_trusted_env(&lab, &spawn.out);
    assert!(
        !lab.marker("forbidden-q4"),
        "the env={{}} grandchild escaped"
    );
    assert!(lab.marker("allowed-q5"), "{}", spawn.err);
    let spawned = exec_decisions(&lab)
        .into_iter()
        .find(|r| r["entry"] == "posix_spawn" && r["path"] == "/bin/sh")
        .unwrap_or_else(|| panic!("no posix_spawn of /bin/sh: {:#?}", lab.exec_requests()));
    assert!(has_flag(&spawned, "env-scrubbed"), "{spawned}");
}

/// Row #12: `os.execve(fd, …)` is `fexecve`.
#[test]
fn os_execve_with_fd_is_fexecve_and_checked() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
fd = os.open(BIN + "forbidden", os.O_RDONLY)
attempt("fexecve", lambda: os.execve(fd, ["forbidden", "f12"], dict(os.environ)))
# An allowed fexecve (an ELF: a script would need its fd across the exec) in a fork child.
efd = os.open("/usr/bin/env", os.O_RDONLY)
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    try:
        os.execve(efd, ["env"], {})
    finally:
        os._exit(99)
_, status = os.waitpid(pid, 0)
results["child"] = os.waitstatus_to_exitcode(status)
done()
"#,
    );
    run.assert_denied("fexecve");
    assert!(!lab.marker("forbidden-f12"));
    let r = one_request(&lab, "forbidden f12");
    assert_eq!(r["entry"], "fexecve");
    assert_eq!(r["decision"], "deny");
    assert_eq!(r["path"], lab_path(&lab, "forbidden"));
    assert_eq!(
        run.results["child"], 0,
        "allowed fexecve failed: {}",
        run.err
    );
    assert_trusted_env(&lab, &run.out);
    let r = one_request(&lab, "env");
    assert_eq!(r["entry"], "fexecve");
    assert_eq!(r["decision"], "allow");
}

/// Row #13: `ctypes.CDLL(None).system` resolves to the library's `system`.
#[test]
fn ctypes_global_system_is_checked() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
import ctypes
libc = ctypes.CDLL(None)
attempt("deny", lambda: libc.system(b"forbidden c1"))
attempt("allow", lambda: libc.system(b"allowed c2"))
done()
"#,
    );
    run.assert_returned("deny", -1);
    run.assert_returned("allow", 0);
    assert!(!lab.marker("forbidden-c1"));
    assert!(lab.marker("allowed-c2"), "{}", run.err);
    let r = one_request(&lab, "forbidden c1");
    assert_eq!(r["entry"], "system");
    assert_eq!(r["decision"], "deny");
}

/// Row #14 (os.system): `del os.environ["LD_PRELOAD"]` does not free the grandchild.
#[test]
fn deleting_ld_preload_then_os_system_keeps_grandchildren_blocked() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
del os.environ["LD_PRELOAD"]
results["gone"] = int("LD_PRELOAD" not in os.environ)
attempt("system", lambda: os.system("sh $LAB/bin/indirect a"))
done()
"#,
    );
    assert_eq!(run.results["gone"], 1);
    assert!(!lab.marker("forbidden-a"), "the grandchild escaped");
    assert!(run.err.contains("rampart: blocked:"), "{}", run.err);
    let r = one_request(&lab, "sh $LAB/bin/indirect a");
    assert_eq!(r["entry"], "system");
    assert!(has_flag(&r, "env-scrubbed"), "{r}");
    let r = one_request(&lab, &format!("{} a", lab_path(&lab, "forbidden")));
    assert_eq!(r["decision"], "deny");
}

/// Row #14 (subprocess): the same through `subprocess.run` (execv with `environ`).
#[test]
fn deleting_ld_preload_then_subprocess_keeps_grandchildren_blocked() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
del os.environ["LD_PRELOAD"]
results["gone"] = int("LD_PRELOAD" not in os.environ)
attempt("run", lambda: subprocess.run(["sh", BIN + "indirect", "b"]).returncode)
done()
"#,
    );
    assert_eq!(run.results["gone"], 1);
    // sh ran (allowed) and reports the blocked grandchild's 126.
    run.assert_returned("run", 126);
    assert!(!lab.marker("forbidden-b"), "the grandchild escaped");
    assert!(run.err.contains("rampart: blocked:"), "{}", run.err);
    let r = one_request(&lab, &format!("sh {} b", lab_path(&lab, "indirect")));
    assert_eq!(r["entry"], "execv");
    assert!(has_flag(&r, "env-scrubbed"), "{r}");
    let r = one_request(&lab, &format!("{} b", lab_path(&lab, "forbidden")));
    assert_eq!(r["decision"], "deny");
}

/// Row #25: 16 threads × 20 `subprocess.run`, half denied, all at once.
#[test]
fn concurrent_threads_get_the_right_decisions() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
import threading
lock = threading.Lock()
ok, perm, other = [], [], []

def worker(t):
    for j in range(20):
        kind = "allowed" if j % 2 == 0 else "forbidden"
        name = "t%d-%d" % (t, j)
        try:
            rc = subprocess.run([kind, name]).returncode
            with lock:
                (ok if kind == "allowed" and rc == 0 else other).append("%s %s rc=%d" % (kind, name, rc))
        except PermissionError as e:
            with lock:
                (perm if kind == "forbidden" and e.errno == 1 else other).append("%s %s: %r" % (kind, name, e))
        except BaseException as e:
            with lock:
                other.append("%s %s: %r" % (kind, name, e))

threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
for th in threads:
    th.start()
for th in threads:
    th.join()
results["ok"] = len(ok)
results["perm"] = len(perm)
results["other"] = other
done()
"#,
    );
    assert_eq!(run.results["other"], serde_json::json!([]), "{}", run.err);
    assert_eq!(run.results["ok"], 160);
    assert_eq!(run.results["perm"], 160);
    for t in 0..16 {
        for j in (0..20).step_by(2) {
            assert!(lab.marker(&format!("allowed-t{t}-{j}")), "allowed t{t}-{j}");
        }
    }
    let ran = markers_with_prefix(&lab, "forbidden-");
    assert!(ran.is_empty(), "denied programs ran: {ran:?}");
    // No cross-talk: each run was asked exactly once and got its own decision.
    let reqs = lab.exec_requests();
    for t in 0..16 {
        for j in 0..20 {
            let kind = if j % 2 == 0 { "allowed" } else { "forbidden" };
            let cmd = format!("{kind} t{t}-{j}");
            let mine: Vec<_> = reqs
                .iter()
                .filter(|r| r["command"] == cmd.as_str())
                .collect();
            assert_eq!(mine.len(), 1, "{cmd}: {mine:#?}");
            let want = if kind == "allowed" { "allow" } else { "deny" };
            assert_eq!(mine[0]["decision"], want, "{cmd}");
        }
    }
}

/// The audit record of an oversized request is compacted to the length and SHA-256 of its
/// canonical JSON; returns the `(original_json_bytes, sha256)` pairs.
fn compacted_requests(lab: &Lab) -> Vec<(u64, String)> {
    audit_events(&lab.root().join("audit"))
        .into_iter()
        .filter(|e| e["tool"] == "exec")
        .filter_map(|e| {
            let c = &e["request"]["_rampart_compacted"];
            Some((
                c["original_json_bytes"].as_u64()?,
                c["sha256"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn sha256_tag(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("sha256sum output");
    writer.join().expect("writer").expect("write to sha256sum");
    let hex = String::from_utf8_lossy(&out.stdout);
    format!(
        "sha256:{}",
        hex.split_whitespace().next().unwrap_or_default()
    )
}

/// Row #26: odd bytes, quotes, newlines and ≥ 1 MiB of argv reach the daemon whole.
#[test]
fn argv_reaches_the_daemon_losslessly() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
# 1. Odd bytes and a 120 KiB argument to an allowed program: recorded in full.
mid = [b"allowed", b"odd\xff\xfe", b"it's", b"two\nlines", b"y" * 120000, b"end"]
attempt("mid", lambda: subprocess.run(mid).returncode)

# 2. The same shape, by fork + execv so the test knows the pid: a small template the audit
#    keeps whole, then >= 1 MiB of argv (8 arguments just under the kernel's 128 KiB
#    per-argument limit) and one single 1 MiB argument, which the audit compacts.
def fork_exec(args):
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(BIN + "allowed", args)
        except PermissionError:
            os._exit(3)
        except OSError as e:
            os._exit(4 if e.errno == 7 else 5)
        os._exit(6)
    _, status = os.waitpid(pid, 0)
    return {"pid": pid, "ppid": os.getpid(), "code": os.waitstatus_to_exitcode(status)}

results["template"] = fork_exec(["allowed", "tmpl", "zz"])
results["total"] = fork_exec(["allowed", "total"] + ["z" * 131071] * 8)
results["single"] = fork_exec(["allowed", "single", "z" * (1 << 20)])
done()
"#,
    );
    // 1. The recorded argv has the same count, the long argument its full length, and the
    //    quote and newline verbatim (non-UTF-8 bytes are stored lossily, one U+FFFD each).
    run.assert_returned("mid", 0);
    let marker = lab
        .root()
        .join("markers")
        .join(OsStr::from_bytes(b"allowed-odd\xff\xfe"));
    assert!(marker.exists(), "the allowed program did not get its bytes");
    let r = lab
        .exec_requests()
        .into_iter()
        .find(|r| r["argv"][5] == "end")
        .unwrap_or_else(|| panic!("no request: {:#?}", lab.exec_requests()));
    let argv = r["argv"].as_array().unwrap();
    assert_eq!(argv.len(), 6, "argv count");
    assert_eq!(argv[1], "odd\u{FFFD}\u{FFFD}");
    assert_eq!(argv[2], "it's");
    assert_eq!(argv[3], "two\nlines");
    assert_eq!(
        argv[4].as_str().unwrap().len(),
        120_000,
        "long argument truncated"
    );
    assert_eq!(r["decision"], "allow");

    // 2. The template is recorded whole; rebuild the big requests from it and compare the
    //    length and hash the audit kept of their canonical JSON.
    let template_run = &run.results["template"];
    assert_eq!(template_run["code"], 0, "template exec: {}", run.err);
    let template = audit_events(&lab.root().join("audit"))
        .into_iter()
        .filter(|e| e["tool"] == "exec")
        .map(|e| e["request"].clone())
        .find(|r| r["command"] == "allowed tmpl zz")
        .unwrap_or_else(|| panic!("no template request: {:#?}", lab.exec_requests()));
    assert_eq!(template["entry"], "execv");
    assert_eq!(template["pid"], template_run["pid"]);
    let compacted = compacted_requests(&lab);
    for (name, args) in [
        ("total", {
            let mut a = vec!["allowed".to_string(), "total".to_string()];
            a.extend(std::iter::repeat_n("z".repeat(131_071), 8));
            a
        }),
        (
            "single",
            vec!["allowed".into(), "single".into(), "z".repeat(1 << 20)],
        ),
    ] {
        let total: usize = args.iter().map(String::len).sum();
        assert!(total >= 1 << 20, "{name}: only {total} bytes of argv");
        let result = &run.results[name];
        // Python got success or the deny shape, not a hang or a crash (the daemon's 1 MiB
        // policy matching limit denies these; an allowed single 1 MiB argument would
        // fail in the kernel with E2BIG, exit 4).
        let code = result["code"].as_i64().unwrap_or(-1);
        assert!(
            code == 0 || code == 3 || (name == "single" && code == 4),
            "{name}: exec ended with {result}\n{}",
            run.err
        );
        let mut expected = template.clone();
        expected["argv"] = serde_json::json!(args);
        expected["command"] = Value::from(args.join(" "));
        expected["pid"] = result["pid"].clone();
        expected["ppid"] = result["ppid"].clone();
        let json = serde_json::to_string(&expected).expect("json");
        let want = (json.len() as u64, sha256_tag(json.as_bytes()));
        assert!(
            compacted.contains(&want),
            "{name}: the daemon did not receive the request whole: expected {want:?}, \
             compacted records {compacted:?}"
        );
    }
}

/// Row #27: the working directory is the child's, and a relative path is made absolute.
#[test]
fn cwd_and_relative_paths_are_reported_absolute() {
    let lab = lab();
    let run = py(
        &lab,
        r#"
attempt("cwd", lambda: subprocess.run(["allowed", "c27"], cwd="/var").returncode)
attempt("rel", lambda: subprocess.run(["./allowed", "r27"], cwd=LAB + "/bin").returncode)
os.chdir(LAB + "/bin")
attempt("rel_deny", lambda: subprocess.run(["./forbidden", "r28"]).returncode)
done()
"#,
    );
    run.assert_returned("cwd", 0);
    run.assert_returned("rel", 0);
    run.assert_denied("rel_deny");
    assert!(lab.marker("allowed-c27"));
    assert!(lab.marker("allowed-r27"));
    assert!(!lab.marker("forbidden-r28"));
    let r = one_request(&lab, "allowed c27");
    assert_eq!(r["workdir"], "/var");
    let bin = lab.root().join("bin").display().to_string();
    // The path is absolute (joined with the child's cwd; `.` segments are left to the
    // engine's path cleaning).
    let absolute = |r: &Value, name: &str| {
        let path = r["path"].as_str().unwrap_or_default();
        assert!(path.starts_with('/'), "{r}");
        assert_eq!(
            Path::new(path).components().collect::<PathBuf>(),
            lab.bin(name),
            "{r}"
        );
    };
    let r = request_with_argv(&lab, &["./allowed", "r27"]);
    absolute(&r, "allowed");
    assert_eq!(r["requested"], "./allowed");
    assert_eq!(r["workdir"], bin.as_str());
    assert!(!has_flag(&r, "relative-unresolved"), "{r}");
    assert_eq!(r["decision"], "allow");
    let r = request_with_argv(&lab, &["./forbidden", "r28"]);
    absolute(&r, "forbidden");
    assert_eq!(r["workdir"], bin.as_str());
    assert_eq!(r["decision"], "deny");
}

/// After a denial, the library remembers "same program, just denied" for 2 s, keyed on the
/// pid, the file and the argv array's address and length, not its contents. CPython frees
/// and reallocates argv arrays at the same address, so a second, different exec of the same
/// program from the same process must still be asked (and here allowed), not refused from
/// that memory.
#[test]
fn a_denial_is_not_reused_for_a_different_exec() {
    let lab = lab();
    let run = py_raw(
        &lab,
        r#"
# posix_spawn from the parent (subprocess with close_fds=False): a retry with a corrected,
# harmless command.
spawn = lambda arg: subprocess.run([BIN + "allowed", arg], close_fds=False).returncode
attempt("spawn_first", lambda: spawn("forbidden-arg1"))
attempt("spawn_second", lambda: spawn("harmless1"))
# os.execv: the second exec replaces Python when it is allowed.
attempt("exec_first", lambda: os.execv(BIN + "allowed", ["allowed", "forbidden-arg2"]))
os.execv(BIN + "allowed", ["allowed", "harmless2"])
"#,
    );
    let RawRun { out, err, code } = run;
    assert!(!lab.marker("allowed-forbidden-arg1"));
    assert!(!lab.marker("allowed-forbidden-arg2"));
    assert!(
        lab.marker("allowed-harmless1"),
        "subprocess (posix_spawn): an allowed command was refused without asking the \
         daemon\nstdout: {out}\nstderr: {err}\nrequests: {:#?}",
        exec_decisions(&lab)
    );
    assert!(
        lab.marker("allowed-harmless2"),
        "os.execv: an allowed command was refused without asking the daemon (exit {code:?})\
         \nstdout: {out}\nstderr: {err}\nrequests: {:#?}",
        exec_decisions(&lab)
    );
    let allowed = lab_path(&lab, "allowed");
    for (cmd, decision) in [
        (format!("{allowed} forbidden-arg1"), "deny"),
        (format!("{allowed} harmless1"), "allow"),
        ("allowed forbidden-arg2".to_string(), "deny"),
        ("allowed harmless2".to_string(), "allow"),
    ] {
        assert_eq!(one_request(&lab, &cmd)["decision"], decision, "{cmd}");
    }
}

/// Kills the background Python (our own child, by its pid) if the test panics.
struct Background(Option<Child>);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts a Python that waits on an `ask`, resolves the approval with `verb`
/// (`approve`/`deny`) and returns the Python run and the approval id.
fn resolve_ask(lab: &Lab, verb: &str) -> (PyRun, String) {
    let script = [
        PRELUDE,
        r#"
attempt("run", lambda: subprocess.run(["allowed", "needs-approval"]).returncode)
done()
"#,
    ]
    .concat();
    let child = lab
        .python(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    let mut bg = Background(Some(child));
    let daemon = lab.daemon.as_ref().expect("daemon");
    let home = lab.root().join("home");
    let id = eventually(Duration::from_secs(60), "a pending approval", || {
        let (out, _, code) = daemon.cli(&home, &["approvals", "--json"]);
        if code != Some(0) {
            return None;
        }
        let v: Value = serde_json::from_str(&out).ok()?;
        v["approvals"]
            .as_array()?
            .iter()
            .find(|a| a["status"] == "pending" && a["command"] == "allowed needs-approval")
            .and_then(|a| a["id"].as_str().map(str::to_string))
    });
    // Still waiting for the human: the program has not run and Python has not returned.
    assert!(!lab.marker("allowed-needs-approval"), "ran before approval");
    let child = bg.0.as_mut().expect("child");
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "python returned before the decision"
    );
    let (out, err, code) = daemon.cli(&home, &[verb, &id]);
    assert_eq!(code, Some(0), "rampart {verb} {id}: {out}{err}");
    let started = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "python did not finish after `rampart {verb}`"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let Output {
        status,
        stdout,
        stderr,
    } =
        bg.0.take()
            .expect("child")
            .wait_with_output()
            .expect("output");
    let out = String::from_utf8_lossy(&stdout).into_owned();
    let err = String::from_utf8_lossy(&stderr).into_owned();
    assert_eq!(status.code(), Some(0), "python failed\n{out}\n{err}");
    let line = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULTS="))
        .unwrap_or_else(|| panic!("no RESULTS line\n{out}\n{err}"));
    let results = serde_json::from_str(line).expect("RESULTS json");
    (PyRun { results, out, err }, id)
}

/// `ask` → the exec waits, `rampart approve` lets it run.
#[test]
fn ask_waits_for_approval_then_runs() {
    let lab = lab();
    let (run, id) = resolve_ask(&lab, "approve");
    run.assert_returned("run", 0);
    assert!(lab.marker("allowed-needs-approval"), "{}", run.err);
    assert!(
        run.err
            .contains(&format!("rampart: waiting for approval {id}")),
        "{}",
        run.err
    );
    let r = one_request(&lab, "allowed needs-approval");
    assert_eq!(r["decision"], "ask");
}

/// `ask` → the exec waits, `rampart deny` makes it fail with EPERM.
#[test]
fn ask_then_deny_raises_permission_error() {
    let lab = lab();
    let (run, id) = resolve_ask(&lab, "deny");
    run.assert_denied("run");
    assert!(!lab.marker("allowed-needs-approval"), "denied program ran");
    assert!(
        run.err
            .contains(&format!("rampart: waiting for approval {id}")),
        "{}",
        run.err
    );
}
