//! The Android format: one JSON document modelled on `msgstore.db` (see the crate docs for the
//! field table), its exporter and its strict importer.
//!
//! The importer drives `serde_json` with its own visitors: records are read field by field as
//! `serde_json::Value`s and converted as soon as each record ends, so that every error knows its
//! path, list lengths are counted as entries arrive, and no record outlives its conversion.

use std::cell::RefCell;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use wa_binary::Jid;
use wa_proto::Message;
use wa_proto::prost::Message as _;

use crate::content::{self, Kind};
use crate::error::{ExportError, ImportError, Problem};
use crate::limits::Limits;
use crate::model::{Chat, Contact, Format, History, HistoryMessage, MessageStatus};
use crate::path::Loc;
use crate::rules::{self, Field, Item, Violation};

/// The version this module writes and reads.
pub(crate) const VERSION: u32 = 1;

const ROOT_FIELDS: [&str; 5] = ["version", "jid", "chat_list", "wa_contacts", "messages"];
const CHAT_FIELDS: [&str; 5] = [
    "key_remote_jid",
    "subject",
    "unseen_message_count",
    "sort_timestamp",
    "archived",
];
const CONTACT_FIELDS: [&str; 3] = ["jid", "display_name", "wa_name"];
const MESSAGE_FIELDS: [&str; 9] = [
    "key_remote_jid",
    "key_from_me",
    "key_id",
    "remote_resource",
    "timestamp",
    "status",
    "media_wa_type",
    "data",
    "raw_data",
];

/// Android's `status` code for a message status.
pub(crate) fn status_code(status: MessageStatus) -> i64 {
    match status {
        MessageStatus::Pending => 0,
        MessageStatus::ServerAck => 4,
        MessageStatus::Delivered => 5,
        MessageStatus::Read => 13,
        MessageStatus::Played => 8,
        MessageStatus::Error => -1,
    }
}

fn status_from_code(code: i64) -> Option<MessageStatus> {
    MessageStatus::ALL
        .into_iter()
        .find(|s| status_code(*s) == code)
}

/// Android's `media_wa_type` for a kind of content.
pub(crate) fn type_code(kind: Kind) -> i64 {
    match kind {
        Kind::Text => 0,
        Kind::Image => 1,
        Kind::Audio => 2,
        Kind::Video => 3,
        Kind::Contact => 4,
        Kind::Location => 5,
        Kind::Document => 9,
        Kind::Protocol => 15,
        Kind::Sticker => 20,
    }
}

// ---------------------------------------------------------------------------------------------
// Export.

#[derive(Serialize)]
struct DocOut<'a> {
    version: u32,
    jid: String,
    chat_list: Vec<ChatOut<'a>>,
    wa_contacts: Vec<ContactOut<'a>>,
    messages: Vec<MessageOut<'a>>,
}

#[derive(Serialize)]
struct ChatOut<'a> {
    key_remote_jid: String,
    subject: Option<&'a str>,
    unseen_message_count: u32,
    sort_timestamp: u64,
    archived: u8,
}

#[derive(Serialize)]
struct ContactOut<'a> {
    jid: String,
    display_name: Option<&'a str>,
    wa_name: Option<&'a str>,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    key_remote_jid: String,
    key_from_me: u8,
    key_id: &'a str,
    remote_resource: Option<String>,
    timestamp: u64,
    status: i64,
    media_wa_type: i64,
    data: Option<&'a str>,
    raw_data: Option<String>,
}

/// Writes `history`, which the caller has checked against the rules, as an Android export.
pub(crate) fn export(history: &History) -> Result<Vec<u8>, ExportError> {
    let mut order: Vec<&HistoryMessage> = history.messages.iter().collect();
    order.sort_by(|a, b| HistoryMessage::canonical_cmp(a, b));

    let doc = DocOut {
        version: VERSION,
        jid: history.owner.to_wire_string(),
        chat_list: history
            .chats
            .iter()
            .map(|c| ChatOut {
                key_remote_jid: c.jid.to_wire_string(),
                subject: c.name.as_deref(),
                unseen_message_count: c.unread,
                sort_timestamp: c.last_activity,
                archived: c.archived.into(),
            })
            .collect(),
        wa_contacts: history
            .contacts
            .iter()
            .map(|c| ContactOut {
                jid: c.jid.to_wire_string(),
                display_name: c.name.as_deref(),
                wa_name: c.notify.as_deref(),
            })
            .collect(),
        messages: order
            .into_iter()
            .map(|m| {
                let (data, raw_data) = match content::plain_text(&m.content) {
                    Some(text) => (Some(text), None),
                    None => (
                        m.content.text(),
                        Some(BASE64.encode(m.content.encode_to_vec())),
                    ),
                };
                MessageOut {
                    key_remote_jid: m.chat.to_wire_string(),
                    key_from_me: m.from_me.into(),
                    key_id: &m.id,
                    remote_resource: m.sender.as_ref().map(Jid::to_wire_string),
                    timestamp: m.timestamp,
                    status: status_code(m.status),
                    media_wa_type: type_code(Kind::of(&m.content)),
                    data,
                    raw_data,
                }
            })
            .collect(),
    };
    serde_json::to_vec(&doc).map_err(|e| ExportError::new("", Problem::Encoder(e.to_string())))
}

// ---------------------------------------------------------------------------------------------
// Import.

/// Reads an Android export (its size already checked against `limits.max_bytes`).
pub(crate) fn import(bytes: &[u8], limits: &Limits) -> Result<History, ImportError> {
    if crate::detect(bytes) == Some(Format::Ios) {
        return Err(err(
            Loc::ROOT,
            Problem::WrongFormat {
                expected: Format::Android,
                found: Format::Ios,
            },
        ));
    }
    let ctx = Ctx {
        limits,
        error: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = DocSeed(&ctx).deserialize(&mut de);
    let history = match parsed {
        Ok(history) => history,
        Err(e) => return Err(ctx.into_error(Loc::ROOT, &e)),
    };
    if de.end().is_err() {
        return Err(err(Loc::ROOT, Problem::TrailingData));
    }

    rules::check(&history).map_err(violation)?;
    // Ascending canonical order is the format's order: check it, and the history is canonical.
    for (i, pair) in history.messages.windows(2).enumerate() {
        if let [a, b] = pair
            && HistoryMessage::canonical_cmp(a, b).is_ge()
        {
            return Err(err(
                Loc::entry("messages", i + 1),
                Problem::OutOfOrder(
                    "an Android export lists messages by ascending timestamp, then id, then chat",
                ),
            ));
        }
    }
    Ok(history)
}

fn err(at: Loc<'_>, problem: Problem) -> ImportError {
    ImportError::new(Format::Android, at.to_string(), problem)
}

/// Where a rule of the model was broken, in this format's names.
fn violation(v: Violation) -> ImportError {
    let at = match (v.item, v.field) {
        (Item::Owner, _) => Loc::field("jid"),
        (Item::Chat(i), Field::LastActivity) => {
            Loc::entry("chat_list", i).with_field("sort_timestamp")
        }
        (Item::Chat(i), _) => Loc::entry("chat_list", i).with_field("key_remote_jid"),
        (Item::Contact(i), _) => Loc::entry("wa_contacts", i).with_field("jid"),
        (Item::Message(i), field) => Loc::entry("messages", i).with_field(match field {
            Field::Id => "key_id",
            Field::Sender => "remote_resource",
            Field::Timestamp => "timestamp",
            Field::Content => "raw_data",
            Field::Chat | Field::Jid | Field::LastActivity => "key_remote_jid",
        }),
    };
    err(at, v.problem)
}

/// The importer's state shared by the visitors: the limits, and the first error, kept typed
/// (serde's error type can only carry a string).
struct Ctx<'l> {
    limits: &'l Limits,
    error: RefCell<Option<ImportError>>,
}

impl Ctx<'_> {
    /// Records `e` unless an error was recorded already (the innermost one wins), and returns
    /// a serde error that stops the parse.
    fn record<E: de::Error>(&self, e: ImportError) -> E {
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(e);
        }
        E::custom("import error")
    }

    fn fail<E: de::Error>(&self, at: Loc<'_>, problem: Problem) -> E {
        self.record(err(at, problem))
    }

    /// A parse error from `serde_json` at `at`: recorded as malformed JSON unless a more
    /// precise error was recorded already.
    fn malformed<E: de::Error>(&self, at: Loc<'_>, e: E) -> E {
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(err(
                at,
                Problem::Malformed {
                    container: "JSON",
                    detail: e.to_string(),
                },
            ));
        }
        e
    }

    fn into_error(self, at: Loc<'_>, e: &serde_json::Error) -> ImportError {
        self.error.into_inner().unwrap_or_else(|| {
            err(
                at,
                Problem::Malformed {
                    container: "JSON",
                    detail: e.to_string(),
                },
            )
        })
    }
}

/// How a JSON value reads in an error message.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {:?}", rules::clip(s, 40)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// The `visit_*` methods of a visitor that wants one kind of JSON value: every other kind is a
/// typed [`Problem::WrongType`] at the visitor's place.
macro_rules! reject_others {
    ($expected:literal; $($method:ident),*) => {
        $(reject_others!(@one $expected, $method);)*
    };
    (@one $expected:literal, visit_bool) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Err(self.ctx.fail(self.at, wrong($expected, format!("the boolean {v}"))))
        }
    };
    (@one $expected:literal, visit_i64) => {
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Err(self.ctx.fail(self.at, wrong($expected, format!("the number {v}"))))
        }
    };
    (@one $expected:literal, visit_u64) => {
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Err(self.ctx.fail(self.at, wrong($expected, format!("the number {v}"))))
        }
    };
    (@one $expected:literal, visit_f64) => {
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Err(self.ctx.fail(self.at, wrong($expected, format!("the number {v}"))))
        }
    };
    (@one $expected:literal, visit_str) => {
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let found = format!("the string {:?}", rules::clip(v, 40));
            Err(self.ctx.fail(self.at, wrong($expected, found)))
        }
    };
    (@one $expected:literal, visit_unit) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(self.ctx.fail(self.at, wrong($expected, "null".to_owned())))
        }
    };
    (@one $expected:literal, visit_seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.ctx.fail(self.at, wrong($expected, "an array".to_owned())))
        }
    };
    (@one $expected:literal, visit_map) => {
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.ctx.fail(self.at, wrong($expected, "an object".to_owned())))
        }
    };
}

fn wrong(expected: &'static str, found: String) -> Problem {
    Problem::WrongType { expected, found }
}

/// A key of a JSON object: the index of a known field name, or the unknown name.
enum Key {
    Known(usize),
    Unknown(String),
}

struct KeySeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(match self.0.iter().position(|name| *name == v) {
            Some(i) => Key::Known(i),
            None => Key::Unknown(rules::clip(v, 64)),
        })
    }
}

/// The parsed document before the rules are checked.
struct DocSeed<'c, 'l>(&'c Ctx<'l>);

impl<'de> DeserializeSeed<'de> for DocSeed<'_, '_> {
    type Value = History;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<History, D::Error> {
        d.deserialize_any(DocVisitor {
            ctx: self.0,
            at: Loc::ROOT,
        })
    }
}

struct DocVisitor<'c, 'l> {
    ctx: &'c Ctx<'l>,
    at: Loc<'static>,
}

impl<'de> Visitor<'de> for DocVisitor<'_, '_> {
    type Value = History;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an Android history export (a JSON object)")
    }

    reject_others!("an object"; visit_bool, visit_i64, visit_u64, visit_f64, visit_str, visit_unit, visit_seq);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<History, A::Error> {
        let ctx = self.ctx;
        let limits = ctx.limits;
        let mut seen = [false; ROOT_FIELDS.len()];
        let mut owner = None;
        let mut chats = None;
        let mut contacts = None;
        let mut messages = None;
        while let Some(key) = map
            .next_key_seed(KeySeed(&ROOT_FIELDS))
            .map_err(|e| ctx.malformed(Loc::ROOT, e))?
        {
            let i = match key {
                Key::Known(i) => i,
                Key::Unknown(name) => {
                    return Err(ctx.fail(Loc::ROOT, Problem::UnknownField(name)));
                }
            };
            let name = ROOT_FIELDS.get(i).copied().unwrap_or_default();
            let at = Loc::field(name);
            match seen.get_mut(i) {
                Some(true) => {
                    return Err(ctx.fail(Loc::ROOT, Problem::DuplicateField(name.to_owned())));
                }
                Some(seen) => *seen = true,
                None => {}
            }
            match name {
                "version" => {
                    let v: Value = map.next_value().map_err(|e| ctx.malformed(at, e))?;
                    check_version(&v).map_err(|p| ctx.fail(at, p))?;
                }
                "jid" => {
                    let v: Value = map.next_value().map_err(|e| ctx.malformed(at, e))?;
                    let jid = string(v)
                        .and_then(|s| rules::parse_jid(&s))
                        .map_err(|p| ctx.fail(at, p))?;
                    owner = Some(jid);
                }
                "chat_list" => {
                    let seed = ListSeed {
                        ctx,
                        list: "chat_list",
                        limit: ("max_chats", limits.max_chats),
                        names: &CHAT_FIELDS,
                        convert: chat,
                    };
                    chats = Some(
                        map.next_value_seed(seed)
                            .map_err(|e| ctx.malformed(at, e))?,
                    );
                }
                "wa_contacts" => {
                    let seed = ListSeed {
                        ctx,
                        list: "wa_contacts",
                        limit: ("max_contacts", limits.max_contacts),
                        names: &CONTACT_FIELDS,
                        convert: contact,
                    };
                    contacts = Some(
                        map.next_value_seed(seed)
                            .map_err(|e| ctx.malformed(at, e))?,
                    );
                }
                _ => {
                    let seed = ListSeed {
                        ctx,
                        list: "messages",
                        limit: ("max_messages", limits.max_messages),
                        names: &MESSAGE_FIELDS,
                        convert: message,
                    };
                    messages = Some(
                        map.next_value_seed(seed)
                            .map_err(|e| ctx.malformed(at, e))?,
                    );
                }
            }
        }
        if let Some(i) = seen.iter().position(|seen| !seen) {
            let name = ROOT_FIELDS.get(i).copied().unwrap_or_default();
            return Err(ctx.fail(Loc::ROOT, Problem::MissingField(name)));
        }
        match (owner, chats, contacts, messages) {
            (Some(owner), Some(chats), Some(contacts), Some(messages)) => Ok(History {
                owner,
                chats,
                contacts,
                messages,
            }),
            _ => Err(ctx.fail(Loc::ROOT, Problem::MissingField("jid"))),
        }
    }
}

fn check_version(v: &Value) -> Result<(), Problem> {
    match v {
        Value::Number(n) if n.as_u64() == Some(VERSION.into()) => Ok(()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Err(Problem::UnsupportedVersion {
            found: n.to_string(),
            supported: VERSION,
        }),
        other => Err(wrong("an integer", describe(other))),
    }
}

/// A list of records, each converted by `convert` as soon as it is read.
struct ListSeed<'c, 'l, const N: usize, T> {
    ctx: &'c Ctx<'l>,
    list: &'static str,
    limit: (&'static str, usize),
    names: &'static [&'static str; N],
    convert: fn(&mut Record<'_, N>) -> Result<T, ImportError>,
}

impl<'de, const N: usize, T> DeserializeSeed<'de> for ListSeed<'_, '_, N, T> {
    type Value = Vec<T>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_any(ListVisitor {
            ctx: self.ctx,
            at: Loc::field(self.list),
            seed: self,
        })
    }
}

struct ListVisitor<'c, 'l, const N: usize, T> {
    ctx: &'c Ctx<'l>,
    at: Loc<'static>,
    seed: ListSeed<'c, 'l, N, T>,
}

impl<'de, const N: usize, T> Visitor<'de> for ListVisitor<'_, '_, N, T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    reject_others!("an array"; visit_bool, visit_i64, visit_u64, visit_f64, visit_str, visit_unit, visit_map);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let ListSeed {
            ctx,
            list,
            limit: (limit, max),
            names,
            convert,
        } = self.seed;
        let mut out = Vec::new();
        loop {
            let at = Loc::entry(list, out.len());
            let seed = RecordSeed { ctx, at, names };
            let Some(slots) = seq
                .next_element_seed(seed)
                .map_err(|e| ctx.malformed(at, e))?
            else {
                return Ok(out);
            };
            if out.len() >= max {
                return Err(ctx.fail(self.at, Problem::TooMany { limit, max }));
            }
            let mut record = Record {
                slots,
                names,
                at,
                limits: ctx.limits,
            };
            out.push(convert(&mut record).map_err(|e| ctx.record(e))?);
        }
    }
}

/// One JSON object of a list: each known field's value, in `names` order.
struct RecordSeed<'c, 'l, const N: usize> {
    ctx: &'c Ctx<'l>,
    at: Loc<'static>,
    names: &'static [&'static str; N],
}

impl<'de, const N: usize> DeserializeSeed<'de> for RecordSeed<'_, '_, N> {
    type Value = [Option<Value>; N];

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for RecordSeed<'_, '_, N> {
    type Value = [Option<Value>; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    reject_others!("an object"; visit_bool, visit_i64, visit_u64, visit_f64, visit_str, visit_unit, visit_seq);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let ctx = self.ctx;
        let mut slots: [Option<Value>; N] = std::array::from_fn(|_| None);
        while let Some(key) = map
            .next_key_seed(KeySeed(self.names))
            .map_err(|e| ctx.malformed(self.at, e))?
        {
            let i = match key {
                Key::Known(i) => i,
                Key::Unknown(name) => {
                    return Err(ctx.fail(self.at, Problem::UnknownField(name)));
                }
            };
            let name = self.names.get(i).copied().unwrap_or_default();
            let at = self.at.with_field(name);
            let value: Value = map.next_value().map_err(|e| ctx.malformed(at, e))?;
            match slots.get_mut(i) {
                Some(Some(_)) => {
                    return Err(ctx.fail(self.at, Problem::DuplicateField(name.to_owned())));
                }
                Some(slot) => *slot = Some(value),
                None => {}
            }
        }
        Ok(slots)
    }
}

/// The fields of one record, taken out one by one with typed errors at their paths.
struct Record<'l, const N: usize> {
    slots: [Option<Value>; N],
    names: &'static [&'static str; N],
    at: Loc<'static>,
    limits: &'l Limits,
}

impl<const N: usize> Record<'_, N> {
    fn loc(&self, name: &'static str) -> Loc<'static> {
        self.at.with_field(name)
    }

    fn err(&self, name: &'static str, problem: Problem) -> ImportError {
        err(self.loc(name), problem)
    }

    /// The value of a field, which every record must have (null where the field is nullable).
    fn take(&mut self, name: &'static str) -> Result<Value, ImportError> {
        let slot = self
            .names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.slots.get_mut(i))
            .and_then(Option::take);
        slot.ok_or_else(|| err(self.at, Problem::MissingField(name)))
    }

    fn string(&mut self, name: &'static str) -> Result<String, ImportError> {
        let v = self.take(name)?;
        string(v).map_err(|p| self.err(name, p))
    }

    fn nullable_string(&mut self, name: &'static str) -> Result<Option<String>, ImportError> {
        match self.take(name)? {
            Value::Null => Ok(None),
            v => string(v).map(Some).map_err(|p| self.err(name, p)),
        }
    }

    /// A nullable text, within [`Limits::max_text_len`].
    fn text(&mut self, name: &'static str) -> Result<Option<String>, ImportError> {
        let text = self.nullable_string(name)?;
        if let Some(text) = &text {
            rules::check_text_len(text, self.limits.max_text_len).map_err(|p| self.err(name, p))?;
        }
        Ok(text)
    }

    fn jid(&mut self, name: &'static str) -> Result<Jid, ImportError> {
        let s = self.string(name)?;
        rules::parse_jid(&s).map_err(|p| self.err(name, p))
    }

    fn int(&mut self, name: &'static str) -> Result<i128, ImportError> {
        let v = self.take(name)?;
        match &v {
            Value::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from)),
            _ => None,
        }
        .ok_or_else(|| self.err(name, wrong("an integer", describe(&v))))
    }

    fn flag(&mut self, name: &'static str) -> Result<bool, ImportError> {
        match self.int(name)? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(self.err(
                name,
                Problem::NotAFlag(i64::try_from(n).unwrap_or(i64::MAX)),
            )),
        }
    }

    /// Unix seconds (the range is checked with the other rules).
    fn timestamp(&mut self, name: &'static str) -> Result<u64, ImportError> {
        let n = self.int(name)?;
        u64::try_from(n).map_err(|_| self.err(name, Problem::TimestampOutOfRange { unix: n }))
    }
}

fn string(v: Value) -> Result<String, Problem> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(wrong("a string", describe(&other))),
    }
}

fn chat(r: &mut Record<'_, 5>) -> Result<Chat, ImportError> {
    let jid = r.jid("key_remote_jid")?;
    let name = r.text("subject")?;
    let unread = r.int("unseen_message_count")?;
    let unread = u32::try_from(unread).map_err(|_| {
        r.err(
            "unseen_message_count",
            Problem::OutOfRange {
                value: unread.to_string(),
                range: "0 to 4294967295",
            },
        )
    })?;
    let last_activity = r.timestamp("sort_timestamp")?;
    let archived = r.flag("archived")?;
    Ok(Chat {
        jid,
        name,
        unread,
        last_activity,
        archived,
    })
}

fn contact(r: &mut Record<'_, 3>) -> Result<Contact, ImportError> {
    Ok(Contact {
        jid: r.jid("jid")?,
        name: r.text("display_name")?,
        notify: r.text("wa_name")?,
    })
}

fn message(r: &mut Record<'_, 9>) -> Result<HistoryMessage, ImportError> {
    let chat = r.jid("key_remote_jid")?;
    let from_me = r.flag("key_from_me")?;
    let id = r.string("key_id")?;
    let sender = match r.nullable_string("remote_resource")? {
        Some(s) => Some(rules::parse_jid(&s).map_err(|p| r.err("remote_resource", p))?),
        None => None,
    };
    let timestamp = r.timestamp("timestamp")?;
    let code = r.int("status")?;
    let status = i64::try_from(code)
        .ok()
        .and_then(status_from_code)
        .ok_or_else(|| {
            r.err(
                "status",
                Problem::UnknownStatus(i64::try_from(code).unwrap_or(i64::MAX)),
            )
        })?;
    let media_wa_type = r.int("media_wa_type")?;
    let data = r.text("data")?;
    let raw = r.nullable_string("raw_data")?;
    let content = match raw {
        Some(b64) => {
            let max = r.limits.max_raw_len;
            // Base64 grows 3 bytes into 4: refuse before decoding anything too long.
            if b64.len() / 4 > max / 3 + 1 {
                return Err(r.err(
                    "raw_data",
                    Problem::RawTooLong {
                        len: b64.len() / 4 * 3,
                        max,
                    },
                ));
            }
            let bytes = BASE64
                .decode(&b64)
                .map_err(|e| r.err("raw_data", Problem::BadBase64(e.to_string())))?;
            let content = content::decode(&bytes, max).map_err(|p| r.err("raw_data", p))?;
            content::check_text(data.as_deref(), &content).map_err(|p| r.err("data", p))?;
            content
        }
        None => match data {
            Some(text) => Message {
                conversation: Some(text),
                ..Message::default()
            },
            None => return Err(r.err("data", Problem::NoContent)),
        },
    };
    let kind = Kind::of(&content);
    let expected = type_code(kind);
    if media_wa_type != i128::from(expected) {
        return Err(r.err(
            "media_wa_type",
            Problem::TypeMismatch {
                found: i64::try_from(media_wa_type).unwrap_or(i64::MAX),
                expected,
                kind: kind.name(),
            },
        ));
    }
    Ok(HistoryMessage {
        chat,
        id,
        from_me,
        sender,
        timestamp,
        status,
        content,
    })
}
