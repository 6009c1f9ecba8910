//! The command-line front end, shared by the `wa-server` binary and `wa server`: the arguments
//! ([`ServerArgs`], a `clap::Args` to flatten into any command), the logging subscriber, and a
//! run loop that stops gracefully on SIGTERM or Ctrl-C.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::{BusConfig, Config, RunningServer, Server, StoreKind};

/// The server's command-line arguments.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct ServerArgs {
    /// Where the WebSockets (`/ws`, `/phone`) and the status pages listen.
    #[arg(long, default_value = "127.0.0.1:8080", env = "WA_SERVER_LISTEN")]
    pub listen: SocketAddr,
    /// Where the media service listens (default: with the WebSockets).
    #[arg(long)]
    pub media_listen: Option<SocketAddr>,
    /// An extra listener for `/status` and `/metrics` only, outside the connection caps.
    #[arg(long)]
    pub status_listen: Option<SocketAddr>,
    /// The `host:port` clients reach the media service at (default: its bound address).
    #[arg(long)]
    pub media_host: Option<String>,
    /// Where the database and media files live.
    #[arg(
        long,
        alias = "data",
        default_value = "wa-server-data",
        env = "WA_SERVER_DATA"
    )]
    pub data_dir: PathBuf,
    /// How long undelivered messages are kept, in seconds.
    #[arg(long, default_value_t = 30 * 24 * 3600)]
    pub message_ttl: u64,
    /// How long uploaded media are kept, in seconds.
    #[arg(long, default_value_t = 30 * 24 * 3600)]
    pub media_ttl: u64,
    /// How often expired data is swept, in seconds.
    #[arg(long, default_value_t = 60)]
    pub sweep_interval: u64,
    /// Open connections at most (lowered to fit the open-file limit).
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Open connections per client IP address at most.
    #[arg(long, default_value_t = 64)]
    pub max_connections_per_address: usize,
    /// Connections that have not logged in yet at most.
    #[arg(long, default_value_t = 1000)]
    pub max_unauthenticated: usize,
    /// Seconds a client may take to send a request head.
    #[arg(long, default_value_t = 10)]
    pub header_read_timeout: u64,
    /// Seconds a batch of WebSocket messages may take to be written.
    #[arg(long, default_value_t = 10)]
    pub write_timeout: u64,
    /// Requests per second one connection may make (bursts of four times as many).
    #[arg(long, default_value_t = 100)]
    pub requests_per_second: u32,
    /// Lift the budgets per account and per client address (sends, receipts, queries,
    /// presence, registrations): for load tests on a trusted network only. The per-connection
    /// rate (`--requests-per-second`) and every quota still hold.
    #[arg(long)]
    pub no_budgets: bool,
    /// An `Origin` allowed to open WebSockets (repeat for more; none: any).
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,
    /// Where the durable state lives: `embedded` (a redb file in the data directory) or a
    /// PostgreSQL URL (`postgres://user@host:port/database`) shared by a cluster's nodes.
    #[arg(long, default_value = "embedded", env = "WA_SERVER_STORE")]
    pub store: String,
    /// The PostgreSQL schema of the store (created if missing).
    #[arg(long, default_value = "public", env = "WA_SERVER_SCHEMA")]
    pub schema: String,
    /// The NATS server of the cluster's bus (`nats://host:4222`); without it the server runs
    /// alone. Needs `--store postgres://...`.
    #[arg(long, env = "WA_SERVER_BUS")]
    pub bus: Option<String>,
    /// The cluster's name (its subjects on the bus are `wa.<cluster>.*`).
    #[arg(long, default_value = "wa", env = "WA_SERVER_CLUSTER")]
    pub cluster: String,
    /// This node's name in the cluster (default: random).
    #[arg(long, env = "WA_SERVER_NODE_ID")]
    pub node_id: Option<String>,
    /// Where media files are kept (default: `media` in the data directory). A cluster's nodes
    /// must share it.
    #[arg(long)]
    pub media_dir: Option<PathBuf>,
}

impl ServerArgs {
    /// The configuration these arguments describe.
    pub fn config(&self) -> Config {
        let mut config = Config::new(&self.data_dir);
        config.listen = self.listen;
        config.media_listen = self.media_listen;
        config.status_listen = self.status_listen;
        config.media_host.clone_from(&self.media_host);
        config.media_ttl = Duration::from_secs(self.media_ttl);
        config.sweep_interval = Duration::from_secs(self.sweep_interval.max(1));
        config.max_connections = self.max_connections;
        config.max_connections_per_address = self.max_connections_per_address;
        config.max_unauthenticated = self.max_unauthenticated;
        config.header_read_timeout = Duration::from_secs(self.header_read_timeout.max(1));
        config.write_timeout = Duration::from_secs(self.write_timeout.max(1));
        config.allowed_origins.clone_from(&self.allowed_origins);
        config.core.message_ttl = Duration::from_secs(self.message_ttl);
        config.core.limits.requests_per_second = self.requests_per_second;
        config.core.limits.request_burst = self.requests_per_second.saturating_mul(4);
        if self.no_budgets {
            config.core.limits.budgets = wa_server_core::budget::BudgetLimits::unlimited();
        }
        config.store = if self.store == "embedded" {
            StoreKind::Embedded
        } else {
            StoreKind::Postgres {
                url: self.store.clone(),
                schema: self.schema.clone(),
            }
        };
        config.bus = self
            .bus
            .as_ref()
            .map(|url| BusConfig::new(url.clone(), self.cluster.clone()));
        config.node_id.clone_from(&self.node_id);
        config.media_dir.clone_from(&self.media_dir);
        config
    }
}

/// Installs the logging subscriber: to standard error, filtered by `RUST_LOG` (default
/// `info`), in colour only on a terminal and never with `NO_COLOR` set. Does nothing if one is
/// installed already.
pub fn init_logging() {
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

/// Installs logging, starts the server, and runs it until SIGTERM or Ctrl-C.
///
/// Prints `listening <ws url> <phone url> <media url> <status url> <node id>` on standard
/// output once it accepts connections (scripts and tests wait for that line).
///
/// # Errors
/// When the runtime cannot be built, or the server cannot start.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args.config()))
}

/// Starts a server with `config` and runs it until SIGTERM or Ctrl-C (inside a tokio runtime).
///
/// # Errors
/// When the server cannot start or the signals cannot be watched.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    // The handlers are installed before the `listening` line: a SIGTERM sent as soon as a
    // script sees it stops the server gracefully rather than killing it.
    let stop = StopSignal::watch()?;
    let data_dir = config.data_dir.clone();
    let server = Server::start(config)
        .await
        .with_context(|| format!("cannot start the server (data in {})", data_dir.display()))?;
    announce(&server);
    let stopped = stop.wait().await;
    server.shutdown().await;
    stopped
}

fn announce(server: &RunningServer) {
    println!(
        "listening {} {} {} {} {}",
        server.ws_url(),
        server.phone_url(),
        server.media_url(),
        server.status_url(),
        server.node_id()
    );
}

/// SIGTERM and Ctrl-C (SIGINT), watched from the moment it is made.
struct StopSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn watch() -> anyhow::Result<StopSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignal {
                term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
                interrupt: signal(SignalKind::interrupt()).context("cannot watch Ctrl-C")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignal {})
        }
    }

    /// Waits for either.
    async fn wait(self) -> anyhow::Result<()> {
        #[cfg(unix)]
        {
            let StopSignal {
                mut term,
                mut interrupt,
            } = self;
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = interrupt.recv() => tracing::info!("interrupted: stopping"),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c()
                .await
                .context("cannot watch Ctrl-C")?;
        }
        Ok(())
    }
}
