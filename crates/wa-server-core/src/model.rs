//! The data model over the [`Store`](crate::store::Store): typed records, their keys, and the
//! multi-record updates that must happen in one transaction. Records are JSON in the store (so
//! they can grow fields), except the ones every relay and receipt reads and writes (messages,
//! inbox entries, counters, each account's endpoints): those have a versioned binary form, and
//! still read the JSON that earlier versions wrote (an account without an endpoints record is
//! read from its account and device records).
//!
//! No record holds message content: a message is its metadata (sender, chat, id, time, kind)
//! and ciphertext the server cannot open, kept per device until that device has it.
//!
//! **Architecture Invariant:** a message's inbox entries (`(device, seq)`) and its device index
//! (`(seq, device)`) change together, in one transaction; the transaction that removes the last
//! of them drops the message's group body, so nothing of the content outlives its delivery.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wa_wire::Jid;
use wa_wire::ids::{device_jid, number_of, user_jid};
use wa_wire::keys::{IdentityKeys, OneTimeKey, Signature};
use wa_wire::msg::{ContentKind, OlmPayload, OlmType};
use wa_wire::phone::PhoneInfo;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::store::{KeyBuf, KeyReader, ReadTxn, StoreError, Table, WriteTxn, prefix_end};

/// Reads a JSON record.
pub(crate) fn get_json<T: DeserializeOwned>(
    txn: &mut dyn ReadTxn,
    table: Table,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    match txn.get(table, key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                table: table.name(),
                detail: e.to_string(),
            }),
    }
}

/// Writes a JSON record.
pub(crate) fn put_json<T: Serialize>(
    txn: &mut dyn WriteTxn,
    table: Table,
    key: &[u8],
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Backend(e.to_string()))?;
    txn.put(table, key, &bytes)
}

/// What `decode` makes of the value under `key`, read in place ([`ReadTxn::get_with`]: no
/// copy of it); `None` when there is none.
pub(crate) fn read_with<T>(
    txn: &mut dyn ReadTxn,
    table: Table,
    key: &[u8],
    decode: impl FnOnce(&[u8]) -> T,
) -> Result<Option<T>, StoreError> {
    let mut decode = Some(decode);
    let mut out = None;
    txn.get_with(table, key, &mut |value| {
        if let (Some(value), Some(decode)) = (value, decode.take()) {
            out = Some(decode(value));
        }
    })?;
    Ok(out)
}

/// Whether `table` has `key` (its value not copied).
pub(crate) fn has(txn: &mut dyn ReadTxn, table: Table, key: &[u8]) -> Result<bool, StoreError> {
    Ok(read_with(txn, table, key, |_| ())?.is_some())
}

/// Every entry under a key prefix, at most `limit`.
pub(crate) fn scan(
    txn: &mut dyn ReadTxn,
    table: Table,
    prefix: &[u8],
    limit: usize,
) -> Result<Vec<crate::store::Entry>, StoreError> {
    txn.range(table, prefix, &prefix_end(prefix), false, limit)
}

// ---- Accounts and devices ---------------------------------------------------------------------

/// An account: a phone number bound to its phone's identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccountRecord {
    pub(crate) number: String,
    pub(crate) name: String,
    pub(crate) created: u64,
    /// The phone's identity keys: its Ed25519 key is the account's identity (it signs logins and
    /// the linked devices' keys).
    pub(crate) identity: IdentityKeys,
    /// When the current phone registered (Unix seconds).
    pub(crate) identity_since: u64,
    #[serde(default)]
    pub(crate) phone: PhoneInfo,
    /// Linked web devices by device number, oldest first.
    #[serde(default)]
    pub(crate) linked: Vec<u8>,
    /// The device number the next link tries first.
    #[serde(default = "one")]
    pub(crate) next_device: u8,
}

fn one() -> u8 {
    1
}

impl AccountRecord {
    pub(crate) fn jid(&self) -> Jid {
        user_jid(&self.number).unwrap_or_else(|_| Jid::server_only(wa_binary::Server::User))
    }

    /// Every device number: the phone, then the linked devices.
    pub(crate) fn devices(&self) -> impl Iterator<Item = u8> + '_ {
        std::iter::once(0).chain(self.linked.iter().copied())
    }

    /// A free device number for a new link.
    pub(crate) fn allocate_device(&mut self) -> Option<u8> {
        let start = self.next_device.max(1);
        let free = (start..=255)
            .chain(1..start)
            .find(|d| !self.linked.contains(d))?;
        self.next_device = free.checked_add(1).unwrap_or(1);
        Some(free)
    }
}

/// What a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DeviceMode {
    /// The phone (device 0).
    Phone,
    /// A web client that is its own end-to-end endpoint.
    EndToEnd,
    /// A legacy web client, a mirror of its phone.
    Mirror,
}

impl DeviceMode {
    /// Whether senders encrypt for a device of this mode, with or without identity keys:
    /// [`DeviceRecord::is_endpoint`], for readers that decode only these two fields.
    pub(crate) fn is_endpoint(self, has_identity: bool) -> bool {
        has_identity && self != DeviceMode::Mirror
    }
}

/// Hashes of a web client's tokens (PROTOCOL.md §2.4): the store never keeps them in clear.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(crate) struct TokenHashes {
    pub(crate) client: String,
    pub(crate) server: String,
    pub(crate) browser: String,
    /// The client and server tokens before the last rotation: a client that lost the `Conn`
    /// that rotated them logs in with these and is challenged (PROTOCOL.md §2.5).
    #[serde(default)]
    pub(crate) prev_client: String,
    #[serde(default)]
    pub(crate) prev_server: String,
}

/// The frame keys of an end-to-end client's socket (PROTOCOL.md §2.3), hex. A transport secret
/// between the client and the server, not a message key: message content is encrypted end to
/// end underneath.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(crate) struct FrameKeys {
    pub(crate) enc: String,
    pub(crate) mac: String,
}

impl std::fmt::Debug for FrameKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameKeys { .. }")
    }
}

impl FrameKeys {
    pub(crate) fn new(enc: &[u8; 32], mac: &[u8; 32]) -> FrameKeys {
        FrameKeys {
            enc: hex::encode(enc),
            mac: hex::encode(mac),
        }
    }

    pub(crate) fn session_keys(&self) -> Option<wa_crypto::SessionKeys> {
        let mut enc = zeroize::Zeroizing::new([0u8; 32]);
        let mut mac = zeroize::Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(&self.enc, &mut *enc).ok()?;
        hex::decode_to_slice(&self.mac, &mut *mac).ok()?;
        Some(wa_crypto::SessionKeys::new(&enc, &mac))
    }
}

/// A device of an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeviceRecord {
    pub(crate) number: String,
    pub(crate) device: u8,
    pub(crate) mode: DeviceMode,
    /// For web clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_id: Option<String>,
    #[serde(default)]
    pub(crate) browser: String,
    pub(crate) linked_at: u64,
    /// The last login (Unix seconds): tokens idle longer than `token_idle_ttl` expire.
    #[serde(default)]
    pub(crate) last_login: u64,
    /// End-to-end devices: their identity keys (the phone's are the account's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) identity: Option<IdentityKeys>,
    /// Linked end-to-end devices: the phone's signature over their identity keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) attestation: Option<Signature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tokens: Option<TokenHashes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) frame_keys: Option<FrameKeys>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fallback_key: Option<OneTimeKey>,
    /// One-time keys in the directory.
    #[serde(default)]
    pub(crate) one_time_keys: u32,
    /// Web clients: the SHA-256 (hex) of their logout token, to check a logout without a socket
    /// (PROTOCOL.md §2.6) — for mirror clients the server has no keys to compute it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) logout_hash: Option<String>,
}

impl DeviceRecord {
    /// A device with none of a web client's state (client id, browser, tokens, frame keys,
    /// keys in the directory), linked and last logged in at `at` (Unix seconds): a phone as it
    /// registers.
    pub(crate) fn bare(
        number: &str,
        device: u8,
        mode: DeviceMode,
        identity: Option<IdentityKeys>,
        at: u64,
    ) -> DeviceRecord {
        DeviceRecord {
            number: number.to_owned(),
            device,
            mode,
            client_id: None,
            browser: String::new(),
            linked_at: at,
            last_login: at,
            identity,
            attestation: None,
            tokens: None,
            frame_keys: None,
            fallback_key: None,
            one_time_keys: 0,
            logout_hash: None,
        }
    }

    pub(crate) fn address(&self) -> Jid {
        user_jid(&self.number).map_or_else(
            |_| Jid::server_only(wa_binary::Server::User),
            |u| device_jid(&u, self.device),
        )
    }

    /// Whether senders encrypt for it: the phone, and linked end-to-end devices with keys.
    pub(crate) fn is_endpoint(&self) -> bool {
        self.mode.is_endpoint(self.identity.is_some())
    }
}

pub(crate) fn account_key(number: &str) -> Vec<u8> {
    KeyBuf::new().str(number).build()
}

pub(crate) fn device_key(number: &str, device: u8) -> Vec<u8> {
    KeyBuf::new().str(number).u64(u64::from(device)).build()
}

pub(crate) fn client_key(client_id: &str) -> Vec<u8> {
    KeyBuf::new().str(client_id).build()
}

pub(crate) fn account(
    txn: &mut dyn ReadTxn,
    number: &str,
) -> Result<Option<AccountRecord>, StoreError> {
    get_json(txn, Table::Accounts, &account_key(number))
}

pub(crate) fn put_account(
    txn: &mut dyn WriteTxn,
    account: &AccountRecord,
) -> Result<(), StoreError> {
    put_json(txn, Table::Accounts, &account_key(&account.number), account)?;
    let devices = endpoints_among(txn, &account.number, &account.linked)?;
    put_endpoints(txn, &account.number, Some(&devices))
}

pub(crate) fn device(
    txn: &mut dyn ReadTxn,
    number: &str,
    device: u8,
) -> Result<Option<DeviceRecord>, StoreError> {
    get_json(txn, Table::Devices, &device_key(number, device))
}

/// Writes a device, keeping the browser-token index in step with its tokens.
pub(crate) fn put_device(txn: &mut dyn WriteTxn, record: &DeviceRecord) -> Result<(), StoreError> {
    let new = browser_hash(record);
    let before = device(txn, &record.number, record.device)?;
    let was_endpoint = before.as_ref().is_some_and(DeviceRecord::is_endpoint);
    let old = before.and_then(|old| browser_hash(&old));
    if let Some(old) = old.filter(|old| Some(old) != new.as_ref()) {
        txn.delete(Table::BrowserTokens, &browser_key(&old))?;
    }
    if let Some(new) = &new {
        put_json(
            txn,
            Table::BrowserTokens,
            &browser_key(new),
            &(record.number.clone(), record.device),
        )?;
    }
    put_json(
        txn,
        Table::Devices,
        &device_key(&record.number, record.device),
        record,
    )?;
    if was_endpoint != record.is_endpoint() {
        let devices = endpoint_devices(txn, &record.number)?;
        put_endpoints(txn, &record.number, devices.as_deref())?;
    }
    Ok(())
}

/// The hash of a device's current browser token, if it has one.
fn browser_hash(record: &DeviceRecord) -> Option<String> {
    record
        .tokens
        .as_ref()
        .map(|t| t.browser.clone())
        .filter(|h| !h.is_empty())
}

/// The index key of a browser token's hash.
pub(crate) fn browser_key(hash: &str) -> Vec<u8> {
    KeyBuf::new().str(hash).build()
}

/// The device whose current browser token hashes to `hash`.
pub(crate) fn device_by_browser(
    txn: &mut dyn ReadTxn,
    hash: &str,
) -> Result<Option<(String, u8)>, StoreError> {
    get_json(txn, Table::BrowserTokens, &browser_key(hash))
}

/// The device a client id is linked as.
pub(crate) fn client(
    txn: &mut dyn ReadTxn,
    client_id: &str,
) -> Result<Option<(String, u8)>, StoreError> {
    get_json(txn, Table::ClientIds, &client_key(client_id))
}

/// Every device of an account that senders encrypt for, the phone first.
pub(crate) fn endpoints(
    txn: &mut dyn ReadTxn,
    account: &AccountRecord,
) -> Result<Vec<DeviceRecord>, StoreError> {
    let mut out = Vec::with_capacity(account.linked.len() + 1);
    for d in account.devices() {
        if let Some(record) = device(txn, &account.number, d)?
            && record.is_endpoint()
        {
            out.push(record);
        }
    }
    Ok(out)
}

/// The version byte that starts an account's [`Table::Endpoints`] record; its device numbers
/// follow, one byte each, the phone first.
const ENDPOINTS_V1: u8 = 1;

/// Every address of an account that senders encrypt for, the phone first; `None` when there is
/// no such account. What a relay checks its targets against: the account's endpoints record
/// (a few bytes), or, for an account whose records an earlier version wrote, the account and
/// device records themselves.
pub(crate) fn endpoint_addresses(
    txn: &mut dyn ReadTxn,
    number: &str,
) -> Result<Option<Vec<Jid>>, StoreError> {
    let addresses = |devices: &[u8]| -> Result<Vec<Jid>, StoreError> {
        let user = user_jid(number).map_err(|e| StoreError::Corrupt {
            table: Table::Accounts.name(),
            detail: format!("account {number}: {e}"),
        })?;
        Ok(devices.iter().map(|&d| device_jid(&user, d)).collect())
    };
    // (The summary read in place.)
    let summary = read_with(txn, Table::Endpoints, &account_key(number), |bytes| {
        addresses(decode_endpoints(number, bytes)?)
    })?;
    match summary {
        Some(addresses) => addresses.map(Some),
        None => match endpoint_devices(txn, number)? {
            Some(devices) => addresses(&devices).map(Some),
            None => Ok(None),
        },
    }
}

/// The device numbers an endpoints record lists.
fn decode_endpoints<'a>(number: &str, bytes: &'a [u8]) -> Result<&'a [u8], StoreError> {
    match bytes.split_first() {
        // (Device numbers are bytes: more than 256 would name one twice.)
        Some((&ENDPOINTS_V1, devices)) if devices.len() <= 256 => Ok(devices),
        _ => Err(StoreError::Corrupt {
            table: Table::Endpoints.name(),
            detail: format!(
                "account {number}: an endpoints record of {} bytes, version {:?}",
                bytes.len(),
                bytes.first()
            ),
        }),
    }
}

/// The devices of an account that senders encrypt for, the phone first, from its account and
/// device records (what its endpoints record summarizes); `None` when there is no such
/// account. Only the fields it needs are decoded (keys and tokens are skipped, not parsed).
fn endpoint_devices(txn: &mut dyn ReadTxn, number: &str) -> Result<Option<Vec<u8>>, StoreError> {
    /// The part of an [`AccountRecord`] this reads.
    #[derive(Deserialize)]
    struct AccountHead {
        #[serde(default)]
        linked: Vec<u8>,
    }
    let Some(account) = get_json::<AccountHead>(txn, Table::Accounts, &account_key(number))? else {
        return Ok(None);
    };
    endpoints_among(txn, number, &account.linked).map(Some)
}

/// Which of an account's phone and `linked` devices senders encrypt for, the phone first,
/// from their device records.
fn endpoints_among(
    txn: &mut dyn ReadTxn,
    number: &str,
    linked: &[u8],
) -> Result<Vec<u8>, StoreError> {
    /// The part of a [`DeviceRecord`] this reads.
    #[derive(Deserialize)]
    struct DeviceHead {
        mode: DeviceMode,
        #[serde(default)]
        identity: Option<serde::de::IgnoredAny>,
    }
    let ids: Vec<u8> = std::iter::once(0).chain(linked.iter().copied()).collect();
    let keys: Vec<(Table, Vec<u8>)> = ids
        .iter()
        .map(|&d| (Table::Devices, device_key(number, d)))
        .collect();
    txn.prefetch(&keys)?;
    let mut out = Vec::with_capacity(ids.len());
    for (&d, (table, key)) in ids.iter().zip(&keys) {
        if let Some(head) = get_json::<DeviceHead>(txn, *table, key)?
            && head.mode.is_endpoint(head.identity.is_some())
        {
            out.push(d);
        }
    }
    Ok(out)
}

/// Writes an account's endpoints record (`None`: removes it, there being no account). Every
/// write of an account, and of a device that becomes or stops being an endpoint, rewrites it
/// from the records, in the same transaction.
fn put_endpoints(
    txn: &mut dyn WriteTxn,
    number: &str,
    devices: Option<&[u8]>,
) -> Result<(), StoreError> {
    let key = account_key(number);
    match devices {
        Some(devices) => {
            let mut record = Vec::with_capacity(1 + devices.len());
            record.push(ENDPOINTS_V1);
            record.extend_from_slice(devices);
            txn.put(Table::Endpoints, &key, &record)
        }
        None => txn.delete(Table::Endpoints, &key).map(drop),
    }
}

/// Removes a linked device: its record, client id, one-time keys and queued messages. Returns
/// it, if it existed.
pub(crate) fn unlink_device(
    txn: &mut dyn WriteTxn,
    number: &str,
    dev: u8,
) -> Result<Option<DeviceRecord>, StoreError> {
    let Some(record) = device(txn, number, dev)? else {
        return Ok(None);
    };
    txn.delete(Table::Devices, &device_key(number, dev))?;
    if let Some(hash) = browser_hash(&record) {
        txn.delete(Table::BrowserTokens, &browser_key(&hash))?;
    }
    if let Some(client_id) = &record.client_id {
        txn.delete(Table::ClientIds, &client_key(client_id))?;
    }
    let prefix = device_key(number, dev);
    for (key, _) in scan(txn, Table::OneTimeKeys, &prefix, usize::MAX)? {
        txn.delete(Table::OneTimeKeys, &key)?;
    }
    drop_inbox(txn, &record.address())?;
    if let Some(mut account) = account(txn, number)? {
        account.linked.retain(|d| *d != dev);
        put_account(txn, &account)?;
    }
    Ok(Some(record))
}

// ---- Timers -----------------------------------------------------------------------------------

fn timer_key(expires_ms: u64, table: Table, key: &[u8]) -> Vec<u8> {
    let mut out = KeyBuf::new()
        .u64(expires_ms)
        .u64(table.index() as u64)
        .build();
    out.extend_from_slice(key);
    out
}

/// Writes a short-lived record and its timer.
pub(crate) fn put_expiring<T: Serialize>(
    txn: &mut dyn WriteTxn,
    table: Table,
    key: &[u8],
    value: &T,
    expires_ms: u64,
) -> Result<(), StoreError> {
    put_json(txn, table, key, value)?;
    txn.put(Table::Timers, &timer_key(expires_ms, table, key), &[])
}

/// Forgets the timer of a record that is replaced or deleted before it expires.
pub(crate) fn forget_timer(
    txn: &mut dyn WriteTxn,
    expires_ms: u64,
    table: Table,
    key: &[u8],
) -> Result<(), StoreError> {
    txn.delete(Table::Timers, &timer_key(expires_ms, table, key))
        .map(drop)
}

/// Deletes what expired before `now_ms` (at most `batch`): the records the timers name.
pub(crate) fn sweep_timers(
    txn: &mut dyn WriteTxn,
    now_ms: u64,
    batch: usize,
) -> Result<u64, StoreError> {
    let end = KeyBuf::new().u64(now_ms).build();
    let mut swept = 0;
    for (timer, _) in txn.range(Table::Timers, &[], &end, false, batch)? {
        txn.delete(Table::Timers, &timer)?;
        let Some((head, key)) = timer.split_at_checked(16) else {
            continue;
        };
        let mut reader = KeyReader::new(head);
        let table = reader
            .u64()
            .and_then(|_| reader.u64())
            .and_then(|i| Table::ALL.get(usize::try_from(i).ok()?).copied());
        if let Some(table) = table {
            txn.delete(table, key)?;
            swept += 1;
        }
    }
    Ok(swept)
}

// ---- Linking and registration ----------------------------------------------------------------

/// A QR ref waiting for a scan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RefRecord {
    pub(crate) client_id: String,
    pub(crate) browser: String,
    /// An end-to-end client's identity keys, as announced in `admin init`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) identity: Option<IdentityKeys>,
    /// When it stops being scannable (ms).
    pub(crate) expires: u64,
    /// Set once a phone approved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) approved_by: Option<String>,
}

pub(crate) fn ref_key(r: &str) -> Vec<u8> {
    KeyBuf::new().str(r).build()
}

/// A registration code waiting to be verified.
#[derive(Debug, Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(crate) struct CodeRecord {
    /// SHA-256 (hex) of the number and the code.
    pub(crate) hash: String,
    /// When it expires (ms).
    pub(crate) expires: u64,
    /// Wrong guesses so far.
    pub(crate) attempts: u32,
    /// When codes were sent for this number (ms), the last hour's: at most a few an hour.
    #[serde(default)]
    pub(crate) sent: Vec<u64>,
}

// ---- Messages ---------------------------------------------------------------------------------

/// A message: its metadata, and the group body (Megolm ciphertext, the same for every member
/// device) until every device has it. Per-device ciphertexts are in the inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MessageRecord {
    pub(crate) id: String,
    pub(crate) sender: String,
    pub(crate) sender_device: u8,
    /// The chat as the sender addressed it: the recipient user, or the group.
    pub(crate) chat: Jid,
    pub(crate) t: u64,
    /// When it (or, once delivered everywhere, its receipt bookkeeping) expires (Unix seconds).
    pub(crate) expires: u64,
    pub(crate) kind: ContentKind,
    /// The group body, dropped once every device has it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "b64_opt")]
    pub(crate) body: Option<Vec<u8>>,
    /// Where the recipient's receipt state is kept, in a chat with a user.
    #[serde(skip)]
    pub(crate) receipt: ReceiptSlot,
    /// The devices it was queued for, in a chat with a user (binary version 3): they have no
    /// entries in [`Table::MsgDevices`], two writes fewer per copy. `None`: group messages,
    /// whose devices can be many, and records of earlier versions have those entries.
    #[serde(skip)]
    pub(crate) devices: Option<Vec<Jid>>,
}

/// Where a message to a user keeps how far it got with them. A group's members each have an
/// entry in [`Table::Receipts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum ReceiptSlot {
    /// In [`Table::Receipts`], as records of earlier versions (JSON, binary version 1) kept it.
    #[default]
    InTable,
    /// In the record itself (binary version 2): one record fewer kept per message for the
    /// receipts' 30 days, and no read of that table on a receipt.
    Inline(Option<ReceiptState>),
}

impl MessageRecord {
    /// The first byte of the binary form (a JSON record, as earlier versions wrote, starts
    /// with `{`): version 1 keeps its receipt state in [`Table::Receipts`], version 2 in the
    /// record.
    const VERSION: u8 = 1;
    const VERSION_INLINE: u8 = 2;
    const VERSION_DEVICES: u8 = 3;

    /// The most devices a record lists (a chat with a user has the two accounts' few
    /// devices; more are indexed).
    pub(crate) const MAX_DEVICES: usize = u8::MAX as usize;

    /// The stored form, without the group body (in [`Table::Bodies`]):
    /// `[1][t: u64 BE][expires: u64 BE][sender device: u8]`, or
    /// `[2][t][expires][sender device][receipt: 0 none | 1 delivered | 2 read]`, or
    /// `[3][t][expires][sender device][receipt][device count: u8]` and each device, then the id,
    /// the sender, the chat and the kind, each (as the devices) `[length: u16 BE][UTF-8]`. Read and written on
    /// every relay and receipt: binary, because JSON cost more than the rest of the record's
    /// handling.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        /// Appends `[length: u16 BE][text]`.
        fn put(out: &mut Vec<u8>, text: &str) -> Result<(), StoreError> {
            let len = u16::try_from(text.len()).map_err(|_| {
                StoreError::Backend(format!("a message field of {} bytes", text.len()))
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
            Ok(())
        }
        let devices = self.devices.as_deref().unwrap_or_default();
        // (A device's address is at most 40 bytes or so; a group's, 60.)
        let mut out = Vec::with_capacity(
            112 + self.id.len() + self.sender.len() + self.kind.as_str().len() + 48 * devices.len(),
        );
        out.push(match (self.receipt, &self.devices) {
            (ReceiptSlot::InTable, None) => Self::VERSION,
            (ReceiptSlot::Inline(_), None) => Self::VERSION_INLINE,
            (ReceiptSlot::Inline(_), Some(_)) => Self::VERSION_DEVICES,
            (ReceiptSlot::InTable, Some(_)) => {
                return Err(StoreError::Backend(
                    "a message record that lists its devices keeps its receipt state".to_owned(),
                ));
            }
        });
        out.extend_from_slice(&self.t.to_be_bytes());
        out.extend_from_slice(&self.expires.to_be_bytes());
        out.push(self.sender_device);
        if let ReceiptSlot::Inline(state) = self.receipt {
            out.push(state.map_or(0, |s| s as u8));
        }
        if self.devices.is_some() {
            let count = u8::try_from(devices.len()).map_err(|_| {
                StoreError::Backend(format!("a message record of {} devices", devices.len()))
            })?;
            out.push(count);
        }
        // The devices, the id, the sender, the chat, the kind: addresses written from the
        // stack, not copied into strings first.
        for device in devices {
            device.with_wire_text(|text| put(&mut out, text))?;
        }
        put(&mut out, &self.id)?;
        put(&mut out, &self.sender)?;
        self.chat.with_wire_text(|text| put(&mut out, text))?;
        put(&mut out, self.kind.as_str())?;
        Ok(out)
    }

    /// Reads either form.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<MessageRecord, String> {
        match bytes.split_first() {
            Some((
                &version @ (Self::VERSION | Self::VERSION_INLINE | Self::VERSION_DEVICES),
                rest,
            )) => {
                let short = || "a message record shorter than its header".to_owned();
                let (t, rest) = rest.split_first_chunk::<8>().ok_or_else(short)?;
                let (expires, rest) = rest.split_first_chunk::<8>().ok_or_else(short)?;
                let (&sender_device, mut rest) = rest.split_first().ok_or_else(short)?;
                let receipt = if version != Self::VERSION {
                    let (&state, after) = rest.split_first().ok_or_else(short)?;
                    rest = after;
                    ReceiptSlot::Inline(match state {
                        0 => None,
                        1 => Some(ReceiptState::Delivered),
                        2 => Some(ReceiptState::Read),
                        other => return Err(format!("a message record's receipt state {other}")),
                    })
                } else {
                    ReceiptSlot::InTable
                };
                let count = if version == Self::VERSION_DEVICES {
                    let (&count, after) = rest.split_first().ok_or_else(short)?;
                    rest = after;
                    Some(count)
                } else {
                    None
                };
                // Each text borrowed from the record: addresses are parsed from it, and only
                // the id and the sender are copied.
                let mut text = |what: &str| -> Result<&str, String> {
                    let (len, after) = rest
                        .split_first_chunk::<2>()
                        .ok_or_else(|| format!("a message record cut short before its {what}"))?;
                    let len = usize::from(u16::from_be_bytes(*len));
                    let (text, after) = after
                        .split_at_checked(len)
                        .ok_or_else(|| format!("a message record's {what} runs past its end"))?;
                    rest = after;
                    std::str::from_utf8(text)
                        .map_err(|_| format!("a message record's {what} is not UTF-8"))
                };
                let devices = if let Some(count) = count {
                    let mut devices = Vec::with_capacity(usize::from(count));
                    for _ in 0..count {
                        let device = text("device")?
                            .parse()
                            .map_err(|e| format!("a message record's device: {e}"))?;
                        devices.push(device);
                    }
                    Some(devices)
                } else {
                    None
                };
                let id = text("id")?.to_owned();
                let sender = text("sender")?.to_owned();
                let chat = text("chat")?
                    .parse()
                    .map_err(|e| format!("a message record's chat: {e}"))?;
                let kind = ContentKind::from(text("kind")?);
                if !rest.is_empty() {
                    return Err("a message record with bytes after its kind".to_owned());
                }
                Ok(MessageRecord {
                    id,
                    sender,
                    sender_device,
                    chat,
                    t: u64::from_be_bytes(*t),
                    expires: u64::from_be_bytes(*expires),
                    kind,
                    body: None,
                    receipt,
                    devices,
                })
            }
            Some((b'{', _)) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            _ => Err("a message record of an unknown version".to_owned()),
        }
    }
}

/// One device's entry for a message: its own ciphertext, if the sender made one for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InboxRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) olm: Option<OlmPayload>,
    /// What this entry counts against its account's quota (its ciphertext and the group body).
    #[serde(default)]
    pub(crate) size: u64,
}

impl InboxRecord {
    /// The first byte of the binary form (a JSON record, as earlier versions wrote, starts
    /// with `{`).
    const VERSION: u8 = 1;

    /// The stored form: `[1][size: u64 BE][0 none | 1 pkmsg | 2 msg][the Olm bytes, raw]`:
    /// the ciphertext as it came, not base64 in JSON (a third smaller, and no encoding work).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let body = self.olm.as_ref().map_or(&[][..], |o| o.body.as_slice());
        let mut out = Vec::with_capacity(10 + body.len());
        out.push(Self::VERSION);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.push(match self.olm.as_ref().map(|o| o.kind) {
            None => 0,
            Some(OlmType::PreKey) => 1,
            Some(OlmType::Normal) => 2,
        });
        out.extend_from_slice(body);
        out
    }

    /// What the entry counts against its account's quota, read without copying its
    /// ciphertext.
    pub(crate) fn size_of(bytes: &[u8]) -> Result<u64, String> {
        match bytes.split_first() {
            Some((&Self::VERSION, rest)) => rest
                .first_chunk::<8>()
                .map(|size| u64::from_be_bytes(*size))
                .ok_or_else(|| "an inbox record shorter than its header".to_owned()),
            _ => Self::from_bytes(bytes).map(|record| record.size),
        }
    }

    /// Reads either form.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<InboxRecord, String> {
        match bytes.split_first() {
            Some((&Self::VERSION, rest)) => {
                let (size, rest) = rest
                    .split_first_chunk::<8>()
                    .ok_or("an inbox record shorter than its header")?;
                let (&kind, body) = rest
                    .split_first()
                    .ok_or("an inbox record shorter than its header")?;
                let kind = match kind {
                    0 if body.is_empty() => None,
                    0 => return Err("an inbox record with bytes but no ciphertext kind".into()),
                    1 => Some(OlmType::PreKey),
                    2 => Some(OlmType::Normal),
                    other => return Err(format!("an inbox record of unknown kind {other}")),
                };
                Ok(InboxRecord {
                    olm: kind.map(|kind| OlmPayload {
                        kind,
                        body: body.to_vec(),
                    }),
                    size: u64::from_be_bytes(*size),
                })
            }
            Some((b'{', _)) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            _ => Err("an inbox record of an unknown version".to_owned()),
        }
    }
}

/// Per device of an account, a count of its inbox entries, by device number. Stored as
/// `[n][(device, count u64 BE) × n]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DeviceCounts(Vec<(u8, u64)>);

impl DeviceCounts {
    /// The count of `device` (0 when it has none).
    pub(crate) fn get(&self, device: u8) -> u64 {
        self.0
            .binary_search_by_key(&device, |(d, _)| *d)
            .ok()
            .and_then(|i| self.0.get(i))
            .map_or(0, |(_, n)| *n)
    }

    /// Adds `n` to the count of `device`.
    pub(crate) fn add(&mut self, device: u8, n: u64) {
        match self.0.binary_search_by_key(&device, |(d, _)| *d) {
            Ok(i) => {
                if let Some((_, count)) = self.0.get_mut(i) {
                    *count = count.saturating_add(n);
                }
            }
            Err(i) => self.0.insert(i, (device, n)),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        // At most 256 devices: one per device number.
        out.push(u8::try_from(self.0.len()).unwrap_or(u8::MAX));
        for (device, count) in self.0.iter().take(usize::from(u8::MAX)) {
            out.push(*device);
            out.extend_from_slice(&count.to_be_bytes());
        }
    }

    /// Reads the counts at the start of `bytes`; the rest.
    fn read(bytes: &[u8]) -> Result<(DeviceCounts, &[u8]), String> {
        let (&n, mut rest) = bytes.split_first().ok_or("device counts: no length byte")?;
        let mut counts = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let (&device, after) = rest.split_first().ok_or("device counts: cut short")?;
            let (count, after) = after
                .split_first_chunk::<8>()
                .ok_or("device counts: cut short")?;
            if counts.last().is_some_and(|(last, _)| *last >= device) {
                return Err("device counts: devices out of order".to_owned());
            }
            counts.push((device, u64::from_be_bytes(*count)));
            rest = after;
        }
        Ok((DeviceCounts(counts), rest))
    }
}

/// An account's quota counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Counters {
    /// Bytes of ciphertext ever queued for the account's devices; less what was given back
    /// (a record of its own, [`Released`]), what waits for them: [`Released::waiting_bytes`].
    /// (Stored under its earlier name.)
    #[serde(default, rename = "pending_bytes")]
    pub(crate) queued_bytes: u64,
    /// The day (Unix days) `sent_bytes` counts.
    #[serde(default)]
    pub(crate) day: u64,
    /// Bytes of ciphertext the account sent that day.
    #[serde(default)]
    pub(crate) sent_bytes: u64,
    /// Per device, the messages ever queued for it (records of earlier versions have none);
    /// less those given back, what waits: [`Released::waiting_entries`].
    #[serde(skip)]
    pub(crate) queued_entries: DeviceCounts,
}

impl Counters {
    /// The first byte of the binary form without entry counts (a JSON record, as earlier
    /// versions wrote, starts with `{`).
    const V1: u8 = 1;
    /// The first byte of the binary form.
    const VERSION: u8 = 2;

    /// The stored form: `[2][queued bytes][day][sent bytes]`, each a u64 BE, then the queued
    /// entries per device. Read and written by every relay.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(26 + 9 * self.queued_entries.0.len());
        out.push(Self::VERSION);
        out.extend_from_slice(&self.queued_bytes.to_be_bytes());
        out.extend_from_slice(&self.day.to_be_bytes());
        out.extend_from_slice(&self.sent_bytes.to_be_bytes());
        self.queued_entries.write(&mut out);
        out
    }

    /// Reads any form.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Counters, String> {
        let wrong = || format!("a counters record of {} bytes", bytes.len());
        match bytes.split_first() {
            Some((&version @ (Self::V1 | Self::VERSION), rest)) => {
                let (queued, rest) = rest.split_first_chunk::<8>().ok_or_else(wrong)?;
                let (day, rest) = rest.split_first_chunk::<8>().ok_or_else(wrong)?;
                let (sent, rest) = rest.split_first_chunk::<8>().ok_or_else(wrong)?;
                let (queued_entries, rest) = if version == Self::V1 {
                    (DeviceCounts::default(), rest)
                } else {
                    DeviceCounts::read(rest)?
                };
                if !rest.is_empty() {
                    return Err(format!("{}: {} bytes too many", wrong(), rest.len()));
                }
                Ok(Counters {
                    queued_bytes: u64::from_be_bytes(*queued),
                    day: u64::from_be_bytes(*day),
                    sent_bytes: u64::from_be_bytes(*sent),
                    queued_entries,
                })
            }
            Some((b'{', _)) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            _ => Err("a counters record of an unknown version".to_owned()),
        }
    }
}

/// What an account's devices were given back of its quotas as messages left their inboxes
/// (delivered, expired or dropped): bytes, and per device entries. Stored as `[bytes u64 BE]`
/// then the entries per device (earlier versions: the bytes only).
///
/// A record of its own, which only the account's own receipts (and expiry) write, while relays
/// write [`Counters`]: in a cluster, a receipt and a relay to the same account then do not both
/// read and write one record (a serialization conflict between nodes for every such pair).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Released {
    pub(crate) bytes: u64,
    pub(crate) entries: DeviceCounts,
}

impl Released {
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + 9 * self.entries.0.len());
        out.extend_from_slice(&self.bytes.to_be_bytes());
        self.entries.write(&mut out);
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Released, String> {
        let (released, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| format!("{} bytes, not 8 or more", bytes.len()))?;
        let entries = if rest.is_empty() {
            DeviceCounts::default()
        } else {
            match DeviceCounts::read(rest)? {
                (entries, []) => entries,
                (_, extra) => return Err(format!("{} bytes too many", extra.len())),
            }
        };
        Ok(Released {
            bytes: u64::from_be_bytes(*released),
            entries,
        })
    }

    /// The bytes waiting for the account's devices: what was queued for them less what was
    /// given back.
    pub(crate) fn waiting_bytes(&self, counters: &Counters) -> u64 {
        counters.queued_bytes.saturating_sub(self.bytes)
    }

    /// The messages waiting for `device`. (Entries queued by a version that did not count them
    /// are given back all the same: until they are gone, this may count fewer than wait.)
    pub(crate) fn waiting_entries(&self, counters: &Counters, device: u8) -> u64 {
        counters
            .queued_entries
            .get(device)
            .saturating_sub(self.entries.get(device))
    }
}

pub(crate) fn counters(txn: &mut dyn ReadTxn, number: &str) -> Result<Counters, StoreError> {
    match read_with(
        txn,
        Table::Counters,
        &account_key(number),
        Counters::from_bytes,
    )? {
        None => Ok(Counters::default()),
        Some(counters) => counters.map_err(|detail| StoreError::Corrupt {
            table: Table::Counters.name(),
            detail,
        }),
    }
}

pub(crate) fn put_counters(
    txn: &mut dyn WriteTxn,
    number: &str,
    counters: &Counters,
) -> Result<(), StoreError> {
    txn.put(Table::Counters, &account_key(number), &counters.to_bytes())
}

/// Gives an inbox entry of `size` bytes back to the quotas of `device`'s account: it left
/// the inbox (delivered, expired or dropped).
fn release_entry(txn: &mut dyn WriteTxn, device: &Jid, size: u64) -> Result<(), StoreError> {
    let Some(number) = number_of(device) else {
        return Ok(());
    };
    let mut released = released(txn, number)?;
    released.bytes = released.bytes.saturating_add(size);
    released.entries.add(wa_wire::ids::device_of(device), 1);
    txn.put(Table::Counters, &released_key(number), &released.to_bytes())
}

pub(crate) fn released_key(number: &str) -> Vec<u8> {
    KeyBuf::new().str(number).str("released").build()
}

/// What was given back to `number`'s quotas so far.
pub(crate) fn released(txn: &mut dyn ReadTxn, number: &str) -> Result<Released, StoreError> {
    match read_with(
        txn,
        Table::Counters,
        &released_key(number),
        Released::from_bytes,
    )? {
        None => Ok(Released::default()),
        Some(released) => released.map_err(|e| StoreError::Corrupt {
            table: Table::Counters.name(),
            detail: format!("what was given back to {number}: {e}"),
        }),
    }
}

/// Removes a device's inbox entry and gives its bytes back to the account's quota; whether
/// it was there.
fn take_inbox_entry(txn: &mut dyn WriteTxn, device: &Jid, seq: u64) -> Result<bool, StoreError> {
    let key = inbox_key(device, seq);
    let Some(size) = read_with(txn, Table::Inbox, &key, InboxRecord::size_of)? else {
        return Ok(false);
    };
    let size = size.map_err(|detail| StoreError::Corrupt {
        table: Table::Inbox.name(),
        detail,
    })?;
    txn.delete(Table::Inbox, &key)?;
    release_entry(txn, device, size)?;
    Ok(true)
}

/// How far a message got with one recipient account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ReceiptState {
    Delivered = 1,
    Read = 2,
}

pub(crate) fn message_key(seq: u64) -> Vec<u8> {
    KeyBuf::new().u64(seq).build()
}

pub(crate) fn inbox_prefix(device: &Jid) -> Vec<u8> {
    device.with_wire_text(|text| KeyBuf::new().str(text).build())
}

pub(crate) fn inbox_key(device: &Jid, seq: u64) -> Vec<u8> {
    device.with_wire_text(|text| KeyBuf::new().str(text).u64(seq).build())
}

pub(crate) fn msg_device_key(seq: u64, device: &Jid) -> Vec<u8> {
    device.with_wire_text(|text| KeyBuf::new().u64(seq).str(text).build())
}

pub(crate) fn receipt_key(seq: u64, number: &str) -> Vec<u8> {
    KeyBuf::new().u64(seq).str(number).build()
}

pub(crate) fn sent_key(sender: &str, id: &str) -> Vec<u8> {
    KeyBuf::new().str(sender).str(id).build()
}

/// The expiry entry of message `seq` alone (a message whose expiry moved; every message, in
/// earlier versions).
pub(crate) fn expiry_key(expires: u64, seq: u64) -> Vec<u8> {
    KeyBuf::new().u64(expires).u64(seq).build()
}

/// Message numbers per block of [`expiry_block_key`].
pub(crate) const EXPIRY_BLOCK: u64 = 256;

/// Seconds per step of a block's expiry: its messages expire up to this much late.
pub(crate) const EXPIRY_STEP: u64 = 60;

/// The top bit of an expiry key's second number: a block of message numbers, not one.
const BLOCK_FLAG: u64 = 1 << 63;

/// The expiry entry shared by the messages numbered in `seq`'s block of [`EXPIRY_BLOCK`]
/// that expire in the same [`EXPIRY_STEP`] (keyed by that step's end, so never early): a new
/// message's entry is a blind write to a key its neighbours wrote already, so a busy server
/// keeps one entry per block instead of one per message. The sweep looks at each number of
/// the block. (Message numbers stay below 2⁶³: PostgreSQL's sequences are signed.)
pub(crate) fn expiry_block_key(expires: u64, seq: u64) -> Vec<u8> {
    let step_end = expires.div_ceil(EXPIRY_STEP).saturating_mul(EXPIRY_STEP);
    KeyBuf::new()
        .u64(step_end)
        .u64(BLOCK_FLAG | (seq / EXPIRY_BLOCK))
        .build()
}

/// What an expiry entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiring {
    /// One message.
    One(u64),
    /// The messages numbered `from..end` (the rest of a block, its value saying where a sweep
    /// stopped).
    Block { from: u64, end: u64 },
}

impl Expiring {
    /// Reads an entry of [`Table::Expiry`]; `None` if it is not one.
    pub(crate) fn of(key: &[u8], value: &[u8]) -> Option<Expiring> {
        let mut reader = KeyReader::new(key);
        let _expires = reader.u64()?;
        let second = reader.u64()?;
        if second & BLOCK_FLAG == 0 {
            return Some(Expiring::One(second));
        }
        let first = (second & !BLOCK_FLAG).checked_mul(EXPIRY_BLOCK)?;
        let end = first.checked_add(EXPIRY_BLOCK)?;
        let from = match <[u8; 8]>::try_from(value) {
            Ok(resume) => u64::from_be_bytes(resume).clamp(first, end),
            Err(_) => first,
        };
        Some(Expiring::Block { from, end })
    }
}

/// Message `seq`'s record, without its group body (see [`message_body`]).
pub(crate) fn message(
    txn: &mut dyn ReadTxn,
    seq: u64,
) -> Result<Option<MessageRecord>, StoreError> {
    read_with(
        txn,
        Table::Messages,
        &message_key(seq),
        MessageRecord::from_bytes,
    )?
    .map(|record| {
        record.map_err(|detail| StoreError::Corrupt {
            table: Table::Messages.name(),
            detail,
        })
    })
    .transpose()
}

/// Message `seq`'s group body, while some device still has to get it: from the bodies table,
/// or from the record itself (records written before the bodies table kept it inline).
pub(crate) fn message_body(
    txn: &mut dyn ReadTxn,
    seq: u64,
    record: &MessageRecord,
) -> Result<Option<Vec<u8>>, StoreError> {
    if record.body.is_some() {
        return Ok(record.body.clone());
    }
    txn.get(Table::Bodies, &message_key(seq))
}

/// Writes message `seq`: the record, and its group body (if any) raw in the bodies table.
pub(crate) fn put_message(
    txn: &mut dyn WriteTxn,
    seq: u64,
    record: &MessageRecord,
) -> Result<(), StoreError> {
    if let Some(body) = &record.body {
        txn.put(Table::Bodies, &message_key(seq), body)?;
    }
    txn.put(Table::Messages, &message_key(seq), &record.to_bytes()?)
}

/// Stores new message `seq` (just handed out by [`next_seq`]) and when it expires.
pub(crate) fn insert_message(
    txn: &mut dyn WriteTxn,
    seq: u64,
    record: &MessageRecord,
) -> Result<(), StoreError> {
    let key = message_key(seq);
    if let Some(body) = &record.body {
        txn.insert(Table::Bodies, &key, body)?;
    }
    txn.insert(Table::Messages, &key, &record.to_bytes()?)?;
    txn.put(Table::Expiry, &expiry_block_key(record.expires, seq), &[])
}

/// The next message sequence number (the store's counter: [`WriteTxn::next_seq`]).
pub(crate) fn next_seq(txn: &mut dyn WriteTxn) -> Result<u64, StoreError> {
    txn.next_seq()
}

/// The sequence number of message `id` of `sender`.
pub(crate) fn sent_seq(
    txn: &mut dyn ReadTxn,
    sender: &str,
    id: &str,
) -> Result<Option<u64>, StoreError> {
    Ok(
        read_with(txn, Table::SentIds, &sent_key(sender, id), |bytes| {
            bytes.first_chunk::<8>().copied()
        })?
        .flatten()
        .map(u64::from_be_bytes),
    )
}

/// Queues a message for a device; `indexed`: in [`Table::MsgDevices`] too (a message whose
/// record does not list its devices).
pub(crate) fn enqueue(
    txn: &mut dyn WriteTxn,
    device: &Jid,
    seq: u64,
    entry: &InboxRecord,
    indexed: bool,
) -> Result<(), StoreError> {
    txn.insert(Table::Inbox, &inbox_key(device, seq), &entry.to_bytes())?;
    if indexed {
        txn.insert(Table::MsgDevices, &msg_device_key(seq, device), &[])?;
    }
    Ok(())
}

/// Why a device's entry comes off a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retired {
    /// The device has the message (its receipt), or nobody has to get it.
    Received,
    /// The device is gone (unlinked, or its phone registered anew) without it.
    Dropped,
}

/// Takes one device's entry off a message (its bytes back to the account's pending quota);
/// whether it was there. When it was the last, the group body goes and the record's expiry
/// moves to `receipts_until` (Unix seconds) if that is sooner. `known` is the message's
/// record, if the caller has read it: it is updated as the stored one is.
///
/// A device whose entry is dropped also leaves the devices the record lists: of a listed
/// device, a missing entry means it received the message (see [`delivered_before`]).
pub(crate) fn retire(
    txn: &mut dyn WriteTxn,
    device: &Jid,
    seq: u64,
    receipts_until: u64,
    known: Option<&mut MessageRecord>,
    why: Retired,
) -> Result<bool, StoreError> {
    if !take_inbox_entry(txn, device, seq)? {
        return Ok(false);
    }
    let mut read = None;
    let record = match known {
        Some(record) => record,
        None => match read.insert(message(txn, seq)?) {
            Some(record) => record,
            None => {
                // No record (a crash of an earlier version between writes): its index too.
                txn.remove(Table::MsgDevices, &msg_device_key(seq, device))?;
                return Ok(true);
            }
        },
    };
    if record.devices.is_none() {
        txn.remove(Table::MsgDevices, &msg_device_key(seq, device))?;
    }
    let mut unlisted = false;
    if why == Retired::Dropped
        && let Some(devices) = record.devices.as_mut()
    {
        let before = devices.len();
        devices.retain(|d| d != device);
        unlisted = devices.len() != before;
    }
    // When the last device changes nothing (the usual case of a message to a user), there is
    // no need to look at the other devices.
    if !last_device_matters(record, receipts_until) {
        if unlisted {
            put_message(txn, seq, record)?;
        }
        return Ok(true);
    }
    let others_waiting = match &record.devices {
        Some(devices) => {
            let mut any = false;
            for other in devices.iter().filter(|d| *d != device) {
                if has(txn, Table::Inbox, &inbox_key(other, seq))? {
                    any = true;
                    break;
                }
            }
            any
        }
        None => {
            let prefix = KeyBuf::new().u64(seq).build();
            !scan(txn, Table::MsgDevices, &prefix, 1)?.is_empty()
        }
    };
    if others_waiting {
        return Ok(true);
    }
    // Delivered everywhere: nothing of the content stays. Only group messages have a body in
    // the bodies table; a record from before that table may carry its body inline.
    let inline_body = record.body.take().is_some();
    // (Not a chat with a user: `Chat::from_jid` would not read it as `Chat::User`.)
    if number_of(&record.chat).is_none() {
        txn.delete(Table::Bodies, &message_key(seq))?;
    }
    // The bookkeeping stays for receipts until `receipts_until`, if that comes first (with
    // the default settings it does not: the record is left as it is).
    let expires = record.expires.min(receipts_until);
    let moved = expires != record.expires;
    if moved {
        // An entry of its own (its block's, at the later time, finds it gone).
        txn.remove(Table::Expiry, &expiry_key(record.expires, seq))?;
        txn.put(Table::Expiry, &expiry_key(expires, seq), &[])?;
        record.expires = expires;
    }
    if moved || inline_body || unlisted {
        put_message(txn, seq, record)?;
    }
    Ok(true)
}

/// Whether a message to a user that lists its devices reached a device of account `number`
/// before this receipt: a device it lists that no longer has its entry (a dropped device
/// leaves the list, see [`retire`]). `retired` is whether this receipt's device, `device`,
/// just gave its entry up (then it does not count). `None` when the record does not list its
/// devices (the state must then be written).
pub(crate) fn delivered_before(
    txn: &mut dyn ReadTxn,
    record: &MessageRecord,
    seq: u64,
    number: &str,
    device: &Jid,
    retired: bool,
) -> Result<Option<bool>, StoreError> {
    let Some(devices) = &record.devices else {
        return Ok(None);
    };
    for listed in devices
        .iter()
        .filter(|d| number_of(d) == Some(number) && !(retired && *d == device))
    {
        if !has(txn, Table::Inbox, &inbox_key(listed, seq))? {
            return Ok(Some(true));
        }
    }
    Ok(Some(false))
}

/// Whether the last device to take a message off its queue changes `record` (see
/// [`retire`]): a group message's body goes (as does a body kept inline by earlier versions),
/// and the record's expiry moves to `receipts_until` if that is sooner.
fn last_device_matters(record: &MessageRecord, receipts_until: u64) -> bool {
    record.body.is_some() || number_of(&record.chat).is_none() || receipts_until < record.expires
}

/// How far message `seq` got with account `number`.
pub(crate) fn receipt_state(
    txn: &mut dyn ReadTxn,
    seq: u64,
    number: &str,
) -> Result<Option<ReceiptState>, StoreError> {
    Ok(
        match txn
            .get(Table::Receipts, &receipt_key(seq, number))?
            .as_deref()
        {
            Some([1]) => Some(ReceiptState::Delivered),
            Some([2]) => Some(ReceiptState::Read),
            _ => None,
        },
    )
}

pub(crate) fn set_receipt_state(
    txn: &mut dyn WriteTxn,
    seq: u64,
    number: &str,
    state: ReceiptState,
) -> Result<(), StoreError> {
    txn.put(Table::Receipts, &receipt_key(seq, number), &[state as u8])
}

/// Deletes a message with everything that points at it but its block's expiry entry (see
/// [`expiry_block_key`]), which its sweep deletes.
pub(crate) fn delete_message(
    txn: &mut dyn WriteTxn,
    seq: u64,
    record: &MessageRecord,
) -> Result<(), StoreError> {
    let prefix = KeyBuf::new().u64(seq).build();
    for device in record.devices.iter().flatten() {
        take_inbox_entry(txn, device, seq)?;
    }
    for (key, _) in scan(txn, Table::MsgDevices, &prefix, usize::MAX)? {
        let mut reader = KeyReader::new(&key);
        let device = reader
            .u64()
            .and_then(|_| reader.str())
            .and_then(|d| d.parse::<Jid>().ok());
        if let Some(device) = device {
            take_inbox_entry(txn, &device, seq)?;
        }
        txn.delete(Table::MsgDevices, &key)?;
    }
    for (key, _) in scan(txn, Table::Receipts, &prefix, usize::MAX)? {
        txn.delete(Table::Receipts, &key)?;
    }
    txn.delete(Table::Messages, &message_key(seq))?;
    txn.delete(Table::Bodies, &message_key(seq))?;
    if sent_seq(txn, &record.sender, &record.id)? == Some(seq) {
        txn.delete(Table::SentIds, &sent_key(&record.sender, &record.id))?;
    }
    // An entry of its own: a message whose expiry moved, or of an earlier version.
    txn.remove(Table::Expiry, &expiry_key(record.expires, seq))?;
    Ok(())
}

/// Drops every queued message of a device (unlinked).
pub(crate) fn drop_inbox(txn: &mut dyn WriteTxn, device: &Jid) -> Result<(), StoreError> {
    let prefix = inbox_prefix(device);
    let until = u64::MAX;
    for (key, _) in scan(txn, Table::Inbox, &prefix, usize::MAX)? {
        let mut reader = KeyReader::new(&key);
        if let Some(seq) = reader.str().and_then(|_| reader.u64()) {
            retire(txn, device, seq, until, None, Retired::Dropped)?;
        } else {
            txn.delete(Table::Inbox, &key)?;
        }
    }
    Ok(())
}

// ---- Groups -----------------------------------------------------------------------------------

/// A group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GroupRecord {
    pub(crate) jid: Jid,
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

pub(crate) fn group_key(jid: &Jid) -> Vec<u8> {
    KeyBuf::new().str(&jid.to_string()).build()
}

pub(crate) fn member_group_key(number: &str, jid: &Jid) -> Vec<u8> {
    KeyBuf::new().str(number).str(&jid.to_string()).build()
}

pub(crate) fn group(txn: &mut dyn ReadTxn, jid: &Jid) -> Result<Option<GroupRecord>, StoreError> {
    get_json(txn, Table::Groups, &group_key(jid))
}

/// The groups an account is a member of.
pub(crate) fn groups_of(
    txn: &mut dyn ReadTxn,
    number: &str,
    limit: usize,
) -> Result<Vec<Jid>, StoreError> {
    let prefix = KeyBuf::new().str(number).build();
    Ok(scan(txn, Table::MemberGroups, &prefix, limit)?
        .into_iter()
        .filter_map(|(key, _)| {
            let mut reader = KeyReader::new(&key);
            reader.str()?;
            reader.str()?.parse().ok()
        })
        .collect())
}

// ---- Peers ------------------------------------------------------------------------------------

pub(crate) fn peer_key(a: &str, b: &str) -> Vec<u8> {
    KeyBuf::new().str(a).str(b).build()
}

/// Records that `a` and `b` exchanged messages (both directions).
pub(crate) fn add_peers(
    txn: &mut dyn WriteTxn,
    a: &str,
    b: &str,
    t: u64,
) -> Result<(), StoreError> {
    if a == b || has(txn, Table::Peers, &peer_key(a, b))? {
        return Ok(());
    }
    txn.put(Table::Peers, &peer_key(a, b), &t.to_be_bytes())?;
    txn.put(Table::Peers, &peer_key(b, a), &t.to_be_bytes())
}

/// Whether `a` may see `b`'s presence: they exchanged messages or share a group.
pub(crate) fn related(txn: &mut dyn ReadTxn, a: &str, b: &str) -> Result<bool, StoreError> {
    if a == b || txn.get(Table::Peers, &peer_key(a, b))?.is_some() {
        return Ok(true);
    }
    for gid in groups_of(txn, a, 1024)? {
        if txn
            .get(Table::MemberGroups, &member_group_key(b, &gid))?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Everyone `number` exchanged messages with or shares a group with (bounded).
pub(crate) fn contacts(
    txn: &mut dyn ReadTxn,
    number: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let prefix = KeyBuf::new().str(number).build();
    let mut out: Vec<String> = scan(txn, Table::Peers, &prefix, limit)?
        .into_iter()
        .filter_map(|(key, _)| {
            let mut reader = KeyReader::new(&key);
            reader.str()?;
            reader.str()
        })
        .collect();
    for gid in groups_of(txn, number, 1024)? {
        if let Some(group) = group(txn, &gid)? {
            out.extend(
                group
                    .participants
                    .into_iter()
                    .map(|m| m.number)
                    .filter(|n| n != number),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out.truncate(limit);
    Ok(out)
}

// ---- Media ------------------------------------------------------------------------------------

/// An uploaded media file (the body is a file the driver keeps).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MediaRecord {
    /// Its id (URL-safe base64 of the body's SHA-256).
    pub id: String,
    /// The media type (`image`, `video`, ...).
    pub kind: String,
    /// Length in bytes.
    pub len: u64,
    /// When it was uploaded (Unix seconds).
    pub created: u64,
    /// When it expires (Unix seconds).
    pub expires: u64,
    /// The uploader's number.
    pub uploader: String,
}

mod b64_opt {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option, reason = "serde's `with` passes `&Option<T>`")]
    pub(super) fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => s.serialize_str(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                STANDARD
                    .decode(text.as_bytes())
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_are_reused_only_when_free() {
        let mut account = AccountRecord {
            number: "15551234567".into(),
            name: String::new(),
            created: 0,
            identity: IdentityKeys {
                curve25519: [0; 32],
                ed25519: [0; 32],
            },
            identity_since: 0,
            phone: PhoneInfo::default(),
            linked: vec![],
            next_device: 254,
        };
        let a = account.allocate_device().unwrap();
        account.linked.push(a);
        let b = account.allocate_device().unwrap();
        account.linked.push(b);
        let c = account.allocate_device().unwrap();
        assert_eq!((a, b, c), (254, 255, 1));
        account.linked = (1..=255).collect();
        assert_eq!(account.allocate_device(), None);
    }

    #[test]
    fn message_records_round_trip_and_earlier_json_ones_still_read() {
        let record = MessageRecord {
            id: "3EB0ABCDEF".to_owned(),
            sender: "15551234567".to_owned(),
            sender_device: 3,
            chat: "120363-1700000000@g.us".parse().unwrap(),
            t: 1_700_000_000,
            expires: 1_702_592_000,
            kind: ContentKind::Other("poll_vote".to_owned()),
            body: None,
            receipt: ReceiptSlot::InTable,
            devices: None,
        };
        let bytes = record.to_bytes().unwrap();
        let back = MessageRecord::from_bytes(&bytes).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&record).unwrap()
        );
        assert_eq!(back.receipt, ReceiptSlot::InTable);
        // Version 2 keeps the receipt state; version 1 (above) says it is in the table.
        for state in [
            None,
            Some(ReceiptState::Delivered),
            Some(ReceiptState::Read),
        ] {
            let inline = MessageRecord {
                receipt: ReceiptSlot::Inline(state),
                ..record.clone()
            };
            let bytes = inline.to_bytes().unwrap();
            assert_eq!(bytes[0], 2);
            let back = MessageRecord::from_bytes(&bytes).unwrap();
            assert_eq!(back.receipt, ReceiptSlot::Inline(state));
            assert_eq!(
                (back.id, back.t, back.expires),
                (record.id.clone(), record.t, record.expires)
            );
            for cut in 0..bytes.len() {
                assert!(
                    MessageRecord::from_bytes(&bytes[..cut]).is_err(),
                    "v2 cut at {cut}"
                );
            }
        }
        // Version 3 lists the devices of a chat with a user (none is a list too).
        for devices in [
            vec![],
            vec!["15559876543@s.whatsapp.net".parse().unwrap()],
            vec![
                "15559876543@s.whatsapp.net".parse().unwrap(),
                "15559876543:7@s.whatsapp.net".parse().unwrap(),
                "15551234567:2@s.whatsapp.net".parse().unwrap(),
            ],
        ] {
            let listed = MessageRecord {
                chat: "15559876543@s.whatsapp.net".parse().unwrap(),
                receipt: ReceiptSlot::Inline(Some(ReceiptState::Delivered)),
                devices: Some(devices.clone()),
                ..record.clone()
            };
            let bytes = listed.to_bytes().unwrap();
            assert_eq!(bytes[0], 3);
            let back = MessageRecord::from_bytes(&bytes).unwrap();
            assert_eq!(back.devices, Some(devices));
            assert_eq!(back.receipt, listed.receipt);
            assert_eq!(
                (back.id, back.chat),
                (listed.id.clone(), listed.chat.clone())
            );
            for cut in 0..bytes.len() {
                assert!(
                    MessageRecord::from_bytes(&bytes[..cut]).is_err(),
                    "v3 cut at {cut}"
                );
            }
        }
        // Listed devices go with the receipt state in the record.
        let in_table = MessageRecord {
            devices: Some(Vec::new()),
            ..record.clone()
        };
        assert!(in_table.to_bytes().is_err());
        let mut bad_state = MessageRecord {
            receipt: ReceiptSlot::Inline(None),
            ..record.clone()
        }
        .to_bytes()
        .unwrap();
        bad_state[18] = 3;
        assert!(MessageRecord::from_bytes(&bad_state).is_err());
        // Records written as JSON by earlier versions, the group body inline, still read.
        let legacy = MessageRecord {
            body: Some(vec![9; 40]),
            ..record.clone()
        };
        let json = serde_json::to_vec(&legacy).unwrap();
        assert_eq!(
            MessageRecord::from_bytes(&json).unwrap().body,
            Some(vec![9; 40])
        );
        // Every cut of the binary form is an error, not a panic; so is a trailing byte.
        for cut in 0..bytes.len() {
            assert!(
                MessageRecord::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(MessageRecord::from_bytes(&longer).is_err());
        let mut bad_utf8 = bytes;
        bad_utf8[20] = 0xFF;
        assert!(MessageRecord::from_bytes(&bad_utf8).is_err());
    }

    #[test]
    fn inbox_records_round_trip_and_earlier_json_ones_still_read() {
        let records = [
            InboxRecord {
                olm: None,
                size: 100_000,
            },
            InboxRecord {
                olm: Some(OlmPayload {
                    kind: OlmType::PreKey,
                    body: vec![7; 300],
                }),
                size: 300,
            },
            InboxRecord {
                olm: Some(OlmPayload {
                    kind: OlmType::Normal,
                    body: Vec::new(),
                }),
                size: 0,
            },
        ];
        for record in &records {
            let bytes = record.to_bytes();
            let back = InboxRecord::from_bytes(&bytes).unwrap();
            assert_eq!(back.size, record.size);
            assert_eq!(
                back.olm.as_ref().map(|o| (o.kind, o.body.clone())),
                record.olm.as_ref().map(|o| (o.kind, o.body.clone()))
            );
            // The raw ciphertext plus ten bytes.
            assert_eq!(
                bytes.len(),
                10 + record.olm.as_ref().map_or(0, |o| o.body.len())
            );
            let json = serde_json::to_vec(record).unwrap();
            let legacy = InboxRecord::from_bytes(&json).unwrap();
            assert_eq!(legacy.size, record.size);
        }
        for bad in [
            &[][..],
            &[1, 0, 0],
            &[1, 0, 0, 0, 0, 0, 0, 0, 0, 9],
            &[2, 0],
        ] {
            assert!(InboxRecord::from_bytes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn what_was_given_back_reads_in_both_forms() {
        let mut released = Released {
            bytes: 5 << 32,
            entries: DeviceCounts::default(),
        };
        // An earlier version's record: the bytes only.
        let old = Released::from_bytes(&released.bytes.to_be_bytes()).unwrap();
        assert_eq!(old, released);
        released.entries.add(2, 9);
        released.entries.add(0, 1);
        let bytes = released.to_bytes();
        assert_eq!(Released::from_bytes(&bytes).unwrap(), released);
        for cut in (0..bytes.len()).filter(|&cut| cut != 8) {
            assert!(Released::from_bytes(&bytes[..cut]).is_err(), "{cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Released::from_bytes(&longer).is_err());
        // Devices out of order are a corrupt record, not a count of the wrong device.
        let mut swapped = bytes;
        swapped[8..].copy_from_slice(&[2, 2, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(Released::from_bytes(&swapped).is_err());
    }

    /// A device record of `mode`, with identity keys or without.
    fn device_record(number: &str, device: u8, mode: DeviceMode, keys: bool) -> DeviceRecord {
        let identity = IdentityKeys {
            curve25519: [1; 32],
            ed25519: [2; 32],
        };
        DeviceRecord::bare(number, device, mode, keys.then_some(identity), 0)
    }

    #[test]
    fn an_accounts_endpoints_record_follows_its_account_and_devices() {
        use crate::store::{MemStore, read};
        const NUMBER: &str = "15551234567";
        let store = MemStore::new();
        // What a relay sees, and what the records themselves say (as device numbers).
        let seen = |store: &MemStore| {
            read(store, |txn| {
                let addresses = endpoint_addresses(txn, NUMBER)?;
                let summary = txn.get(Table::Endpoints, &account_key(NUMBER))?;
                Ok((
                    addresses.map(|a| a.iter().map(wa_wire::ids::device_of).collect::<Vec<_>>()),
                    summary.map(|s| s[1..].to_vec()),
                    endpoint_devices(txn, NUMBER)?,
                ))
            })
            .unwrap()
        };
        assert_eq!(seen(&store), (None, None, None));
        // The account first, then its devices (as a registration writes them), in one job.
        store.write_now(|txn| {
            put_account(
                txn,
                &AccountRecord {
                    number: NUMBER.into(),
                    name: String::new(),
                    created: 0,
                    identity: IdentityKeys {
                        curve25519: [1; 32],
                        ed25519: [2; 32],
                    },
                    identity_since: 0,
                    phone: PhoneInfo::default(),
                    linked: vec![3, 1, 2],
                    next_device: 4,
                },
            )?;
            put_device(txn, &device_record(NUMBER, 0, DeviceMode::Phone, true))?;
            put_device(txn, &device_record(NUMBER, 3, DeviceMode::EndToEnd, true))?;
            put_device(txn, &device_record(NUMBER, 1, DeviceMode::Mirror, false))?;
            // Linked, its keys not yet uploaded.
            put_device(txn, &device_record(NUMBER, 2, DeviceMode::EndToEnd, false))
        });
        let all = |d: &[u8]| (Some(d.to_vec()), Some(d.to_vec()), Some(d.to_vec()));
        assert_eq!(seen(&store), all(&[0, 3]));
        // Device 2 uploads its keys; device 3 stops being an endpoint (a mirror now).
        store.write_now(|txn| {
            put_device(txn, &device_record(NUMBER, 2, DeviceMode::EndToEnd, true))
        });
        assert_eq!(seen(&store), all(&[0, 3, 2]));
        store
            .write_now(|txn| put_device(txn, &device_record(NUMBER, 3, DeviceMode::Mirror, false)));
        assert_eq!(seen(&store), all(&[0, 2]));
        // A write that changes nothing of it (a login's new tokens) leaves it.
        store.write_now(|txn| {
            put_device(txn, &device_record(NUMBER, 2, DeviceMode::EndToEnd, true))
        });
        assert_eq!(seen(&store), all(&[0, 2]));
        store.write_now(|txn| unlink_device(txn, NUMBER, 2).map(drop));
        assert_eq!(seen(&store), all(&[0]));
        // An account whose records an earlier version wrote has none: read from its records.
        store.write_now(|txn| txn.delete(Table::Endpoints, &account_key(NUMBER)).map(drop));
        assert_eq!(seen(&store), (Some(vec![0]), None, Some(vec![0])));
        // A damaged one is an error that names it, not a wrong answer.
        for bad in [&[][..], &[2, 0][..], &[ENDPOINTS_V1; 258][..]] {
            let bad = bad.to_vec();
            store.write_now(move |txn| txn.put(Table::Endpoints, &account_key(NUMBER), &bad));
            let error = read(&store, |txn| endpoint_addresses(txn, NUMBER)).unwrap_err();
            assert!(
                matches!(&error, StoreError::Corrupt { table: "endpoints", detail } if detail.contains(NUMBER)),
                "{error:?}"
            );
        }
    }
}
