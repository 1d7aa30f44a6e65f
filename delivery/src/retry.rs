//! When to retry a transient failure: exponential backoff with jitter.

use std::time::Duration;

/// How transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included; then the recipients still
    /// failing transiently are given up.
    pub max_attempts: u32,
    /// The delay after the first attempt; it doubles after each one.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 1 s doubling up to 10 minutes (before jitter).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_secs(1),
            max: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// True when no attempt may follow `attempts_made`.
    pub fn gives_up(&self, attempts_made: u32) -> bool {
        attempts_made >= self.max_attempts
    }

    /// The delay before the next attempt after `attempts_made` (1 or more)
    /// attempts: `base * 2^(attempts_made-1)`, capped at `max`, then scaled
    /// by `jitter` in [0, 1] to between half and all of it, so that many
    /// messages deferred together do not come back together.
    pub fn delay(&self, attempts_made: u32, jitter: f64) -> Duration {
        let doublings = attempts_made.saturating_sub(1).min(30);
        let full = self
            .base
            .saturating_mul(1u32 << doublings)
            .min(self.max.max(self.base));
        full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// [`delay`](Self::delay) with a random jitter.
    pub fn random_delay(&self, attempts_made: u32) -> Duration {
        use rand_core::RngCore;
        let jitter = rand_core::OsRng.next_u32() as f64 / u32::MAX as f64;
        self.delay(attempts_made, jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_jitters() {
        let p = RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(100),
            max: Duration::from_millis(350),
        };
        assert_eq!(p.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(p.delay(2, 1.0), Duration::from_millis(200));
        assert_eq!(p.delay(3, 1.0), Duration::from_millis(350));
        assert_eq!(p.delay(40, 1.0), Duration::from_millis(350));
        assert_eq!(p.delay(2, 0.0), Duration::from_millis(100));
        let d = p.random_delay(2);
        assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(200));
        assert!(!p.gives_up(3) && p.gives_up(4));
    }
}
