//! The data model over the [`Store`](crate::store::Store): typed records (JSON in the store,
//! so they can grow fields), their keys, and the multi-record updates that must happen in one
//! transaction (unlinking a device, retiring a delivered message, appending to a history).
//!
//! **Architecture Invariant:** a queued message's `pending` list and the `inbox` index always
//! agree (both change in the same transaction), and a message is deleted, with its index
//! entries, in the transaction that empties `pending`.

use prost::Message as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::jid::DeviceKey;
use crate::store::{KeyBuf, KeyReader, ReadTxn, StoreError, Table, WriteTxn, prefix_end};

/// An account: a phone number with its phone and linked web clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccountRecord {
    pub(crate) number: String,
    pub(crate) name: String,
    pub(crate) created: u64,
    /// SHA-256 (hex) of the phone's secret, when it set one: then only it may act as the phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) phone_secret: Option<String>,
    #[serde(default)]
    pub(crate) phone: PhoneInfo,
    /// Linked web clients by client id, oldest first.
    #[serde(default)]
    pub(crate) devices: Vec<String>,
}

/// What the phone says about itself (shown to linked clients in `Conn`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PhoneInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) wa_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) device_manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) device_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) os_version: Option<String>,
}

/// A linked web client: its tokens (hashed) and session keys.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(crate) struct DeviceRecord {
    pub(crate) client_id: String,
    pub(crate) number: String,
    pub(crate) browser: String,
    pub(crate) linked_at: u64,
    /// SHA-256 (hex) of the current tokens.
    pub(crate) client_token: String,
    pub(crate) server_token: String,
    pub(crate) browser_token: String,
    /// The session keys, hex.
    pub(crate) enc_key: String,
    pub(crate) mac_key: String,
    /// SHA-256 (hex) of the client and server tokens before the last rotation, empty when
    /// none: a client that lost the last `Conn` logs in with them and is challenged to prove
    /// its keys (PROTOCOL.md §2.5).
    #[serde(default)]
    pub(crate) prev_client_token: String,
    #[serde(default)]
    pub(crate) prev_server_token: String,
}

impl std::fmt::Debug for DeviceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRecord")
            .field("client_id", &self.client_id)
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

impl DeviceRecord {
    /// The session keys.
    pub(crate) fn keys(&self) -> Option<wa_crypto::SessionKeys> {
        let mut enc = zeroize::Zeroizing::new([0u8; 32]);
        let mut mac = zeroize::Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(&self.enc_key, &mut *enc).ok()?;
        hex::decode_to_slice(&self.mac_key, &mut *mac).ok()?;
        Some(wa_crypto::SessionKeys::new(&enc, &mac))
    }
}

/// A message in the relay queue: not yet delivered to every device it is for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MessageRecord {
    pub(crate) id: String,
    pub(crate) sender: String,
    /// The chat as the recipients see it: the sender's `n@c.us`, or the group JID.
    pub(crate) chat: String,
    /// The chat as the sender sees it: the recipient's `n@c.us`, or the group JID.
    pub(crate) sender_chat: String,
    pub(crate) t: u64,
    pub(crate) expires: u64,
    /// The `WebMessageInfo` as the recipients get it.
    #[serde(with = "b64")]
    pub(crate) info: Vec<u8>,
    /// Devices still to get it.
    pub(crate) pending: Vec<String>,
    /// Whether some recipient device has it (ack 2 was sent).
    pub(crate) delivered: bool,
}

/// A chat of an account's chat list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ChatRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    pub(crate) t: u64,
    pub(crate) unread: u32,
    /// Entries in the history.
    pub(crate) count: u32,
}

/// A group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GroupRecord {
    pub(crate) jid: String,
    pub(crate) subject: String,
    pub(crate) creator: String,
    pub(crate) created: u64,
    pub(crate) participants: Vec<Member>,
}

/// A group member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Member {
    pub(crate) number: String,
    pub(crate) admin: bool,
}

impl GroupRecord {
    pub(crate) fn member(&self, number: &str) -> Option<&Member> {
        self.participants.iter().find(|m| m.number == number)
    }

    pub(crate) fn is_admin(&self, number: &str) -> bool {
        self.member(number).is_some_and(|m| m.admin)
    }
}

/// An uploaded media file (the body is a file in the data directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MediaRecord {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) sha256: String,
    pub(crate) len: u64,
    pub(crate) created: u64,
    pub(crate) expires: u64,
    pub(crate) uploader: String,
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

// ---- Keys -------------------------------------------------------------------------------------

pub(crate) fn account_key(number: &str) -> Vec<u8> {
    KeyBuf::new().str(number).build()
}

pub(crate) fn device_key(client_id: &str) -> Vec<u8> {
    KeyBuf::new().str(client_id).build()
}

pub(crate) fn message_key(seq: u64) -> Vec<u8> {
    KeyBuf::new().u64(seq).build()
}

pub(crate) fn inbox_key(device: &DeviceKey, seq: u64) -> Vec<u8> {
    KeyBuf::new().str(device.as_str()).u64(seq).build()
}

pub(crate) fn inbox_prefix(device: &DeviceKey) -> Vec<u8> {
    KeyBuf::new().str(device.as_str()).build()
}

pub(crate) fn sent_key(sender: &str, id: &str) -> Vec<u8> {
    KeyBuf::new().str(sender).str(id).build()
}

pub(crate) fn expiry_key(expires: u64, seq: u64) -> Vec<u8> {
    KeyBuf::new().u64(expires).u64(seq).build()
}

pub(crate) fn history_key(number: &str, chat: &str, seq: u64) -> Vec<u8> {
    KeyBuf::new().str(number).str(chat).u64(seq).build()
}

pub(crate) fn history_prefix(number: &str, chat: &str) -> Vec<u8> {
    KeyBuf::new().str(number).str(chat).build()
}

pub(crate) fn index_key(number: &str, chat: &str, id: &str) -> Vec<u8> {
    KeyBuf::new().str(number).str(chat).str(id).build()
}

pub(crate) fn chat_key(number: &str, chat: &str) -> Vec<u8> {
    KeyBuf::new().str(number).str(chat).build()
}

pub(crate) fn chats_prefix(number: &str) -> Vec<u8> {
    KeyBuf::new().str(number).build()
}

pub(crate) fn group_key(jid: &str) -> Vec<u8> {
    KeyBuf::new().str(jid).build()
}

pub(crate) fn media_key(id: &str) -> Vec<u8> {
    KeyBuf::new().str(id).build()
}

const SEQ_KEY: &[u8] = b"seq";

// ---- Typed access -----------------------------------------------------------------------------

pub(crate) fn get_json<T: DeserializeOwned>(
    txn: &mut dyn ReadTxn,
    table: Table,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    match txn.get(table, key)? {
        Some(bytes) => decode_json(table, &bytes).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn decode_json<T: DeserializeOwned>(
    table: Table,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table: table.name(),
        detail: e.to_string(),
    })
}

pub(crate) fn put_json<T: Serialize>(
    txn: &mut dyn WriteTxn,
    table: Table,
    key: &[u8],
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
        table: table.name(),
        detail: e.to_string(),
    })?;
    txn.put(table, key, &bytes)
}

fn u64_value(table: Table, bytes: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            table: table.name(),
            detail: format!("expected 8 bytes, found {}", bytes.len()),
        })
}

/// The next message sequence number (starting at 1).
pub(crate) fn next_seq(txn: &mut dyn WriteTxn) -> Result<u64, StoreError> {
    let current = match txn.get(Table::Meta, SEQ_KEY)? {
        Some(bytes) => u64_value(Table::Meta, &bytes)?,
        None => 0,
    };
    let next = current.saturating_add(1);
    txn.put(Table::Meta, SEQ_KEY, &next.to_be_bytes())?;
    Ok(next)
}

pub(crate) fn account(
    txn: &mut dyn ReadTxn,
    number: &str,
) -> Result<Option<AccountRecord>, StoreError> {
    get_json(txn, Table::Accounts, &account_key(number))
}

pub(crate) fn device(
    txn: &mut dyn ReadTxn,
    client_id: &str,
) -> Result<Option<DeviceRecord>, StoreError> {
    get_json(txn, Table::Devices, &device_key(client_id))
}

pub(crate) fn group(txn: &mut dyn ReadTxn, jid: &str) -> Result<Option<GroupRecord>, StoreError> {
    get_json(txn, Table::Groups, &group_key(jid))
}

/// Every device of an account: the phone first, then the linked clients.
pub(crate) fn devices_of(account: &AccountRecord) -> Vec<DeviceKey> {
    std::iter::once(DeviceKey::phone(&account.number))
        .chain(account.devices.iter().map(|c| DeviceKey::web(c)))
        .collect()
}

/// The queued messages of a device, in order: `(seq, record)`.
pub(crate) fn inbox(
    txn: &mut dyn ReadTxn,
    device: &DeviceKey,
    limit: usize,
) -> Result<Vec<(u64, MessageRecord)>, StoreError> {
    let prefix = inbox_prefix(device);
    let entries = txn.range(Table::Inbox, &prefix, &prefix_end(&prefix), false, limit)?;
    let mut out = Vec::with_capacity(entries.len());
    for (key, _) in entries {
        let mut reader = KeyReader::new(&key);
        let seq = reader.str().and(reader.u64()).ok_or(StoreError::Corrupt {
            table: Table::Inbox.name(),
            detail: "bad key".to_owned(),
        })?;
        if let Some(record) = get_json::<MessageRecord>(txn, Table::Messages, &message_key(seq))? {
            out.push((seq, record));
        }
    }
    Ok(out)
}

/// Deletes a queued message and its index entries.
pub(crate) fn delete_message(
    txn: &mut dyn WriteTxn,
    seq: u64,
    record: &MessageRecord,
) -> Result<(), StoreError> {
    txn.delete(Table::Messages, &message_key(seq))?;
    txn.delete(Table::SentIds, &sent_key(&record.sender, &record.id))?;
    txn.delete(Table::Expiry, &expiry_key(record.expires, seq))?;
    for device in &record.pending {
        txn.delete(
            Table::Inbox,
            &inbox_key(&DeviceKey::from_stored(device.clone()), seq),
        )?;
    }
    Ok(())
}

/// What happened when a device got (or stopped waiting for) a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Retired {
    /// The first device to get it: ack 2 is due.
    pub(crate) first: bool,
    /// Every device has it now: it was deleted.
    pub(crate) deleted: bool,
}

/// `device` has message `seq` (or will never get it): takes it off the device's inbox, and
/// deletes the message when no device waits for it any more. `delivered` says whether the
/// device really got it (a receipt) rather than being unlinked.
pub(crate) fn retire(
    txn: &mut dyn WriteTxn,
    device: &DeviceKey,
    seq: u64,
    delivered: bool,
) -> Result<Option<(Retired, MessageRecord)>, StoreError> {
    let was_queued = txn.delete(Table::Inbox, &inbox_key(device, seq))?;
    let Some(mut record) = get_json::<MessageRecord>(txn, Table::Messages, &message_key(seq))?
    else {
        return Ok(None);
    };
    let before = record.pending.len();
    record.pending.retain(|d| d != device.as_str());
    if record.pending.len() == before {
        if was_queued {
            tracing::warn!(seq, %device, "inbox entry without a pending device: dropped");
        }
        return Ok(None);
    }
    let first = delivered && !record.delivered;
    record.delivered |= delivered;
    let deleted = record.pending.is_empty();
    if deleted {
        delete_message(txn, seq, &record)?;
    } else {
        put_json(txn, Table::Messages, &message_key(seq), &record)?;
    }
    Ok(Some((Retired { first, deleted }, record)))
}

/// Removes a linked client: its record, its place in the account, and its queued messages.
pub(crate) fn unlink_device(
    txn: &mut dyn WriteTxn,
    client_id: &str,
) -> Result<Option<DeviceRecord>, StoreError> {
    let Some(record) = device(txn, client_id)? else {
        return Ok(None);
    };
    txn.delete(Table::Devices, &device_key(client_id))?;
    if let Some(mut account) = account(txn, &record.number)? {
        account.devices.retain(|c| c != client_id);
        put_json(
            txn,
            Table::Accounts,
            &account_key(&account.number),
            &account,
        )?;
    }
    let key = DeviceKey::web(client_id);
    let prefix = inbox_prefix(&key);
    for (k, _) in txn.range(
        Table::Inbox,
        &prefix,
        &prefix_end(&prefix),
        false,
        usize::MAX,
    )? {
        let mut reader = KeyReader::new(&k);
        match reader.str().and(reader.u64()) {
            Some(seq) => {
                retire(txn, &key, seq, false)?;
            }
            None => {
                txn.delete(Table::Inbox, &k)?;
            }
        }
    }
    Ok(Some(record))
}

/// One message for an account's history.
#[derive(Debug, Clone)]
pub(crate) struct HistoryEntry<'a> {
    pub(crate) number: &'a str,
    /// The chat as this account sees it (storage form).
    pub(crate) chat: &'a str,
    pub(crate) seq: u64,
    pub(crate) id: &'a str,
    pub(crate) sender: &'a str,
    pub(crate) info: &'a [u8],
    pub(crate) t: u64,
    /// Counts as unread (an incoming message).
    pub(crate) unread: bool,
    /// The chat's name, when it has one (a group's subject).
    pub(crate) name: Option<&'a str>,
}

/// What the history index keeps per message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IndexEntry {
    pub(crate) seq: u64,
    pub(crate) sender: String,
}

/// Appends to an account's history (keeping at most `limit` per chat) and updates its chat
/// list.
pub(crate) fn add_history(
    txn: &mut dyn WriteTxn,
    entry: &HistoryEntry<'_>,
    limit: usize,
) -> Result<(), StoreError> {
    let key = chat_key(entry.number, entry.chat);
    let mut chat: ChatRecord = get_json(txn, Table::Chats, &key)?.unwrap_or_default();
    chat.t = chat.t.max(entry.t);
    if entry.unread {
        chat.unread = chat.unread.saturating_add(1);
    }
    if let Some(name) = entry.name {
        chat.name = Some(name.to_owned());
    }
    if limit > 0 {
        txn.put(
            Table::History,
            &history_key(entry.number, entry.chat, entry.seq),
            entry.info,
        )?;
        put_json(
            txn,
            Table::MsgIndex,
            &index_key(entry.number, entry.chat, entry.id),
            &IndexEntry {
                seq: entry.seq,
                sender: entry.sender.to_owned(),
            },
        )?;
        chat.count = chat.count.saturating_add(1);
        while chat.count as usize > limit {
            let prefix = history_prefix(entry.number, entry.chat);
            let oldest = txn.range(Table::History, &prefix, &prefix_end(&prefix), false, 1)?;
            let Some((old_key, old_info)) = oldest.into_iter().next() else {
                chat.count = 0;
                break;
            };
            txn.delete(Table::History, &old_key)?;
            if let Some(id) = wa_proto::WebMessageInfo::decode(old_info.as_slice())
                .ok()
                .and_then(|i| i.key.id)
            {
                txn.delete(Table::MsgIndex, &index_key(entry.number, entry.chat, &id))?;
            }
            chat.count -= 1;
        }
    }
    put_json(txn, Table::Chats, &key, &chat)
}

/// Sets the status (ticks) of a message in an account's history, if it is still there and the
/// status only grows.
pub(crate) fn set_history_status(
    txn: &mut dyn WriteTxn,
    number: &str,
    chat: &str,
    id: &str,
    status: wa_proto::web_message_info::Status,
) -> Result<(), StoreError> {
    let Some(index) = get_json::<IndexEntry>(txn, Table::MsgIndex, &index_key(number, chat, id))?
    else {
        return Ok(());
    };
    let key = history_key(number, chat, index.seq);
    let Some(bytes) = txn.get(Table::History, &key)? else {
        return Ok(());
    };
    let Ok(mut info) = wa_proto::WebMessageInfo::decode(bytes.as_slice()) else {
        return Ok(());
    };
    if info.status.is_some_and(|s| s >= status as i32) {
        return Ok(());
    }
    info.status = Some(status as i32);
    txn.put(Table::History, &key, &info.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RedbStore, Store, read, write};

    fn queued(seq: u64, pending: &[&DeviceKey]) -> MessageRecord {
        MessageRecord {
            id: format!("ID{seq}"),
            sender: "15550000001".to_owned(),
            chat: "15550000001@c.us".to_owned(),
            sender_chat: "15550000002@c.us".to_owned(),
            t: 1,
            expires: 100,
            info: vec![1, 2, 3],
            pending: pending.iter().map(|d| d.as_str().to_owned()).collect(),
            delivered: false,
        }
    }

    fn enqueue(txn: &mut dyn WriteTxn, seq: u64, record: &MessageRecord) -> Result<(), StoreError> {
        put_json(txn, Table::Messages, &message_key(seq), record)?;
        for d in &record.pending {
            txn.put(
                Table::Inbox,
                &inbox_key(&DeviceKey::from_stored(d.clone()), seq),
                &[],
            )?;
        }
        txn.put(
            Table::SentIds,
            &sent_key(&record.sender, &record.id),
            &seq.to_be_bytes(),
        )?;
        txn.put(Table::Expiry, &expiry_key(record.expires, seq), &[])
    }

    fn counts(store: &dyn Store) -> [u64; 4] {
        read(store, |txn| {
            Ok([
                txn.len(Table::Messages)?,
                txn.len(Table::Inbox)?,
                txn.len(Table::SentIds)?,
                txn.len(Table::Expiry)?,
            ])
        })
        .unwrap()
    }

    #[tokio::test]
    async fn retiring_every_device_deletes_the_message_and_its_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        let (phone, web) = (DeviceKey::phone("15550000002"), DeviceKey::web("abc"));
        let record = queued(7, &[&phone, &web]);
        write(&store as &dyn Store, move |txn| enqueue(txn, 7, &record))
            .await
            .unwrap();
        assert_eq!(counts(&store), [1, 2, 1, 1]);
        let (p, w) = (phone.clone(), web.clone());
        let (first, second, again) = write(&store as &dyn Store, move |txn| {
            let first = retire(txn, &w, 7, true)?.map(|r| r.0);
            let second = retire(txn, &p, 7, true)?.map(|r| r.0);
            let again = retire(txn, &p, 7, true)?.map(|r| r.0);
            Ok((first, second, again))
        })
        .await
        .unwrap();
        assert_eq!(
            first,
            Some(Retired {
                first: true,
                deleted: false
            })
        );
        assert_eq!(
            second,
            Some(Retired {
                first: false,
                deleted: true
            })
        );
        assert_eq!(again, None);
        assert_eq!(counts(&store), [0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn unlinking_a_device_drops_its_queue_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        let (phone, web) = (DeviceKey::phone("15550000002"), DeviceKey::web("abc"));
        let shared_message = queued(1, &[&phone, &web]);
        let only_web = queued(2, &[&web]);
        write(&store as &dyn Store, move |txn| {
            put_json(
                txn,
                Table::Accounts,
                &account_key("15550000002"),
                &AccountRecord {
                    number: "15550000002".to_owned(),
                    name: "Bob".to_owned(),
                    created: 0,
                    phone_secret: None,
                    phone: PhoneInfo::default(),
                    devices: vec!["abc".to_owned()],
                },
            )?;
            put_json(
                txn,
                Table::Devices,
                &device_key("abc"),
                &DeviceRecord {
                    client_id: "abc".to_owned(),
                    number: "15550000002".to_owned(),
                    browser: String::new(),
                    linked_at: 0,
                    client_token: String::new(),
                    server_token: String::new(),
                    browser_token: String::new(),
                    enc_key: String::new(),
                    mac_key: String::new(),
                    prev_client_token: String::new(),
                    prev_server_token: String::new(),
                },
            )?;
            enqueue(txn, 1, &shared_message)?;
            enqueue(txn, 2, &only_web)
        })
        .await
        .unwrap();
        let removed = write(&store as &dyn Store, |txn| unlink_device(txn, "abc"))
            .await
            .unwrap();
        assert_eq!(removed.map(|d| d.client_id.clone()), Some("abc".to_owned()));
        // Message 2 was only for the unlinked client: gone. Message 1 waits for the phone.
        assert_eq!(counts(&store), [1, 1, 1, 1]);
        let (account, left) = read(&store as &dyn Store, |txn| {
            Ok((account(txn, "15550000002")?, inbox(txn, &phone, 10)?))
        })
        .unwrap();
        assert!(account.unwrap().devices.is_empty());
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1.pending, vec![phone.as_str().to_owned()]);
        assert!(!left[0].1.delivered, "an unlink is not a delivery");
    }
}
