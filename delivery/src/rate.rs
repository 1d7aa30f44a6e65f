//! Token-bucket rate limits: per relay and per recipient domain.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rate: `count` events per `per`, such as 100 per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many.
    pub count: u32,
    /// In how long.
    pub per: Duration,
}

impl Rate {
    /// The interval between two events at this rate.
    pub fn interval(&self) -> Duration {
        self.per / self.count.max(1)
    }
}

/// Why a rate did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateError(String);

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RateError {}

impl FromStr for Rate {
    type Err = RateError;

    /// `N/s`, `N/m`, `N/h` or `N/d` (also `sec`, `min`, `hour`, `day`).
    fn from_str(s: &str) -> Result<Rate, RateError> {
        let bad = || RateError(format!("`{s}` is not a rate such as 10/s, 100/m or 1000/h"));
        let (count, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(RateError(format!("`{s}`: the count must be at least 1")));
        }
        let seconds = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86400,
            _ => return Err(bad()),
        };
        Ok(Rate {
            count,
            per: Duration::from_secs(seconds),
        })
    }
}

/// A token bucket with a burst of one: events are spaced by the rate's
/// interval. Callers reserve their turn and then wait for it, so waiting
/// callers keep their order and never spin.
#[derive(Debug)]
pub struct TokenBucket {
    interval: Duration,
    /// When the next event may start.
    next: Mutex<Option<Instant>>,
}

impl TokenBucket {
    /// A bucket that lets `rate` events through.
    pub fn new(rate: Rate) -> Self {
        TokenBucket {
            interval: rate.interval(),
            next: Mutex::new(None),
        }
    }

    /// The time between two events.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Reserves the next turn and returns how long to wait for it.
    pub fn reserve(&self, now: Instant) -> Duration {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let start = match *next {
            Some(at) if at > now => at,
            _ => now,
        };
        *next = Some(start + self.interval);
        start - now
    }

    /// Waits for the next turn.
    pub fn take(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(
            "5/s".parse::<Rate>().unwrap().interval(),
            Duration::from_millis(200)
        );
        assert_eq!(
            "120/m".parse::<Rate>().unwrap().interval(),
            Duration::from_millis(500)
        );
        assert_eq!(
            "3600/h".parse::<Rate>().unwrap().interval(),
            Duration::from_secs(1)
        );
        for bad in ["", "5", "0/s", "x/s", "5/w", "-1/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn spaces_events_by_the_interval() {
        let bucket = TokenBucket::new("10/s".parse().unwrap());
        let t0 = Instant::now();
        assert_eq!(bucket.reserve(t0), Duration::ZERO);
        assert_eq!(bucket.reserve(t0), Duration::from_millis(100));
        assert_eq!(bucket.reserve(t0), Duration::from_millis(200));
        // After a quiet period the bucket is full again (burst of one).
        let later = t0 + Duration::from_secs(5);
        assert_eq!(bucket.reserve(later), Duration::ZERO);
        assert_eq!(bucket.reserve(later), Duration::from_millis(100));
    }
}
