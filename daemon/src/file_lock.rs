//! Advisory `flock(2)` locks, which the daemon shares with other processes working on the
//! same directory: a second daemon or `rampart audit verify` on the audit trail, another
//! daemon rewriting the always-allow rules.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Holds an `flock` until dropped, on a file it owns (`File`) or borrows (`&File`).
pub(crate) struct FlockGuard<F: AsFd>(F);

impl<F: AsFd> FlockGuard<F> {
    /// Exclusive (writers).
    pub(crate) fn lock(f: F) -> io::Result<Self> {
        Self::take(f, libc::LOCK_EX)
    }

    /// Shared (readers taking a consistent snapshot).
    pub(crate) fn lock_shared(f: F) -> io::Result<Self> {
        Self::take(f, libc::LOCK_SH)
    }

    fn take(f: F, op: libc::c_int) -> io::Result<Self> {
        flock(&f, op).map(|()| FlockGuard(f))
    }
}

impl<F: AsFd> Drop for FlockGuard<F> {
    fn drop(&mut self) {
        let _ = flock(&self.0, libc::LOCK_UN);
    }
}

/// `flock(2)` on `f`, retried on EINTR.
pub(crate) fn flock(f: &impl AsFd, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on an open file descriptor.
        if unsafe { libc::flock(f.as_fd().as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
