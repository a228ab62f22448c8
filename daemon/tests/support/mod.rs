//! Shared helpers for the end-to-end tests of `rampart serve`: a real daemon process in a
//! temporary `RAMPART_HOME`, a small blocking HTTP/1.1 client (full control over the bytes
//! sent, for the bad-input cases), a rampart-proto socket client, audit-trail readers and
//! polling helpers. Nothing here sleeps a fixed time where polling works.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rampart_proto::{EntryPoint, Flags, HEADER_LEN, Mode, Reply, RequestRef};
use serde_json::{Value, json};

/// The `rampart` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rampart");

/// Generous limits: the tests must pass on a loaded 2-core machine.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);
pub const POLL_TIMEOUT: Duration = Duration::from_secs(30);

/// The policy most tests run with: one rule per decision kind, on commands that have a
/// visible effect when they do run.
pub const POLICY: &str = r#"version: "1"
default_action: allow
policies:
  - name: block-denied-markers
    match: {tool: exec}
    rules:
      - action: deny
        when: {command_matches: ["touch *denied*"]}
        message: denied markers may not be created
  - name: protect-victim
    match: {tool: exec}
    rules:
      - action: deny
        when: {command_matches: ["rm -rf *victim*"]}
        message: the victim directory is protected
  - name: ask-deploy
    match: {tool: exec}
    rules:
      - action: ask
        when: {command_matches: ["deploy *", "touch *asked*"]}
        message: deploys need a human
  - name: watch-printenv
    match: {tool: exec}
    rules:
      - action: watch
        when: {command_matches: ["printenv *", "touch **watched**"]}
        message: watched command
  - name: hook-notify
    match: {tool: exec}
    rules:
      - action: webhook
        when: {command_matches: ["notify-hook *"]}
        webhook: {url: "http://127.0.0.1:9/hook", timeout: 1s}
"#;

/// Environment variables that would change what a child process does (proxies, a token
/// or URL inherited from the developer's shell, the preload library).
const SCRUBBED_ENV: &[&str] = &[
    "RAMPART_TOKEN",
    "RAMPART_URL",
    "RAMPART_VERIFY_URL",
    "RAMPART_SOCKET",
    "LD_PRELOAD",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

pub fn scrub_env(cmd: &mut Command) -> &mut Command {
    for k in SCRUBBED_ENV {
        cmd.env_remove(k);
    }
    cmd
}

/// A fresh temporary directory with `policy.yaml` (= [`POLICY`]) and an empty `home/`.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("rampart-e2e")
            .tempdir()
            .expect("temp dir");
        std::fs::write(dir.path().join("policy.yaml"), POLICY).expect("write policy");
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `RAMPART_HOME` of the daemons started from this workspace.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn policy(&self) -> PathBuf {
        self.dir.path().join("policy.yaml")
    }

    pub fn audit_dir(&self) -> PathBuf {
        self.home().join("audit")
    }

    /// Starts `rampart serve --listen 127.0.0.1:0 --policy policy.yaml` plus `extra`.
    pub fn start(&self, extra: &[&str]) -> Daemon {
        let policy = self.policy().display().to_string();
        let mut args = vec!["--listen", "127.0.0.1:0", "--policy", &policy];
        args.extend_from_slice(extra);
        Daemon::start(&self.home(), &args)
    }

    /// `rampart audit verify` of this workspace's audit trail.
    pub fn verify_audit(&self) -> Output {
        let dir = self.audit_dir().display().to_string();
        self.cli(&["audit", "verify", "--audit-dir", &dir])
    }

    /// Runs a `rampart` CLI command with this workspace's `RAMPART_HOME`.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        scrub_env(&mut cmd)
            .args(args)
            .env("RAMPART_HOME", self.home())
            .env("USER", "e2e")
            .stdin(Stdio::null());
        output_with_timeout(cmd, IO_TIMEOUT)
    }
}

/// Runs `cmd` to completion, killing it after `limit`.
pub fn output_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    rampart_testkit::output_with_timeout(&mut cmd, limit)
}

/// A running `rampart serve`; killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub home: PathBuf,
    pub socket: PathBuf,
    pub http: Option<SocketAddr>,
    pub token: String,
    log: PathBuf,
}

impl Daemon {
    /// Starts `rampart serve ARGS` with `RAMPART_HOME=home` and waits for its ready line
    /// (`rampart serve ready: socket=<path> http=<addr|off>`).
    pub fn start(home: &Path, args: &[&str]) -> Daemon {
        let log = home.with_extension("serve.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("daemon log");
        let mut cmd = Command::new(BIN);
        scrub_env(&mut cmd)
            .arg("serve")
            .args(args)
            .env("RAMPART_HOME", home)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        let mut child = cmd.spawn().expect("spawn rampart serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining stdout for the daemon's whole life.
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
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = child.try_wait().unwrap() {
                        panic!(
                            "rampart serve exited ({status}) before it was ready:\n{}",
                            std::fs::read_to_string(&log).unwrap_or_default()
                        );
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        panic!(
                            "rampart serve not ready within {STARTUP_TIMEOUT:?}:\n{}",
                            std::fs::read_to_string(&log).unwrap_or_default()
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().unwrap();
                    panic!(
                        "rampart serve closed stdout ({status}) before it was ready:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        // "socket=<path> http=<addr>"
        let (sock, http) = ready
            .strip_prefix("socket=")
            .and_then(|r| r.rsplit_once(" http="))
            .unwrap_or_else(|| panic!("unexpected ready line: {ready:?}"));
        let http = match http {
            "off" => None,
            a => Some(
                a.parse()
                    .unwrap_or_else(|e| panic!("bad http addr {a:?}: {e}")),
            ),
        };
        let token = std::fs::read_to_string(home.join("token"))
            .expect("the token file exists once serve is ready")
            .trim()
            .to_string();
        Daemon {
            child: Some(child),
            home: home.to_path_buf(),
            socket: PathBuf::from(sock),
            http,
            token,
            log,
        }
    }

    pub fn api(&self) -> Api {
        Api {
            addr: self.http.expect("the daemon serves HTTP"),
            token: self.token.clone(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.http.expect("the daemon serves HTTP"))
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Everything the daemon logged so far (all starts in this home).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` and waits (up to `limit`) for the process to exit.
    pub fn stop_with(&mut self, signal: i32, limit: Duration) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        unsafe { libc::kill(child.id() as i32, signal) };
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                return (s, start.elapsed());
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "rampart serve did not exit within {limit:?} after signal {signal}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, expecting a clean exit.
    pub fn stop(&mut self) {
        let (status, _) = self.stop_with(libc::SIGTERM, Duration::from_secs(30));
        assert!(
            status.success(),
            "serve exited with {status}:\n{}",
            self.log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP

/// A complete HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): status {} {:?}", self.status, self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `error` text of a JSON error body, after checking the error shape (§1.2: JSON
    /// content type, `{"error": ...}`, trailing newline).
    pub fn error(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        assert!(self.body.ends_with(b"\n"), "no trailing newline: {self:?}");
        let v = self.json();
        let obj = v.as_object().expect("error body is an object");
        assert_eq!(obj.len(), 1, "error body has only `error`: {v}");
        v["error"].as_str().expect("error is a string").to_string()
    }
}

/// Who the request claims to be.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    Token,
    None,
    /// The raw `Authorization` header value.
    Header(&'a str),
}

/// The daemon's HTTP API, spoken with a hand-written HTTP/1.1 client (one connection per
/// request, `Connection: close`), so tests control every byte.
#[derive(Clone, Debug)]
pub struct Api {
    pub addr: SocketAddr,
    pub token: String,
}

impl Api {
    pub fn request(&self, method: &str, target: &str, auth: Auth<'_>, body: &[u8]) -> Resp {
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept-Encoding: identity\r\n",
            self.addr
        );
        match auth {
            Auth::Token => head.push_str(&format!("Authorization: Bearer {}\r\n", self.token)),
            Auth::None => {}
            Auth::Header(v) => head.push_str(&format!("Authorization: {v}\r\n")),
        }
        if method != "GET" || !body.is_empty() {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body);
        http_exchange(self.addr, raw)
    }

    pub fn get(&self, target: &str) -> Resp {
        self.request("GET", target, Auth::Token, b"")
    }

    pub fn post(&self, target: &str, body: &Value) -> Resp {
        self.request("POST", target, Auth::Token, body.to_string().as_bytes())
    }

    pub fn post_raw(&self, target: &str, body: &[u8]) -> Resp {
        self.request("POST", target, Auth::Token, body)
    }

    pub fn tool(&self, tool: &str, body: &Value) -> Resp {
        self.post(&format!("/v1/tool/{tool}"), body)
    }

    pub fn preflight(&self, tool: &str, body: &Value) -> Resp {
        self.post(&format!("/v1/preflight/{tool}"), body)
    }

    pub fn approval(&self, id: &str) -> Resp {
        self.get(&format!("/v1/approvals/{id}"))
    }

    pub fn resolve(&self, id: &str, approved: bool) -> Resp {
        self.post(
            &format!("/v1/approvals/{id}/resolve"),
            &json!({"approved": approved, "resolved_by": "e2e-test"}),
        )
    }

    /// `GET /v1/approvals` → the `approvals` list.
    pub fn pending(&self) -> Vec<Value> {
        let r = self.get("/v1/approvals");
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["approvals"]
            .as_array()
            .expect("approvals is an array")
            .clone()
    }

    /// Polls `GET /v1/approvals` until a pending approval of `command` shows up.
    pub fn wait_pending(&self, command: &str) -> Value {
        poll(&format!("a pending approval of {command:?}"), || {
            self.pending().into_iter().find(|a| a["command"] == command)
        })
    }
}

/// Sends `raw` and reads the response until the server closes. The request is written from
/// another thread, so a server that answers before reading the whole body (the 1 MiB limit)
/// and closes does not deadlock or lose its answer.
pub fn http_exchange(addr: SocketAddr, raw: Vec<u8>) -> Resp {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let w = std::thread::spawn(move || {
        let _ = writer.write_all(&raw);
        let _ = writer.flush();
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // A reset after the answer arrived (server closed with body bytes unread).
            Err(e) if e.kind() == ErrorKind::ConnectionReset && !buf.is_empty() => break,
            Err(e) => panic!("reading the HTTP response from {addr}: {e} (got {buf:?})"),
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    let _ = w.join();
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> Resp {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP header end in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &buf[end + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        assert!(rest.len() >= len, "short body: {} < {len}", rest.len());
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..nl]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("chunk size");
        rest = &rest[nl + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    out
}

// ---------------------------------------------------------------------------------------
// Polling

/// Calls `f` until it returns `Some`, for up to [`POLL_TIMEOUT`].
pub fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > POLL_TIMEOUT {
            panic!("timed out after {POLL_TIMEOUT:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

// ---------------------------------------------------------------------------------------
// The preload socket

/// The frame the preload library would send for `execve(path, argv)`.
pub fn exec_frame(path: &str, argv: &[&str], agent: &str) -> Vec<u8> {
    frame(EntryPoint::Execve, path, argv, agent)
}

/// The frame the preload library would send for `system(command)`.
pub fn shell_frame(command: &str, agent: &str) -> Vec<u8> {
    frame(EntryPoint::System, "/bin/sh", &[command], agent)
}

pub fn frame(entry: EntryPoint, path: &str, argv: &[&str], agent: &str) -> Vec<u8> {
    frame_with(entry, path, argv, agent, Flags::empty(), Mode::Enforce)
}

/// [`frame`] with what the library found out about the target and the library's mode.
pub fn frame_with(
    entry: EntryPoint,
    path: &str,
    argv: &[&str],
    agent: &str,
    flags: Flags,
    mode: Mode,
) -> Vec<u8> {
    let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
    let req = RequestRef {
        entry,
        flags,
        mode,
        pid: std::process::id() as i32,
        ppid: 1,
        // SAFETY: getuid has no preconditions.
        uid: unsafe { libc::getuid() },
        path: path.as_bytes(),
        requested: path.as_bytes(),
        cwd: b"/tmp",
        agent: agent.as_bytes(),
        session: b"socket-e2e",
        interpreter: None,
        argv: &argv,
    };
    rampart_proto::encode_request_to_vec(&req).expect("encode request")
}

/// One connection to the daemon's Unix socket.
pub struct SockConn {
    pub stream: UnixStream,
}

impl SockConn {
    pub fn connect(path: &Path) -> SockConn {
        let stream =
            UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        SockConn { stream }
    }

    /// Writes `bytes`; a refusal (the daemon already closed) is not an error here.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Reads one reply frame; `None` when the daemon closed the connection first.
    pub fn reply(&mut self) -> Option<Reply> {
        let mut header = [0u8; HEADER_LEN];
        if let Err(e) = self.stream.read_exact(&mut header) {
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                ),
                "reading a reply header: {e}"
            );
            return None;
        }
        let (_, len) = rampart_proto::read_reply_frame_len(&header).expect("reply header");
        let mut frame = vec![0u8; HEADER_LEN + len];
        frame[..HEADER_LEN].copy_from_slice(&header);
        self.stream
            .read_exact(&mut frame[HEADER_LEN..])
            .expect("reply payload");
        Some(rampart_proto::decode_reply(&frame).expect("decodable reply"))
    }

    /// Reads until the daemon closes the connection; returns what it sent (a reset counts
    /// as a close). Panics if the connection stays open longer than `limit`.
    pub fn read_until_closed(&mut self, limit: Duration) -> Vec<u8> {
        self.stream.set_read_timeout(Some(limit)).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
                Err(e) => panic!("the daemon kept the connection open ({e}); got {got:?}"),
            }
        }
    }
}

/// Sends one request frame and returns its single final reply.
pub fn socket_decision(socket: &Path, frame: &[u8]) -> Reply {
    let mut c = SockConn::connect(socket);
    c.send(frame);
    let r = c.reply().expect("a reply");
    assert!(r.is_final(), "expected a final reply, got {r:?}");
    assert!(
        c.read_until_closed(IO_TIMEOUT).is_empty(),
        "nothing after the final reply"
    );
    r
}

// ---------------------------------------------------------------------------------------
// The audit trail

/// The chain files of an audit directory in chain order (`YYYY-MM-DD.jsonl`, then its
/// `.pN.jsonl` parts).
pub fn chain_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<(String, u64, String)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter_map(|n| {
                    let stem = n.strip_suffix(".jsonl")?;
                    let (date, part) = match stem.split_once(".p") {
                        Some((d, p)) => (d.to_string(), p.parse().ok()?),
                        None => (stem.to_string(), 0),
                    };
                    let ok = date.len() == 10
                        && date.bytes().enumerate().all(|(i, b)| {
                            if i == 4 || i == 7 {
                                b == b'-'
                            } else {
                                b.is_ascii_digit()
                            }
                        });
                    ok.then_some((date, part, n))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.into_iter().map(|(_, _, n)| n).collect()
}

/// Every event (lines with an `id`; continuation headers skipped) in chain order.
pub fn audit_events(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for name in chain_files(dir) {
        let text = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: bad audit line ({e}): {line}"));
            if v.get("id").is_some() {
                out.push(v);
            }
        }
    }
    out
}

/// Copies the regular files of `from` into a new directory `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Python

/// `python3 -c CODE` succeeds.
pub fn python_ok(code: &str) -> bool {
    Command::new("python3")
        .args(["-c", code])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The directory of the Python scripts used by these tests.
pub fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// A one-route HTTP server answering every POST with `answer` after `delay` (a webhook or
/// verifier stand-in); returns its URL and the request bodies it received.
pub fn http_stub(
    answer: &'static str,
    delay: Duration,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/decide", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let body = rampart_testkit::read_request_body(&mut s).unwrap_or_default();
            log.lock().unwrap().push(body);
            std::thread::sleep(delay);
            rampart_testkit::write_json_response(&mut s, answer);
        }
    });
    (url, seen)
}
