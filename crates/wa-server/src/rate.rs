//! A token bucket: `rate` requests per second on average, `burst` at once.

use std::time::Instant;

/// A token bucket.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new(rate: u32, burst: u32, now: Instant) -> Bucket {
        let burst = f64::from(burst.max(1));
        Bucket {
            tokens: burst,
            burst,
            rate: f64::from(rate),
            last: now,
        }
    }

    /// Takes a token if there is one.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A connection's limits: one bucket for requests, and a roomier one for delivery receipts,
/// which a client sends for every message it gets (a busy chat is not abuse; throttling its
/// receipts would only keep messages queued).
#[derive(Debug, Clone)]
pub(crate) struct Limiter {
    requests: Bucket,
    receipts: Bucket,
}

/// How many times the request rate receipts may come at.
const RECEIPT_FACTOR: u32 = 10;

impl Limiter {
    pub(crate) fn new(limits: &crate::config::Limits, now: Instant) -> Limiter {
        let (rate, burst) = (limits.requests_per_second, limits.request_burst);
        Limiter {
            requests: Bucket::new(rate, burst, now),
            receipts: Bucket::new(
                rate.saturating_mul(RECEIPT_FACTOR),
                burst.saturating_mul(RECEIPT_FACTOR),
                now,
            ),
        }
    }

    /// Whether a request (or a receipt) may go ahead now.
    pub(crate) fn allow(&mut self, receipt: bool) -> bool {
        let now = Instant::now();
        if receipt {
            self.receipts.take(now)
        } else {
            self.requests.take(now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10, 3, t0);
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        // 10 per second: one more after 100 ms, not before.
        assert!(!b.take(t0 + Duration::from_millis(50)));
        assert!(b.take(t0 + Duration::from_millis(150)));
        // Refill stops at the burst size.
        let later = t0 + Duration::from_secs(60);
        let taken = (0..10).filter(|_| b.take(later)).count();
        assert_eq!(taken, 3);
    }
}
