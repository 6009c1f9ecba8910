//! The state every task of a server shares: configuration, store, hub, counters, randomness.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::hub::Hub;
use crate::store::Store;

/// Counters for `/status` and `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Messages stored (ack 1 given).
    pub(crate) messages_stored: AtomicU64,
    /// Messages in the queue (not yet delivered to every device).
    pub(crate) queued: AtomicU64,
    /// Messages pushed to devices.
    pub(crate) deliveries: AtomicU64,
    /// Delivery receipts that took a message off a device's queue.
    pub(crate) receipts: AtomicU64,
    /// Messages that expired undelivered.
    pub(crate) expired: AtomicU64,
    /// Connections accepted since start.
    pub(crate) connections_total: AtomicU64,
    /// Open WebSocket connections (web clients and phones, linked or not).
    pub(crate) connections_open: AtomicU64,
    /// Requests refused for exceeding the rate.
    pub(crate) rate_limited: AtomicU64,
    /// Connections closed for misbehaving (bad MAC, binary before keys, lagging).
    pub(crate) closed_for_abuse: AtomicU64,
    /// Devices linked by QR.
    pub(crate) links: AtomicU64,
    /// Logins with stored credentials.
    pub(crate) logins: AtomicU64,
    /// Media uploads and their bytes.
    pub(crate) media_uploads: AtomicU64,
    pub(crate) media_bytes: AtomicU64,
    pub(crate) media_downloads: AtomicU64,
}

impl Metrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(counter: &AtomicU64, n: u64) {
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(n))
        });
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Everything the tasks of one server share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hub: Hub,
    pub(crate) metrics: Metrics,
    pub(crate) media_dir: PathBuf,
    /// `host:port` of the media service, as clients reach it.
    pub(crate) media_host: String,
    pub(crate) shutdown: watch::Receiver<bool>,
    rng: Mutex<ChaCha20Rng>,
    tasks: Mutex<JoinSet<()>>,
    started: Instant,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("media_host", &self.media_host)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        store: Arc<dyn Store>,
        media_dir: PathBuf,
        media_host: String,
        shutdown: watch::Receiver<bool>,
        seed: [u8; 32],
    ) -> Shared {
        Shared {
            config,
            store,
            hub: Hub::default(),
            metrics: Metrics::default(),
            media_dir,
            media_host,
            shutdown,
            rng: Mutex::new(ChaCha20Rng::from_seed(seed)),
            tasks: Mutex::new(JoinSet::new()),
            started: Instant::now(),
        }
    }

    /// Random bytes from the server's generator (ChaCha20, seeded from the OS at start).
    pub(crate) fn random<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fill_bytes(&mut out);
        out
    }

    /// A random token: URL-safe base64 of 24 random bytes.
    pub(crate) fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.random::<24>())
    }

    /// A generator for one connection (IVs), seeded from the server's.
    pub(crate) fn conn_rng(&self) -> ChaCha20Rng {
        ChaCha20Rng::from_seed(self.random::<32>())
    }

    /// Runs a task that shutdown waits for.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// The tasks, for shutdown to wait on.
    pub(crate) fn take_tasks(&self) -> JoinSet<()> {
        std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether shutdown began.
    pub(crate) fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The `/status` document.
    pub(crate) fn status(&self) -> Value {
        let m = &self.metrics;
        let (web, phones) = self.hub.online_counts();
        json!({
            "uptime_secs": self.started.elapsed().as_secs(),
            "connections": {
                "open": Metrics::get(&m.connections_open),
                "total": Metrics::get(&m.connections_total),
                "web_online": web,
                "phones_online": phones,
            },
            "messages": {
                "stored": Metrics::get(&m.messages_stored),
                "queued": Metrics::get(&m.queued),
                "deliveries": Metrics::get(&m.deliveries),
                "receipts": Metrics::get(&m.receipts),
                "expired": Metrics::get(&m.expired),
            },
            "links": Metrics::get(&m.links),
            "logins": Metrics::get(&m.logins),
            "media": {
                "uploads": Metrics::get(&m.media_uploads),
                "bytes": Metrics::get(&m.media_bytes),
                "downloads": Metrics::get(&m.media_downloads),
            },
            "rate_limited": Metrics::get(&m.rate_limited),
            "closed_for_abuse": Metrics::get(&m.closed_for_abuse),
            "rss_bytes": rss_bytes(),
        })
    }

    /// The `/metrics` page (Prometheus text format).
    pub(crate) fn prometheus(&self) -> String {
        let m = &self.metrics;
        let (web, phones) = self.hub.online_counts();
        let rows: [(&str, &str, u64); 16] = [
            (
                "wa_connections_open",
                "gauge",
                Metrics::get(&m.connections_open),
            ),
            (
                "wa_connections_total",
                "counter",
                Metrics::get(&m.connections_total),
            ),
            ("wa_web_online", "gauge", web as u64),
            ("wa_phones_online", "gauge", phones as u64),
            (
                "wa_messages_stored_total",
                "counter",
                Metrics::get(&m.messages_stored),
            ),
            ("wa_messages_queued", "gauge", Metrics::get(&m.queued)),
            (
                "wa_deliveries_total",
                "counter",
                Metrics::get(&m.deliveries),
            ),
            ("wa_receipts_total", "counter", Metrics::get(&m.receipts)),
            (
                "wa_messages_expired_total",
                "counter",
                Metrics::get(&m.expired),
            ),
            ("wa_links_total", "counter", Metrics::get(&m.links)),
            ("wa_logins_total", "counter", Metrics::get(&m.logins)),
            (
                "wa_media_uploads_total",
                "counter",
                Metrics::get(&m.media_uploads),
            ),
            (
                "wa_media_bytes_total",
                "counter",
                Metrics::get(&m.media_bytes),
            ),
            (
                "wa_rate_limited_total",
                "counter",
                Metrics::get(&m.rate_limited),
            ),
            (
                "wa_closed_for_abuse_total",
                "counter",
                Metrics::get(&m.closed_for_abuse),
            ),
            ("wa_rss_bytes", "gauge", rss_bytes().unwrap_or(0)),
        ];
        let mut out = String::new();
        for (name, kind, value) in rows {
            out.push_str(&format!("# TYPE {name} {kind}\n{name} {value}\n"));
        }
        out
    }
}

/// The resident set size of this process, where the OS tells (Linux).
pub(crate) fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Unix time in seconds.
pub(crate) fn now_secs() -> u64 {
    now_ms() / 1000
}
