//! The end-to-end harness: builds the real `rampart` binary, the real `librampart.so` and two
//! C probes once; gives each test a [`Lab`] (a temporary directory with marker programs, a
//! policy and a real `rampart serve` on its own socket); runs real programs under the
//! library and reads back what the daemon recorded.
//!
//! Markers: `$LAB/bin/forbidden NAME` and `$LAB/bin/allowed NAME` create
//! `$LAB/markers/forbidden-NAME` / `allowed-NAME` when they run (with a shell builtin, so they
//! start nothing themselves). The lab policy denies every command containing `forbidden`, so
//! a test proves a block by the **absence** of the marker file, and a pass-through by its
//! presence. `$LAB/bin/indirect NAME` runs `forbidden NAME` by absolute path, so an outer
//! command line that does not mention `forbidden` can test what happens further down.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous limits: the tests must pass on a loaded 2-core machine.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The lab policy (see the module docs).
pub const POLICY: &str = r#"version: "1"
default_action: allow
policies:
  - name: deny-forbidden
    match: {tool: exec}
    rules:
      - action: deny
        when: {command_matches: ["*forbidden*"]}
        message: forbidden markers may not run
  - name: ask-approval
    match: {tool: exec}
    rules:
      - action: ask
        when: {command_matches: ["*needs-approval*"]}
        message: a human decides
"#;

/// The artifacts under test.
pub struct Artifacts {
    pub rampart: PathBuf,
    pub library: PathBuf,
    /// The LLM verification sidecar.
    pub verify: PathBuf,
    /// `tests/probe/probe.c`: one chosen exec entry point.
    pub probe: PathBuf,
    /// `tests/probe/gonote.c`: a binary with a Go build-id note.
    pub gonote: PathBuf,
    /// The real Python interpreter (not a version-manager shim).
    pub python: PathBuf,
}

/// Builds everything once per test binary (cargo makes the build a no-op when
/// `cargo test --workspace` already built it).
pub fn artifacts() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(build)
}

fn build() -> Artifacts {
    // target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
    let cargo = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(&workspace)
            .args(["build", "--locked"])
            .args(args)
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("LD_PRELOAD");
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build {args:?} failed");
    };
    cargo(&["-p", "rampart-daemon", "--bin", "rampart"]);
    cargo(&["-p", "rampart-verify", "--bin", "rampart-verify"]);
    // The library is its own workspace (built with panic = "abort"; see preload/Cargo.toml).
    cargo(&["--manifest-path", "preload/Cargo.toml"]);
    let probe_dir = profile_dir.join("e2e-probes");
    std::fs::create_dir_all(&probe_dir).expect("probe dir");
    let probe = compile_c(
        &workspace.join("tests/probe/probe.c"),
        &probe_dir.join("probe"),
        &["-ldl", "-lpthread"],
    );
    let gonote = compile_c(
        &workspace.join("tests/probe/gonote.c"),
        &probe_dir.join("gonote"),
        &[],
    );
    let python = real_python();
    Artifacts {
        rampart: profile_dir.join("rampart"),
        library: profile_dir.join("librampart.so"),
        verify: profile_dir.join("rampart-verify"),
        probe,
        gonote,
        python,
    }
}

fn compile_c(source: &Path, out: &Path, libs: &[&str]) -> PathBuf {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let status = Command::new(&cc)
        .args(["-O1", "-Wall", "-o"])
        .arg(&tmp)
        .arg(source)
        .args(libs)
        .env_remove("LD_PRELOAD")
        .status()
        .unwrap_or_else(|e| panic!("run {cc}: {e} (a C compiler is needed for the probes)"));
    assert!(status.success(), "compiling {} failed", source.display());
    std::fs::rename(&tmp, out).expect("install probe");
    out.to_path_buf()
}

/// `sys.executable` of `python3` on PATH: shims (pyenv) would add unrelated execs.
fn real_python() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .env_remove("LD_PRELOAD")
        .output()
        .expect("python3 is needed for the end-to-end tests");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A test's world: temp dir, marker programs, policy, and (once started) a daemon.
pub struct Lab {
    dir: tempfile::TempDir,
    pub daemon: Option<Daemon>,
}

/// Environment variables cleared from every child so the developer's own settings do not
/// leak into a test.
const CLEARED: &[&str] = &[
    "LD_PRELOAD",
    "LD_AUDIT",
    "RAMPART_SOCKET",
    "RAMPART_MODE",
    "RAMPART_FAIL_OPEN",
    "RAMPART_AGENT",
    "RAMPART_SESSION",
    "RAMPART_TIMEOUT_MS",
    "RAMPART_APPROVAL_TIMEOUT_MS",
    "RAMPART_DEBUG",
    "RAMPART_DAEMON_UID",
    "RAMPART_TOKEN",
    "RAMPART_URL",
];

impl Default for Lab {
    fn default() -> Lab {
        Lab::new()
    }
}

impl Lab {
    /// A lab with the default [`POLICY`] and no daemon yet.
    pub fn new() -> Lab {
        Lab::with_policy(POLICY)
    }

    pub fn with_policy(policy: &str) -> Lab {
        // Short paths: the socket path must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("rp")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let root = dir.path();
        for sub in ["bin", "markers", "home", "work"] {
            std::fs::create_dir_all(root.join(sub)).expect("lab dirs");
        }
        std::fs::write(root.join("policy.yaml"), policy).expect("policy");
        let markers = root.join("markers");
        for kind in ["forbidden", "allowed"] {
            write_script(
                &root.join("bin").join(kind),
                &format!("#!/bin/sh\n: > '{}/{kind}-'\"$1\"\n", markers.display()),
            );
        }
        write_script(
            &root.join("bin/indirect"),
            &format!("#!/bin/sh\n'{}/bin/forbidden' \"$1\"\n", root.display()),
        );
        Lab { dir, daemon: None }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.root().join("bin").join(name)
    }

    pub fn socket(&self) -> PathBuf {
        self.root().join("s.sock")
    }

    /// Whether the marker `name` (e.g. `forbidden-x`) was created.
    pub fn marker(&self, name: &str) -> bool {
        self.root().join("markers").join(name).exists()
    }

    /// Starts `rampart serve` on this lab's socket with the lab policy, HTTP on an
    /// ephemeral port, plus `extra` flags.
    pub fn start(&mut self, extra: &[&str]) -> &Daemon {
        let root = self.root().to_path_buf();
        let socket = self.socket();
        let policy = root.join("policy.yaml");
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--socket".into(),
            socket.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--policy".into(),
            policy.display().to_string(),
            "--audit-dir".into(),
            root.join("audit").display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.daemon = Some(Daemon::start(&root.join("home"), &args));
        self.daemon.as_ref().expect("started")
    }

    /// A command for `program` under the library: `LD_PRELOAD`, the lab's socket, a `PATH`
    /// that finds the lab's programs first, and `LAB` pointing at the lab.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for k in CLEARED {
            cmd.env_remove(k);
        }
        let path = format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            self.root().join("bin").display()
        );
        cmd.env("LD_PRELOAD", &artifacts().library)
            .env("RAMPART_SOCKET", self.socket())
            .env("PATH", path)
            .env("LAB", self.root())
            .current_dir(self.root().join("work"))
            .stdin(Stdio::null());
        cmd
    }

    /// `python3 -c SCRIPT` under the library.
    pub fn python(&self, script: &str) -> Command {
        let mut cmd = self.command(&artifacts().python);
        cmd.arg("-c").arg(script);
        cmd
    }

    /// `sh -c SCRIPT` under the library.
    pub fn sh(&self, script: &str) -> Command {
        let mut cmd = self.command("/bin/sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    /// The request objects of every exec decision the daemon recorded, oldest first.
    pub fn exec_requests(&self) -> Vec<Value> {
        audit_events(&self.root().join("audit"))
            .into_iter()
            .filter(|e| e["tool"] == "exec" && e.get("request").is_some())
            .map(|e| {
                let mut r = e["request"].clone();
                r["decision"] = e["decision"]["action"].clone();
                r
            })
            .collect()
    }

    /// The exec requests whose `command` holds `needle` as whole words (a path may end in
    /// it). Not a bare substring: the random names of the lab's and the build's directories
    /// appear in commands, and a short marker like `s6` can occur inside them.
    pub fn requests_for(&self, needle: &str) -> Vec<Value> {
        self.exec_requests()
            .into_iter()
            .filter(|r| {
                r["command"]
                    .as_str()
                    .is_some_and(|c| holds_words(c, needle))
            })
            .collect()
    }
}

/// Whether `text` holds `needle` starting after a word boundary (start, space, `/`, quote)
/// and ending before one (end, space, quote, `;`).
fn holds_words(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        matches!(before, None | Some(' ' | '/' | '\'' | '"'))
            && matches!(after, None | Some(' ' | '\'' | '"' | ';'))
    })
}

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, body).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Every audit event in `dir` (all files, in name order).
pub fn audit_events(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(_) => return Vec::new(),
    };
    files.sort();
    let mut events = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                events.push(v);
            }
        }
    }
    events
}

/// Runs `cmd` to completion (killing it after [`RUN_TIMEOUT`], which fails the test).
pub fn run(cmd: &mut Command) -> Output {
    rampart_testkit::output_with_timeout(cmd, RUN_TIMEOUT)
}

/// Runs `cmd` and returns (stdout, stderr) as text, with the exit status in the panic
/// message of callers that check it.
pub fn run_text(cmd: &mut Command) -> (String, String, Option<i32>) {
    let o = run(cmd);
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code(),
    )
}

/// A running `rampart serve`, stopped (by its own pid) when dropped.
pub struct Daemon {
    child: Child,
    pub http: Option<String>,
    pub token: String,
    pub log: PathBuf,
}

impl Daemon {
    fn start(home: &Path, args: &[String]) -> Daemon {
        let log = home.with_extension("log");
        let log_file = std::fs::File::create(&log).expect("daemon log");
        let mut cmd = Command::new(&artifacts().rampart);
        for k in CLEARED {
            cmd.env_remove(k);
        }
        let mut child = cmd
            .args(args)
            .env("RAMPART_HOME", home)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn rampart serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("rampart serve ready: ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.to_string());
                }
            }
        });
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let ready = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => break line,
                Err(_) => {
                    if let Some(status) = child.try_wait().expect("wait") {
                        panic!(
                            "rampart serve exited ({status}):\n{}",
                            std::fs::read_to_string(&log).unwrap_or_default()
                        );
                    }
                    assert!(Instant::now() < deadline, "rampart serve not ready");
                }
            }
        };
        let http = ready
            .rsplit_once(" http=")
            .map(|(_, a)| a.to_string())
            .filter(|a| a != "off");
        let token = std::fs::read_to_string(home.join("token"))
            .unwrap_or_default()
            .trim()
            .to_string();
        Daemon {
            child,
            http,
            token,
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs a `rampart` CLI command (`approvals`, `approve ID`, …) against this daemon.
    pub fn cli(&self, home: &Path, args: &[&str]) -> (String, String, Option<i32>) {
        let mut cmd = Command::new(&artifacts().rampart);
        for k in CLEARED {
            cmd.env_remove(k);
        }
        cmd.args(args)
            .env("RAMPART_HOME", home)
            .env("RAMPART_TOKEN", &self.token)
            .env(
                "RAMPART_URL",
                format!(
                    "http://{}",
                    self.http.as_deref().expect("daemon serves HTTP")
                ),
            );
        run_text(&mut cmd)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns `Some`, or panics after `limit`.
pub fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
