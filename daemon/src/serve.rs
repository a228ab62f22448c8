//! `rampart serve`: startup, background tasks, graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, ValueEnum};
use rampart_engine::CallCounter;
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::approvals::ApprovalStore;
use crate::audit::AuditSync;
use crate::home::{admin_token, ensure_private_dir, rampart_home};
use crate::metrics::Metrics;
use crate::policy_store::{PolicySource, PolicyStore};
use crate::recorder::{Record, Recorder};
use crate::state::{AppState, Mode};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    Enforce,
    Monitor,
    /// Accepted for compatibility: the same as monitor.
    Disabled,
}

/// When audit records reach the disk (`--audit-sync`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AuditSyncArg {
    /// Sync every record before its decision is answered (appends waiting together share
    /// one sync): nothing answered is lost even to a power loss, at the cost of a disk
    /// flush in every round trip.
    Always,
    /// Answer once the record is written to the audit file (a crash of the daemon cannot
    /// lose it); sync in the background within 100 ms, at rotation and at shutdown. A power
    /// loss or kernel crash can lose the last 100 ms of records; the chain stays valid.
    Interval,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
#[command(
    after_help = "The daemon answers the preload library on a Unix socket and agent frameworks over HTTP \
(POST /v1/tool/exec with `Authorization: Bearer $(cat ~/.rampart/token)`).\n\nExamples:\n  rampart serve\n  rampart serve --profile paranoid --listen 127.0.0.1:9191\n  rampart serve --no-http --mode monitor\n  rampart serve --strict --strict-allow /usr/local/bin/static-tool\n  rampart serve --audit-sync always\n\n\
Every decision is written to the hash-chained audit trail before it is answered. With the \
default --audit-sync interval, \"written\" means handed to the kernel: a crash of the daemon \
loses nothing, and the records are synced to the disk in the background within 100 ms (a power \
loss can lose that window). --audit-sync always syncs each record before its answer."
)]
pub struct ServeArgs {
    /// Unix socket for the preload library [default: $RAMPART_HOME/rampart.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// HTTP listen address (an IP literal and port).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9090")]
    pub listen: String,
    /// Serve only the Unix socket.
    #[arg(long)]
    pub no_http: bool,
    /// Compatibility with the reference: listen address.
    #[arg(long, hide = true)]
    pub addr: Option<String>,
    /// Compatibility with the reference: listen port (0 disables HTTP).
    #[arg(long, hide = true)]
    pub port: Option<u16>,
    /// Compatibility with the reference: /metrics is always served.
    #[arg(long, hide = true)]
    pub metrics: bool,
    /// Policy file (repeatable) instead of the policy directory.
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// Built-in profile instead of the policy directory.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Directory of policy files [default: $RAMPART_HOME/policies; the embedded standard
    /// profile when it holds none].
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// enforce: decisions apply; monitor: everything is allowed and recorded.
    #[arg(long, value_enum, default_value = "enforce")]
    pub mode: ModeArg,
    /// Audit trail directory [default: $RAMPART_HOME/audit].
    #[arg(long, value_name = "DIR")]
    pub audit_dir: Option<PathBuf>,
    /// When audit records are synced to the disk: before the answer (always) or in the
    /// background within 100 ms (interval). Both write the record before answering.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "interval")]
    pub audit_sync: AuditSyncArg,
    /// Deny execs of binaries the preload library cannot follow into (static, Go, set-id,
    /// foreign-class or memfd targets: nothing they start would be checked), unless the
    /// policy already denies them. Without it these are only recorded in the audit trail.
    #[arg(long)]
    pub strict: bool,
    /// An executable (exact resolved path) that --strict lets through (repeatable).
    #[arg(long = "strict-allow", value_name = "PATH", requires = "strict")]
    pub strict_allow: Vec<PathBuf>,
    /// How long an approval waits for a human before it denies.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    pub approval_timeout: Duration,
    /// rampart-verify endpoint for `verify` rules, e.g. http://127.0.0.1:8090/verify
    /// [env: RAMPART_VERIFY_URL]. Without one, `verify` rules act as `watch`.
    #[arg(long, value_name = "URL")]
    pub verify_url: Option<String>,
    /// How long to wait for the verifier [default: each rule's verify.timeout, 15s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub verify_timeout: Option<Duration>,
    /// When the verifier fails or times out, allow (overrides the rules' fail_open).
    #[arg(long, conflicts_with = "verify_fail_closed")]
    pub verify_fail_open: bool,
    /// When the verifier fails or times out, deny (overrides the rules' fail_open).
    #[arg(long)]
    pub verify_fail_closed: bool,
    /// How long a verifier verdict is reused for the same call (same tool, parameters,
    /// working directory, policy version and model).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub verify_cache_ttl: Duration,
    /// Most verifier verdicts kept (0 turns the cache off).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub verify_cache_size: usize,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Another uid allowed to use the socket (repeatable).
    #[arg(long = "allow-uid", value_name = "UID")]
    pub allow_uids: Vec<u32>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    rampart_engine::load::scalars::parse_duration(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{s}` is not a duration (write it like 90s, 2m or 1h)"))
}

/// Logs a warning naming the policies with `verify` rules when no verifier is configured.
pub fn warn_unconfigured_verify(state: &AppState) {
    if state.verify_url.is_some() {
        return;
    }
    let engine = state.policies.current();
    let names = engine.verify_policies();
    if !names.is_empty() {
        tracing::warn!(
            "no verifier configured (--verify-url): verify rules in {} act as watch",
            names.join(", ")
        );
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only on a terminal: a log file (serve.log) stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Holds `$RAMPART_HOME/serve.lock` so only one daemon owns the approval state.
fn lock_home(home: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = home.join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        bail!(
            "another Rampart serve process already owns approval state ({})",
            home.display()
        );
    }
    Ok(file)
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let home = rampart_home();
    ensure_private_dir(&home).with_context(|| format!("cannot create {}", home.display()))?;
    let _lock = lock_home(&home)?;
    let token = admin_token(&home).context("cannot read or create the admin token")?;

    let source = if !args.policies.is_empty() {
        PolicySource::Files(args.policies.clone())
    } else if let Some(p) = &args.profile {
        PolicySource::Profile(p.clone())
    } else {
        PolicySource::Dir(
            args.config_dir
                .clone()
                .unwrap_or_else(|| home.join("policies")),
        )
    };
    let durable = crate::auto_allow::file_in(&home);
    let policies = PolicyStore::open(source, Some(durable)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let approvals = ApprovalStore::open(
        args.approval_timeout,
        Some(home.join("pending-approvals.jsonl")),
    )
    .context("cannot read the pending-approvals journal")?;
    let audit_dir = args.audit_dir.clone().unwrap_or_else(|| home.join("audit"));
    // A crash in the middle of a batch leaves an unterminated line that was never answered.
    match crate::audit::repair_torn_tail(&audit_dir) {
        Ok(Some((file, bytes))) => tracing::warn!(
            "audit: removed an interrupted, unanswered write ({bytes} bytes) at the end of {file}"
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!("audit: cannot check the end of the chain: {e}"),
    }
    // A broken chain is refused at startup (HTTP API spec §13.7): appending to it would
    // hide the break. A fresh install has nothing to verify.
    match crate::audit::verify(&audit_dir, None) {
        Err(e) if e.is_broken_chain() => {
            bail!(
                "audit trail in {} is broken: {e} (inspect it with `rampart audit verify`)",
                audit_dir.display()
            )
        }
        _ => {}
    }
    let sync = match args.audit_sync {
        AuditSyncArg::Always => AuditSync::Always,
        AuditSyncArg::Interval => AuditSync::Interval(crate::audit::DEFAULT_SYNC_INTERVAL),
    };
    let recorder = Recorder::open(&audit_dir, sync)
        .with_context(|| format!("cannot open the audit trail in {}", audit_dir.display()))?;
    let verify_url = args
        .verify_url
        .clone()
        .or_else(|| std::env::var("RAMPART_VERIFY_URL").ok())
        .filter(|u| !u.trim().is_empty());
    let mode = match args.mode {
        ModeArg::Enforce => Mode::Enforce,
        ModeArg::Monitor => Mode::Monitor,
        ModeArg::Disabled => {
            tracing::warn!("--mode disabled is treated as monitor");
            Mode::Monitor
        }
    };
    let (events, _) = broadcast::channel(32);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let state = Arc::new(AppState {
        policies,
        approvals,
        recorder,
        counter: Mutex::new(CallCounter::new()),
        token,
        mode,
        strict: args.strict.then(|| crate::socket::Strict {
            allow: args.strict_allow.clone(),
        }),
        verify: crate::delegate::VerifySettings {
            url: verify_url.clone(),
            timeout: args.verify_timeout,
            fail_open: if args.verify_fail_open {
                Some(true)
            } else if args.verify_fail_closed {
                Some(false)
            } else {
                None
            },
            cache: crate::verdict_cache::VerdictCache::new(
                args.verify_cache_ttl,
                args.verify_cache_size,
            ),
        },
        verify_url,
        http_client: crate::delegate::client(),
        metrics: Metrics::default(),
        events,
        started: Instant::now(),
        shutdown: stop_tx,
    });
    state.recorder.stream_to(state.events.clone());
    warn_unconfigured_verify(&state);

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(expire_approvals(state.clone(), stop_rx.clone()));
    tasks.spawn(watch_policies(state.clone(), stop_rx.clone()));

    let socket_path = args
        .socket
        .clone()
        .unwrap_or_else(|| home.join("rampart.sock"));
    let socket = crate::socket::bind(&socket_path)
        .with_context(|| format!("cannot listen on {}", socket_path.display()))?;
    let mut allowed_uids = args.allow_uids.clone();
    // SAFETY: getuid has no preconditions.
    allowed_uids.push(unsafe { libc::getuid() });
    tasks.spawn(crate::socket::serve(
        socket,
        state.clone(),
        allowed_uids,
        crate::socket::decider_count(sync),
        stop_rx.clone(),
    ));

    let listen = match (&args.addr, args.port) {
        (_, Some(0)) => None,
        (Some(a), Some(p)) => Some(format!("{a}:{p}")),
        (None, Some(p)) => Some(format!("127.0.0.1:{p}")),
        (Some(a), None) => Some(format!("{a}:9090")),
        (None, None) => Some(args.listen.clone()),
    }
    .filter(|_| !args.no_http);
    let mut http_addr = None;
    if let Some(listen) = listen {
        let addr: SocketAddr = listen
            .parse()
            .with_context(|| format!("--listen {listen}: expected an IP address and port"))?;
        if !addr.ip().is_loopback() {
            tracing::warn!("HTTP API listening on non-loopback {addr} without TLS");
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        http_addr = Some(listener.local_addr()?);
        let app = crate::http::router(state.clone());
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!("HTTP server failed: {e}");
            }
        });
    }

    let engine = state.policies.current();
    tracing::info!(
        mode = state.mode.as_str(),
        audit_sync = ?args.audit_sync,
        strict = args.strict,
        policies = engine.policy_count(),
        source = %state.policies.label(),
        socket = %socket_path.display(),
        http = %http_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        token = %&state.token[..state.token.len().min(8)],
        "rampart serve ready"
    );
    // A machine-readable ready line for scripts and tests.
    println!(
        "rampart serve ready: socket={} http={}",
        socket_path.display(),
        http_addr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "off".into())
    );

    shutdown_signal(state.clone()).await;
    tracing::info!("shutting down: finishing in-flight decisions");
    let _ = state.shutdown.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let _ = std::fs::remove_file(&socket_path);
    state.recorder.flush();
    Ok(())
}

/// Waits for SIGTERM or SIGINT; SIGHUP reloads the policy meanwhile.
async fn shutdown_signal(state: Arc<AppState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => reload_logged(&state, "SIGHUP"),
        }
    }
}

fn reload_logged(state: &AppState, why: &str) {
    match state.policies.reload() {
        Ok(s) => {
            tracing::info!(
                policies = s.policies,
                rules = s.rules,
                "policy reloaded ({why})"
            );
            warn_unconfigured_verify(state);
        }
        Err(e) => tracing::error!("policy reload ({why}) failed, keeping the running policy: {e}"),
    }
}

async fn watch_policies(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if state.policies.changed_on_disk() {
            reload_logged(&state, "policy files changed");
        }
    }
}

async fn expire_approvals(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let expired = state.approvals.expire_due(Utc::now());
        for a in &expired {
            let mut request = Map::new();
            request.insert("action".into(), Value::from("approval_expired"));
            request.insert("tool".into(), Value::from(a.tool.clone()));
            request.insert("command".into(), Value::from(a.command.clone()));
            let rec = Record {
                tool: a.tool.clone(),
                agent: a.agent.clone(),
                session: a.session.clone(),
                request,
                action: "deny".into(),
                message: "approval timed out — command blocked".into(),
                ..Record::default()
            };
            if let Err(e) = state.recorder.record(rec).await {
                tracing::error!("cannot audit the expiry of approval {}: {e}", a.id);
            }
        }
        if !expired.is_empty() {
            state.announce_approvals();
        }
    }
}
