//! The configuration snapshot (preload spec R3), taken once by the ELF constructor from the
//! `envp` glibc hands it, into fixed static buffers. Hooks only ever read it.
//!
//! The snapshot also pre-formats the trusted environment entries (`LD_PRELOAD=…` with our own
//! path made absolute, and every `RAMPART_*` variable with its computed value) that
//! [`crate::envp`] injects into every child (R6).

use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicU8, Ordering};

use rampart_proto::Mode;

use crate::cstr::{self, PathBuf};
use crate::report::decimal;

/// Names the child environment must not take from the caller: replaced by the snapshot
/// values (or, for `LD_AUDIT`, dropped).
pub const PROTECTED: [&[u8]; 11] = [
    b"LD_PRELOAD",
    b"LD_AUDIT",
    b"RAMPART_SOCKET",
    b"RAMPART_MODE",
    b"RAMPART_FAIL_OPEN",
    b"RAMPART_TIMEOUT_MS",
    b"RAMPART_APPROVAL_TIMEOUT_MS",
    b"RAMPART_AGENT",
    b"RAMPART_SESSION",
    b"RAMPART_DAEMON_UID",
    b"RAMPART_DEBUG",
];

/// Default deadline for connect + send + reply (`RAMPART_TIMEOUT_MS`).
const DEFAULT_TIMEOUT_MS: u32 = 2_000;
/// Default bound on waiting for a human (`RAMPART_APPROVAL_TIMEOUT_MS`).
const DEFAULT_APPROVAL_TIMEOUT_MS: u32 = 120_000;
/// Longest accepted deadline (one hour).
const MAX_TIMEOUT_MS: u32 = 3_600_000;

/// Room for the trusted entries: a long `LD_PRELOAD` plus the short `RAMPART_*` values.
const ARENA: usize = 12 * 1024;
/// Most trusted entries: `LD_PRELOAD` and the nine `RAMPART_*` variables.
pub const MAX_TRUSTED: usize = 10;

/// A pre-formatted `NAME=value` entry in the arena.
#[derive(Clone, Copy)]
struct Entry {
    offset: usize,
    name_len: usize,
    len: usize,
}

/// The snapshot. Plain data at a fixed address: pointers into it stay valid for the life of
/// the process.
pub struct Config {
    socket: [u8; 108],
    socket_len: usize,
    pub mode: Mode,
    pub fail_open: bool,
    pub debug: bool,
    pub timeout_ms: u32,
    pub approval_timeout_ms: u32,
    pub daemon_uid: Option<u32>,
    agent: [u8; 256],
    agent_len: usize,
    session: [u8; 256],
    session_len: usize,
    /// A configuration error: every exec is refused in enforce mode, with this reason.
    pub problem: Option<&'static str>,
    arena: [u8; ARENA],
    arena_len: usize,
    entries: [Entry; MAX_TRUSTED],
    entry_count: usize,
}

impl Config {
    const EMPTY: Config = Config {
        socket: [0; 108],
        socket_len: 0,
        mode: Mode::Enforce,
        fail_open: false,
        debug: false,
        timeout_ms: DEFAULT_TIMEOUT_MS,
        approval_timeout_ms: DEFAULT_APPROVAL_TIMEOUT_MS,
        daemon_uid: None,
        agent: [0; 256],
        agent_len: 0,
        session: [0; 256],
        session_len: 0,
        problem: None,
        arena: [0; ARENA],
        arena_len: 0,
        entries: [Entry {
            offset: 0,
            name_len: 0,
            len: 0,
        }; MAX_TRUSTED],
        entry_count: 0,
    };

    /// The daemon socket path (absolute, at most 107 bytes).
    pub fn socket(&self) -> &[u8] {
        self.socket.get(..self.socket_len).unwrap_or_default()
    }

    /// The daemon socket path with its NUL, for `sockaddr_un`.
    pub fn socket_with_nul(&self) -> &[u8] {
        self.socket
            .get(..self.socket_len.saturating_add(1))
            .unwrap_or_default()
    }

    pub fn agent(&self) -> &[u8] {
        self.agent.get(..self.agent_len).unwrap_or_default()
    }

    pub fn session(&self) -> &[u8] {
        self.session.get(..self.session_len).unwrap_or_default()
    }

    /// The trusted entries, as `(entry, name length)`: `entry` is `NAME=value`, and
    /// [`Config::trusted_ptr`] gives it as a C string.
    pub fn trusted(&self) -> impl Iterator<Item = (usize, &[u8], usize)> {
        self.entries
            .iter()
            .take(self.entry_count)
            .enumerate()
            .map(|(i, e)| {
                let end = e.offset.saturating_add(e.len);
                (
                    i,
                    self.arena.get(e.offset..end).unwrap_or_default(),
                    e.name_len,
                )
            })
    }

    /// Number of trusted entries.
    pub fn trusted_count(&self) -> usize {
        self.entry_count
    }

    /// Trusted entry `i` as a NUL-terminated `NAME=value` string.
    pub fn trusted_ptr(&self, i: usize) -> *const c_char {
        match self.entries.get(i) {
            Some(e) if i < self.entry_count => self.arena.as_ptr().wrapping_add(e.offset).cast(),
            _ => core::ptr::null(),
        }
    }

    /// Trusted entry `i` split for `setenv`: its value as a C string.
    pub fn trusted_value_ptr(&self, i: usize) -> *const c_char {
        match self.entries.get(i) {
            Some(e) if i < self.entry_count => self
                .arena
                .as_ptr()
                .wrapping_add(e.offset.saturating_add(e.name_len).saturating_add(1))
                .cast(),
            _ => core::ptr::null(),
        }
    }

    /// Appends `NAME=value\0` to the arena and records it. False when the arena is full.
    fn add_entry(&mut self, name: &[u8], value: &[u8]) -> bool {
        if self.entry_count >= MAX_TRUSTED {
            return false;
        }
        let len = name.len().saturating_add(1).saturating_add(value.len());
        let start = self.arena_len;
        let end = start.saturating_add(len);
        let Some(dst) = self.arena.get_mut(start..end.saturating_add(1)) else {
            return false;
        };
        let (n, rest) = dst.split_at_mut(name.len());
        n.copy_from_slice(name);
        let Some((eq, rest)) = rest.split_first_mut() else {
            return false;
        };
        *eq = b'=';
        let (v, nul) = rest.split_at_mut(value.len());
        v.copy_from_slice(value);
        if let Some(z) = nul.first_mut() {
            *z = 0;
        }
        if let Some(slot) = self.entries.get_mut(self.entry_count) {
            *slot = Entry {
                offset: start,
                name_len: name.len(),
                len,
            };
        }
        self.entry_count = self.entry_count.saturating_add(1);
        self.arena_len = end.saturating_add(1);
        true
    }
}

/// The process-wide snapshot. Written once, before `STATE` turns `READY`; read-only after.
struct Slot(UnsafeCell<Config>);

// SAFETY: the only writer is `initialize`, which runs while `STATE` is `BUSY` (claimed with a
// compare-exchange), and readers only look after observing `READY` with acquire ordering.
unsafe impl Sync for Slot {}

static CONFIG: Slot = Slot(UnsafeCell::new(Config::EMPTY));

const UNSET: u8 = 0;
const BUSY: u8 = 1;
const READY: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNSET);

/// glibc calls `.init_array` entries with `(argc, argv, envp)`: the environment exactly as
/// the process received it, before any code of the program could change it.
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: unsafe extern "C" fn(c_int, *const *const c_char, *const *const c_char) =
    constructor;

unsafe extern "C" fn constructor(
    _argc: c_int,
    _argv: *const *const c_char,
    envp: *const *const c_char,
) {
    // SAFETY: glibc passes the process's initial environment.
    unsafe { initialize(envp) };
}

unsafe extern "C" {
    static environ: *const *const c_char;
}

/// The snapshot, taking it first if no constructor has run yet (a hook called during
/// single-threaded start-up, before our constructor: it reads `environ` directly).
pub fn get() -> &'static Config {
    if STATE.load(Ordering::Acquire) != READY {
        // SAFETY: `environ` is the process environment; read, not modified.
        unsafe { initialize(environ) };
        // Another thread may be mid-initialization (possible only if a hook races the
        // constructor): wait for it rather than read a half-written snapshot.
        let mut spins = 0u32;
        while STATE.load(Ordering::Acquire) != READY && spins < 1_000_000 {
            core::hint::spin_loop();
            spins = spins.saturating_add(1);
        }
    }
    // SAFETY: READY was observed (or we initialized it ourselves): no more writes.
    unsafe { &*CONFIG.0.get() }
}

/// Takes the snapshot once (idempotent; later calls do nothing).
unsafe fn initialize(envp: *const *const c_char) {
    if STATE
        .compare_exchange(UNSET, BUSY, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    // SAFETY: we hold BUSY: nobody else writes or reads the slot until READY.
    let config = unsafe { &mut *CONFIG.0.get() };
    // SAFETY: envp is NULL-terminated (glibc's, or `environ`).
    unsafe { fill(config, envp) };
    crate::real::resolve();
    STATE.store(READY, Ordering::Release);
}

/// The value of `name` in `envp`, if set.
unsafe fn lookup<'a>(envp: *const *const c_char, name: &[u8]) -> Option<&'a [u8]> {
    // SAFETY: envp is a NULL-terminated array of C strings.
    unsafe { cstr::args(envp) }
        .iter()
        .find_map(|e| cstr::value_of(e.as_ref(), name))
}

unsafe fn fill(c: &mut Config, envp: *const *const c_char) {
    // SAFETY (for every lookup below): envp is NULL-terminated.
    let var = |name: &[u8]| unsafe { lookup(envp, name) }.filter(|v| !v.is_empty());

    c.mode = match var(b"RAMPART_MODE") {
        Some(b"monitor") => Mode::Monitor,
        // Anything else, including the reference's `disabled`, enforces.
        _ => Mode::Enforce,
    };
    c.fail_open = var(b"RAMPART_FAIL_OPEN") == Some(b"1");
    c.debug = var(b"RAMPART_DEBUG") == Some(b"1");
    c.timeout_ms = var(b"RAMPART_TIMEOUT_MS")
        .and_then(parse_ms)
        .unwrap_or(DEFAULT_TIMEOUT_MS);
    c.approval_timeout_ms = var(b"RAMPART_APPROVAL_TIMEOUT_MS")
        .and_then(parse_ms)
        .unwrap_or(DEFAULT_APPROVAL_TIMEOUT_MS);
    c.daemon_uid = var(b"RAMPART_DAEMON_UID").and_then(parse_u32);

    let agent: &[u8] = var(b"RAMPART_AGENT").unwrap_or(b"preload");
    if !copy_into(&mut c.agent, &mut c.agent_len, agent) {
        c.problem = Some("RAMPART_AGENT is longer than 255 bytes");
    }
    match var(b"RAMPART_SESSION") {
        Some(s) => {
            if !copy_into(&mut c.session, &mut c.session_len, s) {
                c.problem = Some("RAMPART_SESSION is longer than 255 bytes");
            }
        }
        None => {
            let mut digits = [0u8; 20];
            // SAFETY: getpid cannot fail.
            let pid = unsafe { libc::getpid() };
            let mut s: PathBuf<64> = PathBuf::new();
            s.push(b"preload-");
            s.push(decimal(u64::try_from(pid).unwrap_or(0), &mut digits));
            copy_into(&mut c.session, &mut c.session_len, s.as_bytes());
        }
    }

    let mut socket: PathBuf<256> = PathBuf::new();
    if let Some(s) = var(b"RAMPART_SOCKET") {
        socket.push(s);
    } else if let Some(home) = var(b"RAMPART_HOME") {
        socket.push(home);
        socket.push(b"/rampart.sock");
    } else if let Some(home) = var(b"HOME") {
        socket.push(home);
        socket.push(b"/.rampart/rampart.sock");
    }
    if socket.len() == 0 {
        c.problem = Some("no daemon socket: set RAMPART_SOCKET, RAMPART_HOME or HOME");
    } else if !socket.as_bytes().starts_with(b"/") {
        c.problem = Some("RAMPART_SOCKET must be an absolute path");
    } else if socket.len() > 107 || !copy_into(&mut c.socket, &mut c.socket_len, socket.as_bytes())
    {
        c.problem = Some("the daemon socket path is longer than 107 bytes");
    }

    let mut preload: PathBuf<8192> = PathBuf::new();
    // SAFETY: envp is NULL-terminated.
    let initial = unsafe { lookup(envp, b"LD_PRELOAD") }.unwrap_or_default();
    if !trusted_preload(initial, &mut preload) {
        c.problem = Some("cannot determine the library's own path for LD_PRELOAD");
    }

    let mut digits = [0u8; 20];
    let mut ok = c.add_entry(b"LD_PRELOAD", preload.as_bytes());
    let socket_value = PathBuf::<256>::from(c.socket());
    ok &= c.add_entry(b"RAMPART_SOCKET", socket_value.as_bytes());
    ok &= c.add_entry(b"RAMPART_MODE", c.mode.as_str().as_bytes());
    ok &= c.add_entry(b"RAMPART_FAIL_OPEN", if c.fail_open { b"1" } else { b"0" });
    let agent_value = PathBuf::<256>::from(c.agent());
    ok &= c.add_entry(b"RAMPART_AGENT", agent_value.as_bytes());
    let session_value = PathBuf::<256>::from(c.session());
    ok &= c.add_entry(b"RAMPART_SESSION", session_value.as_bytes());
    ok &= c.add_entry(
        b"RAMPART_TIMEOUT_MS",
        decimal(u64::from(c.timeout_ms), &mut digits),
    );
    ok &= c.add_entry(
        b"RAMPART_APPROVAL_TIMEOUT_MS",
        decimal(u64::from(c.approval_timeout_ms), &mut digits),
    );
    ok &= c.add_entry(b"RAMPART_DEBUG", if c.debug { b"1" } else { b"0" });
    if let Some(uid) = c.daemon_uid {
        ok &= c.add_entry(b"RAMPART_DAEMON_UID", decimal(u64::from(uid), &mut digits));
    }
    if !ok {
        c.problem = Some("LD_PRELOAD is too long to re-inject into children");
    }
}

impl<const N: usize> From<&[u8]> for PathBuf<N> {
    fn from(bytes: &[u8]) -> Self {
        let mut b = PathBuf::new();
        b.push(bytes);
        b
    }
}

fn copy_into(dst: &mut [u8], len: &mut usize, src: &[u8]) -> bool {
    if src.len() >= dst.len() {
        return false;
    }
    match dst.get_mut(..src.len()) {
        Some(d) => {
            d.copy_from_slice(src);
            *len = src.len();
            true
        }
        _ => false,
    }
}

fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n
            .saturating_mul(10)
            .saturating_add(u64::from(b.wrapping_sub(b'0')));
    }
    u32::try_from(n).ok()
}

fn parse_ms(s: &[u8]) -> Option<u32> {
    parse_u32(s).filter(|&n| (1..=MAX_TIMEOUT_MS).contains(&n))
}

/// Builds the trusted `LD_PRELOAD` (R6): the value found at start-up with our own entry made
/// absolute (ld.so accepts `:` or space separators; `$LIB`-style tokens are kept as tokens
/// with their directory made absolute). When our library is not among the entries (loaded by
/// other means), it is put first. False when our own path cannot be found.
fn trusted_preload(initial: &[u8], out: &mut PathBuf<8192>) -> bool {
    let mut own: PathBuf<{ cstr::PATH_CAP }> = PathBuf::new();
    if !own_path(&mut own) {
        return false;
    }
    let mut cwd: PathBuf<{ cstr::PATH_CAP }> = PathBuf::new();
    let mut found = false;
    for part in initial
        .split(|&b| b == b':' || b == b' ')
        .filter(|p| !p.is_empty())
    {
        if out.len() > 0 {
            out.push(b":");
        }
        if part.contains(&b'$') {
            if !part.starts_with(b"/") {
                if cwd.len() == 0 {
                    current_dir(&mut cwd);
                }
                out.push(cwd.as_bytes());
                out.push(b"/");
            }
            out.push(part);
            found |= part.ends_with(b"/librampart.so") || part == b"librampart.so";
            continue;
        }
        let mut real: PathBuf<{ cstr::PATH_CAP }> = PathBuf::new();
        if part == own.as_bytes()
            || (!part.starts_with(b"/")
                && canonical(part, &mut real)
                && real.as_bytes() == own.as_bytes())
        {
            out.push(own.as_bytes());
            found = true;
        } else {
            out.push(part);
        }
    }
    if !found {
        let rest = PathBuf::<8192>::from(out.as_bytes());
        out.clear();
        out.push(own.as_bytes());
        if rest.len() > 0 {
            out.push(b":");
            out.push(rest.as_bytes());
        }
    }
    true
}

/// The canonical path of this library (`dladdr` gives it as ld.so loaded it, possibly
/// relative).
fn own_path(out: &mut PathBuf<{ cstr::PATH_CAP }>) -> bool {
    // SAFETY: dladdr only reads our own address; Dl_info is plain data.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    let here = constructor as *const c_void;
    // SAFETY: `info` is a valid out-pointer.
    if unsafe { libc::dladdr(here, &mut info) } == 0 || info.dli_fname.is_null() {
        return false;
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by ld.so.
    let name = unsafe { cstr::bytes(info.dli_fname) };
    // An absolute name is all the cascade needs (and saves a realpath in every process).
    if name.starts_with(b"/") {
        out.clear();
        return out.push(name);
    }
    canonical(name, out)
}

/// `realpath(path)` into `out`.
fn canonical(path: &[u8], out: &mut PathBuf<{ cstr::PATH_CAP }>) -> bool {
    let src = PathBuf::<{ cstr::PATH_CAP }>::from(path);
    if src.len() != path.len() {
        return false;
    }
    let raw = out.raw();
    // SAFETY: src is NUL-terminated; raw holds PATH_MAX + 1 bytes as realpath requires.
    let r = unsafe { libc::realpath(src.as_ptr(), raw.as_mut_ptr().cast()) };
    if r.is_null() {
        return false;
    }
    let len = raw.iter().position(|&b| b == 0).unwrap_or(0);
    out.set_len(len);
    len > 0
}

/// The working directory into `out` (empty when unknown).
pub fn current_dir<const N: usize>(out: &mut PathBuf<N>) {
    let raw = out.raw();
    // SAFETY: raw is a writable buffer of N bytes.
    let r = unsafe { libc::getcwd(raw.as_mut_ptr().cast(), N) };
    if r.is_null() {
        out.set_len(0);
        return;
    }
    let len = raw.iter().position(|&b| b == 0).unwrap_or(0);
    out.set_len(len);
}
