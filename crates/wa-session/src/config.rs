//! What a session is configured with: who it says it is, its timers and its limits.

use std::ops::Range;
use std::time::Duration;

/// Session configuration. Defaults follow the official web client (PROTOCOL.md §1, §2).
///
/// ```
/// let mut config = wa_session::Config::default();
/// config.request_timeout = std::time::Duration::from_secs(5);
/// assert_eq!(config.version, [2, 2142, 12]);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The web client version sent with `admin init`. Default `[2, 2142, 12]`, the last one
    /// the official client used.
    pub version: [u64; 3],
    /// How the browser describes itself: long and short description. Default `("wa-rs", "wa-rs")`.
    pub browser: (String, String),
    /// How long a request waits for its reply. Default 20 s.
    pub request_timeout: Duration,
    /// Keepalive: a ping goes out this long (chosen at random in the range) after the last
    /// frame received. Default 10–30 s.
    pub ping_after: Range<Duration>,
    /// The connection is stale when nothing arrives this long (random in the range) after a
    /// send. Default 20–90 s.
    pub stale_after: Range<Duration>,
    /// New QR refs asked for before giving up linking. Default 5.
    pub max_rerefs: u32,
    /// First reconnect delay; it doubles on every failed attempt. Default 1 s.
    pub reconnect_base: Duration,
    /// The longest reconnect delay. Default 60 s.
    pub reconnect_cap: Duration,
    /// Acknowledge every live (relayed) message with a delivery receipt, so the sender sees
    /// two ticks and the server can let go of it. Default `true`. (Legacy web clients never
    /// sent them: set it off, with `end_to_end`, to behave like one.)
    pub delivery_receipts: bool,
    /// Be an end-to-end endpoint: announce identity keys at `admin init` and encrypt every
    /// message for each device of its recipients. Off, the session is a legacy client: it
    /// sends readable messages and is linked as a mirror of its phone. Default `true`.
    pub end_to_end: bool,
    /// Requests waiting for a reply at most; more are refused with an error. Default 1024.
    pub max_pending: usize,
    /// Limits on incoming frames (size, JSON depth).
    pub frame_limits: wa_frame::Limits,
    /// Limits on decoding binary nodes.
    pub node_limits: wa_binary::Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: [2, 2142, 12],
            browser: ("wa-rs".to_owned(), "wa-rs".to_owned()),
            request_timeout: Duration::from_secs(20),
            ping_after: Duration::from_secs(10)..Duration::from_secs(30),
            stale_after: Duration::from_secs(20)..Duration::from_secs(90),
            max_rerefs: 5,
            reconnect_base: Duration::from_secs(1),
            reconnect_cap: Duration::from_secs(60),
            delivery_receipts: true,
            end_to_end: true,
            max_pending: 1024,
            frame_limits: wa_frame::Limits::default(),
            node_limits: wa_binary::Limits::default(),
        }
    }
}
