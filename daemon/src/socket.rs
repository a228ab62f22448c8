//! The preload library's front door: a Unix socket, one request per connection, callers
//! identified with `SO_PEERCRED`.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rampart_engine::{Action, EvalOptions, ToolCall, command_string};
use rampart_proto::{HEADER_LEN, Reply, Request};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::approvals::{NewApproval, Status};
use crate::recorder::Record;
use crate::state::{AppState, Mode};

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds the socket: parent directory 0700, socket 0600, a stale socket file replaced.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(parent) = path.parent() {
        crate::home::ensure_private_dir(parent)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another daemon is listening on this socket",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accepts connections until `stop` turns true; each connection runs on its own task.
pub async fn serve(
    listener: UnixListener,
    state: Arc<AppState>,
    allowed_uids: Vec<u32>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let allowed = Arc::new(allowed_uids);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = state.clone();
                    let allowed = allowed.clone();
                    conns.spawn(async move { handle(stream, &state, &allowed).await });
                }
                Err(e) => {
                    tracing::warn!("socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Finish in-flight decisions (pending approvals are not waited for: they stay pending).
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

/// Resolves once the stop flag is set (the guard is not held across other awaits).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn handle(mut stream: UnixStream, state: &AppState, allowed: &[u32]) {
    let uid = match stream.peer_cred() {
        Ok(c) => c.uid(),
        Err(e) => {
            tracing::warn!("socket peer credentials unavailable: {e}; closing");
            return;
        }
    };
    if !allowed.contains(&uid) {
        tracing::warn!(uid, "socket peer with a uid that is not allowed; closing");
        return;
    }
    let request = match tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!("bad frame on the socket: {e}; closing");
            return;
        }
        Err(_) => {
            tracing::warn!("socket client sent no request in time; closing");
            return;
        }
    };
    let reply = decide(state, &request, &mut stream).await;
    let _ = write_reply(&mut stream, &reply).await;
}

/// Bytes asked for by the first read: a whole ordinary request (the library writes its frame
/// in one `write`), so header and payload usually arrive with one `recv`.
const FIRST_READ: usize = 4096;

async fn read_request(stream: &mut UnixStream) -> Result<Request, String> {
    let mut frame: Vec<u8> = Vec::with_capacity(FIRST_READ);
    while frame.len() < HEADER_LEN {
        let n = stream
            .read_buf(&mut frame)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the peer closed the connection before sending a whole request".into());
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

async fn write_reply(stream: &mut UnixStream, reply: &Reply) -> io::Result<()> {
    let mut buf = Vec::new();
    rampart_proto::encode_reply(reply, &mut buf).map_err(io::Error::other)?;
    stream.write_all(&buf).await?;
    stream.flush().await
}

fn deny(message: impl Into<String>) -> Reply {
    Reply::Deny {
        errno: libc::EPERM,
        message: message.into(),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs full enforcement for one exec, as `/v1/tool` does in enforce mode.
async fn decide(state: &AppState, req: &Request, stream: &mut UnixStream) -> Reply {
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
        params.insert("workdir".into(), Value::from(workdir.clone()));
    }
    let call = ToolCall {
        tool: "exec".into(),
        agent: lossy(&req.agent),
        session: lossy(&req.session),
        params: params.clone(),
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
    let mut request = params;
    request.insert(
        "argv".into(),
        Value::Array(req.argv.iter().map(|a| Value::from(lossy(a))).collect()),
    );
    request.insert("requested".into(), Value::from(lossy(&req.requested)));
    request.insert("entry".into(), Value::from(req.entry.as_str()));
    request.insert(
        "flags".into(),
        json!(req.flags.labels().collect::<Vec<_>>()),
    );
    request.insert("pid".into(), Value::from(req.pid));
    request.insert("ppid".into(), Value::from(req.ppid));
    request.insert("uid".into(), Value::from(req.uid));
    let record = Record {
        tool: "exec".into(),
        agent: call.agent.clone(),
        session: call.session.clone(),
        request,
        action: d.action.as_str().into(),
        matched_policies: d.matched_policies.iter().map(|p| p.to_string()).collect(),
        evaluation_time_us: d.eval_duration.as_micros() as u64,
        message: d.message.clone(),
        suggestions: d.suggestions.clone(),
        ..Record::default()
    };
    let outcome_record = record.clone();
    let audit_id = match state.recorder.record(record).await {
        Ok(id) => id,
        Err(_) if state.mode == Mode::Enforce => {
            return deny("audit storage is unavailable; refusing tool call");
        }
        Err(_) => String::new(),
    };
    state.metrics.observe(
        d.action.as_str(),
        d.matched_policies.first().map(|p| &**p),
        d.eval_duration,
    );
    if state.mode == Mode::Monitor {
        return Reply::Allow;
    }
    let policy = d.policy.as_deref().unwrap_or("default");
    match d.action {
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
            };
            let v = crate::delegate::decide(
                &state.http_client,
                state.verify_url.as_deref(),
                &d,
                &payload,
            )
            .await;
            // The delegate's answer is audited too, before it is acted on.
            let mut second = outcome_record;
            second.action = if v.allowed { "allow" } else { "deny" }.into();
            second.message = v.message.clone();
            if let Some(m) = &v.model {
                second
                    .request
                    .insert("verify_model".into(), Value::from(m.clone()));
            }
            if state.recorder.record(second).await.is_err() {
                return deny("audit storage is unavailable; refusing tool call");
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
            let approval = match state.approvals.create(new, Utc::now()) {
                Ok((a, _)) => a,
                Err(e) => return deny(e.to_string()),
            };
            state.announce_approvals();
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
