//! Reading command input: a file or standard input, raw or as hex text, with a size limit.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};

/// The most a command reads from one input: inputs beyond this are refused, not buffered.
pub(crate) const MAX_INPUT: u64 = 256 * 1024 * 1024;

/// Reads `path` (`-` or `None` is standard input) into memory, refusing more than `MAX_INPUT`
/// bytes.
pub(crate) fn read_all(path: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    match path {
        None => {
            read_limited(std::io::stdin().lock(), &mut buf).context("reading standard input")?
        }
        Some(p) if p.as_os_str() == "-" => {
            read_limited(std::io::stdin().lock(), &mut buf).context("reading standard input")?
        }
        Some(p) => {
            let file =
                std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            read_limited(file, &mut buf).with_context(|| format!("reading {}", p.display()))?
        }
    }
    Ok(buf)
}

fn read_limited(reader: impl Read, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let n = reader.take(MAX_INPUT + 1).read_to_end(buf)?;
    if n as u64 > MAX_INPUT {
        bail!("input is larger than {MAX_INPUT} bytes");
    }
    Ok(())
}

/// Reads an input that is raw bytes, or hex text when `hex` is set (white space ignored).
pub(crate) fn read_bytes(path: Option<&Path>, hex: bool) -> anyhow::Result<Vec<u8>> {
    let data = read_all(path)?;
    if hex { decode_hex(&data) } else { Ok(data) }
}

/// Decodes hex text, ignoring ASCII white space; the error names the offending offset.
pub(crate) fn decode_hex(text: &[u8]) -> anyhow::Result<Vec<u8>> {
    let digits: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    hex::decode(&digits).map_err(|err| match err {
        hex::FromHexError::InvalidHexCharacter { c, index } => {
            anyhow::anyhow!("invalid hex character {c:?} at digit {index}")
        }
        hex::FromHexError::OddLength => anyhow::anyhow!("hex input has an odd number of digits"),
        other => anyhow::anyhow!("invalid hex input: {other}"),
    })
}

/// Parses a hex argument of exactly `N` bytes (a key or an IV).
pub(crate) fn hex_array<const N: usize>(what: &str, text: &str) -> anyhow::Result<[u8; N]> {
    let bytes = decode_hex(text.as_bytes()).with_context(|| format!("bad {what}"))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| anyhow::anyhow!("bad {what}: expected {N} bytes, got {}", bytes.len()))
}
