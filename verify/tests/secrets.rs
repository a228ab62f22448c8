//! No secret of HTTP API spec §14.6 ever reaches the provider, the decision log, the text log
//! or stderr: in the command, in nested params, in lists, behind a secret-named key, in a
//! base64 command, in the task context, in the lineage, or in another tool's params.

mod support;

use base64::Engine as _;
use serde_json::{Value, json};
use support::sidecar::Sidecar;
use support::standin::StandIn;

/// (text carrying a secret, the secret itself, the marker that must replace it), one per
/// pattern of the §14.6 table.
fn samples() -> Vec<(String, &'static str, &'static str)> {
    let hex40 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b";
    let b64 = "QWxhZGRpbjpvcGVuIHNlc2FtZQ0xMjM0NTY3ODkwYWJjZGVmZ2hpams=";
    vec![
        // 1
        (
            "aws s3 ls --access-key AKIAIOSFODNN7EXAMPLE".into(),
            "AKIAIOSFODNN7EXAMPLE",
            "[REDACTED_AWS_KEY]",
        ),
        // 2
        (
            "env AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY aws s3 ls".into(),
            "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
            "AWS_SECRET_ACCESS_KEY=[REDACTED]",
        ),
        (
            "export aws_session_token: FwoGZXIvYXdzEBYaDHqa0APsessiontok".into(),
            "FwoGZXIvYXdzEBYaDHqa0APsessiontok",
            "aws_session_token=[REDACTED]",
        ),
        // 3
        (
            "stripe charges list --api-key sk_live_4eC39HqLyjWDarjtT1zdp7dc".into(),
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "[REDACTED_STRIPE_KEY]",
        ),
        (
            "echo rk_test_51HqLyjWDarjtT1zdp7dcX".into(),
            "rk_test_51HqLyjWDarjtT1zdp7dcX",
            "[REDACTED_STRIPE_KEY]",
        ),
        // 4
        (
            "claude --key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx_yz-0123".into(),
            "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx_yz-0123",
            "[REDACTED_API_KEY]",
        ),
        // 5
        (
            "curl https://api.openai.com/v1/models?key=sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345"
                .into(),
            "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345",
            "[REDACTED_API_KEY]",
        ),
        // 6
        (
            "openai --token sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123".into(),
            "sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123",
            "[REDACTED_API_KEY]",
        ),
        // 7-10
        (
            "git clone https://ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789@github.com/o/r".into(),
            "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "[REDACTED_GH_TOKEN]",
        ),
        (
            "echo gho_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789".into(),
            "gho_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "[REDACTED_GH_TOKEN]",
        ),
        (
            "echo ghu_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789".into(),
            "ghu_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "[REDACTED_GH_TOKEN]",
        ),
        (
            "echo ghs_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789".into(),
            "ghs_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "[REDACTED_GH_TOKEN]",
        ),
        // 11
        (
            "gh auth login --with-token github_pat_11ABCDEFG0123456789_abcdefghijklmnop".into(),
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "[REDACTED_GH_TOKEN]",
        ),
        // 12
        (
            "curl -H 'X-Auth: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.SflKxwRJSMeKKF2QT4f' x"
                .into(),
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.SflKxwRJSMeKKF2QT4f",
            "Bearer [REDACTED]",
        ),
        // 13
        (
            "curl -H 'Authorization: token tok3nV4lue99' https://api.github.com/user".into(),
            "tok3nV4lue99",
            "Authorization: token [REDACTED]",
        ),
        (
            "curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA==' https://x.example".into(),
            "dXNlcjpwYXNzd29yZA==",
            "Authorization: Basic [REDACTED]",
        ),
        // 14
        (
            "git clone https://admin:supersecret123@git.example.com/repo.git".into(),
            "supersecret123",
            "https://admin:[REDACTED]@git.example.com",
        ),
        // 15
        (
            "API_KEY=abc123secret456 ./deploy.sh".into(),
            "abc123secret456",
            "API_KEY=[REDACTED]",
        ),
        (
            "mysql --password=MyS3cr3tP@ss -u root".into(),
            "MyS3cr3tP@ss",
            "password=[REDACTED]",
        ),
        (
            "app --client-secret_key=Xq7pLm2Vn9Rt ok".into(),
            "Xq7pLm2Vn9Rt",
            "secret_key=[REDACTED]",
        ),
        (
            "run access-token:Zz9Yy8Xx7Ww6 ok".into(),
            "Zz9Yy8Xx7Ww6",
            "access-token=[REDACTED]",
        ),
        (
            "login pwd=Pw0rdZq91 ok".into(),
            "Pw0rdZq91",
            "pwd=[REDACTED]",
        ),
        // 16
        (
            format!("deploy --signing-secret {hex40} now"),
            hex40,
            "[REDACTED_HEX]",
        ),
        // 17
        (
            format!("curl -H \"X-Signature: {b64}\" https://api.example.com"),
            b64,
            "[REDACTED_B64]",
        ),
        // line continuations collapse before matching
        (
            "aws s3 ls --key AKIAIOSF\\\n    ODNN7EXAMPLF".into(),
            "ODNN7EXAMPLF",
            "[REDACTED_AWS_KEY]",
        ),
    ]
}

/// Values that no pattern recognizes: only the secret-named keys they sit under protect them.
const KEY_NAMED: [&str; 3] = [
    "correct horse battery staple",
    "hunter2-but-longer",
    "opensesame-cookie-value",
];

fn assert_clean(what: &str, text: &str) {
    for (_, secret, _) in samples() {
        assert!(!text.contains(secret), "{what} holds {secret:?}:\n{text}");
    }
    for secret in KEY_NAMED {
        assert!(!text.contains(secret), "{what} holds {secret:?}:\n{text}");
    }
}

async fn send_everything(sidecar: &Sidecar, expected_status: u16) {
    for (command, _, _) in samples() {
        let (status, _) = sidecar.verify_command(&command).await;
        assert_eq!(status, expected_status);
    }
    let all: Vec<String> = samples().into_iter().map(|(c, _, _)| c).collect();
    let joined = all.join(" ; ");
    let bodies = [
        // nested params, lists, secret-named keys (with values no pattern sees)
        json!({
            "tool": "exec",
            "params": {
                "command": "deploy",
                "env": {"DB_PASSWORD": KEY_NAMED[0], "NOTE": all[0], "deeper": {"x": all[1]}},
                "argv": all.clone(),
                "password": KEY_NAMED[1],
                "headers": {"Cookie": KEY_NAMED[2], "Authorization": all[13]},
            },
            "task_context": joined,
            "lineage": all.clone(),
            "agent": all[17], "session": all[0],
        }),
        // another tool: its params are shown as a repr
        json!({"tool": "mcp", "params": {"query": joined, "api_key": KEY_NAMED[1],
                                          "list": all.clone()}}),
        json!({"tool": "fetch", "params": {"url": all[16]}}),
        // a base64 command: decoded, masked, and the blob withheld
        json!({"tool": "exec", "params": {
            "command_b64": base64::engine::general_purpose::STANDARD.encode(&joined)}}),
        // lineage as one string
        json!({"tool": "exec", "params": {"command": "ls"}, "lineage": joined}),
    ];
    for body in bodies {
        let (status, answer) = sidecar.verify(&body).await;
        assert_eq!(status, expected_status, "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_provider_or_the_logs() {
    for provider in ["openai", "anthropic", "ollama-generate"] {
        let standin = StandIn::answering("DENY: AKIA and password=x are just words").await;
        let sidecar = Sidecar::for_provider(provider, &standin, &[]);
        send_everything(&sidecar, 200).await;

        let received = standin.received();
        assert_eq!(received.len(), samples().len() + 5);
        for r in &received {
            assert_clean(&format!("{provider} request body"), &r.raw);
        }
        // each secret was replaced by its marker (the call did reach the provider)
        for ((_, secret, marker), r) in samples().iter().zip(&received) {
            let prompt = r.user_prompt();
            assert!(prompt.contains(marker), "{secret}: {prompt}");
        }
        // the base64 command was decoded for the model
        let b64_prompt = received[samples().len() + 3].user_prompt();
        assert!(b64_prompt.contains("Shell command: aws s3 ls --access-key [REDACTED_AWS_KEY]"));

        let decisions = sidecar.decisions_raw();
        assert_eq!(decisions.lines().count(), samples().len() + 5);
        assert_clean("decisions.jsonl", &decisions);
        assert!(decisions.contains("[REDACTED]"));
        assert_clean("verify.log", &sidecar.text_log());
        assert_clean("stderr", &sidecar.stderr());
        assert!(!sidecar.text_log().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_do_not_leak_either() {
    // The provider echoes nothing useful and fails: error messages and logs stay clean.
    let standin = StandIn::start(|_, _| support::standin::Reply::Status(500, None)).await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[("VERIFY_FAIL_OPEN", "0")]);
    send_everything(&sidecar, 503).await;
    for r in standin.received() {
        assert_clean("request body", &r.raw);
    }
    assert_clean("decisions.jsonl", &sidecar.decisions_raw());
    assert_clean("verify.log", &sidecar.text_log());
    assert_clean("stderr", &sidecar.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_params_only_when_asked() {
    let standin = StandIn::answering("ALLOW").await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[("VERIFY_LOG_RAW_PARAMS", "1")]);
    let (status, _) = sidecar
        .verify_command("API_KEY=abc123secret456 ./deploy.sh")
        .await;
    assert_eq!(status, 200);
    // the provider still never sees it; the operator asked for it in the log
    assert_clean("request body", &standin.last().raw);
    let line: Value = sidecar.decisions().remove(0);
    assert_eq!(
        line["params"]["command"],
        "API_KEY=abc123secret456 ./deploy.sh"
    );
    assert!(sidecar.stderr().contains("VERIFY_LOG_RAW_PARAMS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let standin = StandIn::answering("ALLOW").await;
    let sidecar = Sidecar::for_provider("openai", &standin, &[]);
    sidecar.verify_command("ls").await;
    let mode = |name: &str| {
        std::fs::metadata(sidecar.log_dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("decisions.jsonl"), 0o600);
    assert_eq!(mode("verify.log"), 0o600);
    assert_eq!(mode(""), 0o700);
}
