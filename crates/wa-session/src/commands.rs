//! What a user of WhatsApp Web does: the commands, as requests of the wire vocabulary
//! ([`wa_wire::web::Request`]).
//!
//! Messages go end to end encrypted (through the session's [`wa_e2e::endpoint::Endpoint`]) or,
//! for a session configured as a legacy client, as readable `WebMessageInfo`s.

use wa_proto::MediaKind;
use wa_wire::Jid;
use wa_wire::json::JsonRequest;
use wa_wire::legacy::{Direction, MessagesQuery};
use wa_wire::msg::{ContentKind, GroupAction, GroupOp, PresenceSet, Receipt, ReceiptKind};
use wa_wire::web::{Query, Request, SetItem};

pub use wa_wire::msg::PresenceState;

use crate::error::CommandError;
use crate::event::RequestId;
use crate::session::{Session, UserKind};
use wa_wire::Time;

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
    /// Sends a text message to a user or group. Returns the request and the message id (acks
    /// name it); [`Reply::MessageSent`](crate::Reply::MessageSent) says the server stored it.
    ///
    /// # Errors
    /// When not connected, too many requests wait, or `to` is not a chat.
    pub fn send_text(
        &mut self,
        now: Time,
        to: &Jid,
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
        to: &Jid,
        media: &UploadedMedia,
    ) -> Result<(RequestId, String), CommandError> {
        self.send_message(now, to, media_message(media, now))
    }

    /// Sends any message: end to end encrypted for every device of the recipient(s) and this
    /// account's other devices, or, configured as a legacy client, readable.
    ///
    /// # Errors
    /// As [`Session::send_text`].
    pub fn send_message(
        &mut self,
        now: Time,
        to: &Jid,
        message: wa_proto::Message,
    ) -> Result<(RequestId, String), CommandError> {
        let chat = wa_wire::Chat::from_jid(to)
            .map_err(|_| CommandError::InvalidArgument("not a user or group JID"))?;
        let id = self.new_message_id();
        let kind = if message.media().is_some() {
            ContentKind::Media
        } else {
            ContentKind::Text
        };
        if self.is_end_to_end() {
            let request = self.send_end_to_end(now, chat.jid(), id.clone(), kind, message)?;
            return Ok((request, id));
        }
        let info = wa_proto::WebMessageInfo {
            key: wa_proto::MessageKey {
                remote_jid: Some(chat.jid().to_wire_string()),
                from_me: Some(true),
                id: Some(id.clone()),
                participant: None,
            },
            message: Some(message),
            message_timestamp: Some(now.as_secs()),
            status: Some(wa_proto::web_message_info::Status::Pending as i32),
            ..Default::default()
        };
        let request = Request::LegacyRelay(Box::new(info));
        let id_copy = id.clone();
        let rid = self.send_request(
            now,
            request,
            UserKind::SendMessage(id.clone()),
            Some(id_copy),
        )?;
        Ok((rid, id))
    }

    /// Marks message `id` of `chat` read (sent by `participant` in a group): the sender sees
    /// blue ticks. A read implies delivery.
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn mark_read(
        &mut self,
        now: Time,
        chat: &Jid,
        id: &str,
        participant: Option<&Jid>,
    ) -> Result<RequestId, CommandError> {
        self.receipt(now, ReceiptKind::Read, chat, id, participant)
    }

    /// Tells the server this device has message `id` of `chat` (sent by `participant` in a
    /// group). Sent automatically for live messages unless `Config::delivery_receipts` is off.
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn send_receipt(
        &mut self,
        now: Time,
        chat: &Jid,
        id: &str,
        participant: Option<&Jid>,
    ) -> Result<RequestId, CommandError> {
        self.receipt(now, ReceiptKind::Delivered, chat, id, participant)
    }

    fn receipt(
        &mut self,
        now: Time,
        kind: ReceiptKind,
        chat: &Jid,
        id: &str,
        participant: Option<&Jid>,
    ) -> Result<RequestId, CommandError> {
        if !wa_wire::ids::valid_message_id(id) {
            return Err(CommandError::InvalidArgument("not a message id"));
        }
        let receipt = Receipt {
            kind,
            chat: chat.clone(),
            id: id.to_owned(),
            participant: participant.cloned(),
        };
        self.send_request(
            now,
            Request::Set(vec![SetItem::Receipt(receipt)]),
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
        to: Option<&Jid>,
    ) -> Result<RequestId, CommandError> {
        let presence = PresenceSet {
            state,
            to: to.cloned(),
        };
        self.send_request(
            now,
            Request::Set(vec![SetItem::Presence(presence)]),
            UserKind::Raw,
            None,
        )
    }

    /// Subscribes to a contact's presence (only contacts this account has a chat with).
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn subscribe_presence(&mut self, now: Time, jid: &Jid) -> Result<RequestId, CommandError> {
        self.send_json_request(
            now,
            &JsonRequest::SubscribePresence(jid.clone()),
            UserKind::Raw,
        )
    }

    /// Asks for a group's subject and members: [`Reply::Json`](crate::Reply::Json).
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn group_metadata(&mut self, now: Time, group: &Jid) -> Result<RequestId, CommandError> {
        self.send_json_request(
            now,
            &JsonRequest::GroupMetadata(group.clone()),
            UserKind::Raw,
        )
    }

    /// Asks for the media connection (upload host and auth): [`Reply::MediaConn`](crate::Reply::MediaConn).
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn media_conn(&mut self, now: Time) -> Result<RequestId, CommandError> {
        self.send_json_request(now, &JsonRequest::MediaConn, UserKind::MediaConn)
    }

    /// Asks for the chat list: [`Reply::Chats`](crate::Reply::Chats). An end-to-end server
    /// keeps none (the list comes from the phone's history export); a legacy one answers it.
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn query_chats(&mut self, now: Time) -> Result<RequestId, CommandError> {
        self.send_request(now, Request::Query(Query::Chats), UserKind::Chats, None)
    }

    /// Asks for the contacts' status lines (PROTOCOL.md §3.4):
    /// [`Reply::Statuses`](crate::Reply::Statuses).
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn query_statuses(&mut self, now: Time) -> Result<RequestId, CommandError> {
        self.send_request(now, Request::Query(Query::Status), UserKind::Statuses, None)
    }

    /// Asks for the contact list: [`Reply::Contacts`](crate::Reply::Contacts).
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn query_contacts(&mut self, now: Time) -> Result<RequestId, CommandError> {
        self.send_request(
            now,
            Request::Query(Query::Contacts),
            UserKind::Contacts,
            None,
        )
    }

    /// Asks for up to `count` messages of a chat before message `before` (`(id, from_me)`), or
    /// the latest ones: [`Reply::Messages`](crate::Reply::Messages).
    ///
    /// # Errors
    /// When not connected, too many requests wait, or `chat` is not a chat.
    pub fn query_messages(
        &mut self,
        now: Time,
        chat: &Jid,
        count: u32,
        before: Option<(&str, bool)>,
    ) -> Result<RequestId, CommandError> {
        let chat = wa_wire::Chat::from_jid(chat)
            .map_err(|_| CommandError::InvalidArgument("not a user or group JID"))?;
        let query = MessagesQuery {
            chat,
            direction: Direction::Before,
            count,
            index: before.map(|(id, owner)| (id.to_owned(), owner)),
        };
        self.send_request(
            now,
            Request::Query(Query::Messages(query)),
            UserKind::Messages,
            None,
        )
    }

    /// Creates a group with a subject and participants. The reply's `gid` is the group.
    ///
    /// # Errors
    /// When not connected, too many requests wait, or there are no participants.
    pub fn group_create(
        &mut self,
        now: Time,
        subject: &str,
        participants: &[Jid],
    ) -> Result<RequestId, CommandError> {
        if participants.is_empty() {
            return Err(CommandError::InvalidArgument("a group needs participants"));
        }
        self.group(now, GroupOp::Create, None, Some(subject), participants)
    }

    /// Adds, removes, promotes or demotes participants of a group.
    ///
    /// # Errors
    /// When not connected, too many requests wait, `op` is not one of those four, or there are
    /// no participants.
    pub fn group_participants(
        &mut self,
        now: Time,
        group: &Jid,
        op: GroupOp,
        participants: &[Jid],
    ) -> Result<RequestId, CommandError> {
        if !matches!(
            op,
            GroupOp::Add | GroupOp::Remove | GroupOp::Promote | GroupOp::Demote
        ) {
            return Err(CommandError::InvalidArgument(
                "add, remove, promote or demote",
            ));
        }
        if participants.is_empty() {
            return Err(CommandError::InvalidArgument("no participants"));
        }
        self.group(now, op, Some(group), None, participants)
    }

    /// Changes a group's subject.
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn group_subject(
        &mut self,
        now: Time,
        group: &Jid,
        subject: &str,
    ) -> Result<RequestId, CommandError> {
        self.group(now, GroupOp::Subject, Some(group), Some(subject), &[])
    }

    /// Leaves a group.
    ///
    /// # Errors
    /// When not connected or too many requests wait.
    pub fn group_leave(&mut self, now: Time, group: &Jid) -> Result<RequestId, CommandError> {
        self.group(now, GroupOp::Leave, Some(group), None, &[])
    }

    fn group(
        &mut self,
        now: Time,
        op: GroupOp,
        group: Option<&Jid>,
        subject: Option<&str>,
        participants: &[Jid],
    ) -> Result<RequestId, CommandError> {
        let tag = self.next_tag();
        let action = GroupAction {
            op,
            group: group.cloned(),
            subject: subject.map(str::to_owned),
            participants: participants.to_vec(),
        };
        let request = Request::Set(vec![SetItem::Group {
            action,
            id: tag.clone(),
        }]);
        self.send_request(now, request, UserKind::Raw, Some(tag))
    }
}

/// The message that describes an uploaded file.
pub(crate) fn media_message(media: &UploadedMedia, now: Time) -> wa_proto::Message {
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
