//! The `rampart` binary, run as a user would: exit codes, output shapes, error positions.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn rampart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .output()
        .expect("rampart runs")
}

fn rampart_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rampart runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const POLICY: &str = r#"version: "1"
default_action: allow
policies:
  - name: no-rm
    match: {tool: exec}
    rules:
      - action: deny
        when: {command_matches: ["rm -rf *"]}
        message: no recursive deletes
  - name: ask-deploy
    rules:
      - action: ask
        when: {command_matches: ["deploy *"]}
  - name: verify-nc
    rules:
      - action: verify
        when: {command_matches: ["nc *"]}
  - name: watch-env
    rules:
      - action: watch
        when: {command_matches: ["env"]}
tests:
  - {name: rm denied, tool: exec, params: {command: "rm -rf /"}, expect: deny}
  - {name: ls allowed, tool: exec, params: {command: "ls"}, expect: allow}
"#;

#[test]
fn check_exit_codes_follow_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "p.yaml", POLICY);
    let code = |cmd: &str| rampart(&["check", "--policy", &p, "--", cmd]).status.code();
    assert_eq!(code("ls -la"), Some(0));
    assert_eq!(code("env"), Some(0));
    assert_eq!(code("rm -rf /tmp/x"), Some(1));
    assert_eq!(code("deploy prod"), Some(3));
    assert_eq!(code("nc host 80"), Some(4));
    // Several words are an argv: data stays data.
    assert_eq!(code2(&p, &["echo", "a; rm -rf /"]), Some(0));
    assert_eq!(code2(&p, &["echo a; rm -rf /"]), Some(1));
    let o = rampart(&["check", "--policy", &p, "--", "rm", "-rf", "/"]);
    let out = stdout(&o);
    assert!(out.starts_with("deny  rm -rf /"), "{out}");
    assert!(
        out.contains("no-rm") && out.contains("no recursive deletes"),
        "{out}"
    );
}

fn code2(policy: &str, words: &[&str]) -> Option<i32> {
    let mut args = vec!["check", "--policy", policy, "--"];
    args.extend_from_slice(words);
    rampart(&args).status.code()
}

#[test]
fn check_json_is_the_eval_object() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "p.yaml", POLICY);
    let o = rampart(&["check", "--json", "--policy", &p, "--", "rm -rf /"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["policy"], "no-rm");
    assert_eq!(
        v["matched_policies"],
        serde_json::json!(["no-rm", "ask-deploy", "verify-nc", "watch-env"])
    );
    assert!(v["eval_us"].as_f64().unwrap() >= 0.0);
}

#[test]
fn check_tools_take_paths_and_urls() {
    let code = |tool: &str, arg: &str| rampart(&["check", "--tool", tool, "--", arg]).status.code();
    assert_eq!(code("read", "/home/u/.ssh/id_rsa"), Some(1));
    assert_eq!(code("read", "/etc/hosts"), Some(0));
    assert_eq!(code("fetch", "https://webhook.site/x"), Some(1));
}

#[test]
fn eval_answers_every_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "p.yaml", POLICY);
    let input = concat!(
        "{\"id\": 1, \"command\": \"rm -rf /\"}\n",
        "not json\n",
        "{\"id\": \"b\", \"tool\": \"exec\", \"params\": {\"command\": \"ls\"}, \"expect\": \"allow\"}\n",
        "{\"id\": 3, \"command\": 7}\n",
        "{\"id\": 4, \"command\": \"nc x 1\"}\n",
    );
    let o = rampart_stdin(&["eval", "--policy", &p], input);
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[0]["decision"], "deny");
    assert!(lines[1]["error"].as_str().unwrap().contains("invalid JSON"));
    assert_eq!(lines[2]["id"], "b");
    assert_eq!(lines[2]["decision"], "allow");
    assert_eq!(lines[3]["id"], 3);
    assert!(lines[3]["error"].is_string());
    assert_eq!(
        lines[4]["decision"], "verify",
        "eval previews verify decisions"
    );
}

#[test]
fn policy_typos_are_reported_with_position_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let bad = POLICY.replace(
        "command_matches: [\"deploy *\"]",
        "command_match: [\"deploy *\"]",
    );
    let p = write(&dir, "bad.yaml", &bad);
    let o = rampart(&["check", "--policy", &p, "--", "ls"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.yaml:13:16: unknown key `command_match`"),
        "{err}"
    );
    assert!(err.contains("did you mean `command_matches`?"), "{err}");
    let o = rampart(&["policy", "lint", &p]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("bad.yaml:13:16: error: unknown key"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn lint_warns_and_advises() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "w.yaml",
        "default_action: allow\npolicies:\n  - name: old\n    rules:\n      - action: log\n        when: {command_matches: [\"x\"]}\n      - action: require_approval\n        when: {command_matches: [\"y\"]}\n  - name: empty\n",
    );
    let o = rampart(&["policy", "lint", &p]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("warning: `log` is deprecated"), "{out}");
    assert!(
        out.contains("warning: `require_approval` is a deprecated alias"),
        "{out}"
    );
    assert!(out.contains("warning: default_action: allow"), "{out}");
    assert!(out.contains("policy `empty` has no rules"), "{out}");
}

#[test]
fn test_runs_inline_tests_and_suites() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "p.yaml", POLICY);
    let o = rampart(&["test", &p]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("2 passed, 0 failed (2 total)"));
    let suite = write(
        &dir,
        "suite.yaml",
        "policy: p.yaml\ntests:\n  - {name: deploy asks, tool: exec, params: {command: deploy x}, expect: ask}\n  - {name: wrong, tool: exec, params: {command: ls}, expect: deny}\n",
    );
    let o = rampart(&["test", &suite]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("1 passed, 1 failed (2 total)"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("FAIL  wrong"), "{}", stdout(&o));
    let orphan = write(
        &dir,
        "orphan.yaml",
        "tests:\n  - {name: t, tool: exec, params: {command: ls}, expect: deny}\n",
    );
    let o = rampart(&["test", &orphan]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("no policy to test against (set policy: or --config)"),
        "{}",
        stdout(&o)
    );
    let o = rampart(&["test", "--config", &p, &orphan]);
    assert!(stdout(&o).contains("0 passed, 1 failed"), "{}", stdout(&o));
}

#[test]
fn show_lists_policies_in_evaluation_order() {
    let o = rampart(&["policy", "show", "--profile", "standard"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.starts_with("default_action: deny"), "{out}");
    assert!(out.contains("allow-unmatched"), "{out}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(rampart(&["check"]).status.code(), Some(2));
    assert_eq!(rampart(&["nonsense"]).status.code(), Some(2));
    assert_eq!(
        rampart(&["check", "--profile", "nope", "--", "ls"])
            .status
            .code(),
        Some(2)
    );
}
