//! The commands of a person using WhatsApp Web: `wa login`, `wa chats`, `wa send`,
//! `wa send-media`, `wa listen`, `wa logout`. Each runs a `wa-client` against a server.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use wa_client::{Client, ClientConfig, Event, Events, MediaKind};
use wa_session::{AckLevel, DisconnectReason};

/// Where the server is and where the session is kept.
#[derive(Debug, Clone, Args)]
pub(crate) struct Connection {
    /// The server's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws", env = "WA_SERVER")]
    pub(crate) server: String,
    /// The session file (credentials and received messages).
    #[arg(long, env = "WA_SESSION")]
    pub(crate) session: Option<PathBuf>,
}

impl Connection {
    fn session_path(&self) -> PathBuf {
        self.session.clone().unwrap_or_else(default_session)
    }
}

/// `$XDG_DATA_HOME/wa-rs/session.redb`, or `~/.local/share/wa-rs/session.redb`.
pub(crate) fn default_session() -> PathBuf {
    data_dir().join("session.redb")
}

/// The user's data directory for wa-rs.
pub(crate) fn data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("wa-rs")
}

/// Arguments of `wa login`.
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    connection: Connection,
    /// Give up linking after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

/// Arguments of `wa chats`.
#[derive(Debug, Args)]
pub(crate) struct ChatsArgs {
    #[command(flatten)]
    connection: Connection,
    /// One JSON object a line instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `wa send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    connection: Connection,
    /// The recipient (user or group JID).
    #[arg(long)]
    to: String,
    /// The text.
    text: String,
}

/// Arguments of `wa send-media`.
#[derive(Debug, Args)]
pub(crate) struct SendMediaArgs {
    #[command(flatten)]
    connection: Connection,
    /// The recipient (user or group JID).
    #[arg(long)]
    to: String,
    /// image, sticker, video, gif, audio, voice or document.
    #[arg(long = "type")]
    kind: String,
    /// The MIME type (guessed from the type when not given).
    #[arg(long)]
    mimetype: Option<String>,
    /// A caption.
    #[arg(long)]
    caption: Option<String>,
    /// The file to send.
    file: PathBuf,
}

/// Arguments of `wa listen`.
#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    #[command(flatten)]
    connection: Connection,
    /// One JSON object a line (for machines).
    #[arg(long)]
    json: bool,
    /// Stop after this many seconds (default: until interrupted).
    #[arg(long)]
    seconds: Option<u64>,
}

/// Arguments of `wa logout`.
#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    #[command(flatten)]
    connection: Connection,
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Draws a QR code in the terminal with Unicode half blocks.
pub(crate) fn render_qr(text: &str) -> anyhow::Result<String> {
    let code =
        qrcode::QrCode::new(text.as_bytes()).context("the QR text does not fit a QR code")?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .build())
}

pub(crate) fn login(args: LoginArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut config = ClientConfig::new(&args.connection.server);
        config.store = Some(args.connection.session_path());
        let (client, mut events) = Client::start(config)?;
        let deadline = tokio::time::sleep(Duration::from_secs(args.timeout));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => bail!("no login within {} s", args.timeout),
                event = events.next() => match event {
                    Some(Event::Qr { text, .. }) => {
                        eprintln!("Scan this with the phone (or: wa phone link --number N '{text}'):");
                        eprintln!("{}", render_qr(&text)?);
                    }
                    Some(Event::Connected { account }) => {
                        println!("logged in as {} ({})", account.wid, account.pushname.unwrap_or_default());
                        println!("session saved to {}", args.connection.session_path().display());
                        client.shutdown().await;
                        return Ok(());
                    }
                    Some(event) => fail_on(&event)?,
                    None => bail!("the client stopped"),
                }
            }
        }
    })
}

/// Turns a final failure into an error.
fn fail_on(event: &Event) -> anyhow::Result<()> {
    match event {
        Event::LinkFailed(e) => bail!("linking failed: {e}"),
        Event::LoginFailed {
            error,
            forget_credentials,
        } => {
            if *forget_credentials {
                bail!("login failed: {error}; the saved session was forgotten, run `wa login`")
            }
            bail!("login failed: {error}")
        }
        Event::Disconnected {
            reason,
            reconnect_in: None,
        } => bail!("disconnected: {reason:?}"),
        _ => Ok(()),
    }
}

/// Restores the saved session and waits until it is logged in.
async fn connected(connection: &Connection) -> anyhow::Result<(Client, Events)> {
    let path = connection.session_path();
    let store =
        wa_client::Store::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let credentials = store.credentials()?.with_context(|| {
        format!(
            "not logged in ({} has no session): run `wa login` first",
            path.display()
        )
    })?;
    drop(store);
    let mut config = ClientConfig::new(&connection.server);
    config.store = Some(path);
    config.credentials = Some(credentials);
    let (client, mut events) = Client::start(config)?;
    let wait = async {
        while let Some(event) = events.next().await {
            match event {
                Event::Connected { .. } => return Ok(()),
                Event::Disconnected {
                    reason: DisconnectReason::SocketClosed,
                    ..
                } => {
                    bail!("cannot reach the server at {}", connection.server)
                }
                other => fail_on(&other)?,
            }
        }
        bail!("the client stopped")
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .context("no login within 30 s")??;
    Ok((client, events))
}

pub(crate) fn chats(args: ChatsArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let (client, _events) = connected(&args.connection).await?;
        let chats = client.chats().await?;
        for chat in &chats {
            if args.json {
                let json = serde_json::json!({"jid": chat.jid, "name": chat.name, "unread": chat.unread, "t": chat.t});
                println!("{json}");
            } else {
                println!("{:<40} {:>4} unread  {}", chat.jid, chat.unread.unwrap_or(0), chat.name.as_deref().unwrap_or(""));
            }
        }
        client.shutdown().await;
        Ok(())
    })
}

pub(crate) fn send(args: SendArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let (client, _events) = connected(&args.connection).await?;
        let id = client
            .send_text(&args.to, &args.text)
            .await
            .context("sending")?;
        println!("{id}");
        client.shutdown().await;
        Ok(())
    })
}

/// A media kind by its command-line name.
pub(crate) fn media_kind(name: &str) -> anyhow::Result<(MediaKind, &'static str)> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "image" => (MediaKind::Image, "image/jpeg"),
        "sticker" => (MediaKind::Sticker, "image/webp"),
        "video" => (MediaKind::Video, "video/mp4"),
        "gif" => (MediaKind::Gif, "video/mp4"),
        "audio" => (MediaKind::Audio, "audio/mpeg"),
        "voice" | "ptt" => (MediaKind::Voice, "audio/ogg; codecs=opus"),
        "document" => (MediaKind::Document, "application/octet-stream"),
        other => bail!(
            "unknown media type {other:?} (image, sticker, video, gif, audio, voice, document)"
        ),
    })
}

pub(crate) fn send_media(args: SendMediaArgs) -> anyhow::Result<()> {
    let (kind, default_mime) = media_kind(&args.kind)?;
    let data =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    runtime()?.block_on(async {
        let (client, _events) = connected(&args.connection).await?;
        let mime = args.mimetype.as_deref().unwrap_or(default_mime);
        let id = client
            .send_media(&args.to, kind, &data, mime, args.caption.as_deref())
            .await
            .context("sending media")?;
        println!("{id}");
        client.shutdown().await;
        Ok(())
    })
}

/// The text of a message, or what kind of message it is.
pub(crate) fn describe(message: Option<&wa_proto::Message>) -> String {
    let Some(m) = message else {
        return "(no content)".to_owned();
    };
    if let Some(text) = &m.conversation {
        return text.clone();
    }
    if let Some(text) = m
        .extended_text_message
        .as_ref()
        .and_then(|e| e.text.clone())
    {
        return text;
    }
    if let Some(image) = &m.image_message {
        return format!(
            "[image {} bytes] {}",
            image.file_length.unwrap_or(0),
            image.caption.as_deref().unwrap_or("")
        );
    }
    if m.video_message.is_some() {
        return "[video]".to_owned();
    }
    if m.audio_message.is_some() {
        return "[audio]".to_owned();
    }
    if m.document_message.is_some() {
        return "[document]".to_owned();
    }
    "(message)".to_owned()
}

pub(crate) fn ack_name(level: AckLevel) -> &'static str {
    match level {
        AckLevel::Pending => "pending",
        AckLevel::Sent => "sent",
        AckLevel::Delivered => "delivered",
        AckLevel::Read => "read",
        AckLevel::Played => "played",
        AckLevel::Other(_) => "other",
    }
}

pub(crate) fn listen(args: ListenArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let (client, mut events) = connected(&args.connection).await?;
        let stop = async {
            match args.seconds {
                Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                event = events.next() => match event {
                    Some(Event::Message { info, source }) => {
                        let from = info.key.participant.clone().or(info.key.remote_jid.clone()).unwrap_or_default();
                        let text = describe(info.message.as_ref());
                        if args.json {
                            let json = serde_json::json!({"event": "message", "from": from, "chat": info.key.remote_jid, "id": info.key.id, "from_me": info.key.from_me, "text": text, "source": format!("{source:?}").to_lowercase()});
                            println!("{json}");
                        } else {
                            println!("{from}: {text}");
                        }
                    }
                    Some(Event::Ack { ids, level, .. }) => {
                        if args.json {
                            println!("{}", serde_json::json!({"event": "ack", "ids": ids, "level": ack_name(level)}));
                        } else {
                            println!("ack {} {}", ack_name(level), ids.join(","));
                        }
                    }
                    Some(Event::Presence { jid, kind, .. }) if args.json => {
                        println!("{}", serde_json::json!({"event": "presence", "jid": jid, "type": kind}));
                    }
                    Some(event) => fail_on(&event)?,
                    None => break,
                }
            }
        }
        client.shutdown().await;
        Ok(())
    })
}

pub(crate) fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let (client, _events) = connected(&args.connection).await?;
        client.logout().await?;
        println!("logged out");
        Ok(())
    })
}
