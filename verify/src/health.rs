//! `GET /health`: a real provider round trip (HTTP API spec §14.1), remembered for a while
//! (§14.8 allows 30 s) so a monitoring loop does not turn into a steady paid LLM bill.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::verifier::Verifier;

pub const CACHE_FOR: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct Report {
    pub healthy: bool,
    pub latency: Duration,
    /// Why the provider call failed, secrets masked.
    pub error: Option<String>,
}

#[derive(Default)]
pub struct Health {
    // An async mutex held across the probe: concurrent checks wait for one provider call
    // instead of each making their own.
    last: Mutex<Option<(Instant, Report)>>,
}

impl Health {
    pub async fn check(&self, verifier: &Verifier) -> Report {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < CACHE_FOR
        {
            return report.clone();
        }
        let start = Instant::now();
        let result = verifier.probe().await;
        let report = Report {
            healthy: result.is_ok(),
            latency: start.elapsed(),
            error: result.err().map(|e| e.to_string()),
        };
        if let Some(e) = &report.error {
            tracing::warn!(error = %e, "health check: provider call failed");
        }
        *last = Some((Instant::now(), report.clone()));
        report
    }
}
