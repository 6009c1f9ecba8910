//! `wa keys`: the login key schedule (PROTOCOL.md §2.3) on the command line.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use wa_crypto::{ClientKeyPair, SessionKeys};

use crate::input;

/// `wa keys` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Derive the session keys from the client's private key and the `secret` of the `Conn`
    /// message; prints `{"enc_key": hex, "mac_key": hex}`.
    Derive(DeriveArgs),
}

/// Arguments of `wa keys derive`.
#[derive(Debug, Args)]
pub(crate) struct DeriveArgs {
    /// The client's X25519 private key: 32 bytes as hex.
    #[arg(long, value_name = "HEX")]
    private_key: String,
    /// The `secret` field of the `Conn` message: base64 of 144 bytes.
    #[arg(long, value_name = "BASE64")]
    secret: String,
}

pub(crate) fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Derive(args) => derive(args),
    }
}

fn derive(args: DeriveArgs) -> anyhow::Result<()> {
    let private = input::hex_array::<32>("private key", &args.private_key)?;
    let key_pair = ClientKeyPair::from_private_key(private);
    let keys = SessionKeys::from_login(key_pair, args.secret.trim()).context("bad secret")?;
    let json = serde_json::json!({
        "enc_key": hex::encode(keys.enc_key()),
        "mac_key": hex::encode(keys.mac_key()),
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{json}")?;
    Ok(())
}
