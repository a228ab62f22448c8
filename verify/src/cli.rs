//! The command line: `rampart-verify [serve]` and `rampart-verify eval CORPUS`. The edge
//! where errors become messages and exit codes (`anyhow`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, ENVIRONMENT_HELP};
use crate::diagnostics::{self, LogFormat, TEXT_LOG_FILE};
use crate::eval::{self, CorpusError, Summary};
use crate::log::{DecisionLog, create_private_dir, open_private_append};
use crate::providers::Provider;
use crate::server::{AppState, router};
use crate::verifier::Verifier;

/// The line printed on stdout once the server accepts connections; scripts and tests wait
/// for it (and read the bound address from it when the port was 0).
pub const READY_PREFIX: &str = "rampart-verify ready: http://";

#[derive(Debug, Parser)]
#[command(
    name = "rampart-verify",
    version,
    about = "The LLM verification sidecar for rampart's `verify` action",
    long_about = "rampart-verify answers POST /verify for rampart's `verify` rules: it masks the \
secrets in a tool call, asks a model (OpenAI or any OpenAI-compatible server, Anthropic, or \
Ollama) whether the call may run, and answers allow or deny. It speaks the HTTP API of \
peg/rampart-verify 0.1.0.\n\n\
Without a subcommand it serves (see `rampart-verify serve --help`).",
    after_help = root_help(),
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default)
    #[command(
        long_about = "Serve the HTTP API: POST /verify, GET /health (makes a real, possibly \
paid, provider call; cached 30 s), GET /metrics (JSON; ?format=prometheus for Prometheus text), \
GET /.\n\n\
Once listening it prints `rampart-verify ready: http://HOST:PORT` on stdout. The decision log \
is $VERIFY_LOG_DIR/decisions.jsonl (0600, secrets masked) and the text log \
$VERIFY_LOG_DIR/verify.log (also on stderr).",
        after_help = serve_help()
    )]
    Serve(ServeArgs),
    /// Measure the configured model on labelled commands
    #[command(
        long_about = "Run the configured model over a labelled corpus and print precision, \
recall and false-positive rate (deny is the positive class) and p50/p99 latency.\n\n\
CORPUS is JSON Lines: {\"command\": \"...\", \"label\": \"allow\"|\"deny\"}, optionally with \
\"task_context\". The posture format ({\"command\", \"expect\"}) and the live-test format \
({\"command\", \"expected\"}) are accepted too; `watch` counts as allow, `ask` and `verify` \
are skipped. Each command is sent as the server would send it (masked, same prompt, same \
parsing), straight to the provider: no server is needed. Every command is a provider call: \
mind the cost.",
        after_help = eval_help()
    )]
    Eval(EvalArgs),
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to bind (overrides VERIFY_HOST) [default: 127.0.0.1]
    #[arg(long)]
    pub host: Option<String>,
    /// Port to bind; 0 picks a free one (overrides VERIFY_PORT) [default: 8090]
    #[arg(long)]
    pub port: Option<u16>,
    /// Text log format
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The labelled corpus (JSON Lines)
    pub corpus: PathBuf,
    /// Provider calls in flight at once
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Also list every command the model got wrong or could not answer
    #[arg(long)]
    pub misses: bool,
    /// Print the summary as one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
}

fn root_help() -> String {
    format!(
        "Examples:\n  \
         OPENAI_API_KEY=... rampart-verify\n  \
         VERIFY_MODEL=qwen2.5-coder:7b rampart-verify serve --port 8090\n  \
         rampart-verify eval corpus.jsonl\n\n{ENVIRONMENT_HELP}"
    )
}

fn serve_help() -> String {
    format!(
        "Examples:\n  \
         OPENAI_API_KEY=... rampart-verify serve\n  \
         ANTHROPIC_API_KEY=... VERIFY_MODEL=claude-3-haiku-20240307 rampart-verify serve\n  \
         VERIFY_PROVIDER=openai OPENAI_BASE_URL=http://127.0.0.1:8000/v1 VERIFY_MODEL=qwen \
         rampart-verify serve\n  \
         VERIFY_FAIL_OPEN=0 rampart-verify serve --port 0\n\n\
         Status codes of POST /verify: 200 decided (a fail-open answer carries \"error\"), \
         413 body over 1 MiB, 422 invalid body, 429 VERIFY_RATE_LIMIT exceeded, 503 provider \
         failure with VERIFY_FAIL_OPEN=0.\n\n{ENVIRONMENT_HELP}"
    )
}

fn eval_help() -> String {
    format!(
        "Examples:\n  \
         rampart-verify eval corpus.jsonl\n  \
         rampart-verify eval --misses --concurrency 4 engine/tests/data/posture.jsonl\n  \
         VERIFY_MODEL=llama3.2:3b rampart-verify eval --json corpus.jsonl\n\n\
         Exit status: 0 when every command was asked (errors included in the report), 2 for \
         an unreadable corpus or a bad configuration.\n\n{ENVIRONMENT_HELP}"
    )
}

/// Runs the command; the exit status is 0 on success, 2 for configuration or corpus
/// errors, 1 for anything else.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Some(Command::Eval(args)) => runtime().and_then(|rt| rt.block_on(eval_main(args))),
        Some(Command::Serve(args)) => runtime().and_then(|rt| rt.block_on(serve_main(args))),
        None => runtime().and_then(|rt| rt.block_on(serve_main(cli.serve))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart-verify: {e:#}");
            let usage = e.downcast_ref::<ConfigError>().is_some()
                || e.downcast_ref::<CorpusError>().is_some();
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn serve_main(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    if let Some(host) = args.host {
        config.host = host;
    }
    if let Some(port) = args.port {
        config.port = port;
    }

    let log_dir = config.log_dir()?.to_path_buf();
    create_private_dir(&log_dir)
        .with_context(|| format!("creating the log directory {}", log_dir.display()))?;
    let text_log_path = log_dir.join(TEXT_LOG_FILE);
    let text_log = open_private_append(&text_log_path)
        .with_context(|| format!("opening {}", text_log_path.display()))?;
    diagnostics::init(args.log_format, Some(text_log), "info");
    let decision_log = DecisionLog::open(&log_dir)
        .with_context(|| format!("opening the decision log in {}", log_dir.display()))?;

    let provider = Provider::new(config.provider.clone()).context("building the HTTP client")?;
    let verifier = Verifier::new(provider, config.system_prompt.clone());

    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.host, config.port))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    announce(&config, addr, &log_dir);

    let state = Arc::new(AppState::new(config, verifier, decision_log));
    println!("{READY_PREFIX}{addr}");
    let _ = std::io::stdout().flush();

    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("rampart-verify stopped");
    Ok(())
}

fn announce(config: &Config, addr: SocketAddr, log_dir: &std::path::Path) {
    let p = &config.provider;
    tracing::info!(
        %addr,
        provider = p.kind.name(),
        model = %p.model,
        base_url = %p.base_url,
        timeout_s = p.timeout.as_secs_f64(),
        fail_open = config.fail_open,
        rate_limit = config.rate_limit,
        log_dir = %log_dir.display(),
        "rampart-verify listening"
    );
    if p.model != config.requested_model {
        tracing::warn!(
            requested = %config.requested_model,
            asking = %p.model,
            "VERIFY_MODEL names a hosted model whose API key is not set; asking Ollama's {} instead",
            p.model
        );
    }
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "listening beyond loopback: /verify has no authentication");
    }
    if config.log_raw_params {
        tracing::warn!("VERIFY_LOG_RAW_PARAMS is on: the decision log holds unmasked params");
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

async fn eval_main(args: EvalArgs) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    diagnostics::init(LogFormat::Text, None, "warn");
    let corpus = eval::load_corpus(&args.corpus)?;
    let provider = Provider::new(config.provider.clone()).context("building the HTTP client")?;
    let model = provider.config().model.clone();
    let kind = provider.config().kind.name();
    let verifier = Arc::new(Verifier::new(provider, config.system_prompt.clone()));

    let outcomes = eval::run(verifier, &corpus.samples, usize::from(args.concurrency)).await;
    let summary = Summary::of(&outcomes, corpus.skipped);
    let mut out = String::new();
    if args.misses {
        out.push_str(&eval::misses(&outcomes));
        out.push('\n');
    }
    if args.json {
        out.push_str(&summary.json(&model, kind).to_string());
        out.push('\n');
    } else {
        out.push_str(&summary.table(&model, kind, &args.corpus.display().to_string()));
    }
    print!("{out}");
    let _ = std::io::stdout().flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_serves_with_flags() {
        let cli = Cli::try_parse_from(["rampart-verify", "--port", "0"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.port, Some(0));
        let cli = Cli::try_parse_from(["rampart-verify", "serve", "--host", "::1"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Serve(ref a)) if a.host.as_deref() == Some("::1"))
        );
        let cli = Cli::try_parse_from(["rampart-verify", "eval", "c.jsonl", "--misses"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Eval(ref a)) if a.misses));
    }
}
