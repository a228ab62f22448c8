//! The exported entry points (preload spec R1), one per glibc function, and the three routes
//! they share: a file run by path, a name searched on `PATH`, and a shell command
//! (`system`/`popen`). Each keeps its function's failure shape (R9) and errno discipline
//! (R10): errno is saved on entry and restored before the real call; a deny sets EPERM.
//!
//! Inside libc these functions call hidden internal symbols, so each needs its own hook:
//! hooking `execve` alone catches nothing routed through `execv` or `posix_spawn`.

use core::ffi::{c_char, c_int, c_long};
use core::sync::atomic::{AtomicU32, Ordering};

use rampart_proto::{EntryPoint, Flags};

use crate::config::{self, Config};
use crate::cstr::{self, CArg, PATH_CAP, PathBuf};
use crate::envp;
use crate::gate::{self, Attempt, Verdict};
use crate::inspect;
use crate::real;
use crate::report::{Line, decimal};
use crate::search::{self, Search, Step};

type Env = *const *const c_char;

unsafe extern "C" {
    static environ: *const *const c_char;
}

fn current_environ() -> Env {
    // SAFETY: reading the pointer value of the process environment.
    unsafe { environ }
}

fn errno() -> c_int {
    // SAFETY: this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn set_errno(e: c_int) {
    // SAFETY: this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// What happened to an attempt the gate looked at.
enum Outcome<R> {
    /// The real function was called and returned this.
    Ran(R),
    /// Refused (policy, failure class, or an environment too large to rebuild).
    Denied,
    /// The real function is missing (R9: EIO in the function's shape).
    Missing,
}

/// Which real functions were already reported missing (one warning each).
static WARNED: AtomicU32 = AtomicU32::new(0);

fn missing(name: &str, bit: u32) {
    if WARNED.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
        Line::new()
            .text(b"warning: the real ")
            .text(name.as_bytes())
            .text(b" is not available; such calls fail with EIO")
            .emit();
    }
}

/// The failure of an `int`-returning entry point whose real function is missing: warned
/// once, -1 with EIO.
fn unavailable(name: &str, bit: u32) -> c_int {
    missing(name, bit);
    set_errno(libc::EIO);
    -1
}

/// Asks about `attempt`; on allow restores `saved` errno and runs `call` with the rebuilt
/// child environment.
fn guarded<R>(
    config: &Config,
    attempt: &Attempt<'_>,
    saved: c_int,
    child_env: Env,
    call: impl FnOnce(Env) -> R,
) -> Outcome<R> {
    if gate::decide(config, attempt) == Verdict::Deny {
        return Outcome::Denied;
    }
    set_errno(saved);
    match envp::with_child_env(config, child_env, call) {
        Ok(r) => Outcome::Ran(r),
        Err(envp::TooManyEntries) => {
            Line::new()
                .text(b"blocked: ")
                .command(attempt.argv)
                .text(" — the environment has too many entries to re-inject rampart".as_bytes())
                .emit();
            Outcome::Denied
        }
    }
}

/// `stat` of a path the caller gave; `Err(errno)` when it does not exist, which is returned
/// at once with no query and no real call (R7).
fn exists(path: *const c_char) -> Result<Option<libc::stat>, c_int> {
    // SAFETY: stat is plain data.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: path is NUL-terminated.
    if unsafe { libc::stat(path, &mut st) } == 0 {
        return Ok(Some(st));
    }
    match errno() {
        e @ (libc::ENOENT | libc::ENOTDIR) => Err(e),
        // Anything else (EACCES on a directory, ELOOP…): ask anyway; the real call will
        // report the error itself.
        _ => Ok(None),
    }
}

/// Route 1: a file run by path (`execve`, `execv`, `execl`, `execle`, and `syscall`).
fn exec_file(
    entry: EntryPoint,
    path: *const c_char,
    argv: Env,
    child_env: Env,
    call: impl FnOnce(Env) -> c_int,
) -> c_int {
    let saved = errno();
    let config = config::get();
    if path.is_null() {
        set_errno(libc::EFAULT);
        return -1;
    }
    let st = match exists(path) {
        Ok(st) => st,
        Err(e) => {
            set_errno(e);
            return -1;
        }
    };
    // SAFETY: path is NUL-terminated; argv and the environment are NULL-terminated arrays
    // that live for the whole call.
    let (bytes, argv, env) =
        unsafe { (cstr::bytes(path), cstr::args(argv), cstr::args(child_env)) };
    let attempt = Attempt {
        entry,
        path: bytes,
        inspect_path: path,
        stat: st.as_ref(),
        requested: bytes,
        argv,
        env,
        flags: Flags::empty(),
    };
    exec_shape(guarded(config, &attempt, saved, child_env, call))
}

fn exec_shape(outcome: Outcome<c_int>) -> c_int {
    match outcome {
        Outcome::Ran(r) => r,
        Outcome::Denied => {
            set_errno(libc::EPERM);
            -1
        }
        Outcome::Missing => {
            set_errno(libc::EIO);
            -1
        }
    }
}

/// The real `execve`, or `Missing`.
fn real_execve(path: *const c_char, argv: Env) -> impl FnOnce(Env) -> c_int {
    move |env| match real::get().execve {
        // SAFETY: glibc's execve with the caller's path and argv and our environment.
        Some(f) => unsafe { f(path, argv, env) },
        None => unavailable("execve", 1),
    }
}

/// Route 2: a name searched on `PATH` (`execvp`, `execvpe`, `execlp`), with glibc's loop:
/// every existing candidate is asked about and tried in turn; ENOEXEC runs the file with
/// `/bin/sh` (no second question: it is the same program).
fn exec_search(entry: EntryPoint, file: *const c_char, argv: Env, child_env: Env) -> c_int {
    let saved = errno();
    // SAFETY: file is NULL or NUL-terminated.
    let name = unsafe { cstr::bytes(file) };
    if name.is_empty() {
        set_errno(libc::ENOENT);
        return -1;
    }
    if name.contains(&b'/') {
        let r = exec_file(entry, file, argv, child_env, real_execve(file, argv));
        if r == -1 && errno() == libc::ENOEXEC {
            return run_with_shell(file, argv, child_env);
        }
        return r;
    }
    let config = config::get();
    // SAFETY: argv and the environment are NULL-terminated arrays.
    let (args, env) = unsafe { (cstr::args(argv), cstr::args(child_env)) };
    let found = Search::new(name).run(|path, path_c, st| {
        let attempt = Attempt::on_path(entry, path, path_c, st, name, args, env);
        match guarded(
            config,
            &attempt,
            saved,
            child_env,
            real_execve(path_c, argv),
        ) {
            Outcome::Ran(_) => {}
            other => return Step::Done(exec_shape(other)),
        }
        match errno() {
            libc::ENOEXEC => Step::Done(run_with_shell(path_c, argv, child_env)),
            e if search::continues_search(e) => Step::Next(e),
            _ => Step::Done(-1),
        }
    });
    found.unwrap_or_else(|e| {
        set_errno(e);
        -1
    })
}

/// Most arguments the ENOEXEC fallback passes on (its array lives on the stack).
const SHELL_FALLBACK_ARGS: usize = 256;

/// glibc's ENOEXEC fallback: `/bin/sh path args…` (argv[0] dropped), already decided.
#[inline(never)]
fn run_with_shell(path: *const c_char, argv: Env, child_env: Env) -> c_int {
    let config = config::get();
    let mut shell_argv: [*const c_char; SHELL_FALLBACK_ARGS] =
        [core::ptr::null(); SHELL_FALLBACK_ARGS];
    // SAFETY: argv is a NULL-terminated array.
    let args = unsafe { cstr::args(argv) };
    let rest = args.get(1..).unwrap_or_default();
    if rest.len().saturating_add(3) > SHELL_FALLBACK_ARGS {
        set_errno(libc::E2BIG);
        return -1;
    }
    let head = [c"/bin/sh".as_ptr(), path];
    for (slot, p) in shell_argv
        .iter_mut()
        .zip(head.into_iter().chain(rest.iter().map(|a| a.0)))
    {
        *slot = p;
    }
    let shell_argv = shell_argv.as_ptr();
    match envp::with_child_env(
        config,
        child_env,
        real_execve(c"/bin/sh".as_ptr(), shell_argv),
    ) {
        Ok(r) => r,
        Err(_) => {
            set_errno(libc::E2BIG);
            -1
        }
    }
}

/// Route 3: a shell command (`system`, `popen`): the command string is the subject, the
/// program `/bin/sh`.
fn shell_gate(entry: EntryPoint, command: *const c_char, saved: c_int) -> Verdict {
    let config = config::get();
    let argv = [CArg(command)];
    let attempt = Attempt {
        entry,
        path: b"/bin/sh",
        inspect_path: core::ptr::null(),
        stat: None,
        requested: b"/bin/sh",
        argv: &argv,
        env: envp::current(),
        flags: Flags::empty(),
    };
    let verdict = gate::decide(config, &attempt);
    if verdict == Verdict::Allow {
        envp::repair_environ(config);
        set_errno(saved);
    }
    verdict
}

/// Route 4: posix_spawn of a path. Returns an error number, as posix_spawn does.
fn spawn_file(
    entry: EntryPoint,
    pid: *mut libc::pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    let saved = errno();
    let config = config::get();
    if path.is_null() {
        return libc::EFAULT;
    }
    let st = match exists(path) {
        Ok(st) => st,
        Err(e) => {
            set_errno(saved);
            return e;
        }
    };
    // SAFETY: as in exec_file.
    let (bytes, args, env) = unsafe {
        (
            cstr::bytes(path),
            cstr::args(argv.cast()),
            cstr::args(envp.cast()),
        )
    };
    // A relative path with file actions may be resolved after a chdir we cannot see.
    let flags = if !bytes.starts_with(b"/") && !actions.is_null() {
        Flags::RELATIVE_UNRESOLVED
    } else {
        Flags::empty()
    };
    let attempt = Attempt {
        entry,
        path: bytes,
        inspect_path: path,
        stat: st.as_ref(),
        requested: bytes,
        argv: args,
        env,
        flags,
    };
    let outcome = guarded(config, &attempt, saved, envp.cast(), |env| {
        real_spawn(pid, path, actions, attr, argv, env)
    });
    spawn_shape(outcome, saved)
}

fn real_spawn(
    pid: *mut libc::pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    env: Env,
) -> Outcome<c_int> {
    match real::get().posix_spawn {
        // SAFETY: glibc's posix_spawn with the caller's arguments and our environment; the
        // environment array outlives the call (glibc waits for the child's exec).
        Some(f) => Outcome::Ran(unsafe { f(pid, path, actions, attr, argv, env.cast()) }),
        None => {
            missing("posix_spawn", 2);
            Outcome::Missing
        }
    }
}

fn spawn_shape(outcome: Outcome<Outcome<c_int>>, saved: c_int) -> c_int {
    let r = match outcome {
        Outcome::Ran(Outcome::Ran(r)) => r,
        Outcome::Ran(Outcome::Missing) | Outcome::Missing => libc::EIO,
        Outcome::Ran(Outcome::Denied) | Outcome::Denied => libc::EPERM,
    };
    set_errno(saved);
    r
}

/// Route 5: posix_spawnp: `PATH` search, then the real posix_spawn on the candidate.
fn spawn_search(
    pid: *mut libc::pid_t,
    file: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    let saved = errno();
    // SAFETY: file is NULL or NUL-terminated.
    let name = unsafe { cstr::bytes(file) };
    if name.is_empty() {
        return libc::ENOENT;
    }
    if name.contains(&b'/') {
        return spawn_file(
            EntryPoint::PosixSpawnp,
            pid,
            file,
            actions,
            attr,
            argv,
            envp,
        );
    }
    let config = config::get();
    // SAFETY: NULL-terminated arrays.
    let (args, env) = unsafe { (cstr::args(argv.cast()), cstr::args(envp.cast())) };
    let entry = EntryPoint::PosixSpawnp;
    let found = Search::new(name).run(|path, path_c, st| {
        let attempt = Attempt::on_path(entry, path, path_c, st, name, args, env);
        let outcome = guarded(config, &attempt, saved, envp.cast(), |env| {
            real_spawn(pid, path_c, actions, attr, argv, env)
        });
        match outcome {
            Outcome::Ran(Outcome::Ran(r)) if r != 0 && search::continues_search(r) => Step::Next(r),
            other => Step::Done(spawn_shape(other, saved)),
        }
    });
    set_errno(saved);
    found.unwrap_or_else(|e| e)
}

/// `/proc/self/fd/N` for `fd`; what it links to goes into `target` (empty when unknown).
fn descriptor_path(fd: c_int, target: &mut PathBuf<PATH_CAP>) -> PathBuf<64> {
    let mut link: PathBuf<64> = PathBuf::new();
    let mut digits = [0u8; 20];
    link.push(b"/proc/self/fd/");
    link.push(decimal(u64::try_from(fd).unwrap_or(u64::MAX), &mut digits));
    let raw = target.raw();
    // SAFETY: link is NUL-terminated; raw is writable for its length.
    let n = unsafe {
        libc::readlink(
            link.as_ptr(),
            raw.as_mut_ptr().cast(),
            raw.len().saturating_sub(1),
        )
    };
    target.set_len(usize::try_from(n).unwrap_or(0));
    link
}

/// Route 6: an exec through a descriptor (`fexecve`, `execveat` with `AT_EMPTY_PATH`): the
/// target is what `/proc/self/fd/N` names; `memfd:` and deleted files are flagged.
fn exec_fd(
    entry: EntryPoint,
    fd: c_int,
    argv: Env,
    child_env: Env,
    call: impl FnOnce(Env) -> c_int,
) -> c_int {
    let saved = errno();
    let config = config::get();
    let mut requested: PathBuf<32> = PathBuf::new();
    let mut digits = [0u8; 20];
    requested.push(b"fd:");
    requested.push(decimal(u64::try_from(fd).unwrap_or(u64::MAX), &mut digits));
    let mut target: PathBuf<PATH_CAP> = PathBuf::new();
    let link = descriptor_path(fd, &mut target);
    // SAFETY: stat is plain data.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        set_errno(libc::EBADF);
        return -1;
    }
    let flags = if inspect::is_fileless(target.as_bytes()) {
        Flags::MEMFD
    } else {
        Flags::empty()
    };
    let path = if target.len() > 0 {
        target.as_bytes()
    } else {
        requested.as_bytes()
    };
    // SAFETY: NULL-terminated arrays.
    let (args, env) = unsafe { (cstr::args(argv), cstr::args(child_env)) };
    let attempt = Attempt {
        entry,
        path,
        inspect_path: link.as_ptr(),
        stat: Some(&st),
        requested: requested.as_bytes(),
        argv: args,
        env,
        flags,
    };
    exec_shape(guarded(config, &attempt, saved, child_env, call))
}

/// `execveat(dirfd, path, …)`: the target made absolute from the directory descriptor.
fn exec_at(
    entry: EntryPoint,
    dirfd: c_int,
    path: *const c_char,
    argv: Env,
    child_env: Env,
    flags: c_int,
    call: impl FnOnce(Env) -> c_int,
) -> c_int {
    // SAFETY: path is NULL or NUL-terminated.
    let name = unsafe { cstr::bytes(path) };
    if name.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        return exec_fd(entry, dirfd, argv, child_env, call);
    }
    if name.starts_with(b"/") || dirfd == libc::AT_FDCWD {
        return exec_file(entry, path, argv, child_env, call);
    }
    let saved = errno();
    let config = config::get();
    // The directory behind dirfd, then the relative name.
    let mut full: PathBuf<PATH_CAP> = PathBuf::new();
    descriptor_path(dirfd, &mut full);
    let mut unresolved = Flags::empty();
    if full.len() == 0 || !(full.push(b"/") && full.push(name)) {
        full.clear();
        full.push(name);
        unresolved = Flags::RELATIVE_UNRESOLVED;
    }
    // SAFETY: stat is plain data.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let nofollow = flags & libc::AT_SYMLINK_NOFOLLOW;
    // SAFETY: path is NUL-terminated; st is a valid out-pointer.
    if unsafe { libc::fstatat(dirfd, path, &mut st, nofollow) } != 0 {
        let e = errno();
        if e == libc::ENOENT || e == libc::ENOTDIR {
            return -1;
        }
    }
    // SAFETY: NULL-terminated arrays.
    let (args, env) = unsafe { (cstr::args(argv), cstr::args(child_env)) };
    let attempt = Attempt {
        entry,
        path: full.as_bytes(),
        inspect_path: if unresolved.is_empty() {
            full.as_ptr()
        } else {
            core::ptr::null()
        },
        stat: Some(&st),
        requested: name,
        argv: args,
        env,
        flags: unresolved,
    };
    exec_shape(guarded(config, &attempt, saved, child_env, call))
}

// ---------------------------------------------------------------------------------------
// The exports.

#[unsafe(no_mangle)]
pub unsafe extern "C" fn execve(path: *const c_char, argv: Env, envp: Env) -> c_int {
    exec_file(
        EntryPoint::Execve,
        path,
        argv,
        envp,
        real_execve(path, argv),
    )
}

/// `execv` runs with `environ`: it becomes an `execve` with the rebuilt copy.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execv(path: *const c_char, argv: Env) -> c_int {
    let env = current_environ();
    exec_file(EntryPoint::Execv, path, argv, env, real_execve(path, argv))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: Env) -> c_int {
    exec_search(EntryPoint::Execvp, file, argv, current_environ())
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: Env, envp: Env) -> c_int {
    exec_search(EntryPoint::Execvpe, file, argv, envp)
}

/// Called by the C shim with the collected argument list (`kind`: 0 execl, 1 execle,
/// 2 execlp).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rampart_variadic_exec(
    kind: c_int,
    file: *const c_char,
    argv: Env,
    envp: Env,
) -> c_int {
    match kind {
        0 => exec_file(
            EntryPoint::Execl,
            file,
            argv,
            current_environ(),
            real_execve(file, argv),
        ),
        1 => exec_file(
            EntryPoint::Execle,
            file,
            argv,
            envp,
            real_execve(file, argv),
        ),
        _ => exec_search(EntryPoint::Execlp, file, argv, current_environ()),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: Env, envp: Env) -> c_int {
    exec_fd(
        EntryPoint::Fexecve,
        fd,
        argv,
        envp,
        move |env| match real::get().fexecve {
            // SAFETY: glibc's fexecve with the caller's descriptor and argv and our environment.
            Some(f) => unsafe { f(fd, argv, env) },
            None => unavailable("fexecve", 4),
        },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn execveat(
    dirfd: c_int,
    path: *const c_char,
    argv: Env,
    envp: Env,
    flags: c_int,
) -> c_int {
    exec_at(
        EntryPoint::Execveat,
        dirfd,
        path,
        argv,
        envp,
        flags,
        move |env| {
            match real::get().execveat {
                // SAFETY: glibc's execveat with the caller's arguments and our environment.
                Some(f) => unsafe { f(dirfd, path, argv, env, flags) },
                None => unavailable("execveat", 8),
            }
        },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut libc::pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    spawn_file(EntryPoint::PosixSpawn, pid, path, actions, attr, argv, envp)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut libc::pid_t,
    file: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    spawn_search(pid, file, actions, attr, argv, envp)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn system(command: *const c_char) -> c_int {
    let saved = errno();
    let real = {
        config::get();
        real::get().system
    };
    let Some(real) = real else {
        return unavailable("system", 16);
    };
    // system(NULL) only asks whether a shell exists.
    if command.is_null() {
        // SAFETY: glibc's system.
        return unsafe { real(command) };
    }
    match shell_gate(EntryPoint::System, command, saved) {
        // SAFETY: glibc's system with the caller's command.
        Verdict::Allow => unsafe { real(command) },
        Verdict::Deny => {
            set_errno(libc::EPERM);
            -1
        }
    }
}

/// glibc's private alias of `system` (reachable through `dlsym` on the libc handle).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_system(command: *const c_char) -> c_int {
    // SAFETY: same contract as system.
    unsafe { system(command) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn popen(command: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    let saved = errno();
    let real = {
        config::get();
        real::get().popen
    };
    let Some(real) = real else {
        missing("popen", 32);
        set_errno(libc::EIO);
        return core::ptr::null_mut();
    };
    if command.is_null() {
        // SAFETY: glibc's popen reports the bad argument itself.
        return unsafe { real(command, mode) };
    }
    match shell_gate(EntryPoint::Popen, command, saved) {
        // SAFETY: glibc's popen with the caller's arguments.
        Verdict::Allow => unsafe { real(command, mode) },
        Verdict::Deny => {
            set_errno(libc::EPERM);
            core::ptr::null_mut()
        }
    }
}

/// glibc's alias of `popen` (same address in libc).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _IO_popen(command: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    // SAFETY: same contract as popen.
    unsafe { popen(command, mode) }
}

/// `syscall` is variadic in C; taking seven `long`s is ABI-compatible on x86-64 and aarch64
/// Linux (preload spec §4). Only `SYS_execve` and `SYS_execveat` are looked at.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn syscall(
    number: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    config::get();
    let Some(real) = real::get().syscall else {
        missing("syscall", 64);
        set_errno(libc::ENOSYS);
        return -1;
    };
    if number == libc::SYS_execve {
        let path = a1 as *const c_char;
        let argv = a2 as Env;
        let r = exec_file(
            EntryPoint::SyscallExecve,
            path,
            argv,
            a3 as Env,
            move |env| {
                // SAFETY: the raw execve system call with the caller's path and argv.
                unsafe { real(libc::SYS_execve, a1, a2, env as c_long, 0, 0, 0) as c_int }
            },
        );
        return c_long::from(r);
    }
    if number == libc::SYS_execveat {
        let dirfd = a1 as c_int;
        let path = a2 as *const c_char;
        let argv = a3 as Env;
        let flags = a5 as c_int;
        let r = exec_at(
            EntryPoint::SyscallExecveat,
            dirfd,
            path,
            argv,
            a4 as Env,
            flags,
            move |env| {
                // SAFETY: the raw execveat system call with the caller's arguments.
                unsafe { real(libc::SYS_execveat, a1, a2, a3, env as c_long, a5, 0) as c_int }
            },
        );
        return c_long::from(r);
    }
    // SAFETY: every other system call is forwarded untouched.
    unsafe { real(number, a1, a2, a3, a4, a5, a6) }
}
