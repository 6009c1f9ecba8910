//! `wa-server`: the reference server alone, without the `wa` command around it.
//!
//! ```text
//! wa-server [--listen ADDR] [--media-listen ADDR] [--data DIR] [--message-ttl SECS] [--sweep-interval MS]
//!           [--requests-per-second N]
//! ```
//!
//! Prints `listening <ws url> <media url> <status url>` on one line once it accepts
//! connections (scripts and tests wait for it), then runs until killed or interrupted.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

fn usage() -> ExitCode {
    eprintln!(
        "usage: wa-server [--listen ADDR] [--media-listen ADDR] [--data DIR] \
         [--message-ttl SECS] [--sweep-interval MS] [--requests-per-second N]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut config = wa_server::Config::default();
    config.listen = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let Some(value) = args.next() else {
            return usage();
        };
        let ok = match arg.as_str() {
            "--listen" => value.parse().map(|a| config.listen = a).is_ok(),
            "--media-listen" => value.parse().map(|a| config.media_listen = Some(a)).is_ok(),
            "--data" => {
                config.data_dir = value.into();
                true
            }
            "--message-ttl" => value
                .parse()
                .map(|s| config.message_ttl = Duration::from_secs(s))
                .is_ok(),
            "--requests-per-second" => value
                .parse()
                .map(|n: u32| {
                    config.limits.requests_per_second = n;
                    config.limits.request_burst = n.saturating_mul(4);
                })
                .is_ok(),
            "--sweep-interval" => value
                .parse()
                .map(|ms| config.sweep_interval = Duration::from_millis(ms))
                .is_ok(),
            _ => false,
        };
        if !ok {
            return usage();
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("wa-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let server = match wa_server::Server::start(config).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("wa-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "listening {} {} {}",
            server.ws_url(),
            server.media_url(),
            server.status_url()
        );
        // Run until Ctrl-C (the crash test uses SIGKILL instead, on purpose).
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("wa-server: {e}");
            std::future::pending::<()>().await;
        }
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}
