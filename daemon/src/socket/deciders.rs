//! The decider threads: each blocks in `accept` on the listener and answers what it
//! accepts on the spot.
//!
//! A plain thread per core rather than the runtime because almost every connection is
//! settled without waiting: the request is already queued, the engine decides in
//! microseconds and the audit write is a local `write(2)`. Blocked in `accept`, a decider
//! is woken by the kernel directly when a client connects (one thread per connection, no
//! readiness events, no task hand-offs, no other worker woken to steal it), which saves
//! about a fifth of the round trip. Connections that must wait (a request still arriving, a
//! verifier or a human to ask) are handed to the runtime.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::OpenConnections;
use super::followup::{self, Rest};
use super::frame::{discard, peek_request, reply_blocking};
use super::judge::{Judged, judge};
use crate::state::AppState;

/// What every decider shares.
struct Shared {
    listener: StdUnixListener,
    state: Arc<AppState>,
    /// Peer uids allowed to connect.
    allowed: Vec<u32>,
    runtime: tokio::runtime::Handle,
    /// Connections handed to the runtime and not finished yet.
    followups: Arc<OpenConnections>,
    stopping: AtomicBool,
}

/// The running deciders.
pub struct Deciders {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Deciders {
    /// Starts `count` deciders on `listener` (a blocking listener).
    pub fn start(
        listener: StdUnixListener,
        state: Arc<AppState>,
        allowed: Vec<u32>,
        followups: Arc<OpenConnections>,
        count: usize,
    ) -> io::Result<Deciders> {
        let shared = Arc::new(Shared {
            listener,
            state,
            allowed,
            runtime: tokio::runtime::Handle::current(),
            followups,
            stopping: AtomicBool::new(false),
        });
        let mut deciders = Deciders {
            shared,
            threads: Vec::with_capacity(count),
        };
        for i in 0..count.max(1) {
            let shared = deciders.shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("rampart-decide-{i}"))
                .spawn(move || run(&shared));
            match thread {
                Ok(t) => deciders.threads.push(t),
                Err(e) => {
                    deciders.stop();
                    return Err(e);
                }
            }
        }
        Ok(deciders)
    }

    /// Stops accepting and waits for the decisions in progress (blocking).
    pub fn stop(mut self) {
        self.signal_stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Tells every decider to return once its current connection is answered.
    fn signal_stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Shutting the listener down wakes every `accept` blocked on it (with EINVAL);
        // the socket stays open until the last decider has returned.
        // SAFETY: the descriptor is the listener's, open for as long as `shared` lives.
        unsafe { libc::shutdown(self.shared.listener.as_raw_fd(), libc::SHUT_RDWR) };
    }
}

impl Drop for Deciders {
    /// Dropped without [`Deciders::stop`] (the serving task cancelled): the threads are
    /// told to stop, not waited for.
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.signal_stop();
        }
    }
}

/// One decider: accept, answer, repeat, until the daemon stops.
fn run(shared: &Shared) {
    loop {
        let accepted = shared.listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, _)) => {
                let served = std::panic::catch_unwind(AssertUnwindSafe(|| serve(shared, stream)));
                if served.is_err() {
                    tracing::error!("a socket decision panicked; the connection was closed");
                }
            }
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR | libc::ECONNABORTED) => {}
                _ => {
                    // Out of descriptors or memory: give the system a moment.
                    tracing::warn!("socket accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            },
        }
    }
}

/// How long a decider waits for the request of a client that has connected but not sent
/// yet, before handing the connection to the runtime. Long enough for a client that the
/// decider's own wake-up pushed off its CPU; short, because a decider waiting serves no one
/// else.
const LATE_REQUEST_WAIT: Duration = Duration::from_micros(500);

/// One connection: checked, peeked, judged and answered here when it can be, handed to
/// the runtime otherwise.
fn serve(shared: &Shared, stream: StdUnixStream) {
    let uid = match peer_uid(&stream) {
        Ok(uid) => uid,
        Err(e) => {
            tracing::warn!("socket peer credentials unavailable: {e}; closing");
            return;
        }
    };
    if !shared.allowed.contains(&uid) {
        tracing::warn!(uid, "socket peer with a uid that is not allowed; closing");
        return;
    }
    let rest = match peek_request(&stream, LATE_REQUEST_WAIT) {
        Ok(Some(queued)) => match judge(&shared.state, queued.request) {
            Judged::Reply(reply) => return reply_blocking(&stream, &reply, queued.len),
            Judged::Delegate(d) => {
                discard(&stream, queued.len);
                Rest::Delegate(d)
            }
            Judged::Ask(a) => {
                // The wait reads the connection to notice the client leaving.
                discard(&stream, queued.len);
                Rest::Ask(a)
            }
        },
        Ok(None) => Rest::Read,
        Err(e) => {
            tracing::warn!("bad frame on the socket: {e}; closing");
            return;
        }
    };
    let guard = OpenConnections::enter(&shared.followups);
    let state = shared.state.clone();
    shared.runtime.spawn(async move {
        followup::finish(stream, state, rest).await;
        drop(guard);
    });
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
