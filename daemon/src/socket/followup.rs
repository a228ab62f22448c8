//! The parts of a socket connection that wait, run on the runtime: reading a request that
//! was not queued whole, asking a delegate, and waiting for a human.

use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rampart_proto::{Reply, Request};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

use super::frame::{NOTHING_SENT, read_request, write_reply};
use super::judge::{AUDIT_UNAVAILABLE, Delegation, Judged, deny, judge};
use crate::approvals::{Approval, Status};
use crate::state::AppState;

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What is left to do for a connection once it leaves the decider thread.
pub enum Rest {
    /// Nothing read yet: read the request as it arrives, then judge it.
    Read,
    /// Ask the delegate, audit its answer, reply.
    Delegate(Box<Delegation>),
    /// Reply `Pending`, wait for a human, reply the outcome.
    Ask(Box<Approval>),
}

/// Finishes a connection on the runtime.
pub async fn finish(stream: StdUnixStream, state: Arc<AppState>, rest: Rest) {
    let Some(mut stream) = into_async(stream) else {
        return;
    };
    let reply = match rest {
        Rest::Read => {
            let Some(request) = read(&mut stream).await else {
                return;
            };
            // Judging audits, which may wait for a sync (`--audit-sync always`): not on a
            // runtime worker.
            let judged = {
                let state = state.clone();
                tokio::task::spawn_blocking(move || judge(&state, request)).await
            };
            match judged {
                Ok(Judged::Reply(r)) => r,
                Ok(Judged::Delegate(d)) => delegate(&state, *d).await,
                Ok(Judged::Ask(a)) => ask(&state, &a, &mut stream).await,
                Err(e) => {
                    tracing::error!("judging a socket request failed: {e}");
                    deny("internal error in the rampart daemon")
                }
            }
        }
        Rest::Delegate(d) => delegate(&state, *d).await,
        Rest::Ask(a) => ask(&state, &a, &mut stream).await,
    };
    let _ = write_reply(&mut stream, &reply).await;
}

/// Hands a blocking connection to the runtime's reactor.
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

/// The request, read under [`READ_TIMEOUT`]; `None` (logged) when there is none to judge.
async fn read(stream: &mut UnixStream) -> Option<Request> {
    match tokio::time::timeout(READ_TIMEOUT, read_request(stream)).await {
        Ok(Ok(r)) => Some(r),
        Ok(Err(e)) if e == NOTHING_SENT => {
            tracing::debug!("socket probe: {e}");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!("bad frame on the socket: {e}; closing");
            None
        }
        Err(_) => {
            tracing::warn!("socket client sent no request in time; closing");
            None
        }
    }
}

/// Asks the delegate of a `verify`/`webhook` decision; its answer is audited before it is
/// acted on.
async fn delegate(state: &AppState, d: Delegation) -> Reply {
    let payload = crate::delegate::Payload {
        tool: "exec",
        params: &d.call.params,
        agent: &d.call.agent,
        session: &d.call.session,
        policy: d.decision.matched_policies.first().map(|p| &**p),
        task_context: None,
        // The verifier judges better knowing who asks: python agent.py → sh → …
        lineage: Some(crate::delegate::Lineage {
            pid: d.pid,
            argv: &d.argv,
        }),
    };
    let v = crate::delegate::decide(
        &state.http_client,
        &state.verify,
        d.policy_version,
        &d.decision,
        &payload,
    )
    .await;
    let mut second = d.outcome;
    second.action = if v.allowed { "allow" } else { "deny" }.into();
    second.message = v.message.clone();
    crate::delegate::annotate(&mut second.request, &v, d.decision.action);
    if state.recorder.record(second).await.is_err() {
        return deny(AUDIT_UNAVAILABLE);
    }
    if v.allowed {
        Reply::Allow
    } else {
        deny(v.message)
    }
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
