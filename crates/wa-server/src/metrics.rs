//! Counters for `/status` and `/metrics`, the process's resident set size, and the clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use wa_server_core::Time;

/// The driver's counters (gauges are computed when asked).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) connections_total: AtomicU64,
    pub(crate) websockets_open: AtomicU64,
    pub(crate) web_open: AtomicU64,
    pub(crate) phones_open: AtomicU64,
    pub(crate) logins: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) jobs: AtomicU64,
    pub(crate) job_errors: AtomicU64,
    pub(crate) write_timeouts: AtomicU64,
    pub(crate) lagged_closes: AtomicU64,
    pub(crate) media_uploads: AtomicU64,
    pub(crate) media_bytes: AtomicU64,
    pub(crate) media_downloads: AtomicU64,
    pub(crate) responses_overdue: AtomicU64,
    pub(crate) media_expired: AtomicU64,
    pub(crate) messages_expired: AtomicU64,
}

impl Metrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dec(counter: &AtomicU64) {
        counter.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The resident set size of this process, where the OS tells (`VmRSS` in `/proc/self/status`).
pub(crate) fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

/// Now, from the system clock, as the core takes it.
pub(crate) fn now() -> Time {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Time::from_millis(ms)
}
