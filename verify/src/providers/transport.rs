//! One bounded JSON POST to a provider.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::ProviderError;
use crate::redact::mask_text;

/// Largest successful answer read: a one-line verdict is tiny, so anything near this is not
/// an answer worth parsing, and an unbounded read would let a broken upstream exhaust memory.
pub const MAX_ANSWER_BYTES: usize = 256 << 10;
/// How much of an error body is kept for the log.
const MAX_ERROR_EXCERPT: usize = 512;

pub fn client() -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        // A redirect would resend the key to wherever it points.
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| ProviderError::Transport(describe(&e)))
}

/// POSTs `body` and returns the 2xx answer's JSON, all before `deadline`.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&'static str, String)],
    body: &Value,
    deadline: Instant,
    budget: Duration,
) -> Result<Value, ProviderError> {
    let call = async {
        let mut req = client.post(url).json(body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| ProviderError::Transport(describe(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let excerpt = read_bounded(&mut resp, MAX_ERROR_EXCERPT, true).await?;
            return Err(ProviderError::Status {
                status: status.as_u16(),
                excerpt: mask_text(String::from_utf8_lossy(&excerpt).trim()).into_owned(),
                retry_after,
            });
        }
        let bytes = read_bounded(&mut resp, MAX_ANSWER_BYTES, false).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ProviderError::InvalidResponse(format!("not JSON: {e}")))
    };
    match tokio::time::timeout_at(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(ProviderError::Timeout(budget)),
    }
}

/// Reads at most `limit` bytes; beyond that, either truncates (`truncate`) or fails.
async fn read_bounded(
    resp: &mut reqwest::Response,
    limit: usize,
    truncate: bool,
) -> Result<Vec<u8>, ProviderError> {
    if !truncate && resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ProviderError::TooLarge(limit));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ProviderError::Transport(describe(&e)))?
    {
        if buf.len() + chunk.len() > limit {
            if truncate {
                buf.extend_from_slice(&chunk[..limit - buf.len()]);
                break;
            }
            return Err(ProviderError::TooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// `Retry-After` in seconds (integer or decimal); the HTTP-date form is not used by the
/// providers and falls back to the default backoff.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// The error and its causes on one line, secrets masked (a base URL may carry userinfo).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    mask_text(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
