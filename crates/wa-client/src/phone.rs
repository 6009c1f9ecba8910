//! The phone: the tokio driver of [`wa_phone::PhoneSession`] on the server's `/phone` socket,
//! with its own store (end-to-end state, the pickle key, and its history: every message it
//! receives or sends, its chats, its contacts), and the history export a newly linked web
//! client gets.
//!
//! The task structure is the web client's: one task, a `select!` over the socket (text
//! frames), the commands and one timer; store commits and CPU work (export, encryption) on the
//! blocking pool; a bounded event stream with the same slow-consumer policy.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use wa_history::Format;
use wa_media::MediaType;
use wa_phone::{Answer, CommandId, PhoneSession, PhoneSessionEvent, PhoneTransmit, Received};
use wa_proto::wars::HistoryNotice;
use wa_proto::web_message_info::Status;
use wa_vault::KeySource;
use wa_wire::ids::user_of;
use wa_wire::json::GroupMetadata;
use wa_wire::legacy::{ActionPush, Add, ChatEntry, ContactEntry, Direction};
use wa_wire::msg::{GroupAction, GroupOp};
use wa_wire::phone::{Linked, LinkedDevice, MediaAuth, Ready};
use wa_wire::web::{Query, ServerNode};
use wa_wire::{Chat, Jid, Time};

use crate::error::{Error, random32};
use crate::history;
use crate::media::{self, Target, Uploaded};
use crate::net::{self, Clock, DEFAULT_EVENTS_CAPACITY, EventStream, Outbox, Socket};
use crate::store::{Op, Store, StoredChat, StoredContact, default_key_file};

/// How to run a phone.
#[derive(Debug)]
#[non_exhaustive]
pub struct PhoneConfig {
    /// The server's phone socket URL, e.g. `ws://127.0.0.1:8080/phone`.
    pub server_url: String,
    /// Other nodes of the same cluster, tried in turn when the current one does not answer
    /// (every connection attempt tries each URL once, from the last one that answered).
    /// Default none.
    pub fallback_urls: Vec<String>,
    /// The phone session's configuration (number, name, timers).
    pub phone: wa_phone::PhoneConfig,
    /// The phone's store.
    pub store: PathBuf,
    /// The store's key; `None` is the key file `<store>.key`.
    pub key: Option<KeySource>,
    /// The platform, which decides the format of the history export. Default Android.
    pub platform: Format,
    /// The last messages of each chat a history export holds. Default 1000.
    pub history_messages: usize,
    /// Export the history to every web client that finishes linking. Default `true`.
    pub export_history: bool,
    /// The session's random seed; `None` draws it from the OS.
    pub seed: Option<[u8; 32]>,
    /// How long opening a socket may take. Default 10 s.
    pub connect_timeout: Duration,
    /// Events the channel holds before the driver waits for the consumer. Default 1024.
    pub events_capacity: usize,
}

impl PhoneConfig {
    /// A phone for `number` named `name`, on `server_url`, keeping its store at `store`.
    pub fn new(
        server_url: impl Into<String>,
        number: &str,
        name: &str,
        store: impl Into<PathBuf>,
    ) -> PhoneConfig {
        PhoneConfig {
            server_url: server_url.into(),
            fallback_urls: Vec::new(),
            phone: wa_phone::PhoneConfig::new(number, name),
            store: store.into(),
            key: None,
            platform: Format::Android,
            history_messages: 1000,
            export_history: true,
            seed: None,
            connect_timeout: Duration::from_secs(10),
            events_capacity: DEFAULT_EVENTS_CAPACITY,
        }
    }
}

/// What a phone tells its user.
#[derive(Debug)]
#[non_exhaustive]
pub enum PhoneEvent {
    /// What the phone session emits, except answers (they answer the calls) and end-to-end
    /// state (stored).
    Session(PhoneSessionEvent),
    /// The history export went to a newly linked device.
    HistorySent {
        /// The device.
        device: Jid,
        /// Chats in the export.
        chats: usize,
        /// Messages in the export.
        messages: usize,
    },
    /// The history export for a newly linked device failed.
    HistoryFailed {
        /// The device.
        device: Jid,
        /// Why.
        error: Error,
    },
    /// A store commit failed.
    StoreFailed(Error),
}

/// The events of a phone.
pub type PhoneEvents = EventStream<PhoneEvent>;

type Job =
    Box<dyn FnOnce(&mut PhoneSession, Time) -> Result<CommandId, wa_phone::CommandError> + Send>;

enum Command {
    Request(Job, oneshot::Sender<Result<Answer, Error>>),
    Send {
        to: Jid,
        message: Box<wa_proto::Message>,
        reply: oneshot::Sender<Result<String, Error>>,
    },
    Verify(String, oneshot::Sender<Result<Ready, Error>>),
    WaitReady(oneshot::Sender<Result<Ready, Error>>),
    SecurityCode(Jid, oneshot::Sender<Option<wa_session::SecurityCode>>),
    Shutdown(oneshot::Sender<()>),
}

/// A running phone: cheap to clone, each method a request to the driver task.
#[derive(Clone)]
pub struct Phone {
    commands: mpsc::Sender<Command>,
    store: Arc<Store>,
    http: reqwest::Client,
    user: Jid,
    platform: Format,
    history_messages: usize,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Phone {
    /// Registers the number with fresh identity keys: the server sends a verification code
    /// (out of band); call [`Phone::verify`] with it. The store keeps the phone's history
    /// from any earlier registration; its end-to-end state starts anew.
    ///
    /// # Errors
    /// When the store does not open, the number is not a number, or the OS gives no
    /// randomness.
    pub async fn register(config: PhoneConfig) -> Result<(Phone, PhoneEvents), Error> {
        Phone::start(config, true).await
    }

    /// Logs in as the phone registered in the store (its end-to-end state restored);
    /// [`Phone::ready`] waits until it is in.
    ///
    /// # Errors
    /// [`Error::NotRegistered`] for a store without a phone; when the store does not open or
    /// its state does not restore.
    pub async fn login(config: PhoneConfig) -> Result<(Phone, PhoneEvents), Error> {
        Phone::start(config, false).await
    }

    async fn start(config: PhoneConfig, register: bool) -> Result<(Phone, PhoneEvents), Error> {
        let key = match config.key {
            Some(key) => key,
            None => KeySource::KeyFile(default_key_file(&config.store)),
        };
        let path = config.store.clone();
        let store = Arc::new(tokio::task::spawn_blocking(move || Store::open(&path, key)).await??);
        let seed = match config.seed {
            Some(seed) => seed,
            None => random32()?,
        };
        let loaded = Arc::clone(&store);
        let (pickle_key, parts, mirrors) = tokio::task::spawn_blocking(move || {
            let key = loaded.pickle_key()?;
            if register {
                // A new registration is a new identity: the server unlinks every device,
                // mirror clients included.
                loaded.apply(vec![Op::ClearE2e, Op::Mirrors(Vec::new())])?;
                return Ok::<_, Error>((key, Vec::new(), Vec::new()));
            }
            Ok((key, loaded.e2e_parts()?, loaded.mirrors()?))
        })
        .await??;
        let clock = Clock::new();
        let session = if register {
            let mut session = PhoneSession::new(config.phone, seed)?.with_pickle_key(pickle_key);
            session.register(clock.now())?;
            session
        } else {
            if parts.is_empty() {
                return Err(Error::NotRegistered);
            }
            let mut session = PhoneSession::restore(config.phone, seed, parts, pickle_key)?;
            session.restore_mirrors(mirrors);
            session.login(clock.now())?;
            session
        };
        let user = session.user().clone();
        let (commands, commands_rx) = mpsc::channel(64);
        let (outbox, events) = EventStream::new(config.events_capacity);
        let http = media::http_client();
        let phone = Phone {
            commands,
            store: Arc::clone(&store),
            http,
            user,
            platform: config.platform,
            history_messages: config.history_messages,
        };
        let driver = Driver {
            session,
            clock,
            urls: net::Urls::new(config.server_url, config.fallback_urls),
            connect_timeout: config.connect_timeout,
            socket: None,
            answers: HashMap::new(),
            sends: HashMap::new(),
            acked: Vec::new(),
            ready: None,
            ready_waiters: Vec::new(),
            outbox,
            store,
            export: config.export_history.then(|| phone.clone_weak()),
            exports_due: Vec::new(),
            mirror_work: Vec::new(),
        };
        tokio::spawn(driver.run(commands_rx));
        Ok((phone, events))
    }

    /// A handle for the driver's own background work (the history export).
    fn clone_weak(&self) -> Exporter {
        Exporter {
            commands: self.commands.downgrade(),
            store: Arc::clone(&self.store),
            http: self.http.clone(),
            user: self.user.clone(),
            platform: self.platform,
            history_messages: self.history_messages,
        }
    }

    /// The account's user JID.
    pub fn user(&self) -> &Jid {
        &self.user
    }

    /// The phone's store (for direct reads; they block briefly).
    pub fn store(&self) -> &Store {
        &self.store
    }

    async fn command(&self, command: Command) -> Result<(), Error> {
        self.commands
            .send(command)
            .await
            .map_err(|_| Error::Stopped)
    }

    async fn request(
        &self,
        job: impl FnOnce(&mut PhoneSession, Time) -> Result<CommandId, wa_phone::CommandError>
        + Send
        + 'static,
    ) -> Result<Answer, Error> {
        request(&self.commands, Box::new(job)).await
    }

    /// Proves the registration with the code the server sent; returns once logged in.
    ///
    /// # Errors
    /// When no registration waits for a code, or the server refused it (a wrong code may be
    /// tried again).
    pub async fn verify(&self, code: &str) -> Result<Ready, Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Verify(code.to_owned(), tx)).await?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Waits until the phone is logged in.
    ///
    /// # Errors
    /// When login failed for good.
    pub async fn ready(&self) -> Result<Ready, Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::WaitReady(tx)).await?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Sends a text message; returns its id once the server stored it (then it is in the
    /// phone's history).
    ///
    /// # Errors
    /// When not logged in or the server did not take it.
    pub async fn send_text(&self, to: &Jid, text: &str) -> Result<String, Error> {
        let message = wa_proto::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        };
        self.send_message(to, message).await
    }

    /// Sends any message; returns its id once the server stored it.
    ///
    /// # Errors
    /// As [`Phone::send_text`].
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

    /// Marks message `id` of `chat` read (the sender sees blue ticks); in a group, the
    /// message's sender is looked up in the phone's store.
    ///
    /// # Errors
    /// When not logged in, or the server refused.
    pub async fn read(&self, chat: &Jid, id: &str) -> Result<(), Error> {
        let participant = if chat.is_group() {
            let (store, chat, id) = (Arc::clone(&self.store), chat.clone(), id.to_owned());
            tokio::task::spawn_blocking(move || store.message(&chat, &id))
                .await??
                .and_then(|m| m.key.participant)
                .and_then(|p| p.parse::<Jid>().ok())
        } else {
            None
        };
        let (chat, id) = (chat.clone(), id.to_owned());
        self.request(move |s, now| s.mark_read(now, &chat, &id, participant.as_ref()))
            .await
            .map(|_| ())
    }

    /// Approves the QR code a web client shows; returns once the client finished linking.
    ///
    /// # Errors
    /// When not logged in, the text is not a QR code, or the server refused.
    pub async fn link(&self, qr: &str) -> Result<Linked, Error> {
        let qr = qr.to_owned();
        match self.request(move |s, now| s.link(now, &qr)).await? {
            Answer::Linked(linked) => Ok(linked),
            _ => Err(Error::UnexpectedReply("a linked device")),
        }
    }

    /// The linked web clients, oldest first.
    ///
    /// # Errors
    /// When not logged in or the server refused.
    pub async fn linked(&self) -> Result<Vec<LinkedDevice>, Error> {
        match self.request(|s, now| s.linked(now)).await? {
            Answer::LinkedDevices(devices) => Ok(devices.devices),
            _ => Err(Error::UnexpectedReply("linked devices")),
        }
    }

    /// Unlinks a web client.
    ///
    /// # Errors
    /// When not logged in or the server refused.
    pub async fn unlink(&self, client_id: &str) -> Result<(), Error> {
        let client_id = client_id.to_owned();
        self.request(move |s, now| s.unlink(now, &client_id))
            .await
            .map(|_| ())
    }

    /// Creates a group; returns its JID.
    ///
    /// # Errors
    /// When not logged in or the server refused.
    pub async fn group_create(&self, subject: &str, participants: &[Jid]) -> Result<Jid, Error> {
        let action = GroupAction {
            op: GroupOp::Create,
            group: None,
            subject: Some(subject.to_owned()),
            participants: participants.to_vec(),
        };
        match self.request(move |s, now| s.group(now, action)).await? {
            Answer::GroupCreated(jid) => Ok(jid),
            _ => Err(Error::UnexpectedReply("a group id")),
        }
    }

    /// Any other group operation (add, remove, promote, demote, subject, leave).
    ///
    /// # Errors
    /// When not logged in or the server refused.
    pub async fn group(
        &self,
        group: &Jid,
        op: GroupOp,
        subject: Option<&str>,
        participants: &[Jid],
    ) -> Result<(), Error> {
        let action = GroupAction {
            op,
            group: Some(group.clone()),
            subject: subject.map(str::to_owned),
            participants: participants.to_vec(),
        };
        self.request(move |s, now| s.group(now, action))
            .await
            .map(|_| ())
    }

    /// A group's subject and members.
    ///
    /// # Errors
    /// When not logged in or the server refused.
    pub async fn group_metadata(&self, group: &Jid) -> Result<GroupMetadata, Error> {
        let group = group.clone();
        match self
            .request(move |s, now| s.group_metadata(now, &group))
            .await?
        {
            Answer::GroupMetadata(metadata) => Ok(metadata),
            _ => Err(Error::UnexpectedReply("group metadata")),
        }
    }

    /// Upload auth for the media service.
    ///
    /// # Errors
    /// When not logged in or the server refused.
    pub async fn media_auth(&self) -> Result<MediaAuth, Error> {
        match self.request(|s, now| s.media_conn(now)).await? {
            Answer::MediaAuth(auth) => Ok(auth),
            _ => Err(Error::UnexpectedReply("media auth")),
        }
    }

    /// Uploads a body that is already encrypted (as media of type `ty`).
    ///
    /// # Errors
    /// When the auth cannot be had, or the upload fails.
    pub async fn upload(&self, ty: MediaType, body: Vec<u8>) -> Result<Uploaded, Error> {
        let auth = self.media_auth().await?;
        let target = Target::new(&auth.hosts, &auth.auth, auth.max_bytes)?;
        media::upload_body(&self.http, &target, ty, body).await
    }

    /// Builds the history export for `device` from the store (chats, contacts, the last
    /// `history_messages` of each chat), in the platform's format, encrypts and uploads it:
    /// the notice to send with [`Phone::send_history`].
    ///
    /// # Errors
    /// When the store cannot be read, the history breaks the format's rules, or the upload
    /// fails.
    pub async fn export_history(&self, device: &Jid) -> Result<HistoryNotice, Error> {
        self.clone_weak().export(device).await
    }

    /// Tells the account's devices where a history export is (the device it names imports
    /// it); returns the message id.
    ///
    /// # Errors
    /// When not logged in or the server did not take it.
    pub async fn send_history(&self, notice: HistoryNotice) -> Result<String, Error> {
        match self
            .request(move |s, now| s.send_history(now, notice).map(|(command, _)| command))
            .await?
        {
            Answer::Sent { id } => Ok(id),
            _ => Err(Error::UnexpectedReply("a sent message")),
        }
    }

    /// The chats of the phone's store, the most recently active first.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn chats(&self) -> Result<Vec<StoredChat>, Error> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.chats()).await?
    }

    /// The contacts of the phone's store.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn contacts(&self) -> Result<Vec<StoredContact>, Error> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.contacts()).await?
    }

    /// The last `limit` messages of `chat` in the phone's store, oldest first.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn history(
        &self,
        chat: &Jid,
        limit: usize,
    ) -> Result<Vec<wa_proto::WebMessageInfo>, Error> {
        let (store, chat) = (Arc::clone(&self.store), chat.clone());
        tokio::task::spawn_blocking(move || store.history(&chat, limit)).await?
    }

    /// The security code with `user` (PROTOCOL.md "Security codes"), once their identity is
    /// known (after a message in either direction); `None` before.
    ///
    /// # Errors
    /// When the phone has stopped.
    pub async fn security_code(
        &self,
        user: &Jid,
    ) -> Result<Option<wa_session::SecurityCode>, Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::SecurityCode(user_of(user), tx))
            .await?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Stops the phone, closing its socket. The store is released once this returns and
    /// every clone of this `Phone` is dropped.
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.command(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn request(commands: &mpsc::Sender<Command>, job: Job) -> Result<Answer, Error> {
    let (tx, rx) = oneshot::channel();
    commands
        .send(Command::Request(job, tx))
        .await
        .map_err(|_| Error::Stopped)?;
    rx.await.map_err(|_| Error::Stopped)?
}

/// What the driver's background export needs: a weak command handle (the export must not
/// keep the driver alive), the store and the HTTP client.
#[derive(Clone)]
struct Exporter {
    commands: mpsc::WeakSender<Command>,
    store: Arc<Store>,
    http: reqwest::Client,
    user: Jid,
    platform: Format,
    history_messages: usize,
}

impl Exporter {
    async fn request(&self, job: Job) -> Result<Answer, Error> {
        let commands = self.commands.upgrade().ok_or(Error::Stopped)?;
        request(&commands, job).await
    }

    async fn export(&self, device: &Jid) -> Result<HistoryNotice, Error> {
        let (store, owner, per_chat, format) = (
            Arc::clone(&self.store),
            self.user.clone(),
            self.history_messages,
            self.platform,
        );
        let key = random32()?;
        let (body, mut notice) = tokio::task::spawn_blocking(move || {
            let history = history::build(&store, &owner, per_chat)?;
            history::seal(&history, format, key)
        })
        .await??;
        let auth = match self.request(Box::new(|s, now| s.media_conn(now))).await? {
            Answer::MediaAuth(auth) => auth,
            _ => return Err(Error::UnexpectedReply("media auth")),
        };
        let target = Target::new(&auth.hosts, &auth.auth, auth.max_bytes)?;
        let uploaded = media::upload_body(&self.http, &target, MediaType::History, body).await?;
        notice.url = Some(uploaded.url);
        notice.direct_path = uploaded.direct_path;
        notice.device = Some(device.to_wire_string());
        Ok(notice)
    }

    /// Exports the history to a newly linked device and sends the notice.
    async fn export_to(self, device: Jid, events: mpsc::Sender<PhoneEvent>) {
        let result = async {
            let notice = self.export(&device).await?;
            let counts = (
                notice.chats.unwrap_or(0) as usize,
                notice.messages.unwrap_or(0) as usize,
            );
            match self
                .request(Box::new(move |s, now| {
                    s.send_history(now, notice).map(|(c, _)| c)
                }))
                .await?
            {
                Answer::Sent { .. } => Ok(counts),
                _ => Err(Error::UnexpectedReply("a sent message")),
            }
        }
        .await;
        let event = match result {
            Ok((chats, messages)) => PhoneEvent::HistorySent {
                device,
                chats,
                messages,
            },
            Err(error) => {
                tracing::warn!(%device, error = %error, "history export failed");
                PhoneEvent::HistoryFailed { device, error }
            }
        };
        let _ = events.send(event).await;
    }
}

/// A message sent and not yet acked: its stored form and who waits for its id.
type SentMessage = (
    Box<wa_proto::WebMessageInfo>,
    oneshot::Sender<Result<String, Error>>,
);

/// A sent message the server acked: who waits for its id, and the answer.
type AckedSend = (
    oneshot::Sender<Result<String, Error>>,
    Result<String, Error>,
);

/// The stored form of a message the phone received.
fn received_message(received: &Received) -> Option<wa_proto::WebMessageInfo> {
    let message = received.envelope.message.clone()?;
    let group = Chat::from_jid(&received.chat).is_ok_and(|c| c.is_group());
    let sender = (group && !received.from_me).then(|| user_of(&received.from).to_wire_string());
    Some(wa_proto::WebMessageInfo {
        key: wa_proto::MessageKey {
            remote_jid: Some(received.chat.to_wire_string()),
            from_me: Some(received.from_me),
            id: Some(received.id.clone()),
            participant: sender.clone(),
        },
        message: Some(message),
        message_timestamp: Some(received.t),
        participant: sender,
        push_name: received.envelope.push_name.clone(),
        status: Some(if received.from_me {
            Status::ServerAck
        } else {
            Status::DeliveryAck
        } as i32),
        ..Default::default()
    })
}

struct Driver {
    session: PhoneSession,
    clock: Clock,
    urls: net::Urls,
    connect_timeout: Duration,
    socket: Option<Socket>,
    answers: HashMap<CommandId, oneshot::Sender<Result<Answer, Error>>>,
    sends: HashMap<CommandId, SentMessage>,
    /// Sent messages the server acked, answered once their store commit is done.
    acked: Vec<AckedSend>,
    ready: Option<Ready>,
    ready_waiters: Vec<oneshot::Sender<Result<Ready, Error>>>,
    outbox: Outbox<PhoneEvent>,
    store: Arc<Store>,
    export: Option<Exporter>,
    /// Newly linked devices whose history export starts once the events handled before their
    /// link are in the store (a message that came in the same read as the link is in it).
    exports_due: Vec<Jid>,
    /// Mirror clients waiting for what the store knows: lists after they log in, queries.
    mirror_work: Vec<MirrorWork>,
}

/// What a mirror client waits for from the phone's store.
#[derive(Debug)]
enum MirrorWork {
    /// It logged in: its chat list, contacts and the latest messages.
    Online(Jid),
    /// It asked (chats, contacts or a chat's messages) under `tag`.
    Query(Jid, String, Query),
}

/// Messages a mirror client gets at login: the latest of each chat, at most.
const MIRROR_LAST_PER_CHAT: usize = 20;
/// Chats whose latest messages a mirror client gets at login, most recent first.
const MIRROR_LAST_CHATS: usize = 50;
/// Messages one mirror query returns at most, whatever it asks.
const MIRROR_QUERY_MAX: usize = 300;

/// Builds what a mirror client waits for from the store (on the blocking pool): the nodes to
/// push, or to answer under a tag.
fn mirror_nodes(store: &Store, work: &MirrorWork) -> Result<Vec<ServerNode>, Error> {
    let chats = |store: &Store| -> Result<Vec<ChatEntry>, Error> {
        Ok(store
            .chats()?
            .into_iter()
            .map(|c| ChatEntry {
                jid: c.jid,
                name: c.name,
                count: Some(c.unread),
                t: Some(c.last_activity),
                extra: Vec::new(),
            })
            .collect())
    };
    let contacts = |store: &Store| -> Result<Vec<ContactEntry>, Error> {
        Ok(store
            .contacts()?
            .into_iter()
            .map(|c| ContactEntry {
                jid: c.jid,
                name: c.name,
                notify: c.notify,
                extra: Vec::new(),
            })
            .collect())
    };
    match work {
        MirrorWork::Online(_) => {
            let list = chats(store)?;
            let mut last = Vec::new();
            for chat in list.iter().take(MIRROR_LAST_CHATS) {
                last.extend(store.history(&chat.jid, MIRROR_LAST_PER_CHAT)?);
            }
            Ok(vec![
                ServerNode::Chats(list),
                ServerNode::Contacts(contacts(store)?),
                ServerNode::Action(ActionPush::messages(Add::Last, last)),
            ])
        }
        MirrorWork::Query(_, _, Query::Chats) => Ok(vec![ServerNode::Chats(chats(store)?)]),
        MirrorWork::Query(_, _, Query::Contacts) => {
            Ok(vec![ServerNode::Contacts(contacts(store)?)])
        }
        MirrorWork::Query(_, _, Query::Messages(query)) => {
            let limit =
                usize::try_from(query.count).map_or(MIRROR_QUERY_MAX, |n| n.min(MIRROR_QUERY_MAX));
            let messages = store.history_from(
                query.chat.jid(),
                query.index.as_ref().map(|(id, _)| id.as_str()),
                query.direction == Direction::Before,
                limit,
            )?;
            Ok(vec![ServerNode::Action(ActionPush::messages(
                Add::Before,
                messages,
            ))])
        }
        // The session only asks the store for the three above.
        MirrorWork::Query(..) => Ok(Vec::new()),
    }
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            self.pump().await;
            let blocked = self.outbox.flush();
            let deadline = self.session.poll_timeout().map(|t| self.clock.instant(t));
            tokio::select! {
                () = self.outbox.send_one(), if blocked => {}
                message = net::next_message(&mut self.socket), if !blocked => {
                    let now = self.clock.now();
                    match message {
                        Some(Ok(Message::Text(text))) => self.session.handle_message(now, text.as_str()),
                        Some(Ok(Message::Close(_)) | Err(_)) | None => {
                            self.socket = None;
                            self.session.handle_closed(now);
                        }
                        Some(Ok(_)) => {}
                    }
                }
                command = commands.recv() => {
                    let now = self.clock.now();
                    let done = match command {
                        Some(Command::Shutdown(done)) => Some(done),
                        None => Some(oneshot::channel().0),
                        Some(command) => {
                            self.command(now, command);
                            None
                        }
                    };
                    if let Some(done) = done {
                        self.session.close(now);
                        self.pump().await;
                        if let Some(mut socket) = self.socket.take() {
                            let _ = socket.close(None).await;
                        }
                        self.export = None;
                        self.outbox.drain_in_background();
                        drop(self.store);
                        let _ = done.send(());
                        return;
                    }
                }
                () = net::sleep_until(deadline) => self.session.handle_timeout(self.clock.now()),
            }
        }
    }

    fn command(&mut self, now: Time, command: Command) {
        match command {
            Command::Request(job, reply) => match job(&mut self.session, now) {
                Ok(id) => {
                    self.answers.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            },
            Command::Send { to, message, reply } => {
                let kept = message.clone();
                match self.session.send_message(now, &to, *message) {
                    Ok((command, id)) => {
                        let chat = Chat::from_jid(&to).map(|c| c.jid().clone()).unwrap_or(to);
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
                        self.sends.insert(command, (Box::new(info), reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Verify(code, reply) => match self.session.verify(now, &code) {
                Ok(()) => self.ready_waiters.push(reply),
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            },
            Command::WaitReady(reply) => match &self.ready {
                Some(ready) if self.session.is_ready() => {
                    let _ = reply.send(Ok(ready.clone()));
                }
                _ => self.ready_waiters.push(reply),
            },
            Command::SecurityCode(user, reply) => {
                let _ = reply.send(self.session.security_code(&user));
            }
            Command::Shutdown(_) => {}
        }
    }

    /// As the web client's: events (store commit first), then sends.
    async fn pump(&mut self) {
        loop {
            let mut ops = Vec::new();
            let mut moved = false;
            while let Some(event) = self.session.poll_event() {
                moved = true;
                self.route(event, &mut ops);
            }
            if !ops.is_empty() {
                let store = Arc::clone(&self.store);
                match tokio::task::spawn_blocking(move || store.apply(ops)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => self.outbox.push(PhoneEvent::StoreFailed(e)),
                    Err(e) => self.outbox.push(PhoneEvent::StoreFailed(Error::Task(e))),
                }
            }
            // A sent message's id goes to its caller once the message is in the store.
            for (reply, answer) in self.acked.drain(..) {
                let _ = reply.send(answer);
            }
            for device in std::mem::take(&mut self.exports_due) {
                if let Some(exporter) = self.export.clone() {
                    tokio::spawn(exporter.export_to(device, self.outbox.sender()));
                }
            }
            for work in std::mem::take(&mut self.mirror_work) {
                moved = true;
                self.serve_mirror(work).await;
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

    fn route(&mut self, event: PhoneSessionEvent, ops: &mut Vec<Op>) {
        match event {
            PhoneSessionEvent::Answer { id, result } => {
                if let Some((info, reply)) = self.sends.remove(&id) {
                    let answer = match result {
                        Ok(Answer::Sent { id }) => {
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
                } else if let Some(reply) = self.answers.remove(&id) {
                    let _ = reply.send(result.map_err(Error::from));
                }
                return;
            }
            PhoneSessionEvent::E2eState(changes) => {
                ops.push(Op::E2e(changes));
                return;
            }
            PhoneSessionEvent::Ready(ref ready) => {
                self.ready = Some(ready.clone());
                for waiter in self.ready_waiters.drain(..) {
                    let _ = waiter.send(Ok(ready.clone()));
                }
            }
            PhoneSessionEvent::Failed(ref error) => {
                for waiter in self.ready_waiters.drain(..) {
                    let _ = waiter.send(Err(error.clone().into()));
                }
            }
            PhoneSessionEvent::Message(ref received) => {
                if let Some(info) = received_message(received) {
                    ops.push(Op::Message {
                        info: Box::new(info),
                        unread: !received.from_me,
                    });
                }
            }
            PhoneSessionEvent::Ack(ref ack) => {
                let status = match ack.level {
                    1 => Some(Status::ServerAck),
                    2 => Some(Status::DeliveryAck),
                    3 => Some(Status::Read),
                    4 => Some(Status::Played),
                    _ => None,
                };
                if let Some(status) = status {
                    ops.push(Op::Status {
                        chat: ack.chat.clone(),
                        ids: vec![ack.id.clone()],
                        status,
                    });
                }
            }
            PhoneSessionEvent::MirrorSent(ref info) => {
                ops.push(Op::Message {
                    info: info.clone(),
                    unread: false,
                });
            }
            PhoneSessionEvent::MirrorsChanged(ref mirrors) => {
                ops.push(Op::Mirrors(mirrors.clone()));
            }
            PhoneSessionEvent::MirrorOnline { ref device } => {
                self.mirror_work.push(MirrorWork::Online(device.clone()));
            }
            PhoneSessionEvent::MirrorQuery {
                ref device,
                ref tag,
                ref query,
            } => {
                self.mirror_work.push(MirrorWork::Query(
                    device.clone(),
                    tag.clone(),
                    query.clone(),
                ));
            }
            PhoneSessionEvent::Linked(ref linked) => {
                // A mirror client reads the phone's store through the phone: no export.
                let mirror = self
                    .session
                    .mirrors()
                    .iter()
                    .any(|m| m.device == linked.device);
                if self.export.is_some() && !mirror {
                    // Started after this turn's store commit.
                    self.exports_due.push(linked.device.clone());
                }
            }
            _ => {}
        }
        self.outbox.push(PhoneEvent::Session(event));
    }

    /// Reads what a mirror client waits for from the store and sends it (sealed with the
    /// client's keys by the session). A store that fails is reported, and the client gets an
    /// error answer (a query) or nothing (the lists at login: it asks again).
    async fn serve_mirror(&mut self, work: MirrorWork) {
        let store = Arc::clone(&self.store);
        let (work, nodes) = match tokio::task::spawn_blocking(move || {
            let nodes = mirror_nodes(&store, &work);
            (work, nodes)
        })
        .await
        {
            Ok(done) => done,
            Err(e) => {
                self.outbox.push(PhoneEvent::StoreFailed(Error::Task(e)));
                return;
            }
        };
        let now = self.clock.now();
        let nodes = match nodes {
            Ok(nodes) => nodes,
            Err(e) => {
                self.outbox.push(PhoneEvent::StoreFailed(e));
                return;
            }
        };
        let result = match &work {
            MirrorWork::Online(device) => nodes
                .iter()
                .try_for_each(|node| self.session.mirror_push(now, device, node)),
            MirrorWork::Query(device, tag, _) => nodes
                .iter()
                .try_for_each(|node| self.session.mirror_reply(now, device, tag, node)),
        };
        if let Err(e) = result {
            // The client was unlinked meanwhile, or the phone went offline: nothing to send.
            tracing::debug!(error = %e, "mirror client not served");
        }
    }

    async fn transmit(&mut self, transmit: PhoneTransmit) {
        match transmit {
            PhoneTransmit::Connect => match self.urls.connect(self.connect_timeout).await {
                Some(socket) => {
                    self.socket = Some(socket);
                    self.session.handle_connected(self.clock.now());
                }
                None => self.session.handle_closed(self.clock.now()),
            },
            PhoneTransmit::Send(text) => {
                let Some(socket) = self.socket.as_mut() else {
                    return;
                };
                if let Err(e) = socket.send(Message::text(text)).await {
                    tracing::debug!(error = %e, "send failed");
                    self.socket = None;
                    self.session.handle_closed(self.clock.now());
                }
            }
            PhoneTransmit::Close => {
                if let Some(mut socket) = self.socket.take() {
                    let _ = socket.close(None).await;
                }
            }
        }
    }
}
