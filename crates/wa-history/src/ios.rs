//! The iOS format: a binary property list modelled on `ChatStorage.sqlite` (see the crate docs
//! for the field table), its exporter and its strict importer.
//!
//! Both directions use `plist`'s event streams, never a `plist::Value` tree: the exporter writes
//! events straight into `plist`'s binary writer, and the importer pulls events from its binary
//! reader and walks the expected shape (a dictionary of arrays of dictionaries of scalars) with
//! its own code. The walk never goes deeper than that shape: anything else is a type error at
//! the first event that does not fit, so nesting depth and reference cycles are not an issue,
//! and the total of the strings and data it keeps is bounded (one stored string can be
//! referenced many times in a binary property list).

use std::borrow::Cow;
use std::io::Cursor;

use plist::Integer;
use plist::stream::{BinaryReader, BinaryWriter, Event, OwnedEvent, Writer};
use wa_binary::Jid;
use wa_proto::Message;
use wa_proto::prost::Message as _;

use crate::content::{self, Kind};
use crate::error::{ExportError, ImportError, Problem};
use crate::limits::Limits;
use crate::model::{Chat, Contact, Format, History, HistoryMessage, MessageStatus};
use crate::path::Loc;
use crate::rules::{self, END_TIMESTAMP, Field, Item, MIN_TIMESTAMP, Violation};

/// The version this module writes and reads.
pub(crate) const VERSION: u32 = 1;

/// Seconds from the Unix epoch to the Apple (Core Data) epoch, 2001-01-01T00:00:00Z.
pub const APPLE_EPOCH_UNIX: u64 = 978_307_200;

/// The length of the trailer of a binary property list.
const TRAILER_LEN: usize = 32;

/// iOS's `ZMESSAGESTATUS` for a message status.
pub(crate) fn status_code(status: MessageStatus) -> i64 {
    match status {
        MessageStatus::Pending => 1,
        MessageStatus::ServerAck => 2,
        MessageStatus::Delivered => 3,
        MessageStatus::Read => 6,
        MessageStatus::Played => 7,
        MessageStatus::Error => 12,
    }
}

fn status_from_code(code: i64) -> Option<MessageStatus> {
    MessageStatus::ALL
        .into_iter()
        .find(|s| status_code(*s) == code)
}

/// iOS's `ZMESSAGETYPE` for a kind of content.
pub(crate) fn type_code(kind: Kind) -> i64 {
    match kind {
        Kind::Text => 0,
        Kind::Image => 1,
        Kind::Video => 2,
        Kind::Audio => 3,
        Kind::Contact => 4,
        Kind::Location => 5,
        Kind::Protocol => 6,
        Kind::Document => 8,
        Kind::Sticker => 15,
    }
}

/// A Unix timestamp (whole seconds, checked to be in range) as seconds since the Apple epoch:
/// exact, since both are far below 2^53.
pub(crate) fn unix_to_apple(unix: u64) -> f64 {
    (unix as f64) - (APPLE_EPOCH_UNIX as f64)
}

/// Seconds since the Apple epoch as a Unix timestamp in 2009..2100: whole seconds only.
fn apple_to_unix(apple: f64) -> Result<u64, Problem> {
    if !apple.is_finite() {
        return Err(Problem::OutOfRange {
            value: apple.to_string(),
            range: "a finite number of seconds",
        });
    }
    if apple.fract() != 0.0 {
        return Err(Problem::NotWholeSeconds(apple));
    }
    let unix = apple + APPLE_EPOCH_UNIX as f64;
    if unix < MIN_TIMESTAMP as f64 || unix >= END_TIMESTAMP as f64 {
        // A saturating conversion: only used to report the value.
        return Err(Problem::TimestampOutOfRange { unix: unix as i128 });
    }
    // In range and whole, so the conversion is exact.
    Ok(unix as u64)
}

// ---------------------------------------------------------------------------------------------
// Export.

/// Writes `history`, which the caller has checked against the rules, as an iOS export.
pub(crate) fn export(history: &History) -> Result<Vec<u8>, ExportError> {
    let mut order: Vec<&HistoryMessage> = history.messages.iter().collect();
    // Newest first: the reverse of the canonical order.
    order.sort_by(|a, b| HistoryMessage::canonical_cmp(b, a));

    let mut out = Vec::new();
    let mut w = PlistOut(BinaryWriter::new(&mut out));
    w.write(history, &order)
        .map_err(|e| ExportError::new("", Problem::Encoder(e.to_string())))?;
    Ok(out)
}

struct PlistOut<W: std::io::Write>(BinaryWriter<W>);

impl<W: std::io::Write> PlistOut<W> {
    fn key(&mut self, key: &'static str) -> Result<(), plist::Error> {
        self.0.write_string(Cow::Borrowed(key))
    }

    fn string(&mut self, key: &'static str, value: &str) -> Result<(), plist::Error> {
        self.key(key)?;
        self.0.write_string(Cow::Borrowed(value))
    }

    fn opt_string(&mut self, key: &'static str, value: Option<&str>) -> Result<(), plist::Error> {
        match value {
            Some(value) => self.string(key, value),
            None => Ok(()),
        }
    }

    fn jid(&mut self, key: &'static str, jid: &Jid) -> Result<(), plist::Error> {
        self.string(key, &jid.to_wire_string())
    }

    fn int(&mut self, key: &'static str, value: i64) -> Result<(), plist::Error> {
        self.key(key)?;
        self.0.write_integer(Integer::from(value))
    }

    fn date(&mut self, key: &'static str, unix: u64) -> Result<(), plist::Error> {
        self.key(key)?;
        self.0.write_real(unix_to_apple(unix))
    }

    fn boolean(&mut self, key: &'static str, value: bool) -> Result<(), plist::Error> {
        self.key(key)?;
        self.0.write_boolean(value)
    }

    fn write(&mut self, h: &History, order: &[&HistoryMessage]) -> Result<(), plist::Error> {
        self.0.write_start_dictionary(None)?;
        self.int("ZVERSION", VERSION.into())?;
        self.jid("ZOWNERJID", &h.owner)?;

        self.key("ZWACHATSESSION")?;
        self.0.write_start_array(Some(h.chats.len() as u64))?;
        for c in &h.chats {
            self.0.write_start_dictionary(None)?;
            self.jid("ZCONTACTJID", &c.jid)?;
            self.opt_string("ZPARTNERNAME", c.name.as_deref())?;
            self.int("ZUNREADCOUNT", c.unread.into())?;
            self.date("ZLASTMESSAGEDATE", c.last_activity)?;
            self.boolean("ZARCHIVED", c.archived)?;
            self.0.write_end_collection()?;
        }
        self.0.write_end_collection()?;

        self.key("ZWAADDRESSBOOKCONTACT")?;
        self.0.write_start_array(Some(h.contacts.len() as u64))?;
        for c in &h.contacts {
            self.0.write_start_dictionary(None)?;
            self.jid("ZWHATSAPPID", &c.jid)?;
            self.opt_string("ZFULLNAME", c.name.as_deref())?;
            self.opt_string("ZPUSHNAME", c.notify.as_deref())?;
            self.0.write_end_collection()?;
        }
        self.0.write_end_collection()?;

        self.key("ZWAMESSAGE")?;
        self.0.write_start_array(Some(order.len() as u64))?;
        for m in order {
            self.0.write_start_dictionary(None)?;
            self.string("ZSTANZAID", &m.id)?;
            self.boolean("ZISFROMME", m.from_me)?;
            // iOS names the other party: the sender of an incoming message, the recipient of
            // an outgoing one. Either way that is the chat.
            self.jid(if m.from_me { "ZTOJID" } else { "ZFROMJID" }, &m.chat)?;
            if let Some(sender) = &m.sender {
                self.jid("ZGROUPMEMBERJID", sender)?;
            }
            self.date("ZMESSAGEDATE", m.timestamp)?;
            self.int("ZMESSAGESTATUS", status_code(m.status))?;
            self.int("ZMESSAGETYPE", type_code(Kind::of(&m.content)))?;
            match content::plain_text(&m.content) {
                Some(text) => self.string("ZTEXT", text)?,
                None => {
                    self.opt_string("ZTEXT", m.content.text())?;
                    self.key("ZMEDIAITEM")?;
                    self.0.write_data(Cow::Owned(m.content.encode_to_vec()))?;
                }
            }
            self.0.write_end_collection()?;
        }
        self.0.write_end_collection()?;

        self.0.write_end_collection()
    }
}

// ---------------------------------------------------------------------------------------------
// Import.

const ROOT_FIELDS: [(&str, Ty); 5] = [
    ("ZVERSION", Ty::Int),
    ("ZOWNERJID", Ty::Str),
    ("ZWACHATSESSION", Ty::Array),
    ("ZWAADDRESSBOOKCONTACT", Ty::Array),
    ("ZWAMESSAGE", Ty::Array),
];
const CHAT_FIELDS: [(&str, Ty); 5] = [
    ("ZCONTACTJID", Ty::Str),
    ("ZPARTNERNAME", Ty::Text),
    ("ZUNREADCOUNT", Ty::Int),
    ("ZLASTMESSAGEDATE", Ty::Real),
    ("ZARCHIVED", Ty::Bool),
];
const CONTACT_FIELDS: [(&str, Ty); 3] = [
    ("ZWHATSAPPID", Ty::Str),
    ("ZFULLNAME", Ty::Text),
    ("ZPUSHNAME", Ty::Text),
];
const MESSAGE_FIELDS: [(&str, Ty); 10] = [
    ("ZSTANZAID", Ty::Str),
    ("ZISFROMME", Ty::Bool),
    ("ZFROMJID", Ty::Str),
    ("ZTOJID", Ty::Str),
    ("ZGROUPMEMBERJID", Ty::Str),
    ("ZMESSAGEDATE", Ty::Real),
    ("ZMESSAGESTATUS", Ty::Int),
    ("ZMESSAGETYPE", Ty::Int),
    ("ZTEXT", Ty::Text),
    ("ZMEDIAITEM", Ty::Data),
];

/// The property list types the format uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    /// A string that is not a text: a JID or an id, with limits of their own.
    Str,
    /// A text or name, within [`Limits::max_text_len`].
    Text,
    Int,
    Real,
    Bool,
    Data,
    Array,
}

impl Ty {
    fn expected(self) -> &'static str {
        match self {
            Ty::Str | Ty::Text => "a string",
            Ty::Int => "an integer",
            Ty::Real => "a real",
            Ty::Bool => "a boolean",
            Ty::Data => "data",
            Ty::Array => "an array",
        }
    }
}

/// A scalar read from the property list.
#[derive(Clone, Debug, PartialEq)]
enum Scalar {
    Str(String),
    Int(i128),
    Real(f64),
    Bool(bool),
    Data(Vec<u8>),
}

/// How an event reads in an error message.
fn describe(e: &OwnedEvent) -> String {
    match e {
        Event::StartArray(_) => "an array".to_owned(),
        Event::StartDictionary(_) => "a dictionary".to_owned(),
        Event::EndCollection => "the end of a collection".to_owned(),
        Event::Boolean(b) => format!("the boolean {b}"),
        Event::Data(d) => format!("data ({} bytes)", d.len()),
        Event::Date(_) => "a date".to_owned(),
        Event::Integer(i) => format!("the integer {i}"),
        Event::Real(r) => format!("the real {r}"),
        Event::String(s) => format!("the string {:?}", rules::clip(s, 40)),
        Event::Uid(_) => "a UID".to_owned(),
        _ => "an unknown kind of value".to_owned(),
    }
}

fn err(at: Loc<'_>, problem: Problem) -> ImportError {
    ImportError::new(Format::Ios, at.to_string(), problem)
}

fn wrong(at: Loc<'_>, expected: &'static str, found: &OwnedEvent) -> ImportError {
    err(
        at,
        Problem::WrongType {
            expected,
            found: describe(found),
        },
    )
}

fn malformed(at: Loc<'_>, detail: String) -> ImportError {
    err(
        at,
        Problem::Malformed {
            container: "binary property list",
            detail,
        },
    )
}

/// Reads an iOS export (its size already checked against `limits.max_bytes`).
pub(crate) fn import(bytes: &[u8], limits: &Limits) -> Result<History, ImportError> {
    if !bytes.starts_with(b"bplist00") {
        let problem = if crate::detect(bytes) == Some(Format::Android) {
            Problem::WrongFormat {
                expected: Format::Ios,
                found: Format::Android,
            }
        } else if bytes.starts_with(b"bplist") {
            Problem::Malformed {
                container: "binary property list",
                detail: format!(
                    "magic {:?}: only \"bplist00\" property lists are read",
                    String::from_utf8_lossy(bytes.get(..8).unwrap_or(bytes))
                ),
            }
        } else {
            Problem::Malformed {
                container: "binary property list",
                detail: "no \"bplist00\" magic (an XML or text property list is not an iOS export)"
                    .to_owned(),
            }
        };
        return Err(err(Loc::ROOT, problem));
    }
    check_trailer(bytes)?;

    let mut r = Reader {
        events: BinaryReader::new(Cursor::new(bytes)),
        kept: 0,
        limits,
    };
    let history = r.document()?;
    if let Some(event) = r.events.next() {
        let detail = match event {
            Ok(e) => format!("{} after the root dictionary", describe(&e)),
            Err(e) => e.to_string(),
        };
        return Err(malformed(Loc::ROOT, detail));
    }

    rules::check(&history).map_err(|v| violation(&history, v))?;
    // Newest first is the format's order: check it, then turn it into the canonical order.
    let mut history = history;
    for (i, pair) in history.messages.windows(2).enumerate() {
        if let [a, b] = pair
            && HistoryMessage::canonical_cmp(a, b).is_le()
        {
            return Err(err(
                Loc::entry("ZWAMESSAGE", i + 1),
                Problem::OutOfOrder(
                    "an iOS export lists messages newest first: by descending date, then id, then chat",
                ),
            ));
        }
    }
    history.messages.reverse();
    Ok(history)
}

/// Checks the 32-byte trailer of a binary property list beyond what `plist` checks: its
/// padding is zero, and the offset table ends exactly where the trailer starts (so nothing
/// follows the document).
fn check_trailer(bytes: &[u8]) -> Result<(), ImportError> {
    let at = Loc::ROOT;
    let too_short = || malformed(at, format!("{} bytes is too short", bytes.len()));
    let trailer_start = bytes.len().checked_sub(TRAILER_LEN).ok_or_else(too_short)?;
    if trailer_start < 8 {
        return Err(too_short());
    }
    let trailer = bytes.get(trailer_start..).ok_or_else(too_short)?;
    let (padding, rest) = trailer.split_at_checked(6).ok_or_else(too_short)?;
    let be = |range: std::ops::Range<usize>| -> u64 {
        rest.get(range)
            .map(|b| b.iter().fold(0_u64, |acc, &x| (acc << 8) | u64::from(x)))
            .unwrap_or(u64::MAX)
    };
    if padding.iter().any(|&b| b != 0) {
        return Err(malformed(
            at,
            "the trailer's padding is not zero (corrupt, or followed by trailing data)".to_owned(),
        ));
    }
    let offset_size = be(0..1);
    let num_objects = be(2..10);
    let table = be(18..26);
    let table_end = num_objects
        .checked_mul(offset_size)
        .and_then(|len| len.checked_add(table));
    if table_end != Some(trailer_start as u64) {
        return Err(malformed(
            at,
            "the offset table does not end where the trailer starts (truncated, or trailing data)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Where a rule of the model was broken, in this format's names.
fn violation(h: &History, v: Violation) -> ImportError {
    let at = match (v.item, v.field) {
        (Item::Owner, _) => Loc::field("ZOWNERJID"),
        (Item::Chat(i), Field::LastActivity) => {
            Loc::entry("ZWACHATSESSION", i).with_field("ZLASTMESSAGEDATE")
        }
        (Item::Chat(i), _) => Loc::entry("ZWACHATSESSION", i).with_field("ZCONTACTJID"),
        (Item::Contact(i), _) => Loc::entry("ZWAADDRESSBOOKCONTACT", i).with_field("ZWHATSAPPID"),
        (Item::Message(i), field) => Loc::entry("ZWAMESSAGE", i).with_field(match field {
            Field::Id => "ZSTANZAID",
            Field::Sender => "ZGROUPMEMBERJID",
            Field::Timestamp => "ZMESSAGEDATE",
            Field::Content => "ZMEDIAITEM",
            Field::Chat | Field::Jid | Field::LastActivity => {
                if h.messages.get(i).is_some_and(|m| m.from_me) {
                    "ZTOJID"
                } else {
                    "ZFROMJID"
                }
            }
        }),
    };
    err(at, v.problem)
}

/// A pull parser over `plist`'s events for the one shape an export has.
struct Reader<'a, 'l> {
    events: BinaryReader<Cursor<&'a [u8]>>,
    /// Bytes of strings and data kept so far.
    kept: usize,
    limits: &'l Limits,
}

impl Reader<'_, '_> {
    /// The next event; the end of the events or a parse error is malformed input at `at`.
    fn next(&mut self, at: Loc<'_>) -> Result<OwnedEvent, ImportError> {
        match self.events.next() {
            Some(Ok(event)) => Ok(event),
            Some(Err(e)) => Err(malformed(at, e.to_string())),
            None => Err(malformed(at, "unexpected end of the document".to_owned())),
        }
    }

    /// Counts `len` more bytes kept against [`Limits::max_bytes`].
    fn keep(&mut self, at: Loc<'_>, len: usize) -> Result<(), ImportError> {
        self.kept = self.kept.saturating_add(len);
        if self.kept > self.limits.max_bytes {
            return Err(err(
                at,
                Problem::DecodedTooLarge {
                    max: self.limits.max_bytes,
                },
            ));
        }
        Ok(())
    }

    /// The next key of a dictionary at `at`, or `None` at its end: the index of a field in
    /// `fields`, which must not have been seen yet.
    fn key(
        &mut self,
        at: Loc<'_>,
        fields: &[(&'static str, Ty)],
        seen: &mut [bool],
    ) -> Result<Option<usize>, ImportError> {
        let event = self.next(at)?;
        let key = match event {
            Event::EndCollection => return Ok(None),
            Event::String(key) => key,
            other => return Err(wrong(at, "a string key", &other)),
        };
        let Some(i) = fields.iter().position(|(name, _)| *name == key) else {
            return Err(err(at, Problem::UnknownField(rules::clip(&key, 64))));
        };
        match seen.get_mut(i) {
            Some(true) => Err(err(at, Problem::DuplicateField(key.into_owned()))),
            Some(seen) => {
                *seen = true;
                Ok(Some(i))
            }
            None => Ok(Some(i)),
        }
    }

    /// A scalar of type `ty` at `at`.
    fn scalar(&mut self, at: Loc<'_>, ty: Ty) -> Result<Scalar, ImportError> {
        let event = self.next(at)?;
        let scalar = match (ty, event) {
            (Ty::Str, Event::String(s)) => {
                self.keep(at, s.len())?;
                Scalar::Str(s.into_owned())
            }
            (Ty::Text, Event::String(s)) => {
                rules::check_text_len(&s, self.limits.max_text_len).map_err(|p| err(at, p))?;
                self.keep(at, s.len())?;
                Scalar::Str(s.into_owned())
            }
            (Ty::Data, Event::Data(d)) => {
                self.keep(at, d.len())?;
                Scalar::Data(d.into_owned())
            }
            (Ty::Int, Event::Integer(i)) => Scalar::Int(
                i.as_signed()
                    .map(i128::from)
                    .or_else(|| i.as_unsigned().map(i128::from))
                    .unwrap_or_default(),
            ),
            (Ty::Real, Event::Real(r)) => Scalar::Real(r),
            (Ty::Bool, Event::Boolean(b)) => Scalar::Bool(b),
            (ty, other) => return Err(wrong(at, ty.expected(), &other)),
        };
        Ok(scalar)
    }

    /// The root dictionary.
    fn document(&mut self) -> Result<History, ImportError> {
        let at = Loc::ROOT;
        match self.next(at)? {
            Event::StartDictionary(_) => {}
            other => return Err(wrong(at, "a dictionary", &other)),
        }
        let mut seen = [false; ROOT_FIELDS.len()];
        let mut owner = None;
        let mut chats = Vec::new();
        let mut contacts = Vec::new();
        let mut messages = Vec::new();
        while let Some(i) = self.key(at, &ROOT_FIELDS, &mut seen)? {
            let (name, ty) = ROOT_FIELDS.get(i).copied().unwrap_or(("", Ty::Array));
            let at = Loc::field(name);
            match name {
                "ZVERSION" => {
                    let version = match self.scalar(at, ty)? {
                        Scalar::Int(v) => v,
                        _ => -1,
                    };
                    if version != i128::from(VERSION) {
                        return Err(err(
                            at,
                            Problem::UnsupportedVersion {
                                found: version.to_string(),
                                supported: VERSION,
                            },
                        ));
                    }
                }
                "ZOWNERJID" => {
                    let s = self.string(at)?;
                    owner = Some(rules::parse_jid(&s).map_err(|p| err(at, p))?);
                }
                "ZWACHATSESSION" => {
                    let max = ("max_chats", self.limits.max_chats);
                    chats = self.list(name, max, &CHAT_FIELDS, chat)?;
                }
                "ZWAADDRESSBOOKCONTACT" => {
                    let max = ("max_contacts", self.limits.max_contacts);
                    contacts = self.list(name, max, &CONTACT_FIELDS, contact)?;
                }
                _ => {
                    let max = ("max_messages", self.limits.max_messages);
                    messages = self.list(name, max, &MESSAGE_FIELDS, message)?;
                }
            }
        }
        if let Some(i) = seen.iter().position(|seen| !seen) {
            let name = ROOT_FIELDS.get(i).map_or("", |(name, _)| *name);
            return Err(err(at, Problem::MissingField(name)));
        }
        let owner = owner.ok_or_else(|| err(at, Problem::MissingField("ZOWNERJID")))?;
        Ok(History {
            owner,
            chats,
            contacts,
            messages,
        })
    }

    fn string(&mut self, at: Loc<'_>) -> Result<String, ImportError> {
        match self.scalar(at, Ty::Str)? {
            Scalar::Str(s) => Ok(s),
            _ => Err(err(at, Problem::MissingField("string"))),
        }
    }

    /// An array of records, each converted by `convert` as soon as it is read.
    fn list<const N: usize, T>(
        &mut self,
        list: &'static str,
        (limit, max): (&'static str, usize),
        fields: &'static [(&'static str, Ty); N],
        convert: fn(&mut Record<'_, N>) -> Result<T, ImportError>,
    ) -> Result<Vec<T>, ImportError> {
        let at = Loc::field(list);
        match self.next(at)? {
            // The declared length is known before any entry is read: refuse early.
            Event::StartArray(Some(len)) if len > max as u64 => {
                return Err(err(at, Problem::TooMany { limit, max }));
            }
            Event::StartArray(_) => {}
            other => return Err(wrong(at, "an array", &other)),
        }
        let mut out = Vec::new();
        loop {
            let at = Loc::entry(list, out.len());
            match self.next(at)? {
                Event::EndCollection => return Ok(out),
                Event::StartDictionary(_) => {}
                other => return Err(wrong(at, "a dictionary", &other)),
            }
            if out.len() >= max {
                return Err(err(Loc::field(list), Problem::TooMany { limit, max }));
            }
            let mut slots: [Option<Scalar>; N] = std::array::from_fn(|_| None);
            let mut seen = [false; N];
            while let Some(i) = self.key(at, fields, &mut seen)? {
                let (name, ty) = fields.get(i).copied().unwrap_or(("", Ty::Str));
                let value = self.scalar(at.with_field(name), ty)?;
                if let Some(slot) = slots.get_mut(i) {
                    *slot = Some(value);
                }
            }
            let mut record = Record {
                slots,
                fields,
                at,
                limits: self.limits,
            };
            out.push(convert(&mut record)?);
        }
    }
}

/// The fields of one record, taken out one by one with typed errors at their paths.
struct Record<'l, const N: usize> {
    slots: [Option<Scalar>; N],
    fields: &'static [(&'static str, Ty); N],
    at: Loc<'static>,
    limits: &'l Limits,
}

impl<const N: usize> Record<'_, N> {
    fn err(&self, name: &'static str, problem: Problem) -> ImportError {
        err(self.at.with_field(name), problem)
    }

    fn opt(&mut self, name: &'static str) -> Option<Scalar> {
        self.fields
            .iter()
            .position(|(n, _)| *n == name)
            .and_then(|i| self.slots.get_mut(i))
            .and_then(Option::take)
    }

    fn req(&mut self, name: &'static str) -> Result<Scalar, ImportError> {
        self.opt(name)
            .ok_or_else(|| err(self.at, Problem::MissingField(name)))
    }

    // The reader checked each value's type against `fields`, so the other arms below are
    // unreachable; they report a missing field rather than panic.

    fn opt_string(&mut self, name: &'static str) -> Option<String> {
        match self.opt(name) {
            Some(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn string(&mut self, name: &'static str) -> Result<String, ImportError> {
        match self.req(name)? {
            Scalar::Str(s) => Ok(s),
            _ => Err(err(self.at, Problem::MissingField(name))),
        }
    }

    fn int(&mut self, name: &'static str) -> Result<i128, ImportError> {
        match self.req(name)? {
            Scalar::Int(i) => Ok(i),
            _ => Err(err(self.at, Problem::MissingField(name))),
        }
    }

    fn boolean(&mut self, name: &'static str) -> Result<bool, ImportError> {
        match self.req(name)? {
            Scalar::Bool(b) => Ok(b),
            _ => Err(err(self.at, Problem::MissingField(name))),
        }
    }

    fn date(&mut self, name: &'static str) -> Result<u64, ImportError> {
        match self.req(name)? {
            Scalar::Real(r) => apple_to_unix(r).map_err(|p| self.err(name, p)),
            _ => Err(err(self.at, Problem::MissingField(name))),
        }
    }

    fn jid(&mut self, name: &'static str) -> Result<Jid, ImportError> {
        let s = self.string(name)?;
        rules::parse_jid(&s).map_err(|p| self.err(name, p))
    }

    fn opt_jid(&mut self, name: &'static str) -> Result<Option<Jid>, ImportError> {
        match self.opt_string(name) {
            Some(s) => rules::parse_jid(&s)
                .map(Some)
                .map_err(|p| self.err(name, p)),
            None => Ok(None),
        }
    }
}

fn chat(r: &mut Record<'_, 5>) -> Result<Chat, ImportError> {
    let jid = r.jid("ZCONTACTJID")?;
    let name = r.opt_string("ZPARTNERNAME");
    let unread = r.int("ZUNREADCOUNT")?;
    let unread = u32::try_from(unread).map_err(|_| {
        r.err(
            "ZUNREADCOUNT",
            Problem::OutOfRange {
                value: unread.to_string(),
                range: "0 to 4294967295",
            },
        )
    })?;
    let last_activity = r.date("ZLASTMESSAGEDATE")?;
    let archived = r.boolean("ZARCHIVED")?;
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
        jid: r.jid("ZWHATSAPPID")?,
        name: r.opt_string("ZFULLNAME"),
        notify: r.opt_string("ZPUSHNAME"),
    })
}

fn message(r: &mut Record<'_, 10>) -> Result<HistoryMessage, ImportError> {
    let id = r.string("ZSTANZAID")?;
    let from_me = r.boolean("ZISFROMME")?;
    let from = r.opt_jid("ZFROMJID")?;
    let to = r.opt_jid("ZTOJID")?;
    let chat = match (from_me, from, to) {
        (true, None, Some(chat)) | (false, Some(chat), None) => chat,
        (true, Some(_), _) => {
            return Err(r.err(
                "ZFROMJID",
                Problem::Direction(
                    "an outgoing message has no ZFROMJID: its chat is ZTOJID, the recipient",
                ),
            ));
        }
        (false, _, Some(_)) => {
            return Err(r.err(
                "ZTOJID",
                Problem::Direction(
                    "an incoming message has no ZTOJID: its chat is ZFROMJID, the sender",
                ),
            ));
        }
        (true, None, None) => return Err(err(r.at, Problem::MissingField("ZTOJID"))),
        (false, None, None) => return Err(err(r.at, Problem::MissingField("ZFROMJID"))),
    };
    let sender = r.opt_jid("ZGROUPMEMBERJID")?;
    let timestamp = r.date("ZMESSAGEDATE")?;
    let code = r.int("ZMESSAGESTATUS")?;
    let status = i64::try_from(code)
        .ok()
        .and_then(status_from_code)
        .ok_or_else(|| {
            r.err(
                "ZMESSAGESTATUS",
                Problem::UnknownStatus(i64::try_from(code).unwrap_or(i64::MAX)),
            )
        })?;
    let message_type = r.int("ZMESSAGETYPE")?;
    let text = r.opt_string("ZTEXT");
    let content = match r.opt("ZMEDIAITEM") {
        Some(Scalar::Data(bytes)) => {
            let content = content::decode(&bytes, r.limits.max_raw_len)
                .map_err(|p| r.err("ZMEDIAITEM", p))?;
            content::check_text(text.as_deref(), &content).map_err(|p| r.err("ZTEXT", p))?;
            content
        }
        _ => match text {
            Some(text) => Message {
                conversation: Some(text),
                ..Message::default()
            },
            None => return Err(r.err("ZTEXT", Problem::NoContent)),
        },
    };
    let kind = Kind::of(&content);
    let expected = type_code(kind);
    if message_type != i128::from(expected) {
        return Err(r.err(
            "ZMESSAGETYPE",
            Problem::TypeMismatch {
                found: i64::try_from(message_type).unwrap_or(i64::MAX),
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
