//! What the core is configured with: lifetimes, timeouts and limits. The driver adds where it
//! listens and where it keeps its data.

use std::time::Duration;

/// Server configuration. The defaults suit tests and a server on loopback.
///
/// ```
/// let mut config = wa_server_core::Config::default();
/// config.message_ttl = std::time::Duration::from_secs(7 * 24 * 3600);
/// assert_eq!(config.max_linked_devices, 5);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// How long an undelivered message is kept (its sweep may come up to a minute later).
    /// Default 30 days.
    pub message_ttl: Duration,
    /// Linked web clients per account; linking one more unlinks the oldest. Default 5.
    pub max_linked_devices: usize,
    /// How long a QR ref can be scanned. Default 20 s.
    pub ref_ttl: Duration,
    /// New refs a connection may ask for; then 429. Counted per connection across inits.
    /// Default 5.
    pub max_rerefs: u32,
    /// Added to `ref_ttl × (max_rerefs + 1)` to make the linking window: a connection that has
    /// not logged in by then is closed, whatever it sends. Default 10 s.
    pub link_margin: Duration,
    /// A connection that sends nothing this long is closed. Default 180 s (clients ping every
    /// 10 to 30 s).
    pub idle_timeout: Duration,
    /// How long `mediaConn` upload auth stays valid. Default 1 hour.
    pub media_auth_ttl: Duration,
    /// The oldest web client version accepted by `admin init`; older ones get `Cmd update`.
    /// Default `[0, 3, 0]`.
    pub min_client_version: [u64; 3],
    /// The server's version, announced in `["Stream","update",false,version]` after a `Conn`.
    pub server_version: String,
    /// How long a registration code stays valid. Default 10 minutes.
    pub code_ttl: Duration,
    /// Wrong guesses a registration code allows before it is void. Default 5.
    pub code_attempts: u32,
    /// Tokens of a linked client expire when it has not logged in for this long (login then
    /// answers 419). Default 30 days.
    pub token_idle_ttl: Duration,
    /// How long a phone may take to finish logging in (hello, then auth) or registering. Default
    /// 60 s.
    pub phone_login_timeout: Duration,
    /// How long a phone's `link` waits for the web client to finish. Default 30 s.
    pub link_timeout: Duration,
    /// The `host:port` of the media service, as written into `mediaConn` answers.
    pub media_host: String,
    /// Limits on what clients may send.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            message_ttl: Duration::from_secs(30 * 24 * 3600),
            max_linked_devices: 5,
            ref_ttl: Duration::from_secs(20),
            max_rerefs: 5,
            link_margin: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(180),
            media_auth_ttl: Duration::from_secs(3600),
            min_client_version: [0, 3, 0],
            server_version: "0.4.2081".to_owned(),
            code_ttl: Duration::from_secs(600),
            code_attempts: 5,
            token_idle_ttl: Duration::from_secs(30 * 24 * 3600),
            phone_login_timeout: Duration::from_secs(60),
            link_timeout: Duration::from_secs(30),
            media_host: "127.0.0.1".to_owned(),
            limits: Limits::default(),
        }
    }
}

impl Config {
    /// How long a connection may stay without logging in.
    pub fn link_window(&self) -> Duration {
        self.ref_ttl
            .saturating_mul(self.max_rerefs.saturating_add(1))
            .saturating_add(self.link_margin)
    }
}

/// Limits on untrusted input, with safe defaults. Each is documented with its default in the
/// server's threat model.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// WebSocket messages: largest frame, deepest JSON. Default 1 MiB (clients send small
    /// requests; media travel over HTTP), depth 32.
    pub frame: wa_frame::Limits,
    /// Binary nodes: depth, list lengths.
    pub node: wa_binary::Limits,
    /// Requests a connection may make per second on average; more are answered 429.
    /// Default 100.
    pub requests_per_second: u32,
    /// Requests a connection may make in a burst. Default 400.
    pub request_burst: u32,
    /// Members of a group at most. Default 257.
    pub max_group_size: usize,
    /// Groups an account may be a member of. Default 512.
    pub max_groups_per_account: usize,
    /// One-time keys the directory keeps per device. Default 200.
    pub max_one_time_keys: u32,
    /// When a device has fewer one-time keys than this, it is told to upload more. Default 20.
    pub low_one_time_keys: u32,
    /// Messages waiting for one device at most; a message that would exceed it is refused with
    /// 507. Default 10 000.
    pub max_pending_per_device: u32,
    /// Bytes of ciphertext waiting for one account's devices at most. Default 256 MiB.
    pub max_pending_bytes_per_account: u64,
    /// Bytes of ciphertext one account may send per day. Default 1 GiB.
    pub daily_send_bytes: u64,
    /// The largest media upload, announced in `mediaConn`. Default 64 MiB.
    pub max_media_len: u64,
    /// The largest relay (all its ciphertexts together). Default 512 KiB.
    pub max_relay_bytes: usize,
    /// Budgets per account and per address, shared by a node's connections.
    pub budgets: crate::budget::BudgetLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            frame: wa_frame::Limits::default().with_max_frame_len(1 << 20),
            node: wa_binary::Limits::default(),
            requests_per_second: 100,
            request_burst: 400,
            max_group_size: 257,
            max_groups_per_account: 512,
            max_one_time_keys: 200,
            low_one_time_keys: 20,
            max_pending_per_device: 10_000,
            max_pending_bytes_per_account: 256 << 20,
            daily_send_bytes: 1 << 30,
            max_media_len: 64 << 20,
            max_relay_bytes: 512 << 10,
            budgets: crate::budget::BudgetLimits::default(),
        }
    }
}
