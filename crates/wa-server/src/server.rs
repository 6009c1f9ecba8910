//! Starting and stopping a server: the store, the listeners, the caps, the sweeper, shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use wa_server_core::store::{Store, StoreError, Table};
use wa_server_core::{DisconnectKind, Push};

use crate::bus::{Bus, BusTasks};
use crate::caps::Caps;
use crate::config::Config;
use crate::config::StoreKind;
use crate::error::Error;
use crate::http::{self, CapGroup, Routes};
use crate::media;
use crate::metrics::{Metrics, now, rss_bytes};
use crate::routing::Switchboard;
use crate::store::{self, PgStore, RedbStore};

/// The file name of the database in the data directory.
pub const DATABASE_FILE: &str = "wa-server.redb";

/// File descriptors kept for the store, the listeners, logs and media files besides sockets.
const FD_RESERVE: u64 = 64;

/// State shared by every task of a server.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) core: Arc<wa_server_core::Config>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) board: Switchboard,
    pub(crate) caps: Caps,
    pub(crate) status_caps: Caps,
    pub(crate) downloads: Arc<Semaphore>,
    pub(crate) metrics: Metrics,
    pub(crate) media_dir: PathBuf,
    pub(crate) media_host: String,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) tracker: TaskTracker,
    /// Budgets per account and per address, shared by this node's connections.
    pub(crate) budgets: Arc<std::sync::Mutex<wa_server_core::budget::Budgets>>,
    /// This node's name.
    pub(crate) node: String,
    started: Instant,
}

impl Shared {
    /// Entries waiting in devices' queues, and message records, from the store.
    async fn store_counts(&self) -> Option<(u64, u64)> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            store::read(&*store, |txn| {
                Ok((txn.len(Table::Inbox)?, txn.len(Table::Messages)?))
            })
        })
        .await
        .ok()?
        .ok()
    }

    /// The `/status` document.
    pub(crate) async fn status(&self) -> Value {
        let m = &self.metrics;
        let counts = self.store_counts().await;
        json!({
            "uptime_secs": self.started.elapsed().as_secs(),
            "connections": {
                "open": self.caps.open(),
                "unauthenticated": self.caps.unauthenticated(),
                "websockets": Metrics::get(&m.websockets_open),
                "web": Metrics::get(&m.web_open),
                "phones": Metrics::get(&m.phones_open),
                "total": Metrics::get(&m.connections_total),
                "refused": self.caps.refusals(),
                "lagged": Metrics::get(&m.lagged_closes),
                "write_timeouts": Metrics::get(&m.write_timeouts),
                "max": self.caps_max(),
            },
            "online_devices": self.board.online(),
            "messages": {
                "queued": counts.map(|c| c.0),
                "records": counts.map(|c| c.1),
                "expired": Metrics::get(&m.messages_expired),
            },
            "jobs": {"run": Metrics::get(&m.jobs), "failed": Metrics::get(&m.job_errors)},
            "media": {
                "uploads": Metrics::get(&m.media_uploads),
                "bytes": Metrics::get(&m.media_bytes),
                "downloads": Metrics::get(&m.media_downloads),
                "cut_off": Metrics::get(&m.responses_overdue),
                "expired": Metrics::get(&m.media_expired),
            },
            "rss_bytes": rss_bytes(),
            "cluster": self.cluster_status(),
        })
    }

    /// This node and what it knows of its cluster (`null` fields on a server alone).
    fn cluster_status(&self) -> Value {
        match self.board.bus() {
            Some(bus) => {
                let stat = |c: &std::sync::atomic::AtomicU64| Metrics::get(c);
                json!({
                    "node": self.node,
                    "cluster": self.config.bus.as_ref().map(|b| b.cluster.clone()),
                    "peers": bus.nodes_alive(),
                    "bus": {
                        "published": stat(&bus.stats.published),
                        "received": stat(&bus.stats.received),
                        "dropped": stat(&bus.stats.dropped),
                        "too_large": stat(&bus.stats.too_large),
                        "undecodable": stat(&bus.stats.undecodable),
                        "not_here": stat(&bus.stats.not_here),
                        "account_subjects": bus.account_subjects(),
                    },
                })
            }
            None => json!({"node": self.node, "cluster": null, "peers": [], "bus": null}),
        }
    }

    fn caps_max(&self) -> Value {
        json!({
            "connections": self.config.max_connections,
            "per_address": self.config.max_connections_per_address,
            "unauthenticated": self.config.max_unauthenticated,
        })
    }

    /// The `/metrics` page (Prometheus text format).
    pub(crate) async fn prometheus(&self) -> String {
        let m = &self.metrics;
        let counts = self.store_counts().await;
        let refused = self.caps.refusals();
        let to_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let rows: Vec<(&str, &str, &str, u64)> = vec![
            (
                "wa_connections_open",
                "gauge",
                "Open TCP connections (public listeners).",
                to_u64(self.caps.open()),
            ),
            (
                "wa_connections_unauthenticated",
                "gauge",
                "Connections not logged in.",
                to_u64(self.caps.unauthenticated()),
            ),
            (
                "wa_websockets_open",
                "gauge",
                "Open WebSockets.",
                Metrics::get(&m.websockets_open),
            ),
            (
                "wa_web_open",
                "gauge",
                "Open web client sockets.",
                Metrics::get(&m.web_open),
            ),
            (
                "wa_phones_open",
                "gauge",
                "Open phone sockets.",
                Metrics::get(&m.phones_open),
            ),
            (
                "wa_online_devices",
                "gauge",
                "Devices registered in the hub.",
                to_u64(self.board.online()),
            ),
            (
                "wa_connections_total",
                "counter",
                "Connections accepted.",
                Metrics::get(&m.connections_total),
            ),
            (
                "wa_refused_full_total",
                "counter",
                "Connections refused: connection cap.",
                refused[0],
            ),
            (
                "wa_refused_address_total",
                "counter",
                "Connections refused: per-address cap.",
                refused[1],
            ),
            (
                "wa_refused_unauthenticated_total",
                "counter",
                "Connections refused: not-logged-in cap.",
                refused[2],
            ),
            (
                "wa_logins_total",
                "counter",
                "Connections that logged in.",
                Metrics::get(&m.logins),
            ),
            (
                "wa_ws_messages_in_total",
                "counter",
                "WebSocket messages received.",
                Metrics::get(&m.messages_in),
            ),
            (
                "wa_ws_messages_out_total",
                "counter",
                "WebSocket messages sent.",
                Metrics::get(&m.messages_out),
            ),
            (
                "wa_jobs_total",
                "counter",
                "Store jobs run.",
                Metrics::get(&m.jobs),
            ),
            (
                "wa_job_errors_total",
                "counter",
                "Store jobs failed.",
                Metrics::get(&m.job_errors),
            ),
            (
                "wa_write_timeouts_total",
                "counter",
                "Sockets closed for not reading.",
                Metrics::get(&m.write_timeouts),
            ),
            (
                "wa_lagged_total",
                "counter",
                "Sockets closed for overflowing their push queue.",
                Metrics::get(&m.lagged_closes),
            ),
            (
                "wa_queued_entries",
                "gauge",
                "Entries waiting in devices' queues.",
                counts.map_or(0, |c| c.0),
            ),
            (
                "wa_message_records",
                "gauge",
                "Message records kept (until delivery or expiry).",
                counts.map_or(0, |c| c.1),
            ),
            (
                "wa_messages_expired_total",
                "counter",
                "Messages expired undelivered.",
                Metrics::get(&m.messages_expired),
            ),
            (
                "wa_media_uploads_total",
                "counter",
                "Media uploads.",
                Metrics::get(&m.media_uploads),
            ),
            (
                "wa_media_bytes_total",
                "counter",
                "Media bytes uploaded.",
                Metrics::get(&m.media_bytes),
            ),
            (
                "wa_media_downloads_total",
                "counter",
                "Media downloads.",
                Metrics::get(&m.media_downloads),
            ),
            (
                "wa_media_expired_total",
                "counter",
                "Media files expired.",
                Metrics::get(&m.media_expired),
            ),
            (
                "wa_responses_overdue_total",
                "counter",
                "Connections closed for not taking a download in time.",
                Metrics::get(&m.responses_overdue),
            ),
            (
                "wa_rss_bytes",
                "gauge",
                "Resident set size.",
                rss_bytes().unwrap_or(0),
            ),
            (
                "wa_uptime_seconds",
                "gauge",
                "Seconds since start.",
                self.started.elapsed().as_secs(),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        out
    }
}

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Swept {
    /// Messages that expired undelivered.
    pub messages: u64,
    /// Media files that expired.
    pub media: u64,
}

/// The reference server. See the [crate docs](crate).
#[derive(Debug)]
#[non_exhaustive]
pub struct Server;

impl Server {
    /// Starts a server with the store `config.store` names: by default `redb`
    /// ([`DATABASE_FILE`] in `config.data_dir`), or a PostgreSQL schema shared with the other
    /// nodes of a cluster (then with `config.bus`, the node joins the cluster's bus). Opens the
    /// store, joins the bus, binds the listeners, and returns once they accept connections (and
    /// the node hears what the other nodes publish).
    ///
    /// # Errors
    /// When the data directory cannot be used, the database cannot be opened (damaged, held by
    /// another server, PostgreSQL unreachable or of a newer schema), the bus cannot be joined, a
    /// bus is configured without a shared store, or an address cannot be bound.
    pub async fn start(config: Config) -> Result<RunningServer, Error> {
        if let StoreKind::Postgres { url, schema } = &config.store {
            let (url, schema) = (url.clone(), schema.clone());
            let opened = tokio::task::spawn_blocking(move || PgStore::open(&url, &schema))
                .await
                .map_err(|e| {
                    Error::Store(StoreError::Backend(format!(
                        "opening the PostgreSQL store panicked: {e}"
                    )))
                })??;
            return Server::start_with_store(config, Arc::new(opened)).await;
        }
        if config.bus.is_some() {
            return Err(Error::Config(
                "a cluster's nodes share their store: a bus needs the PostgreSQL store (--store postgres://...)"
                    .to_owned(),
            ));
        }
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| Error::DataDir {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(DATABASE_FILE);
        let opened = {
            let path = path.clone();
            let (cache, overlay) = (config.store_cache_bytes, config.store_overlay_bytes);
            tokio::task::spawn_blocking(move || RedbStore::open_with_limits(&path, cache, overlay))
                .await
        };
        let store = match opened {
            Ok(Ok(store)) => store,
            Ok(Err(source)) => return Err(Error::Database { path, source }),
            Err(e) => {
                return Err(Error::Database {
                    path,
                    source: StoreError::Backend(format!("opening the database panicked: {e}")),
                });
            }
        };
        Server::start_with_store(config, Arc::new(store)).await
    }

    /// Starts a server on another [`Store`] (media files still go to `config.data_dir`).
    ///
    /// # Errors
    /// As [`Server::start`].
    pub async fn start_with_store(
        mut config: Config,
        store: Arc<dyn Store>,
    ) -> Result<RunningServer, Error> {
        let media_dir = config
            .media_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("media"));
        std::fs::create_dir_all(&media_dir).map_err(|source| Error::DataDir {
            path: media_dir.clone(),
            source,
        })?;
        media::remove_partial_uploads(&media_dir, config.media_timeout);
        let node = match &config.node_id {
            Some(node) => node.clone(),
            None => {
                let mut id = [0u8; 4];
                getrandom::fill(&mut id).map_err(|e| Error::Random(e.to_string()))?;
                format!("node-{}", hex::encode(id))
            }
        };
        let bus = match &config.bus {
            Some(bus_config) => Some(Bus::connect(bus_config, &node).await?),
            None => None,
        };
        fit_caps_to_file_limit(&mut config);
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind { addr, source })
        };
        let local = |l: &TcpListener, addr: SocketAddr| {
            l.local_addr()
                .map_err(|source| Error::Bind { addr, source })
        };
        let main = bind(config.listen).await?;
        let local_addr = local(&main, config.listen)?;
        let media = match config.media_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let media_addr = match (&media, config.media_listen) {
            (Some(l), Some(addr)) => local(l, addr)?,
            _ => local_addr,
        };
        let status = match config.status_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let status_addr = match (&status, config.status_listen) {
            (Some(l), Some(addr)) => Some(local(l, addr)?),
            _ => None,
        };
        let media_host = config
            .media_host
            .clone()
            .unwrap_or_else(|| media_addr.to_string());
        let mut core = config.core.clone();
        core.media_host.clone_from(&media_host);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let budgets = wa_server_core::budget::Budgets::new(core.limits.budgets.clone());
        let shared = Arc::new(Shared {
            budgets: Arc::new(std::sync::Mutex::new(budgets)),
            core: Arc::new(core),
            store,
            board: Switchboard::with_bus(bus.as_ref().map(|(bus, _)| Arc::clone(bus))),
            node,
            caps: Caps::new(
                config.max_connections,
                config.max_connections_per_address,
                config.max_unauthenticated,
            ),
            status_caps: Caps::new(
                config.status_connections,
                config.status_connections,
                config.status_connections,
            ),
            downloads: Arc::new(Semaphore::new(config.max_downloads.max(1))),
            metrics: Metrics::default(),
            media_dir,
            media_host,
            shutdown: shutdown_rx,
            tracker: TaskTracker::new(),
            started: Instant::now(),
            config,
        });
        let mut loops = Vec::new();
        let main_routes = Routes {
            sockets: true,
            media: media.is_none(),
            status: true,
        };
        let app = http::app(&shared, main_routes);
        loops.push(tokio::spawn(http::accept_loop(
            main,
            app,
            Arc::clone(&shared),
            CapGroup::Public,
        )));
        if let Some(media) = media {
            let app = http::app(
                &shared,
                Routes {
                    sockets: false,
                    media: true,
                    status: false,
                },
            );
            loops.push(tokio::spawn(http::accept_loop(
                media,
                app,
                Arc::clone(&shared),
                CapGroup::Public,
            )));
        }
        if let Some(status) = status {
            let app = http::app(
                &shared,
                Routes {
                    sockets: false,
                    media: false,
                    status: true,
                },
            );
            loops.push(tokio::spawn(http::accept_loop(
                status,
                app,
                Arc::clone(&shared),
                CapGroup::Status,
            )));
        }
        loops.push(tokio::spawn(sweeper(Arc::clone(&shared))));
        let bus_tasks = bus.map(|(bus, pending)| bus.spawn(&shared, pending));
        tracing::info!(%local_addr, %media_addr, ?status_addr, "wa-server listening");
        Ok(RunningServer {
            shared,
            local_addr,
            media_addr,
            status_addr,
            shutdown: shutdown_tx,
            loops,
            bus_tasks,
        })
    }
}

/// Raises the open-file limit to its hard limit and keeps the connection caps below it.
fn fit_caps_to_file_limit(config: &mut Config) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit; caps left as configured");
            return;
        }
    };
    let to_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let extra = to_u64(config.max_downloads)
        .saturating_add(to_u64(config.status_connections))
        .saturating_add(FD_RESERVE);
    let room = usize::try_from(limit.saturating_sub(extra))
        .unwrap_or(usize::MAX)
        .max(1);
    if config.max_connections > room {
        tracing::warn!(
            configured = config.max_connections,
            lowered_to = room,
            open_file_limit = limit,
            "max_connections lowered to fit the open-file limit"
        );
        config.max_connections = room;
    }
    config.max_unauthenticated = config.max_unauthenticated.min(config.max_connections);
    config.max_connections_per_address = config
        .max_connections_per_address
        .min(config.max_connections);
    tracing::info!(
        open_file_limit = limit,
        max_connections = config.max_connections,
        max_connections_per_address = config.max_connections_per_address,
        max_unauthenticated = config.max_unauthenticated,
        max_downloads = config.max_downloads,
        "connection caps"
    );
}

/// A started server. Dropping it stops accepting without waiting; [`RunningServer::shutdown`]
/// stops it gracefully.
#[derive(Debug)]
pub struct RunningServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    media_addr: SocketAddr,
    status_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
    bus_tasks: Option<BusTasks>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// Where the WebSocket endpoints and status pages listen.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the media service listens (the main address unless configured apart).
    pub fn media_addr(&self) -> SocketAddr {
        self.media_addr
    }

    /// Where the extra status listener listens, if configured.
    pub fn status_addr(&self) -> Option<SocketAddr> {
        self.status_addr
    }

    /// The web clients' WebSocket URL, e.g. `ws://127.0.0.1:8080/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.local_addr)
    }

    /// The phones' WebSocket URL, e.g. `ws://127.0.0.1:8080/phone`.
    pub fn phone_url(&self) -> String {
        format!("ws://{}/phone", self.local_addr)
    }

    /// The media service's base URL, e.g. `http://127.0.0.1:8081`.
    pub fn media_url(&self) -> String {
        format!("http://{}", self.shared.media_host)
    }

    /// The status page's URL (on the status listener when there is one).
    pub fn status_url(&self) -> String {
        format!(
            "http://{}/status",
            self.status_addr.unwrap_or(self.local_addr)
        )
    }

    /// The configuration in force (caps lowered to the open-file limit, `media_host` filled in).
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The status document (as `/status` serves it).
    pub async fn status(&self) -> Value {
        self.shared.status().await
    }

    /// This node's name (its cluster's envelopes carry it; `/status` shows it).
    pub fn node_id(&self) -> &str {
        &self.shared.node
    }

    /// Runs one sweep now (the sweeper runs one every `sweep_interval`).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn sweep_now(&self) -> Result<Swept, StoreError> {
        sweep_once(&self.shared).await
    }

    /// Stops accepting, tells every connection to close (`Disconnect(Shutdown)`), waits up to
    /// [`Config::shutdown_grace`] for them to end, and closes the store after its last commit.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.shared
            .board
            .broadcast_forced(&Push::Disconnect(DisconnectKind::Shutdown));
        for handle in self.loops.drain(..) {
            let _ = handle.await;
        }
        self.shared.tracker.close();
        let grace = self.shared.config.shutdown_grace;
        if tokio::time::timeout(grace, self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.shared.tracker.len(),
                "connections still open after the grace period"
            );
        }
        // The connections are gone (their phones' departures queued for the other nodes):
        // publish what is left and leave the bus.
        if let Some(tasks) = self.bus_tasks.take() {
            tasks.stop().await;
        }
        let store = Arc::clone(&self.shared.store);
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
        tracing::info!("wa-server stopped");
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(tasks) = &self.bus_tasks {
            tasks.signal_stop();
        }
    }
}

/// Sweeps every `sweep_interval` until shutdown.
async fn sweeper(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let interval = shared.config.sweep_interval.max(Duration::from_millis(10));
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        match sweep_once(&shared).await {
            Ok(swept) if swept == Swept::default() => {}
            Ok(swept) => tracing::info!(messages = swept.messages, media = swept.media, "expired"),
            Err(e) => tracing::error!(error = %e, "sweeping failed"),
        }
    }
}

async fn sweep_once(shared: &Shared) -> Result<Swept, StoreError> {
    let batch = shared.config.sweep_batch.max(1);
    let mut messages = 0;
    loop {
        let (tx, rx) = tokio::sync::oneshot::channel();
        wa_server_core::execute(
            &*shared.store,
            wa_server_core::sweep(now(), batch),
            move |r| {
                let _ = tx.send(r);
            },
        );
        let outcome = rx.await.map_err(|_| StoreError::Closed)??;
        messages += outcome.swept_messages().unwrap_or(0);
        if !outcome.swept_more() {
            break;
        }
    }
    Metrics::add(&shared.metrics.messages_expired, messages);
    let media = media::sweep(shared, batch).await?;
    Ok(Swept { messages, media })
}
