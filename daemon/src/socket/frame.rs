//! Reading requests off a connection and writing replies to it.
//!
//! Two ways in: [`peek_request`] takes a request that is already queued whole without
//! consuming it (the common case: the library writes its frame right after connecting), and
//! [`read_request`] reads one as it arrives, for the runtime. Replies are encoded into a
//! fixed stack buffer with their text [`bounded`].

use std::borrow::Cow;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::{Duration, Instant};

use rampart_proto::{HEADER_LEN, Reply, ReplyRef, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// `recv(2)` with `MSG_DONTWAIT` and `flags`; `Ok(None)` when nothing is queued.
pub fn recv_now(
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
/// `sendmsg`), so header and payload usually arrive together.
const FIRST_READ: usize = 4096;

/// Requests up to this size are peeked whole; larger ones are read as they arrive (they
/// may not fit in the socket's buffer at once).
const PEEK_MAX: usize = 64 * 1024;

/// A request found whole in the socket's receive queue, not consumed yet.
pub struct Queued {
    pub request: Request,
    /// Bytes peeked (the request and anything after it), to consume once answered.
    pub len: usize,
}

/// What one peek found.
enum Peeked {
    Whole(Queued),
    /// Not a byte queued yet: the client has connected but not sent.
    Nothing,
    /// Part of a request, a request too large to peek, or the end of the stream: for the
    /// general path.
    Elsewhere,
}

/// The request, once it is queued whole, waiting up to `wait` for a client that has
/// connected but not sent yet; `Ok(None)` when it is not (yet), or the peer closed: the
/// general path then reads or reports it. A complete frame that does not decode is an
/// error.
///
/// The wait is for a client caught between `connect` and `send`: on a busy CPU the kernel
/// often runs the woken decider before the client that woke it. Sleeping here hands the
/// CPU straight back to the client, whose `send` wakes the decider again, which costs far
/// less than passing the connection to the runtime (a worker woken, a blocking thread for
/// the audit write, and the reply from there). Only an empty queue is waited on: a client
/// that sends part of a frame is read as it arrives by the general path.
pub fn peek_request(stream: &StdUnixStream, wait: Duration) -> Result<Option<Queued>, String> {
    // Taken only once the queue is found empty: the common case never reads the clock.
    let mut deadline = None;
    loop {
        match peek_once(stream)? {
            Peeked::Whole(q) => return Ok(Some(q)),
            Peeked::Elsewhere => return Ok(None),
            Peeked::Nothing => {
                let deadline = *deadline.get_or_insert_with(|| Instant::now() + wait);
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !readable_within(stream, left) {
                    return Ok(None);
                }
            }
        }
    }
}

fn peek_once(stream: &StdUnixStream) -> Result<Peeked, String> {
    let mut first = [0u8; FIRST_READ];
    let peek = |buf: &mut [u8]| recv_now(stream, buf, libc::MSG_PEEK).map_err(|e| e.to_string());
    let Some(n) = peek(&mut first)? else {
        return Ok(Peeked::Nothing);
    };
    if n < HEADER_LEN {
        return Ok(Peeked::Elsewhere);
    }
    let header: &[u8; HEADER_LEN] = first[..HEADER_LEN].try_into().expect("HEADER_LEN bytes");
    let (_, len) = rampart_proto::read_frame_len(header).map_err(|e| e.to_string())?;
    let total = HEADER_LEN + len;
    if total <= n {
        let request = rampart_proto::decode_request(&first[..total]).map_err(|e| e.to_string())?;
        return Ok(Peeked::Whole(Queued { request, len: n }));
    }
    if total > PEEK_MAX {
        return Ok(Peeked::Elsewhere);
    }
    let mut whole = vec![0u8; total];
    match peek(&mut whole)? {
        Some(m) if m >= total => {
            let request = rampart_proto::decode_request(&whole).map_err(|e| e.to_string())?;
            Ok(Peeked::Whole(Queued { request, len: m }))
        }
        _ => Ok(Peeked::Elsewhere),
    }
}

/// Sleeps until `stream` has something to read (or its peer hung up), for at most
/// `timeout`; `false` when the time ran out. An interrupted wait counts as readable: the
/// caller peeks again and checks its deadline.
fn readable_within(stream: &StdUnixStream, timeout: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `fd` is one valid pollfd, `ts` a valid timespec; no signal mask is changed.
    let rc = unsafe { libc::ppoll(&mut fd, 1, &ts, std::ptr::null()) };
    rc != 0
}

/// Consumes `len` queued bytes (the answered request). Bytes after the request, if any,
/// are consumed and ignored with it, as the general path does.
pub fn discard(stream: &StdUnixStream, len: usize) {
    let mut small = [0u8; FIRST_READ];
    if len <= small.len() {
        let _ = recv_now(stream, &mut small[..len], 0);
    } else {
        let mut buf = vec![0u8; len];
        let _ = recv_now(stream, &mut buf, 0);
    }
}

/// A connection closed without a byte: a liveness probe (`rampart preload` checking for a
/// daemon), not a bad frame.
pub const NOTHING_SENT: &str = "the peer closed the connection without sending anything";

/// Reads one request as it arrives. Bytes after it (there should be none) are left for
/// [`client_closed`](super::followup) to read and ignore.
pub async fn read_request(stream: &mut UnixStream) -> Result<Request, String> {
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
    frame.truncate(total);
    rampart_proto::decode_request(&frame).map_err(|e| e.to_string())
}

/// The longest deny message or approval id sent on the socket, in bytes: with the frame
/// header, tag, errno and length prefix every reply stays far inside the library's 2 KiB
/// reply buffer (the full text is in the audit trail).
pub const MAX_REPLY_TEXT: usize = 1024;

/// Bytes of the largest reply frame [`encode_reply`] produces.
pub const REPLY_FRAME_MAX: usize = HEADER_LEN + 4 + 4 + 8 + MAX_REPLY_TEXT;

/// `text` cut to at most [`MAX_REPLY_TEXT`] bytes on a character boundary, ending with "…"
/// when it was cut.
pub fn bounded(text: &str) -> Cow<'_, str> {
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
pub fn encode_reply(reply: &Reply, buf: &mut [u8; REPLY_FRAME_MAX]) -> io::Result<usize> {
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

/// Writes `reply` on a connection owned by the runtime.
pub async fn write_reply(stream: &mut UnixStream, reply: &Reply) -> io::Result<()> {
    let mut buf = [0u8; REPLY_FRAME_MAX];
    let n = encode_reply(reply, &mut buf)?;
    stream.write_all(&buf[..n]).await
}

/// How long a blocking reply may wait for room in the client's receive buffer: a reply is
/// at most [`REPLY_FRAME_MAX`] bytes and a fresh connection's buffer is empty, so only a
/// client that is not reading (and has filled it with nothing of ours) ever makes it wait.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes `reply` on a blocking connection, then consumes the `queued` request bytes.
///
/// The request is consumed only after the reply: consuming it frees the client's send
/// buffer, which wakes a client already sleeping in its `recv` for nothing (a cross-CPU
/// wake-up that cost more than the rest of the round trip); after the reply it is awake
/// anyway.
pub fn reply_blocking(stream: &StdUnixStream, reply: &Reply, queued: usize) {
    let mut buf = [0u8; REPLY_FRAME_MAX];
    let n = match encode_reply(reply, &mut buf) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("cannot encode a socket reply: {e}");
            return;
        }
    };
    let mut sent = send_now(stream, &buf[..n]);
    discard(stream, queued);
    if sent < n && stream.set_write_timeout(Some(SEND_TIMEOUT)).is_ok() {
        while sent < n {
            // SAFETY: `buf[sent..n]` is valid for reads.
            let m = unsafe {
                libc::send(
                    stream.as_raw_fd(),
                    buf[sent..n].as_ptr().cast(),
                    n - sent,
                    libc::MSG_NOSIGNAL,
                )
            };
            if m <= 0 {
                if m < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return; // the client went away or stopped reading
            }
            sent += m as usize;
        }
    }
}

/// A non-blocking `send`; returns the bytes sent (0 when none could be).
fn send_now(stream: &StdUnixStream, bytes: &[u8]) -> usize {
    // SAFETY: `bytes` is valid for reads of its length.
    let sent = unsafe {
        libc::send(
            stream.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    sent.max(0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_proto::{EntryPoint, Flags, RequestRef};
    use std::time::Duration;

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

    #[test]
    fn a_queued_request_is_peeked_without_being_consumed() {
        for size in [10, 3000, 20_000] {
            let bytes = frame(size);
            let (mut client, server) = StdUnixStream::pair().unwrap();
            std::io::Write::write_all(&mut client, &bytes).unwrap();
            let q = peek_request(&server, Duration::ZERO)
                .unwrap()
                .expect("queued whole");
            assert_eq!(q.request, rampart_proto::decode_request(&bytes).unwrap());
            assert_eq!(q.len, bytes.len());
            // still queued: a second peek sees it again
            assert!(peek_request(&server, Duration::ZERO).unwrap().is_some());
            discard(&server, q.len);
            assert!(peek_request(&server, Duration::ZERO).unwrap().is_none());
        }
        // half a request is not taken
        let bytes = frame(10);
        let (mut client, server) = StdUnixStream::pair().unwrap();
        std::io::Write::write_all(&mut client, &bytes[..bytes.len() - 1]).unwrap();
        assert!(peek_request(&server, Duration::ZERO).unwrap().is_none());
    }

    #[test]
    fn a_decider_waits_briefly_for_a_request_not_sent_yet() {
        let bytes = frame(10);
        // sent while the peek waits: taken
        let (mut client, server) = StdUnixStream::pair().unwrap();
        let sent = bytes.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            std::io::Write::write_all(&mut client, &sent).unwrap();
            client
        });
        let q = peek_request(&server, Duration::from_secs(5)).unwrap();
        let _client = sender.join().unwrap();
        assert_eq!(
            q.expect("taken once sent").request,
            rampart_proto::decode_request(&bytes).unwrap()
        );
        // never sent: given up after the wait, nothing taken
        let (_client, server) = StdUnixStream::pair().unwrap();
        assert!(
            peek_request(&server, Duration::from_millis(20))
                .unwrap()
                .is_none()
        );
        // closed without a byte, or half a request: not waited for
        for queued in [&[][..], &bytes[..bytes.len() - 1]] {
            let (mut client, server) = StdUnixStream::pair().unwrap();
            std::io::Write::write_all(&mut client, queued).unwrap();
            let _open = (!queued.is_empty()).then_some(client);
            let t = Instant::now();
            assert!(
                peek_request(&server, Duration::from_secs(30))
                    .unwrap()
                    .is_none()
            );
            assert!(t.elapsed() < Duration::from_secs(10), "returned at once");
        }
    }

    #[test]
    fn a_blocking_reply_arrives_whole_and_consumes_the_request() {
        let (mut client, server) = StdUnixStream::pair().unwrap();
        std::io::Write::write_all(&mut client, b"request").unwrap();
        let reply = Reply::Deny {
            errno: libc::EPERM,
            message: "x".repeat(5000),
        };
        reply_blocking(&server, &reply, 7);
        drop(server);
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut client, &mut got).unwrap();
        let (_, len) =
            rampart_proto::read_frame_len(got[..HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(got.len(), HEADER_LEN + len);
        match rampart_proto::decode_reply(&got).unwrap() {
            Reply::Deny { message, .. } => {
                assert!(message.len() <= MAX_REPLY_TEXT && message.ends_with('…'))
            }
            other => panic!("{other:?}"),
        }
    }
}
