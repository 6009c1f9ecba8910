//! What the networked commands share: where the server is (`--server`, `WA_SERVER`), where
//! the stores are and their keys, a quick reachability check, JIDs from the command line, and
//! standard output that ends quietly when its reader goes away.

use std::fmt;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use wa_vault::KeySource;
use wa_wire::Jid;

/// The reference server's default address.
pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// How long the reachability check waits for a TCP connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a command waits for its connection to log in.
pub(crate) const LOGIN_TIMEOUT: Duration = Duration::from_secs(20);

/// A server given as a base URL: `http://host:port`, `ws://host:port` (a path such as `/ws` is
/// ignored).
#[derive(Debug, Clone)]
pub(crate) struct ServerUrl {
    /// `true` for `https`/`wss`.
    secure: bool,
    /// `host:port` (or `host`).
    host: String,
    /// What the user gave.
    given: String,
}

impl ServerUrl {
    /// Parses a base URL.
    pub(crate) fn parse(text: &str) -> anyhow::Result<ServerUrl> {
        let (scheme, rest) = text.split_once("://").unwrap_or(("http", text));
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            other => {
                bail!("bad server URL {text:?}: scheme {other:?} is not http, https, ws or wss")
            }
        };
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() {
            bail!("bad server URL {text:?}: no host");
        }
        Ok(ServerUrl {
            secure,
            host: host.to_owned(),
            given: text.to_owned(),
        })
    }

    /// The web clients' WebSocket URL (`ws://host:port/ws`).
    pub(crate) fn ws_url(&self) -> String {
        format!(
            "{}://{}/ws",
            if self.secure { "wss" } else { "ws" },
            self.host
        )
    }

    /// The phones' WebSocket URL (`ws://host:port/phone`).
    pub(crate) fn phone_url(&self) -> String {
        format!(
            "{}://{}/phone",
            if self.secure { "wss" } else { "ws" },
            self.host
        )
    }

    /// `host:port`, with the scheme's default port when none is given.
    fn address(&self) -> String {
        let has_port = match self.host.rsplit_once(':') {
            Some((_, port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
            None => false,
        };
        if has_port && !self.host.ends_with(']') {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, if self.secure { 443 } else { 80 })
        }
    }

    /// Fails within a few seconds, with a clear message, when nothing accepts TCP connections
    /// at the server's address (the drivers themselves would keep retrying).
    pub(crate) async fn probe(&self) -> anyhow::Result<()> {
        let address = self.address();
        let attempt = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&address));
        match attempt.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => bail!(
                "cannot reach the server at {} ({address}: {e}); is `wa server` running? \
                 (--server or WA_SERVER says where it is)",
                self.given
            ),
            Err(_) => bail!(
                "cannot reach the server at {} ({address}: no answer within {} s); is `wa server` \
                 running? (--server or WA_SERVER says where it is)",
                self.given,
                PROBE_TIMEOUT.as_secs()
            ),
        }
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

/// The user's data directory for wa-rs: `$XDG_DATA_HOME/wa-rs` or `~/.local/share/wa-rs`.
pub(crate) fn data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("wa-rs")
}

/// A store's key: the passphrase in the environment variable `var` when set and not empty,
/// else the key file `<store>.key`.
pub(crate) fn store_key(store: &Path, var: &str) -> anyhow::Result<KeySource> {
    KeySource::from_env_or_file(var, wa_client::default_key_file(store))
        .with_context(|| format!("reading {var}"))
}

/// A JID from the command line: a phone number (`+` and spaces allowed), or a JID
/// (`15551234567@s.whatsapp.net`, `...@c.us`, `...@g.us`).
pub(crate) fn parse_jid(text: &str) -> anyhow::Result<Jid> {
    let trimmed = text.trim();
    let digits: String = trimmed
        .trim_start_matches('+')
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return wa_wire::ids::user_jid(&digits)
            .with_context(|| format!("{text:?} is not a phone number (5 to 20 digits)"));
    }
    if !trimmed.contains('@') {
        bail!("{text:?} is not a JID (user@s.whatsapp.net, group@g.us) or a phone number");
    }
    trimmed
        .parse::<Jid>()
        .map_err(|e| anyhow::anyhow!("{text:?} is not a JID or a phone number: {e}"))
}

/// A message text: the argument, or standard input when it is `-` or absent (one trailing
/// newline dropped). Empty texts are refused.
pub(crate) fn message_text(arg: Option<&str>) -> anyhow::Result<String> {
    let text = match arg {
        Some(text) if text != "-" => text.to_owned(),
        _ => {
            if std::io::stdin().is_terminal() {
                note!("type the message, then Ctrl-D:");
            }
            let mut text = String::new();
            std::io::stdin()
                .lock()
                .take(64 * 1024 + 1)
                .read_to_string(&mut text)
                .context("reading the message from standard input")?;
            if text.len() > 64 * 1024 {
                bail!("the message is longer than 64 KiB");
            }
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            text
        }
    };
    if text.is_empty() {
        bail!("the message is empty");
    }
    Ok(text)
}

/// Prints a line on standard error, ignoring failure (a closed pipe there must not panic the
/// way `eprintln!` does).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use note;

/// Standard output was closed by its reader (`wa listen | head -1`): the command ends quietly
/// with status 0.
#[derive(Debug)]
pub(crate) struct OutputClosed;

impl fmt::Display for OutputClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for OutputClosed {}

/// Prints one line on standard output (flushed); a closed pipe is [`OutputClosed`].
pub(crate) fn out(line: impl fmt::Display) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let written = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(OutputClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
    }
}

/// Writes raw bytes to standard output; a closed pipe is [`OutputClosed`].
pub(crate) fn out_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(OutputClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
    }
}

/// Whether an error is the reader of standard output going away.
pub(crate) fn is_output_closed(err: &anyhow::Error) -> bool {
    // Only standard output's own broken pipe: a socket's (the listener gone mid-request) is a
    // real failure.
    err.chain().any(|e| e.is::<OutputClosed>())
}

/// The tokio runtime of one command (two workers: store reads block briefly).
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Starts watching Ctrl-C and SIGTERM at once (so that a signal sent as soon as a command
/// says it is ready is caught); the future ends at either.
pub(crate) fn stop_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let (Some(mut term), Some(mut int)) = (term, int) else {
                let _ = tokio::signal::ctrl_c().await;
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let url = ServerUrl::parse("http://127.0.0.1:8080").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.ws_url(), "ws://127.0.0.1:8080/ws");
        assert_eq!(url.phone_url(), "ws://127.0.0.1:8080/phone");
        assert_eq!(url.address(), "127.0.0.1:8080");
        let url = ServerUrl::parse("ws://example.org/ws").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.ws_url(), "ws://example.org/ws");
        assert_eq!(url.address(), "example.org:80");
        let url = ServerUrl::parse("wss://[::1]:9/x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.phone_url(), "wss://[::1]:9/phone");
        assert_eq!(url.address(), "[::1]:9");
        assert!(ServerUrl::parse("ftp://h").is_err());
        assert!(ServerUrl::parse("http:///ws").is_err());
    }

    #[test]
    fn jids_from_numbers_and_text() {
        let jid = parse_jid("+1 555 000 0001").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jid.user(), Some("15550000001"));
        assert!(parse_jid("123@g.us").is_ok_and(|j| j.is_group()));
        assert!(parse_jid("not a jid").is_err());
    }
}
