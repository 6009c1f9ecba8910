//! `wa phone`: the primary device of an account, over [`wa_client::phone::Phone`]: register
//! a number with the code the server sends, approve a web client's QR code, send, listen,
//! manage linked web clients, read its history. Its store (`--store`, `WA_PHONE_STORE`) keeps
//! the identity, the end-to-end sessions and every message across runs; a small file next to
//! it (`<store>.json`) remembers the number, the name and the platform.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wa_client::Store;
use wa_client::phone::{Phone, PhoneConfig, PhoneEvent, PhoneEvents};
use wa_phone::PhoneSessionEvent;
use wa_wire::Jid;

use crate::client::{
    chats_json, describe, history_json, message_json, print_chats, print_history, tagged,
};
use crate::common::{self, DEFAULT_SERVER, LOGIN_TIMEOUT, ServerUrl, out, parse_jid};
use crate::ipc;

/// The environment variable of the phone store's passphrase.
const PASSPHRASE_VAR: &str = "WA_PHONE_STORE_PASSPHRASE";

/// How long `wa phone link` waits for the history export to reach the new client.
const HISTORY_WAIT: Duration = Duration::from_secs(30);

/// Where the server is and where the phone keeps its store.
#[derive(Debug, Clone, Args)]
pub(crate) struct Where {
    /// The server's base URL (`http://host:port`; `ws://host:port` works too).
    #[arg(long, env = "WA_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// The phone's store (identity, sessions, messages; encrypted, key `<store>.key` or the
    /// passphrase in WA_PHONE_STORE_PASSPHRASE). Default `$XDG_DATA_HOME/wa-rs/phone.redb`.
    #[arg(long, env = "WA_PHONE_STORE", value_name = "PATH")]
    store: Option<PathBuf>,
}

impl Where {
    fn store_path(&self) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| common::data_dir().join("phone.redb"))
    }

    fn profile_path(&self) -> PathBuf {
        let mut name = self.store_path().into_os_string();
        name.push(".json");
        PathBuf::from(name)
    }

    fn profile(&self) -> anyhow::Result<Profile> {
        let path = self.profile_path();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "no phone registered in {}: run `wa phone register --number N` first",
                    self.store_path().display()
                )
            } else {
                anyhow::Error::new(e).context(format!("reading {}", path.display()))
            }
        })?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }

    fn config(&self, profile: &Profile) -> anyhow::Result<PhoneConfig> {
        let server = ServerUrl::parse(&self.server)?;
        let path = self.store_path();
        let mut config =
            PhoneConfig::new(server.phone_url(), &profile.number, &profile.name, &path);
        config.key = Some(common::store_key(&path, PASSPHRASE_VAR)?);
        config.platform = profile.platform.format();
        Ok(config)
    }

    fn socket(&self) -> PathBuf {
        ipc::socket_path(&self.store_path())
    }

    fn open_store(&self) -> anyhow::Result<Store> {
        let path = self.store_path();
        self.profile()?;
        Store::open(&path, common::store_key(&path, PASSPHRASE_VAR)?)
            .with_context(|| format!("opening the phone's store {}", path.display()))
    }
}

/// What `wa phone register` remembers next to the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Profile {
    number: String,
    name: String,
    platform: Platform,
}

/// The phone's platform: it decides the format of the history export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Platform {
    /// A JSON document like Android's `msgstore.db`.
    Android,
    /// A binary property list like iOS's `ChatStorage.sqlite`.
    Ios,
}

impl Platform {
    fn format(self) -> wa_history::Format {
        match self {
            Platform::Android => wa_history::Format::Android,
            Platform::Ios => wa_history::Format::Ios,
        }
    }
}

/// `wa phone` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Register a number: the server sends a code (the reference server prints it on its
    /// standard error); this command takes it from --code or asks for it.
    Register {
        #[command(flatten)]
        at: Where,
        /// The phone number, digits only (`+` allowed).
        #[arg(long)]
        number: String,
        /// The name others see.
        #[arg(long, default_value = "wa phone")]
        name: String,
        /// The platform (the format of the history this phone exports to linked clients).
        #[arg(long, value_enum, default_value_t = Platform::Android)]
        platform: Platform,
        /// The verification code, when known (otherwise it is asked for on standard input).
        #[arg(long)]
        code: Option<String>,
    },
    /// Print incoming messages, ticks, presence and group changes until Ctrl-C.
    Listen {
        #[command(flatten)]
        at: Where,
        /// Mark incoming messages read (their senders see blue ticks).
        #[arg(long)]
        read: bool,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Send a text message.
    Send {
        #[command(flatten)]
        at: Where,
        /// The recipient: a phone number, a user JID or a group JID.
        #[arg(long, value_name = "JID")]
        to: String,
        /// The text; `-` or nothing reads it from standard input.
        text: Option<String>,
    },
    /// Approve the QR code a web client shows (`wa login` prints it): it becomes linked, and
    /// gets this phone's history.
    Link {
        #[command(flatten)]
        at: Where,
        /// The QR code's text.
        qr: String,
    },
    /// List the linked web clients.
    Linked {
        #[command(flatten)]
        at: Where,
    },
    /// Unlink a web client (its saved session stops working).
    Unlink {
        #[command(flatten)]
        at: Where,
        /// Its client id (see `wa phone linked`).
        client_id: String,
    },
    /// List the chats in the phone's store.
    Chats {
        #[command(flatten)]
        at: Where,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Print the last messages of a chat from the phone's store.
    History {
        #[command(flatten)]
        at: Where,
        /// The chat: a phone number, a user JID or a group JID.
        chat: String,
        /// The last N messages.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: usize,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Mark a chat read up to a message (default: its latest incoming one): blue ticks.
    Read {
        #[command(flatten)]
        at: Where,
        /// The chat.
        chat: String,
        /// The message id.
        id: Option<String>,
    },
    /// Print the security code with a contact (compare it with theirs).
    Verify {
        #[command(flatten)]
        at: Where,
        /// The contact: a phone number or user JID.
        jid: String,
    },
    /// Create a group; prints its JID.
    GroupCreate {
        #[command(flatten)]
        at: Where,
        /// The subject.
        subject: String,
        /// The members (phone numbers or JIDs).
        #[arg(required = true)]
        members: Vec<String>,
    },
}

/// What one `wa phone` command asks a running `wa phone listen` (or carries out itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
enum Request {
    /// Send a text.
    Send {
        /// The recipient.
        to: String,
        /// The text.
        text: String,
    },
    /// Approve a QR code.
    Link {
        /// Its text.
        qr: String,
    },
    /// The linked web clients.
    Linked,
    /// Unlink a web client.
    Unlink {
        /// Its client id.
        client_id: String,
    },
    /// The chats of the store.
    Chats,
    /// The last messages of a chat.
    History {
        /// The chat.
        chat: String,
        /// How many at most.
        limit: usize,
    },
    /// Mark a chat read.
    Read {
        /// The chat.
        chat: String,
        /// Up to this message (default: the latest incoming one).
        id: Option<String>,
    },
    /// The security code with a user.
    Verify {
        /// The user.
        jid: String,
    },
    /// Create a group.
    GroupCreate {
        /// The subject.
        subject: String,
        /// The members.
        members: Vec<String>,
    },
}

/// Carries out a request with a running phone.
async fn handle(phone: &Phone, request: Request) -> anyhow::Result<Value> {
    match request {
        Request::Send { to, text } => {
            let to = parse_jid(&to)?;
            let id = phone
                .send_text(&to, &text)
                .await
                .with_context(|| format!("sending to {to}"))?;
            Ok(json!({"id": id}))
        }
        Request::Link { qr } => {
            let linked = phone.link(&qr).await.context("approving the QR code")?;
            Ok(json!({"client_id": linked.client_id, "device": linked.device.to_string()}))
        }
        Request::Linked => {
            let devices = phone.linked().await.context("listing linked clients")?;
            Ok(Value::Array(
                devices
                    .iter()
                    .map(|d| {
                        json!({"client_id": d.client_id, "device": d.device.to_string(),
                               "browser": d.browser, "linked_at": d.linked_at, "mirror": d.mirror})
                    })
                    .collect(),
            ))
        }
        Request::Unlink { client_id } => {
            phone
                .unlink(&client_id)
                .await
                .with_context(|| format!("unlinking {client_id}"))?;
            Ok(json!({"unlinked": client_id}))
        }
        Request::Chats => chats_json(phone.store()),
        Request::History { chat, limit } => history_json(phone.store(), &chat, limit),
        Request::Read { chat, id } => {
            let chat = parse_jid(&chat)?;
            let id = match id {
                Some(id) => id,
                None => phone
                    .store()
                    .history(&chat, 200)
                    .context("reading the history")?
                    .iter()
                    .rev()
                    .find(|m| m.key.from_me != Some(true))
                    .and_then(|m| m.key.id.clone())
                    .with_context(|| format!("no incoming message from {chat}"))?,
            };
            phone
                .read(&chat, &id)
                .await
                .with_context(|| format!("marking {id} read"))?;
            Ok(json!({"read": id}))
        }
        Request::Verify { jid } => {
            let user = parse_jid(&jid)?;
            let code = phone.security_code(&user).await?;
            Ok(json!({"jid": wa_wire::ids::user_of(&user).to_string(),
                      "code": code.as_ref().map(ToString::to_string)}))
        }
        Request::GroupCreate { subject, members } => {
            let members = members
                .iter()
                .map(|m| parse_jid(m))
                .collect::<anyhow::Result<Vec<Jid>>>()?;
            let group = phone
                .group_create(&subject, &members)
                .await
                .context("creating the group")?;
            Ok(json!({"group": group.to_string()}))
        }
    }
}

/// Carries out `request` through a running `wa phone listen`, or with a phone of our own:
/// logged in when it needs the server, else on the store alone.
async fn request(at: &Where, request: Request) -> anyhow::Result<Value> {
    if let Some(value) = ipc::call(&at.socket(), &request).await? {
        return Ok(value);
    }
    match request {
        Request::Chats => chats_json(&at.open_store()?),
        Request::History { chat, limit } => history_json(&at.open_store()?, &chat, limit),
        Request::Verify { .. } => {
            // The identities are in the store: no server needed.
            let profile = at.profile()?;
            let (phone, _events) = Phone::login(at.config(&profile)?)
                .await
                .context("opening the phone")?;
            let result = handle(&phone, request).await;
            phone.shutdown().await;
            result
        }
        Request::Link { qr } => link(at, &qr).await,
        request => {
            let (phone, _events) = logged_in(at).await?;
            let result = handle(&phone, request).await;
            phone.shutdown().await;
            result
        }
    }
}

/// Runs a `wa phone` subcommand.
pub(crate) fn run(cmd: Command) -> anyhow::Result<()> {
    common::runtime()?.block_on(async {
        let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        match cmd {
            Command::Register {
                at,
                number,
                name,
                platform,
                code,
            } => register(&at, &number, &name, platform, code).await,
            Command::Listen { at, read, json } => listen(&at, read, json).await,
            Command::Send { at, to, text } => {
                parse_jid(&to)?;
                let text = common::message_text(text.as_deref())?;
                let reply = request(&at, Request::Send { to, text }).await?;
                out(field(&reply, "id"))
            }
            Command::Link { at, qr } => {
                let reply = request(&at, Request::Link { qr }).await?;
                out(format!(
                    "linked {} as {}",
                    field(&reply, "client_id"),
                    field(&reply, "device")
                ))?;
                if let Some(chats) = reply.get("history_chats") {
                    out(format!(
                        "history sent: {chats} chats, {} messages",
                        reply.get("history_messages").cloned().unwrap_or_default()
                    ))?;
                }
                Ok(())
            }
            Command::Linked { at } => {
                let devices = request(&at, Request::Linked).await?;
                let devices = devices.as_array().cloned().unwrap_or_default();
                if devices.is_empty() {
                    crate::common::note!("no linked web clients");
                }
                for d in devices {
                    let mirror = d.get("mirror").and_then(Value::as_bool) == Some(true);
                    out(format!(
                        "{}  {}  {}  linked at {}{}",
                        field(&d, "client_id"),
                        field(&d, "device"),
                        field(&d, "browser"),
                        d.get("linked_at").and_then(Value::as_u64).unwrap_or(0),
                        if mirror { "  (mirror)" } else { "" }
                    ))?;
                }
                Ok(())
            }
            Command::Unlink { at, client_id } => {
                request(
                    &at,
                    Request::Unlink {
                        client_id: client_id.clone(),
                    },
                )
                .await?;
                out(format!("unlinked {client_id}"))
            }
            Command::Chats { at, json } => {
                let chats = request(&at, Request::Chats).await?;
                print_chats(&chats, json)
            }
            Command::History {
                at,
                chat,
                limit,
                json,
            } => {
                parse_jid(&chat)?;
                let messages = request(
                    &at,
                    Request::History {
                        chat: chat.clone(),
                        limit,
                    },
                )
                .await?;
                print_history(&messages, &chat, json)
            }
            Command::Read { at, chat, id } => {
                parse_jid(&chat)?;
                let reply = request(&at, Request::Read { chat, id }).await?;
                out(format!("read {}", field(&reply, "read")))
            }
            Command::Verify { at, jid } => {
                parse_jid(&jid)?;
                let reply = request(&at, Request::Verify { jid: jid.clone() }).await?;
                match reply.get("code").and_then(Value::as_str) {
                    Some(code) => {
                        out(format!("security code with {}:", field(&reply, "jid")))?;
                        out(code)
                    }
                    None => bail!(
                        "no security code with {jid} yet: their identity is learnt with the \
                         first message between you"
                    ),
                }
            }
            Command::GroupCreate {
                at,
                subject,
                members,
            } => {
                for m in &members {
                    parse_jid(m)?;
                }
                let reply = request(&at, Request::GroupCreate { subject, members }).await?;
                out(field(&reply, "group"))
            }
        }
    })
}

/// Logs in as the phone of the store and waits until it is in.
async fn logged_in(at: &Where) -> anyhow::Result<(Phone, PhoneEvents)> {
    let profile = at.profile()?;
    let server = ServerUrl::parse(&at.server)?;
    server.probe().await?;
    let (phone, events) = Phone::login(at.config(&profile)?)
        .await
        .with_context(|| format!("opening the phone's store {}", at.store_path().display()))?;
    let ready = tokio::time::timeout(LOGIN_TIMEOUT, phone.ready()).await;
    let failure = match ready {
        Ok(Ok(_)) => return Ok((phone, events)),
        Ok(Err(e)) => anyhow::Error::new(e).context(format!("logging in as +{}", profile.number)),
        Err(_) => anyhow::anyhow!("no login within {} s at {server}", LOGIN_TIMEOUT.as_secs()),
    };
    phone.shutdown().await;
    Err(failure)
}

async fn register(
    at: &Where,
    number: &str,
    name: &str,
    platform: Platform,
    code: Option<String>,
) -> anyhow::Result<()> {
    let number: String = number
        .trim_start_matches('+')
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    if !wa_wire::ids::valid_number(&number) {
        bail!("{number:?} is not a phone number (5 to 20 digits)");
    }
    let server = ServerUrl::parse(&at.server)?;
    server.probe().await?;
    let profile = Profile {
        number: number.clone(),
        name: name.to_owned(),
        platform,
    };
    let (phone, mut events) = Phone::register(at.config(&profile)?)
        .await
        .with_context(|| format!("opening the phone's store {}", at.store_path().display()))?;
    let result = async {
        // The server answers the registration once it sent the code.
        let sent = tokio::time::timeout(LOGIN_TIMEOUT, async {
            while let Some(event) = events.next().await {
                match event {
                    PhoneEvent::Session(PhoneSessionEvent::CodeSent) => return Ok(()),
                    PhoneEvent::Session(PhoneSessionEvent::Failed(e)) => {
                        bail!("the server refused the registration: {e}")
                    }
                    PhoneEvent::Session(PhoneSessionEvent::Disconnected { .. }) => {
                        bail!("the server closed the connection")
                    }
                    _ => {}
                }
            }
            bail!("the phone stopped")
        })
        .await
        .context("no verification code was sent in time")?;
        sent?;
        let code = match code {
            Some(code) => code,
            None => {
                crate::common::note!(
                    "a verification code was sent for +{number} (the reference server prints it \
                     on its standard error); type it:"
                );
                let line = tokio::task::spawn_blocking(|| {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line).map(|_| line)
                })
                .await
                .context("reading the code")?
                .context("reading the code from standard input")?;
                line.trim().to_owned()
            }
        };
        if code.is_empty() {
            bail!("no code given");
        }
        let ready = tokio::time::timeout(LOGIN_TIMEOUT, phone.verify(&code))
            .await
            .context("the server did not answer the code in time")?
            .context("the code was refused")?;
        Ok(ready)
    }
    .await;
    phone.shutdown().await;
    let ready = result?;
    let path = at.profile_path();
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&profile).context("encoding the profile")?,
    )
    .with_context(|| format!("writing {}", path.display()))?;
    out(format!(
        "registered {} ({name}){}; store {}",
        ready.wid,
        if ready.created { ", a new account" } else { "" },
        at.store_path().display()
    ))
}

/// Links with a phone of our own, and waits (bounded) until the history export went out.
async fn link(at: &Where, qr: &str) -> anyhow::Result<Value> {
    let (phone, mut events) = logged_in(at).await?;
    let result = async {
        let mut reply = handle(&phone, Request::Link { qr: qr.to_owned() }).await?;
        let device = reply
            .get("device")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        // The phone sends the new client its history: wait until it went out.
        let sent = tokio::time::timeout(HISTORY_WAIT, async {
            while let Some(event) = events.next().await {
                match event {
                    PhoneEvent::HistorySent {
                        device: to,
                        chats,
                        messages,
                    } if to.to_string() == device => return Ok((chats, messages)),
                    PhoneEvent::HistoryFailed { device: to, error } if to.to_string() == device => {
                        return Err(error);
                    }
                    _ => {}
                }
            }
            Err(wa_client::Error::Stopped)
        })
        .await;
        match sent {
            Ok(Ok((chats, messages))) => {
                if let Some(object) = reply.as_object_mut() {
                    object.insert("history_chats".to_owned(), json!(chats));
                    object.insert("history_messages".to_owned(), json!(messages));
                }
            }
            Ok(Err(e)) => crate::common::note!("wa: the history export failed: {e}"),
            Err(_) => crate::common::note!("wa: the history export did not finish in time"),
        }
        Ok(reply)
    }
    .await;
    phone.shutdown().await;
    result
}

async fn listen(at: &Where, read: bool, json: bool) -> anyhow::Result<()> {
    let socket = at.socket();
    if ipc::someone_listens(&socket).await {
        bail!(
            "another `wa phone listen` runs on this store ({} answers)",
            socket.display()
        );
    }
    let (phone, mut events) = logged_in(at).await?;
    let stop = common::stop_signal();
    tokio::pin!(stop);
    let served = phone.clone();
    let bound = ipc::serve(&socket, move |request| {
        let phone = served.clone();
        async move { handle(&phone, request).await }
    })
    .await;
    let _bound = match bound {
        Ok(bound) => {
            crate::common::note!(
                "wa phone listen: logged in as {}; other wa phone commands on this store go \
                 through {} (Ctrl-C stops)",
                phone.user(),
                socket.display()
            );
            Some(bound)
        }
        Err(e) => {
            crate::common::note!(
                "wa phone listen: logged in as {} (Ctrl-C stops); other wa phone commands \
                 cannot use this store meanwhile: {e:#}",
                phone.user()
            );
            None
        }
    };
    let result = async {
        loop {
            let event = tokio::select! {
                () = &mut stop => return Ok(()),
                event = events.next() => event,
            };
            let Some(event) = event else {
                bail!("the phone stopped");
            };
            show(&phone, &event, read, json).await?;
        }
    }
    .await;
    phone.shutdown().await;
    result
}

async fn show(phone: &Phone, event: &PhoneEvent, read: bool, json: bool) -> anyhow::Result<()> {
    let line: Option<(Value, String)> = match event {
        PhoneEvent::Session(PhoneSessionEvent::Message(m)) => {
            let info = m.to_web_message();
            let text = describe(info.message.as_ref());
            let value = tagged(message_json(&info), "message");
            let from = if m.from_me {
                "me".to_owned()
            } else {
                wa_wire::ids::user_of(&m.from).to_string()
            };
            if read
                && !m.from_me
                && let Err(e) = phone.read(&m.chat, &m.id).await
            {
                crate::common::note!("wa: marking {} read: {e}", m.id);
            }
            Some((value, format!("{} [{}] {from}: {text}", m.id, m.chat)))
        }
        PhoneEvent::Session(PhoneSessionEvent::Ack(ack)) => {
            let ticks = match ack.level {
                1 => "✓ sent",
                2 => "✓✓ delivered",
                3 => "✓✓ read (blue)",
                4 => "✓✓ played (blue)",
                _ => "ack",
            };
            Some((
                json!({"event": "ack", "id": ack.id, "level": ack.level,
                       "chat": ack.chat.to_string(), "sender": ack.sender.to_string(),
                       "participant": ack.participant.as_ref().map(ToString::to_string)}),
                format!("{} {ticks}", ack.id),
            ))
        }
        PhoneEvent::Session(PhoneSessionEvent::Presence(p)) => {
            let state = format!("{:?}", p.state).to_lowercase();
            Some((
                json!({"event": "presence", "jid": p.jid.to_string(), "state": state,
                       "group": p.group.as_ref().map(ToString::to_string)}),
                format!("{} is {state}", p.jid),
            ))
        }
        PhoneEvent::Session(PhoneSessionEvent::Group(g)) => {
            let members: Vec<String> = g.participants.iter().map(ToString::to_string).collect();
            let op = format!("{:?}", g.op).to_lowercase();
            Some((
                json!({"event": "group", "group": g.group.to_string(), "op": op,
                       "author": g.author.to_string(), "participants": members,
                       "subject": g.subject}),
                format!(
                    "group {}: {} {op} {}{}",
                    g.group,
                    g.author,
                    members.join(", "),
                    g.subject
                        .as_deref()
                        .map(|s| format!(" “{s}”"))
                        .unwrap_or_default()
                ),
            ))
        }
        PhoneEvent::Session(PhoneSessionEvent::IdentityChanged { jid }) => Some((
            json!({"event": "identity-changed", "jid": jid.to_string()}),
            format!("{jid} has a new identity: their security code changed"),
        )),
        PhoneEvent::Session(PhoneSessionEvent::Linked(l)) => Some((
            json!({"event": "linked", "client_id": l.client_id, "device": l.device.to_string()}),
            format!("linked {} as {}", l.client_id, l.device),
        )),
        PhoneEvent::Session(PhoneSessionEvent::Undecryptable { from, id, error }) => {
            crate::common::note!("wa: message {id} from {from} did not decrypt: {error}");
            None
        }
        PhoneEvent::HistorySent {
            device,
            chats,
            messages,
        } => Some((
            json!({"event": "history-sent", "device": device.to_string(), "chats": chats,
                   "messages": messages}),
            format!("history sent to {device}: {chats} chats, {messages} messages"),
        )),
        PhoneEvent::HistoryFailed { device, error } => {
            crate::common::note!("wa: the history export to {device} failed: {error}");
            None
        }
        PhoneEvent::StoreFailed(e) => {
            crate::common::note!("wa: the store could not keep something: {e}");
            None
        }
        PhoneEvent::Session(PhoneSessionEvent::Replaced) => {
            bail!("another connection took over as this phone")
        }
        PhoneEvent::Session(PhoneSessionEvent::Failed(e)) => bail!("the phone failed: {e}"),
        PhoneEvent::Session(PhoneSessionEvent::Disconnected { reconnect_in }) => {
            match reconnect_in {
                Some(delay) => crate::common::note!(
                    "wa: disconnected; reconnecting in {:.1} s",
                    delay.as_secs_f32()
                ),
                None => bail!("disconnected for good"),
            }
            None
        }
        _ => None,
    };
    match line {
        Some((value, _)) if json => out(value),
        Some((_, text)) => out(text),
        None => Ok(()),
    }
}
