//! `PATH` resolution for `execvp`, `execvpe`, `execlp` and `posix_spawnp`, with glibc's rules
//! (preload spec §3.2): the caller's *current* `environ` `PATH` (not the envp argument),
//! `/bin:/usr/bin` when unset, an empty element meaning the working directory, names with a
//! `/` not searched. Candidates that do not exist are skipped without asking the daemon.

use core::ffi::c_char;

use crate::cstr::{self, PATH_CAP, PathBuf};

unsafe extern "C" {
    static environ: *const *const c_char;
}

/// The `PATH` of the current `environ` (glibc's default when unset).
fn current_path() -> &'static [u8] {
    // SAFETY: environ is the live process environment, NULL-terminated; we only read it, in
    // the hook's own thread, as glibc's execvp does.
    let entries = unsafe { cstr::args(environ) };
    entries
        .iter()
        .find_map(|e| cstr::value_of(e.as_ref(), b"PATH"))
        .map(|v| {
            // SAFETY: the bytes live as long as the environment entry, which outlives the hook.
            unsafe { core::slice::from_raw_parts(v.as_ptr(), v.len()) }
        })
        .unwrap_or(b"/bin:/usr/bin")
}

/// What a `stat` of a candidate says.
pub enum Probe {
    /// A regular file we may execute, with its `stat`.
    Runnable(libc::stat),
    /// Does not exist (or a path component is not a directory, …): glibc moves on.
    Missing,
    /// Exists but cannot be executed (EACCES, a directory): glibc remembers it and moves on.
    Denied,
}

/// `stat` + executability of a NUL-terminated path.
pub fn probe(path: *const c_char) -> Probe {
    // SAFETY: stat is plain data.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: path is NUL-terminated; st is a valid out-pointer.
    if unsafe { libc::stat(path, &mut st) } != 0 {
        // SAFETY: errno slot of this thread.
        return match unsafe { *libc::__errno_location() } {
            libc::EACCES => Probe::Denied,
            _ => Probe::Missing,
        };
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Probe::Denied;
    }
    // SAFETY: path is NUL-terminated.
    if unsafe { libc::access(path, libc::X_OK) } != 0 {
        return Probe::Denied;
    }
    Probe::Runnable(st)
}

/// Errors after which glibc's `PATH` loop tries the next directory.
pub fn continues_search(errno: i32) -> bool {
    matches!(
        errno,
        libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT | libc::EACCES
    )
}

/// What trying one candidate concluded.
pub enum Step<R> {
    /// The call is over (it ran, was denied, or failed in a way that ends the loop).
    Done(R),
    /// The real call failed with this error, one glibc's loop continues past.
    Next(i32),
}

/// The candidates for `file`, one directory of `PATH` after the other.
pub struct Search<'f> {
    file: &'f [u8],
    rest: Option<&'static [u8]>,
    /// Some candidate existed but was not executable: the final error is EACCES.
    saw_denied: bool,
}

impl<'f> Search<'f> {
    pub fn new(file: &'f [u8]) -> Search<'f> {
        Search {
            file,
            rest: Some(current_path()),
            saw_denied: false,
        }
    }

    /// The next existing, executable candidate, written into `out`; `None` when the
    /// directories are exhausted.
    fn next_runnable(&mut self, out: &mut PathBuf<PATH_CAP>) -> Option<libc::stat> {
        loop {
            let rest = self.rest?;
            let (dir, after) = match rest.iter().position(|&b| b == b':') {
                Some(i) => (
                    rest.get(..i).unwrap_or_default(),
                    Some(rest.get(i.saturating_add(1)..).unwrap_or_default()),
                ),
                None => (rest, None),
            };
            self.rest = after;
            out.clear();
            let fits = if dir.is_empty() {
                // An empty element is the working directory; glibc tries the bare name.
                out.push(self.file)
            } else {
                out.push(dir) && (dir.ends_with(b"/") || out.push(b"/")) && out.push(self.file)
            };
            if !fits {
                continue;
            }
            match probe(out.as_ptr()) {
                Probe::Runnable(st) => return Some(st),
                Probe::Denied => self.saw_denied = true,
                Probe::Missing => {}
            }
        }
    }

    /// glibc's loop: `try_one` gets each existing, executable candidate (its path, as bytes
    /// and as a C string, and its `stat`) and either finishes the call or names an error
    /// glibc continues past. Returns what `try_one` finished with, or the error for the
    /// caller when no candidate ran.
    pub fn run<R>(
        mut self,
        mut try_one: impl FnMut(&[u8], *const c_char, &libc::stat) -> Step<R>,
    ) -> Result<R, i32> {
        let mut candidate: PathBuf<PATH_CAP> = PathBuf::new();
        while let Some(st) = self.next_runnable(&mut candidate) {
            match try_one(candidate.as_bytes(), candidate.as_ptr(), &st) {
                Step::Done(r) => return Ok(r),
                Step::Next(e) => self.saw_denied |= e == libc::EACCES,
            }
        }
        Err(self.final_errno())
    }

    /// The error glibc returns when no candidate ran.
    fn final_errno(&self) -> i32 {
        if self.saw_denied {
            libc::EACCES
        } else {
            libc::ENOENT
        }
    }
}
