//! The local socket of a running `wa listen` (or `wa phone listen`): a store opens in one
//! process at a time, so while the listener runs it serves the other commands of the same
//! store over the Unix socket `<store>.sock` (mode 0600 in the store's directory): one line of
//! JSON in (a [`Request`], or a phone request), one line of JSON out
//! (`{"ok":true,"result":...}` or `{"ok":false,"error":"..."}`), then the connection closes.
//!
//! Commands try the socket first and open the store themselves only when nobody listens; a
//! stale socket file (connection refused) is removed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

/// The longest request line accepted.
const MAX_LINE: u64 = 64 * 1024;

/// How long a request through the socket may take (a media upload included).
const CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// What one web client command asks a running `wa listen`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub(crate) enum Request {
    /// Send a text.
    Send {
        /// The recipient.
        to: String,
        /// The text.
        text: String,
    },
    /// Send a file as media.
    SendMedia {
        /// The recipient.
        to: String,
        /// The file (absolute path).
        file: PathBuf,
        /// image, video, audio, voice, document, sticker, gif.
        kind: String,
        /// Its MIME type.
        mimetype: String,
        /// A caption.
        caption: Option<String>,
    },
    /// The chats.
    Chats,
    /// The last messages of a chat.
    History {
        /// The chat.
        chat: String,
        /// How many at most.
        limit: usize,
    },
    /// The security code with a user.
    Verify {
        /// The user.
        jid: String,
    },
    /// Decrypt a received media message into a file.
    Download {
        /// The message id.
        id: String,
        /// Its chat, when known.
        chat: Option<String>,
        /// Where to write it (absolute path).
        out: PathBuf,
    },
}

/// The socket path of a store: `<store>.sock`.
pub(crate) fn socket_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".sock");
    PathBuf::from(name)
}

/// Whether a `wa listen` serves `socket` now; a stale socket file is removed.
pub(crate) async fn someone_listens(socket: &Path) -> bool {
    connect(socket).await.is_some()
}

async fn connect(socket: &Path) -> Option<tokio::net::UnixStream> {
    match tokio::net::UnixStream::connect(socket).await {
        Ok(stream) => Some(stream),
        Err(e) => {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                // Left behind by a `wa listen` that did not exit cleanly.
                let _ = std::fs::remove_file(socket);
            }
            None
        }
    }
}

/// Sends `request` to the `wa listen` of `socket`: `None` when nobody listens there.
///
/// # Errors
/// When the listener answered with an error, or the exchange failed.
pub(crate) async fn call<R: Serialize>(
    socket: &Path,
    request: &R,
) -> anyhow::Result<Option<serde_json::Value>> {
    let Some(stream) = connect(socket).await else {
        return Ok(None);
    };
    let exchange = async {
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_string(request).context("encoding the request")?;
        line.push('\n');
        write.write_all(line.as_bytes()).await?;
        write.shutdown().await?;
        let mut reply = String::new();
        BufReader::new(read.take(16 * 1024 * 1024))
            .read_line(&mut reply)
            .await?;
        anyhow::Ok(reply)
    };
    let reply = tokio::time::timeout(CALL_TIMEOUT, exchange)
        .await
        .context("the running `wa listen` did not answer in time")?
        .with_context(|| format!("talking to the running `wa listen` at {}", socket.display()))?;
    let reply: serde_json::Value = serde_json::from_str(reply.trim())
        .context("the running `wa listen` answered something that is not JSON")?;
    if reply.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
        return Ok(Some(
            reply
                .get("result")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
        ));
    }
    let error = reply
        .get("error")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("no reason given");
    bail!("{error} (through the running `wa listen`)")
}

/// The socket file of a running `wa listen`, removed when dropped.
#[derive(Debug)]
pub(crate) struct Bound {
    path: PathBuf,
}

impl Drop for Bound {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `socket` and answers each request with `handle`, until the returned guard's
/// task is dropped with the runtime.
///
/// # Errors
/// When another `wa listen` serves the socket, or it cannot be bound.
pub(crate) async fn serve<R, H, F>(socket: &Path, handle: H) -> anyhow::Result<Bound>
where
    R: serde::de::DeserializeOwned + Send + 'static,
    H: Fn(R) -> F + Send + Sync + 'static,
    F: Future<Output = anyhow::Result<serde_json::Value>> + Send + 'static,
{
    if someone_listens(socket).await {
        bail!(
            "another `wa listen` serves this store ({}): stop it first",
            socket.display()
        );
    }
    let listener = tokio::net::UnixListener::bind(socket)
        .with_context(|| format!("listening on {}", socket.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", socket.display()))?;
    }
    let bound = Bound {
        path: socket.to_owned(),
    };
    let handle = std::sync::Arc::new(handle);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors, most likely: back off a moment.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let handle = std::sync::Arc::clone(&handle);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let read = BufReader::new(read.take(MAX_LINE))
                    .read_line(&mut line)
                    .await;
                let reply = match read {
                    Err(e) => {
                        serde_json::json!({"ok": false, "error": format!("reading the request: {e}")})
                    }
                    Ok(_) => match serde_json::from_str::<R>(line.trim()) {
                        Err(e) => {
                            serde_json::json!({"ok": false, "error": format!("bad request: {e}")})
                        }
                        Ok(request) => match handle(request).await {
                            Ok(result) => serde_json::json!({"ok": true, "result": result}),
                            Err(e) => serde_json::json!({"ok": false, "error": format!("{e:#}")}),
                        },
                    },
                };
                let mut text = reply.to_string();
                text.push('\n');
                let _ = write.write_all(text.as_bytes()).await;
                let _ = write.shutdown().await;
            });
        }
    });
    Ok(bound)
}
