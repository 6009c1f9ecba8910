//! The chat history a phone hands a newly linked web client: a format-neutral data model
//! ([`History`]), and the two export formats phones wrote, Android's and iOS's, each with an
//! exporter and a strict importer.
//!
//! In the legacy protocol the phone keeps the history. When a web client links, the phone
//! exports its chats, its contacts and the last messages of each chat in its platform's format;
//! the export is encrypted as media (`wa-media`, `MediaType::History`, "WhatsApp History
//! Keys"), uploaded, and the new client downloads, decrypts and imports it. This crate is the
//! format layer only: bytes in, [`History`] out, and back.
//!
//! ```
//! use wa_binary::Jid;
//! use wa_history::{Chat, Format, History, HistoryMessage, MessageStatus, detect, export, import};
//!
//! let alice: Jid = "15551234567@s.whatsapp.net".parse()?;
//! let mut history = History::new("447700900123@s.whatsapp.net".parse()?);
//! history.chats.push(Chat::new(alice.clone(), 1_589_256_438));
//! let text = wa_proto::Message { conversation: Some("see you at 6".into()), ..Default::default() };
//! history.messages.push(HistoryMessage::new(
//!     alice, "3EB0A1B2C3D4E5F6", true, 1_589_256_438, MessageStatus::Read, text,
//! ));
//!
//! for format in Format::ALL {
//!     let bytes = export(&history, format)?;
//!     assert_eq!(detect(&bytes), Some(format));
//!     assert_eq!(import(&bytes, format)?, history);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The model
//!
//! A [`History`] has its `owner` (the phone's account), [`Chat`]s (with a user, a group or a
//! broadcast list: name, unread count, last activity, archived), [`Contact`]s (address-book name
//! and push name) and [`HistoryMessage`]s (chat, id, direction, group sender, timestamp,
//! [`MessageStatus`], and the content as a [`wa_proto::Message`]). Timestamps are whole Unix
//! seconds. JIDs are [`wa_binary::Jid`]s, so `c.us` and `s.whatsapp.net` are one domain.
//!
//! The rules, checked by [`export`] before writing and by both importers after reading (so a
//! history that exports imports back):
//!
//! - the owner and every contact are user JIDs; chats are user, group or broadcast JIDs; none
//!   has an agent or device, none is longer than [`MAX_JID_LEN`];
//! - no chat and no contact is listed twice;
//! - every message belongs to a chat of the chat list (a message in an unlisted chat is an error,
//!   not a chat the importer invents: the export would be inconsistent);
//! - message ids are 1 to 128 bytes of printable ASCII without `,`, unique within their chat;
//! - timestamps (messages' and chats' last activity) are in 2009-01-01..2100-01-01
//!   ([`MIN_TIMESTAMP`], [`END_TIMESTAMP`]);
//! - a sender is only set on incoming messages of group and broadcast chats, and is a user JID;
//! - quotes nest at most [`MAX_QUOTE_DEPTH`] deep.
//!
//! Round trip: `import(&export(&h, f)?, f)? == h` for every `h` that passes the rules, up to
//! these normalisations: messages come back in canonical order ([`History::sort_messages`]: by
//! timestamp, then id, then chat), whatever order they were given in; JIDs are written in the
//! `@s.whatsapp.net` form (equal as [`Jid`](wa_binary::Jid)s to the `@c.us` form). Chats and
//! contacts keep their order. Fields of the content outside wa-proto's schema are unknown to
//! prost and dropped when an import decodes the content.
//!
//! # The Android format
//!
//! One UTF-8 JSON object, modelled on the tables of Android's `msgstore.db`, with its
//! snake_case column names. Messages are listed **oldest first**: ascending by timestamp, then
//! id, then chat. Booleans are integers `0`/`1`, as in SQLite. Nullable fields are present with
//! `null`.
//!
//! | field | JSON type | meaning |
//! |---|---|---|
//! | `version` | integer | `1` |
//! | `jid` | string | the owner, `<number>@s.whatsapp.net` |
//! | `chat_list` | array of objects | the chats, in the history's order |
//! | `wa_contacts` | array of objects | the contacts, in the history's order |
//! | `messages` | array of objects | the messages, oldest first |
//! | `chat_list[].key_remote_jid` | string | the chat's JID |
//! | `chat_list[].subject` | string or null | its name |
//! | `chat_list[].unseen_message_count` | integer, 0 to 2³²−1 | unread messages |
//! | `chat_list[].sort_timestamp` | integer | last activity, **Unix seconds** |
//! | `chat_list[].archived` | `0` or `1` | archived |
//! | `wa_contacts[].jid` | string | the contact's user JID |
//! | `wa_contacts[].display_name` | string or null | address-book name |
//! | `wa_contacts[].wa_name` | string or null | push name |
//! | `messages[].key_remote_jid` | string | the chat |
//! | `messages[].key_from_me` | `0` or `1` | sent by the owner |
//! | `messages[].key_id` | string | the message id |
//! | `messages[].remote_resource` | string or null | the sender in a group, else null |
//! | `messages[].timestamp` | integer | **Unix seconds** |
//! | `messages[].status` | integer | the status, Android's codes (table below) |
//! | `messages[].media_wa_type` | integer | the kind of content, Android's codes (table below) |
//! | `messages[].data` | string or null | the text: all of a plain text message; otherwise the text or caption of the content ([`wa_proto::Message::text`]), null if none |
//! | `messages[].raw_data` | string or null | null for a plain text message (only `conversation` set); otherwise the content as a `Message` protobuf in standard padded base64 |
//!
//! # The iOS format
//!
//! A binary property list (`bplist00`), modelled on the Core Data tables of iOS's
//! `ChatStorage.sqlite`, with their `Z`-prefixed column names. Messages are listed **newest
//! first**: descending by date, then id, then chat. Dates are **reals counting seconds since the
//! Apple epoch, 2001-01-01T00:00:00Z** ([`APPLE_EPOCH_UNIX`] = 978307200 s after the Unix
//! epoch), whole seconds only (exact in a double). Optional fields are absent when empty, as
//! Core Data leaves NULL columns out.
//!
//! | field | plist type | meaning |
//! |---|---|---|
//! | `ZVERSION` | integer | `1` |
//! | `ZOWNERJID` | string | the owner, `<number>@s.whatsapp.net` |
//! | `ZWACHATSESSION` | array of dictionaries | the chats, in the history's order |
//! | `ZWAADDRESSBOOKCONTACT` | array of dictionaries | the contacts, in the history's order |
//! | `ZWAMESSAGE` | array of dictionaries | the messages, newest first |
//! | `ZWACHATSESSION[].ZCONTACTJID` | string | the chat's JID |
//! | `ZWACHATSESSION[].ZPARTNERNAME` | string, optional | its name |
//! | `ZWACHATSESSION[].ZUNREADCOUNT` | integer, 0 to 2³²−1 | unread messages |
//! | `ZWACHATSESSION[].ZLASTMESSAGEDATE` | real | last activity, **Apple-epoch seconds** |
//! | `ZWACHATSESSION[].ZARCHIVED` | boolean | archived |
//! | `ZWAADDRESSBOOKCONTACT[].ZWHATSAPPID` | string | the contact's user JID |
//! | `ZWAADDRESSBOOKCONTACT[].ZFULLNAME` | string, optional | address-book name |
//! | `ZWAADDRESSBOOKCONTACT[].ZPUSHNAME` | string, optional | push name |
//! | `ZWAMESSAGE[].ZSTANZAID` | string | the message id |
//! | `ZWAMESSAGE[].ZISFROMME` | boolean | sent by the owner |
//! | `ZWAMESSAGE[].ZFROMJID` | string, incoming messages only | the other party, who sent it: the chat |
//! | `ZWAMESSAGE[].ZTOJID` | string, outgoing messages only | the other party, who receives it: the chat |
//! | `ZWAMESSAGE[].ZGROUPMEMBERJID` | string, optional | the sender in a group |
//! | `ZWAMESSAGE[].ZMESSAGEDATE` | real | **Apple-epoch seconds** |
//! | `ZWAMESSAGE[].ZMESSAGESTATUS` | integer | the status, iOS's codes (table below) |
//! | `ZWAMESSAGE[].ZMESSAGETYPE` | integer | the kind of content, iOS's codes (table below) |
//! | `ZWAMESSAGE[].ZTEXT` | string, optional | as Android's `data` |
//! | `ZWAMESSAGE[].ZMEDIAITEM` | data, optional | as Android's `raw_data`, as raw bytes |
//!
//! `ZFROMJID`/`ZTOJID` follow iOS's semantics: each names the *other party* of the message, so
//! exactly one is present, and which one says the direction (an incoming message without
//! `ZFROMJID`, or with a `ZTOJID`, is an error; likewise for outgoing ones).
//!
//! # Codes
//!
//! The two platforms number statuses and kinds of content differently. These are the numbers
//! this crate writes and reads: modelled on the platforms' tables (Android's `status` and
//! `media_wa_type` columns, iOS's `ZMESSAGESTATUS` and `ZMESSAGETYPE`), not a claim about every
//! app version. The status codes of the two formats are disjoint, so a history read with the
//! other format's table fails instead of silently changing.
//!
//! | [`MessageStatus`] | Android `status` | iOS `ZMESSAGESTATUS` |
//! |---|---|---|
//! | `Pending` | 0 (no receipt state) | 1 |
//! | `ServerAck` | 4 (received by the server) | 2 |
//! | `Delivered` | 5 (received by the recipient) | 3 |
//! | `Read` | 13 (read by the recipient) | 6 |
//! | `Played` | 8 (played) | 7 |
//! | `Error` | -1 (failed) | 12 |
//!
//! | content (first field set, in this order) | Android `media_wa_type` | iOS `ZMESSAGETYPE` |
//! |---|---|---|
//! | `imageMessage` | 1 | 1 |
//! | `videoMessage` (and GIFs) | 3 | 2 |
//! | `audioMessage` (and voice notes) | 2 | 3 |
//! | `documentMessage` | 9 | 8 |
//! | `stickerMessage` | 20 | 15 |
//! | `locationMessage` | 5 | 5 |
//! | `contactMessage`, `contactsArrayMessage` | 4 | 4 |
//! | `protocolMessage` (revocation) | 15 | 6 |
//! | anything else: `conversation`, `extendedTextMessage`, nothing | 0 | 0 |
//!
//! # Strict importers
//!
//! Each format has its own importer, and each accepts exactly what its exporter could have
//! written: the function returns the whole [`History`] or an [`ImportError`] that says what
//! ([`Problem`]) and where ([`ImportError::at`], e.g. `messages[17].timestamp` or
//! `ZWAMESSAGE[3].ZFROMJID`); nothing is ever partly imported. Rejected:
//!
//! - the other platform's export ("this is an iOS export, not Android"), a document that is not
//!   JSON or not a `bplist00` property list, truncated input, trailing data;
//! - an unknown version; a missing, unknown or repeated field; a value of the wrong type (a
//!   string for an integer, a real for a boolean, a fraction of a second);
//! - invalid JIDs or JIDs of the wrong kind, invalid or duplicate message ids, duplicate chats or
//!   contacts, messages in unlisted chats, senders where there can be none, the wrong
//!   `ZFROMJID`/`ZTOJID` for the direction;
//! - timestamps outside 2009..2100, unknown status codes, flags other than 0/1, counts that do
//!   not fit;
//! - content that is not valid base64 or not a valid `Message` protobuf, content that is a plain
//!   text (the formats store those as text), a stored text or type that does not match the
//!   content, a message with neither text nor content;
//! - messages out of the format's order;
//! - anything over the [`Limits`].
//!
//! No input makes an importer panic, recurse without bound (serde_json stops at 128 levels, and
//! the property list walk never descends past the format's three levels) or allocate more than
//! the limits allow.
//!
//! # Limits
//!
//! [`import`] applies [`Limits::default`]: 256 MiB of input, 1,000,000 messages, 100,000 chats,
//! 100,000 contacts, 64 KiB per text, 1 MiB of serialized content per message;
//! [`import_with_limits`] takes others. List lengths are counted as entries arrive (and a
//! property list's declared array length is checked before its first entry), never reserved
//! from a declared count. In a binary property list one stored string can be referenced from
//! many places, so the strings and data kept from it are also bounded by
//! [`Limits::max_bytes`] in total.
//!
//! # What this crate does not do
//!
//! No cryptography (callers encrypt and decrypt the export with `wa-media`), no IO (bytes in,
//! bytes out: no files, sockets or async runtime), no SQLite (the formats are modelled on the
//! phones' databases, not copies of them), no other platforms' formats, no media: attachments
//! stay references inside the content.
//!
//! # Dependencies
//!
//! - `wa-binary` for [`Jid`](wa_binary::Jid) and `wa-proto` for the content
//!   ([`wa_proto::Message`] and prost to encode and decode it): the types the rest of wa-rs uses.
//! - `serde_json` (with `serde`) for the Android document: the importer drives its streaming
//!   deserializer with its own visitors, for typed errors with paths and limits checked as the
//!   document is read, and serde's derive writes the export.
//! - `base64` for `raw_data`: its standard engine rejects non-canonical padding and trailing
//!   bits, which a strict importer wants.
//! - `plist` for the binary property list: only its event reader (which checks offsets and
//!   reference cycles, and refuses object tables larger than the file) and its event writer
//!   (deterministic, and it stores equal strings once), without its serde support. The importer
//!   never builds a `plist::Value`: such a tree would copy a shared object once per reference
//!   (a small file could expand without bound) and is dropped recursively (deep nesting could
//!   overflow the stack). plist exposes its event API behind its
//!   `enable_unstable_features_that_may_break_with_minor_version_bumps` feature, so the
//!   workspace pins it with a tilde requirement (`~1.10.3`), as plist's documentation asks.
//! - `thiserror` for [`Problem`].

mod android;
mod content;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod ios;
mod limits;
mod model;
mod path;
mod rules;

pub use crate::content::MAX_QUOTE_DEPTH;
pub use crate::error::{ExportError, ImportError, Problem};
pub use crate::ios::APPLE_EPOCH_UNIX;
pub use crate::limits::Limits;
pub use crate::model::{
    Chat, Contact, Format, History, HistoryMessage, MessageStatus, UnknownFormat,
};
pub use crate::rules::{END_TIMESTAMP, MAX_JID_LEN, MIN_TIMESTAMP};

/// Writes `history` in `format`.
///
/// Messages may be in any order: each format writes them in its own. The output is
/// deterministic: the same history gives the same bytes.
///
/// # Errors
/// An [`ExportError`] saying which entry breaks which rule of the model (see the crate docs),
/// with its path in the history (`messages[3].id`). Nothing is written then.
pub fn export(history: &History, format: Format) -> Result<Vec<u8>, ExportError> {
    rules::check(history).map_err(|v| ExportError::new(v.model_path(), v.problem))?;
    match format {
        Format::Android => android::export(history),
        Format::Ios => ios::export(history),
    }
}

/// Reads an export of `format` with the default [`Limits`].
///
/// # Errors
/// See [`import_with_limits`].
pub fn import(bytes: &[u8], format: Format) -> Result<History, ImportError> {
    import_with_limits(bytes, format, &Limits::default())
}

/// Reads an export of `format` within `limits`: the whole [`History`], with messages in
/// canonical order, or an error.
///
/// # Errors
/// An [`ImportError`] for anything the format's exporter could not have written, or that
/// exceeds `limits` (see "Strict importers" in the crate docs). No partial history is returned.
pub fn import_with_limits(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<History, ImportError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImportError::new(
            format,
            "",
            Problem::TooLarge {
                len: bytes.len(),
                max: limits.max_bytes,
            },
        ));
    }
    match format {
        Format::Android => android::import(bytes, limits),
        Format::Ios => ios::import(bytes, limits),
    }
}

/// Which format `bytes` look like: [`Format::Ios`] for the `bplist00` magic of a binary property
/// list, [`Format::Android`] for a JSON object (`{` after optional whitespace), `None` otherwise.
/// Only the first bytes are looked at: the importer still checks the rest.
pub fn detect(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"bplist00") {
        return Some(Format::Ios);
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    (*first == b'{').then_some(Format::Android)
}
