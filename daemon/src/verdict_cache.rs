//! Recent verifier verdicts, so a repeated command never reaches the model twice
//! (architecture §4, HTTP API spec §10).
//!
//! A verdict is reused only for the same tool, the same canonical parameters (which hold the
//! normalized command and the working directory), the same task context, the same policy
//! version and the same verifier (URL and the model it last answered with). Only answers are
//! kept, never failures; entries expire after a TTL and the oldest go first when the cache
//! is full.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What identifies a question to the verifier.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub tool: String,
    /// The canonical JSON of the call's parameters.
    pub params: String,
    pub task_context: Option<String>,
    pub policy_version: u64,
    pub verifier: String,
    pub model: Option<String>,
}

/// A cached answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cached {
    pub allowed: bool,
    pub message: String,
    pub model: Option<String>,
}

struct Entry {
    verdict: Cached,
    stored: Instant,
}

struct Inner {
    entries: HashMap<Key, Entry>,
    /// Insertion order, oldest first (keys may be stale: re-inserted or already evicted).
    order: VecDeque<(Key, Instant)>,
    /// The model each verifier URL named in its latest answer.
    models: HashMap<String, String>,
    hits: u64,
    misses: u64,
}

/// The cache. `capacity` 0 or `ttl` 0 turns it off.
pub struct VerdictCache {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Inner>,
}

impl VerdictCache {
    pub fn new(ttl: Duration, capacity: usize) -> VerdictCache {
        VerdictCache {
            ttl,
            capacity,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
                models: HashMap::new(),
                hits: 0,
                misses: 0,
            }),
        }
    }

    fn enabled(&self) -> bool {
        self.capacity > 0 && !self.ttl.is_zero()
    }

    /// The model `verifier` named last (part of the key: a model switch starts afresh).
    pub fn model_of(&self, verifier: &str) -> Option<String> {
        let inner = self.inner.lock().expect("verdict cache lock");
        inner.models.get(verifier).cloned()
    }

    /// A fresh verdict for `key`, if any.
    pub fn get(&self, key: &Key, now: Instant) -> Option<Cached> {
        if !self.enabled() {
            return None;
        }
        let mut inner = self.inner.lock().expect("verdict cache lock");
        let fresh = inner
            .entries
            .get(key)
            .filter(|e| now.saturating_duration_since(e.stored) < self.ttl)
            .map(|e| e.verdict.clone());
        match fresh {
            Some(v) => {
                inner.hits += 1;
                Some(v)
            }
            None => {
                inner.entries.remove(key);
                inner.misses += 1;
                None
            }
        }
    }

    /// Keeps an answer (call only with real answers, never with failures).
    pub fn put(&self, key: Key, verdict: Cached, now: Instant) {
        let mut inner = self.inner.lock().expect("verdict cache lock");
        if let Some(model) = &verdict.model {
            inner.models.insert(key.verifier.clone(), model.clone());
        }
        if !self.enabled() {
            return;
        }
        inner.order.push_back((key.clone(), now));
        inner.entries.insert(
            key,
            Entry {
                verdict,
                stored: now,
            },
        );
        // Drop the oldest until within capacity; skip order records whose entry was
        // re-inserted later (their timestamp no longer matches).
        while inner.entries.len() > self.capacity {
            let Some((old, at)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&old).is_some_and(|e| e.stored == at) {
                inner.entries.remove(&old);
            }
        }
        // Keep the order queue from growing without bound under re-insertions.
        if inner.order.len() > self.capacity.saturating_mul(4).max(64) {
            let Inner { entries, order, .. } = &mut *inner;
            order.retain(|(k, at)| entries.get(k).is_some_and(|e| e.stored == *at));
        }
    }

    /// (entries, hits, misses), for metrics and status.
    pub fn stats(&self) -> (usize, u64, u64) {
        let inner = self.inner.lock().expect("verdict cache lock");
        (inner.entries.len(), inner.hits, inner.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cmd: &str) -> Key {
        Key {
            tool: "exec".into(),
            params: format!("{{\"command\":\"{cmd}\"}}"),
            task_context: None,
            policy_version: 0,
            verifier: "http://127.0.0.1:8090/verify".into(),
            model: None,
        }
    }

    fn allow() -> Cached {
        Cached {
            allowed: true,
            message: "allowed by verifier".into(),
            model: Some("m1".into()),
        }
    }

    #[test]
    fn a_stored_answer_is_reused_until_it_expires() {
        let c = VerdictCache::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        assert_eq!(c.get(&key("nc -l 80"), t0), None);
        c.put(key("nc -l 80"), allow(), t0);
        assert_eq!(
            c.get(&key("nc -l 80"), t0 + Duration::from_secs(59)),
            Some(allow())
        );
        assert_eq!(c.get(&key("nc -l 80"), t0 + Duration::from_secs(61)), None);
        assert_eq!(c.stats(), (0, 1, 2));
        assert_eq!(
            c.model_of("http://127.0.0.1:8090/verify").as_deref(),
            Some("m1")
        );
    }

    #[test]
    fn every_part_of_the_key_counts() {
        let c = VerdictCache::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        c.put(key("a"), allow(), t0);
        let mut other = key("a");
        other.policy_version = 1;
        assert_eq!(c.get(&other, t0), None);
        let mut other = key("a");
        other.model = Some("m2".into());
        assert_eq!(c.get(&other, t0), None);
        let mut other = key("a");
        other.task_context = Some("deploy".into());
        assert_eq!(c.get(&other, t0), None);
        assert_eq!(c.get(&key("b"), t0), None);
        assert!(c.get(&key("a"), t0).is_some());
    }

    #[test]
    fn the_oldest_entries_go_first_when_full() {
        let c = VerdictCache::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        c.put(key("a"), allow(), t0);
        c.put(key("b"), allow(), t0 + Duration::from_millis(1));
        c.put(key("a"), allow(), t0 + Duration::from_millis(2)); // refreshed
        c.put(key("c"), allow(), t0 + Duration::from_millis(3));
        let now = t0 + Duration::from_millis(4);
        assert!(c.get(&key("a"), now).is_some());
        assert!(c.get(&key("b"), now).is_none(), "b was the oldest");
        assert!(c.get(&key("c"), now).is_some());
    }

    #[test]
    fn zero_capacity_or_ttl_turns_it_off() {
        let t0 = Instant::now();
        for c in [
            VerdictCache::new(Duration::ZERO, 10),
            VerdictCache::new(Duration::from_secs(60), 0),
        ] {
            c.put(key("a"), allow(), t0);
            assert_eq!(c.get(&key("a"), t0), None);
        }
    }
}
