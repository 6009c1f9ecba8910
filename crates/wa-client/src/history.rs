//! History exports: the phone builds one from its store when a web client links, and the new
//! client downloads, checks and imports it (PROTOCOL.md §7).
//!
//! Import is strict: the notice must carry the key, both hashes, the length and the format;
//! the body must authenticate (`wa-media`, `MediaType::History`: MAC, `fileEncSha256`,
//! padding, `fileSha256`), be exactly `fileLength` bytes, import whole in the notice's format
//! (`wa-history`), and belong to this account. Only then is anything stored, in one
//! transaction. A failure stores nothing.

use std::str::FromStr as _;
use std::sync::Arc;

use wa_history::{Chat, Format, History};
use wa_media::{Expected, MediaKey, MediaType};
use wa_proto::wars::HistoryNotice;
use wa_wire::Jid;

use crate::error::Error;
use crate::media::{self, Source};
use crate::store::{Imported, Store, history_contact, history_message};

/// Default cap on a history export's plaintext.
pub const DEFAULT_MAX_HISTORY_BYTES: u64 = 64 * 1024 * 1024;

fn hash(field: Option<&Vec<u8>>, name: &'static str) -> Result<[u8; 32], Error> {
    field
        .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
        .ok_or(Error::BadNotice(name))
}

/// Downloads, checks and imports the export a notice points at, for account `own`.
pub(crate) async fn fetch_and_import(
    http: &reqwest::Client,
    store: Arc<Store>,
    notice: &HistoryNotice,
    own: &Jid,
    max_bytes: u64,
) -> Result<Imported, Error> {
    let url = notice.url.clone().ok_or(Error::BadNotice("no url"))?;
    let key: [u8; 32] = notice
        .media_key
        .as_deref()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or(Error::BadNotice("no 32-byte media key"))?;
    let file_sha256 = hash(notice.file_sha256.as_ref(), "no 32-byte fileSha256")?;
    let file_enc_sha256 = hash(notice.file_enc_sha256.as_ref(), "no 32-byte fileEncSha256")?;
    let file_length = notice
        .file_length
        .ok_or(Error::BadNotice("no fileLength"))?;
    if file_length > max_bytes {
        return Err(Error::TooLarge {
            len: file_length,
            max: max_bytes,
        });
    }
    let format = Format::from_str(
        notice
            .format
            .as_deref()
            .ok_or(Error::BadNotice("no format"))?,
    )?;
    let source = Source {
        url,
        key,
        ty: MediaType::History,
        expected: Expected::new()
            .file_sha256(file_sha256)
            .file_enc_sha256(file_enc_sha256),
        max_body: media::body_len(file_length),
    };
    let plain = media::download(http, source).await?;
    if plain.len() as u64 != file_length {
        return Err(Error::BadNotice("the export's length is not fileLength"));
    }
    let own = own.clone();
    tokio::task::spawn_blocking(move || {
        let history = wa_history::import(&plain, format)?;
        if history.owner != own {
            return Err(Error::ForeignHistory {
                owner: history.owner,
            });
        }
        store.import_history(&history)
    })
    .await?
}

/// The phone's history for a new device: its chats, contacts and the last `per_chat` messages
/// of each chat, from its store.
pub(crate) fn build(store: &Store, owner: &Jid, per_chat: usize) -> Result<History, Error> {
    let mut history = History::new(owner.clone());
    for chat in store.chats()? {
        let messages: Vec<_> = store
            .history(&chat.jid, per_chat)?
            .iter()
            .filter_map(history_message)
            .collect();
        let mut entry = Chat::new(chat.jid.clone(), chat.last_activity);
        entry.name.clone_from(&chat.name);
        entry.unread = chat.unread;
        entry.archived = chat.archived;
        history.chats.push(entry);
        history.messages.extend(messages);
    }
    history.contacts = store
        .contacts()?
        .iter()
        .filter(|c| c.jid != *owner)
        .map(history_contact)
        .collect();
    Ok(history)
}

/// An export, encrypted: the body to upload and the notice (without url and device yet).
pub(crate) fn seal(
    history: &History,
    format: Format,
    key: [u8; 32],
) -> Result<(Vec<u8>, HistoryNotice), Error> {
    let plain = wa_history::export(history, format)?;
    let (body, info) = wa_media::encrypt(&MediaKey::from_bytes(key), MediaType::History, &plain);
    let notice = HistoryNotice {
        media_key: Some(key.to_vec()),
        file_sha256: Some(info.file_sha256.to_vec()),
        file_enc_sha256: Some(info.file_enc_sha256.to_vec()),
        file_length: Some(info.file_length),
        format: Some(format.name().to_owned()),
        chats: u32::try_from(history.chats.len()).ok(),
        messages: u32::try_from(history.messages.len()).ok(),
        ..Default::default()
    };
    Ok((body, notice))
}
