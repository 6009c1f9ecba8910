//! What a server is configured with: where it listens, where it keeps its data, how long it
//! keeps undelivered messages, and its limits.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Server configuration. The defaults suit tests and a server on loopback.
///
/// ```
/// let mut config = wa_server::Config::new("/tmp/wa-data");
/// config.message_ttl = std::time::Duration::from_secs(7 * 24 * 3600);
/// assert_eq!(config.max_linked_devices, 5);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where the WebSocket endpoints (`/ws` for web clients, `/phone` for phones) and the
    /// status pages (`/status`, `/metrics`) listen. Default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// Where the media HTTP service (`/mms/<type>/<token>` uploads, `/d/<id>` downloads)
    /// listens; `None` (the default) serves it on [`Config::listen`] too.
    pub media_listen: Option<SocketAddr>,
    /// The `host:port` the media service is reachable at, as written into `mediaConn`
    /// answers and download URLs. Default: the address it is bound to.
    pub media_host: Option<String>,
    /// Where the database and the media files live. Default `wa-server-data`.
    pub data_dir: PathBuf,
    /// How long an undelivered message is kept. Default 30 days.
    pub message_ttl: Duration,
    /// How long uploaded media can be downloaded. Default 30 days.
    pub media_ttl: Duration,
    /// How often expired messages and media are swept away. Default 60 s.
    pub sweep_interval: Duration,
    /// Messages kept per chat and account for the history a web client asks for after
    /// linking (the phone's role in the real system); 0 keeps none. Default 1000.
    pub history_per_chat: usize,
    /// Linked web clients per account; linking one more unlinks the oldest. Default 5.
    pub max_linked_devices: usize,
    /// How long a QR ref can be scanned. Default 20 s.
    pub ref_ttl: Duration,
    /// New refs a connection may ask for (`admin Conn reref`); then 429. Default 5.
    pub max_rerefs: u32,
    /// A connection that sends nothing this long is closed. Default 180 s (clients ping
    /// every 10 to 30 s).
    pub idle_timeout: Duration,
    /// How long `mediaConn` upload auth stays valid. Default 1 hour.
    pub media_auth_ttl: Duration,
    /// The oldest web client version accepted by `admin init`; older ones get
    /// `Cmd update`. Default `[0, 3, 0]`.
    pub min_client_version: [u64; 3],
    /// Limits on what clients may send.
    pub limits: Limits,
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

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            media_listen: None,
            media_host: None,
            data_dir: PathBuf::from("wa-server-data"),
            message_ttl: Duration::from_secs(30 * 24 * 3600),
            media_ttl: Duration::from_secs(30 * 24 * 3600),
            sweep_interval: Duration::from_secs(60),
            history_per_chat: 1000,
            max_linked_devices: 5,
            ref_ttl: Duration::from_secs(20),
            max_rerefs: 5,
            idle_timeout: Duration::from_secs(180),
            media_auth_ttl: Duration::from_secs(3600),
            min_client_version: [0, 3, 0],
            limits: Limits::default(),
        }
    }
}

/// Limits on untrusted input, with safe defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// WebSocket messages: largest frame, deepest JSON. Default 1 MiB (web clients send
    /// small requests; media travel over HTTP), depth 32.
    pub frame: wa_frame::Limits,
    /// Binary nodes: depth, list lengths.
    pub node: wa_binary::Limits,
    /// Requests a connection may make per second on average; more are answered 429.
    /// Default 100.
    pub requests_per_second: u32,
    /// Requests a connection may make in a burst. Default 400.
    pub request_burst: u32,
    /// The largest media upload. Default 64 MiB.
    pub max_media_len: usize,
    /// Open connections (web clients and phones) at most; more are refused with 503.
    /// Default 10 000.
    pub max_connections: usize,
    /// Pushes waiting for a slow connection at most; beyond that it is closed (its messages
    /// stay queued in the store). Default 4096.
    pub push_queue: usize,
    /// Messages one history query returns at most. Default 300.
    pub max_history_query: u32,
    /// Members of a group at most. Default 257.
    pub max_group_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            frame: wa_frame::Limits::default().with_max_frame_len(1 << 20),
            node: wa_binary::Limits::default(),
            requests_per_second: 100,
            request_burst: 400,
            max_media_len: 64 << 20,
            max_connections: 10_000,
            push_queue: 4096,
            max_history_query: 300,
            max_group_size: 257,
        }
    }
}
