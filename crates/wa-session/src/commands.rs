//! What a user of WhatsApp Web does: the commands, as binary requests (PROTOCOL.md §3.4).

use prost::Message as _;
use wa_binary::Node;
use wa_frame::{Flags, Metric};
use wa_proto::MediaKind;

use crate::error::CommandError;
use crate::event::RequestId;
use crate::session::{Session, UserKind};
use crate::time::Time;

/// An own presence state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceState {
    /// Online.
    Available,
    /// Offline.
    Unavailable,
    /// Typing (in a chat).
    Composing,
    /// Stopped typing.
    Paused,
    /// Recording a voice note.
    Recording,
}

impl PresenceState {
    fn name(self) -> &'static str {
        match self {
            PresenceState::Available => "available",
            PresenceState::Unavailable => "unavailable",
            PresenceState::Composing => "composing",
            PresenceState::Paused => "paused",
            PresenceState::Recording => "recording",
        }
    }

    /// The flags byte of PROTOCOL.md §3.3.
    fn flags(self) -> Flags {
        match self {
            PresenceState::Available => Flags(0xA0),
            PresenceState::Unavailable => Flags(0x10),
            PresenceState::Composing | PresenceState::Paused | PresenceState::Recording => {
                Flags(0x04)
            }
        }
    }
}

/// A group operation (PROTOCOL.md §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupOp {
    /// Add participants.
    Add,
    /// Remove participants.
    Remove,
    /// Make participants admins.
    Promote,
    /// Take admin rights away.
    Demote,
}

impl GroupOp {
    fn name(self) -> &'static str {
        match self {
            GroupOp::Add => "add",
            GroupOp::Remove => "remove",
            GroupOp::Promote => "promote",
            GroupOp::Demote => "demote",
        }
    }
}

/// A media file already encrypted and uploaded (e.g. with `wa-media` and the media host of
/// [`Session::media_conn`]): what a media message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedMedia {
    /// The kind.
    pub kind: MediaKind,
    /// The download URL.
    pub url: String,
    /// The path on the media hosts.
    pub direct_path: Option<String>,
    /// The MIME type of the plaintext.
    pub mimetype: String,
    /// The 32-byte media key.
    pub media_key: Vec<u8>,
    /// SHA-256 of the plaintext.
    pub file_sha256: Vec<u8>,
    /// SHA-256 of the uploaded body.
    pub file_enc_sha256: Vec<u8>,
    /// The plaintext's length.
    pub file_length: u64,
    /// A caption (images, videos, documents are shown with it).
    pub caption: Option<String>,
    /// A file name (documents).
    pub file_name: Option<String>,
    /// Pixel size (images, videos, stickers).
    pub dimensions: Option<(u32, u32)>,
    /// Duration in seconds (audio, video).
    pub seconds: Option<u32>,
    /// The streaming sidecar (video, audio).
    pub streaming_sidecar: Option<Vec<u8>>,
    /// A small JPEG preview.
    pub jpeg_thumbnail: Option<Vec<u8>>,
}

impl Session {
    /// Sends a text message to a user or group JID. Returns the request and the message id
    /// (acks name it); [`Reply::MessageSent`](crate::Reply::MessageSent) says the server stored it.
    ///
    /// # Errors
    /// When not connected, too many requests wait, or `to` is empty.
    pub fn send_text(
        &mut self,
        now: Time,
        to: &str,
        text: &str,
    ) -> Result<(RequestId, String), CommandError> {
        let message = wa_proto::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        };
        self.send_message(now, to, message)
    }

    /// Sends a media message describing an uploaded file.
    ///
    /// # Errors
    /// As [`Session::send_text`].
    pub fn send_media(
        &mut self,
        now: Time,
        to: &str,
        media: &UploadedMedia,
    ) -> Result<(RequestId, String), CommandError> {
        self.send_message(now, to, media_message(media, now))
    }

    /// Sends any message.
    ///
    /// # Errors
    /// As [`Session::send_text`].
    pub fn send_message(
        &mut self,
        now: Time,
        to: &str,
        message: wa_proto::Message,
    ) -> Result<(RequestId, String), CommandError> {
        if to.is_empty() {
            return Err(CommandError::InvalidArgument("empty recipient JID"));
        }
        let id = self.new_message_id();
        let info = wa_proto::WebMessageInfo {
            key: wa_proto::MessageKey {
                remote_jid: Some(wire_jid(to)),
                from_me: Some(true),
                id: Some(id.clone()),
                participant: None,
            },
            message: Some(message),
            message_timestamp: Some(now.as_secs()),
            status: Some(wa_proto::web_message_info::Status::Pending as i32),
            ..Default::default()
        };
        let epoch = self.next_epoch();
        let node = Node::new("action")
            .with_attr("type", "relay")
            .with_attr("epoch", epoch)
            .with_children(vec![Node::new("message").with_bytes(info.encode_to_vec())]);
        // A message to oneself carries the ack-request bit instead of "not ignore".
        let own = self.own_jid().is_some_and(|own| same_user(own, to));
        let flags = if own { Flags(0x40) } else { Flags(0x80) };
        let request = self.send_node(
            now,
            &node,
            Metric::MESSAGE,
            flags,
            UserKind::SendMessage(id.clone()),
            Some(id.clone()),
        )?;
        Ok((request, id))
    }

    /// Marks a chat read up to message `index` (sent by the chat's owner when `owner`).
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn mark_read(
        &mut self,
        now: Time,
        jid: &str,
        index: &str,
        owner: bool,
    ) -> Result<RequestId, CommandError> {
        let epoch = self.next_epoch();
        let node = Node::new("action")
            .with_attr("type", "set")
            .with_attr("epoch", epoch)
            .with_children(vec![
                Node::new("read")
                    .with_attr("jid", wire_jid(jid))
                    .with_attr("index", index.to_owned())
                    .with_attr("owner", if owner { "true" } else { "false" })
                    .with_attr("count", "1"),
            ]);
        self.send_node(now, &node, Metric::READ, Flags(0x80), UserKind::Raw, None)
    }

    /// Tells the server this device has message `id` of chat `jid` (sent by `participant` in a
    /// group): `["received", {type: "message", index, jid, owner: "false", participant?}]`,
    /// metric RECEIVED. Sent automatically for live messages unless
    /// `Config::delivery_receipts` is off.
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn send_receipt(
        &mut self,
        now: Time,
        jid: &str,
        id: &str,
        participant: Option<&str>,
    ) -> Result<RequestId, CommandError> {
        let epoch = self.next_epoch();
        let mut received = Node::new("received")
            .with_attr("type", "message")
            .with_attr("index", id.to_owned())
            .with_attr("jid", wire_jid(jid))
            .with_attr("owner", "false");
        if let Some(participant) = participant {
            received = received.with_attr("participant", wire_jid(participant));
        }
        let node = Node::new("action")
            .with_attr("type", "set")
            .with_attr("epoch", epoch)
            .with_children(vec![received]);
        self.send_node(
            now,
            &node,
            Metric::RECEIVED,
            Flags(0x80),
            UserKind::Raw,
            None,
        )
    }

    /// Sets the own presence, for everyone or (typing states) in one chat.
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn set_presence(
        &mut self,
        now: Time,
        state: PresenceState,
        to: Option<&str>,
    ) -> Result<RequestId, CommandError> {
        let epoch = self.next_epoch();
        let mut presence = Node::new("presence").with_attr("type", state.name());
        if let Some(to) = to {
            presence = presence.with_attr("to", wire_jid(to));
        }
        let node = Node::new("action")
            .with_attr("type", "set")
            .with_attr("epoch", epoch)
            .with_children(vec![presence]);
        self.send_node(
            now,
            &node,
            Metric::PRESENCE,
            state.flags(),
            UserKind::Raw,
            None,
        )
    }

    /// Subscribes to a contact's presence (`["action","presence","subscribe",jid]`).
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn subscribe_presence(&mut self, now: Time, jid: &str) -> Result<RequestId, CommandError> {
        self.send_json(
            now,
            serde_json::json!(["action", "presence", "subscribe", jid]),
        )
    }

    /// Asks for the chat list: [`Reply::Chats`](crate::Reply::Chats).
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn query_chats(&mut self, now: Time) -> Result<RequestId, CommandError> {
        let epoch = self.next_epoch();
        let node = Node::new("query")
            .with_attr("type", "chat")
            .with_attr("epoch", epoch);
        self.send_node(
            now,
            &node,
            Metric::QUERY_CHAT,
            Flags(0x80),
            UserKind::Chats,
            None,
        )
    }

    /// Asks for the contact list: [`Reply::Contacts`](crate::Reply::Contacts).
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn query_contacts(&mut self, now: Time) -> Result<RequestId, CommandError> {
        let epoch = self.next_epoch();
        let node = Node::new("query")
            .with_attr("type", "contacts")
            .with_attr("epoch", epoch);
        self.send_node(
            now,
            &node,
            Metric::QUERY_CONTACTS,
            Flags(0x80),
            UserKind::Contacts,
            None,
        )
    }

    /// Asks for up to `count` messages of a chat before message `before` (`(id, from_me)`), or
    /// the latest ones: [`Reply::Messages`](crate::Reply::Messages).
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn query_messages(
        &mut self,
        now: Time,
        jid: &str,
        count: u32,
        before: Option<(&str, bool)>,
    ) -> Result<RequestId, CommandError> {
        let epoch = self.next_epoch();
        let mut node = Node::new("query")
            .with_attr("type", "message")
            .with_attr("jid", wire_jid(jid))
            .with_attr("kind", "before")
            .with_attr("count", count.to_string());
        if let Some((index, owner)) = before {
            node = node
                .with_attr("index", index.to_owned())
                .with_attr("owner", if owner { "true" } else { "false" });
        }
        let node = node.with_attr("epoch", epoch);
        self.send_node(
            now,
            &node,
            Metric::QUERY_MESSAGES,
            Flags(0x80),
            UserKind::Messages,
            None,
        )
    }

    /// Creates a group with a subject and participants.
    ///
    /// # Errors
    /// When not connected, too many requests wait, or there are no participants.
    pub fn group_create(
        &mut self,
        now: Time,
        subject: &str,
        participants: &[&str],
    ) -> Result<RequestId, CommandError> {
        if participants.is_empty() {
            return Err(CommandError::InvalidArgument("a group needs participants"));
        }
        self.group(now, "create", None, Some(subject), participants)
    }

    /// Adds, removes, promotes or demotes participants of a group.
    ///
    /// # Errors
    /// When not connected, too many requests wait, or there are no participants.
    pub fn group_participants(
        &mut self,
        now: Time,
        group: &str,
        op: GroupOp,
        participants: &[&str],
    ) -> Result<RequestId, CommandError> {
        if participants.is_empty() {
            return Err(CommandError::InvalidArgument("no participants"));
        }
        self.group(now, op.name(), Some(group), None, participants)
    }

    /// Changes a group's subject.
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn group_subject(
        &mut self,
        now: Time,
        group: &str,
        subject: &str,
    ) -> Result<RequestId, CommandError> {
        self.group(now, "subject", Some(group), Some(subject), &[])
    }

    /// Leaves a group.
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn group_leave(&mut self, now: Time, group: &str) -> Result<RequestId, CommandError> {
        self.group(now, "leave", Some(group), None, &[])
    }

    fn group(
        &mut self,
        now: Time,
        op: &str,
        group: Option<&str>,
        subject: Option<&str>,
        participants: &[&str],
    ) -> Result<RequestId, CommandError> {
        let author = self
            .own_jid()
            .map(wire_jid)
            .ok_or(CommandError::NotConnected)?;
        let tag = self.next_tag();
        let epoch = self.next_epoch();
        let mut group_node = Node::new("group")
            .with_attr("author", author)
            .with_attr("id", tag.clone())
            .with_attr("type", op.to_owned());
        if let Some(group) = group {
            group_node = group_node.with_attr("jid", wire_jid(group));
        }
        if let Some(subject) = subject {
            group_node = group_node.with_attr("subject", subject.to_owned());
        }
        if !participants.is_empty() {
            group_node = group_node.with_children(
                participants
                    .iter()
                    .map(|p| Node::new("participant").with_attr("jid", wire_jid(p)))
                    .collect(),
            );
        }
        let node = Node::new("action")
            .with_attr("type", "set")
            .with_attr("epoch", epoch)
            .with_children(vec![group_node]);
        self.send_node(
            now,
            &node,
            Metric::GROUP,
            Flags(0x88),
            UserKind::Raw,
            Some(tag),
        )
    }
}

/// `["action", {type: "set", epoch}, [["received", {type: "message", index, jid, owner, participant?}]]]`.
pub(crate) fn receipt_node(
    epoch: String,
    jid: &str,
    id: &str,
    participant: Option<&str>,
) -> Node<'static> {
    let mut received = Node::new("received")
        .with_attr("type", "message")
        .with_attr("index", id.to_owned())
        .with_attr("jid", wire_jid(jid))
        .with_attr("owner", "false");
    if let Some(participant) = participant {
        received = received.with_attr("participant", wire_jid(participant));
    }
    Node::new("action")
        .with_attr("type", "set")
        .with_attr("epoch", epoch)
        .with_children(vec![received])
}

/// A user JID as the wire writes it (`c.us` becomes `s.whatsapp.net`).
fn wire_jid(jid: &str) -> String {
    match jid.strip_suffix("@c.us") {
        Some(user) => format!("{user}@s.whatsapp.net"),
        None => jid.to_owned(),
    }
}

fn same_user(a: &str, b: &str) -> bool {
    wire_jid(a) == wire_jid(b)
}

/// The message that describes an uploaded file.
fn media_message(media: &UploadedMedia, now: Time) -> wa_proto::Message {
    use wa_proto::{AudioMessage, DocumentMessage, ImageMessage, StickerMessage, VideoMessage};
    let (height, width) = match media.dimensions {
        Some((w, h)) => (Some(h), Some(w)),
        None => (None, None),
    };
    let timestamp = Some(i64::try_from(now.as_secs()).unwrap_or(i64::MAX));
    let mut message = wa_proto::Message::default();
    match media.kind {
        MediaKind::Image => {
            message.image_message = Some(Box::new(ImageMessage {
                url: Some(media.url.clone()),
                mimetype: Some(media.mimetype.clone()),
                caption: media.caption.clone(),
                file_sha256: Some(media.file_sha256.clone()),
                file_length: Some(media.file_length),
                height,
                width,
                media_key: Some(media.media_key.clone()),
                file_enc_sha256: Some(media.file_enc_sha256.clone()),
                direct_path: media.direct_path.clone(),
                media_key_timestamp: timestamp,
                jpeg_thumbnail: media.jpeg_thumbnail.clone(),
                ..Default::default()
            }));
        }
        MediaKind::Sticker => {
            message.sticker_message = Some(Box::new(StickerMessage {
                url: Some(media.url.clone()),
                mimetype: Some(media.mimetype.clone()),
                file_sha256: Some(media.file_sha256.clone()),
                file_length: Some(media.file_length),
                height,
                width,
                media_key: Some(media.media_key.clone()),
                file_enc_sha256: Some(media.file_enc_sha256.clone()),
                direct_path: media.direct_path.clone(),
                media_key_timestamp: timestamp,
                ..Default::default()
            }));
        }
        MediaKind::Video | MediaKind::Gif => {
            message.video_message = Some(Box::new(VideoMessage {
                url: Some(media.url.clone()),
                mimetype: Some(media.mimetype.clone()),
                caption: media.caption.clone(),
                file_sha256: Some(media.file_sha256.clone()),
                file_length: Some(media.file_length),
                seconds: media.seconds,
                height,
                width,
                media_key: Some(media.media_key.clone()),
                file_enc_sha256: Some(media.file_enc_sha256.clone()),
                direct_path: media.direct_path.clone(),
                media_key_timestamp: timestamp,
                jpeg_thumbnail: media.jpeg_thumbnail.clone(),
                streaming_sidecar: media.streaming_sidecar.clone(),
                gif_playback: Some(media.kind == MediaKind::Gif),
                ..Default::default()
            }));
        }
        MediaKind::Audio | MediaKind::Voice => {
            message.audio_message = Some(Box::new(AudioMessage {
                url: Some(media.url.clone()),
                mimetype: Some(media.mimetype.clone()),
                file_sha256: Some(media.file_sha256.clone()),
                file_length: Some(media.file_length),
                seconds: media.seconds,
                ptt: Some(media.kind == MediaKind::Voice),
                media_key: Some(media.media_key.clone()),
                file_enc_sha256: Some(media.file_enc_sha256.clone()),
                direct_path: media.direct_path.clone(),
                media_key_timestamp: timestamp,
                streaming_sidecar: media.streaming_sidecar.clone(),
                ..Default::default()
            }));
        }
        // Documents, and any kind newer than this code.
        _ => {
            message.document_message = Some(Box::new(DocumentMessage {
                url: Some(media.url.clone()),
                mimetype: Some(media.mimetype.clone()),
                title: media.file_name.clone(),
                file_sha256: Some(media.file_sha256.clone()),
                file_length: Some(media.file_length),
                media_key: Some(media.media_key.clone()),
                file_name: media.file_name.clone(),
                file_enc_sha256: Some(media.file_enc_sha256.clone()),
                direct_path: media.direct_path.clone(),
                media_key_timestamp: timestamp,
                jpeg_thumbnail: media.jpeg_thumbnail.clone(),
                ..Default::default()
            }));
        }
    }
    message
}
