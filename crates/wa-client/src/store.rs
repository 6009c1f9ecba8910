//! The local store of a web client or a phone: one `wa-vault` file whose every value is
//! encrypted (XChaCha20-Poly1305 under the vault key); keys are JIDs, message ids and times.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `meta` | `credentials`, `pickle-key`, `arrivals` | the session's credentials (JSON); the 32-byte key that seals the end-to-end state; the last arrival number |
//! | `e2e` | the end-to-end [`StateKey`] (`account`, `session/<device>/<id>`, ...) | the sealed pickle, as the session handed it out |
//! | `messages` | chat JID ‖ `0x00` ‖ time (u64 BE) ‖ arrival number (u64 BE) ‖ message id | the `WebMessageInfo` bytes |
//! | `message_ids` | chat JID ‖ `0x00` ‖ message id | the time and arrival number under which the message is kept (16 bytes) |
//! | `chats` | chat JID | name, last activity, unread count, archived (JSON) |
//! | `contacts` | user JID | address-book name, push name (JSON) |
//!
//! Messages of a chat are in time order (whole seconds, as the protocol has them), and in the
//! order they reached the store within a second (the arrival number, a counter of the store).
//! A message is stored once per `(chat, id)`: `message_ids` finds it whatever time it was
//! first stored under, so a message seen live and again in a history export (or imported
//! twice) stays one entry. No key holds message content.

use std::ops::Bound;
use std::path::Path;

use serde::{Deserialize, Serialize};
use wa_history::{Contact, History, HistoryMessage, MessageStatus};
use wa_proto::prost::Message as _;
use wa_proto::web_message_info::Status;
use wa_session::{Changes, Credentials, PickleKey, StateKey};
use wa_vault::{KeySource, ReadTxn, Scan, Table, Vault, VaultOptions, WriteTxn};
use wa_wire::Jid;
use wa_wire::ids::user_of;

use crate::error::{Error, random32};

const META: Table = Table::new("meta");
const E2E: Table = Table::new("e2e");
const MESSAGES: Table = Table::new("messages");
const MESSAGE_IDS: Table = Table::new("message_ids");
const CHATS: Table = Table::new("chats");
const CONTACTS: Table = Table::new("contacts");

const CREDENTIALS: &str = "credentials";
const PICKLE_KEY: &str = "pickle-key";
/// The phone's mirror-mode clients (their keys: secrets, sealed like every value).
const MIRRORS: &str = "mirrors";
const ARRIVALS: &str = "arrivals";

/// A chat as the local store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredChat {
    /// Who the chat is with: a user or a group.
    pub jid: Jid,
    /// The group subject or the contact's name, when known.
    #[serde(default)]
    pub name: Option<String>,
    /// When it was last active (Unix seconds).
    #[serde(default)]
    pub last_activity: u64,
    /// Messages received and not read.
    #[serde(default)]
    pub unread: u32,
    /// Archived on the phone.
    #[serde(default)]
    pub archived: bool,
}

/// A contact as the local store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredContact {
    /// The contact's user JID.
    pub jid: Jid,
    /// The name in the phone's address book.
    #[serde(default)]
    pub name: Option<String>,
    /// The name they chose (push name).
    #[serde(default)]
    pub notify: Option<String>,
}

/// How much a history import stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Imported {
    /// Chats in the export.
    pub chats: usize,
    /// Contacts in the export.
    pub contacts: usize,
    /// Messages in the export.
    pub messages: usize,
    /// Of those, messages the store did not have yet.
    pub new_messages: usize,
}

/// One change to the store; the drivers gather them and commit each batch in one transaction.
#[derive(Debug)]
pub(crate) enum Op {
    /// Keep (or, `None`, forget) the credentials.
    Credentials(Option<Box<Credentials>>),
    /// Apply end-to-end state changes.
    E2e(Box<Changes>),
    /// Forget the whole end-to-end state (unlinked, or a fresh start).
    ClearE2e,
    /// Keep a message (received, or sent and acked); `unread` counts it in its chat.
    Message {
        info: Box<wa_proto::WebMessageInfo>,
        unread: bool,
    },
    /// Messages of a chat reached a status.
    Status {
        chat: Jid,
        ids: Vec<String>,
        status: Status,
    },
    /// The phone's mirror-mode clients, all of them (none: forget them).
    Mirrors(Vec<wa_phone::MirrorClient>),
}

/// The local store: an encrypted vault (see the module docs for the layout).
pub struct Store {
    vault: Vault,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.vault.path())
            .finish_non_exhaustive()
    }
}

/// The key file used when none is configured: `<store>.key` (the store's file name with
/// `.key` appended).
pub fn default_key_file(store: &Path) -> std::path::PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".key");
    name.into()
}

fn chat_prefix(chat: &Jid) -> Vec<u8> {
    let mut key = chat.to_wire_string().into_bytes();
    key.push(0);
    key
}

fn message_key(chat: &Jid, at: [u8; 16], id: &str) -> Vec<u8> {
    let mut key = chat_prefix(chat);
    key.extend_from_slice(&at);
    key.extend_from_slice(id.as_bytes());
    key
}

/// Time and arrival number, as they stand in a message's key.
fn position(t: u64, arrival: u64) -> [u8; 16] {
    let mut at = [0u8; 16];
    let (time, number) = at.split_at_mut(8);
    time.copy_from_slice(&t.to_be_bytes());
    number.copy_from_slice(&arrival.to_be_bytes());
    at
}

/// The next arrival number (kept in `meta`).
fn next_arrival(txn: &mut WriteTxn<'_>) -> Result<u64, Error> {
    let last = match txn.get(META, ARRIVALS)? {
        Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|e| Error::corrupt("arrival counter")(Box::new(e)))?,
        None => 0,
    };
    let next = last.saturating_add(1);
    txn.put(META, ARRIVALS, next.to_be_bytes())?;
    Ok(next)
}

fn id_key(chat: &Jid, id: &str) -> Vec<u8> {
    let mut key = chat_prefix(chat);
    key.extend_from_slice(id.as_bytes());
    key
}

fn json<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::corrupt(what)(Box::new(e)))
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &'static str) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::corrupt(what)(Box::new(e)))
}

fn decode_message(bytes: &[u8]) -> Result<wa_proto::WebMessageInfo, Error> {
    wa_proto::WebMessageInfo::decode(bytes).map_err(|e| Error::corrupt("message")(Box::new(e)))
}

/// The chat a message belongs to, as a JID.
fn chat_of(info: &wa_proto::WebMessageInfo) -> Option<Jid> {
    info.key.remote_jid.as_deref()?.parse().ok()
}

fn status_rank(status: Option<i32>) -> i32 {
    match status.and_then(|s| Status::try_from(s).ok()) {
        // An error is a final state of its own: never overwritten by a lower one.
        Some(Status::Error) => -1,
        Some(s) => s as i32,
        None => 0,
    }
}

/// The history status of a stored status.
pub(crate) fn history_status(status: Option<i32>) -> MessageStatus {
    match status.and_then(|s| Status::try_from(s).ok()) {
        Some(Status::Error) => MessageStatus::Error,
        Some(Status::ServerAck) => MessageStatus::ServerAck,
        Some(Status::DeliveryAck) => MessageStatus::Delivered,
        Some(Status::Read) => MessageStatus::Read,
        Some(Status::Played) => MessageStatus::Played,
        Some(Status::Pending) | None => MessageStatus::Pending,
    }
}

fn stored_status(status: MessageStatus) -> Status {
    match status {
        MessageStatus::Pending => Status::Pending,
        MessageStatus::ServerAck => Status::ServerAck,
        MessageStatus::Delivered => Status::DeliveryAck,
        MessageStatus::Read => Status::Read,
        MessageStatus::Played => Status::Played,
        MessageStatus::Error => Status::Error,
    }
}

impl Store {
    /// Opens (or creates, with its directory) the store at `path` with `key`.
    ///
    /// # Errors
    /// [`Error::Store`] when the vault does not open (wrong key, not a vault, in use, ...);
    /// [`Error::Io`] when the directory cannot be made.
    pub fn open(path: &Path, key: KeySource) -> Result<Store, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        let vault = Vault::open(path, key, &VaultOptions::default())?;
        Ok(Store { vault })
    }

    /// The vault underneath, for reads of its own tables.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The stored credentials, if any.
    ///
    /// # Errors
    /// When the store cannot be read or holds credentials that do not decode.
    pub fn credentials(&self) -> Result<Option<Credentials>, Error> {
        let read = self.vault.read()?;
        match read.get(META, CREDENTIALS)? {
            Some(bytes) => from_json(&bytes, "credentials").map(Some),
            None => Ok(None),
        }
    }

    /// Forgets the credentials and the end-to-end state (after an offline logout, say); the
    /// messages, chats and contacts stay.
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn forget_link(&self) -> Result<(), Error> {
        self.apply(vec![Op::Credentials(None), Op::ClearE2e])
    }

    /// The key that seals the end-to-end state: made (32 random bytes) and kept the first time.
    pub(crate) fn pickle_key(&self) -> Result<PickleKey, Error> {
        if let Some(bytes) = self.vault.read()?.get(META, PICKLE_KEY)? {
            let bytes = <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|e| Error::corrupt("pickle key")(Box::new(e)))?;
            return Ok(PickleKey::new(bytes));
        }
        let key = zeroize::Zeroizing::new(random32()?);
        let mut txn = self.vault.write()?;
        txn.put(META, PICKLE_KEY, key.as_slice())?;
        txn.commit()?;
        Ok(PickleKey::new(*key))
    }

    /// Every stored end-to-end part (sealed), for a restore.
    pub(crate) fn e2e_parts(&self) -> Result<Vec<(StateKey, Vec<u8>)>, Error> {
        let read = self.vault.read()?;
        read.range(E2E, &Scan::all())?
            .into_iter()
            .map(|(key, value)| {
                let key = String::from_utf8(key)
                    .map_err(|e| Error::corrupt("end-to-end state key")(Box::new(e)))?;
                Ok((StateKey::from(key), value.to_vec()))
            })
            .collect()
    }

    /// Applies `ops` in one transaction: all of them or none.
    pub(crate) fn apply(&self, ops: Vec<Op>) -> Result<(), Error> {
        let mut txn = self.vault.write()?;
        for op in ops {
            match op {
                Op::Credentials(Some(credentials)) => {
                    txn.put(META, CREDENTIALS, json(&*credentials, "credentials")?)?;
                }
                Op::Credentials(None) => {
                    txn.delete(META, CREDENTIALS)?;
                }
                Op::E2e(changes) => {
                    for (key, sealed) in &changes.upserts {
                        txn.put(E2E, key.as_str(), sealed)?;
                    }
                    for key in &changes.deletions {
                        txn.delete(E2E, key.as_str())?;
                    }
                }
                Op::ClearE2e => {
                    txn.delete_prefix(E2E, [])?;
                }
                Op::Message { info, unread } => {
                    put_message(&mut txn, &info, unread)?;
                }
                Op::Status { chat, ids, status } => {
                    for id in &ids {
                        set_status(&mut txn, &chat, id, status)?;
                    }
                }
                Op::Mirrors(mirrors) if mirrors.is_empty() => {
                    txn.delete(META, MIRRORS)?;
                }
                Op::Mirrors(mirrors) => {
                    let bytes = zeroize::Zeroizing::new(json(&mirrors, "mirror clients")?);
                    txn.put(META, MIRRORS, bytes.as_slice())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Stores a whole history export in one transaction: chats and contacts merged with what
    /// the store has, messages once each.
    pub(crate) fn import_history(&self, history: &History) -> Result<Imported, Error> {
        let mut txn = self.vault.write()?;
        for chat in &history.chats {
            let key = chat.jid.to_wire_string();
            let mut record = match txn.get(CHATS, &key)? {
                Some(bytes) => from_json::<StoredChat>(&bytes, "chat")?,
                None => StoredChat {
                    jid: chat.jid.clone(),
                    name: None,
                    last_activity: 0,
                    unread: 0,
                    archived: false,
                },
            };
            if chat.name.is_some() {
                record.name.clone_from(&chat.name);
            }
            record.last_activity = record.last_activity.max(chat.last_activity);
            record.unread = record.unread.max(chat.unread);
            record.archived = chat.archived;
            txn.put(CHATS, &key, json(&record, "chat")?)?;
        }
        for contact in &history.contacts {
            merge_contact(
                &mut txn,
                &contact.jid,
                contact.name.clone(),
                contact.notify.clone(),
            )?;
        }
        let mut new_messages = 0;
        for message in &history.messages {
            if put_message(&mut txn, &web_message(message), false)? {
                new_messages += 1;
            }
        }
        txn.commit()?;
        Ok(Imported {
            chats: history.chats.len(),
            contacts: history.contacts.len(),
            messages: history.messages.len(),
            new_messages,
        })
    }

    /// The chats, the most recently active first.
    ///
    /// # Errors
    /// When the store cannot be read or holds a chat that does not decode.
    pub fn chats(&self) -> Result<Vec<StoredChat>, Error> {
        let read = self.vault.read()?;
        let mut chats = read
            .range(CHATS, &Scan::all())?
            .into_iter()
            .map(|(_, value)| from_json::<StoredChat>(&value, "chat"))
            .collect::<Result<Vec<_>, _>>()?;
        chats.sort_by(|a, b| {
            b.last_activity
                .cmp(&a.last_activity)
                .then_with(|| a.jid.cmp(&b.jid))
        });
        Ok(chats)
    }

    /// The contacts, by JID.
    ///
    /// # Errors
    /// When the store cannot be read or holds a contact that does not decode.
    pub fn contacts(&self) -> Result<Vec<StoredContact>, Error> {
        let read = self.vault.read()?;
        read.range(CONTACTS, &Scan::all())?
            .into_iter()
            .map(|(_, value)| from_json::<StoredContact>(&value, "contact"))
            .collect()
    }

    /// The last `limit` messages of `chat`, oldest first.
    ///
    /// # Errors
    /// When the store cannot be read or holds a message that does not decode.
    pub fn history(
        &self,
        chat: &Jid,
        limit: usize,
    ) -> Result<Vec<wa_proto::WebMessageInfo>, Error> {
        let read = self.vault.read()?;
        let mut messages = read
            .range(
                MESSAGES,
                &Scan::prefix(chat_prefix(chat)).reverse().limit(limit),
            )?
            .into_iter()
            .map(|(_, value)| decode_message(&value))
            .collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// One message of a chat, by id.
    ///
    /// # Errors
    /// When the store cannot be read or the message does not decode.
    pub fn message(&self, chat: &Jid, id: &str) -> Result<Option<wa_proto::WebMessageInfo>, Error> {
        let read = self.vault.read()?;
        match find_message(&read, chat, id)? {
            Some((_, info)) => Ok(Some(info)),
            None => Ok(None),
        }
    }

    /// Up to `limit` messages of `chat` older (`before`) or newer than the message `index`, or
    /// the latest when `index` is `None` or unknown; oldest first.
    ///
    /// # Errors
    /// When the store cannot be read or holds a message that does not decode.
    pub fn history_from(
        &self,
        chat: &Jid,
        index: Option<&str>,
        before: bool,
        limit: usize,
    ) -> Result<Vec<wa_proto::WebMessageInfo>, Error> {
        let read = self.vault.read()?;
        let from = match index {
            Some(id) => find_message(&read, chat, id)?.map(|(key, _)| key),
            None => None,
        };
        let Some(from) = from else {
            drop(read);
            return self.history(chat, limit);
        };
        let prefix = chat_prefix(chat);
        // The chat's keys are `jid 0 ...`: `jid 1` is the first key after all of them.
        let mut end = prefix.clone();
        if let Some(last) = end.last_mut() {
            *last = 1;
        }
        let (scan, newest_first) = if before {
            let scan = Scan::bounds(
                Bound::Included(prefix.as_slice()),
                Bound::Excluded(from.as_slice()),
            );
            (scan.reverse().limit(limit), true)
        } else {
            let scan = Scan::bounds(
                Bound::Excluded(from.as_slice()),
                Bound::Excluded(end.as_slice()),
            );
            (scan.limit(limit), false)
        };
        let mut messages = read
            .range(MESSAGES, &scan)?
            .into_iter()
            .map(|(_, value)| decode_message(&value))
            .collect::<Result<Vec<_>, _>>()?;
        if newest_first {
            messages.reverse();
        }
        Ok(messages)
    }

    /// The phone's mirror-mode clients.
    pub(crate) fn mirrors(&self) -> Result<Vec<wa_phone::MirrorClient>, Error> {
        match self.vault.read()?.get(META, MIRRORS)? {
            Some(bytes) => from_json(&zeroize::Zeroizing::new(bytes), "mirror clients"),
            None => Ok(Vec::new()),
        }
    }

    /// How many messages the store holds (all chats).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn message_count(&self) -> Result<u64, Error> {
        Ok(self.vault.read()?.len(MESSAGES)?)
    }
}

/// Reads through a snapshot or a write transaction alike.
trait Get {
    fn get_value(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;
}

impl Get for ReadTxn<'_> {
    fn get_value(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.get(table, key)?.map(|v| v.to_vec()))
    }
}

impl Get for WriteTxn<'_> {
    fn get_value(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.get(table, key)?.map(|v| v.to_vec()))
    }
}

/// The message's key in `messages` and the message, if stored.
fn find_message(
    txn: &impl Get,
    chat: &Jid,
    id: &str,
) -> Result<Option<(Vec<u8>, wa_proto::WebMessageInfo)>, Error> {
    let Some(at) = txn.get_value(MESSAGE_IDS, &id_key(chat, id))? else {
        return Ok(None);
    };
    let at = <[u8; 16]>::try_from(at.as_slice())
        .map_err(|e| Error::corrupt("message index")(Box::new(e)))?;
    let key = message_key(chat, at, id);
    match txn.get_value(MESSAGES, &key)? {
        Some(bytes) => Ok(Some((key, decode_message(&bytes)?))),
        None => Ok(None),
    }
}

/// Stores a message once per `(chat, id)`; a message already stored only moves up in status.
/// Updates its chat and its sender's contact. Whether it was new.
fn put_message(
    txn: &mut WriteTxn<'_>,
    info: &wa_proto::WebMessageInfo,
    unread: bool,
) -> Result<bool, Error> {
    let (Some(chat), Some(id)) = (chat_of(info), info.key.id.as_deref()) else {
        tracing::debug!("a message without chat or id is not stored");
        return Ok(false);
    };
    if let Some((key, mut stored)) = find_message(txn, &chat, id)? {
        if status_rank(info.status) > status_rank(stored.status) {
            stored.status = info.status;
            txn.put(MESSAGES, &key, stored.encode_to_vec())?;
        }
        return Ok(false);
    }
    let t = info.message_timestamp.unwrap_or(0);
    let at = position(t, next_arrival(txn)?);
    txn.put(MESSAGES, message_key(&chat, at, id), info.encode_to_vec())?;
    txn.put(MESSAGE_IDS, id_key(&chat, id), at)?;
    let chat_key = chat.to_wire_string();
    let mut record = match txn.get(CHATS, &chat_key)? {
        Some(bytes) => from_json::<StoredChat>(&bytes, "chat")?,
        None => StoredChat {
            jid: chat.clone(),
            name: None,
            last_activity: 0,
            unread: 0,
            archived: false,
        },
    };
    record.last_activity = record.last_activity.max(t);
    let from_me = info.key.from_me == Some(true);
    if unread && !from_me {
        record.unread = record.unread.saturating_add(1);
    }
    txn.put(CHATS, &chat_key, json(&record, "chat")?)?;
    if !from_me {
        let sender = info
            .key
            .participant
            .as_deref()
            .and_then(|p| p.parse::<Jid>().ok())
            .unwrap_or_else(|| chat.clone());
        if !sender.is_group() {
            merge_contact(txn, &user_of(&sender), None, info.push_name.clone())?;
        }
    }
    Ok(true)
}

fn merge_contact(
    txn: &mut WriteTxn<'_>,
    jid: &Jid,
    name: Option<String>,
    notify: Option<String>,
) -> Result<(), Error> {
    let key = jid.to_wire_string();
    let mut record = match txn.get(CONTACTS, &key)? {
        Some(bytes) => from_json::<StoredContact>(&bytes, "contact")?,
        None => StoredContact {
            jid: jid.clone(),
            name: None,
            notify: None,
        },
    };
    let before = record.clone();
    if name.is_some() {
        record.name = name;
    }
    if notify.is_some() {
        record.notify = notify;
    }
    if record != before || txn.get(CONTACTS, &key)?.is_none() {
        txn.put(CONTACTS, &key, json(&record, "contact")?)?;
    }
    Ok(())
}

fn set_status(txn: &mut WriteTxn<'_>, chat: &Jid, id: &str, status: Status) -> Result<(), Error> {
    if let Some((key, mut stored)) = find_message(txn, chat, id)?
        && status_rank(Some(status as i32)) > status_rank(stored.status)
    {
        stored.status = Some(status as i32);
        txn.put(MESSAGES, &key, stored.encode_to_vec())?;
    }
    Ok(())
}

/// The stored form of a history message.
fn web_message(message: &HistoryMessage) -> wa_proto::WebMessageInfo {
    let sender = message.sender.as_ref().map(Jid::to_wire_string);
    wa_proto::WebMessageInfo {
        key: wa_proto::MessageKey {
            remote_jid: Some(message.chat.to_wire_string()),
            from_me: Some(message.from_me),
            id: Some(message.id.clone()),
            participant: sender.clone(),
        },
        message: Some(message.content.clone()),
        message_timestamp: Some(message.timestamp),
        participant: sender,
        status: Some(stored_status(message.status) as i32),
        ..Default::default()
    }
}

/// The history form of a stored message (`None` for one without content or chat).
pub(crate) fn history_message(info: &wa_proto::WebMessageInfo) -> Option<HistoryMessage> {
    let chat = chat_of(info)?;
    let id = info.key.id.clone()?;
    let from_me = info.key.from_me == Some(true);
    let mut message = HistoryMessage::new(
        chat.clone(),
        id,
        from_me,
        info.message_timestamp?,
        history_status(info.status),
        info.message.clone()?,
    );
    if chat.is_group() && !from_me {
        message.sender = info
            .key
            .participant
            .as_deref()
            .and_then(|p| p.parse::<Jid>().ok())
            .map(|p| user_of(&p));
    }
    Some(message)
}

/// The history form of a stored contact.
pub(crate) fn history_contact(contact: &StoredContact) -> Contact {
    let mut out = Contact::new(contact.jid.clone());
    out.name.clone_from(&contact.name);
    out.notify.clone_from(&contact.notify);
    out
}
