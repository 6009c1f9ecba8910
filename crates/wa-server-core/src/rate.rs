//! Token buckets on the core's time: `rate` requests per second on average, `burst` at once.

use wa_wire::Time;

/// A token bucket.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    /// Thousandths of a token, so that the arithmetic is exact.
    milli_tokens: u64,
    burst: u64,
    rate: u64,
    last: Time,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new(rate: u32, burst: u32, now: Time) -> Bucket {
        let burst = u64::from(burst.max(1)) * 1000;
        Bucket {
            milli_tokens: burst,
            burst,
            rate: u64::from(rate),
            last: now,
        }
    }

    /// Takes a token if there is one.
    pub(crate) fn take(&mut self, now: Time) -> bool {
        let elapsed = now.as_millis().saturating_sub(self.last.as_millis());
        if now > self.last {
            self.last = now;
        }
        // rate tokens per second = rate milli-tokens per millisecond.
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(self.burst);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
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
