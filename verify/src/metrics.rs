//! Counters for `GET /metrics`: the reference's JSON fields (HTTP API spec §14.1), and the
//! same figures as Prometheus text for scrapers.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clock::round_ms;
use crate::parse::{Decision, Verdict};

pub struct Metrics {
    started: Instant,
    requests: AtomicU64,
    allows: AtomicU64,
    denies: AtomicU64,
    errors: AtomicU64,
    rate_limited: AtomicU64,
    latency_micros: AtomicU64,
    latency_samples: AtomicU64,
}

/// What one `/verify` ended as, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Deny,
    /// A provider failure answered allow (fail open): an allow and an error.
    FailedOpen,
    /// A provider failure answered 503 (fail closed).
    FailedClosed,
    RateLimited,
}

impl From<&Verdict> for Outcome {
    fn from(v: &Verdict) -> Outcome {
        match v.decision {
            Decision::Allow => Outcome::Allow,
            Decision::Deny => Outcome::Deny,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            allows: AtomicU64::new(0),
            denies: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            latency_micros: AtomicU64::new(0),
            latency_samples: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one `/verify` that passed validation. As in the reference, rate-limited calls
    /// count as requests and their (tiny) latency is sampled.
    pub fn record(&self, outcome: Outcome, latency: Duration) {
        self.requests.fetch_add(1, Relaxed);
        match outcome {
            Outcome::Allow => {
                self.allows.fetch_add(1, Relaxed);
            }
            Outcome::Deny => {
                self.denies.fetch_add(1, Relaxed);
            }
            Outcome::FailedOpen => {
                self.allows.fetch_add(1, Relaxed);
                self.errors.fetch_add(1, Relaxed);
            }
            Outcome::FailedClosed => {
                self.errors.fetch_add(1, Relaxed);
            }
            Outcome::RateLimited => {
                self.rate_limited.fetch_add(1, Relaxed);
            }
        }
        self.latency_micros
            .fetch_add(latency.as_micros() as u64, Relaxed);
        self.latency_samples.fetch_add(1, Relaxed);
    }

    fn avg_latency(&self) -> Duration {
        let n = self.latency_samples.load(Relaxed);
        if n == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.latency_micros.load(Relaxed) / n)
    }

    /// The reference's fields, plus ours (`total_rate_limited`).
    pub fn json(&self, model: &str) -> Value {
        json!({
            "total_requests": self.requests.load(Relaxed),
            "total_allows": self.allows.load(Relaxed),
            "total_denies": self.denies.load(Relaxed),
            "total_errors": self.errors.load(Relaxed),
            "total_rate_limited": self.rate_limited.load(Relaxed),
            "avg_latency_ms": round_ms(self.avg_latency()),
            "model": model,
            "uptime_seconds": (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        })
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn prometheus(&self, model: &str, provider: &str) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        let count = |c: &AtomicU64| c.load(Relaxed).to_string();
        metric(
            "rampart_verify_requests_total",
            "counter",
            "POST /verify requests that passed validation, rate-limited ones included.",
            count(&self.requests),
        );
        metric(
            "rampart_verify_allows_total",
            "counter",
            "Requests answered allow (fail-open answers included).",
            count(&self.allows),
        );
        metric(
            "rampart_verify_denies_total",
            "counter",
            "Requests answered deny.",
            count(&self.denies),
        );
        metric(
            "rampart_verify_errors_total",
            "counter",
            "Requests whose provider call failed.",
            count(&self.errors),
        );
        metric(
            "rampart_verify_rate_limited_total",
            "counter",
            "Requests refused with 429 by VERIFY_RATE_LIMIT.",
            count(&self.rate_limited),
        );
        let _ = writeln!(
            out,
            "# HELP rampart_verify_latency_seconds Time to answer POST /verify.\n\
             # TYPE rampart_verify_latency_seconds summary\n\
             rampart_verify_latency_seconds_sum {}\n\
             rampart_verify_latency_seconds_count {}",
            self.latency_micros.load(Relaxed) as f64 / 1e6,
            self.latency_samples.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP rampart_verify_uptime_seconds Seconds since the sidecar started.\n\
             # TYPE rampart_verify_uptime_seconds gauge\n\
             rampart_verify_uptime_seconds {:.1}",
            self.started.elapsed().as_secs_f64()
        );
        let _ = writeln!(
            out,
            "# HELP rampart_verify_info The model asked and its provider.\n\
             # TYPE rampart_verify_info gauge\n\
             rampart_verify_info{{model=\"{}\",provider=\"{}\"}} 1",
            label(model),
            label(provider)
        );
        out
    }
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_the_reference() {
        let m = Metrics::default();
        m.record(Outcome::Allow, Duration::from_millis(10));
        m.record(Outcome::Deny, Duration::from_millis(20));
        m.record(Outcome::FailedOpen, Duration::from_millis(30));
        m.record(Outcome::FailedClosed, Duration::from_millis(40));
        m.record(Outcome::RateLimited, Duration::ZERO);
        let j = m.json("gpt-4o-mini");
        assert_eq!(j["total_requests"], 5);
        assert_eq!(j["total_allows"], 2);
        assert_eq!(j["total_denies"], 1);
        assert_eq!(j["total_errors"], 2);
        assert_eq!(j["total_rate_limited"], 1);
        assert_eq!(j["avg_latency_ms"], 20.0);
        assert_eq!(j["model"], "gpt-4o-mini");
        let p = m.prometheus("m\"x", "openai");
        assert!(p.contains("\nrampart_verify_requests_total 5\n"), "{p}");
        assert!(p.contains("rampart_verify_latency_seconds_count 5\n"));
        assert!(p.contains("rampart_verify_info{model=\"m\\\"x\",provider=\"openai\"} 1"));
    }
}
