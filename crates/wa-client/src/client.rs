//! The web client: the handle ([`Client`]) and the driver task behind it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt as _;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use wa_frame::{OutMessage, WsMessage};
use wa_proto::web_message_info::Status;
use wa_session::{
    AckLevel, CommandError, Credentials, DisconnectReason, GroupOp, MediaConn, MediaKind,
    PresenceState, Reply, RequestId, Session, Time, Transmit,
};
use wa_vault::KeySource;
use wa_wire::Jid;
use wa_wire::ids::{device_jid, user_of};

use crate::error::{Error, random32};
use crate::history::{self, DEFAULT_MAX_HISTORY_BYTES};
use crate::media::{self, MAX_IN_MEMORY, Source, Target};
use crate::net::{self, Clock, DEFAULT_EVENTS_CAPACITY, EventStream, Outbox, Socket};
use crate::store::{Imported, Op, Store, StoredChat, StoredContact, default_key_file};

/// How to run a web client.
#[derive(Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The server's WebSocket URL, e.g. `ws://127.0.0.1:8080/ws`.
    pub server_url: String,
    /// Other nodes of the same cluster, tried in turn when the current one does not answer
    /// (every connection attempt tries each URL once, from the last one that answered).
    /// Default none.
    pub fallback_urls: Vec<String>,
    /// The session's configuration.
    pub session: wa_session::Config,
    /// The local store (credentials, end-to-end state, messages, chats, contacts); `None`
    /// keeps nothing (the link then lasts as long as the client).
    pub store: Option<PathBuf>,
    /// The store's key; `None` is the key file `<store>.key` (made with the store).
    pub key: Option<KeySource>,
    /// The session's random seed; `None` draws it from the OS.
    pub seed: Option<[u8; 32]>,
    /// How long opening a socket may take. Default 10 s.
    pub connect_timeout: Duration,
    /// Events the channel holds before the driver waits for the consumer. Default 1024.
    pub events_capacity: usize,
    /// The largest history export (plaintext) this client imports. Default 64 MiB.
    pub max_history_bytes: u64,
}

impl ClientConfig {
    /// A configuration for `server_url` with defaults for the rest.
    pub fn new(server_url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            server_url: server_url.into(),
            fallback_urls: Vec::new(),
            session: wa_session::Config::default(),
            store: None,
            key: None,
            seed: None,
            connect_timeout: Duration::from_secs(10),
            events_capacity: DEFAULT_EVENTS_CAPACITY,
            max_history_bytes: DEFAULT_MAX_HISTORY_BYTES,
        }
    }

    /// The same configuration with a store at `path` (key file `<path>.key`).
    #[must_use]
    pub fn with_store(mut self, path: impl Into<PathBuf>) -> ClientConfig {
        self.store = Some(path.into());
        self
    }
}

/// What a web client tells its user.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// What the session emits, except what the driver consumes itself: replies (they answer
    /// the calls), credentials and end-to-end state (stored), history notices (imported).
    Session(wa_session::Event),
    /// The phone's history export for this device was imported.
    HistoryImported(Imported),
    /// A history export for this device did not import: nothing of it was stored.
    HistoryFailed(Error),
    /// A store commit failed (what it held is not stored; the session carried on).
    StoreFailed(Error),
}

/// The events of a web client.
pub type Events = EventStream<Event>;

type Job = Box<dyn FnOnce(&mut Session, Time) -> Result<RequestId, CommandError> + Send>;

enum Command {
    Request(Job, oneshot::Sender<Result<Reply, Error>>),
    /// A request whose reply nobody waits for: only whether the session took it.
    Fire(Job, oneshot::Sender<Result<(), Error>>),
    Send {
        to: Jid,
        message: Box<wa_proto::Message>,
        reply: oneshot::Sender<Result<String, Error>>,
    },
    SecurityCode(Jid, oneshot::Sender<Option<wa_session::SecurityCode>>),
    Logout(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// A running web client: cheap to clone, each method a request to the driver task.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    store: Option<Arc<Store>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Commands waiting for the driver at most (callers wait for room beyond).
const COMMAND_QUEUE: usize = 64;

impl Client {
    /// Starts a client on the current tokio runtime: it restores from its store (credentials
    /// and end-to-end state), or links with a QR code ([`wa_session::Event::Qr`]) when the
    /// store has no link.
    ///
    /// # Errors
    /// When the store does not open, its end-to-end state does not restore, or the OS gives no
    /// randomness.
    pub async fn start(config: ClientConfig) -> Result<(Client, Events), Error> {
        let store = match &config.store {
            Some(path) => {
                let key = match config.key {
                    Some(key) => key,
                    None => KeySource::KeyFile(default_key_file(path)),
                };
                let path = path.clone();
                Some(Arc::new(
                    tokio::task::spawn_blocking(move || Store::open(&path, key)).await??,
                ))
            }
            None => None,
        };
        let seed = match config.seed {
            Some(seed) => seed,
            None => random32()?,
        };
        let clock = Clock::new();
        let mut session = Session::new(config.session.clone(), seed, clock.now());
        let mut own_device = None;
        if let Some(store) = &store {
            let loaded = Arc::clone(store);
            let (key, credentials, parts) = tokio::task::spawn_blocking(move || {
                Ok::<_, Error>((
                    loaded.pickle_key()?,
                    loaded.credentials()?,
                    loaded.e2e_parts()?,
                ))
            })
            .await??;
            session = session.with_pickle_key(key);
            match credentials {
                Some(credentials) if session.is_end_to_end() => {
                    own_device = Some(device_jid(&credentials.wid, credentials.device));
                    session.restore_end_to_end(clock.now(), credentials, parts)?;
                }
                Some(credentials) => session.restore(clock.now(), credentials)?,
                None => {
                    // A new link makes a new end-to-end identity: what is stored is stale.
                    let store = Arc::clone(store);
                    tokio::task::spawn_blocking(move || store.apply(vec![Op::ClearE2e])).await??;
                    session.link(clock.now())?;
                }
            }
        } else {
            session.link(clock.now())?;
        }
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (outbox, events) = EventStream::new(config.events_capacity);
        let http = media::http_client();
        let driver = Driver {
            session,
            clock,
            urls: net::Urls::new(config.server_url, config.fallback_urls),
            connect_timeout: config.connect_timeout,
            socket: None,
            replies: HashMap::new(),
            sends: HashMap::new(),
            acked: Vec::new(),
            outbox,
            store: store.clone(),
            http: http.clone(),
            max_history_bytes: config.max_history_bytes,
            own_device,
        };
        tokio::spawn(driver.run(commands_rx));
        Ok((
            Client {
                commands,
                store,
                http,
            },
            events,
        ))
    }

    /// The local store, when the client has one (for direct reads; they block briefly).
    pub fn store(&self) -> Option<&Store> {
        self.store.as_deref()
    }

    async fn command(&self, command: Command) -> Result<(), Error> {
        self.commands
            .send(command)
            .await
            .map_err(|_| Error::Stopped)
    }

    async fn request(
        &self,
        job: impl FnOnce(&mut Session, Time) -> Result<RequestId, CommandError> + Send + 'static,
    ) -> Result<Reply, Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Request(Box::new(job), tx)).await?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// A request whose reply needs no waiting (presence, read receipts): sent, not awaited,
    /// but a session that refuses it is an error.
    async fn fire(
        &self,
        job: impl FnOnce(&mut Session, Time) -> Result<RequestId, CommandError> + Send + 'static,
    ) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Fire(Box::new(job), tx)).await?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Sends a text message; returns its id once the server stored it (ack 1), when it is
    /// also stored locally.
    ///
    /// # Errors
    /// When not connected, or the server did not accept it in time.
    pub async fn send_text(&self, to: &Jid, text: &str) -> Result<String, Error> {
        let message = wa_proto::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        };
        self.send_message(to, message).await
    }

    /// Sends any message (end to end encrypted); returns its id once the server stored it.
    ///
    /// # Errors
    /// As [`Client::send_text`].
    pub async fn send_message(
        &self,
        to: &Jid,
        message: wa_proto::Message,
    ) -> Result<String, Error> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Send {
            to: to.clone(),
            message: Box::new(message),
            reply,
        })
        .await?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    async fn media_target(&self) -> Result<Target, Error> {
        let conn = self.media_conn().await?;
        Target::new(&conn.hosts, &conn.auth, conn.max_bytes)
    }

    /// Encrypts `data` (small media, held in memory), uploads it and sends the media message.
    ///
    /// # Errors
    /// When not connected, the data is over the host's limit, the upload fails, or the server
    /// did not accept the message.
    pub async fn send_media(
        &self,
        to: &Jid,
        kind: MediaKind,
        data: &[u8],
        mimetype: &str,
        caption: Option<&str>,
    ) -> Result<String, Error> {
        let target = self.media_target().await?;
        let (key, info, uploaded) =
            media::encrypt_and_upload(&self.http, &target, media::media_type(kind), data.to_vec())
                .await?;
        let uploaded = media::uploaded_media(kind, &key, &info, uploaded, mimetype, caption);
        self.send_message(to, media_message(&uploaded)?).await
    }

    /// Sends the file at `path` as media: asks for the media connection first and refuses a
    /// file over its `max_bytes` before reading it; encrypts it from disk into a temporary
    /// file (off the async task) and uploads that streaming, calling `progress(sent, total)`
    /// as body bytes go out; then sends the media message.
    ///
    /// # Errors
    /// [`Error::TooLarge`] for a file over the limit; [`Error::Io`] when the file cannot be
    /// read; otherwise as [`Client::send_media`].
    pub async fn send_media_file(
        &self,
        to: &Jid,
        kind: MediaKind,
        path: &Path,
        mimetype: &str,
        caption: Option<&str>,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<String, Error> {
        let target = self.media_target().await?;
        let len = tokio::fs::metadata(path)
            .await
            .map_err(Error::io(path))?
            .len();
        let total = media::body_len(len);
        let (sent_tx, sent_rx) = watch::channel(0u64);
        let upload = media::encrypt_and_upload_file(
            &self.http,
            &target,
            media::media_type(kind),
            path,
            sent_tx,
        );
        let (key, info, uploaded) =
            media::with_progress(upload, sent_rx, || total, &mut progress).await?;
        progress(info.body_length, info.body_length);
        let uploaded = media::uploaded_media(kind, &key, &info, uploaded, mimetype, caption);
        self.send_message(to, media_message(&uploaded)?).await
    }

    /// Downloads the media of a message into memory, checking MAC and hashes (bodies up to
    /// [`MAX_IN_MEMORY`]).
    ///
    /// # Errors
    /// When the message has no media, the download fails or is stale, or a check fails.
    pub async fn download_media(&self, info: &wa_proto::WebMessageInfo) -> Result<Vec<u8>, Error> {
        media::download(&self.http, Source::of_message(info, MAX_IN_MEMORY)?).await
    }

    /// Downloads the media of a message into the file at `path`, decrypting as it arrives;
    /// the file appears, complete, only when every check passed. Returns its length.
    ///
    /// # Errors
    /// As [`Client::download_media`], and [`Error::Io`] for the file.
    pub async fn download_media_to(
        &self,
        info: &wa_proto::WebMessageInfo,
        path: &Path,
    ) -> Result<u64, Error> {
        let source = Source::of_message(info, u64::MAX)?;
        let sink = media::file_sink(path)?;
        let done = media::download_into(&self.http, source, sink).await?;
        Ok(done.file_length)
    }

    /// Where and how to upload media.
    ///
    /// # Errors
    /// When not connected or the server did not answer.
    pub async fn media_conn(&self) -> Result<MediaConn, Error> {
        match self.request(|s, now| s.media_conn(now)).await? {
            Reply::MediaConn(conn) => Ok(conn),
            _ => Err(Error::UnexpectedReply("a media connection")),
        }
    }

    /// Marks a chat read up to message `id` (sent by `participant` in a group): the sender
    /// sees blue ticks.
    ///
    /// # Errors
    /// When not connected.
    pub async fn mark_read(
        &self,
        chat: &Jid,
        id: &str,
        participant: Option<&Jid>,
    ) -> Result<(), Error> {
        let (chat, id, participant) = (chat.clone(), id.to_owned(), participant.cloned());
        self.fire(move |s, now| s.mark_read(now, &chat, &id, participant.as_ref()))
            .await
    }

    /// Sets the own presence (for everyone, or a typing state in one chat).
    ///
    /// # Errors
    /// When not connected.
    pub async fn set_presence(&self, state: PresenceState, to: Option<&Jid>) -> Result<(), Error> {
        let to = to.cloned();
        self.fire(move |s, now| s.set_presence(now, state, to.as_ref()))
            .await
    }

    /// Subscribes to a contact's presence.
    ///
    /// # Errors
    /// When not connected or the server refused.
    pub async fn subscribe_presence(&self, jid: &Jid) -> Result<(), Error> {
        let jid = jid.clone();
        self.request(move |s, now| s.subscribe_presence(now, &jid))
            .await
            .map(|_| ())
    }

    /// The chats of the local store (imported and live), the most recently active first.
    ///
    /// # Errors
    /// [`Error::NoStore`] without a store; when the store cannot be read.
    pub async fn chats(&self) -> Result<Vec<StoredChat>, Error> {
        let store = self.store.clone().ok_or(Error::NoStore)?;
        tokio::task::spawn_blocking(move || store.chats()).await?
    }

    /// The contacts of the local store.
    ///
    /// # Errors
    /// As [`Client::chats`].
    pub async fn contacts(&self) -> Result<Vec<StoredContact>, Error> {
        let store = self.store.clone().ok_or(Error::NoStore)?;
        tokio::task::spawn_blocking(move || store.contacts()).await?
    }

    /// The last `limit` messages of `chat` in the local store (imported and live), oldest
    /// first.
    ///
    /// # Errors
    /// As [`Client::chats`].
    pub async fn history(
        &self,
        chat: &Jid,
        limit: usize,
    ) -> Result<Vec<wa_proto::WebMessageInfo>, Error> {
        let store = self.store.clone().ok_or(Error::NoStore)?;
        let chat = chat.clone();
        tokio::task::spawn_blocking(move || store.history(&chat, limit)).await?
    }

    /// Creates a group; returns its JID.
    ///
    /// # Errors
    /// When not connected or the server refused.
    pub async fn group_create(&self, subject: &str, participants: &[Jid]) -> Result<Jid, Error> {
        let subject = subject.to_owned();
        let participants = participants.to_vec();
        let reply = self
            .request(move |s, now| s.group_create(now, &subject, &participants))
            .await?;
        match reply {
            Reply::Json(value) => value
                .get("gid")
                .and_then(serde_json::Value::as_str)
                .and_then(|g| g.parse().ok())
                .ok_or(Error::UnexpectedReply("a group id")),
            _ => Err(Error::UnexpectedReply("a group id")),
        }
    }

    /// Adds, removes, promotes or demotes group participants.
    ///
    /// # Errors
    /// When not connected or the server refused.
    pub async fn group_participants(
        &self,
        group: &Jid,
        op: GroupOp,
        participants: &[Jid],
    ) -> Result<(), Error> {
        let group = group.clone();
        let participants = participants.to_vec();
        self.request(move |s, now| s.group_participants(now, &group, op, &participants))
            .await
            .map(|_| ())
    }

    /// Changes a group's subject.
    ///
    /// # Errors
    /// When not connected or the server refused.
    pub async fn group_subject(&self, group: &Jid, subject: &str) -> Result<(), Error> {
        let (group, subject) = (group.clone(), subject.to_owned());
        self.request(move |s, now| s.group_subject(now, &group, &subject))
            .await
            .map(|_| ())
    }

    /// Leaves a group.
    ///
    /// # Errors
    /// When not connected or the server refused.
    pub async fn group_leave(&self, group: &Jid) -> Result<(), Error> {
        let group = group.clone();
        self.request(move |s, now| s.group_leave(now, &group))
            .await
            .map(|_| ())
    }

    /// A group's subject and members, as the server answers.
    ///
    /// # Errors
    /// When not connected or the server refused.
    pub async fn group_metadata(&self, group: &Jid) -> Result<serde_json::Value, Error> {
        let group = group.clone();
        match self
            .request(move |s, now| s.group_metadata(now, &group))
            .await?
        {
            Reply::Json(value) => Ok(value),
            _ => Err(Error::UnexpectedReply("group metadata")),
        }
    }

    /// The security code with `user` (PROTOCOL.md "Security codes"), once both identities are
    /// known (this account's phone's and theirs: after a message in either direction); `None`
    /// before.
    ///
    /// # Errors
    /// When the client has stopped.
    pub async fn security_code(
        &self,
        user: &Jid,
    ) -> Result<Option<wa_session::SecurityCode>, Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::SecurityCode(user_of(user), tx))
            .await?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Logs out and stops: with a connection, the server is told (it unlinks this device);
    /// the store forgets the credentials and the end-to-end state either way (messages stay).
    ///
    /// # Errors
    /// When the client had already stopped.
    pub async fn logout(self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Logout(tx)).await?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Logs a device out without a socket, by the HTTP form of PROTOCOL.md §2.6:
    /// `POST /logout?t=<browserToken>&m=<base64(HMAC-SHA256(mac_key, enc_key))>` on the server
    /// of `server_url` (the WebSocket URL of [`ClientConfig::server_url`]). The server unlinks
    /// the device; forget the credentials afterwards ([`Store::forget_link`]).
    ///
    /// # Errors
    /// [`Error::BadUrl`] for a URL that is not `ws://`, `wss://`, `http://` or `https://`;
    /// [`Error::Http`] or [`Error::HttpStatus`] (401: the server does not know these tokens).
    pub async fn logout_offline(server_url: &str, credentials: &Credentials) -> Result<(), Error> {
        let base = logout_base(server_url)?;
        let token = credentials.session_keys().logout_token();
        let url = format!(
            "{base}/logout?t={}&m={}",
            media::percent(&credentials.browser_token),
            media::percent(&token)
        );
        let response = media::http_client().post(url).send().await?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::HttpStatus {
                what: "the logout",
                status: status.as_u16(),
            });
        }
        Ok(())
    }

    /// Stops the client, closing its socket (the link stays: the next start restores it).
    /// The store is released once this returns and every clone of this `Client` is dropped.
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.command(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// `scheme://host[:port]` of a server URL, in its HTTP form.
fn logout_base(url: &str) -> Result<String, Error> {
    let bad = |why| Error::BadUrl {
        url: url.to_owned(),
        why,
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let scheme = match scheme {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        _ => return Err(bad("not ws, wss, http or https")),
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(format!("{scheme}://{host}"))
}

/// The message that describes an uploaded file.
fn media_message(uploaded: &wa_session::UploadedMedia) -> Result<wa_proto::Message, Error> {
    Ok(media::media_message(uploaded))
}

/// The status of a message that reached an ack level.
fn status_of(level: AckLevel) -> Option<Status> {
    match level {
        AckLevel::Sent => Some(Status::ServerAck),
        AckLevel::Delivered => Some(Status::DeliveryAck),
        AckLevel::Read => Some(Status::Read),
        AckLevel::Played => Some(Status::Played),
        _ => None,
    }
}

/// A sent message the server acked: who waits for its id, and the answer.
type AckedSend = (
    oneshot::Sender<Result<String, Error>>,
    Result<String, Error>,
);

/// A message sent and not yet acked: its stored form and who waits for its id.
type SentMessage = (
    Box<wa_proto::WebMessageInfo>,
    oneshot::Sender<Result<String, Error>>,
);

/// The one task of a client: a `select!` over the socket, the commands and one timer.
struct Driver {
    session: Session,
    clock: Clock,
    urls: net::Urls,
    connect_timeout: Duration,
    socket: Option<Socket>,
    replies: HashMap<RequestId, oneshot::Sender<Result<Reply, Error>>>,
    /// Messages sent and not yet acked: stored once the server has them.
    sends: HashMap<RequestId, SentMessage>,
    /// Sent messages the server acked, answered once their store commit is done.
    acked: Vec<AckedSend>,
    outbox: Outbox<Event>,
    store: Option<Arc<Store>>,
    http: reqwest::Client,
    max_history_bytes: u64,
    own_device: Option<Jid>,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut stopping: Option<oneshot::Sender<()>> = None;
        loop {
            self.pump().await;
            if let Some(done) = stopping.take() {
                if let Some(mut socket) = self.socket.take() {
                    let _ = socket.close(None).await;
                }
                // Release the store before saying we stopped, so that the caller can open it
                // again at once (background tasks may still hold it a moment).
                self.store = None;
                self.outbox.drain_in_background();
                let _ = done.send(());
                return;
            }
            let blocked = self.outbox.flush();
            let deadline = self.session.poll_timeout().map(|t| self.clock.instant(t));
            tokio::select! {
                () = self.outbox.send_one(), if blocked => {}
                message = net::next_message(&mut self.socket), if !blocked => {
                    let now = self.clock.now();
                    match message {
                        Some(Ok(Message::Text(text))) => self.session.handle_message(now, WsMessage::Text(text.as_str())),
                        Some(Ok(Message::Binary(bytes))) => self.session.handle_message(now, WsMessage::Binary(&bytes)),
                        Some(Ok(Message::Close(_)) | Err(_)) | None => {
                            self.socket = None;
                            self.session.handle_closed(now);
                        }
                        Some(Ok(_)) => {}
                    }
                }
                command = commands.recv() => {
                    let now = self.clock.now();
                    match command {
                        Some(command) => {
                            if let Some(done) = self.command(now, command) {
                                stopping = Some(done);
                            }
                        }
                        None => {
                            let (done, _) = oneshot::channel();
                            stopping = Some(done);
                        }
                    }
                }
                () = net::sleep_until(deadline) => self.session.handle_timeout(self.clock.now()),
            }
        }
    }

    /// Carries out a command; the channel to answer when it stops the driver.
    fn command(&mut self, now: Time, command: Command) -> Option<oneshot::Sender<()>> {
        match command {
            Command::Fire(job, reply) => {
                let _ = reply.send(job(&mut self.session, now).map(|_| ()).map_err(Error::from));
            }
            Command::Request(job, reply) => match job(&mut self.session, now) {
                Ok(id) => {
                    self.replies.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            },
            Command::Send { to, message, reply } => {
                let kept = message.clone();
                match self.session.send_message(now, &to, *message) {
                    Ok((request, id)) => {
                        let chat = wa_wire::Chat::from_jid(&to)
                            .map(|c| c.jid().clone())
                            .unwrap_or(to);
                        let info = wa_proto::WebMessageInfo {
                            key: wa_proto::MessageKey {
                                remote_jid: Some(chat.to_wire_string()),
                                from_me: Some(true),
                                id: Some(id),
                                participant: None,
                            },
                            message: Some(*kept),
                            message_timestamp: Some(now.as_secs()),
                            status: Some(Status::ServerAck as i32),
                            ..Default::default()
                        };
                        self.sends.insert(request, (Box::new(info), reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::SecurityCode(user, reply) => {
                let _ = reply.send(self.session.security_code(&user));
            }
            Command::Logout(done) => {
                self.session.logout(now);
                return Some(done);
            }
            Command::Shutdown(done) => return Some(done),
        }
        None
    }

    /// Drains the session: events first (replies answered, what must be kept committed to
    /// the store, the rest queued for the user), then what it wants sent. The store commit
    /// comes before the sends, so a delivery receipt never goes out for a message whose
    /// end-to-end state is not yet on disk.
    async fn pump(&mut self) {
        loop {
            let mut ops = Vec::new();
            let mut moved = false;
            while let Some(event) = self.session.poll_event() {
                moved = true;
                self.route(event, &mut ops);
            }
            if !ops.is_empty() {
                self.commit(ops).await;
            }
            // A sent message's id goes to its caller once the message is in the store.
            for (reply, answer) in self.acked.drain(..) {
                let _ = reply.send(answer);
            }
            while let Some(transmit) = self.session.poll_transmit() {
                moved = true;
                self.transmit(transmit).await;
            }
            if !moved {
                return;
            }
        }
    }

    async fn commit(&mut self, ops: Vec<Op>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let result = tokio::task::spawn_blocking(move || store.apply(ops)).await;
        let error = match result {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(e) => Error::Task(e),
        };
        tracing::warn!(error = %error, "store commit failed");
        self.outbox.push(Event::StoreFailed(error));
    }

    /// One session event: to a caller, to the store, to the user.
    fn route(&mut self, event: wa_session::Event, ops: &mut Vec<Op>) {
        use wa_session::Event as S;
        match event {
            S::Reply { id, result } => {
                if let Some((info, reply)) = self.sends.remove(&id) {
                    let answer = match result {
                        Ok(Reply::MessageSent { id }) => {
                            ops.push(Op::Message {
                                info,
                                unread: false,
                            });
                            Ok(id)
                        }
                        Ok(_) => Err(Error::UnexpectedReply("a sent message")),
                        Err(e) => Err(e.into()),
                    };
                    self.acked.push((reply, answer));
                } else if let Some(reply) = self.replies.remove(&id) {
                    let _ = reply.send(result.map_err(Error::from));
                }
                return;
            }
            S::Credentials(credentials) => {
                self.own_device = Some(device_jid(&credentials.wid, credentials.device));
                ops.push(Op::Credentials(Some(credentials)));
                return;
            }
            S::E2eState(changes) => {
                ops.push(Op::E2e(changes));
                return;
            }
            S::History { from, notice } => {
                self.history(&from, &notice);
                return;
            }
            S::Message { ref info, .. } => {
                let unread = info.key.from_me != Some(true);
                ops.push(Op::Message {
                    info: info.clone(),
                    unread,
                });
            }
            S::Ack {
                ref ids,
                level,
                to: Some(ref chat),
                ..
            } => {
                if let Some(status) = status_of(level) {
                    ops.push(Op::Status {
                        chat: chat.clone(),
                        ids: ids.clone(),
                        status,
                    });
                }
            }
            S::LoginFailed {
                forget_credentials: true,
                ..
            }
            | S::Disconnected {
                reason: DisconnectReason::LoggedOut,
                ..
            } => {
                ops.push(Op::Credentials(None));
                ops.push(Op::ClearE2e);
            }
            _ => {}
        }
        self.outbox.push(Event::Session(event));
    }

    /// A history notice: imported in the background when it is for this device.
    fn history(&mut self, from: &Jid, notice: &wa_proto::wars::HistoryNotice) {
        let Some(own) = self.own_device.clone() else {
            return;
        };
        let for_us = notice
            .device
            .as_deref()
            .and_then(|d| d.parse::<Jid>().ok())
            .is_some_and(|d| d == own);
        if !for_us {
            tracing::debug!(%from, "a history export for another device: ignored");
            return;
        }
        let events = self.outbox.sender();
        let own_user = user_of(&own);
        if user_of(from) != own_user {
            let _ = events.try_send(Event::HistoryFailed(Error::BadNotice(
                "sent by another account",
            )));
            return;
        }
        let Some(store) = self.store.clone() else {
            let _ = events.try_send(Event::HistoryFailed(Error::NoStore));
            return;
        };
        let (http, notice, max) = (self.http.clone(), notice.clone(), self.max_history_bytes);
        tokio::spawn(async move {
            let event = match history::fetch_and_import(&http, store, &notice, &own_user, max).await
            {
                Ok(imported) => Event::HistoryImported(imported),
                Err(e) => {
                    tracing::warn!(error = %e, "history import failed");
                    Event::HistoryFailed(e)
                }
            };
            let _ = events.send(event).await;
        });
    }

    /// Carries out one instruction of the session.
    async fn transmit(&mut self, transmit: Transmit) {
        match transmit {
            Transmit::Connect => match self.urls.connect(self.connect_timeout).await {
                Some(socket) => {
                    self.socket = Some(socket);
                    self.session.handle_connected(self.clock.now());
                }
                None => self.session.handle_closed(self.clock.now()),
            },
            Transmit::Send(message) => {
                let Some(socket) = self.socket.as_mut() else {
                    return;
                };
                let message = match message {
                    OutMessage::Text(text) => Message::text(text),
                    OutMessage::Binary(bytes) => Message::binary(bytes),
                };
                if let Err(e) = socket.send(message).await {
                    tracing::debug!(error = %e, "send failed");
                    self.socket = None;
                    self.session.handle_closed(self.clock.now());
                }
            }
            Transmit::Close => {
                if let Some(mut socket) = self.socket.take() {
                    let _ = socket.close(None).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logout_base_takes_scheme_and_host() {
        assert_eq!(
            logout_base("ws://127.0.0.1:80/ws").ok().as_deref(),
            Some("http://127.0.0.1:80")
        );
        assert_eq!(
            logout_base("wss://example.org/ws?x").ok().as_deref(),
            Some("https://example.org")
        );
        assert_eq!(logout_base("http://h").ok().as_deref(), Some("http://h"));
        assert!(matches!(logout_base("ftp://h"), Err(Error::BadUrl { .. })));
        assert!(matches!(logout_base("ws:///ws"), Err(Error::BadUrl { .. })));
        assert!(matches!(logout_base("h/ws"), Err(Error::BadUrl { .. })));
    }
}
