//! Token buckets on the core's time: `rate` requests per second on average, `burst` at once.

use wa_wire::Time;

/// A token bucket.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: f64,
    burst: f64,
    /// Tokens per millisecond.
    rate: f64,
    last: Time,
}

impl Bucket {
    /// A full bucket: `rate` tokens per second, `burst` at most.
    pub(crate) fn new(rate: u32, burst: u32, now: Time) -> Bucket {
        Bucket::with_rate(f64::from(rate), burst, now)
    }

    /// A full bucket with a fractional rate (tokens per second).
    pub(crate) fn with_rate(per_second: f64, burst: u32, now: Time) -> Bucket {
        let burst = f64::from(burst.max(1));
        Bucket {
            tokens: burst,
            burst,
            rate: per_second.max(0.0) / 1000.0,
            last: now,
        }
    }

    /// Takes a token if there is one.
    pub(crate) fn take(&mut self, now: Time) -> bool {
        let elapsed = now.as_millis().saturating_sub(self.last.as_millis()) as f64;
        if now > self.last {
            self.last = now;
        }
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A connection's limits: one bucket for requests, and a roomier one for receipts, which a
/// client sends for every message it gets (a busy chat is not abuse; throttling its receipts
/// would only keep messages queued).
#[derive(Debug, Clone)]
pub(crate) struct Limiter {
    requests: Bucket,
    receipts: Bucket,
}

/// How many times the request rate receipts may come at.
const RECEIPT_FACTOR: u32 = 10;

impl Limiter {
    pub(crate) fn new(limits: &crate::config::Limits, now: Time) -> Limiter {
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
    pub(crate) fn allow(&mut self, now: Time, receipt: bool) -> bool {
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

    #[test]
    fn burst_then_rate() {
        let t0 = Time::from_secs(1000);
        let mut b = Bucket::new(10, 3, t0);
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        // 10 per second: one more after 100 ms, not before.
        assert!(!b.take(Time::from_millis(t0.as_millis() + 50)));
        assert!(b.take(Time::from_millis(t0.as_millis() + 150)));
        // Refill stops at the burst size.
        let later = Time::from_secs(2000);
        let taken = (0..10).filter(|_| b.take(later)).count();
        assert_eq!(taken, 3);
    }
}
