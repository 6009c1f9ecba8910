//! Parsing one WebSocket message into a [`Frame`] and building messages from frames.

use std::borrow::Cow;

use serde_json::Value;
use thiserror::Error;

use crate::json::too_deep_at;
use crate::metric::{Flags, Metric};
use crate::tag::{self, Tag, TagError};

/// The client's keepalive ping.
pub const KEEPALIVE: &str = "?,,";

/// One incoming WebSocket message, text or binary as its opcode says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsMessage<'a> {
    /// A text message (opcode 1): UTF-8 by the WebSocket rules.
    Text(&'a str),
    /// A binary message (opcode 2).
    Binary(&'a [u8]),
}

/// One outgoing WebSocket message, built from a [`Frame`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutMessage {
    /// Send as a text message.
    Text(String),
    /// Send as a binary message.
    Binary(Vec<u8>),
}

impl OutMessage {
    /// A view of the message as it would arrive.
    pub fn as_ws(&self) -> WsMessage<'_> {
        match self {
            Self::Text(text) => WsMessage::Text(text),
            Self::Binary(bytes) => WsMessage::Binary(bytes),
        }
    }
}

/// Who sent a message: binary frames differ by direction (only client→server ones carry a
/// metric and flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by the client (a request).
    ClientToServer,
    /// Sent by the server.
    ServerToClient,
}

/// Limits on untrusted input, with safe defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest message accepted, in bytes (default 16 MiB; the largest history chunks real
    /// servers sent were a few hundred KiB).
    pub max_frame_len: usize,
    /// The deepest nesting of arrays and objects in a JSON payload (default 32; real payloads
    /// nest 4 deep). `serde_json` also refuses nesting beyond 128 on its own.
    pub max_json_depth: usize,
}

impl Limits {
    /// Sets [`Limits::max_frame_len`].
    pub fn with_max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }

    /// Sets [`Limits::max_json_depth`].
    pub fn with_max_json_depth(mut self, max_json_depth: usize) -> Self {
        self.max_json_depth = max_json_depth;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_len: 16 << 20,
            max_json_depth: 32,
        }
    }
}

/// The metric and flags bytes of a client→server binary frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BinaryHeader {
    /// What the request is about.
    pub metric: Metric,
    /// The request's flags.
    pub flags: Flags,
}

/// One WebSocket message of the protocol.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Frame<'a> {
    /// A text message `tag,JSON` or `tag,,JSON` (built as `tag,,JSON`).
    Json {
        /// The tag.
        tag: Tag<'a>,
        /// The JSON payload: an array for commands, an object for responses.
        payload: Value,
    },
    /// A text message `tag,` (or `tag,,`) without payload: valid, and means "no data".
    Empty {
        /// The tag.
        tag: Tag<'a>,
    },
    /// The server's keepalive answer `!<server-unix-ms>`.
    Pong {
        /// The server's clock in Unix milliseconds (also gives the clock skew).
        server_time_ms: u64,
    },
    /// The client's keepalive ping, `?,,`.
    Keepalive,
    /// A binary message: `tag,` then, client→server, metric and flags, then the sealed node.
    Binary {
        /// The tag.
        tag: Tag<'a>,
        /// Metric and flags: present exactly for client→server frames.
        header: Option<BinaryHeader>,
        /// The payload, still sealed (`HMAC ‖ IV ‖ ciphertext`): open it with `wa-crypto`.
        payload: Cow<'a, [u8]>,
    },
}

impl<'a> Frame<'a> {
    /// Parses one WebSocket message sent in `direction`.
    ///
    /// Text and binary are told apart by `message`'s variant (the opcode); a binary message is
    /// never given to the JSON parser.
    ///
    /// # Errors
    ///
    /// [`FrameError`] saying what is wrong: too large, no tag, a bad tag, a missing metric/flags
    /// header, a bad keepalive answer, JSON nested too deep or not JSON at all.
    pub fn parse(
        message: WsMessage<'a>,
        direction: Direction,
        limits: &Limits,
    ) -> Result<Self, FrameError> {
        let len = match message {
            WsMessage::Text(text) => text.len(),
            WsMessage::Binary(bytes) => bytes.len(),
        };
        if len > limits.max_frame_len {
            return Err(FrameError::TooLarge {
                len,
                limit: limits.max_frame_len,
            });
        }
        match message {
            WsMessage::Text(text) => parse_text(text, limits),
            WsMessage::Binary(bytes) => parse_binary(bytes, direction),
        }
    }

    /// The frame's tag, if it has one (keepalives have none).
    pub fn tag(&self) -> Option<&Tag<'a>> {
        match self {
            Self::Json { tag, .. } | Self::Empty { tag } | Self::Binary { tag, .. } => Some(tag),
            Self::Pong { .. } | Self::Keepalive => None,
        }
    }

    /// The frame as a message to send. Parsing the result (in the direction the frame's form
    /// implies) gives this frame back.
    pub fn to_message(&self) -> OutMessage {
        match self {
            Self::Json { tag, payload } => OutMessage::Text(format!("{tag},,{payload}")),
            Self::Empty { tag } => OutMessage::Text(format!("{tag},")),
            Self::Pong { server_time_ms } => OutMessage::Text(format!("!{server_time_ms}")),
            Self::Keepalive => OutMessage::Text(KEEPALIVE.to_owned()),
            Self::Binary {
                tag,
                header,
                payload,
            } => {
                let mut out = Vec::with_capacity(tag.as_str().len() + 3 + payload.len());
                out.extend_from_slice(tag.as_str().as_bytes());
                out.push(b',');
                if let Some(header) = header {
                    out.extend_from_slice(&[header.metric.0, header.flags.0]);
                }
                out.extend_from_slice(payload);
                OutMessage::Binary(out)
            }
        }
    }

    /// A frame that owns its data.
    pub fn into_owned(self) -> Frame<'static> {
        match self {
            Self::Json { tag, payload } => Frame::Json {
                tag: tag.into_owned(),
                payload,
            },
            Self::Empty { tag } => Frame::Empty {
                tag: tag.into_owned(),
            },
            Self::Pong { server_time_ms } => Frame::Pong { server_time_ms },
            Self::Keepalive => Frame::Keepalive,
            Self::Binary {
                tag,
                header,
                payload,
            } => Frame::Binary {
                tag: tag.into_owned(),
                header,
                payload: Cow::Owned(payload.into_owned()),
            },
        }
    }
}

fn parse_text<'a>(text: &'a str, limits: &Limits) -> Result<Frame<'a>, FrameError> {
    if text == KEEPALIVE {
        return Ok(Frame::Keepalive);
    }
    if let Some(ms) = text.strip_prefix('!') {
        return parse_pong(ms).map(|server_time_ms| Frame::Pong { server_time_ms });
    }
    let Some((tag, rest)) = text.split_once(',') else {
        return Err(FrameError::MissingComma);
    };
    let tag = Tag::new(tag)?;
    // `tag,JSON` and `tag,,JSON` are both valid; JSON never starts with a comma.
    let json = rest.strip_prefix(',').unwrap_or(rest);
    if json.is_empty() {
        return Ok(Frame::Empty { tag });
    }
    let offset = text.len() - json.len();
    if let Some(at) = too_deep_at(json, limits.max_json_depth) {
        return Err(FrameError::JsonTooDeep {
            limit: limits.max_json_depth,
            offset: offset + at,
        });
    }
    let payload =
        serde_json::from_str(json).map_err(|source| FrameError::Json { offset, source })?;
    Ok(Frame::Json { tag, payload })
}

fn parse_pong(ms: &str) -> Result<u64, FrameError> {
    let bad = || FrameError::BadPong { len: ms.len() + 1 };
    if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    ms.parse().map_err(|_| bad())
}

fn parse_binary(bytes: &[u8], direction: Direction) -> Result<Frame<'_>, FrameError> {
    // Search for the comma only where a tag can end, not through a megabyte of ciphertext.
    let window = bytes.get(..=Tag::MAX_LEN).unwrap_or(bytes);
    let Some(comma) = window.iter().position(|&b| b == b',') else {
        return Err(if bytes.len() > Tag::MAX_LEN {
            FrameError::Tag(TagError::TooLong { len: window.len() })
        } else {
            FrameError::MissingComma
        });
    };
    let (tag, rest) = bytes.split_at(comma);
    let rest = rest.get(1..).unwrap_or_default();
    tag::check(tag)?;
    // `check` accepted only printable ASCII, so this is valid UTF-8.
    let tag = std::str::from_utf8(tag).map_err(|err| TagError::NotPrintable {
        at: err.valid_up_to(),
        byte: 0,
    })?;
    let tag = Tag::new(tag)?;
    let (header, payload) = match direction {
        Direction::ServerToClient => (None, rest),
        Direction::ClientToServer => {
            let Some((&[metric, flags], payload)) = rest.split_first_chunk::<2>() else {
                return Err(FrameError::MissingHeader { len: rest.len() });
            };
            (
                Some(BinaryHeader {
                    metric: Metric(metric),
                    flags: Flags(flags),
                }),
                payload,
            )
        }
    };
    Ok(Frame::Binary {
        tag,
        header,
        payload: Cow::Borrowed(payload),
    })
}

/// Writes the start of a client→server binary frame, `tag,` metric flags, to `out`; the sealed
/// payload (`wa-crypto`'s `seal_into`) goes right after it.
pub fn binary_header(tag: &Tag<'_>, metric: Metric, flags: Flags, out: &mut Vec<u8>) {
    out.extend_from_slice(tag.as_str().as_bytes());
    out.extend_from_slice(&[b',', metric.0, flags.0]);
}

/// The logout message sent on an open socket: `goodbye,,["admin","Conn","disconnect"]`.
pub fn logout_frame() -> String {
    r#"goodbye,,["admin","Conn","disconnect"]"#.to_owned()
}

/// Why a WebSocket message is not a valid frame.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The message is larger than [`Limits::max_frame_len`].
    #[error("message of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// There is no `,` ending a tag.
    #[error("no ',' after the tag")]
    MissingComma,
    /// The tag breaks a rule.
    #[error("bad tag: {0}")]
    Tag(#[from] TagError),
    /// A client→server binary message ends before its metric and flags bytes.
    #[error("client binary frame has {len} bytes after the tag, metric and flags need 2")]
    MissingHeader {
        /// The bytes after the tag's comma.
        len: usize,
    },
    /// A text message starting with `!` is not `!` followed by decimal milliseconds.
    #[error("keepalive answer of {len} bytes is not '!' and decimal milliseconds")]
    BadPong {
        /// The message length.
        len: usize,
    },
    /// The JSON payload nests deeper than [`Limits::max_json_depth`].
    #[error("JSON payload nests deeper than {limit} levels at byte {offset}")]
    JsonTooDeep {
        /// The limit.
        limit: usize,
        /// Offset in the message of the bracket that crossed the limit.
        offset: usize,
    },
    /// The payload is not JSON.
    #[error("JSON payload starting at byte {offset}: {source}")]
    Json {
        /// Offset in the message where the JSON starts.
        offset: usize,
        /// What `serde_json` found (with line and column inside the payload).
        source: serde_json::Error,
    },
}
