//! The child's environment (preload spec R6, §6.2): every exec we let through starts the
//! child with the trusted `LD_PRELOAD` and `RAMPART_*` values of the snapshot, the caller's
//! values of those names dropped, and `LD_AUDIT` removed. Environments that carry an
//! explicit `envp` get a rebuilt pointer array on the stack (no string copies, no heap);
//! `system` and `popen`, which read `environ`, get `environ` repaired first.

use core::ffi::c_char;

use crate::config::{Config, PROTECTED};
use crate::cstr::{self, CArg};

/// Most entries a rebuilt environment holds (8 KiB of pointers on the stack). A caller
/// environment beyond that is refused rather than copied to the heap, which would leak in a
/// `vfork` parent.
pub const ENV_CAP: usize = 1024;

/// The caller's environment has more entries than [`ENV_CAP`] allows.
pub struct TooManyEntries;

fn name_of(entry: &[u8]) -> &[u8] {
    match entry.iter().position(|&b| b == b'=') {
        Some(i) => entry.get(..i).unwrap_or(entry),
        None => entry,
    }
}

fn protected(entry: &[u8]) -> bool {
    let name = name_of(entry);
    PROTECTED.contains(&name)
}

/// Whether `envp` lost or changed what the child must get (flag `env-scrubbed`): the
/// trusted `LD_PRELOAD` missing, a protected name carrying another value, or `LD_AUDIT` set.
/// `RAMPART_*` variables that are merely absent (a plain `LD_PRELOAD=librampart.so` start)
/// do not count.
pub fn scrubbed(config: &Config, envp: &[CArg]) -> bool {
    let mut preload_kept = false;
    for e in envp {
        let entry = e.as_ref();
        if !protected(entry) {
            continue;
        }
        if config.trusted().any(|(_, trusted, _)| trusted == entry) {
            preload_kept |= entry.starts_with(b"LD_PRELOAD=");
        } else {
            return true;
        }
    }
    !preload_kept
}

/// Whether `environ` already holds every trusted entry and nothing it must not.
fn complete(config: &Config, envp: &[CArg]) -> bool {
    !scrubbed(config, envp)
        && config
            .trusted()
            .all(|(_, trusted, _)| envp.iter().any(|e| e.as_ref() == trusted))
}

/// Calls `run` with the child environment built from `envp` (NULL counts as empty).
/// Kept out of line so its 8 KiB array never shares a frame with the decision's buffers.
#[inline(never)]
pub fn with_child_env<R>(
    config: &Config,
    envp: *const *const c_char,
    run: impl FnOnce(*const *const c_char) -> R,
) -> Result<R, TooManyEntries> {
    let mut out: [*const c_char; ENV_CAP] = [core::ptr::null(); ENV_CAP];
    let mut n = 0usize;
    // SAFETY: envp is NULL or a NULL-terminated array the caller handed to the exec call.
    for e in unsafe { cstr::args(envp) } {
        if protected(e.as_ref()) {
            continue;
        }
        let Some(slot) = out.get_mut(n) else {
            return Err(TooManyEntries);
        };
        *slot = e.0;
        n = n.saturating_add(1);
    }
    for i in 0..config.trusted_count() {
        let Some(slot) = out.get_mut(n) else {
            return Err(TooManyEntries);
        };
        *slot = config.trusted_ptr(i);
        n = n.saturating_add(1);
    }
    // The terminator.
    match out.get_mut(n) {
        Some(slot) => *slot = core::ptr::null(),
        None => return Err(TooManyEntries),
    }
    Ok(run(out.as_ptr()))
}

unsafe extern "C" {
    static environ: *const *const c_char;
}

/// The current `environ` as entries.
pub fn current() -> &'static [CArg] {
    // SAFETY: environ is the live, NULL-terminated process environment.
    unsafe { cstr::args(environ) }
}

/// Brings `environ` in line with the trusted values before `system`/`popen` (which spawn
/// `/bin/sh` with `environ`): `setenv` what is missing or changed, `unsetenv` `LD_AUDIT`.
/// Runs in an ordinary context (these functions allocate themselves), never in a `vfork`
/// child.
pub fn repair_environ(config: &Config) {
    if complete(config, current()) {
        return;
    }
    for (i, trusted, name_len) in config.trusted() {
        let present = current().iter().any(|e| e.as_ref() == trusted);
        if present {
            continue;
        }
        let mut name = [0u8; 64];
        let Some(src) = trusted.get(..name_len) else {
            continue;
        };
        let Some(dst) = name.get_mut(..name_len) else {
            continue;
        };
        dst.copy_from_slice(src);
        // SAFETY: name is NUL-terminated (zero-filled beyond name_len); the value pointer is
        // a NUL-terminated string in the snapshot.
        unsafe { libc::setenv(name.as_ptr().cast(), config.trusted_value_ptr(i), 1) };
    }
    if current().iter().any(|e| name_of(e.as_ref()) == b"LD_AUDIT") {
        // SAFETY: a NUL-terminated name.
        unsafe { libc::unsetenv(c"LD_AUDIT".as_ptr()) };
    }
}
