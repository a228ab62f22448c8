//! The command line: `--help` everywhere lists the environment, bad configuration is a clear
//! error with exit status 2, and flags override the environment.

mod support;

use std::process::Command;

use support::sidecar::{BIN, Sidecar};
use support::standin::StandIn;

fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("HOME", std::env::temp_dir())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_environment() {
    for args in [
        &["--help"][..],
        &["serve", "--help"][..],
        &["eval", "--help"][..],
        &["help", "eval"][..],
    ] {
        let (code, stdout, _) = run(args, &[]);
        assert_eq!(code, Some(0), "{args:?}");
        for var in [
            "VERIFY_MODEL",
            "VERIFY_PROVIDER",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "OLLAMA_URL",
            "VERIFY_OLLAMA_API",
            "VERIFY_TIMEOUT",
            "VERIFY_FAIL_OPEN",
            "VERIFY_SYSTEM_PROMPT",
            "VERIFY_EXTRA_RULES",
            "VERIFY_HOST",
            "VERIFY_PORT",
            "VERIFY_RATE_LIMIT",
            "VERIFY_LOG_DIR",
            "VERIFY_LOG_RAW_PARAMS",
        ] {
            assert!(
                stdout.contains(var),
                "{args:?} --help lacks {var}:\n{stdout}"
            );
        }
    }
    let (_, serve_help, _) = run(&["serve", "--help"], &[]);
    assert!(serve_help.contains("--port"));
    assert!(serve_help.contains("413 body over 1 MiB"));
    let (_, eval_help, _) = run(&["eval", "--help"], &[]);
    assert!(eval_help.contains("--concurrency"));
    assert!(eval_help.contains("precision"));
    let (code, stdout, _) = run(&["--version"], &[]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("rampart-verify "));
}

#[test]
fn bad_configuration_exits_2() {
    for (var, value, says) in [
        (
            "VERIFY_PROVIDER",
            "bedrock",
            "VERIFY_PROVIDER=\"bedrock\" is not a provider",
        ),
        (
            "VERIFY_PORT",
            "http",
            "VERIFY_PORT=\"http\" is not a port number",
        ),
        ("VERIFY_TIMEOUT", "-1", "VERIFY_TIMEOUT=\"-1\""),
        (
            "OLLAMA_URL",
            "localhost:11434",
            "OLLAMA_URL=\"localhost:11434\" is not an http",
        ),
    ] {
        let (code, _, stderr) = run(&[], &[(var, value)]);
        assert_eq!(code, Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    let (code, _, stderr) = run(&["--port", "x"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_override_the_environment() {
    let standin = StandIn::answering("ALLOW").await;
    // VERIFY_HOST names an address this machine does not have: only the flag makes it bind.
    let mut env = support::sidecar::provider_env("openai", &standin);
    env.push(("VERIFY_HOST".into(), "203.0.113.7".into()));
    for args in [
        &["--host", "127.0.0.1", "--port", "0"][..],
        &["serve", "--host", "127.0.0.1"][..],
    ] {
        let sidecar = Sidecar::start(&env, args);
        assert!(
            sidecar.url.starts_with("http://127.0.0.1:"),
            "{}",
            sidecar.url
        );
        assert_eq!(sidecar.verify_command("ls").await.0, 200);
    }
}
