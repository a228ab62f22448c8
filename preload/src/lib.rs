//! # librampart.so
//!
//! Loaded with `LD_PRELOAD` into an agent and every process it starts, this library stops
//! every exec-family call of glibc (`execve`, `execv`, `execvp`, `execvpe`, `execl*`,
//! `fexecve`, `execveat`, `posix_spawn[p]`, `system`, `popen`, `syscall(SYS_execve*)`), asks
//! the rampart daemon over its Unix socket whether the program may start, and re-injects
//! itself into the child's environment (preload spec R1–R14).
//!
//! Where things are:
//! - [`config`]: the constructor's snapshot of `RAMPART_*` and `LD_PRELOAD` (read once,
//!   never again) and the trusted environment entries built from it;
//! - [`real`]: the real functions, resolved with `dlsym(RTLD_NEXT)` in the constructor;
//! - [`hooks`]: the exported entry points, one per glibc function, and [`variadic`] for the
//!   `execl*` trampolines into the C shim (`csrc/variadic.c`);
//! - [`gate`]: one decision for one exec attempt (request, failure classes, mode, messages);
//! - [`client`]: the socket round trip to the daemon;
//! - [`search`]: `PATH` resolution with glibc's rules; [`inspect`]: what the target is
//!   (ELF class, static, Go, setuid, script, memfd);
//! - [`envp`]: the child environment rebuilt on the stack, and `environ` repair for
//!   `system`/`popen`; [`report`]: the lines written to stderr.
//!
//! **The hook path** (everything between entering a hook and calling the real function)
//! allocates nothing, takes no lock, never reads the environment for configuration, never
//! logs through a framework and has no panic path: it may run in a `vfork` child that shares
//! the parent's memory, or in a `fork` child of a multithreaded parent. Buffers live on the
//! stack (about 13 KiB at the deepest), descriptors are opened `CLOEXEC` and closed before
//! the real call. The crate denies indexing, `unwrap` and friends to keep it that way.

#![cfg_attr(not(test), no_std)]
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented,
    clippy::arithmetic_side_effects
)]
#![allow(clippy::missing_safety_doc)]

mod client;
mod config;
mod cstr;
mod envp;
mod gate;
mod hooks;
mod inspect;
mod real;
mod report;
#[cfg(not(test))]
mod runtime;
mod search;
mod variadic;
