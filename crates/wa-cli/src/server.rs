//! `wa server`: runs the reference server (`wa-server`) until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args as ClapArgs;

/// Arguments of `wa server`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Where web clients (`/ws`) and phones (`/phone`) connect, and `/status` is served.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the media HTTP service listens (default: on --listen).
    #[arg(long, value_name = "ADDR")]
    media_listen: Option<SocketAddr>,
    /// The `host:port` clients reach the media service at, when it differs from the address
    /// it listens on (behind a proxy, or listening on 0.0.0.0).
    #[arg(long, value_name = "HOST:PORT")]
    media_host: Option<String>,
    /// The data directory (default: `$XDG_DATA_HOME/wa-rs/server`).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// How long an undelivered message is kept, in seconds (default 30 days).
    #[arg(long, value_name = "SECS", default_value_t = 30 * 24 * 3600)]
    message_ttl: u64,
    /// How long uploaded media stay downloadable, in seconds (default 30 days).
    #[arg(long, value_name = "SECS", default_value_t = 30 * 24 * 3600)]
    media_ttl: u64,
    /// Messages kept per chat for the history linked clients ask for (0: none).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    history: usize,
}

/// Runs `wa server`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    // Logs on stderr: `info` unless `RUST_LOG` says otherwise.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let data = args
        .data
        .unwrap_or_else(|| crate::client::data_dir().join("server"));
    let mut config = wa_server::Config::new(&data);
    config.listen = args.listen;
    config.media_listen = args.media_listen;
    config.media_host = args.media_host;
    config.message_ttl = Duration::from_secs(args.message_ttl);
    config.media_ttl = Duration::from_secs(args.media_ttl);
    config.history_per_chat = args.history;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let server = wa_server::Server::start(config)
            .await
            .with_context(|| format!("starting the server (data in {})", data.display()))?;
        println!("wa server: data in {}", data.display());
        println!("  web clients  {}", server.ws_url());
        println!("  phones       {}", server.phone_url());
        println!("  media        {}", server.media_url());
        println!("  status       {}", server.status_url());
        println!("Ctrl-C stops it.");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        server.shutdown().await;
        println!("stopped");
        Ok(())
    })
}
