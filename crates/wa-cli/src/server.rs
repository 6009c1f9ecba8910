//! `wa server`: the reference server (`wa-server`), with the same options as the `wa-server`
//! binary ([`wa_server::cli::ServerArgs`]) and the same `listening ...` line; it stops
//! gracefully on SIGTERM or Ctrl-C. Unlike `wa_server::cli::run`, it watches the signals
//! before it prints that line, so a SIGTERM sent as soon as the line appears stops it
//! gracefully too (status 0) instead of killing it.

use anyhow::Context as _;
use clap::Args as ClapArgs;

/// Arguments of `wa server`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    server: wa_server::cli::ServerArgs,
}

/// Where `wa server --help` says how phones get their registration codes.
pub(crate) const AFTER_HELP: &str = "\
Once it accepts connections it prints one line on standard output:
  listening <ws url> <phone url> <media url> <status url> <node id>
Web clients (`wa login`, ...) and phones (`wa phone ...`) take the base URL
(WA_SERVER=http://<listen address>).

Registration codes: this server has no SMS gateway. When a phone registers
(`wa phone register --number N`), the code is printed on the server's standard error
as `verification code for +N: 123456` (and logged); give it to `wa phone register`
(it prompts for it, or takes --code).

SIGTERM or Ctrl-C stops it gracefully (exit status 0).";

/// Runs `wa server` until SIGTERM or Ctrl-C.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    wa_server::cli::init_logging();
    let config = args.server.config();
    let data_dir = config.data_dir.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let stop = stop_signal()?;
        let server = wa_server::Server::start(config)
            .await
            .with_context(|| format!("cannot start the server (data in {})", data_dir.display()))?;
        // Standard output may be gone (`wa server | head -1`): the server runs on regardless.
        let _ = crate::common::out(format_args!(
            "listening {} {} {} {} {}",
            server.ws_url(),
            server.phone_url(),
            server.media_url(),
            server.status_url(),
            server.node_id()
        ));
        stop.await;
        server.shutdown().await;
        Ok(())
    })
}

/// Starts watching SIGTERM and Ctrl-C at once; the future ends at either.
fn stop_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch Ctrl-C")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => crate::common::note!("wa server: SIGTERM, stopping"),
                _ = int.recv() => crate::common::note!("wa server: interrupted, stopping"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
