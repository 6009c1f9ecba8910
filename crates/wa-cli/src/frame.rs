//! `wa frame`: one WebSocket message to JSON (opening binary frames with the session keys), and
//! a node to a sealed client→server binary frame.
//!
//! `decode` prints one JSON object whose `kind` says what the message is:
//! `{"tag", "kind": "binary", "metric", "flags", "node"}` (metric and flags only for
//! client→server frames), `{"tag", "kind": "json", "json"}`, `{"tag", "kind": "empty"}`,
//! `{"kind": "pong", "server_time_ms"}` or `{"kind": "keepalive"}`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::Value;
use wa_binary::{Node, Policy};
use wa_crypto::SessionKeys;
use wa_frame::{Direction, Flags, Frame, Limits, Metric, Tag, WsMessage, binary_header};

use crate::input;

/// `wa frame` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Decode one WebSocket message (a file or standard input): a text frame's JSON, or a
    /// binary frame opened with the session keys and its node decoded.
    Decode(DecodeArgs),
    /// Encode a node (its JSON form) into a sealed client→server binary frame.
    Encode(EncodeArgs),
}

/// Arguments of `wa frame decode`.
#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// The session's AES key, 32 bytes as hex (needed for binary frames).
    #[arg(long, value_name = "HEX")]
    enc_key: Option<String>,
    /// The session's HMAC key, 32 bytes as hex (needed for binary frames).
    #[arg(long, value_name = "HEX")]
    mac_key: Option<String>,
    /// Who sent the message: client→server binary frames carry a metric and a flags byte.
    #[arg(long, value_enum, default_value_t = FromArg::Server)]
    from: FromArg,
    /// The WebSocket opcode: `auto` takes valid UTF-8 as text and anything else as binary.
    #[arg(long, value_enum, default_value_t = OpcodeArg::Auto)]
    opcode: OpcodeArg,
    /// The input is hex text (white space ignored), not raw bytes.
    #[arg(long)]
    hex: bool,
    /// The message; `-` or nothing for standard input. A text message may end in one newline.
    file: Option<PathBuf>,
}

/// Arguments of `wa frame encode`.
#[derive(Debug, Args)]
pub(crate) struct EncodeArgs {
    /// The session's AES key, 32 bytes as hex.
    #[arg(long, value_name = "HEX")]
    enc_key: String,
    /// The session's HMAC key, 32 bytes as hex.
    #[arg(long, value_name = "HEX")]
    mac_key: String,
    /// The IV, 16 bytes as hex (fresh random bytes for every real frame).
    #[arg(long, value_name = "HEX")]
    iv: String,
    /// The message tag.
    #[arg(long)]
    tag: String,
    /// The metric byte: a number (8) or a name (PRESENCE).
    #[arg(long, value_parser = parse_metric)]
    metric: Metric,
    /// The flags byte: decimal (160) or hex (0xa0).
    #[arg(long, value_parser = parse_flags)]
    flags: Flags,
    /// Write hex text instead of raw bytes.
    #[arg(long)]
    hex: bool,
    /// The node's JSON form; `-` or nothing for standard input.
    file: Option<PathBuf>,
}

/// The sender of a message on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FromArg {
    /// Sent by the client.
    Client,
    /// Sent by the server.
    Server,
}

/// The WebSocket opcode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OpcodeArg {
    /// Text if the input is valid UTF-8, else binary.
    Auto,
    /// A text message.
    Text,
    /// A binary message.
    Binary,
}

pub(crate) fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Decode(args) => decode(args),
        Command::Encode(args) => encode(args),
    }
}

/// The JSON printed by `wa frame decode`, fields in this order.
#[derive(Serialize)]
struct Decoded<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a Node<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    json: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_time_ms: Option<u64>,
}

impl Decoded<'_> {
    fn kind(kind: &'static str) -> Self {
        Decoded {
            tag: None,
            kind,
            metric: None,
            flags: None,
            node: None,
            json: None,
            server_time_ms: None,
        }
    }
}

fn decode(args: DecodeArgs) -> anyhow::Result<()> {
    let bytes = input::read_bytes(args.file.as_deref(), args.hex)?;
    let direction = match args.from {
        FromArg::Client => Direction::ClientToServer,
        FromArg::Server => Direction::ServerToClient,
    };
    let text = match args.opcode {
        OpcodeArg::Binary => None,
        OpcodeArg::Auto => std::str::from_utf8(&bytes).ok(),
        OpcodeArg::Text => Some(std::str::from_utf8(&bytes).context("text message is not UTF-8")?),
    };
    let message = match text {
        Some(text) => {
            let text = text.strip_suffix('\n').unwrap_or(text);
            WsMessage::Text(text.strip_suffix('\r').unwrap_or(text))
        }
        None => WsMessage::Binary(&bytes),
    };
    let frame = Frame::parse(message, direction, &Limits::default()).context("invalid frame")?;

    let opened;
    let node;
    let decoded = match &frame {
        Frame::Binary {
            tag,
            header,
            payload,
        } => {
            let keys = session_keys(args.enc_key.as_deref(), args.mac_key.as_deref())?;
            // The error says it all ("frame MAC mismatch"): no context needed.
            opened = keys.open(payload)?;
            node = wa_binary::decode(&opened).context("invalid node in frame")?;
            Decoded {
                tag: Some(tag.as_str()),
                metric: header.map(|h| h.metric.0),
                flags: header.map(|h| h.flags.0),
                node: Some(&node),
                ..Decoded::kind("binary")
            }
        }
        Frame::Json { tag, payload } => Decoded {
            tag: Some(tag.as_str()),
            json: Some(payload),
            ..Decoded::kind("json")
        },
        Frame::Empty { tag } => Decoded {
            tag: Some(tag.as_str()),
            ..Decoded::kind("empty")
        },
        Frame::Pong { server_time_ms } => Decoded {
            server_time_ms: Some(*server_time_ms),
            ..Decoded::kind("pong")
        },
        Frame::Keepalive => Decoded::kind("keepalive"),
        other => bail!("unsupported frame: {other:?}"),
    };
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &decoded)?;
    writeln!(stdout)?;
    Ok(())
}

fn session_keys(enc_key: Option<&str>, mac_key: Option<&str>) -> anyhow::Result<SessionKeys> {
    let (Some(enc_key), Some(mac_key)) = (enc_key, mac_key) else {
        bail!("a binary frame needs --enc-key and --mac-key");
    };
    let enc_key = input::hex_array::<32>("--enc-key", enc_key)?;
    let mac_key = input::hex_array::<32>("--mac-key", mac_key)?;
    Ok(SessionKeys::new(&enc_key, &mac_key))
}

fn encode(args: EncodeArgs) -> anyhow::Result<()> {
    let keys = session_keys(Some(&args.enc_key), Some(&args.mac_key))?;
    let iv = input::hex_array::<16>("--iv", &args.iv)?;
    let tag = Tag::new(args.tag.as_str()).context("bad --tag")?;
    let text = input::read_all(args.file.as_deref())?;
    let node: Node<'static> = serde_json::from_slice(&text).context("invalid node JSON")?;
    let plain = wa_binary::encode(&node, Policy::Client).context("cannot encode node")?;

    let mut frame = Vec::with_capacity(tag.as_str().len() + 3 + wa_crypto::sealed_len(plain.len()));
    binary_header(&tag, args.metric, args.flags, &mut frame);
    keys.seal_into(&plain, &iv, &mut frame);

    let mut stdout = std::io::stdout().lock();
    if args.hex {
        writeln!(stdout, "{}", hex::encode(&frame))?;
    } else {
        stdout.write_all(&frame)?;
    }
    stdout.flush()?;
    Ok(())
}

fn parse_metric(text: &str) -> Result<Metric, String> {
    if let Ok(n) = text.parse::<u8>() {
        return Ok(Metric(n));
    }
    Metric::from_name(&text.to_ascii_uppercase())
        .ok_or_else(|| format!("{text:?} is neither a number 0..=255 nor a metric name"))
}

fn parse_flags(text: &str) -> Result<Flags, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => text.parse::<u8>(),
    };
    parsed
        .map(Flags)
        .map_err(|_| format!("{text:?} is not a byte (decimal, or hex with 0x)"))
}
