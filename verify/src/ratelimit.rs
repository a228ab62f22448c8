//! The process-global token bucket in front of `/verify` (HTTP API spec §14.7): capacity
//! `VERIFY_RATE_LIMIT`, refilled at capacity/60 tokens per second, starting full. It bounds
//! what a runaway agent can spend on the provider.

use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    state: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimiter {
    pub fn per_minute(limit: u32) -> RateLimiter {
        let capacity = f64::from(limit.max(1));
        RateLimiter {
            capacity,
            per_second: capacity / 60.0,
            state: Mutex::new(Bucket {
                tokens: capacity,
                refilled: Instant::now(),
            }),
        }
    }

    /// Takes one token if there is one.
    pub fn try_acquire(&self) -> bool {
        self.try_acquire_at(Instant::now())
    }

    fn try_acquire_at(&self, now: Instant) -> bool {
        // A poisoned lock only means another request panicked mid-update of two numbers;
        // the bucket is still usable.
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.capacity);
        b.refilled = now.max(b.refilled);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn starts_full_then_refills() {
        let rl = RateLimiter::per_minute(3);
        let t0 = Instant::now();
        assert!(rl.try_acquire_at(t0));
        assert!(rl.try_acquire_at(t0));
        assert!(rl.try_acquire_at(t0));
        assert!(!rl.try_acquire_at(t0));
        // 3 per minute: one token every 20 s
        assert!(!rl.try_acquire_at(t0 + Duration::from_secs(19)));
        assert!(rl.try_acquire_at(t0 + Duration::from_secs(20)));
        assert!(!rl.try_acquire_at(t0 + Duration::from_secs(21)));
        // never more than the capacity
        let later = t0 + Duration::from_secs(3600);
        assert!(rl.try_acquire_at(later));
        assert!(rl.try_acquire_at(later));
        assert!(rl.try_acquire_at(later));
        assert!(!rl.try_acquire_at(later));
    }
}
