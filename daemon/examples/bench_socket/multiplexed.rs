//! The multiplexed load generator: a few event loops (one per core by default), each keeping
//! its share of the in-flight requests going on non-blocking connections with `epoll`, the
//! way `wrk` drives an HTTP server. Each request still gets a fresh connection (socket,
//! connect, send, read the reply, close), exactly the exchange the library makes; what this
//! saves is the load generator's own cost on a machine it shares with the daemon: no thread
//! per client to put to sleep and wake for every reply.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use rampart_proto::{HEADER_LEN, MAX_REPLY_PAYLOAD};

use super::{Call, Tally, decode_outcome, record};

/// One in-flight request.
struct Slot {
    fd: libc::c_int,
    start: Instant,
    got: usize,
    buf: Box<[u8]>,
}

/// One event loop's connections, all to the same socket.
struct Loop<'a> {
    addr: libc::sockaddr_un,
    request: &'a [u8],
    call: &'a Call,
    epoll: libc::c_int,
    slots: Vec<Slot>,
    /// Slots whose connection could not be opened (backlog full): retried on the next turn.
    idle: Vec<usize>,
}

fn errno_text(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

impl<'a> Loop<'a> {
    fn new(socket: &Path, request: &'a [u8], call: &'a Call, in_flight: usize) -> Loop<'a> {
        // SAFETY: all-zero bytes are a valid sockaddr_un.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let path = socket.as_os_str().as_bytes();
        assert!(path.len() < addr.sun_path.len(), "socket path too long");
        for (d, s) in addr.sun_path.iter_mut().zip(path) {
            *d = *s as libc::c_char;
        }
        // SAFETY: plain system call.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(epoll >= 0, "{}", errno_text("epoll_create1"));
        let slots = (0..in_flight)
            .map(|_| Slot {
                fd: -1,
                start: Instant::now(),
                got: 0,
                buf: vec![0u8; HEADER_LEN + MAX_REPLY_PAYLOAD].into_boxed_slice(),
            })
            .collect();
        Loop {
            addr,
            request,
            call,
            epoll,
            slots,
            idle: (0..in_flight).collect(),
        }
    }

    /// Opens slot `i`'s connection and sends the request; an error is counted and the slot
    /// left idle.
    fn start(&mut self, i: usize, t: &mut Tally) {
        let slot = &mut self.slots[i];
        slot.start = Instant::now();
        slot.got = 0;
        // SAFETY: plain system calls on descriptors this loop owns; `addr` and `request`
        // are valid for the lengths given.
        let failed = unsafe {
            let fd = libc::socket(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            );
            if fd < 0 {
                Some(errno_text("socket"))
            } else if libc::connect(
                fd,
                (&raw const self.addr).cast(),
                size_of::<libc::sockaddr_un>() as libc::socklen_t,
            ) != 0
            {
                let e = errno_text("connect");
                libc::close(fd);
                Some(e)
            } else if libc::send(
                fd,
                self.request.as_ptr().cast(),
                self.request.len(),
                libc::MSG_NOSIGNAL,
            ) != self.request.len() as isize
            {
                let e = errno_text("send");
                libc::close(fd);
                Some(e)
            } else {
                let mut ev = libc::epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: i as u64,
                };
                libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, fd, &mut ev);
                slot.fd = fd;
                None
            }
        };
        if let Some(e) = failed {
            t.errors += 1;
            t.first_error.get_or_insert(e);
            self.idle.push(i);
        }
    }

    /// Reads what slot `i` has; returns true when its exchange is over (answered or failed).
    fn read(&mut self, i: usize, t: &mut Tally) -> bool {
        let slot = &mut self.slots[i];
        let n = loop {
            // SAFETY: `buf[got..]` is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    slot.fd,
                    slot.buf[slot.got..].as_mut_ptr().cast(),
                    slot.buf.len() - slot.got,
                    0,
                )
            };
            if n >= 0 {
                break n as usize;
            }
            match std::io::Error::last_os_error().kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => return false,
                _ => {
                    t.errors += 1;
                    t.first_error.get_or_insert_with(|| errno_text("recv"));
                    return true;
                }
            }
        };
        if n == 0 {
            t.errors += 1;
            t.first_error
                .get_or_insert_with(|| "the daemon closed before a whole reply".into());
            return true;
        }
        slot.got += n;
        if slot.got < HEADER_LEN {
            return false;
        }
        let header: &[u8; HEADER_LEN] = slot.buf[..HEADER_LEN].try_into().expect("header");
        let len = match rampart_proto::read_reply_frame_len(header) {
            Ok((_, len)) => len,
            Err(e) => {
                t.errors += 1;
                t.first_error.get_or_insert_with(|| e.to_string());
                return true;
            }
        };
        if slot.got < HEADER_LEN + len {
            return false;
        }
        let outcome = decode_outcome(&slot.buf[HEADER_LEN..HEADER_LEN + len]);
        record(t, self.call, outcome, slot.start);
        true
    }

    fn finish(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if slot.fd >= 0 {
            // SAFETY: the descriptor is this slot's (closing also takes it out of the epoll set).
            unsafe { libc::close(slot.fd) };
            slot.fd = -1;
        }
    }

    fn run(&mut self, stop: &AtomicBool, t: &mut Tally) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; self.slots.len()];
        while !stop.load(Ordering::Relaxed) {
            for i in std::mem::take(&mut self.idle) {
                self.start(i, t);
            }
            // A short timeout: idle slots are retried and the stop flag is seen promptly.
            // SAFETY: `events` is valid for `len` entries.
            let n = unsafe {
                libc::epoll_wait(self.epoll, events.as_mut_ptr(), events.len() as i32, 10)
            };
            for ev in events.iter().take(n.max(0) as usize) {
                let i = ev.u64 as usize;
                if self.read(i, t) {
                    self.finish(i);
                    self.start(i, t);
                }
            }
        }
        for i in 0..self.slots.len() {
            self.finish(i);
        }
    }
}

impl Drop for Loop<'_> {
    fn drop(&mut self) {
        // SAFETY: the epoll descriptor is this loop's.
        unsafe { libc::close(self.epoll) };
    }
}

/// Runs `loops` event loops sharing `in_flight` requests for `seconds`; returns the tally
/// of the measured period and its length.
pub fn run(
    socket: &Path,
    request: Arc<Vec<u8>>,
    call: &'static Call,
    loops: usize,
    in_flight: usize,
    seconds: f64,
) -> (Tally, f64) {
    let loops = loops.clamp(1, in_flight.max(1));
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(loops + 1));
    let workers: Vec<_> = (0..loops)
        .map(|k| {
            // Spread the requests as evenly as they go.
            let share = in_flight / loops + usize::from(k < in_flight % loops);
            let (request, stop, barrier, socket) = (
                request.clone(),
                stop.clone(),
                barrier.clone(),
                socket.to_path_buf(),
            );
            std::thread::spawn(move || {
                let mut l = Loop::new(&socket, &request, call, share);
                barrier.wait();
                let mut t = Tally {
                    lat: Vec::with_capacity(1 << 18),
                    ..Tally::default()
                };
                l.run(&stop, &mut t);
                t
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for w in workers {
        total.merge(w.join().expect("event loop panicked"));
    }
    (total, start.elapsed().as_secs_f64())
}
