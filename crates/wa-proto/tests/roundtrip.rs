//! Hand-built messages of every media kind, with every field set, survive encode → decode; the
//! media fields sit at the field numbers of the published schemas; the accessors find them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use prost::Message as _;
use wa_proto::{
    AudioMessage, ContactMessage, ContactsArrayMessage, ContextInfo, DocumentMessage,
    ExtendedTextMessage, ImageMessage, InteractiveAnnotation, Location, LocationMessage, Media,
    MediaKind, Message, MessageKey, Point, ProtocolMessage, StickerMessage, VideoMessage,
    WebMessageInfo, extended_text_message, interactive_annotation, protocol_message, video_message,
    web_message_info,
};

/// Distinct bytes for each field, so that a swapped field cannot go unnoticed.
fn bytes(seed: u8, len: usize) -> Option<Vec<u8>> {
    Some((0..len).map(|i| seed.wrapping_add(i as u8)).collect())
}

fn text(s: &str) -> Option<String> {
    Some(s.to_owned())
}

fn context_info() -> Option<Box<ContextInfo>> {
    Some(Box::new(ContextInfo {
        stanza_id: text("3EB0C0FFEE0123456789"),
        participant: text("15550000001@s.whatsapp.net"),
        quoted_message: Some(Box::new(Message {
            conversation: text("the quoted text"),
            ..Default::default()
        })),
        remote_jid: text("15550000002-1589256438@g.us"),
        mentioned_jid: vec![
            "15550000003@s.whatsapp.net".into(),
            "15550000004@s.whatsapp.net".into(),
        ],
        conversion_source: text("source"),
        conversion_data: bytes(0xc0, 5),
        conversion_delay_seconds: Some(7),
        forwarding_score: Some(4),
        is_forwarded: Some(true),
    }))
}

fn annotations() -> Vec<InteractiveAnnotation> {
    vec![InteractiveAnnotation {
        polygon_vertices: vec![
            Point {
                x_deprecated: Some(-1),
                y_deprecated: Some(2),
                x: Some(0.25),
                y: Some(0.75),
            },
            Point {
                x: Some(0.5),
                y: Some(0.5),
                ..Default::default()
            },
        ],
        action: Some(interactive_annotation::Action::Location(Location {
            degrees_latitude: Some(52.52),
            degrees_longitude: Some(13.405),
            name: text("Berlin"),
        })),
    }]
}

fn image() -> ImageMessage {
    ImageMessage {
        url: text("https://mmg.whatsapp.net/d/f/image.enc"),
        mimetype: text("image/jpeg"),
        caption: text("an image caption"),
        file_sha256: bytes(0x10, 32),
        file_length: Some(81_926),
        height: Some(1280),
        width: Some(960),
        media_key: bytes(0x20, 32),
        file_enc_sha256: bytes(0x30, 32),
        interactive_annotations: annotations(),
        direct_path: text("/v/t62.7118-24/image.enc"),
        media_key_timestamp: Some(1_589_256_438),
        jpeg_thumbnail: bytes(0x40, 100),
        context_info: context_info(),
        first_scan_sidecar: bytes(0x50, 10),
        first_scan_length: Some(4096),
        experiment_group_id: Some(3),
        scans_sidecar: bytes(0x60, 30),
        scan_lengths: vec![4096, 8192, 69_638],
        mid_quality_file_sha256: bytes(0x70, 32),
        mid_quality_file_enc_sha256: bytes(0x80, 32),
        view_once: Some(true),
        thumbnail_direct_path: text("/v/t62.7118-24/thumb.enc"),
        thumbnail_sha256: bytes(0x90, 32),
        thumbnail_enc_sha256: bytes(0xa0, 32),
    }
}

fn video(gif: bool) -> VideoMessage {
    VideoMessage {
        url: text("https://mmg.whatsapp.net/d/f/video.enc"),
        mimetype: text("video/mp4"),
        file_sha256: bytes(0x11, 32),
        file_length: Some(1_048_577),
        seconds: Some(42),
        media_key: bytes(0x21, 32),
        caption: text("a video caption"),
        gif_playback: Some(gif),
        height: Some(720),
        width: Some(1280),
        file_enc_sha256: bytes(0x31, 32),
        interactive_annotations: annotations(),
        direct_path: text("/v/t62.7161-24/video.enc"),
        media_key_timestamp: Some(1_589_256_439),
        jpeg_thumbnail: bytes(0x41, 100),
        context_info: context_info(),
        streaming_sidecar: bytes(0x51, 70),
        gif_attribution: Some(video_message::Attribution::Tenor.into()),
        view_once: Some(false),
        thumbnail_direct_path: text("/v/t62.7161-24/thumb.enc"),
        thumbnail_sha256: bytes(0x91, 32),
        thumbnail_enc_sha256: bytes(0xa1, 32),
    }
}

fn audio(ptt: bool) -> AudioMessage {
    AudioMessage {
        url: text("https://mmg.whatsapp.net/d/f/audio.enc"),
        mimetype: text("audio/ogg; codecs=opus"),
        file_sha256: bytes(0x12, 32),
        file_length: Some(23_456),
        seconds: Some(9),
        ptt: Some(ptt),
        media_key: bytes(0x22, 32),
        file_enc_sha256: bytes(0x32, 32),
        direct_path: text("/v/t62.7117-24/audio.enc"),
        media_key_timestamp: Some(1_589_256_440),
        context_info: context_info(),
        streaming_sidecar: bytes(0x52, 10),
    }
}

fn document() -> DocumentMessage {
    DocumentMessage {
        url: text("https://mmg.whatsapp.net/d/f/document.enc"),
        mimetype: text("application/pdf"),
        title: text("Minutes"),
        file_sha256: bytes(0x13, 32),
        file_length: Some(300_000),
        page_count: Some(12),
        media_key: bytes(0x23, 32),
        file_name: text("minutes.pdf"),
        file_enc_sha256: bytes(0x33, 32),
        direct_path: text("/v/t62.7119-24/document.enc"),
        media_key_timestamp: Some(1_589_256_441),
        contact_vcard: Some(false),
        thumbnail_direct_path: text("/v/t62.7119-24/thumb.enc"),
        thumbnail_sha256: bytes(0x93, 32),
        thumbnail_enc_sha256: bytes(0xa3, 32),
        jpeg_thumbnail: bytes(0x43, 100),
        context_info: context_info(),
        thumbnail_height: Some(480),
        thumbnail_width: Some(360),
    }
}

fn sticker() -> StickerMessage {
    StickerMessage {
        url: text("https://mmg.whatsapp.net/d/f/sticker.enc"),
        file_sha256: bytes(0x14, 32),
        file_enc_sha256: bytes(0x34, 32),
        media_key: bytes(0x24, 32),
        mimetype: text("image/webp"),
        height: Some(512),
        width: Some(512),
        direct_path: text("/v/t62.15575-24/sticker.enc"),
        file_length: Some(17_000),
        media_key_timestamp: Some(1_589_256_442),
        first_frame_length: Some(2048),
        first_frame_sidecar: bytes(0x54, 10),
        is_animated: Some(true),
        png_thumbnail: bytes(0x44, 100),
        context_info: context_info(),
    }
}

fn location() -> LocationMessage {
    LocationMessage {
        degrees_latitude: Some(-33.8688),
        degrees_longitude: Some(151.2093),
        name: text("Sydney"),
        address: text("New South Wales"),
        url: text("https://example.com/sydney"),
        is_live: Some(false),
        accuracy_in_meters: Some(15),
        speed_in_mps: Some(1.5),
        degrees_clockwise_from_magnetic_north: Some(270),
        comment: text("here"),
        jpeg_thumbnail: bytes(0x45, 100),
        context_info: context_info(),
    }
}

fn contact(name: &str) -> ContactMessage {
    ContactMessage {
        display_name: text(name),
        vcard: Some(format!(
            "BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nTEL;type=CELL:+1 555 000 0005\nEND:VCARD"
        )),
        context_info: context_info(),
    }
}

fn extended_text() -> ExtendedTextMessage {
    ExtendedTextMessage {
        text: text("look: https://example.com/page"),
        matched_text: text("https://example.com/page"),
        canonical_url: text("https://example.com/page"),
        description: text("A page"),
        title: text("Example"),
        text_argb: Some(0xffff_ffff),
        background_argb: Some(0xff00_80ff),
        font: Some(extended_text_message::FontType::BebasneueRegular.into()),
        preview_type: Some(extended_text_message::PreviewType::Video.into()),
        jpeg_thumbnail: bytes(0x46, 100),
        context_info: context_info(),
        do_not_play_inline: Some(true),
        thumbnail_direct_path: text("/v/t62.36144-24/thumb.enc"),
        thumbnail_sha256: bytes(0x96, 32),
        thumbnail_enc_sha256: bytes(0xa6, 32),
        media_key: bytes(0x26, 32),
        media_key_timestamp: Some(1_589_256_443),
        thumbnail_height: Some(200),
        thumbnail_width: Some(300),
    }
}

fn envelope(message: Message) -> WebMessageInfo {
    WebMessageInfo {
        key: MessageKey {
            remote_jid: text("15550000002-1589256438@g.us"),
            from_me: Some(false),
            id: text("3EB0123456789ABCDEF0"),
            participant: text("15550000001@s.whatsapp.net"),
        },
        message: Some(message),
        message_timestamp: Some(1_589_256_444),
        status: Some(web_message_info::Status::DeliveryAck.into()),
        participant: text("15550000001@s.whatsapp.net"),
        ignore: Some(false),
        starred: Some(true),
        broadcast: Some(false),
        push_name: text("Priya"),
        media_ciphertext_sha256: bytes(0x35, 32),
        multicast: Some(false),
        url_text: Some(true),
        url_number: Some(false),
        message_stub_type: None,
        clear_media: Some(false),
        message_stub_parameters: vec![],
        duration: Some(0),
        labels: vec!["work".into()],
    }
}

/// Encodes, checks `encoded_len`, decodes, and checks that nothing changed.
fn round_trip(info: &WebMessageInfo) -> WebMessageInfo {
    let encoded = info.encode_to_vec();
    assert_eq!(info.encoded_len(), encoded.len());
    let decoded = WebMessageInfo::decode(&encoded[..]).unwrap();
    assert_eq!(&decoded, info);
    // And the encoding is stable.
    assert_eq!(decoded.encode_to_vec(), encoded);
    decoded
}

#[test]
fn image_round_trips_with_every_field() {
    let info = round_trip(&envelope(Message {
        image_message: Some(Box::new(image())),
        ..Default::default()
    }));
    let message = info.message.as_ref().unwrap();
    assert_eq!(message.text(), Some("an image caption"));
    assert_eq!(
        message.context_info().and_then(|c| c.stanza_id.as_deref()),
        Some("3EB0C0FFEE0123456789")
    );
}

#[test]
fn video_and_gif_round_trip_with_every_field() {
    for gif in [false, true] {
        let info = round_trip(&envelope(Message {
            video_message: Some(Box::new(video(gif))),
            ..Default::default()
        }));
        let message = info.message.as_ref().unwrap();
        assert_eq!(message.text(), Some("a video caption"));
        let kind = message.media().unwrap().kind;
        assert_eq!(
            kind,
            if gif {
                MediaKind::Gif
            } else {
                MediaKind::Video
            }
        );
    }
}

#[test]
fn audio_and_voice_round_trip_with_every_field() {
    for ptt in [false, true] {
        let info = round_trip(&envelope(Message {
            audio_message: Some(Box::new(audio(ptt))),
            ..Default::default()
        }));
        let message = info.message.as_ref().unwrap();
        assert_eq!(message.text(), None);
        let kind = message.media().unwrap().kind;
        assert_eq!(
            kind,
            if ptt {
                MediaKind::Voice
            } else {
                MediaKind::Audio
            }
        );
    }
}

#[test]
fn document_sticker_location_contacts_and_text_round_trip_with_every_field() {
    let messages = [
        Message {
            document_message: Some(Box::new(document())),
            ..Default::default()
        },
        Message {
            sticker_message: Some(Box::new(sticker())),
            ..Default::default()
        },
        Message {
            location_message: Some(Box::new(location())),
            ..Default::default()
        },
        Message {
            contact_message: Some(Box::new(contact("Ana"))),
            ..Default::default()
        },
        Message {
            contacts_array_message: Some(Box::new(ContactsArrayMessage {
                display_name: text("2 contacts"),
                contacts: vec![contact("Ana"), contact("Bo")],
                context_info: context_info(),
            })),
            ..Default::default()
        },
        Message {
            extended_text_message: Some(Box::new(extended_text())),
            ..Default::default()
        },
        Message {
            conversation: text("plain text"),
            ..Default::default()
        },
    ];
    for message in messages {
        round_trip(&envelope(message));
    }
}

#[test]
fn revocation_and_stub_round_trip() {
    let revoke = Message {
        protocol_message: Some(ProtocolMessage {
            key: Some(MessageKey {
                remote_jid: text("15550000002@s.whatsapp.net"),
                from_me: Some(true),
                id: text("3EB0AAAAAAAAAAAAAAAA"),
                participant: None,
            }),
            r#type: Some(protocol_message::Type::Revoke.into()),
            ephemeral_expiration: Some(604_800),
            ephemeral_setting_timestamp: Some(1_589_256_445),
        }),
        ..Default::default()
    };
    let info = round_trip(&envelope(revoke));
    let protocol = info.message.unwrap().protocol_message.unwrap();
    assert_eq!(protocol.r#type(), protocol_message::Type::Revoke);

    let stub = WebMessageInfo {
        message: None,
        message_stub_type: Some(web_message_info::StubType::GroupParticipantAdd.into()),
        message_stub_parameters: vec!["15550000006@s.whatsapp.net".into()],
        ..envelope(Message::default())
    };
    let info = round_trip(&stub);
    assert_eq!(
        info.message_stub_type(),
        web_message_info::StubType::GroupParticipantAdd
    );
}

#[test]
fn media_accessor_returns_the_download_fields() {
    let image = image();
    let message = Message {
        image_message: Some(Box::new(image.clone())),
        ..Default::default()
    };
    let media: Media<'_> = message.media().unwrap();
    assert_eq!(media.kind, MediaKind::Image);
    assert_eq!(media.url, image.url.as_deref());
    assert_eq!(media.direct_path, image.direct_path.as_deref());
    assert_eq!(media.mimetype, Some("image/jpeg"));
    assert_eq!(media.media_key, image.media_key.as_deref());
    assert_eq!(media.file_sha256, image.file_sha256.as_deref());
    assert_eq!(media.file_enc_sha256, image.file_enc_sha256.as_deref());
    assert_eq!(media.file_length, Some(81_926));
    assert_eq!(media.streaming_sidecar, None);

    let video = video(false);
    let message = Message {
        video_message: Some(Box::new(video.clone())),
        ..Default::default()
    };
    let media = message.media().unwrap();
    assert_eq!(media.streaming_sidecar, video.streaming_sidecar.as_deref());
    assert_eq!(media.media_key, video.media_key.as_deref());

    let kinds = [
        (
            Message {
                document_message: Some(Box::new(document())),
                ..Default::default()
            },
            MediaKind::Document,
        ),
        (
            Message {
                sticker_message: Some(Box::new(sticker())),
                ..Default::default()
            },
            MediaKind::Sticker,
        ),
    ];
    for (message, kind) in kinds {
        let media = message.media().unwrap();
        assert_eq!(media.kind, kind);
        assert!(media.media_key.is_some() && media.file_enc_sha256.is_some());
    }

    let no_media = Message {
        location_message: Some(Box::new(location())),
        ..Default::default()
    };
    assert_eq!(no_media.media(), None);
    assert_eq!(no_media.text(), None);
    assert!(no_media.context_info().is_some());
}

fn varint(input: &mut &[u8]) -> u64 {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (byte, rest) = input.split_first().unwrap();
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    value
}

/// The field numbers of the top-level fields in `encoded`, in order.
fn field_numbers(mut encoded: &[u8]) -> Vec<u64> {
    let mut numbers = Vec::new();
    while !encoded.is_empty() {
        let key = varint(&mut encoded);
        numbers.push(key >> 3);
        let skip = match key & 7 {
            0 => {
                varint(&mut encoded);
                0
            }
            1 => 8,
            2 => varint(&mut encoded) as usize,
            5 => 4,
            other => panic!("wire type {other}"),
        };
        encoded = &encoded[skip..];
    }
    numbers
}

/// Sets one field at a time (to its default value: proto2 encodes a present default) and checks
/// the field number it is written under: the last one written (`WebMessageInfo` always writes its
/// required `key`, field 1, first). This restates, independently of `proto/wa.proto`, the numbers
/// of the published schemas for the fields this project relies on.
macro_rules! assert_field_numbers {
    ($ty:ident { $($field:ident => $number:literal),* $(,)? }) => {$(
        let encoded = $ty { $field: Some(Default::default()), ..Default::default() }.encode_to_vec();
        assert_eq!(
            field_numbers(&encoded).last(),
            Some(&$number),
            concat!(stringify!($ty), ".", stringify!($field))
        );
    )*};
}

#[test]
fn media_fields_have_the_published_field_numbers() {
    assert_field_numbers!(ImageMessage {
        url => 1, mimetype => 2, caption => 3, file_sha256 => 4, file_length => 5, height => 6,
        width => 7, media_key => 8, file_enc_sha256 => 9, direct_path => 11,
        media_key_timestamp => 12, jpeg_thumbnail => 16, context_info => 17,
        first_scan_sidecar => 18, first_scan_length => 19,
    });
    assert_field_numbers!(VideoMessage {
        url => 1, mimetype => 2, file_sha256 => 3, file_length => 4, seconds => 5,
        media_key => 6, caption => 7, gif_playback => 8, height => 9, width => 10,
        file_enc_sha256 => 11, direct_path => 13, media_key_timestamp => 14,
        jpeg_thumbnail => 16, context_info => 17, streaming_sidecar => 18, gif_attribution => 19,
    });
    assert_field_numbers!(AudioMessage {
        url => 1, mimetype => 2, file_sha256 => 3, file_length => 4, seconds => 5, ptt => 6,
        media_key => 7, file_enc_sha256 => 8, direct_path => 9, media_key_timestamp => 10,
        context_info => 17, streaming_sidecar => 18,
    });
    assert_field_numbers!(DocumentMessage {
        url => 1, mimetype => 2, title => 3, file_sha256 => 4, file_length => 5,
        page_count => 6, media_key => 7, file_name => 8, file_enc_sha256 => 9,
        direct_path => 10, media_key_timestamp => 11, jpeg_thumbnail => 16, context_info => 17,
    });
    assert_field_numbers!(StickerMessage {
        url => 1, file_sha256 => 2, file_enc_sha256 => 3, media_key => 4, mimetype => 5,
        height => 6, width => 7, direct_path => 8, file_length => 9, media_key_timestamp => 10,
        png_thumbnail => 16, context_info => 17,
    });
    assert_field_numbers!(LocationMessage {
        degrees_latitude => 1, degrees_longitude => 2, name => 3, address => 4, url => 5,
        jpeg_thumbnail => 16, context_info => 17,
    });
    assert_field_numbers!(ContactMessage { display_name => 1, vcard => 16, context_info => 17 });
    assert_field_numbers!(ExtendedTextMessage {
        text => 1, matched_text => 2, canonical_url => 4, description => 5, title => 6,
        text_argb => 7, background_argb => 8, jpeg_thumbnail => 16, context_info => 17,
    });
    assert_field_numbers!(Message {
        conversation => 1, image_message => 3, contact_message => 4, location_message => 5,
        extended_text_message => 6, document_message => 7, audio_message => 8,
        video_message => 9, protocol_message => 12, sticker_message => 26,
    });
    assert_field_numbers!(MessageKey { remote_jid => 1, from_me => 2, id => 3, participant => 4 });
    assert_field_numbers!(ContextInfo {
        stanza_id => 1, participant => 2, quoted_message => 3, remote_jid => 4,
        is_forwarded => 22,
    });
    assert_field_numbers!(WebMessageInfo {
        message => 2, message_timestamp => 3, status => 4, participant => 5, ignore => 16,
        starred => 17, broadcast => 18, push_name => 19, media_ciphertext_sha256 => 20,
        multicast => 21, url_text => 22, url_number => 23, message_stub_type => 24,
        clear_media => 25, duration => 27,
    });
}

#[test]
fn enum_values_match_the_published_schemas() {
    use web_message_info::{Status, StubType};
    // PROTOCOL.md §2.6: the ack levels of `Msg` frames are `status` minus one.
    let statuses = [
        (Status::Error, 0),
        (Status::Pending, 1),
        (Status::ServerAck, 2),
        (Status::DeliveryAck, 3),
        (Status::Read, 4),
        (Status::Played, 5),
    ];
    for (status, value) in statuses {
        assert_eq!(status as i32, value, "{status:?}");
    }
    let stubs = [
        (StubType::Unknown, 0),
        (StubType::Revoke, 1),
        (StubType::GroupCreate, 20),
        (StubType::GroupChangeSubject, 21),
        (StubType::GroupParticipantAdd, 27),
        (StubType::GroupParticipantRemove, 28),
        (StubType::GroupParticipantLeave, 32),
        (StubType::E2eEncrypted, 39),
        (StubType::CallMissedVoice, 40),
        (StubType::BizTwoTierMigrationBottom, 67),
        (StubType::E2eEncryptedNow, 75),
    ];
    for (stub, value) in stubs {
        assert_eq!(stub as i32, value, "{stub:?}");
    }
    assert_eq!(protocol_message::Type::Revoke as i32, 0);
    assert_eq!(video_message::Attribution::Tenor as i32, 2);
}
