//! One decision for one exec attempt: inspect the target, ask the daemon, and turn the answer
//! (or the lack of one) into allow or deny according to the mode and the failure classes of
//! preload spec R4. Also the lines the user sees (`rampart: blocked: …`,
//! `rampart: waiting for approval …`).

use core::ffi::c_char;
use core::sync::atomic::{AtomicU64, Ordering};

use rampart_proto::{EntryPoint, Flags, Mode, RequestRef};

use crate::client::{self, Answer, Failure, REPLY_CAP};
use crate::config::{self, Config};
use crate::cstr::{CArg, PATH_CAP, PathBuf};
use crate::envp;
use crate::inspect::{self, Target};
use crate::report::Line;

/// One exec attempt as the hook sees it.
pub struct Attempt<'a> {
    pub entry: EntryPoint,
    /// The executable as it will be run (absolute, or relative to the working directory).
    pub path: &'a [u8],
    /// The same as a C string for inspection; NULL when there is nothing to inspect
    /// (`system`/`popen`, or a target that could not be stat'ed).
    pub inspect_path: *const c_char,
    /// Its `stat`, when known.
    pub stat: Option<&'a libc::stat>,
    /// The name the caller asked for (a path, a `PATH` name, `fd:N`).
    pub requested: &'a [u8],
    pub argv: &'a [CArg],
    /// The environment the caller meant the child to have (before re-injection).
    pub env: &'a [CArg],
    /// Flags the hook already knows (`memfd`, `relative-unresolved`).
    pub flags: Flags,
}

impl<'a> Attempt<'a> {
    /// A candidate found on `PATH` for the name `requested`.
    pub fn on_path(
        entry: EntryPoint,
        path: &'a [u8],
        path_c: *const c_char,
        stat: &'a libc::stat,
        requested: &'a [u8],
        argv: &'a [CArg],
        env: &'a [CArg],
    ) -> Attempt<'a> {
        Attempt {
            entry,
            path,
            inspect_path: path_c,
            stat: Some(stat),
            requested,
            argv,
            env,
            flags: Flags::empty(),
        }
    }
}

/// The outcome for the hook.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refused: fail with EPERM in the function's shape.
    Deny,
}

/// Decides `attempt`. Kept out of line so its buffers (working directory, reply, send batch,
/// inspection) are released before the caller builds the child environment.
#[inline(never)]
pub fn decide(config: &Config, attempt: &Attempt<'_>) -> Verdict {
    if let Some(problem) = config.problem {
        return failed(config, attempt, Failure::Protocol(problem), true);
    }
    if just_denied(attempt) {
        debug(
            config,
            attempt,
            attempt.flags,
            b"deny (same program, just denied)",
        );
        return Verdict::Deny;
    }
    let mut target = Target::new();
    target.flags = attempt.flags;
    if envp::scrubbed(config, attempt.env) {
        target.flags |= Flags::ENV_SCRUBBED;
    }
    if let (false, Some(st)) = (attempt.inspect_path.is_null(), attempt.stat) {
        inspect::inspect(attempt.inspect_path, st, &mut target);
    }

    // The working directory, and the path made absolute against it in the same buffer.
    let mut where_: PathBuf<PATH_CAP> = PathBuf::new();
    config::current_dir(&mut where_);
    let cwd_len = where_.len();
    let absolute = attempt.path.starts_with(b"/") || attempt.entry.is_shell();
    let mut relative = attempt.path;
    while let Some(rest) = relative.strip_prefix(b"./") {
        relative = rest;
    }
    let joined = absolute || (where_.push(b"/") && where_.push(relative));
    if !joined {
        where_.truncate(cwd_len);
        target.flags |= Flags::RELATIVE_UNRESOLVED;
    }
    let full = where_.as_bytes();
    let cwd = full.get(..cwd_len).unwrap_or_default();
    let path = if absolute || full.len() == cwd_len {
        attempt.path
    } else {
        full
    };

    // SAFETY: these calls cannot fail.
    let (pid, ppid, uid) = unsafe { (libc::getpid(), libc::getppid(), libc::getuid()) };
    let request = RequestRef {
        entry: attempt.entry,
        flags: target.flags,
        mode: config.mode,
        pid,
        ppid,
        uid,
        path,
        requested: attempt.requested,
        cwd,
        agent: config.agent(),
        session: config.session(),
        interpreter: target.interpreter(),
        argv: attempt.argv,
    };
    let mut reply = [0u8; REPLY_CAP];
    let answer = client::ask(config, &request, &mut reply, |id| {
        Line::new()
            .text(b"waiting for approval ")
            .excerpt(id, 64)
            .text(b": ")
            .command(attempt.argv)
            .emit();
    });
    match answer {
        Ok(Answer::Allow) => {
            debug(config, attempt, target.flags, b"allow");
            Verdict::Allow
        }
        Ok(Answer::Deny { .. }) if config.mode == Mode::Monitor => {
            debug(config, attempt, target.flags, b"deny (monitor: allowed)");
            Verdict::Allow
        }
        Ok(Answer::Deny { message }) => {
            debug(config, attempt, target.flags, b"deny");
            remember_denial(attempt);
            Line::new()
                .text(b"blocked: ")
                .command(attempt.argv)
                .text(" — ".as_bytes())
                .excerpt(message, 300)
                .emit();
            Verdict::Deny
        }
        Err(failure) => failed(config, attempt, failure, false),
    }
}

/// The last denial in this process (a hash of pid, file identity and argv), and when.
///
/// CPython and dash keep looping over `PATH` after EPERM, and on merged-/usr systems
/// `/usr/bin/x` and `/bin/x` are the same file: the second candidate is refused without
/// asking again, so the user sees one line and answers at most one approval. A `vfork`
/// child writes this into its parent's memory, which is harmless: a match needs the same
/// pid, file and argv contents within two seconds, and a mismatch only means asking again.
static LAST_DENIAL: AtomicU64 = AtomicU64::new(0);
static LAST_DENIAL_AT_MS: AtomicU64 = AtomicU64::new(0);
const DENIAL_MEMORY_MS: u64 = 2_000;

/// Longest argv (in bytes) the denial memory keys on; longer ones are always asked about.
const DENIAL_KEY_MAX_BYTES: usize = 64 * 1024;

fn denial_key(attempt: &Attempt<'_>) -> Option<u64> {
    let st = attempt.stat?;
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    // FNV-1a over the pid, the file's identity and the argv bytes (each entry followed by
    // its length, so entry boundaries count); 0 is reserved for "none".
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |bytes: &[u8]| {
        for &byte in bytes {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    mix(&u64::try_from(pid).unwrap_or(0).to_le_bytes());
    mix(&st.st_dev.to_le_bytes());
    mix(&st.st_ino.to_le_bytes());
    let mut total = 0usize;
    for arg in attempt.argv {
        let bytes = arg.as_ref();
        total = total.saturating_add(bytes.len());
        if total > DENIAL_KEY_MAX_BYTES {
            return None;
        }
        mix(bytes);
        mix(&(bytes.len() as u64).to_le_bytes());
    }
    Some(h.max(1))
}

/// Whether `attempt` repeats the last denial. The argv is hashed only when a denial is
/// recent, so ordinary execs pay one atomic load and a clock read.
fn just_denied(attempt: &Attempt<'_>) -> bool {
    let recent = client::monotonic_ms().saturating_sub(LAST_DENIAL_AT_MS.load(Ordering::Acquire))
        < DENIAL_MEMORY_MS;
    recent && denial_key(attempt) == Some(LAST_DENIAL.load(Ordering::Acquire))
}

fn remember_denial(attempt: &Attempt<'_>) {
    if let Some(key) = denial_key(attempt) {
        LAST_DENIAL_AT_MS.store(client::monotonic_ms(), Ordering::Release);
        LAST_DENIAL.store(key, Ordering::Release);
    }
}

/// No verdict from the daemon: monitor allows; enforce denies, except that
/// `RAMPART_FAIL_OPEN=1` lets an unavailable or silent daemon allow.
fn failed(config: &Config, attempt: &Attempt<'_>, failure: Failure, local: bool) -> Verdict {
    let opens = config.mode == Mode::Monitor
        || (config.fail_open && matches!(failure, Failure::Unavailable | Failure::Timeout));
    if opens {
        debug(config, attempt, attempt.flags, b"no verdict (failing open)");
        return Verdict::Allow;
    }
    let mut line = Line::new();
    line.text(b"blocked: ")
        .command(attempt.argv)
        .text(" — ".as_bytes());
    match failure {
        Failure::Unavailable => line
            .text(b"no rampart daemon at ")
            .excerpt(config.socket(), 120)
            .text(b" (failing closed; start `rampart serve` or use `rampart preload`)"),
        Failure::Timeout => line
            .text(b"no answer from the rampart daemon within ")
            .number(u64::from(config.timeout_ms))
            .text(b" ms (failing closed)"),
        Failure::Protocol(why) if local => line
            .text(b"configuration error: ")
            .text(why.as_bytes())
            .text(b" (failing closed)"),
        Failure::Protocol(why) => line.text(why.as_bytes()).text(b" (failing closed)"),
    };
    line.emit();
    Verdict::Deny
}

/// `RAMPART_DEBUG=1`: one line per decision; argv shown as a count and a byte total only,
/// never its content (commands carry secrets).
fn debug(config: &Config, attempt: &Attempt<'_>, flags: Flags, outcome: &[u8]) {
    if !config.debug {
        return;
    }
    let bytes = attempt
        .argv
        .iter()
        .fold(0u64, |n, a| n.saturating_add(a.as_ref().len() as u64));
    Line::new()
        .text(b"debug: ")
        .text(attempt.entry.as_str().as_bytes())
        .text(b" ")
        .excerpt(attempt.path, 160)
        .text(b" argc=")
        .number(attempt.argv.len() as u64)
        .text(b" bytes=")
        .number(bytes)
        .text(b" flags=")
        .number(u64::from(flags.bits()))
        .text(b" -> ")
        .text(outcome)
        .emit();
}
