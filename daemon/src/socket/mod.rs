//! The preload library's front door: a Unix socket, one request per connection, callers
//! identified with `SO_PEERCRED`.
//!
//! * [`deciders`]: the threads that accept connections and answer them on the spot;
//! * [`frame`]: requests off the wire, replies onto it;
//! * [`judge`]: the decision and its audit record, without waiting;
//! * [`followup`]: what waits (a slow request, a delegate, a human), on the runtime.

mod deciders;
mod followup;
mod frame;
mod judge;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

pub use judge::{Judged, Strict, judge};

use crate::state::AppState;

/// Binds the socket: parent directory 0700, socket 0600, a stale socket file replaced. The
/// listener is blocking: the deciders wait in `accept`.
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
    Ok(listener)
}

/// How many decider threads to run: one per core, since a decision never waits on
/// anything but the audit write; with `--audit-sync always` it waits for a sync, and many
/// more deciders let many decisions share each one.
pub fn decider_count(sync: crate::audit::AuditSync) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    match sync {
        crate::audit::AuditSync::Always => 32,
        _ => cores.clamp(2, 16),
    }
}

/// Serves the socket until `stop` turns true, then stops accepting, finishes the decisions
/// in progress and waits (up to 5 s) for connections handed to the runtime; pending
/// approvals are not waited for: they stay pending.
pub async fn serve(
    listener: StdUnixListener,
    state: Arc<AppState>,
    allowed_uids: Vec<u32>,
    deciders: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let open = Arc::new(OpenConnections::default());
    let running =
        match deciders::Deciders::start(listener, state, allowed_uids, open.clone(), deciders) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("cannot start the socket deciders: {e}");
                return;
            }
        };
    let _ = stop.wait_for(|s| *s).await;
    let _ = tokio::task::spawn_blocking(move || running.stop()).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), open.idle()).await;
}

/// Connections handed to the runtime, for the wait at shutdown. Counted rather than kept
/// in a `JoinSet`: reaping a set would need a task woken once per finished connection.
#[derive(Default)]
struct OpenConnections {
    count: AtomicUsize,
    none_left: Notify,
}

/// One connection on the runtime; dropped when its task ends (or is cancelled).
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
