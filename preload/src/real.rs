//! The real functions, resolved once with `dlsym(RTLD_NEXT, …)` while the configuration
//! snapshot is taken (R3, R14). Hooks never call exec-family functions by name: those names
//! resolve to our own exports.

use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_long, c_void};

pub type ExecveFn =
    unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
pub type FexecveFn =
    unsafe extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int;
pub type ExecveatFn = unsafe extern "C" fn(
    c_int,
    *const c_char,
    *const *const c_char,
    *const *const c_char,
    c_int,
) -> c_int;
pub type PosixSpawnFn = unsafe extern "C" fn(
    *mut libc::pid_t,
    *const c_char,
    *const libc::posix_spawn_file_actions_t,
    *const libc::posix_spawnattr_t,
    *const *mut c_char,
    *const *mut c_char,
) -> c_int;
pub type SystemFn = unsafe extern "C" fn(*const c_char) -> c_int;
pub type PopenFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut libc::FILE;
pub type SyscallFn =
    unsafe extern "C" fn(c_long, c_long, c_long, c_long, c_long, c_long, c_long) -> c_long;

/// The next definitions after ours (usually glibc's).
pub struct Real {
    pub execve: Option<ExecveFn>,
    pub fexecve: Option<FexecveFn>,
    pub execveat: Option<ExecveatFn>,
    pub posix_spawn: Option<PosixSpawnFn>,
    pub system: Option<SystemFn>,
    pub popen: Option<PopenFn>,
    pub syscall: Option<SyscallFn>,
}

struct Slot(UnsafeCell<Real>);

// SAFETY: written only by `resolve`, which runs inside the one-time configuration snapshot
// before hooks can read it (see `config::get`).
unsafe impl Sync for Slot {}

static REAL: Slot = Slot(UnsafeCell::new(Real {
    execve: None,
    fexecve: None,
    execveat: None,
    posix_spawn: None,
    system: None,
    popen: None,
    syscall: None,
}));

/// The resolved functions. Call only after [`crate::config::get`].
pub fn get() -> &'static Real {
    // SAFETY: see `Slot`: no writes happen after the snapshot is READY.
    unsafe { &*REAL.0.get() }
}

fn next(name: &core::ffi::CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) }
}

/// Resolves every real function (called once, inside the snapshot). A missing symbol stays
/// `None`; its hook then fails with EIO in the function's shape (R9) and says so once.
pub fn resolve() {
    // SAFETY: called once while the snapshot is BUSY: no concurrent readers.
    let real = unsafe { &mut *REAL.0.get() };
    // SAFETY (each transmute): dlsym returned the address of the named function, whose C
    // signature is the one of the target type; a NULL pointer becomes `None`.
    unsafe {
        real.execve = core::mem::transmute::<*mut c_void, Option<ExecveFn>>(next(c"execve"));
        real.fexecve = core::mem::transmute::<*mut c_void, Option<FexecveFn>>(next(c"fexecve"));
        real.execveat = core::mem::transmute::<*mut c_void, Option<ExecveatFn>>(next(c"execveat"));
        real.posix_spawn =
            core::mem::transmute::<*mut c_void, Option<PosixSpawnFn>>(next(c"posix_spawn"));
        real.system = core::mem::transmute::<*mut c_void, Option<SystemFn>>(next(c"system"));
        real.popen = core::mem::transmute::<*mut c_void, Option<PopenFn>>(next(c"popen"));
        real.syscall = core::mem::transmute::<*mut c_void, Option<SyscallFn>>(next(c"syscall"));
    }
}
