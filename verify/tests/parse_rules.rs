//! The answer-parsing rules of HTTP API spec §14.5, end to end: the stand-in answers, the
//! sidecar decides. Run over each wire format so each answer extractor is exercised too.

mod support;

use serde_json::{Value, json};
use support::sidecar::Sidecar;
use support::standin::{Reply, StandIn};

const DEFAULT_REASON: &str = "Action denied by security review";

/// (model answer, expected decision, expected reason)
fn cases() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        // 1: exactly ALLOW, any case, surrounding blanks
        ("ALLOW", "allow", Value::Null),
        ("  allow  \n", "allow", Value::Null),
        // 2: starts with DENY; reason after the first colon, or the default
        (
            "DENY: reverse shell to 10.0.0.1",
            "deny",
            json!("reverse shell to 10.0.0.1"),
        ),
        (
            "deny:   exfiltrates ~/.ssh  ",
            "deny",
            json!("exfiltrates ~/.ssh"),
        ),
        ("DENY", "deny", json!(DEFAULT_REASON)),
        (
            "DENY: reads: /etc/shadow",
            "deny",
            json!("reads: /etc/shadow"),
        ),
        (
            "DENY: do not ALLOW this",
            "deny",
            json!("do not ALLOW this"),
        ),
        // 3: contains ALLOW and not DENY
        ("I would allow this.", "allow", Value::Null),
        ("**ALLOW**", "allow", Value::Null),
        // 4: contains DENY
        ("Decision: DENY: x", "deny", json!("DENY: x")),
        ("**DENY**", "deny", json!(DEFAULT_REASON)),
        // chatter: lines with neither word are skipped; the first decisive line wins
        (
            "Let me look at this command.\n\nIt removes build output only.\nALLOW\nDENY: no",
            "allow",
            Value::Null,
        ),
        (
            "Sure, here is my verdict:\n\nDENY: pipes a download into bash\n\nALLOW",
            "deny",
            json!("pipes a download into bash"),
        ),
    ]
}

async fn run_cases(provider: &str) {
    let standin = StandIn::answering("ALLOW").await;
    let sidecar = Sidecar::for_provider(provider, &standin, &[]);
    for (text, decision, reason) in cases() {
        standin.script([Reply::Answer(text.to_string())]);
        let (status, answer) = sidecar.verify_command("some command").await;
        assert_eq!(status, 200, "{provider} {text:?}: {answer}");
        assert_eq!(
            answer["decision"], decision,
            "{provider} {text:?}: {answer}"
        );
        assert_eq!(answer["reason"], reason, "{provider} {text:?}: {answer}");
        assert!(
            answer.get("error").is_none(),
            "{provider} {text:?}: {answer}"
        );
    }
    let logged = sidecar.decisions();
    assert_eq!(logged.len(), cases().len());
    for ((_, decision, reason), line) in cases().iter().zip(&logged) {
        assert_eq!(&line["decision"], decision);
        assert_eq!(&line["reason"], reason);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_over_openai() {
    run_cases("openai").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_over_anthropic() {
    run_cases("anthropic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_over_ollama() {
    run_cases("ollama").await;
    run_cases("ollama-generate").await;
}

/// An answer that says neither word: the reference allows silently; ours answers allow too
/// (fail open) but marks it, so the daemon's own fail mode decides, and with
/// `VERIFY_FAIL_OPEN=0` answers 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecided_answers_follow_the_fail_mode() {
    let standin = StandIn::answering("I am not sure what this does.").await;
    let open = Sidecar::for_provider("openai", &standin, &[]);
    for text in [
        "I am not sure what this does.",
        "",
        "   \n\n",
        "{\"verdict\": 42}",
    ] {
        standin.script([Reply::Answer(text.to_string())]);
        let (status, answer) = open.verify_command("xyz").await;
        assert_eq!(status, 200);
        assert_eq!(answer["decision"], "allow", "{text:?}");
        assert_eq!(
            answer["reason"],
            "Verification unavailable, allowing by default"
        );
        assert_eq!(answer["error"], "undecided_answer");
    }
    let closed = Sidecar::for_provider("openai", &standin, &[("VERIFY_FAIL_OPEN", "0")]);
    let (status, answer) = closed.verify_command("xyz").await;
    assert_eq!(status, 503);
    assert_eq!(answer["detail"], "Verification unavailable");
    assert_eq!(answer["error"], "undecided_answer");
}
