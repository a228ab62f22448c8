//! Decisions delegated over HTTP: the `webhook` action (HTTP API spec §9) and the `verify`
//! action's call to rampart-verify (§10). Both answer allow or deny; failures follow the
//! rule's `fail_open`.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::verdict_cache::{Cached, Key, VerdictCache};

/// Largest answer accepted.
const MAX_ANSWER: usize = 64 << 10;

/// Which kind of delegate is asked (it names the messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Webhook,
    Verifier,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Verifier => "verifier",
        }
    }
}

/// The delegate's verdict, with the decision message to report.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Verdict {
    pub allowed: bool,
    pub message: String,
    /// The model the verifier used, when it says.
    pub model: Option<String>,
    /// Answered from the verdict cache (the verifier was not asked).
    pub cached: bool,
    /// How long the answer took (the verifier round trip, or the cache lookup).
    pub latency: Duration,
    /// The process chain sent to the verifier, oldest first.
    pub lineage: Option<Vec<String>>,
}

/// The daemon's verifier settings (`rampart serve --verify-*`).
pub struct VerifySettings {
    pub url: Option<String>,
    /// `--verify-timeout`: replaces the rules' `verify.timeout`.
    pub timeout: Option<Duration>,
    /// `--verify-fail-open` / `--verify-fail-closed`: replaces the rules' `fail_open`.
    pub fail_open: Option<bool>,
    pub cache: VerdictCache,
}

impl VerifySettings {
    /// No verifier: `verify` rules act as `watch`.
    pub fn unconfigured() -> VerifySettings {
        VerifySettings {
            url: None,
            timeout: None,
            fail_open: None,
            cache: VerdictCache::new(Duration::ZERO, 0),
        }
    }
}

/// What is sent: the call, canonicalized.
pub struct Payload<'a> {
    pub tool: &'a str,
    pub params: &'a Map<String, Value>,
    pub agent: &'a str,
    pub session: &'a str,
    pub policy: Option<&'a str>,
    pub task_context: Option<&'a str>,
    /// Whose process chain to send (execs from the preload socket); read from `/proc` only
    /// when the verifier is really asked, not for a cache hit.
    pub lineage: Option<Lineage<'a>>,
}

/// The exec a process chain is read for.
#[derive(Clone, Copy)]
pub struct Lineage<'a> {
    pub pid: i32,
    pub argv: &'a [Vec<u8>],
}

/// Carries out a `webhook` or `verify` decision: asks the rule's webhook URL or the
/// configured verifier, under the timeout and fail mode in force. Verifier answers are
/// cached (`policy_version` is part of the key); failures never are.
pub async fn decide(
    client: &reqwest::Client,
    verify: &VerifySettings,
    policy_version: u64,
    d: &rampart_engine::Decision,
    p: &Payload<'_>,
) -> Verdict {
    let started = Instant::now();
    match d.action {
        rampart_engine::Action::Verify => {
            let opts = d.verify.clone().unwrap_or_default();
            let url = verify.url.as_deref().unwrap_or("");
            let timeout = verify.timeout.unwrap_or(opts.timeout);
            let fail_open = verify.fail_open.unwrap_or(opts.fail_open);
            let key = Key {
                tool: p.tool.to_string(),
                params: serde_json::to_string(p.params).unwrap_or_default(),
                task_context: p.task_context.map(str::to_string),
                policy_version,
                verifier: url.to_string(),
                model: verify.cache.model_of(url),
            };
            if let Some(hit) = verify.cache.get(&key, started) {
                return Verdict {
                    allowed: hit.allowed,
                    message: hit.message,
                    model: hit.model,
                    cached: true,
                    latency: started.elapsed(),
                    lineage: None,
                };
            }
            let lineage = p
                .lineage
                .map(|l| crate::lineage::exec_lineage(l.pid, l.argv));
            let answer = call(client, Kind::Verifier, url, timeout, p, lineage.as_deref()).await;
            if let Ok(v) = &answer {
                let key = Key {
                    model: v.model.clone(),
                    ..key
                };
                let cached = Cached {
                    allowed: v.allowed,
                    message: v.message.clone(),
                    model: v.model.clone(),
                };
                verify.cache.put(key, cached, Instant::now());
            }
            let mut v = settle(Kind::Verifier, answer, fail_open);
            v.latency = started.elapsed();
            v.lineage = lineage;
            v
        }
        _ => {
            let (url, timeout, fail_open) = match &d.webhook {
                Some(w) => (w.url.as_str(), w.timeout, w.fail_open),
                None => ("", Duration::from_secs(5), false),
            };
            if url.trim().is_empty() {
                return Verdict {
                    allowed: false,
                    message: "webhook action misconfigured; denying for safety".into(),
                    ..Verdict::default()
                };
            }
            let mut v = ask(client, Kind::Webhook, url, timeout, fail_open, p).await;
            v.latency = started.elapsed();
            v
        }
    }
}

/// Adds what the audit record of a delegated outcome says about it: the model, whether the
/// verdict came from the cache, the latency, and the process chain that was sent.
pub fn annotate(request: &mut Map<String, Value>, v: &Verdict, action: rampart_engine::Action) {
    if let Some(m) = &v.model {
        request.insert("verify_model".into(), Value::from(m.clone()));
    }
    if action == rampart_engine::Action::Verify {
        let cache = if v.cached { "hit" } else { "miss" };
        request.insert("verify_cache".into(), Value::from(cache));
    }
    let ms = (v.latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    request.insert("delegate_latency_ms".into(), json!(ms));
    if let Some(chain) = &v.lineage {
        request.insert("lineage".into(), json!(chain));
    }
}

/// An HTTP client that never follows redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client builds")
}

/// Asks the delegate at `url`; never fails: a failure becomes allow or deny per `fail_open`.
pub async fn ask(
    client: &reqwest::Client,
    kind: Kind,
    url: &str,
    timeout: Duration,
    fail_open: bool,
    p: &Payload<'_>,
) -> Verdict {
    settle(
        kind,
        call(client, kind, url, timeout, p, None).await,
        fail_open,
    )
}

/// An answer, or the fail mode's verdict for a failure.
fn settle(kind: Kind, answer: Result<Verdict, String>, fail_open: bool) -> Verdict {
    match answer {
        Ok(v) => v,
        Err(reason) => {
            let noun = kind.noun();
            let how = if fail_open { "open" } else { "closed" };
            Verdict {
                allowed: fail_open,
                message: format!("{noun} unavailable, failing {how}: {reason}"),
                ..Verdict::default()
            }
        }
    }
}

async fn call(
    client: &reqwest::Client,
    kind: Kind,
    url: &str,
    timeout: Duration,
    p: &Payload<'_>,
    lineage: Option<&[String]>,
) -> Result<Verdict, String> {
    let noun = kind.noun();
    if url.trim().is_empty() {
        return Err(format!("{noun} action misconfigured"));
    }
    let mut body = json!({
        "tool": p.tool, "params": p.params, "agent": p.agent, "session": p.session,
        "policy": p.policy.unwrap_or("unknown"),
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    if let (Kind::Verifier, Some(ctx)) = (kind, p.task_context) {
        body["task_context"] = Value::from(ctx);
    }
    if let (Kind::Verifier, Some(lineage)) = (kind, lineage) {
        body["lineage"] = json!(lineage);
    }
    let resp = client
        .post(url)
        .timeout(timeout)
        .json(&body)
        .send()
        .await
        .map_err(|_| format!("{noun} request failed"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("{noun} returned HTTP {}", status.as_u16()));
    }
    let mut bytes = Vec::new();
    let mut resp = resp;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| format!("{noun} request failed"))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_ANSWER {
            return Err(format!("{noun} response exceeds size limit"));
        }
    }
    let answer: Value =
        serde_json::from_slice(&bytes).map_err(|_| format!("invalid {noun} response"))?;
    if kind == Kind::Verifier && answer.get("error").is_some_and(|e| !e.is_null()) {
        return Err("verifier degraded".into());
    }
    let decision = answer
        .get("decision")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("invalid {noun} response"))?;
    let reason = answer
        .get("reason")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
        .map(str::to_string);
    let model = answer
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string);
    match decision.trim().to_ascii_lowercase().as_str() {
        "allow" => Ok(Verdict {
            allowed: true,
            message: format!("allowed by {noun}"),
            model,
            ..Verdict::default()
        }),
        "deny" => Ok(Verdict {
            allowed: false,
            message: reason.unwrap_or_else(|| format!("denied by {noun}")),
            model,
            ..Verdict::default()
        }),
        other => Err(format!("unknown {noun} decision: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;

    async fn server(answer: &'static str, status: u16) -> String {
        let app = Router::new().route(
            "/decide",
            post(
                move || async move { (axum::http::StatusCode::from_u16(status).unwrap(), answer) },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/decide")
    }

    fn payload(params: &Map<String, Value>) -> Payload<'_> {
        Payload {
            tool: "exec",
            params,
            agent: "a",
            session: "s",
            policy: Some("p"),
            task_context: None,
            lineage: None,
        }
    }

    #[tokio::test]
    async fn allow_deny_and_failures() {
        let c = client();
        let params = Map::new();
        let t = Duration::from_secs(2);
        let allow = server(r#"{"decision":" ALLOW "}"#, 200).await;
        let v = ask(&c, Kind::Webhook, &allow, t, false, &payload(&params)).await;
        assert_eq!(
            (v.allowed, v.message.as_str()),
            (true, "allowed by webhook")
        );
        let deny = server(r#"{"decision":"deny","reason":"no prod","model":"m"}"#, 200).await;
        let v = ask(&c, Kind::Verifier, &deny, t, true, &payload(&params)).await;
        assert_eq!(
            (v.allowed, v.message.as_str(), v.model.as_deref()),
            (false, "no prod", Some("m"))
        );
        let broken = server("oops", 500).await;
        let v = ask(&c, Kind::Webhook, &broken, t, false, &payload(&params)).await;
        assert_eq!(
            v.message,
            "webhook unavailable, failing closed: webhook returned HTTP 500"
        );
        let v = ask(&c, Kind::Webhook, &broken, t, true, &payload(&params)).await;
        assert!(v.allowed);
        let degraded = server(r#"{"decision":"allow","error":"timeout"}"#, 200).await;
        let v = ask(&c, Kind::Verifier, &degraded, t, false, &payload(&params)).await;
        assert_eq!(
            v.message,
            "verifier unavailable, failing closed: verifier degraded"
        );
        let odd = server(r#"{"decision":"maybe"}"#, 200).await;
        let v = ask(&c, Kind::Webhook, &odd, t, false, &payload(&params)).await;
        assert_eq!(
            v.message,
            "webhook unavailable, failing closed: unknown webhook decision: \"maybe\""
        );
        let v = ask(
            &c,
            Kind::Webhook,
            "http://127.0.0.1:1/x",
            t,
            false,
            &payload(&params),
        )
        .await;
        assert_eq!(
            v.message,
            "webhook unavailable, failing closed: webhook request failed"
        );
    }
}
