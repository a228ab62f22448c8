//! End-to-end tests of `rampart serve`'s HTTP API (HTTP API spec §1, §4–§7, §15): a real
//! daemon process per test, a temporary `RAMPART_HOME`, an ephemeral port read from the
//! ready line, and clients that speak raw HTTP/1.1 (and, for §15, unchanged Python client
//! code using `requests`).

mod support;

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use support::{Api, Auth, Workspace, audit_events, poll, python_dir, python_ok, scrub_env};

fn body(command: &str) -> Value {
    json!({"agent": "test-agent", "session": "test-session", "params": {"command": command}})
}

/// Asserts the shape every `/v1/preflight` answer has (§6, §15).
fn assert_preflight_shape(r: &support::Resp) -> Value {
    assert_eq!(
        r.status,
        200,
        "preflight answers 200 for every outcome: {}",
        r.text()
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.body.ends_with(b"\n"), "JSON bodies end with a newline");
    let v = r.json();
    let decision = v["decision"].as_str().expect("decision is a string");
    assert_ne!(decision, "require_approval", "never reported (§15)");
    assert_eq!(
        v["allowed"].as_bool().expect("allowed is a bool"),
        matches!(decision, "allow" | "watch"),
        "allowed must equal decision in (allow, watch) or SDK 0.1.0 rejects it: {v}"
    );
    assert!(v["message"].is_string(), "{v}");
    assert!(
        v["matched_policies"].is_null()
            || v["matched_policies"]
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
        "matched_policies is an array of names or null: {v}"
    );
    assert!(
        v["eval_duration_us"].is_u64(),
        "eval_duration_us is an integer: {v}"
    );
    assert!(v["enforced"].is_boolean() && v["enforcement_requested"].is_boolean());
    v
}

// ---------------------------------------------------------------------------------------
// 1. Python client code, unchanged

#[test]
fn python_safe_exec_runs_only_what_the_policy_allows() {
    if !python_ok("import requests") {
        eprintln!(
            "SKIPPED python_safe_exec_runs_only_what_the_policy_allows: \
             `python3 -c 'import requests'` failed (install it: python3 -m pip install requests)"
        );
        return;
    }
    let ws = Workspace::new();
    let d = ws.start(&[]);
    let api = d.api();
    let work = ws.path().join("work");
    let victim = work.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("precious.txt"), "keep me").unwrap();
    let allowed = work.join("allowed.marker");
    let watched = work.join("watched.marker");
    let denied = work.join("denied.marker");
    let asked = work.join("asked.marker");
    let cmds = [
        format!("touch {}", allowed.display()),
        format!("touch {}", watched.display()),
        format!("touch {}", denied.display()),
        format!("rm -rf {}", victim.display()),
        format!("touch {}", asked.display()),
    ];

    let mut cmd = Command::new("python3");
    scrub_env(&mut cmd)
        .arg(python_dir().join("safe_exec.py"))
        .args(&cmds)
        .env("RAMPART_URL", d.url())
        .env("RAMPART_TOKEN", &d.token);
    let out = support::output_with_timeout(cmd, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "safe_exec.py failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), cmds.len(), "{stdout}");
    for (line, cmd) in lines.iter().zip(&cmds) {
        assert_eq!(line["command"], cmd.as_str());
    }
    let result = |i: usize| &lines[i]["result"];

    // allow: ran, and the file exists.
    assert_eq!(result(0)["decision"], "allow", "{}", lines[0]);
    assert_eq!(result(0)["status"], 200);
    assert_eq!(result(0)["ran"], true);
    assert_eq!(lines[0]["preflight_allowed"], true);
    assert!(allowed.exists(), "an allowed command runs");

    // watch: allowed too.
    assert_eq!(result(1)["decision"], "watch", "{}", lines[1]);
    assert_eq!(result(1)["status"], 200);
    assert_eq!(lines[1]["preflight_allowed"], true);
    assert!(watched.exists(), "a watched command runs");

    // deny: not run, the policy's message is the reason.
    assert_eq!(result(2)["decision"], "deny", "{}", lines[2]);
    assert_eq!(result(2)["status"], 403);
    assert_eq!(result(2)["ran"], false);
    assert_eq!(result(2)["reason"], "denied markers may not be created");
    assert_eq!(lines[2]["preflight_allowed"], false);
    assert!(!denied.exists(), "a denied command must not run");

    assert_eq!(result(3)["decision"], "deny", "{}", lines[3]);
    assert_eq!(result(3)["reason"], "the victim directory is protected");
    assert!(
        victim.join("precious.txt").exists(),
        "the protected directory survives"
    );

    // ask: pending, not run, and the approval really exists.
    assert_eq!(result(4)["decision"], "ask", "{}", lines[4]);
    assert_eq!(result(4)["status"], 202);
    assert_eq!(result(4)["ran"], false);
    assert_eq!(lines[4]["preflight_allowed"], false);
    assert!(
        !asked.exists(),
        "a command waiting for approval must not run"
    );
    let id = result(4)["approval_id"].as_str().expect("approval_id");
    let pending = api.pending();
    assert_eq!(
        pending.len(),
        1,
        "preflight created no approval: {pending:?}"
    );
    assert_eq!(pending[0]["id"], id);
    assert_eq!(pending[0]["command"], cmds[4].as_str());
    assert_eq!(pending[0]["agent"], "python-e2e-agent");

    // Both calls of every command were audited under the script's agent.
    let events = audit_events(&ws.audit_dir());
    let by_agent: Vec<&Value> = events
        .iter()
        .filter(|e| e["agent"] == "python-e2e-agent")
        .collect();
    assert_eq!(by_agent.len(), 2 * cmds.len(), "{events:#?}");
}

// ---------------------------------------------------------------------------------------
// 2. Python SDK expectations (§15)

#[test]
fn preflight_meets_the_python_sdk_expectations() {
    let ws = Workspace::new();
    let d = ws.start(&[]);
    let api = d.api();

    let h = api.request("GET", "/healthz", Auth::None, b"");
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["service"], "rampart");
    assert_eq!(h.json()["status"], "ok");

    // Every policy outcome: 200, `allowed` consistent with `decision`.
    for (command, decision, policy) in [
        ("git status", "allow", None),
        (
            "touch /tmp/denied.marker",
            "deny",
            Some("block-denied-markers"),
        ),
        ("deploy prod", "ask", Some("ask-deploy")),
        ("printenv HOME", "watch", Some("watch-printenv")),
        ("notify-hook release", "webhook", Some("hook-notify")),
    ] {
        for enforce in [false, true] {
            let mut b = body(command);
            if enforce {
                b["enforce"] = json!(true);
            }
            let v = assert_preflight_shape(&api.preflight("exec", &b));
            assert_eq!(
                v["decision"], decision,
                "{command} (enforce {enforce}): {v}"
            );
            assert_eq!(v["enforcement_requested"], enforce);
            assert_eq!(v["enforced"], enforce, "enforce mode: {v}");
            match policy {
                None => assert!(v["matched_policies"].is_null(), "nothing matched: {v}"),
                Some(p) => assert_eq!(v["matched_policies"][0], p, "{v}"),
            }
            assert!(v["audit_id"].is_string(), "previews are audited too: {v}");
        }
    }
    assert!(
        api.pending().is_empty(),
        "preflight never creates approvals"
    );

    // command_b64 is decoded (and leading comments stripped) before matching.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for (raw, decision) in [
        ("touch /tmp/denied.marker", "deny"),
        ("# a comment\n\ntouch /tmp/denied.marker", "deny"),
        ("deploy prod", "ask"),
        ("ls -la", "allow"),
    ] {
        let b = json!({"agent": "test-agent", "session": "test-session",
                       "params": {"command_b64": b64(raw)}});
        let v = assert_preflight_shape(&api.preflight("exec", &b));
        assert_eq!(v["decision"], decision, "command_b64 of {raw:?}: {v}");
    }
    // A command_b64 that disagrees with command is a conflict, not a bypass.
    let r = api.preflight(
        "exec",
        &json!({"params": {"command": "ls", "command_b64": b64("touch /tmp/denied.marker")}}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error(), "invalid tool input: conflicting command aliases");
    let r = api.preflight(
        "exec",
        &json!({"params": {"command_b64": "%%% not base64"}}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.error().starts_with("invalid tool input: "),
        "{}",
        r.text()
    );

    // Custom tool names: no "unknown tool" error; the default action applies.
    let v = assert_preflight_shape(&api.preflight("custom_tool.v2:run-1", &json!({"params": {}})));
    assert_eq!(v["decision"], "allow");

    // The SDK quotes the tool name with safe=''; `/` and `?` must not reach a route.
    let r = api.post(
        "/v1/preflight/custom%2Ftool%3Fadmin%3Dtrue",
        &json!({"agent": "test-agent", "session": "test-session", "params": {}}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error().starts_with("invalid tool name"), "{}", r.text());

    // 401 on a bad token (the SDK never fails open on it).
    let b = body("git status").to_string();
    let r = api.request(
        "POST",
        "/v1/preflight/exec",
        Auth::Header("Bearer not-the-token"),
        b.as_bytes(),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "invalid authorization token");
    let r = api.request("POST", "/v1/preflight/exec", Auth::None, b.as_bytes());
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "missing authorization token");
}

// ---------------------------------------------------------------------------------------
// 3. Approvals over HTTP (§7)

#[test]
fn approval_poll_and_identical_resend_flow() {
    let ws = Workspace::new();
    let d = ws.start(&[]);
    let api = d.api();
    let call = json!({
        "agent": "a1", "session": "s1", "run_id": "run-1", "tool_call_id": "call-1",
        "params": {"command": "deploy prod"},
    });

    // ask → 202 pending
    let r = api.tool("exec", &call);
    assert_eq!(r.status, 202, "{}", r.text());
    let v = r.json();
    assert_eq!(v["decision"], "ask");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["approval_status"], "pending");
    assert_eq!(v["policy"], "ask-deploy");
    assert!(
        v["expires_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z') || s.contains('+'))
    );
    let id = v["approval_id"].as_str().expect("approval_id").to_string();
    assert_eq!(id.len(), 26, "approval ids are ULIDs: {id}");

    // Same tool_call_id and payload while pending → the same approval.
    let r = api.tool("exec", &call);
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["approval_id"], id.as_str(), "dedup while pending");

    // Listed, oldest first, with its identity.
    let pending = api.pending();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let item = &pending[0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["status"], "pending");
    assert_eq!(item["tool"], "exec");
    assert_eq!(item["command"], "deploy prod");
    assert_eq!(item["agent"], "a1");
    assert_eq!(item["session"], "s1");
    assert_eq!(item["run_id"], "run-1");
    assert_eq!(item["message"], "deploys need a human");
    let one = api.approval(&id).json();
    assert_eq!(one["status"], "pending");
    assert!(one.get("resolved_at").is_none(), "{one}");

    // Approve.
    let r = api.resolve(&id, true);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"id": id, "status": "approved", "approved": true, "persisted": false})
    );
    let one = api.approval(&id).json();
    assert_eq!(one["status"], "approved");
    assert_eq!(one["resolved_by"], "e2e-test");
    assert!(one["resolved_at"].is_string(), "{one}");
    assert!(
        api.pending().is_empty(),
        "only pending approvals are listed"
    );

    // A re-send with another payload does not get the grant.
    let mut other = call.clone();
    other["params"]["command"] = json!("deploy staging");
    let r = api.tool("exec", &other);
    assert_eq!(
        r.status,
        202,
        "a different payload is a new ask: {}",
        r.text()
    );
    assert_ne!(r.json()["approval_id"], id.as_str());

    // The identical re-send consumes the once-grant.
    let r = api.tool("exec", &call);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["allowed"], true);
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["message"], "approved once via Rampart approval");
    assert_eq!(v["approval_id"], id.as_str());
    assert_eq!(v["approval_status"], "approved");
    assert_eq!(v["approval_scope"], "once");
    assert_eq!(v["approval_resolved_by"], "e2e-test");
    let ask_audit = v["approval_policy_audit_id"]
        .as_str()
        .expect("ask audit id");
    let allow_audit = v["audit_id"].as_str().expect("allow audit id");
    assert_ne!(ask_audit, allow_audit);

    // The grant was consumed once: a third identical send asks again.
    let r = api.tool("exec", &call);
    assert_eq!(r.status, 202, "{}", r.text());
    let third = r.json()["approval_id"].as_str().unwrap().to_string();
    assert_ne!(third, id);

    // Resolving twice → 410; unknown → 404.
    let r = api.resolve(&id, true);
    assert_eq!(r.status, 410);
    assert_eq!(r.error(), "approval already resolved; URL cannot be reused");
    let r = api.resolve("01ARZ3NDEKTSV4RRFFQ69G5FAV", true);
    assert_eq!(r.status, 404);
    assert_eq!(r.error(), "approval not found");
    let r = api.approval("01ARZ3NDEKTSV4RRFFQ69G5FAV");
    assert_eq!(r.status, 404);
    assert_eq!(r.error(), "approval not found");

    // Two pending approvals of one agent/session/run form a run group.
    let list = api.get("/v1/approvals").json();
    let groups = list["run_groups"].as_array().expect("run_groups");
    assert_eq!(groups.len(), 1, "{list}");
    assert_eq!(groups[0]["run_id"], "run-1");
    assert_eq!(groups[0]["count"], 2);
    assert_eq!(
        list["approvals"][0]["command"], "deploy staging",
        "oldest first"
    );
    assert_eq!(list["approvals"][1]["id"], third.as_str());

    // Deny the third: no grant, the status says so.
    let r = api.resolve(&third, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "denied");
    assert_eq!(api.approval(&third).json()["status"], "denied");
    let r = api.tool("exec", &call);
    assert_eq!(r.status, 202, "a denial leaves no grant: {}", r.text());

    // Audit: the resolution reuses the approval id; the allow names the approval.
    let events = audit_events(&ws.audit_dir());
    let resolution = events
        .iter()
        .find(|e| e["id"] == id.as_str())
        .expect("resolution event with the approval's id");
    assert_eq!(resolution["decision"]["action"], "approved");
    assert_eq!(resolution["request"]["action"], "approval_resolved");
    assert_eq!(resolution["request"]["resolved_by"], "e2e-test");
    let allow = events
        .iter()
        .find(|e| e["id"] == allow_audit)
        .expect("allow event");
    assert_eq!(allow["decision"]["action"], "allow");
    assert_eq!(allow["request"]["approval_id"], id.as_str());
    assert_eq!(allow["request"]["approval_policy_audit_id"], ask_audit);
    assert!(
        events
            .iter()
            .any(|e| e["id"] == ask_audit && e["decision"]["action"] == "ask")
    );
}

#[test]
fn blocking_wait_is_released_by_a_human() {
    let ws = Workspace::new();
    let d = ws.start(&[]);
    let api = d.api();

    // Approve from another thread while the request waits.
    let waiter = {
        let api = api.clone();
        std::thread::spawn(move || {
            api.tool(
                "exec",
                &json!({"agent": "a", "session": "s", "wait_ms": 60_000,
                        "params": {"command": "deploy wait-approve"}}),
            )
        })
    };
    let pending = api.wait_pending("deploy wait-approve");
    let id = pending["id"].as_str().unwrap().to_string();
    assert_eq!(api.resolve(&id, true).status, 200);
    let r = waiter.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["allowed"], true);
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["message"], "approved once via Rampart approval");
    assert_eq!(v["approval_id"], id.as_str());
    assert_eq!(v["approval_status"], "approved");
    assert_eq!(v["approval_scope"], "once");
    assert_eq!(v["approval_resolved_by"], "e2e-test");
    // The waiting request consumed the grant: a re-send asks again.
    let r = api.tool(
        "exec",
        &json!({"agent": "a", "session": "s", "params": {"command": "deploy wait-approve"}}),
    );
    assert_eq!(r.status, 202, "{}", r.text());

    // Deny from another thread.
    let waiter = {
        let api = api.clone();
        std::thread::spawn(move || {
            api.tool(
                "exec",
                &json!({"agent": "a", "session": "s", "wait_ms": 60_000,
                        "params": {"command": "deploy wait-deny"}}),
            )
        })
    };
    let id = api.wait_pending("deploy wait-deny")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(api.resolve(&id, false).status, 200);
    let r = waiter.join().unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    let v = r.json();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["message"], "approval denied");
    assert_eq!(v["approval_id"], id.as_str());
    assert_eq!(v["approval_status"], "denied");
    assert_eq!(v["approval_resolved_by"], "e2e-test");

    // A waiter that disconnects stops waiting and leaves the approval (and, once approved,
    // the once-grant) to the poll + identical re-send protocol.
    let call = json!({"agent": "a", "session": "s", "run_id": "r", "tool_call_id": "t",
                      "params": {"command": "deploy gone"}});
    let mut waiting = call.clone();
    waiting["wait_ms"] = json!(60_000);
    let raw = waiting.to_string();
    let mut conn = std::net::TcpStream::connect(api.addr).unwrap();
    write!(
        conn,
        "POST /v1/tool/exec HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Length: {}\r\n\r\n{raw}",
        api.addr,
        api.token,
        raw.len()
    )
    .unwrap();
    let id = api.wait_pending("deploy gone")["id"]
        .as_str()
        .unwrap()
        .to_string();
    drop(conn);
    // Nothing outside the daemon shows that it noticed the disconnect; give it a moment.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(api.resolve(&id, true).status, 200);
    let r = api.tool("exec", &call);
    assert_eq!(
        r.status,
        200,
        "the grant is still there for the re-send: {}",
        r.text()
    );
    assert_eq!(r.json()["approval_id"], id.as_str());

    // Nobody decides: the wait elapses and the ordinary 202 comes back (body or query,
    // the smaller wins).
    let start = Instant::now();
    let r = api.post(
        "/v1/tool/exec?wait=300",
        &json!({"wait_ms": 50_000, "params": {"command": "deploy nobody"}}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["approval_status"], "pending");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(300), "waited {waited:?}");
    assert!(
        waited < Duration::from_secs(40),
        "the smaller wait applies: {waited:?}"
    );

    // Bad wait values.
    for bad in [json!(-1), json!(1.5), json!("100")] {
        let r = api.tool(
            "exec",
            &json!({"wait_ms": bad, "params": {"command": "deploy x"}}),
        );
        assert_eq!(r.status, 400, "wait_ms {bad}: {}", r.text());
        assert_eq!(r.error(), "invalid wait value");
    }
    let r = api.post(
        "/v1/tool/exec?wait=abc",
        &json!({"params": {"command": "deploy x"}}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), "invalid wait value");
}

#[test]
fn unanswered_approvals_expire_and_deny() {
    let ws = Workspace::new();
    let d = ws.start(&["--approval-timeout", "2s"]);
    let api = d.api();

    let r = api.tool(
        "exec",
        &json!({"agent": "a", "session": "s",
                                     "params": {"command": "deploy expiring"}}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["approval_id"].as_str().unwrap().to_string();
    let expired = poll("the approval to expire", || {
        let v = api.approval(&id).json();
        (v["status"] != "pending").then_some(v)
    });
    assert_eq!(expired["status"], "expired", "{expired}");
    assert_eq!(expired["resolved_by"], "timeout");
    assert!(api.pending().is_empty());
    let r = api.resolve(&id, true);
    assert_eq!(r.status, 410, "an expired approval cannot be resolved");
    assert_eq!(r.error(), "approval already resolved; URL cannot be reused");
    let events = audit_events(&ws.audit_dir());
    let expiry = events
        .iter()
        .find(|e| e["request"]["action"] == "approval_expired")
        .expect("an approval_expired audit event");
    assert_eq!(expiry["decision"]["action"], "deny");
    assert_eq!(
        expiry["decision"]["message"],
        "approval timed out — command blocked"
    );
    assert_eq!(expiry["request"]["command"], "deploy expiring");

    // A waiting request is answered when its approval expires.
    let start = Instant::now();
    let r = api.tool(
        "exec",
        &json!({"agent": "a", "session": "s", "wait_ms": 30_000,
                                     "params": {"command": "deploy too-late"}}),
    );
    let waited = start.elapsed();
    assert_eq!(r.status, 403, "{}", r.text());
    let v = r.json();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["message"], "approval timed out — command blocked");
    assert_eq!(v["approval_status"], "expired");
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(25),
        "answered at expiry (2s), not at wait_ms: {waited:?}"
    );
}

#[test]
fn pending_approvals_survive_a_restart() {
    let ws = Workspace::new();
    let mut d = ws.start(&[]);
    let api = d.api();
    let call = json!({"agent": "a", "session": "s", "run_id": "r", "tool_call_id": "t",
                      "params": {"command": "deploy across-restart"}});
    let r = api.tool("exec", &call);
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["approval_id"].as_str().unwrap().to_string();
    d.stop();
    drop(d);

    let mut d = ws.start(&[]);
    let api = d.api();
    let v = api.approval(&id);
    assert_eq!(v.status, 200, "{}", v.text());
    assert_eq!(v.json()["status"], "pending");
    assert_eq!(v.json()["command"], "deploy across-restart");
    let pending = api.pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["id"], id.as_str());

    // One serve per home.
    let mut second = Command::new(support::BIN);
    scrub_env(&mut second)
        .args(["serve", "--listen", "127.0.0.1:0", "--policy"])
        .arg(ws.policy())
        .env("RAMPART_HOME", ws.home());
    let out = support::output_with_timeout(second, Duration::from_secs(60));
    assert!(
        !out.status.success(),
        "a second serve on the same home must fail"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("another Rampart serve process already owns approval state"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(api.pending().len(), 1, "the first one is unaffected");

    // A crash (SIGKILL: stale socket file, no clean shutdown) loses nothing either.
    let (status, _) = d.stop_with(libc::SIGKILL, Duration::from_secs(30));
    assert!(!status.success());
    drop(d);
    let d = ws.start(&[]);
    let api = d.api();
    assert_eq!(api.approval(&id).json()["status"], "pending");
    // Still usable: approve, then the identical re-send runs once.
    assert_eq!(api.resolve(&id, true).status, 200);
    let r = api.tool("exec", &call);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["message"], "approved once via Rampart approval");
}

// ---------------------------------------------------------------------------------------
// 5. Bad input

#[test]
fn bad_http_input_is_refused_and_not_audited() {
    let ws = Workspace::new();
    let d = ws.start(&[]);
    let api = d.api();
    let good = || {
        let r = api.tool("exec", &body("git status"));
        assert_eq!(r.status, 200, "the daemon still serves: {}", r.text());
        assert_eq!(r.json()["decision"], "allow");
    };
    good();
    let before = audit_events(&ws.audit_dir()).len();

    let raw = |target: &str, b: &[u8]| api.post_raw(target, b);
    let cases: Vec<(&str, support::Resp, u16, &str, bool)> = vec![
        // (what, response, status, error text, exact?)
        (
            "malformed JSON",
            raw("/v1/tool/exec", b"{\"agent\":"),
            400,
            "invalid request body: ",
            false,
        ),
        (
            "empty body",
            raw("/v1/tool/exec", b""),
            400,
            "invalid request body: EOF",
            true,
        ),
        (
            "blank body",
            raw("/v1/tool/exec", b" \n "),
            400,
            "invalid request body: EOF",
            true,
        ),
        (
            "two JSON values",
            raw("/v1/tool/exec", b"{} {}"),
            400,
            "invalid request body: request body must contain exactly one JSON value",
            true,
        ),
        (
            "trailing garbage",
            raw("/v1/tool/exec", b"{\"params\":{}}xyz"),
            400,
            "invalid request body: invalid trailing data: ",
            false,
        ),
        (
            "not an object",
            raw("/v1/tool/exec", b"[]"),
            400,
            "invalid request body: ",
            false,
        ),
        (
            "body over 1 MiB",
            raw("/v1/tool/exec", &{
                let mut b = b"{\"params\":{\"command\":\"".to_vec();
                b.resize(b.len() + (1 << 20), b'a');
                b.extend_from_slice(b"\"}}");
                b
            }),
            400,
            "invalid request body: http: request body too large",
            true,
        ),
        (
            "body over 1 MiB, preflight",
            raw("/v1/preflight/exec", &vec![b' '; (1 << 20) + 1]),
            400,
            "invalid request body: http: request body too large",
            true,
        ),
        (
            "wrong method on a known path",
            api.get("/v1/tool/exec"),
            404,
            "not found",
            true,
        ),
        (
            "wrong method on resolve",
            api.get("/v1/approvals/01ARZ3NDEKTSV4RRFFQ69G5FAV/resolve"),
            404,
            "not found",
            true,
        ),
        (
            "unknown path",
            api.post("/v1/nope", &body("ls")),
            404,
            "not found",
            true,
        ),
        (
            "unknown GET path",
            api.get("/v2/tool/exec"),
            404,
            "not found",
            true,
        ),
        (
            "reserved tool in capitals",
            api.tool("Exec", &body("git status")),
            400,
            "invalid tool name",
            false,
        ),
        (
            "tool name over 128 bytes",
            api.tool(&"t".repeat(129), &body("git status")),
            400,
            "invalid tool name",
            false,
        ),
        (
            "tool name with a space",
            api.tool("bad%20tool", &body("git status")),
            400,
            "invalid tool name",
            false,
        ),
        (
            "missing token",
            api.request(
                "POST",
                "/v1/tool/exec",
                Auth::None,
                body("ls").to_string().as_bytes(),
            ),
            401,
            "missing authorization token",
            true,
        ),
        (
            "not a Bearer header",
            api.request(
                "POST",
                "/v1/tool/exec",
                Auth::Header(&format!("Basic {}", api.token)),
                body("ls").to_string().as_bytes(),
            ),
            401,
            "missing authorization token",
            true,
        ),
        (
            "wrong token",
            api.request(
                "POST",
                "/v1/tool/exec",
                Auth::Header("Bearer 0000"),
                body("ls").to_string().as_bytes(),
            ),
            401,
            "invalid authorization token",
            true,
        ),
        (
            "wrong token on approvals",
            api.request("GET", "/v1/approvals", Auth::Header("Bearer 0000"), b""),
            401,
            "invalid authorization token",
            true,
        ),
        (
            "conflicting aliases",
            api.tool(
                "exec",
                &json!({"command": "ls", "params": {"command": "touch /tmp/denied.marker"}}),
            ),
            400,
            "invalid tool input: conflicting command aliases",
            true,
        ),
        (
            "conflicting aliases in params.arguments",
            api.tool(
                "exec",
                &json!({"params": {"cmd": "ls", "arguments": {"command": "rm -rf /victim"}}}),
            ),
            400,
            "invalid tool input: conflicting command aliases",
            true,
        ),
        (
            "non-string command",
            api.tool("exec", &json!({"params": {"command": ["rm", "-rf", "/"]}})),
            400,
            "invalid tool input: command must be a string",
            true,
        ),
        (
            "verification on /v1/tool",
            api.tool(
                "exec",
                &json!({"verification": true, "params": {"command": "ls"}}),
            ),
            400,
            "verification mode is only available on the preflight endpoint",
            true,
        ),
    ];
    for (what, r, status, text, exact) in &cases {
        assert_eq!(r.status, *status, "{what}: {}", r.text());
        let err = r.error();
        if *exact {
            assert_eq!(&err, text, "{what}");
        } else {
            assert!(
                err.starts_with(text),
                "{what}: {err:?} should start with {text:?}"
            );
        }
    }
    // Authentication comes before body decoding (§1.2 order).
    let r = api.request("POST", "/v1/tool/exec", Auth::None, b"{not json");
    assert_eq!(r.status, 401);

    // A chunked body (no Content-Length) over the limit is refused the same way.
    let mut chunked = format!(
        "POST /v1/tool/exec HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        api.addr, api.token
    )
    .into_bytes();
    for _ in 0..17 {
        chunked.extend_from_slice(format!("{:x}\r\n", 64 * 1024).as_bytes());
        chunked.extend_from_slice(&[b' '; 64 * 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = support::http_exchange(api.addr, chunked);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.error(),
        "invalid request body: http: request body too large"
    );

    good();
    // Exactly 1 MiB is still accepted.
    let mut exact = body("git status").to_string().into_bytes();
    exact.resize(1 << 20, b' ');
    let r = api.post_raw("/v1/tool/exec", &exact);
    assert_eq!(
        r.status,
        200,
        "a body of exactly 1 MiB is accepted: {}",
        r.text()
    );
    let after = audit_events(&ws.audit_dir());
    assert_eq!(
        after.len(),
        before + 2,
        "refused requests leave no audit event: {:#?}",
        &after[before..]
    );
    assert_eq!(after.last().unwrap()["request"]["command"], "git status");
}

/// §1.2 (errors are JSON; authenticate → decode → validate) and §4.1 (a bad tool name is a
/// 400 `invalid tool name`): a path segment that does not percent-decode to UTF-8 must not
/// bypass either.
#[test]
fn undecodable_path_segments_get_json_errors_after_authentication() {
    let ws = Workspace::new();
    let d = ws.start(&[]);
    let api = d.api();
    let b = body("git status").to_string();
    for target in ["/v1/tool/%FF", "/v1/preflight/ex%C3ec"] {
        let r = api.request("POST", target, Auth::None, b.as_bytes());
        assert_eq!(
            r.status,
            401,
            "{target} without a token: {:?} {}",
            r.header("content-type"),
            r.text()
        );
        assert_eq!(r.error(), "missing authorization token");
        let r = api.request("POST", target, Auth::Token, b.as_bytes());
        assert_eq!(r.status, 400, "{target}: {}", r.text());
        assert!(
            r.error().starts_with("invalid tool name"),
            "{target}: {}",
            r.text()
        );
    }
    let r = api.request("GET", "/v1/approvals/%FF", Auth::None, b"");
    assert_eq!(r.status, 401, "{:?} {}", r.header("content-type"), r.text());
    assert_eq!(r.error(), "missing authorization token");
    let r = api.get("/v1/approvals/%FF");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.error(), "approval not found");
}

/// The decision `POST /v1/tool/exec` gives `command` now (a fresh tool_call_id each time).
fn exec_decision(api: &Api, command: &str, n: usize) -> (u16, Value) {
    let r = api.tool(
        "exec",
        &json!({"agent": "a1", "session": "s1", "tool_call_id": format!("call-{n}"),
                "params": {"command": command}}),
    );
    (r.status, r.json())
}

#[test]
fn always_allow_persists_an_exact_rule_until_revoked() {
    let ws = Workspace::new();
    let mut d = ws.start(&[]);
    let api = d.api();
    let file = ws.home().join("policies").join("auto-allowed.yaml");

    // ask → approve with persist → the exact rule is written, audited and in force.
    let (status, v) = exec_decision(&api, "deploy prod", 1);
    assert_eq!(status, 202, "{v}");
    let id = v["approval_id"].as_str().unwrap().to_string();
    let r = api.post(
        &format!("/v1/approvals/{id}/resolve"),
        &json!({"approved": true, "persist": true, "resolved_by": "ops"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"id": id, "status": "approved", "approved": true, "persisted": true})
    );
    assert_eq!(api.approval(&id).json()["persisted"], true);
    let text = std::fs::read_to_string(&file).expect("auto-allowed.yaml written");
    assert!(
        text.contains("command_matches: [\"deploy prod\"]"),
        "{text}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions())
            & 0o777;
    assert_eq!(mode, 0o600);

    // The same command is allowed from now on, with no approval; anything else still asks,
    // and the policy's denies still deny.
    let (status, v) = exec_decision(&api, "deploy prod", 2);
    assert_eq!((status, &v["decision"]), (200, &json!("allow")), "{v}");
    assert_eq!(exec_decision(&api, "deploy prod --force", 3).0, 202);
    assert_eq!(exec_decision(&api, "deploy staging", 4).0, 202);
    let (_, v) = exec_decision(&api, "touch x-denied-y", 5);
    assert_eq!(v["decision"], "deny", "{v}");

    // Listed, and audited before it was written.
    let rules = api.get("/v1/rules/auto-allowed").json()["rules"].clone();
    assert_eq!(rules.as_array().unwrap().len(), 1, "{rules}");
    assert_eq!(rules[0]["tool"], "exec");
    assert_eq!(rules[0]["command_pattern"], "deploy prod");
    assert_eq!(rules[0]["path_pattern"], "");
    assert!(rules[0]["created"].is_string(), "{rules}");
    let name = rules[0]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("auto-allow-deploy-prod-"), "{name}");
    let audit = std::fs::read_dir(ws.audit_dir())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    let authorized = audit
        .lines()
        .find(|l| l.contains("approval_persistence_authorized"))
        .expect("a persistence audit event");
    let ev: Value = serde_json::from_str(authorized).unwrap();
    assert_eq!(ev["decision"]["action"], "authorized");
    assert_eq!(ev["request"]["rule_name"], name.as_str());
    assert_eq!(ev["request"]["approval_id"], id.as_str());

    // It survives a restart.
    d.stop();
    let d = ws.start(&[]);
    let api = d.api();
    assert_eq!(exec_decision(&api, "deploy prod", 6).0, 200);

    // Revoked: asked again; revoking twice or without a name is an error.
    let r = api.request(
        "DELETE",
        &format!("/v1/rules/auto-allowed/{name}"),
        Auth::Token,
        b"",
    );
    assert_eq!((r.status, r.json()), (200, json!({"deleted": true})));
    assert_eq!(exec_decision(&api, "deploy prod", 7).0, 202);
    let r = api.request(
        "DELETE",
        &format!("/v1/rules/auto-allowed/{name}"),
        Auth::Token,
        b"",
    );
    assert_eq!((r.status, r.error()), (404, "rule not found".to_string()));
    let r = api.request("DELETE", "/v1/rules/auto-allowed/", Auth::Token, b"");
    assert_eq!(
        (r.status, r.error()),
        (400, "rule name is required".to_string())
    );
    assert!(!file.exists(), "removed with its last rule");
    let r = api.request("DELETE", "/v1/rules/auto-allowed/x", Auth::None, b"");
    assert_eq!(r.status, 401);
}

#[test]
fn always_allow_refuses_what_it_cannot_write_exactly_and_leaves_it_pending() {
    let ws = Workspace::new();
    let d = ws.start(&[]);
    let api = d.api();
    // Quoted: the engine matches the unquoted reading, which other commands share.
    let (status, v) = exec_decision(&api, "deploy 'a b'", 1);
    assert_eq!(status, 202, "{v}");
    let id = v["approval_id"].as_str().unwrap().to_string();
    let r = api.post(
        &format!("/v1/approvals/{id}/resolve"),
        &json!({"approved": true, "persist": true}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.error().contains("cannot persist an exact rule"),
        "{}",
        r.text()
    );
    assert_eq!(api.approval(&id).json()["status"], "pending");
    assert!(
        !ws.home()
            .join("policies")
            .join("auto-allowed.yaml")
            .exists()
    );
    // Denying with persist writes nothing either, and is an ordinary denial.
    let r = api.post(
        &format!("/v1/approvals/{id}/resolve"),
        &json!({"approved": false, "persist": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["persisted"], false);
    assert!(
        !ws.home()
            .join("policies")
            .join("auto-allowed.yaml")
            .exists()
    );
}
