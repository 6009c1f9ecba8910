//! `wa demo`: the whole system on one machine (being rebuilt against the current APIs).

use clap::Args;

/// Arguments of `wa demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// One JSON object a line (machine-readable events) instead of text for people.
    #[arg(long)]
    json: bool,
    /// Keep the server's data directory and every client and phone store under DIR.
    #[arg(long, value_name = "DIR")]
    keep_data: Option<std::path::PathBuf>,
}

/// Runs the demo.
pub(crate) fn run(args: DemoArgs) -> anyhow::Result<()> {
    let _ = (args.json, args.keep_data);
    anyhow::bail!("wa demo is being rebuilt against the current APIs")
}
