//! The commands of a person using WhatsApp Web: `wa login`, `wa listen`, `wa send`,
//! `wa send-media`, `wa download`, `wa chats`, `wa history`, `wa verify`, `wa logout`. Each
//! runs a [`wa_client::Client`] on the store (`--store`, `WA_STORE`), or, while a `wa listen`
//! runs on that store, asks it over the store's socket (see [`crate::ipc`]).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Value, json};
use wa_client::{Client, ClientConfig, Event, Events, MediaKind, Store};
use wa_session::{AckLevel, DisconnectReason, Event as SessionEvent};

use crate::common::{self, DEFAULT_SERVER, LOGIN_TIMEOUT, ServerUrl, out, parse_jid};
use crate::ipc::{self, Request};

/// The environment variable of the web client store's passphrase.
const PASSPHRASE_VAR: &str = "WA_STORE_PASSPHRASE";

/// Where the server is and where the web client keeps its store.
#[derive(Debug, Clone, Args)]
pub(crate) struct Connection {
    /// The server's base URL (`http://host:port`; `ws://host:port` works too).
    #[arg(long, env = "WA_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// The client's store: credentials, end-to-end state and every message (encrypted; the
    /// key is `<store>.key`, or the passphrase in WA_STORE_PASSPHRASE). Default
    /// `$XDG_DATA_HOME/wa-rs/client.redb`.
    #[arg(long, env = "WA_STORE", value_name = "PATH")]
    store: Option<PathBuf>,
}

impl Connection {
    fn store_path(&self) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| common::data_dir().join("client.redb"))
    }

    fn server(&self) -> anyhow::Result<ServerUrl> {
        ServerUrl::parse(&self.server)
    }

    fn socket(&self) -> PathBuf {
        ipc::socket_path(&self.store_path())
    }

    fn config(&self) -> anyhow::Result<ClientConfig> {
        let path = self.store_path();
        let mut config = ClientConfig::new(self.server()?.ws_url()).with_store(&path);
        config.key = Some(common::store_key(&path, PASSPHRASE_VAR)?);
        Ok(config)
    }

    /// Opens the store (it must exist).
    fn open_store(&self) -> anyhow::Result<Store> {
        let path = self.store_path();
        if !path.exists() {
            bail!(
                "not logged in: {} does not exist (run `wa login` first)",
                path.display()
            );
        }
        Store::open(&path, common::store_key(&path, PASSPHRASE_VAR)?)
            .with_context(|| format!("opening the store {}", path.display()))
    }

    /// The stored credentials, or a clear error.
    fn credentials(&self) -> anyhow::Result<Box<wa_session::Credentials>> {
        let store = self.open_store()?;
        let credentials = store
            .credentials()
            .with_context(|| format!("reading {}", self.store_path().display()))?;
        match credentials {
            Some(c) => Ok(Box::new(c)),
            None => bail!(
                "not logged in ({} holds no link): run `wa login` first",
                self.store_path().display()
            ),
        }
    }
}

/// Arguments of `wa login`.
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    connection: Connection,
    /// Give up linking after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    timeout: u64,
}

/// Arguments of `wa listen`.
#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    #[command(flatten)]
    connection: Connection,
    /// One JSON object a line.
    #[arg(long)]
    json: bool,
    /// Mark incoming messages read (their senders see blue ticks).
    #[arg(long)]
    read: bool,
}

/// Arguments of `wa send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    connection: Connection,
    /// The recipient: a phone number, a user JID or a group JID.
    #[arg(long, value_name = "JID")]
    to: String,
    /// The text; `-` or nothing reads it from standard input.
    text: Option<String>,
}

/// Arguments of `wa send-media`.
#[derive(Debug, Args)]
pub(crate) struct SendMediaArgs {
    #[command(flatten)]
    connection: Connection,
    /// The recipient: a phone number, a user JID or a group JID.
    #[arg(long, value_name = "JID")]
    to: String,
    /// image, sticker, video, gif, audio, voice or document (default: from the extension).
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// The MIME type (default: from the extension).
    #[arg(long)]
    mimetype: Option<String>,
    /// A caption (images and videos only: the protocol's other media carry none).
    #[arg(long)]
    caption: Option<String>,
    /// The file to send.
    file: PathBuf,
}

/// Arguments of `wa download`.
#[derive(Debug, Args)]
pub(crate) struct DownloadArgs {
    #[command(flatten)]
    connection: Connection,
    /// The chat of the message (default: searched in every chat).
    #[arg(long, value_name = "JID")]
    chat: Option<String>,
    /// The media message's id (see `wa history --json`).
    id: String,
    /// Where to write the decrypted file; `-` is standard output.
    out: PathBuf,
}

/// Arguments of `wa chats`.
#[derive(Debug, Args)]
pub(crate) struct ChatsArgs {
    #[command(flatten)]
    connection: Connection,
    /// One JSON object a line.
    #[arg(long)]
    json: bool,
}

/// Arguments of `wa history`.
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    connection: Connection,
    /// The chat: a phone number, a user JID or a group JID.
    chat: String,
    /// The last N messages.
    #[arg(long, value_name = "N", default_value_t = 50)]
    limit: usize,
    /// One JSON object a line.
    #[arg(long)]
    json: bool,
}

/// Arguments of `wa verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    connection: Connection,
    /// The contact: a phone number or user JID.
    jid: String,
}

/// Arguments of `wa logout`.
#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    #[command(flatten)]
    connection: Connection,
    /// Forget the link locally even when the server cannot be told.
    #[arg(long)]
    local: bool,
}

/// Draws a QR code with Unicode half blocks (dark on a light terminal background inverted, so
/// that phones read it on dark terminals).
pub(crate) fn render_qr(text: &str) -> anyhow::Result<String> {
    let code =
        qrcode::QrCode::new(text.as_bytes()).context("the QR text does not fit a QR code")?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// The text of a message, or what kind of message it is.
pub(crate) fn describe(message: Option<&wa_proto::Message>) -> String {
    let Some(m) = message else {
        return "(no content)".to_owned();
    };
    if let Some(media) = m.media() {
        let kind = media_kind_name(media.kind);
        let caption = m.text().map(|t| format!(" {t}")).unwrap_or_default();
        return format!(
            "[{kind}, {} bytes]{caption}",
            media.file_length.unwrap_or(0)
        );
    }
    if let Some(text) = m.text() {
        return text.to_owned();
    }
    "(a message of another kind)".to_owned()
}

fn media_kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "image",
        MediaKind::Sticker => "sticker",
        MediaKind::Video => "video",
        MediaKind::Gif => "gif",
        MediaKind::Audio => "audio",
        MediaKind::Voice => "voice",
        MediaKind::Document => "document",
        _ => "media",
    }
}

/// The name of an ack level.
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

/// The ticks of an ack level, as people see them.
fn ticks(level: AckLevel) -> &'static str {
    match level {
        AckLevel::Sent => "✓ sent",
        AckLevel::Delivered => "✓✓ delivered",
        AckLevel::Read => "✓✓ read (blue)",
        AckLevel::Played => "✓✓ played (blue)",
        _ => "pending",
    }
}

fn status_name(status: Option<i32>) -> &'static str {
    match status {
        Some(0) => "error",
        Some(1) => "pending",
        Some(2) => "sent",
        Some(3) => "delivered",
        Some(4) => "read",
        Some(5) => "played",
        _ => "",
    }
}

/// A stored or received message as JSON.
pub(crate) fn message_json(info: &wa_proto::WebMessageInfo) -> Value {
    let from_me = info.key.from_me == Some(true);
    let sender = if from_me {
        Some("me".to_owned())
    } else {
        info.key
            .participant
            .clone()
            .or_else(|| info.participant.clone())
            .or_else(|| info.key.remote_jid.clone())
    };
    let media = info
        .message
        .as_ref()
        .and_then(|m| m.media())
        .map(|m| media_kind_name(m.kind));
    json!({
        "id": info.key.id,
        "chat": info.key.remote_jid,
        "from_me": from_me,
        "sender": sender,
        "push_name": info.push_name,
        "t": info.message_timestamp,
        "status": status_name(info.status),
        "media": media,
        "text": info.message.as_ref().and_then(|m| m.text()),
        "summary": describe(info.message.as_ref()),
    })
}

/// `value` with `"event": name` added.
pub(crate) fn tagged(mut value: Value, name: &str) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.insert("event".to_owned(), json!(name));
    }
    value
}

/// A message as one line of text.
pub(crate) fn message_line(value: &Value) -> String {
    let s = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or("");
    let from_me = value.get("from_me").and_then(Value::as_bool) == Some(true);
    let from = if from_me {
        "me".to_owned()
    } else {
        match value.get("push_name").and_then(Value::as_str) {
            Some(name) => format!("{} ({name})", s("sender")),
            None => s("sender").to_owned(),
        }
    };
    let status = if from_me && !s("status").is_empty() {
        format!("  [{}]", s("status"))
    } else {
        String::new()
    };
    format!(
        "{} [{}] {from}: {}{status}",
        s("id"),
        s("chat"),
        s("summary")
    )
}

/// The chats of a store as JSON, the most recently active first.
pub(crate) fn chats_json(store: &Store) -> anyhow::Result<Value> {
    let chats = store.chats().context("reading the chats")?;
    Ok(Value::Array(
        chats
            .iter()
            .map(|c| {
                json!({"jid": c.jid.to_string(), "name": c.name, "unread": c.unread,
                       "last_activity": c.last_activity, "archived": c.archived})
            })
            .collect(),
    ))
}

/// The last `limit` messages of a chat as JSON, oldest first.
pub(crate) fn history_json(store: &Store, chat: &str, limit: usize) -> anyhow::Result<Value> {
    let jid = parse_jid(chat)?;
    let messages = store
        .history(&jid, limit)
        .with_context(|| format!("reading the history of {jid}"))?;
    Ok(Value::Array(messages.iter().map(message_json).collect()))
}

/// A stored message by id, in `chat` or in any chat.
fn find_message(
    store: &Store,
    id: &str,
    chat: Option<&str>,
) -> anyhow::Result<wa_proto::WebMessageInfo> {
    let chats = match chat {
        Some(chat) => vec![parse_jid(chat)?],
        None => store
            .chats()
            .context("reading the chats")?
            .into_iter()
            .map(|c| c.jid)
            .collect(),
    };
    for jid in &chats {
        if let Some(info) = store.message(jid, id).context("reading the store")? {
            return Ok(info);
        }
    }
    bail!("no message {id:?} in the store")
}

/// The media kind and MIME type of a file, from `--type`/`--mimetype` or its extension.
fn media_kind(
    file: &Path,
    kind: Option<&str>,
    mimetype: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (guess_kind, guess_mime) = match ext.as_str() {
        "jpg" | "jpeg" => ("image", "image/jpeg"),
        "png" => ("image", "image/png"),
        "webp" => ("sticker", "image/webp"),
        "gif" => ("image", "image/gif"),
        "mp4" | "m4v" => ("video", "video/mp4"),
        "mov" => ("video", "video/quicktime"),
        "mp3" => ("audio", "audio/mpeg"),
        "m4a" => ("audio", "audio/mp4"),
        "ogg" | "opus" => ("voice", "audio/ogg; codecs=opus"),
        "pdf" => ("document", "application/pdf"),
        "txt" => ("document", "text/plain"),
        _ => ("document", "application/octet-stream"),
    };
    let kind = kind.unwrap_or(guess_kind).to_ascii_lowercase();
    parse_kind(&kind)?;
    Ok((kind, mimetype.unwrap_or(guess_mime).to_owned()))
}

fn parse_kind(name: &str) -> anyhow::Result<MediaKind> {
    Ok(match name {
        "image" => MediaKind::Image,
        "sticker" => MediaKind::Sticker,
        "video" => MediaKind::Video,
        "gif" => MediaKind::Gif,
        "audio" => MediaKind::Audio,
        "voice" | "ptt" => MediaKind::Voice,
        "document" => MediaKind::Document,
        other => bail!(
            "unknown media type {other:?} (image, sticker, video, gif, audio, voice, document)"
        ),
    })
}

/// Carries out a request on a connected client (for `wa listen`'s socket and for commands
/// that run the client themselves).
async fn handle(client: &Client, request: Request) -> anyhow::Result<Value> {
    let store = || client.store().context("the client has no store");
    match request {
        Request::Send { to, text } => {
            let to = parse_jid(&to)?;
            let id = client
                .send_text(&to, &text)
                .await
                .with_context(|| format!("sending to {to}"))?;
            Ok(json!({"id": id, "to": to.to_string()}))
        }
        Request::SendMedia {
            to,
            file,
            kind,
            mimetype,
            caption,
        } => {
            let to = parse_jid(&to)?;
            let kind = parse_kind(&kind)?;
            let progress = progress_bar(&file);
            let id = client
                .send_media_file(
                    &to,
                    kind,
                    &file,
                    &mimetype,
                    caption.as_deref(),
                    |sent, total| {
                        if let Some(bar) = &progress {
                            bar.set_length(total);
                            bar.set_position(sent);
                        }
                    },
                )
                .await;
            if let Some(bar) = &progress {
                bar.finish_and_clear();
            }
            let id = id.map_err(|e| match e {
                wa_client::Error::TooLarge { len, max } => anyhow::anyhow!(
                    "{} is {len} bytes, over the {max} bytes the media service accepts",
                    file.display()
                ),
                other => anyhow::Error::new(other).context(format!("sending {}", file.display())),
            })?;
            Ok(json!({"id": id, "to": to.to_string()}))
        }
        Request::Chats => chats_json(store()?),
        Request::History { chat, limit } => history_json(store()?, &chat, limit),
        Request::Verify { jid } => {
            let user = parse_jid(&jid)?;
            let code = client.security_code(&user).await?;
            Ok(json!({"jid": wa_wire::ids::user_of(&user).to_string(),
                      "code": code.as_ref().map(ToString::to_string),
                      "digits": code.as_ref().map(|c| c.digits().to_owned())}))
        }
        Request::Download { id, chat, out } => {
            let info = find_message(store()?, &id, chat.as_deref())?;
            let bytes = client
                .download_media_to(&info, &out)
                .await
                .with_context(|| format!("downloading the media of {id}"))?;
            Ok(json!({"id": id, "bytes": bytes, "out": out}))
        }
    }
}

/// A progress bar on standard error when it is a terminal.
fn progress_bar(file: &Path) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
    ) {
        bar.set_style(style);
    }
    bar.set_message(format!("uploading {}", file.display()));
    Some(bar)
}

/// Turns a final failure of the session into an error.
fn fail_on(event: &Event) -> anyhow::Result<()> {
    match event {
        Event::Session(SessionEvent::LinkFailed(e)) => bail!("linking failed: {e}"),
        Event::Session(SessionEvent::LoginFailed {
            error,
            forget_credentials,
        }) => {
            if *forget_credentials {
                bail!("login failed: {error}; the link is gone (forgotten): run `wa login` again")
            }
            bail!("login failed: {error}")
        }
        Event::Session(SessionEvent::Disconnected {
            reason,
            reconnect_in: None,
        }) => match reason {
            DisconnectReason::Replaced => {
                bail!("disconnected: another client took over this session")
            }
            DisconnectReason::LoggedOut => {
                bail!("logged out: the link was removed (run `wa login` to link again)")
            }
            other => bail!("disconnected: {other:?}"),
        },
        _ => Ok(()),
    }
}

/// Starts the client of a linked store and waits until it is logged in.
async fn connected(connection: &Connection) -> anyhow::Result<(Client, Events)> {
    let server = connection.server()?;
    connection.credentials()?;
    server.probe().await?;
    let (client, mut events) = Client::start(connection.config()?)
        .await
        .with_context(|| format!("opening {}", connection.store_path().display()))?;
    let wait = async {
        while let Some(event) = events.next().await {
            match event {
                Event::Session(SessionEvent::Connected { .. }) => return Ok(()),
                Event::Session(SessionEvent::Disconnected {
                    reason: DisconnectReason::SocketClosed | DisconnectReason::Stale,
                    ..
                }) => bail!("cannot reach the server at {server} (the connection closed)"),
                other => fail_on(&other)?,
            }
        }
        bail!("the client stopped")
    };
    let outcome = match tokio::time::timeout(LOGIN_TIMEOUT, wait).await {
        Ok(outcome) => outcome,
        Err(_) => Err(anyhow::anyhow!(
            "no login within {} s at {server}",
            LOGIN_TIMEOUT.as_secs()
        )),
    };
    if let Err(e) = outcome {
        client.shutdown().await;
        return Err(e);
    }
    Ok((client, events))
}

/// Reads the events of a client in the background (so that its calls are not held up),
/// stopping at a final failure.
fn drain(mut events: Events) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while events.next().await.is_some() {} })
}

/// Carries out `request` through a running `wa listen`, or with a client of our own.
async fn request(connection: &Connection, request: Request) -> anyhow::Result<Value> {
    if let Some(value) = ipc::call(&connection.socket(), &request).await? {
        return Ok(value);
    }
    let (client, events) = connected(connection).await?;
    let drained = drain(events);
    let result = handle(&client, request).await;
    client.shutdown().await;
    drained.abort();
    result
}

/// Reads the store without a server: through a running `wa listen`, or the store itself.
async fn read_only(connection: &Connection, request: Request) -> anyhow::Result<Value> {
    if let Some(value) = ipc::call(&connection.socket(), &request).await? {
        return Ok(value);
    }
    let store = connection.open_store()?;
    match request {
        Request::Chats => chats_json(&store),
        Request::History { chat, limit } => history_json(&store, &chat, limit),
        _ => bail!("not a read-only request"),
    }
}

/// Runs `wa login`.
pub(crate) fn login(args: LoginArgs) -> anyhow::Result<()> {
    common::runtime()?.block_on(async {
        let connection = &args.connection;
        if ipc::someone_listens(&connection.socket()).await {
            bail!("a `wa listen` runs on this store: it is logged in already");
        }
        let path = connection.store_path();
        let linked = path.exists() && connection.credentials().is_ok();
        if linked {
            let (client, _events) = connected(connection).await?;
            out(format!("logged in (restored from {})", path.display()))?;
            client.shutdown().await;
            return Ok(());
        }
        let server = connection.server()?;
        server.probe().await?;
        let (client, mut events) = Client::start(connection.config()?)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        let result = link(&client, &mut events, args.timeout, &path).await;
        client.shutdown().await;
        result
    })
}

async fn link(
    client: &Client,
    events: &mut Events,
    timeout: u64,
    path: &Path,
) -> anyhow::Result<()> {
    let _ = client;
    let terminal = std::io::stdout().is_terminal();
    let mut drawn = 0usize;
    let deadline = tokio::time::sleep(Duration::from_secs(timeout));
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            () = &mut deadline => bail!("not linked within {timeout} s"),
            event = events.next() => event,
        };
        let Some(event) = event else {
            bail!("the client stopped");
        };
        match event {
            Event::Session(SessionEvent::Qr { text, .. }) => {
                if terminal {
                    let picture = format!(
                        "Scan this with the phone's “Link a device”, or run:\n  wa phone link '{text}'\n{}",
                        render_qr(&text)?
                    );
                    let mut frame = String::new();
                    if drawn > 0 {
                        // Back to the first line of the previous code, and clear below.
                        frame.push_str(&format!("\x1b[{drawn}F\x1b[J"));
                    }
                    frame.push_str(&picture);
                    drawn = picture.lines().count();
                    out(frame.trim_end_matches('\n'))?;
                } else {
                    out(format!("qr {text}"))?;
                }
            }
            Event::Session(SessionEvent::Connected { account }) => {
                let who = account
                    .wid
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let name = account.pushname.as_deref().unwrap_or("");
                out(format!("logged in as {who} {name}"))?;
                out(format!("session saved in {}", path.display()))?;
                // The phone sends its history right after linking: take it if it comes soon.
                let history = tokio::time::timeout(Duration::from_secs(15), async {
                    while let Some(event) = events.next().await {
                        match event {
                            Event::HistoryImported(imported) => return Some(Ok(imported)),
                            Event::HistoryFailed(e) => return Some(Err(e)),
                            _ => {}
                        }
                    }
                    None
                })
                .await;
                match history {
                    Ok(Some(Ok(imported))) => out(format!(
                        "history imported: {} chats, {} messages",
                        imported.chats, imported.messages
                    ))?,
                    Ok(Some(Err(e))) => {
                        crate::common::note!("wa: the phone's history did not import: {e}")
                    }
                    _ => {}
                }
                return Ok(());
            }
            other => fail_on(&other)?,
        }
    }
}

/// Runs `wa listen`.
pub(crate) fn listen(args: ListenArgs) -> anyhow::Result<()> {
    common::runtime()?.block_on(async {
        let connection = &args.connection;
        let socket = connection.socket();
        if ipc::someone_listens(&socket).await {
            bail!(
                "another `wa listen` runs on this store ({} answers)",
                socket.display()
            );
        }
        let (client, events) = connected(connection).await?;
        let served = client.clone();
        let bound = ipc::serve(&socket, move |request| {
            let client = served.clone();
            async move { handle(&client, request).await }
        })
        .await;
        let stop = common::stop_signal();
        let bound = match bound {
            Ok(bound) => {
                crate::common::note!(
                    "wa listen: connected; other wa commands on this store go through {} \
                     (Ctrl-C stops)",
                    socket.display()
                );
                Some(bound)
            }
            Err(e) => {
                // Listening still works; the other commands wait for the store instead.
                crate::common::note!(
                    "wa listen: connected (Ctrl-C stops); other wa commands cannot use this \
                     store meanwhile: {e:#}"
                );
                None
            }
        };
        let result = listen_loop(&client, events, args.json, args.read, stop).await;
        drop(bound);
        client.shutdown().await;
        result
    })
}

async fn listen_loop(
    client: &Client,
    mut events: Events,
    json: bool,
    read: bool,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            () = &mut stop => return Ok(()),
            event = events.next() => event,
        };
        let Some(event) = event else {
            return Ok(());
        };
        match &event {
            Event::Session(SessionEvent::Message { info, .. }) => {
                let value = message_json(info);
                if json {
                    out(tagged(value, "message"))?;
                } else {
                    out(message_line(&value))?;
                }
                if read
                    && info.key.from_me != Some(true)
                    && let (Some(chat), Some(id)) = (&info.key.remote_jid, &info.key.id)
                    && let Ok(chat) = chat.parse::<wa_wire::Jid>()
                {
                    let participant = info.key.participant.as_deref().and_then(|p| p.parse().ok());
                    if let Err(e) = client.mark_read(&chat, id, participant.as_ref()).await {
                        crate::common::note!("wa: marking {id} read: {e}");
                    }
                }
            }
            Event::Session(SessionEvent::Ack {
                ids,
                level,
                to,
                participant,
                ..
            }) => {
                if json {
                    out(
                        json!({"event": "ack", "ids": ids, "level": ack_name(*level),
                               "chat": to.as_ref().map(ToString::to_string),
                               "participant": participant.as_ref().map(ToString::to_string)}),
                    )?;
                } else {
                    out(format!("{} {}", ids.join(","), ticks(*level)))?;
                }
            }
            Event::Session(SessionEvent::Presence {
                jid, group, kind, ..
            }) => {
                if json {
                    out(
                        json!({"event": "presence", "jid": jid.to_string(), "type": kind,
                               "group": group.as_ref().map(ToString::to_string)}),
                    )?;
                } else {
                    out(format!("{jid} is {kind}"))?;
                }
            }
            Event::Session(SessionEvent::IdentityChanged { jid }) => {
                if json {
                    out(json!({"event": "identity-changed", "jid": jid.to_string()}))?;
                } else {
                    out(format!(
                        "{jid} has a new identity (new phone?): their security code changed, `wa verify {jid}`"
                    ))?;
                }
            }
            Event::Session(SessionEvent::PhoneReachable(up)) => {
                if json {
                    out(json!({"event": "phone", "reachable": up}))?;
                } else if !up {
                    out("the phone is not reachable")?;
                } else {
                    out("the phone is reachable again")?;
                }
            }
            Event::Session(SessionEvent::Group(notice)) => {
                let participants: Vec<String> = notice
                    .participants
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                if json {
                    out(json!({"event": "group", "group": notice.group.to_string(),
                               "op": format!("{:?}", notice.op).to_lowercase(),
                               "author": notice.author.to_string(), "participants": participants,
                               "subject": notice.subject}))?;
                } else {
                    out(format!(
                        "group {}: {} {:?} {}{}",
                        notice.group,
                        notice.author,
                        notice.op,
                        participants.join(", "),
                        notice
                            .subject
                            .as_deref()
                            .map(|s| format!(" “{s}”"))
                            .unwrap_or_default()
                    ))?;
                }
            }
            Event::HistoryImported(imported) => {
                if json {
                    out(json!({"event": "history-imported", "chats": imported.chats,
                               "contacts": imported.contacts, "messages": imported.messages,
                               "new_messages": imported.new_messages}))?;
                } else {
                    out(format!(
                        "history imported: {} chats, {} messages ({} new)",
                        imported.chats, imported.messages, imported.new_messages
                    ))?;
                }
            }
            Event::HistoryFailed(e) => {
                crate::common::note!("wa: a history export did not import: {e}")
            }
            Event::StoreFailed(e) => {
                crate::common::note!("wa: the store could not keep something: {e}")
            }
            Event::Session(SessionEvent::Disconnected {
                reason,
                reconnect_in: Some(delay),
            }) => {
                crate::common::note!(
                    "wa: disconnected ({reason:?}); reconnecting in {:.1} s",
                    delay.as_secs_f32()
                );
            }
            Event::Session(SessionEvent::Connected { .. }) => {
                crate::common::note!("wa: connected again")
            }
            other => fail_on(other)?,
        }
    }
}

/// Runs `wa send`.
pub(crate) fn send(args: SendArgs) -> anyhow::Result<()> {
    let text = common::message_text(args.text.as_deref())?;
    parse_jid(&args.to)?;
    common::runtime()?.block_on(async {
        let reply = request(&args.connection, Request::Send { to: args.to, text }).await?;
        out(reply.get("id").and_then(Value::as_str).unwrap_or(""))
    })
}

/// Runs `wa send-media`.
pub(crate) fn send_media(args: SendMediaArgs) -> anyhow::Result<()> {
    parse_jid(&args.to)?;
    let file = std::path::absolute(&args.file)
        .with_context(|| format!("finding {}", args.file.display()))?;
    let meta = std::fs::metadata(&file).with_context(|| format!("reading {}", file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", file.display());
    }
    let (kind, mimetype) = media_kind(&file, args.kind.as_deref(), args.mimetype.as_deref())?;
    if args.caption.is_some() && !matches!(kind.as_str(), "image" | "video" | "gif") {
        crate::common::note!("wa: a {kind} carries no caption in this protocol: it is left out");
    }
    common::runtime()?.block_on(async {
        let reply = request(
            &args.connection,
            Request::SendMedia {
                to: args.to,
                file,
                kind,
                mimetype,
                caption: args.caption,
            },
        )
        .await?;
        out(reply.get("id").and_then(Value::as_str).unwrap_or(""))
    })
}

/// Runs `wa download`.
pub(crate) fn download(args: DownloadArgs) -> anyhow::Result<()> {
    let to_stdout = args.out.as_os_str() == "-";
    let scratch = tempfile::tempdir().context("making a temporary directory")?;
    let target = if to_stdout {
        scratch.path().join("media")
    } else {
        std::path::absolute(&args.out).with_context(|| format!("finding {}", args.out.display()))?
    };
    common::runtime()?.block_on(async {
        let request = Request::Download {
            id: args.id.clone(),
            chat: args.chat.clone(),
            out: target.clone(),
        };
        let reply = match ipc::call(&args.connection.socket(), &request).await? {
            Some(reply) => reply,
            None => {
                // The download needs the media service only, not a logged-in socket.
                args.connection.credentials()?;
                let (client, events) = Client::start(args.connection.config()?)
                    .await
                    .with_context(|| {
                        format!("opening {}", args.connection.store_path().display())
                    })?;
                let drained = drain(events);
                let result = handle(&client, request).await;
                client.shutdown().await;
                drained.abort();
                result?
            }
        };
        if to_stdout {
            let bytes = std::fs::read(&target).context("reading the downloaded file")?;
            common::out_bytes(&bytes)
        } else {
            let bytes = reply.get("bytes").and_then(Value::as_u64).unwrap_or(0);
            crate::common::note!("wrote {} ({bytes} bytes)", target.display());
            Ok(())
        }
    })
}

/// Runs `wa chats`.
pub(crate) fn chats(args: ChatsArgs) -> anyhow::Result<()> {
    common::runtime()?.block_on(async {
        let chats = read_only(&args.connection, Request::Chats).await?;
        print_chats(&chats, args.json)
    })
}

/// Prints chats (as [`chats_json`] makes them): one line each, or one JSON object each.
pub(crate) fn print_chats(chats: &Value, json: bool) -> anyhow::Result<()> {
    let chats = chats.as_array().cloned().unwrap_or_default();
    if chats.is_empty() && !json {
        crate::common::note!("no chats yet");
    }
    for chat in chats {
        if json {
            out(chat)?;
        } else {
            let s = |k: &str| chat.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let unread = chat.get("unread").and_then(Value::as_u64).unwrap_or(0);
            out(format!(
                "{:<32} {unread:>4} unread  {}",
                s("jid"),
                s("name")
            ))?;
        }
    }
    Ok(())
}

/// Prints messages (as [`history_json`] makes them).
pub(crate) fn print_history(messages: &Value, chat: &str, json: bool) -> anyhow::Result<()> {
    let messages = messages.as_array().cloned().unwrap_or_default();
    if messages.is_empty() && !json {
        crate::common::note!("no messages with {chat}");
    }
    for message in messages {
        if json {
            out(message)?;
        } else {
            out(message_line(&message))?;
        }
    }
    Ok(())
}

/// Runs `wa history`.
pub(crate) fn history(args: HistoryArgs) -> anyhow::Result<()> {
    parse_jid(&args.chat)?;
    common::runtime()?.block_on(async {
        let messages = read_only(
            &args.connection,
            Request::History {
                chat: args.chat.clone(),
                limit: args.limit,
            },
        )
        .await?;
        print_history(&messages, &args.chat, args.json)
    })
}

/// Runs `wa verify`.
pub(crate) fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    parse_jid(&args.jid)?;
    common::runtime()?.block_on(async {
        let reply = request(
            &args.connection,
            Request::Verify {
                jid: args.jid.clone(),
            },
        )
        .await?;
        match reply.get("code").and_then(Value::as_str) {
            Some(code) => {
                out(format!("security code with {}:", args.jid))?;
                out(code)
            }
            None => bail!(
                "no security code with {} yet: their identity is learnt with the first message \
                 between you",
                args.jid
            ),
        }
    })
}

/// Runs `wa logout`.
pub(crate) fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    common::runtime()?.block_on(async {
        let connection = &args.connection;
        if ipc::someone_listens(&connection.socket()).await {
            bail!("a `wa listen` runs on this store: stop it first");
        }
        let credentials = connection.credentials()?;
        let online = connected(connection).await;
        match online {
            Ok((client, _events)) => {
                // The login may have rotated the tokens: the HTTP logout needs the new ones.
                let credentials = match client.store().map(Store::credentials) {
                    Some(Ok(Some(fresh))) => Box::new(fresh),
                    _ => credentials,
                };
                client.logout().await.context("logging out")?;
                // The socket's logout is not answered: the HTTP logout confirms it (401: the
                // server already forgot these tokens), so the device is unlinked on return.
                let server = connection.server()?;
                match Client::logout_offline(&server.ws_url(), &credentials).await {
                    Ok(()) | Err(wa_client::Error::HttpStatus { status: 401, .. }) => {}
                    Err(e) => crate::common::note!("wa: the logout could not be confirmed: {e}"),
                }
                out("logged out (the server unlinked this device; messages stay in the store)")
            }
            Err(e) => {
                crate::common::note!("wa: {e:#}; trying the HTTP logout");
                let server = connection.server()?;
                let offline = Client::logout_offline(&server.ws_url(), &credentials).await;
                let store = connection.open_store()?;
                match offline {
                    Ok(()) => {
                        store.forget_link().context("forgetting the link")?;
                        out("logged out over HTTP (messages stay in the store)")
                    }
                    Err(err) if args.local => {
                        store.forget_link().context("forgetting the link")?;
                        crate::common::note!("wa: the server was not told ({err}); the link is forgotten here");
                        out("logged out locally")
                    }
                    Err(err) => Err(anyhow::Error::new(err).context(
                        "the server could not be told; the link is kept (--local forgets it anyway)",
                    )),
                }
            }
        }
    })
}
