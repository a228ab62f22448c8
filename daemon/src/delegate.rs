//! Decisions delegated over HTTP: the `webhook` action (HTTP API spec §9) and the `verify`
//! action's call to rampart-verify (§10). Both answer allow or deny; failures follow the
//! rule's `fail_open`.

use std::time::Duration;

use serde_json::{Map, Value, json};

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub message: String,
    /// The model the verifier used, when it says.
    pub model: Option<String>,
}

/// What is sent: the call, canonicalized.
pub struct Payload<'a> {
    pub tool: &'a str,
    pub params: &'a Map<String, Value>,
    pub agent: &'a str,
    pub session: &'a str,
    pub policy: Option<&'a str>,
    pub task_context: Option<&'a str>,
}

/// Carries out a `webhook` or `verify` decision: asks the rule's webhook URL or the
/// configured verifier, under the rule's timeout and fail mode.
pub async fn decide(
    client: &reqwest::Client,
    verify_url: Option<&str>,
    d: &rampart_engine::Decision,
    p: &Payload<'_>,
) -> Verdict {
    match d.action {
        rampart_engine::Action::Verify => {
            let opts = d.verify.clone().unwrap_or_default();
            let url = verify_url.unwrap_or("");
            ask(client, Kind::Verifier, url, opts.timeout, opts.fail_open, p).await
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
                    model: None,
                };
            }
            ask(client, Kind::Webhook, url, timeout, fail_open, p).await
        }
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
    match call(client, kind, url, timeout, p).await {
        Ok(v) => v,
        Err(reason) => {
            let noun = kind.noun();
            if fail_open {
                Verdict {
                    allowed: true,
                    message: format!("{noun} unavailable, failing open: {reason}"),
                    model: None,
                }
            } else {
                Verdict {
                    allowed: false,
                    message: format!("{noun} unavailable, failing closed: {reason}"),
                    model: None,
                }
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
        }),
        "deny" => Ok(Verdict {
            allowed: false,
            message: reason.unwrap_or_else(|| format!("denied by {noun}")),
            model,
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
