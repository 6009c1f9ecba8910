//! `wa-server`: the reference server alone, without the `wa` command around it.
//!
//! `wa-server --help` lists the options. It prints
//! `listening <ws> <phone> <media> <status> <node>` once it accepts connections, then runs
//! until SIGTERM or Ctrl-C and stops gracefully.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: with glibc's, allocation and freeing were a fifth
/// of the server's CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The wa-rs reference server.
#[derive(Debug, Parser)]
#[command(name = "wa-server", version, about = "The wa-rs reference server")]
struct Cli {
    #[command(flatten)]
    args: wa_server::cli::ServerArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match wa_server::cli::run(cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wa-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
