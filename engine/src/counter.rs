//! The sliding-window call counter behind `call_count` (policy spec §8). The engine never
//! reads a clock: callers pass `now` (milliseconds since the Unix epoch).

use std::collections::{HashMap, VecDeque};

/// Most timestamps kept per tool (so `gte` is at most 1000).
pub const MAX_ENTRIES_PER_TOOL: usize = 1000;
/// Most distinct tools counted.
pub const MAX_TOOLS: usize = 1024;
/// Longest tool name counted.
pub const MAX_TOOL_NAME: usize = 256;
const RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CounterError {
    #[error("tool name is {0} bytes; the call counter accepts at most {MAX_TOOL_NAME}")]
    NameTooLong(usize),
    #[error("the call counter already tracks {MAX_TOOLS} tools")]
    TooManyTools,
}

/// Arrival times of the newest calls, per tool.
#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    tools: HashMap<String, VecDeque<i64>>,
}

impl CallCounter {
    pub fn new() -> CallCounter {
        CallCounter::default()
    }

    /// Records one call of `tool` at `now_ms`.
    pub fn record(&mut self, tool: &str, now_ms: i64) -> Result<(), CounterError> {
        if tool.len() > MAX_TOOL_NAME {
            return Err(CounterError::NameTooLong(tool.len()));
        }
        if !self.tools.contains_key(tool) && self.tools.len() >= MAX_TOOLS {
            self.prune(now_ms);
            if self.tools.len() >= MAX_TOOLS {
                return Err(CounterError::TooManyTools);
            }
        }
        let q = self.tools.entry(tool.to_string()).or_default();
        q.push_back(now_ms);
        while q.len() > MAX_ENTRIES_PER_TOOL {
            q.pop_front();
        }
        while q.front().is_some_and(|&t| t < now_ms - RETENTION_MS) {
            q.pop_front();
        }
        Ok(())
    }

    /// Calls of `tool` within `[now − window, now]`.
    pub fn count(&self, tool: &str, window_ms: i64, now_ms: i64) -> u32 {
        let Some(q) = self.tools.get(tool) else {
            return 0;
        };
        let from = now_ms - window_ms;
        q.iter()
            .rev()
            .take_while(|&&t| t >= from)
            .filter(|&&t| t <= now_ms)
            .count() as u32
    }

    fn prune(&mut self, now_ms: i64) {
        self.tools.retain(|_, q| {
            while q.front().is_some_and(|&t| t < now_ms - RETENTION_MS) {
                q.pop_front();
            }
            !q.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window() {
        let mut c = CallCounter::new();
        for t in [0, 10_000, 20_000, 30_000] {
            c.record("fetch", t).unwrap();
        }
        assert_eq!(c.count("fetch", 15_000, 30_000), 2);
        assert_eq!(c.count("fetch", 60_000, 30_000), 4);
        assert_eq!(c.count("read", 60_000, 30_000), 0);
    }

    #[test]
    fn bounded() {
        let mut c = CallCounter::new();
        for t in 0..1500 {
            c.record("x", t).unwrap();
        }
        assert_eq!(c.count("x", 1_000_000, 2000), 1000);
        assert!(c.record(&"n".repeat(300), 0).is_err());
        for i in 0..MAX_TOOLS - 1 {
            c.record(&format!("t{i}"), 0).unwrap();
        }
        assert_eq!(c.record("one-too-many", 0), Err(CounterError::TooManyTools));
    }
}
