//! The client handle and the driver task behind it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wa_frame::{OutMessage, WsMessage};
use wa_session::{
    ChatEntry, CommandError, ContactEntry, DisconnectReason, Event, GroupOp, MediaConn, MediaKind,
    PresenceState, Reply, RequestId, Session, Time, Transmit,
};

use crate::Error;
use crate::media;
use crate::store::Store;

/// How to run a client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The server's WebSocket URL, e.g. `ws://127.0.0.1:8080/ws`.
    pub server_url: String,
    /// The session's configuration.
    pub session: wa_session::Config,
    /// Where to keep credentials and received messages; `None` keeps nothing.
    pub store: Option<PathBuf>,
    /// The session's random seed; `None` draws it from the operating system.
    pub seed: Option<[u8; 32]>,
    /// How long opening a socket may take.
    pub connect_timeout: Duration,
    /// Log in with these credentials instead of the stored ones (or a QR code).
    pub credentials: Option<wa_session::Credentials>,
}

impl ClientConfig {
    /// A configuration for `server_url` with defaults for the rest.
    pub fn new(server_url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            server_url: server_url.into(),
            session: wa_session::Config::default(),
            store: None,
            seed: None,
            connect_timeout: Duration::from_secs(10),
            credentials: None,
        }
    }
}

/// A running client: cheap to clone, each method a request to the driver task.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
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

/// The events of a client: everything the session emits except the replies, which go to the
/// calls that asked for them.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    /// The next event; `None` once the client has stopped.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

type Job = Box<dyn FnOnce(&mut Session, Time) -> Result<RequestId, CommandError> + Send>;

enum Command {
    Request(Job, oneshot::Sender<Result<Reply, Error>>),
    /// A request whose reply nobody waits for: only whether the session took it.
    Fire(Job, oneshot::Sender<Result<(), Error>>),
    Logout(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

impl Client {
    /// Starts a client on the current tokio runtime: it restores from the stored (or given)
    /// credentials, or links with a QR code ([`Event::Qr`]) when there are none.
    ///
    /// # Errors
    /// When the store cannot be opened, the OS gives no randomness or the HTTP client for media
    /// cannot be set up.
    pub fn start(config: ClientConfig) -> Result<(Client, Events), Error> {
        let http = crate::media::http_client()?;
        let store = match &config.store {
            Some(path) => Some(Arc::new(Store::open(path)?)),
            None => None,
        };
        let seed = match config.seed {
            Some(seed) => seed,
            None => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| Error::Random(e.to_string()))?;
                seed
            }
        };
        let clock = Clock::new();
        let mut session = Session::new(config.session.clone(), seed, clock.now());
        let credentials = match config.credentials.clone() {
            Some(c) => Some(c),
            None => match &store {
                Some(store) => store.credentials()?,
                None => None,
            },
        };
        match credentials {
            Some(credentials) => session.restore(clock.now(), credentials)?,
            None => session.link(clock.now())?,
        }
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let driver = Driver {
            session,
            clock,
            url: config.server_url.clone(),
            connect_timeout: config.connect_timeout,
            socket: None,
            replies: HashMap::new(),
            events: events_tx,
            store: store.clone(),
        };
        tokio::spawn(driver.run(commands_rx));
        Ok((
            Client {
                commands,
                store,
                http,
            },
            Events { rx: events_rx },
        ))
    }

    /// The local store, when the client has one.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_deref()
    }

    async fn request(
        &self,
        job: impl FnOnce(&mut Session, Time) -> Result<RequestId, CommandError> + Send + 'static,
    ) -> Result<Reply, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Request(Box::new(job), tx))
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Sends a text message; returns its id once the server stored it (ack 1).
    ///
    /// # Errors
    /// When not connected, or the server did not accept it in time.
    pub async fn send_text(&self, to: &str, text: &str) -> Result<String, Error> {
        let (to, text) = (to.to_owned(), text.to_owned());
        match self
            .request(move |s, now| s.send_text(now, &to, &text).map(|(id, _)| id))
            .await?
        {
            Reply::MessageSent { id } => Ok(id),
            other => Err(Error::UnexpectedReply(format!("{other:?}"))),
        }
    }

    /// Encrypts `data` (with `wa-media`), uploads it to the media host and sends the media
    /// message; returns the message id once the server stored it.
    ///
    /// # Errors
    /// When not connected, the upload fails, or the server did not accept the message.
    pub async fn send_media(
        &self,
        to: &str,
        kind: MediaKind,
        data: &[u8],
        mimetype: &str,
        caption: Option<&str>,
    ) -> Result<String, Error> {
        let conn = self.media_conn().await?;
        let uploaded = media::upload(&self.http, &conn, kind, data, mimetype, caption).await?;
        let to = to.to_owned();
        match self
            .request(move |s, now| s.send_media(now, &to, &uploaded).map(|(id, _)| id))
            .await?
        {
            Reply::MessageSent { id } => Ok(id),
            other => Err(Error::UnexpectedReply(format!("{other:?}"))),
        }
    }

    /// Downloads and decrypts the media of a message, checking its MAC and hashes.
    ///
    /// # Errors
    /// When the message has no media, the download fails or is stale, or a check fails.
    pub async fn download_media(&self, info: &wa_proto::WebMessageInfo) -> Result<Vec<u8>, Error> {
        media::download(&self.http, info).await
    }

    /// Where and how to upload media.
    ///
    /// # Errors
    /// When not connected or the server did not answer.
    pub async fn media_conn(&self) -> Result<MediaConn, Error> {
        match self.request(|s, now| s.media_conn(now)).await? {
            Reply::MediaConn(conn) => Ok(conn),
            other => Err(Error::UnexpectedReply(format!("{other:?}"))),
        }
    }

    /// Marks a chat read up to message `id`.
    ///
    /// # Errors
    /// When not connected.
    pub async fn mark_read(&self, chat: &str, id: &str) -> Result<(), Error> {
        let (chat, id) = (chat.to_owned(), id.to_owned());
        self.fire(move |s, now| s.mark_read(now, &chat, &id, false))
            .await
    }

    /// Sets the own presence (for everyone, or a typing state in one chat).
    ///
    /// # Errors
    /// When not connected.
    pub async fn set_presence(&self, state: PresenceState, to: Option<&str>) -> Result<(), Error> {
        let to = to.map(str::to_owned);
        self.fire(move |s, now| s.set_presence(now, state, to.as_deref()))
            .await
    }

    /// Subscribes to a contact's presence.
    ///
    /// # Errors
    /// When not connected or the server refused.
    pub async fn subscribe_presence(&self, jid: &str) -> Result<(), Error> {
        let jid = jid.to_owned();
        self.request(move |s, now| s.subscribe_presence(now, &jid))
            .await
            .map(|_| ())
    }

    /// The chat list.
    ///
    /// # Errors
    /// When not connected or the server did not answer.
    pub async fn chats(&self) -> Result<Vec<ChatEntry>, Error> {
        match self.request(|s, now| s.query_chats(now)).await? {
            Reply::Chats(chats) => Ok(chats),
            other => Err(Error::UnexpectedReply(format!("{other:?}"))),
        }
    }

    /// The contact list.
    ///
    /// # Errors
    /// When not connected or the server did not answer.
    pub async fn contacts(&self) -> Result<Vec<ContactEntry>, Error> {
        match self.request(|s, now| s.query_contacts(now)).await? {
            Reply::Contacts(contacts) => Ok(contacts),
            other => Err(Error::UnexpectedReply(format!("{other:?}"))),
        }
    }

    /// Up to `count` messages of a chat, before `before` (`(id, from_me)`) or the latest.
    ///
    /// # Errors
    /// When not connected or the server did not answer.
    pub async fn messages(
        &self,
        chat: &str,
        count: u32,
        before: Option<(String, bool)>,
    ) -> Result<Vec<Box<wa_proto::WebMessageInfo>>, Error> {
        let chat = chat.to_owned();
        let reply = self
            .request(move |s, now| {
                s.query_messages(
                    now,
                    &chat,
                    count,
                    before.as_ref().map(|(id, own)| (id.as_str(), *own)),
                )
            })
            .await?;
        match reply {
            Reply::Messages(messages) => Ok(messages),
            other => Err(Error::UnexpectedReply(format!("{other:?}"))),
        }
    }

    /// Creates a group; returns the server's answer (with the group JID as `gid`).
    ///
    /// # Errors
    /// When not connected or the server refused.
    pub async fn group_create(
        &self,
        subject: &str,
        participants: &[&str],
    ) -> Result<serde_json::Value, Error> {
        let subject = subject.to_owned();
        let participants: Vec<String> = participants.iter().map(|p| (*p).to_owned()).collect();
        let reply = self
            .request(move |s, now| {
                let p: Vec<&str> = participants.iter().map(String::as_str).collect();
                s.group_create(now, &subject, &p)
            })
            .await?;
        json_reply(reply)
    }

    /// Adds, removes, promotes or demotes group participants.
    ///
    /// # Errors
    /// When not connected or the server refused.
    pub async fn group_participants(
        &self,
        group: &str,
        op: GroupOp,
        participants: &[&str],
    ) -> Result<serde_json::Value, Error> {
        let group = group.to_owned();
        let participants: Vec<String> = participants.iter().map(|p| (*p).to_owned()).collect();
        let reply = self
            .request(move |s, now| {
                let p: Vec<&str> = participants.iter().map(String::as_str).collect();
                s.group_participants(now, &group, op, &p)
            })
            .await?;
        json_reply(reply)
    }

    /// Changes a group's subject.
    ///
    /// # Errors
    /// When not connected or the server refused.
    pub async fn group_subject(
        &self,
        group: &str,
        subject: &str,
    ) -> Result<serde_json::Value, Error> {
        let (group, subject) = (group.to_owned(), subject.to_owned());
        json_reply(
            self.request(move |s, now| s.group_subject(now, &group, &subject))
                .await?,
        )
    }

    /// Leaves a group.
    ///
    /// # Errors
    /// When not connected or the server refused.
    pub async fn group_leave(&self, group: &str) -> Result<serde_json::Value, Error> {
        let group = group.to_owned();
        json_reply(
            self.request(move |s, now| s.group_leave(now, &group))
                .await?,
        )
    }

    /// Logs out and stops: with a connection, the server is told (it forgets this link); the
    /// store forgets the credentials either way. (Logging out with no connection at all, by
    /// the HTTP form of PROTOCOL.md §2.6, is not done: the link then stays on the server until
    /// the phone removes it.)
    ///
    /// # Errors
    /// When the client had already stopped.
    pub async fn logout(self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Logout(tx))
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Stops the client, closing its socket (the link stays: the next start restores it).
    /// The store file is released once this returns and every clone of this `Client` is
    /// dropped.
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// A request whose reply needs no waiting (presence, read receipts): sent, not awaited,
    /// but a session that refuses it (not connected, too many requests waiting) is an error.
    async fn fire(
        &self,
        job: impl FnOnce(&mut Session, Time) -> Result<RequestId, CommandError> + Send + 'static,
    ) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Fire(Box::new(job), tx))
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }
}

fn json_reply(reply: Reply) -> Result<serde_json::Value, Error> {
    match reply {
        Reply::Json(value) => Ok(value),
        Reply::Done => Ok(serde_json::Value::Null),
        other => Err(Error::UnexpectedReply(format!("{other:?}"))),
    }
}

/// The session's time: the Unix time at start plus a monotonic clock's elapsed time.
struct Clock {
    unix_at_start: u64,
    start: Instant,
}

impl Clock {
    fn new() -> Clock {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Clock {
            unix_at_start: unix,
            start: Instant::now(),
        }
    }

    fn now(&self) -> Time {
        Time::from_millis(self.unix_at_start + self.start.elapsed().as_millis() as u64)
    }

    fn instant(&self, t: Time) -> tokio::time::Instant {
        let offset = Duration::from_millis(t.as_millis().saturating_sub(self.unix_at_start));
        tokio::time::Instant::from_std(self.start + offset)
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The one task of a client: a `select!` over the socket, the commands and one timer.
struct Driver {
    session: Session,
    clock: Clock,
    url: String,
    connect_timeout: Duration,
    socket: Option<Socket>,
    replies: HashMap<RequestId, oneshot::Sender<Result<Reply, Error>>>,
    events: mpsc::UnboundedSender<Event>,
    store: Option<Arc<Store>>,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut stopping: Option<oneshot::Sender<()>> = None;
        loop {
            self.transmit().await;
            self.dispatch_events();
            if let Some(done) = stopping.take() {
                if let Some(mut socket) = self.socket.take() {
                    let _ = socket.close(None).await;
                }
                // Release the database before saying we stopped, so that the caller can open
                // it again at once.
                self.store = None;
                let _ = done.send(());
                return;
            }
            let deadline = self.session.poll_timeout().map(|t| self.clock.instant(t));
            tokio::select! {
                message = next_message(&mut self.socket) => {
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
                        Some(Command::Fire(job, reply)) => {
                            let _ = reply.send(job(&mut self.session, now).map(|_| ()).map_err(Error::from));
                        }
                        Some(Command::Request(job, reply)) => match job(&mut self.session, now) {
                            Ok(id) => {
                                self.replies.insert(id, reply);
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e.into()));
                            }
                        },
                        Some(Command::Logout(done)) => {
                            self.session.logout(now);
                            stopping = Some(done);
                        }
                        Some(Command::Shutdown(done)) => stopping = Some(done),
                        None => {
                            let (done, _) = oneshot::channel();
                            stopping = Some(done);
                        }
                    }
                }
                () = sleep_until(deadline) => self.session.handle_timeout(self.clock.now()),
            }
        }
    }

    /// Carries out every instruction of the session.
    async fn transmit(&mut self) {
        while let Some(transmit) = self.session.poll_transmit() {
            match transmit {
                Transmit::Connect => {
                    let request = match websocket_request(&self.url) {
                        Ok(request) => request,
                        Err(e) => {
                            tracing::warn!("bad server URL {}: {e}", self.url);
                            self.session.handle_closed(self.clock.now());
                            continue;
                        }
                    };
                    let connect = tokio_tungstenite::connect_async(request);
                    match tokio::time::timeout(self.connect_timeout, connect).await {
                        Ok(Ok((socket, _))) => {
                            self.socket = Some(socket);
                            self.session.handle_connected(self.clock.now());
                        }
                        Ok(Err(e)) => {
                            tracing::debug!("connecting to {} failed: {e}", self.url);
                            self.session.handle_closed(self.clock.now());
                        }
                        Err(_) => {
                            tracing::debug!("connecting to {} timed out", self.url);
                            self.session.handle_closed(self.clock.now());
                        }
                    }
                }
                Transmit::Send(message) => {
                    let Some(socket) = self.socket.as_mut() else {
                        continue;
                    };
                    let message = match message {
                        OutMessage::Text(text) => Message::text(text),
                        OutMessage::Binary(bytes) => Message::binary(bytes),
                    };
                    if let Err(e) = socket.send(message).await {
                        tracing::debug!("send failed: {e}");
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

    /// Replies to their callers; credentials and messages to the store; the rest to the user.
    fn dispatch_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match &event {
                Event::Reply { id, result } => {
                    if let Some(reply) = self.replies.remove(id) {
                        let _ = reply.send(result.clone().map_err(Error::from));
                    }
                    continue;
                }
                Event::Credentials(credentials) => {
                    self.store(|s| s.set_credentials(Some(credentials)))
                }
                Event::Message { info, .. } => self.store(|s| s.put_message(info)),
                Event::LoginFailed {
                    forget_credentials: true,
                    ..
                }
                | Event::Disconnected {
                    reason: DisconnectReason::LoggedOut,
                    ..
                } => {
                    self.store(|s| s.set_credentials(None));
                }
                _ => {}
            }
            let _ = self.events.send(event);
        }
    }

    fn store(&self, write: impl FnOnce(&Store) -> Result<(), Error>) {
        if let Some(store) = &self.store
            && let Err(e) = write(store)
        {
            tracing::warn!("store: {e}");
        }
    }
}

/// The WebSocket request, with the `Origin` the server requires (PROTOCOL.md §1).
fn websocket_request(
    url: &str,
) -> Result<
    tokio_tungstenite::tungstenite::handshake::client::Request,
    tokio_tungstenite::tungstenite::Error,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "Origin",
        tokio_tungstenite::tungstenite::http::HeaderValue::from_static("https://web.whatsapp.com"),
    );
    Ok(request)
}

async fn next_message(
    socket: &mut Option<Socket>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match socket {
        Some(socket) => socket.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
