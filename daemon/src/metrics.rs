//! Prometheus metrics: decisions by action and policy, evaluation time, gauges.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 11] = [
    1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1,
];

#[derive(Default)]
struct Inner {
    /// By action, then by first matched policy (nested so that counting an existing pair
    /// looks it up by `&str`, without building an owned key per decision).
    decisions: HashMap<String, HashMap<String, u64>>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Counts one enforcing decision.
    pub fn observe(&self, action: &str, policy: Option<&str>, eval: Duration) {
        let secs = eval.as_secs_f64();
        let policy = policy.unwrap_or("none");
        let mut m = self.inner.lock().expect("metrics lock");
        let by_policy = match m.decisions.get_mut(action) {
            Some(p) => p,
            None => m.decisions.entry(action.to_string()).or_default(),
        };
        match by_policy.get_mut(policy) {
            Some(n) => *n += 1,
            None => {
                by_policy.insert(policy.to_string(), 1);
            }
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                m.buckets[i] += 1;
            }
        }
        m.count += 1;
        m.sum += secs;
    }

    /// Prometheus text exposition.
    pub fn render(&self, pending: usize, policies: usize, uptime: Duration) -> String {
        let m = self.inner.lock().expect("metrics lock");
        let mut s = String::new();
        s.push_str("# HELP rampart_decisions_total Enforced decisions by action and first matched policy.\n");
        s.push_str("# TYPE rampart_decisions_total counter\n");
        let mut rows: Vec<_> = m
            .decisions
            .iter()
            .flat_map(|(a, by)| by.iter().map(move |(p, n)| ((a, p), n)))
            .collect();
        rows.sort();
        for ((action, policy), n) in rows {
            let _ = writeln!(
                s,
                "rampart_decisions_total{{action=\"{}\",policy=\"{}\"}} {n}",
                escape(action),
                escape(policy)
            );
        }
        s.push_str("# HELP rampart_eval_duration_seconds Policy evaluation time.\n");
        s.push_str("# TYPE rampart_eval_duration_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "rampart_eval_duration_seconds_bucket{{le=\"{b}\"}} {}",
                m.buckets[i]
            );
        }
        let _ = writeln!(
            s,
            "rampart_eval_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            m.count
        );
        let _ = writeln!(s, "rampart_eval_duration_seconds_sum {}", m.sum);
        let _ = writeln!(s, "rampart_eval_duration_seconds_count {}", m.count);
        for (name, help, v) in [
            (
                "rampart_pending_approvals",
                "Approvals waiting for a human.",
                pending as f64,
            ),
            (
                "rampart_policy_count",
                "Enabled policies loaded.",
                policies as f64,
            ),
            (
                "rampart_uptime_seconds",
                "Seconds since the daemon started.",
                uptime.as_secs_f64(),
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        if let Some(rss) = resident_bytes() {
            let _ = writeln!(
                s,
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
            );
        }
        s
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident set size from /proc (Linux).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
