//! One question to the daemon (preload spec §6.3, §7): a fresh `AF_UNIX` connection per
//! exec attempt (`CLOEXEC`, never cached: a `vfork` child does not share the fd table), the
//! peer checked with `SO_PEERCRED`, the request streamed from the caller's own memory with
//! `sendmsg` (`MSG_NOSIGNAL`), the reply read into a stack buffer and decoded strictly, all
//! under a `CLOCK_MONOTONIC` deadline. A `Pending` reply switches to the approval deadline.

use core::ffi::c_int;
use core::mem::{size_of, zeroed};

use rampart_proto::{
    HEADER_LEN, INLINE_CAP, ProtoError, ReplyRef, RequestRef, Segment, decode_reply_payload_ref,
    encode_request_with, read_reply_frame_len,
};

use crate::config::Config;
use crate::cstr::CArg;

/// Reply buffer: the daemon caps messages at 1 KiB, so every valid reply fits; a larger one
/// is a protocol error (deny), never a truncated read.
pub const REPLY_CAP: usize = 2048;

/// Why there is no verdict (R4 classes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The socket does not exist or nobody listens (ENOENT, ECONNREFUSED).
    Unavailable,
    /// The deadline passed.
    Timeout,
    /// Anything else: a bad or oversized reply, an early close, a wrong peer, a request that
    /// cannot be sent. Never turned into an allow by `RAMPART_FAIL_OPEN`.
    Protocol(&'static str),
}

/// The daemon's final word.
pub enum Answer<'b> {
    Allow,
    Deny { message: &'b [u8] },
}

/// Asks the daemon about `req`. `on_pending` is called with the approval id when a human is
/// being asked (before the long wait).
pub fn ask<'b>(
    config: &Config,
    req: &RequestRef<'_, CArg>,
    reply: &'b mut [u8; REPLY_CAP],
    on_pending: impl FnOnce(&[u8]),
) -> Result<Answer<'b>, Failure> {
    let mut deadline = Deadline::after_ms(config.timeout_ms);
    let conn = Connection::open(config, &deadline)?;
    conn.send(req, &deadline)?;
    let mut len = conn.read_frame(reply, &deadline)?;
    let pending = matches!(decode(reply, len)?, ReplyRef::Pending { .. });
    if pending {
        if let ReplyRef::Pending { approval_id } = decode(reply, len)? {
            on_pending(approval_id.as_bytes());
        }
        deadline = Deadline::after_ms(config.approval_timeout_ms);
        len = conn.read_frame(reply, &deadline)?;
    }
    match decode(reply, len)? {
        ReplyRef::Allow => Ok(Answer::Allow),
        ReplyRef::Deny { message, .. } => Ok(Answer::Deny {
            message: message.as_bytes(),
        }),
        ReplyRef::Pending { .. } => Err(Failure::Protocol("a second pending reply")),
    }
}

fn decode(reply: &[u8; REPLY_CAP], len: usize) -> Result<ReplyRef<'_>, Failure> {
    let payload = reply
        .get(HEADER_LEN..len)
        .ok_or(Failure::Protocol("a truncated reply"))?;
    decode_reply_payload_ref(payload).map_err(|_| Failure::Protocol("an undecodable reply"))
}

/// A point in `CLOCK_MONOTONIC` time.
struct Deadline {
    at_ns: u64,
}

/// Milliseconds on the monotonic clock.
pub fn monotonic_ms() -> u64 {
    now_ns() / 1_000_000
}

fn now_ns() -> u64 {
    // SAFETY: timespec is plain data; clock_gettime writes it.
    let mut ts: libc::timespec = unsafe { zeroed() };
    // SAFETY: valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u64::try_from(ts.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(ts.tv_nsec).unwrap_or(0))
}

impl Deadline {
    fn after_ms(ms: u32) -> Deadline {
        Deadline {
            at_ns: now_ns().saturating_add(u64::from(ms).saturating_mul(1_000_000)),
        }
    }

    /// Time left, as a `timeval` for `SO_SNDTIMEO`/`SO_RCVTIMEO`; `None` once passed.
    fn remaining(&self) -> Option<libc::timeval> {
        let left = self.at_ns.checked_sub(now_ns()).filter(|&ns| ns > 0)?;
        // A zero timeval would mean "no timeout": round up to at least 1 µs.
        let us = (left / 1_000).max(1);
        Some(libc::timeval {
            tv_sec: libc::time_t::try_from(us / 1_000_000).unwrap_or(libc::time_t::MAX),
            tv_usec: libc::suseconds_t::try_from(us % 1_000_000).unwrap_or(0),
        })
    }
}

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// An open connection; closed when dropped, on every path.
struct Connection {
    fd: c_int,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: we own fd.
        unsafe { libc::close(self.fd) };
    }
}

impl Connection {
    fn open(config: &Config, deadline: &Deadline) -> Result<Connection, Failure> {
        // SAFETY: plain socket creation.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(Failure::Protocol("cannot create a socket"));
        }
        let conn = Connection { fd };
        // SAFETY: sockaddr_un is plain data.
        let mut addr: libc::sockaddr_un = unsafe { zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let path = config.socket_with_nul();
        if path.len() > addr.sun_path.len() {
            return Err(Failure::Protocol("the socket path is too long"));
        }
        for (dst, &src) in addr.sun_path.iter_mut().zip(path) {
            *dst = src as libc::c_char;
        }
        // SO_SNDTIMEO also bounds a blocking AF_UNIX connect on a full backlog.
        conn.set_timeout(libc::SO_SNDTIMEO, deadline)?;
        loop {
            // SAFETY: addr is a valid sockaddr_un of the given size.
            let r = unsafe {
                libc::connect(
                    fd,
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_un>() as libc::socklen_t,
                )
            };
            if r == 0 {
                break;
            }
            match errno() {
                libc::EINTR => continue,
                libc::EISCONN => break,
                libc::ENOENT | libc::ECONNREFUSED => return Err(Failure::Unavailable),
                libc::EAGAIN | libc::EINPROGRESS | libc::ETIMEDOUT => {
                    return Err(Failure::Timeout);
                }
                _ => return Err(Failure::Protocol("cannot connect to the daemon socket")),
            }
        }
        conn.check_peer(config)?;
        Ok(conn)
    }

    fn set_timeout(&self, which: c_int, deadline: &Deadline) -> Result<(), Failure> {
        let tv = deadline.remaining().ok_or(Failure::Timeout)?;
        // SAFETY: tv is a valid timeval of the given size.
        let r = unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_SOCKET,
                which,
                (&raw const tv).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(Failure::Protocol("cannot set a socket deadline"));
        }
        Ok(())
    }

    /// The daemon must run as `RAMPART_DAEMON_UID`, else as us or root.
    fn check_peer(&self, config: &Config) -> Result<(), Failure> {
        // SAFETY: ucred is plain data.
        let mut cred: libc::ucred = unsafe { zeroed() };
        let mut len = size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: valid out-pointers of the given size.
        let r = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&raw mut cred).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(Failure::Protocol(
                "cannot identify the daemon socket's owner",
            ));
        }
        let ok = match config.daemon_uid {
            Some(uid) => cred.uid == uid,
            // SAFETY: getuid cannot fail.
            None => cred.uid == unsafe { libc::getuid() } || cred.uid == 0,
        };
        if ok {
            Ok(())
        } else {
            Err(Failure::Protocol(
                "the daemon socket belongs to another user",
            ))
        }
    }

    fn send(&self, req: &RequestRef<'_, CArg>, deadline: &Deadline) -> Result<(), Failure> {
        self.set_timeout(libc::SO_SNDTIMEO, deadline)?;
        let mut out = Batch::new(self.fd);
        encode_request_with(req, |segment: Segment<'_>| out.push(segment))
            .map_err(SendError::failure)?;
        out.flush().map_err(SendError::failure)
    }

    /// Reads one reply frame into `buf`; returns its whole length (header included).
    fn read_frame(&self, buf: &mut [u8; REPLY_CAP], deadline: &Deadline) -> Result<usize, Failure> {
        self.read_exact(buf, 0, HEADER_LEN, deadline)?;
        let mut header = [0u8; HEADER_LEN];
        for (d, s) in header.iter_mut().zip(buf.iter()) {
            *d = *s;
        }
        let (_, len) = read_reply_frame_len(&header)
            .map_err(|_| Failure::Protocol("a reply with a bad header"))?;
        let total = HEADER_LEN.saturating_add(len);
        if total > REPLY_CAP {
            return Err(Failure::Protocol("an oversized reply"));
        }
        self.read_exact(buf, HEADER_LEN, total, deadline)?;
        Ok(total)
    }

    fn read_exact(
        &self,
        buf: &mut [u8; REPLY_CAP],
        from: usize,
        to: usize,
        deadline: &Deadline,
    ) -> Result<(), Failure> {
        let mut at = from;
        while at < to {
            self.set_timeout(libc::SO_RCVTIMEO, deadline)?;
            let Some(dst) = buf.get_mut(at..to) else {
                return Err(Failure::Protocol("a reply out of bounds"));
            };
            // SAFETY: dst is a writable slice of dst.len() bytes.
            let n = unsafe { libc::recv(self.fd, dst.as_mut_ptr().cast(), dst.len(), 0) };
            if n > 0 {
                at = at.saturating_add(usize::try_from(n).unwrap_or(0));
                continue;
            }
            if n == 0 {
                return Err(Failure::Protocol("the daemon closed the connection early"));
            }
            match errno() {
                libc::EINTR => continue,
                libc::EAGAIN => return Err(Failure::Timeout),
                _ => return Err(Failure::Protocol("cannot read the daemon's reply")),
            }
        }
        Ok(())
    }
}

enum SendError {
    Proto(ProtoError),
    Io(Failure),
}

impl SendError {
    fn failure(self) -> Failure {
        match self {
            SendError::Proto(ProtoError::TooLarge { .. } | ProtoError::TooManyArgs { .. }) => {
                Failure::Protocol("the command is too large to send (over 4 MiB)")
            }
            SendError::Proto(_) => Failure::Protocol("the request cannot be encoded"),
            SendError::Io(f) => f,
        }
    }
}

impl From<ProtoError> for SendError {
    fn from(e: ProtoError) -> Self {
        SendError::Proto(e)
    }
}

/// How many pieces one `sendmsg` carries.
const IOV_BATCH: usize = 48;

/// Request pieces gathered into `iovec`s: the encoder's small pieces are copied into a
/// staging area (consecutive ones share one `iovec`), the caller's strings are referenced in
/// place. Full batches go out with one `sendmsg` each.
struct Batch {
    fd: c_int,
    iov: [libc::iovec; IOV_BATCH],
    count: usize,
    staging: [u8; IOV_BATCH * INLINE_CAP],
    used: usize,
    /// Whether the last iovec points into the staging area and ends at `used`.
    last_staged: bool,
}

impl Batch {
    fn new(fd: c_int) -> Batch {
        Batch {
            fd,
            iov: [libc::iovec {
                iov_base: core::ptr::null_mut(),
                iov_len: 0,
            }; IOV_BATCH],
            count: 0,
            staging: [0; IOV_BATCH * INLINE_CAP],
            used: 0,
            last_staged: false,
        }
    }

    fn push(&mut self, segment: Segment<'_>) -> Result<(), SendError> {
        match segment {
            Segment::Inline(inline) => {
                let bytes = inline.as_bytes();
                if self.used.saturating_add(bytes.len()) > self.staging.len()
                    || (self.count >= IOV_BATCH && !self.last_staged)
                {
                    self.flush()?;
                }
                let start = self.used;
                let end = start.saturating_add(bytes.len());
                let Some(dst) = self.staging.get_mut(start..end) else {
                    return Err(SendError::Io(Failure::Protocol("staging overflow")));
                };
                dst.copy_from_slice(bytes);
                self.used = end;
                if self.last_staged
                    && let Some(last) = self.count.checked_sub(1).and_then(|i| self.iov.get_mut(i))
                {
                    last.iov_len = last.iov_len.saturating_add(bytes.len());
                    return Ok(());
                }
                let base = self.staging.as_mut_ptr().wrapping_add(start);
                self.add(base.cast(), bytes.len());
                self.last_staged = true;
            }
            Segment::Borrowed(bytes) => {
                if self.count >= IOV_BATCH {
                    self.flush()?;
                }
                self.add(bytes.as_ptr().cast_mut().cast(), bytes.len());
                self.last_staged = false;
            }
        }
        Ok(())
    }

    fn add(&mut self, base: *mut libc::c_void, len: usize) {
        if let Some(slot) = self.iov.get_mut(self.count) {
            *slot = libc::iovec {
                iov_base: base,
                iov_len: len,
            };
            self.count = self.count.saturating_add(1);
        }
    }

    /// Sends every gathered piece, resuming after partial writes.
    fn flush(&mut self) -> Result<(), SendError> {
        let mut first = 0usize;
        while first < self.count {
            let Some(pending) = self.iov.get_mut(first..self.count) else {
                break;
            };
            // SAFETY: msghdr is plain data.
            let mut msg: libc::msghdr = unsafe { zeroed() };
            msg.msg_iov = pending.as_mut_ptr();
            msg.msg_iovlen = pending.len();
            // SAFETY: every iovec points to live memory of its length (the caller's strings
            // or our staging area); MSG_NOSIGNAL keeps a closed peer from raising SIGPIPE.
            let sent = unsafe { libc::sendmsg(self.fd, &msg, libc::MSG_NOSIGNAL) };
            if sent < 0 {
                match errno() {
                    libc::EINTR => continue,
                    libc::EAGAIN => return Err(SendError::Io(Failure::Timeout)),
                    _ => {
                        return Err(SendError::Io(Failure::Protocol(
                            "the daemon closed the connection early",
                        )));
                    }
                }
            }
            let mut sent = usize::try_from(sent).unwrap_or(0);
            // Skip what went out; shorten the first partly sent piece.
            while let Some(v) = self.iov.get_mut(first) {
                if first >= self.count {
                    break;
                }
                if sent >= v.iov_len {
                    sent = sent.saturating_sub(v.iov_len);
                    first = first.saturating_add(1);
                } else {
                    v.iov_base = v.iov_base.cast::<u8>().wrapping_add(sent).cast();
                    v.iov_len = v.iov_len.saturating_sub(sent);
                    break;
                }
            }
        }
        self.count = 0;
        self.used = 0;
        self.last_staged = false;
        Ok(())
    }
}
