//! The whole verify chain with real processes (issue 5): a program started under
//! librampart.so → `rampart serve` → `rampart-verify` → an OpenAI-compatible provider on
//! 127.0.0.1 (a stand-in speaking the real chat-completions format; no model is reachable
//! from here). The provider's verdict decides whether the program runs; a repeat is answered
//! from the daemon's verdict cache without reaching the provider; secrets never reach it.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rampart_e2e::{Lab, artifacts, run_text};

const POLICY: &str = r#"version: "1"
default_action: allow
policies:
  - name: semantic-verify
    match: {tool: exec}
    rules:
      - action: verify
        when: {command_matches: ["*verify-me*"]}
        message: "ambiguous: ask the model"
"#;

/// A stand-in OpenAI chat-completions server: answers `DENY: looks like exfiltration` when
/// the prompt mentions `zebra`, else `ALLOW`; records every request body.
fn provider() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let Some(body) = rampart_testkit::read_request_body(&mut s) else {
                    return;
                };
                let verdict = if body.contains("zebra") {
                    "DENY: looks like exfiltration"
                } else {
                    "ALLOW"
                };
                log.lock().unwrap().push(body);
                let answer = serde_json::json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "model": "stand-in-model",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": verdict}}],
                })
                .to_string();
                rampart_testkit::write_json_response(&mut s, &answer);
            });
        }
    });
    (base, seen)
}

/// `rampart-verify --port 0` against `base`; returns the child and its /verify URL.
fn sidecar(lab: &Lab, base: &str) -> (Child, String) {
    let mut child = Command::new(&artifacts().verify)
        .args(["serve", "--port", "0"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("OPENAI_API_KEY", "sk-test-not-a-real-key-0000000000000000")
        .env("OPENAI_BASE_URL", base)
        .env("VERIFY_MODEL", "gpt-4o-mini")
        .env("VERIFY_LOG_DIR", lab.root().join("verify-log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rampart-verify");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("rampart-verify ready: ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("rampart-verify ready line");
    (child, format!("{url}/verify"))
}

#[test]
fn the_model_decides_what_runs_and_repeats_come_from_the_cache() {
    let mut lab = Lab::with_policy(POLICY);
    // A parent whose own command line is neutral: it runs `allowed` with its arguments.
    let parent = lab.bin("probe-parent");
    std::fs::write(&parent, "#!/bin/sh\nallowed \"$@\"\n").unwrap();
    std::fs::set_permissions(&parent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (base, seen) = provider();
    let (mut verify, url) = sidecar(&lab, &base);
    lab.start(&["--verify-url", &url, "--verify-fail-closed"]);

    // Separate processes: the lineage sent with each question holds the parent's command
    // line, which must not mention the other commands.
    let mut err = String::new();
    for args in [
        &["verify-me-1"][..],
        &["verify-me-1"],
        &["verify-me-zebra"],
        &["verify-me-2", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"],
    ] {
        let (_, e, _) = run_text(lab.command(lab.bin("probe-parent")).args(args));
        err.push_str(&e);
    }
    let _ = verify.kill();
    let _ = verify.wait();

    assert!(
        lab.marker("allowed-verify-me-1"),
        "the model allowed it: {err}"
    );
    assert!(
        !lab.marker("allowed-verify-me-zebra"),
        "the model denied it: {err}"
    );
    assert!(
        err.contains("rampart: blocked: allowed verify-me-zebra — looks like exfiltration"),
        "{err}"
    );
    assert!(lab.marker("allowed-verify-me-2"), "{err}");
    // verify-me-1 twice, zebra once, verify-me-2 once: the repeat never reached the model.
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 3, "{bodies:#?}");
    assert!(
        bodies
            .iter()
            .all(|b| b.contains("\"model\":\"gpt-4o-mini\""))
    );
    // The daemon audited a cache hit for the repeat.
    let hits = lab
        .exec_requests()
        .iter()
        .filter(|r| r["verify_cache"] == "hit")
        .count();
    assert_eq!(hits, 1);
}
