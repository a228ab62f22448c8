//! `rampart preload -- CMD…`: run a command (an agent) with `librampart.so` loaded into it
//! and every process it starts, starting a daemon first when none answers on the socket.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use crate::home::{ensure_private_dir, rampart_home};

/// The library's file name (the artifact of the `preload/` crate).
const LIBRARY: &str = "librampart.so";

/// How long a freshly started daemon may take to answer on its socket.
const START_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
rampart preload -- python3 agent.py\n  \
rampart preload --mode monitor --agent coder -- node cli.js\n  \
rampart preload --no-new-privs -- bash -c 'make test'\n\n\
The command itself starts unchecked (you chose it); every program it or its descendants \
start is decided by the daemon. Blocked execs fail with EPERM (\"Operation not permitted\") \
and print `rampart: blocked: <command> — <reason>` on stderr.")]
pub struct PreloadArgs {
    /// The daemon's Unix socket [default: $RAMPART_SOCKET, else $RAMPART_HOME/rampart.sock].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Agent name sent with every request (shown in the audit trail).
    #[arg(long, value_name = "NAME", default_value = "preload")]
    agent: String,
    /// Session id sent with every request [default: preload-<pid of the command>].
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// enforce: denied programs do not start; monitor: everything starts, the daemon records
    /// what it would have done.
    #[arg(long, value_enum, default_value_t = PreloadMode::Enforce)]
    mode: PreloadMode,
    /// Let programs start when the daemon is unreachable or silent (the default fails
    /// closed: they are blocked).
    #[arg(long)]
    fail_open: bool,
    /// Set no_new_privs before starting the command: setuid programs (sudo, su) lose their
    /// privileges instead of shedding the library. Recommended for unattended agents.
    #[arg(long)]
    no_new_privs: bool,
    /// Use this librampart.so [default: $RAMPART_HOME/lib/, next to the rampart binary, then
    /// the system library directories].
    #[arg(long, value_name = "PATH")]
    library: Option<PathBuf>,
    /// HTTP address for a daemon started by this command (approvals, API).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9090")]
    listen: String,
    /// Do not start a daemon when none answers; with the default fail-closed mode every
    /// program the command starts is then blocked.
    #[arg(long)]
    no_start: bool,
    /// The command to run, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum PreloadMode {
    Enforce,
    Monitor,
}

/// Runs the command in place of this process; returns only on failure.
pub fn run(a: PreloadArgs) -> anyhow::Result<u8> {
    let home = rampart_home();
    let library = find_library(a.library.as_deref(), &home)?;
    let socket = match &a.socket {
        Some(s) => absolute(s)?,
        None => match std::env::var_os("RAMPART_SOCKET").filter(|s| !s.is_empty()) {
            Some(s) => absolute(Path::new(&s))?,
            None => home.join("rampart.sock"),
        },
    };
    if socket.as_os_str().len() > 107 {
        bail!(
            "the socket path {} is longer than 107 bytes; pass a shorter --socket",
            socket.display()
        );
    }
    if !answers(&socket) {
        if a.no_start {
            eprintln!(
                "rampart: warning: no daemon answers on {} (--no-start given)",
                socket.display()
            );
        } else {
            start_daemon(&home, &socket, &a.listen)?;
        }
    }

    let (program, args) = a.command.split_first().context("no command given")?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LD_PRELOAD", preload_value(&library))
        .env("RAMPART_SOCKET", &socket)
        .env("RAMPART_AGENT", &a.agent)
        .env(
            "RAMPART_MODE",
            match a.mode {
                PreloadMode::Enforce => "enforce",
                PreloadMode::Monitor => "monitor",
            },
        )
        .env("RAMPART_FAIL_OPEN", if a.fail_open { "1" } else { "0" });
    match &a.session {
        Some(s) => {
            cmd.env("RAMPART_SESSION", s);
        }
        // A session inherited from an outer run would merge two runs in the audit trail.
        None => {
            cmd.env_remove("RAMPART_SESSION");
        }
    }
    if a.no_new_privs {
        // SAFETY: prctl is async-signal-safe; it only sets a flag on the child.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let err = cmd.exec();
    bail!("cannot run {}: {err}", Path::new(program).display())
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// `LD_PRELOAD` for the command: our absolute path first, then what was already there.
fn preload_value(library: &Path) -> OsString {
    let mut value = library.as_os_str().to_os_string();
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        let ours = library.as_os_str();
        let rest: Vec<&[u8]> = existing
            .as_encoded_bytes()
            .split(|&b| b == b':' || b == b' ')
            .filter(|p| !p.is_empty() && *p != ours.as_encoded_bytes())
            .collect();
        for part in rest {
            value.push(":");
            // SAFETY: `part` is a sub-slice of an OsString's encoded bytes split on ASCII.
            value.push(unsafe { std::ffi::OsStr::from_encoded_bytes_unchecked(part) });
        }
    }
    value
}

/// The library: `--library`, `$RAMPART_HOME/lib/`, next to this binary, the system
/// library directories.
fn find_library(explicit: Option<&Path>, home: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        let p = absolute(p)?;
        if !p.is_file() {
            bail!("--library {}: no such file", p.display());
        }
        return Ok(std::fs::canonicalize(&p)?);
    }
    let mut candidates = vec![home.join("lib").join(LIBRARY)];
    if let Ok(exe) = std::env::current_exe().and_then(std::fs::canonicalize)
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join(LIBRARY));
    }
    for dir in [
        "/usr/local/lib",
        "/usr/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib",
    ] {
        candidates.push(Path::new(dir).join(LIBRARY));
    }
    for c in &candidates {
        if c.is_file() {
            return Ok(std::fs::canonicalize(c)?);
        }
    }
    let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    bail!(
        "cannot find {LIBRARY}; looked in:\n  {}\nbuild it with `cargo build --release -p rampart-preload` \
(it lands next to the rampart binary) or pass --library PATH",
        looked.join("\n  ")
    )
}

/// Whether a daemon accepts connections on `socket`.
fn answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// Starts `rampart serve` in the background, detached from this process tree and without
/// the library, and waits until it answers on its socket.
fn start_daemon(home: &Path, socket: &Path, listen: &str) -> anyhow::Result<()> {
    ensure_private_dir(home)?;
    let log_path = home.join("serve.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let exe = std::env::current_exe().context("cannot find the rampart binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("serve")
        .arg("--socket")
        .arg(socket)
        .arg("--listen")
        .arg(listen)
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Double fork: the daemon must not become a child of the agent (which this process is
    // about to become), where a shell's `wait` or a reaper could trip over it.
    // SAFETY: fork, setsid and _exit are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            match libc::fork() {
                -1 => return Err(std::io::Error::last_os_error()),
                0 => {}
                _ => libc::_exit(0),
            }
            libc::setsid();
            Ok(())
        });
    }
    let log_start = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
    let mut intermediate = cmd.spawn().context("cannot start `rampart serve`")?;
    let _ = intermediate.wait();
    let started = Instant::now();
    while started.elapsed() < START_TIMEOUT {
        if answers(socket) {
            eprintln!(
                "rampart: started a daemon on {} (log: {})",
                socket.display(),
                log_path.display()
            );
            return Ok(());
        }
        // `rampart serve` prints "rampart serve: <error>" when it cannot start.
        let fresh = std::fs::read(&log_path).unwrap_or_default();
        let fresh = String::from_utf8_lossy(fresh.get(log_start as usize..).unwrap_or_default());
        if let Some(line) = fresh.lines().find(|l| l.starts_with("rampart serve: ")) {
            bail!(
                "the daemon could not start: {line} (log: {})",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
    let tail: Vec<&str> = tail.lines().rev().take(5).collect();
    bail!(
        "the daemon did not come up on {} within {}s; last lines of {}:\n{}",
        socket.display(),
        START_TIMEOUT.as_secs(),
        log_path.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}
