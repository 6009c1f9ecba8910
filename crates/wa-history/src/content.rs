//! What both formats derive from a message's content: whether it is plain text, its kind (the
//! message type column of each format), and how deep its quotes nest.

use wa_proto::prost::Message as _;
use wa_proto::prost::encoding::encoded_len_varint;
use wa_proto::{ContextInfo, Message};

use crate::error::Problem;

/// The deepest chain of quotes a message may carry (a quote of a quote of ...). WhatsApp keeps
/// one level; the bound keeps every exported message within the protobuf decoder's recursion
/// limit (100 levels; each quote costs up to four).
pub const MAX_QUOTE_DEPTH: usize = 16;

/// The kind of content, which each format stores as a number of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Plain or extended text, or nothing the other kinds cover.
    Text,
    Image,
    /// Video or GIF.
    Video,
    /// Audio or voice note.
    Audio,
    Document,
    Sticker,
    Location,
    /// One contact card or several.
    Contact,
    /// A protocol event such as a revocation.
    Protocol,
}

impl Kind {
    /// The kind of `m`: the first content field set, in the order image, video, audio, document,
    /// sticker, location, contact(s), protocol; text otherwise.
    pub(crate) fn of(m: &Message) -> Self {
        if m.image_message.is_some() {
            Self::Image
        } else if m.video_message.is_some() {
            Self::Video
        } else if m.audio_message.is_some() {
            Self::Audio
        } else if m.document_message.is_some() {
            Self::Document
        } else if m.sticker_message.is_some() {
            Self::Sticker
        } else if m.location_message.is_some() {
            Self::Location
        } else if m.contact_message.is_some() || m.contacts_array_message.is_some() {
            Self::Contact
        } else if m.protocol_message.is_some() {
            Self::Protocol
        } else {
            Self::Text
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
            Self::Sticker => "sticker",
            Self::Location => "location",
            Self::Contact => "contact",
            Self::Protocol => "protocol message",
        }
    }
}

/// The text of `m` when `m` is a plain text message and nothing else: `conversation` set, every
/// other field absent. Both formats store such messages as their text alone.
///
/// Every field of `Message` is optional, and a present field always encodes, so "nothing else"
/// is "the encoding is exactly the `conversation` field": this stays right when the schema grows.
pub(crate) fn plain_text(m: &Message) -> Option<&str> {
    let text = m.conversation.as_deref()?;
    let len = text.len();
    // Field 1, wire type 2: a one-byte key, the length as a varint, the bytes.
    let field_len = 1 + encoded_len_varint(len as u64) + len;
    (m.encoded_len() == field_len).then_some(text)
}

/// The context infos of every content field of `m` (a contacts array has one per card too).
fn context_infos(m: &Message) -> impl Iterator<Item = &ContextInfo> {
    let cards = m
        .contacts_array_message
        .iter()
        .flat_map(|a| a.contacts.iter().map(|c| &c.context_info));
    [
        m.image_message.as_ref().map(|x| &x.context_info),
        m.contact_message.as_ref().map(|x| &x.context_info),
        m.location_message.as_ref().map(|x| &x.context_info),
        m.extended_text_message.as_ref().map(|x| &x.context_info),
        m.document_message.as_ref().map(|x| &x.context_info),
        m.audio_message.as_ref().map(|x| &x.context_info),
        m.video_message.as_ref().map(|x| &x.context_info),
        m.contacts_array_message.as_ref().map(|x| &x.context_info),
        m.sticker_message.as_ref().map(|x| &x.context_info),
    ]
    .into_iter()
    .flatten()
    .chain(cards)
    .filter_map(|c| c.as_deref())
}

/// How deep quotes nest in `m` (0 without quotes), walked with a heap stack so that a
/// caller-built chain of any depth cannot exhaust the call stack.
pub(crate) fn quote_depth(m: &Message) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(m, 0_usize)];
    while let Some((m, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        for info in context_infos(m) {
            if let Some(quoted) = &info.quoted_message {
                stack.push((quoted, depth + 1));
            }
        }
    }
    deepest
}

/// The rule both exporters and both importers apply to content.
pub(crate) fn check(m: &Message) -> Result<(), Problem> {
    let depth = quote_depth(m);
    if depth > MAX_QUOTE_DEPTH {
        return Err(Problem::QuotesTooDeep {
            depth,
            max: MAX_QUOTE_DEPTH,
        });
    }
    Ok(())
}

/// Decodes serialized content: at most `max` bytes, a valid `Message`, not a plain text (which
/// the formats store as text).
pub(crate) fn decode(bytes: &[u8], max: usize) -> Result<Message, Problem> {
    if bytes.len() > max {
        return Err(Problem::RawTooLong {
            len: bytes.len(),
            max,
        });
    }
    let m = Message::decode(bytes).map_err(|e| Problem::BadProtobuf(e.to_string()))?;
    if plain_text(&m).is_some() {
        return Err(Problem::PlainTextAsRaw);
    }
    Ok(m)
}

/// Checks that `stored`, the text a format keeps next to serialized content, is the content's
/// own text ([`Message::text`]).
pub(crate) fn check_text(stored: Option<&str>, m: &Message) -> Result<(), Problem> {
    let expected = m.text();
    if stored == expected {
        Ok(())
    } else {
        Err(Problem::TextMismatch {
            found: stored.map(str::to_owned),
            expected: expected.map(str::to_owned),
        })
    }
}
