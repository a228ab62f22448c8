//! The preload library's front door: a Unix socket, one request per connection, callers
//! identified with `SO_PEERCRED`.

use std::borrow::Cow;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use rampart_engine::{Action, EvalOptions, ToolCall, command_string};
use rampart_proto::{Flags, HEADER_LEN, Reply, ReplyRef, Request};
use serde_json::{Map, Value};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::Notify;

use crate::approvals::{Approval, NewApproval, Status};
use crate::recorder::Record;
use crate::state::{AppState, Mode};

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds the socket: parent directory 0700, socket 0600, a stale socket file replaced. The
/// listener is non-blocking, for [`serve`].
pub fn bind(path: &Path) -> io::Result<StdUnixListener> {
    if let Some(parent) = path.parent() {
        crate::home::ensure_private_dir(parent)?;
    }
    if path.exists() {
        if StdUnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another daemon is listening on this socket",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = StdUnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Accepts connections until `stop` turns true; each connection runs on its own task.
///
/// Accepted sockets are not registered with the runtime up front: most requests are
/// answered from what is already queued on them (see [`handle`]), and registering and
/// deregistering each one with epoll would cost more than the rest of the socket work.
pub async fn serve(
    listener: StdUnixListener,
    state: Arc<AppState>,
    allowed_uids: Vec<u32>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // SAFETY: the listener owns its descriptor, which stays open and unreplaced for as
    // long as the `AsyncFd` owns the listener.
    let listener = match unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) } {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot watch the socket listener: {e}");
            return;
        }
    };
    let allowed = Arc::new(allowed_uids);
    // Counted rather than kept in a `JoinSet`: reaping a set would wake this task once per
    // finished connection, for nothing but the final wait below.
    let open = Arc::new(OpenConnections::default());
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = accept(&listener) => match accepted {
                Ok(stream) => {
                    let state = state.clone();
                    let allowed = allowed.clone();
                    let guard = OpenConnections::enter(&open);
                    tokio::spawn(async move {
                        handle(stream, &state, &allowed).await;
                        drop(guard);
                    });
                }
                Err(e) => {
                    tracing::warn!("socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    // Finish in-flight decisions (pending approvals are not waited for: they stay pending).
    let _ = tokio::time::timeout(Duration::from_secs(5), open.idle()).await;
}

async fn accept(listener: &AsyncFd<StdUnixListener>) -> io::Result<StdUnixStream> {
    loop {
        let mut ready = listener.readable().await?;
        if let Ok(accepted) = ready.try_io(|l| l.get_ref().accept()) {
            return accepted.map(|(stream, _)| stream);
        }
    }
}

/// Connections being handled, for the wait at shutdown.
#[derive(Default)]
struct OpenConnections {
    count: AtomicUsize,
    none_left: Notify,
}

/// One open connection; dropped when its task ends (or is cancelled).
struct ConnectionGuard(Arc<OpenConnections>);

impl OpenConnections {
    fn enter(this: &Arc<OpenConnections>) -> ConnectionGuard {
        this.count.fetch_add(1, Ordering::SeqCst);
        ConnectionGuard(this.clone())
    }

    async fn idle(&self) {
        loop {
            let notified = self.none_left.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

/// Resolves once the stop flag is set (the guard is not held across other awaits).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One connection: one request, one final reply (after a `Pending` for an approval).
///
/// The library writes its request right after connecting, so it is usually queued whole by
/// the time the connection is accepted. Then the request is *peeked*, decided, answered with
/// a non-blocking send, and only then consumed: consuming it frees the client's send buffer,
/// which wakes a client already sleeping in its `recv` for nothing (a cross-CPU wake-up that
/// cost more than the rest of the round trip); after the reply it is awake anyway. Anything
/// else (a request still arriving, an approval to wait for) goes through the runtime.
async fn handle(stream: StdUnixStream, state: &AppState, allowed: &[u32]) {
    let uid = match peer_uid(&stream) {
        Ok(uid) => uid,
        Err(e) => {
            tracing::warn!("socket peer credentials unavailable: {e}; closing");
            return;
        }
    };
    if !allowed.contains(&uid) {
        tracing::warn!(uid, "socket peer with a uid that is not allowed; closing");
        return;
    }
    let queued = match peek_request(&stream) {
        Ok(Some(q)) => q,
        Ok(None) => return handle_async(stream, state).await,
        Err(e) => {
            tracing::warn!("bad frame on the socket: {e}; closing");
            return;
        }
    };
    match decide(state, &queued.request).await {
        Decided::Reply(reply) => reply_now(stream, &reply, queued.len).await,
        Decided::Ask(approval) => {
            // `client_closed` reads the connection to notice the client leaving.
            discard(&stream, queued.len);
            let Some(mut stream) = into_async(stream) else {
                return;
            };
            let reply = ask(state, &approval, &mut stream).await;
            let _ = write_reply(&mut stream, &reply).await;
        }
    }
}

/// The general path: the request is read as it arrives, under [`READ_TIMEOUT`].
async fn handle_async(stream: StdUnixStream, state: &AppState) {
    let Some(mut stream) = into_async(stream) else {
        return;
    };
    let request = match tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) if e == NOTHING_SENT => {
            tracing::debug!("socket probe: {e}");
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!("bad frame on the socket: {e}; closing");
            return;
        }
        Err(_) => {
            tracing::warn!("socket client sent no request in time; closing");
            return;
        }
    };
    let reply = match decide(state, &request).await {
        Decided::Reply(reply) => reply,
        Decided::Ask(approval) => ask(state, &approval, &mut stream).await,
    };
    let _ = write_reply(&mut stream, &reply).await;
}

fn into_async(stream: StdUnixStream) -> Option<UnixStream> {
    let registered = stream
        .set_nonblocking(true)
        .and_then(|()| UnixStream::from_std(stream));
    match registered {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot register a socket connection: {e}; closing");
            None
        }
    }
}

fn peer_uid(stream: &StdUnixStream) -> io::Result<u32> {
    // SAFETY: all-zero bytes are a valid `ucred` (plain integers).
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given; the descriptor is
    // open for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// `recv(2)` with `MSG_DONTWAIT` and `flags`; `Ok(None)` when nothing is queued.
fn recv_now(
    stream: &StdUnixStream,
    buf: &mut [u8],
    flags: libc::c_int,
) -> io::Result<Option<usize>> {
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe {
            libc::recv(
                stream.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags | libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// Bytes peeked at once: a whole ordinary request (the library writes its frame in one
/// `write`), so header and payload usually arrive together.
const FIRST_READ: usize = 4096;

/// Requests up to this size are peeked whole; larger ones are read as they arrive (they
/// may not fit in the socket's buffer at once).
const PEEK_MAX: usize = 64 * 1024;

/// A request found whole in the socket's receive queue, not consumed yet.
struct Queued {
    request: Request,
    /// Bytes peeked (the request and anything after it), to consume once answered.
    len: usize,
}

/// The request, if it is already queued whole; `Ok(None)` when it is not (yet), or the
/// peer closed: the general path then reads or reports it. A complete frame that does not
/// decode is an error.
fn peek_request(stream: &StdUnixStream) -> Result<Option<Queued>, String> {
    let mut buf = vec![0u8; FIRST_READ];
    let peek = |buf: &mut [u8]| recv_now(stream, buf, libc::MSG_PEEK).map_err(|e| e.to_string());
    let Some(mut n) = peek(&mut buf)? else {
        return Ok(None);
    };
    if n < HEADER_LEN {
        return Ok(None);
    }
    let header: &[u8; HEADER_LEN] = buf[..HEADER_LEN].try_into().expect("HEADER_LEN bytes");
    let (_, len) = rampart_proto::read_frame_len(header).map_err(|e| e.to_string())?;
    let total = HEADER_LEN + len;
    if total > n {
        if total > PEEK_MAX {
            return Ok(None);
        }
        buf.resize(total, 0);
        match peek(&mut buf)? {
            Some(m) if m >= total => n = m,
            _ => return Ok(None),
        }
    }
    let request = rampart_proto::decode_request(&buf[..total]).map_err(|e| e.to_string())?;
    Ok(Some(Queued { request, len: n }))
}

/// Consumes `len` queued bytes (the answered request). Bytes after the request, if any,
/// are consumed and ignored with it, as the general path does.
fn discard(stream: &StdUnixStream, len: usize) {
    let mut buf = vec![0u8; len];
    let _ = recv_now(stream, &mut buf, 0);
}

/// Answers a peeked request: the reply goes out with a non-blocking `send` (it always fits
/// the empty send buffer of a fresh connection; the runtime finishes it otherwise), then the
/// request is consumed and the connection closed.
async fn reply_now(stream: StdUnixStream, reply: &Reply, queued: usize) {
    let mut buf = [0u8; REPLY_FRAME_MAX];
    let n = match encode_reply(reply, &mut buf) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("cannot encode a socket reply: {e}");
            return;
        }
    };
    // SAFETY: `buf[..n]` is valid for reads.
    let sent = unsafe {
        libc::send(
            stream.as_raw_fd(),
            buf.as_ptr().cast(),
            n,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    discard(&stream, queued);
    if sent < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted {
            return; // the client went away
        }
    }
    let sent = sent.max(0) as usize;
    if sent < n
        && let Some(mut stream) = into_async(stream)
    {
        let _ = stream.write_all(&buf[sent..n]).await;
    }
}

/// A connection closed without a byte: a liveness probe (`rampart preload` checking for a
/// daemon), not a bad frame.
const NOTHING_SENT: &str = "the peer closed the connection without sending anything";

async fn read_request(stream: &mut UnixStream) -> Result<Request, String> {
    let mut frame: Vec<u8> = Vec::with_capacity(FIRST_READ);
    while frame.len() < HEADER_LEN {
        let n = stream
            .read_buf(&mut frame)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(if frame.is_empty() {
                NOTHING_SENT.into()
            } else {
                "the peer closed the connection before sending a whole request".into()
            });
        }
    }
    let header: &[u8; HEADER_LEN] = frame[..HEADER_LEN].try_into().expect("HEADER_LEN bytes");
    let (_, len) = rampart_proto::read_frame_len(header).map_err(|e| e.to_string())?;
    let total = HEADER_LEN + len;
    if frame.len() < total {
        let have = frame.len();
        frame.resize(total, 0);
        stream
            .read_exact(&mut frame[have..])
            .await
            .map_err(|e| e.to_string())?;
    }
    // Bytes after the request (there should be none) are ignored, as `client_closed` does.
    frame.truncate(total);
    rampart_proto::decode_request(&frame).map_err(|e| e.to_string())
}

/// The longest deny message or approval id sent on the socket, in bytes: with the frame
/// header, tag, errno and length prefix every reply stays far inside the library's 4 KiB
/// reply buffer (the full text is in the audit trail).
pub const MAX_REPLY_TEXT: usize = 1024;

/// Bytes of the largest reply frame [`encode_reply`] produces.
const REPLY_FRAME_MAX: usize = HEADER_LEN + 4 + 4 + 8 + MAX_REPLY_TEXT;

/// `text` cut to at most [`MAX_REPLY_TEXT`] bytes on a character boundary, ending with "…"
/// when it was cut.
fn bounded(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_REPLY_TEXT {
        return Cow::Borrowed(text);
    }
    const ELLIPSIS: &str = "…";
    let mut end = MAX_REPLY_TEXT - ELLIPSIS.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{ELLIPSIS}", &text[..end]))
}

/// Encodes `reply` into `buf` with its text [`bounded`]; returns the frame length.
fn encode_reply(reply: &Reply, buf: &mut [u8; REPLY_FRAME_MAX]) -> io::Result<usize> {
    let text = match reply {
        Reply::Allow => Cow::Borrowed(""),
        Reply::Deny { message, .. } => bounded(message),
        Reply::Pending { approval_id } => bounded(approval_id),
    };
    let view = match reply {
        Reply::Allow => ReplyRef::Allow,
        Reply::Deny { errno, .. } => ReplyRef::Deny {
            errno: *errno,
            message: &text,
        },
        Reply::Pending { .. } => ReplyRef::Pending { approval_id: &text },
    };
    rampart_proto::encode_reply_into(&view, buf).map_err(io::Error::other)
}

async fn write_reply(stream: &mut UnixStream, reply: &Reply) -> io::Result<()> {
    let mut buf = [0u8; REPLY_FRAME_MAX];
    let n = encode_reply(reply, &mut buf)?;
    stream.write_all(&buf[..n]).await
}

fn deny(message: impl Into<String>) -> Reply {
    Reply::Deny {
        errno: libc::EPERM,
        message: message.into(),
    }
}

const AUDIT_UNAVAILABLE: &str = "audit storage is unavailable; refusing tool call";

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `rampart serve --strict`: execs of binaries the preload library cannot follow into
/// (nothing they start is checked) are denied unless the policy already denies them.
#[derive(Clone, Debug, Default)]
pub struct Strict {
    /// Executables exempted by exact path (`--strict-allow`).
    pub allow: Vec<PathBuf>,
}

impl Strict {
    /// What the library cannot follow: no dynamic loader to load it into (static, Go's raw
    /// system calls, another ELF class), a loader that drops `LD_PRELOAD` (set-id), or a
    /// target without a path to check again (memfd).
    pub const UNFOLLOWABLE: Flags = Flags::STATIC
        .union(Flags::GO)
        .union(Flags::SETUID)
        .union(Flags::FOREIGN_CLASS)
        .union(Flags::MEMFD);

    /// The deny message for an exec of `path` with `flags`, or `None` when it may run.
    fn refusal(&self, path: &str, flags: Flags) -> Option<String> {
        let blind = flags & Self::UNFOLLOWABLE;
        if blind.is_empty() || self.allow.iter().any(|p| p.as_os_str() == path) {
            return None;
        }
        let labels: Vec<&str> = blind.labels().collect();
        Some(format!(
            "{path} is {}; the preload library cannot follow it",
            labels.join(", ")
        ))
    }
}

/// What [`decide`] concluded.
enum Decided {
    Reply(Reply),
    /// An approval was created: answer `Pending`, then wait for a human ([`ask`]).
    Ask(Box<Approval>),
}

/// Runs full enforcement for one exec, as `/v1/tool` does in enforce mode.
async fn decide(state: &AppState, req: &Request) -> Decided {
    let shell = req.entry.is_shell();
    let (command, path) = if shell {
        (
            req.argv.first().map(|a| lossy(a)).unwrap_or_default(),
            "/bin/sh".to_string(),
        )
    } else {
        let argv: Vec<&[u8]> = req.argv.iter().map(Vec::as_slice).collect();
        (command_string(&req.path, &argv), lossy(&req.path))
    };
    let workdir = lossy(&req.cwd);
    let mut params = Map::new();
    params.insert("command".into(), Value::from(command.clone()));
    params.insert("path".into(), Value::from(path.clone()));
    if !workdir.is_empty() {
        params.insert("workdir".into(), Value::from(workdir));
    }
    let mut call = ToolCall {
        tool: "exec".into(),
        agent: lossy(&req.agent),
        session: lossy(&req.session),
        params,
        ..ToolCall::default()
    };
    let engine = state.policies.current();
    let opts = EvalOptions {
        now_ms: Utc::now().timestamp_millis(),
        verifier_configured: state.verify_url.is_some(),
        resolve_symlinks: true,
        ..EvalOptions::default()
    };
    let d = {
        let mut counter = state.counter.lock().expect("counter lock");
        engine.enforce(&call, &mut counter, &opts)
    };
    // A library in monitor mode only reports: the decision is made and audited as usual,
    // but it is answered with Allow and nothing is acted on.
    let library_monitor = req.mode == rampart_proto::Mode::Monitor;
    let strict = match (&state.strict, d.action) {
        (_, Action::Deny) | (None, _) => None,
        (Some(s), _) => s.refusal(&path, req.flags),
    };
    let acts = state.mode == Mode::Enforce && !library_monitor;
    let delegated =
        acts && strict.is_none() && matches!(d.action, Action::Webhook | Action::Verify);

    let mut request = if delegated {
        call.params.clone()
    } else {
        std::mem::take(&mut call.params)
    };
    request.insert(
        "argv".into(),
        Value::Array(req.argv.iter().map(|a| Value::from(lossy(a))).collect()),
    );
    request.insert("requested".into(), Value::from(lossy(&req.requested)));
    request.insert("entry".into(), Value::from(req.entry.as_str()));
    request.insert(
        "flags".into(),
        Value::Array(req.flags.labels().map(Value::from).collect()),
    );
    request.insert("pid".into(), Value::from(req.pid));
    request.insert("ppid".into(), Value::from(req.ppid));
    request.insert("uid".into(), Value::from(req.uid));
    if library_monitor {
        request.insert("library_mode".into(), Value::from(req.mode.as_str()));
    }
    let mut matched_policies: Vec<String> =
        d.matched_policies.iter().map(|p| p.to_string()).collect();
    let (action, message) = match &strict {
        Some(why) => {
            // The policy's own verdict stays visible next to the refusal.
            request.insert("policy_action".into(), Value::from(d.action.as_str()));
            matched_policies.insert(0, "strict".into());
            ("deny", why.clone())
        }
        None => (d.action.as_str(), d.message.clone()),
    };
    let record = Record {
        tool: "exec".into(),
        agent: call.agent.clone(),
        session: call.session.clone(),
        request,
        action: action.into(),
        matched_policies,
        evaluation_time_us: d.eval_duration.as_micros() as u64,
        message,
        suggestions: d.suggestions.clone(),
        ..Record::default()
    };
    let outcome_record = delegated.then(|| record.clone());
    let audit_id = match state.recorder.record(record).await {
        Ok(id) => id,
        Err(_) if acts => return Decided::Reply(deny(AUDIT_UNAVAILABLE)),
        Err(_) => String::new(),
    };
    let policy = match &strict {
        Some(_) => Some("strict"),
        None => d.matched_policies.first().map(|p| &**p),
    };
    state.metrics.observe(action, policy, d.eval_duration);
    if !acts {
        return Decided::Reply(Reply::Allow);
    }
    if let Some(why) = strict {
        return Decided::Reply(deny(format!("strict: {why}")));
    }
    let policy = d.policy.as_deref().unwrap_or("default");
    Decided::Reply(match d.action {
        Action::Allow | Action::Watch => Reply::Allow,
        Action::Deny => deny(format!("{policy}: {}", d.message)),
        Action::Webhook | Action::Verify => {
            let payload = crate::delegate::Payload {
                tool: "exec",
                params: &call.params,
                agent: &call.agent,
                session: &call.session,
                policy: d.matched_policies.first().map(|p| &**p),
                task_context: None,
                // The verifier judges better knowing who asks: python agent.py → sh → …
                lineage: Some(crate::delegate::Lineage {
                    pid: req.pid,
                    argv: &req.argv,
                }),
            };
            let version = state.policies.generation();
            let v =
                crate::delegate::decide(&state.http_client, &state.verify, version, &d, &payload)
                    .await;
            // The delegate's answer is audited too, before it is acted on.
            let mut second = outcome_record.expect("cloned for a delegated decision");
            second.action = if v.allowed { "allow" } else { "deny" }.into();
            second.message = v.message.clone();
            crate::delegate::annotate(&mut second.request, &v, d.action);
            if state.recorder.record(second).await.is_err() {
                return Decided::Reply(deny(AUDIT_UNAVAILABLE));
            }
            if v.allowed {
                Reply::Allow
            } else {
                deny(v.message)
            }
        }
        Action::Ask => {
            let new = NewApproval {
                tool: "exec".into(),
                command,
                agent: call.agent.clone(),
                session: call.session.clone(),
                message: d.message.clone(),
                run_id: None,
                tool_call_id: None,
                fingerprint: format!("socket:{audit_id}"),
                policy_audit_id: audit_id,
            };
            match state.approvals.create(new, Utc::now()) {
                Ok((a, _)) => {
                    state.announce_approvals();
                    return Decided::Ask(Box::new(a));
                }
                Err(e) => deny(e.to_string()),
            }
        }
    })
}

/// Answers `Pending` for `approval`, then waits for a human, the approval's expiry, the
/// client leaving or the daemon stopping; returns the final reply.
async fn ask(state: &AppState, approval: &Approval, stream: &mut UnixStream) -> Reply {
    if write_reply(
        stream,
        &Reply::Pending {
            approval_id: approval.id.clone(),
        },
    )
    .await
    .is_err()
    {
        return deny("client went away");
    }
    let waited = state.approvals.wait(
        &approval.id,
        state.approvals.timeout() + Duration::from_secs(1),
    );
    let closed = client_closed(stream);
    let outcome = tokio::select! {
        a = waited => a,
        _ = closed => return deny("client went away"),
        _ = state.stopping() => {
            return deny(format!(
                "rampart daemon is stopping; approval {} stays pending",
                approval.id
            ));
        }
    };
    match outcome {
        Some(a) if a.status == Status::Approved => {
            state
                .approvals
                .take_grant(&approval.fingerprint, Utc::now());
            Reply::Allow
        }
        Some(a) if a.status == Status::Denied => deny("approval denied"),
        _ => deny("approval timed out — command blocked"),
    }
}

/// Resolves when the peer closes its end (a read returns 0 or fails). Extra bytes after
/// the request are read and ignored.
async fn client_closed(stream: &mut UnixStream) {
    let mut byte = [0u8; 64];
    loop {
        match stream.read(&mut byte).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_proto::{EntryPoint, Flags, RequestRef};

    fn frame(argv_len: usize) -> Vec<u8> {
        let long = vec![b'x'; argv_len];
        let argv: [&[u8]; 2] = [b"echo", &long];
        let req = RequestRef {
            entry: EntryPoint::Execvp,
            flags: Flags::empty(),
            mode: rampart_proto::Mode::Enforce,
            pid: 1,
            ppid: 2,
            uid: 3,
            path: b"/usr/bin/echo",
            requested: b"echo",
            cwd: b"/tmp",
            agent: b"a",
            session: b"s",
            interpreter: None,
            argv: &argv,
        };
        let mut buf = vec![0u8; 64 * 1024];
        let n = rampart_proto::encode_request(&req, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    /// Sends `pieces` of `bytes` with pauses, then reads one request on the other end.
    async fn read_in_pieces(bytes: Vec<u8>, cuts: &[usize]) -> Result<Request, String> {
        let (mut client, mut server) = UnixStream::pair().unwrap();
        let cuts = cuts.to_vec();
        let sender = tokio::spawn(async move {
            let mut at = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                client.write_all(&bytes[at..cut]).await.unwrap();
                at = cut;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // closing: a truncated request ends in EOF
        });
        let r = read_request(&mut server).await;
        sender.await.unwrap();
        r
    }

    #[tokio::test]
    async fn a_request_is_read_whole_split_or_large() {
        let small = frame(10);
        let large = frame(20_000); // beyond the first read
        for (bytes, cuts) in [
            (small.clone(), vec![]),
            (small.clone(), vec![3]),              // inside the header
            (small.clone(), vec![HEADER_LEN]),     // header, then payload
            (small.clone(), vec![HEADER_LEN + 5]), // inside the payload
            (small.clone(), vec![1, 2, 11, 30]),   // dribbled
            (large.clone(), vec![]),
            (large.clone(), vec![HEADER_LEN, 5000]),
        ] {
            let r = read_in_pieces(bytes.clone(), &cuts).await.unwrap();
            assert_eq!(
                r,
                rampart_proto::decode_request(&bytes).unwrap(),
                "{cuts:?}"
            );
        }
        // bytes after the request are ignored
        let mut extra = small.clone();
        extra.extend_from_slice(b"trailing");
        let r = read_in_pieces(extra, &[]).await.unwrap();
        assert_eq!(r, rampart_proto::decode_request(&small).unwrap());
        // a truncated request is an error
        let r = read_in_pieces(small[..small.len() - 1].to_vec(), &[]).await;
        assert!(r.is_err());
        let r = read_in_pieces(small[..4].to_vec(), &[]).await;
        assert!(r.is_err());
    }
}
