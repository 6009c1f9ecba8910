//! What the driver is configured with: where it listens, where it keeps its data (one node's
//! embedded store, or a cluster's PostgreSQL and bus), its caps and timeouts, and the core's own
//! configuration ([`wa_server_core::Config`]).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::bus::BusConfig;
use crate::code::{CodeSender, LogCodeSender};

/// Where the server keeps its durable state.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// One `redb` file in the data directory ([`crate::DATABASE_FILE`]): a server alone.
    Embedded,
    /// A schema of a PostgreSQL database ([`crate::store::PgStore`]), shared by the nodes of a
    /// cluster.
    Postgres {
        /// `postgres://user@host:port/database` (or the `key=value` form).
        url: String,
        /// The schema (a lowercase SQL identifier), created if missing. `public` by default.
        schema: String,
    },
}

impl fmt::Debug for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreKind::Embedded => f.write_str("Embedded"),
            // The URL may carry a password.
            StoreKind::Postgres { schema, .. } => f
                .debug_struct("Postgres")
                .field("schema", schema)
                .finish_non_exhaustive(),
        }
    }
}

/// Server configuration. The defaults suit a server on loopback and tests; every field's
/// default is documented on it (and in the crate docs' limits table).
///
/// ```
/// let mut config = wa_server::Config::new("/tmp/wa-data");
/// config.max_connections = 20_000;
/// config.core.message_ttl = std::time::Duration::from_secs(7 * 24 * 3600);
/// assert_eq!(config.max_connections_per_address, 64);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where the WebSocket endpoints (`/ws` web clients, `/phone` phones) and the status pages
    /// (`/status`, `/metrics`) listen. Default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// Where the media service (`/mms/{type}/{token}` uploads, `/d/{id}` downloads) listens;
    /// `None` (the default) serves it on [`Config::listen`] too.
    pub media_listen: Option<SocketAddr>,
    /// An extra listener for `/status` and `/metrics` only, with its own small connection cap
    /// ([`Config::status_connections`]), so that monitoring still answers when the public
    /// listeners are at their caps. Default `None`.
    pub status_listen: Option<SocketAddr>,
    /// The `host:port` clients reach the media service at, written into `mediaConn` answers and
    /// download URLs (it replaces `core.media_host`). Default: the address the media service is
    /// bound to.
    pub media_host: Option<String>,
    /// Where the database and the media files live. Default `wa-server-data`.
    pub data_dir: PathBuf,
    /// How long uploaded media can be downloaded. Default 30 days.
    pub media_ttl: Duration,
    /// How often expired messages, refs, codes, upload auth and media are swept away.
    /// Default 60 s.
    pub sweep_interval: Duration,
    /// At most this many of each kind are swept per store transaction. Default 1000.
    pub sweep_batch: usize,
    /// Open TCP connections at most (WebSockets, HTTP requests, connections that have not
    /// finished their request yet), all listeners but the status one together; more are answered
    /// 503 and closed. Lowered at start to fit the open-file limit. Default 10 000.
    pub max_connections: usize,
    /// Open connections from one client IP address at most. Default 64.
    pub max_connections_per_address: usize,
    /// Connections that have not logged in yet (HTTP requests, WebSockets before their login)
    /// at most. Default 1000.
    pub max_unauthenticated: usize,
    /// Connections to [`Config::status_listen`] at most. Default 16.
    pub status_connections: usize,
    /// A connection must send a whole request head within this time, or it is closed
    /// (slow-loris). Default 10 s.
    pub header_read_timeout: Duration,
    /// Status pages must be answered within this time (else 503). Default 10 s.
    pub request_timeout: Duration,
    /// An upload must be received, and a download sent, within this time; a download that
    /// takes longer closes its connection. Default 300 s.
    pub media_timeout: Duration,
    /// A batch of WebSocket messages must be written to the socket within this time, else the
    /// socket is closed (a client that stops reading). Default 10 s.
    pub write_timeout: Duration,
    /// Pushes (messages, acks, presence...) waiting for one connection at most. Default 4096.
    pub push_queue_len: usize,
    /// Bytes of pushes (estimated from their ciphertext) waiting for one connection at most.
    /// A push that does not fit closes the connection (lagged); what was queued stays in the
    /// store for its next connection. Default 8 MiB.
    pub push_queue_bytes: usize,
    /// Store jobs one connection may have in flight (running, or finished and held until an
    /// earlier one's outcome is handled); beyond that its socket is not read until some are
    /// handled. Default 64.
    pub max_jobs_per_connection: usize,
    /// The WebSocket read buffer (bytes read from the socket at once; larger messages grow it
    /// up to the frame limit while they are read). Default 4 KiB.
    pub ws_read_buffer: usize,
    /// Bytes of outgoing WebSocket messages gathered before they are written; the connection
    /// flushes after each turn anyway, so this only lets the messages of one turn (an answer,
    /// its ack, the deliveries that were waiting) go out in one write. Default 16 KiB.
    pub ws_write_buffer: usize,
    /// The embedded store's page cache at most (the server's memory grows with its database up
    /// to this). Default 64 MiB.
    pub store_cache_bytes: usize,
    /// The embedded store's writes held in memory (durable in its log) before a flusher thread
    /// writes them to its file (meanwhile the next ones gather); while the file cannot be
    /// written, writes are refused past four times this. Default 32 MiB.
    pub store_overlay_bytes: usize,
    /// Downloads sent at once at most; more are answered 503. Default 64.
    pub max_downloads: usize,
    /// How long shutdown waits for connections to close. Default 5 s.
    pub shutdown_grace: Duration,
    /// `Origin`s allowed to open WebSockets (exact match, e.g. `https://web.example.org`); an
    /// upgrade carrying another `Origin` gets 403. Empty (the default): any. Requests without
    /// `Origin` (non-browser clients) are always allowed: browsers always send it.
    pub allowed_origins: Vec<String>,
    /// Where registration codes go. Default [`LogCodeSender`] (standard error).
    pub code_sender: Arc<dyn CodeSender>,
    /// The protocol's own configuration: lifetimes, timeouts, limits (the frame limit is also
    /// the WebSocket message limit; `limits.max_media_len` the upload limit).
    pub core: wa_server_core::Config,
    /// Where the durable state lives. Default [`StoreKind::Embedded`].
    pub store: StoreKind,
    /// The bus to the other nodes of a cluster (NATS); `None` (the default): a server alone.
    /// Needs a shared store ([`StoreKind::Postgres`], or [`crate::Server::start_with_store`]).
    pub bus: Option<BusConfig>,
    /// This node's name in the cluster (logs, `/status`, the bus's envelopes). Default: random
    /// (`node-` and 8 hex digits).
    pub node_id: Option<String>,
    /// Where uploaded media files are kept. Default `data_dir/media`. In a cluster every node
    /// must see the same directory (a shared filesystem), so that any node serves any
    /// download: the records are in the shared store, the bodies in this directory.
    pub media_dir: Option<PathBuf>,
}

impl Config {
    /// The default configuration with data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            ..Config::default()
        }
    }
}

impl Config {
    /// The configuration of a node of a cluster: data (media) in `data_dir`, durable state in
    /// `schema` of the PostgreSQL database at `store_url`, the other nodes on the NATS server at
    /// `bus_url` under `cluster`. Every node of a cluster is given the same three (and a media
    /// directory they all see, [`Config::media_dir`]).
    ///
    /// ```
    /// let config = wa_server::Config::cluster_node(
    ///     "/var/lib/wa-node-1",
    ///     "postgres://wa@db.internal/wa",
    ///     "public",
    ///     "nats://bus.internal:4222",
    ///     "prod",
    /// );
    /// assert_eq!(config.bus.as_ref().map(|b| b.cluster.as_str()), Some("prod"));
    /// ```
    pub fn cluster_node(
        data_dir: impl Into<PathBuf>,
        store_url: impl Into<String>,
        schema: impl Into<String>,
        bus_url: impl Into<String>,
        cluster: impl Into<String>,
    ) -> Config {
        Config {
            store: StoreKind::Postgres {
                url: store_url.into(),
                schema: schema.into(),
            },
            bus: Some(BusConfig::new(bus_url, cluster)),
            ..Config::new(data_dir)
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            media_listen: None,
            status_listen: None,
            media_host: None,
            data_dir: PathBuf::from("wa-server-data"),
            media_ttl: Duration::from_secs(30 * 24 * 3600),
            sweep_interval: Duration::from_secs(60),
            sweep_batch: 1000,
            max_connections: 10_000,
            max_connections_per_address: 64,
            max_unauthenticated: 1000,
            status_connections: 16,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            media_timeout: Duration::from_secs(300),
            write_timeout: Duration::from_secs(10),
            push_queue_len: 4096,
            push_queue_bytes: 8 << 20,
            max_jobs_per_connection: 64,
            ws_read_buffer: 4 << 10,
            ws_write_buffer: 16 << 10,
            store_cache_bytes: crate::store::DEFAULT_CACHE_BYTES,
            store_overlay_bytes: crate::store::DEFAULT_OVERLAY_BYTES,
            max_downloads: 64,
            shutdown_grace: Duration::from_secs(5),
            allowed_origins: Vec::new(),
            code_sender: Arc::new(LogCodeSender),
            core: wa_server_core::Config::default(),
            store: StoreKind::Embedded,
            bus: None,
            node_id: None,
            media_dir: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("media_listen", &self.media_listen)
            .field("status_listen", &self.status_listen)
            .field("media_host", &self.media_host)
            .field("data_dir", &self.data_dir)
            .field("media_ttl", &self.media_ttl)
            .field("sweep_interval", &self.sweep_interval)
            .field("max_connections", &self.max_connections)
            .field(
                "max_connections_per_address",
                &self.max_connections_per_address,
            )
            .field("max_unauthenticated", &self.max_unauthenticated)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("push_queue_len", &self.push_queue_len)
            .field("push_queue_bytes", &self.push_queue_bytes)
            .field("allowed_origins", &self.allowed_origins)
            .field("core", &self.core)
            .field("store", &self.store)
            .field("bus", &self.bus)
            .field("node_id", &self.node_id)
            .field("media_dir", &self.media_dir)
            .finish_non_exhaustive()
    }
}
