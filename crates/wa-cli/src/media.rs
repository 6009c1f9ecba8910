//! `wa media`: encrypt and decrypt WhatsApp media files, streaming with fixed memory.
//!
//! `encrypt` writes the body `enc ‖ mac` and prints one JSON object with the message fields
//! (`media_key`, `file_sha256`, `file_enc_sha256`, `file_length`, and `sidecar` for streamable
//! types), binary values in standard padded base64 as WhatsApp clients show them in protobuf
//! JSON. `decrypt` writes the plaintext only if every check passes and prints
//! `{"file_length", "checked"}`; on any failure OUT is not created (an existing OUT is left as it
//! was) and the reason is the one line on stderr.
//!
//! Both write to a temporary file next to OUT and rename it into place at the end, and show a
//! progress bar on stderr for large files when stderr is a terminal.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use wa_media::{Expected, FileSink, MediaKey, MediaType, Sink};

/// `wa media` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Encrypt a file into `enc ‖ mac` and print the message fields as JSON.
    Encrypt(EncryptArgs),
    /// Decrypt `enc ‖ mac` into the plaintext, written only if every check passes.
    Decrypt(DecryptArgs),
}

/// Arguments of `wa media encrypt`.
#[derive(Debug, Args)]
pub(crate) struct EncryptArgs {
    /// The media type: image, sticker, video, gif, audio, ptt (or voice), document, history.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    media_type: MediaType,
    /// The media key: 64 hex digits or 44 base64 characters. A random key when omitted.
    #[arg(long, value_name = "HEX|BASE64")]
    key: Option<String>,
    /// The plaintext file (`-` for standard input).
    input: PathBuf,
    /// Where to write the encrypted body.
    output: PathBuf,
}

/// Arguments of `wa media decrypt`.
#[derive(Debug, Args)]
pub(crate) struct DecryptArgs {
    /// The media type: image, sticker, video, gif, audio, ptt (or voice), document, history.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    media_type: MediaType,
    /// The media key: 64 hex digits or 44 base64 characters.
    #[arg(long, value_name = "HEX|BASE64")]
    key: String,
    /// The expected SHA-256 of the plaintext (`fileSha256`), base64.
    #[arg(long, value_name = "B64")]
    file_sha256: Option<String>,
    /// The expected SHA-256 of the encrypted file (`fileEncSha256`), base64.
    #[arg(long, value_name = "B64")]
    file_enc_sha256: Option<String>,
    /// The encrypted body `enc ‖ mac` (`-` for standard input).
    input: PathBuf,
    /// Where to write the plaintext.
    output: PathBuf,
}

/// Files at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_MIN: u64 = 32 * 1024 * 1024;

pub(crate) fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Encrypt(args) => encrypt(args),
        Command::Decrypt(args) => decrypt(args),
    }
}

/// What `wa media encrypt` prints.
#[derive(Serialize)]
struct Encrypted {
    media_key: String,
    file_sha256: String,
    file_enc_sha256: String,
    file_length: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sidecar: Option<String>,
}

/// What `wa media decrypt` prints.
#[derive(Serialize)]
struct Decrypted {
    file_length: u64,
    checked: Vec<&'static str>,
}

fn encrypt(args: EncryptArgs) -> anyhow::Result<()> {
    let key = match &args.key {
        Some(text) => parse_key(text)?,
        None => random_key()?,
    };
    let (input, bar) = open_input(&args.input)?;
    let mut sink = FileSink::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let info = wa_media::encrypt_stream_parallel(&key, args.media_type, input, &mut sink)
        .with_context(|| format!("encrypting {}", args.input.display()))?;
    sink.commit()
        .with_context(|| format!("writing {}", args.output.display()))?;
    bar.finish_and_clear();

    print_json(&Encrypted {
        media_key: STANDARD.encode(key.as_bytes()),
        file_sha256: STANDARD.encode(info.file_sha256),
        file_enc_sha256: STANDARD.encode(info.file_enc_sha256),
        file_length: info.file_length,
        sidecar: info.sidecar.map(|sidecar| STANDARD.encode(sidecar)),
    })
}

fn decrypt(args: DecryptArgs) -> anyhow::Result<()> {
    let key = parse_key(&args.key)?;
    let mut expected = Expected::new();
    let mut checked = vec!["mac"];
    if let Some(text) = &args.file_enc_sha256 {
        expected = expected.file_enc_sha256(parse_hash("--file-enc-sha256", text)?);
        checked.push("file_enc_sha256");
    }
    if let Some(text) = &args.file_sha256 {
        expected = expected.file_sha256(parse_hash("--file-sha256", text)?);
        checked.push("file_sha256");
    }
    let (input, bar) = open_input(&args.input)?;
    let sink = FileSink::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let done = wa_media::decrypt_stream(&key, args.media_type, &expected, input, sink)
        .with_context(|| format!("decrypting {}", args.input.display()))?;
    bar.finish_and_clear();
    print_json(&Decrypted {
        file_length: done.file_length,
        checked,
    })
}

fn parse_type(name: &str) -> Result<MediaType, String> {
    name.parse()
        .map_err(|err: wa_media::UnknownMediaType| err.to_string())
}

/// A media key as 64 hex digits or 44 base64 characters: the length tells them apart (32 bytes
/// are never 64 base64 characters nor 44 hex digits).
fn parse_key(text: &str) -> anyhow::Result<MediaKey> {
    let text = text.trim();
    let bytes = match text.len() {
        64 => hex::decode(text).map_err(|err| {
            anyhow::anyhow!("bad --key: 64 characters, so expected hex (32 bytes): {err}")
        })?,
        44 => STANDARD.decode(text).map_err(|err| {
            anyhow::anyhow!("bad --key: 44 characters, so expected base64 of 32 bytes: {err}")
        })?,
        n => bail!(
            "bad --key: expected 32 bytes as 64 hex digits or 44 base64 characters, got {n} characters"
        ),
    };
    MediaKey::try_from(bytes.as_slice()).map_err(|_| {
        anyhow::anyhow!(
            "bad --key: expected 32 bytes, got {} (base64 padding?)",
            bytes.len()
        )
    })
}

/// A SHA-256 hash in standard base64.
fn parse_hash(option: &str, text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|err| anyhow::anyhow!("bad {option}: expected base64 of 32 bytes: {err}"))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        anyhow::anyhow!(
            "bad {option}: expected base64 of 32 bytes, got {} bytes",
            bytes.len()
        )
    })
}

/// 32 bytes from the operating system's random source.
fn random_key() -> anyhow::Result<MediaKey> {
    let mut bytes = [0; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        anyhow::anyhow!("no randomness from the OS for a media key ({e}); pass --key instead")
    })?;
    let key = MediaKey::from_bytes(bytes);
    bytes.fill(0);
    Ok(key)
}

/// Opens the input (`-` is standard input), with a progress bar on stderr for a large file when
/// stderr is a terminal (a hidden one otherwise).
fn open_input(path: &Path) -> anyhow::Result<(Box<dyn Read>, ProgressBar)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin().lock()), ProgressBar::hidden()));
    }
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len < PROGRESS_MIN || !std::io::stderr().is_terminal() {
        return Ok((Box::new(file), ProgressBar::hidden()));
    }
    let style = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(len).with_style(style);
    Ok((Box::new(bar.wrap_read(file)), bar))
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    writeln!(stdout)?;
    stdout.flush()?;
    Ok(())
}
