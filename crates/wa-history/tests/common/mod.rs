//! Histories for the tests and the benchmark: a fixed one (the golden files are its exports) and
//! seeded generated ones.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "shared by several test crates and the bench, each using a part"
)]
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use wa_binary::Jid;
use wa_history::{Chat, Contact, History, HistoryMessage, MessageStatus};
use wa_proto::{
    AudioMessage, ContextInfo, DocumentMessage, ExtendedTextMessage, ImageMessage,
    InteractiveAnnotation, Location, LocationMessage, Message, Point, ProtocolMessage,
    StickerMessage, VideoMessage, interactive_annotation,
};

/// A JID from a string that is known to parse.
pub fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

pub fn text(s: &str) -> Message {
    Message {
        conversation: Some(s.to_owned()),
        ..Message::default()
    }
}

/// An image message with every field of the schema set.
pub fn image_full(seed: u8, caption: Option<&str>) -> Message {
    let bytes = |n: usize, k: u8| {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31) ^ k ^ seed)
            .collect()
    };
    Message {
        image_message: Some(Box::new(ImageMessage {
            url: Some(format!("https://mmg.whatsapp.net/d/f/A{seed}.enc")),
            mimetype: Some("image/jpeg".to_owned()),
            caption: caption.map(str::to_owned),
            file_sha256: Some(bytes(32, 1)),
            file_length: Some(48_213 + u64::from(seed)),
            height: Some(1280),
            width: Some(960),
            media_key: Some(bytes(32, 2)),
            file_enc_sha256: Some(bytes(32, 3)),
            interactive_annotations: vec![InteractiveAnnotation {
                polygon_vertices: vec![
                    Point {
                        x_deprecated: Some(1),
                        y_deprecated: Some(2),
                        x: Some(0.25),
                        y: Some(0.75),
                    },
                    Point {
                        x_deprecated: None,
                        y_deprecated: None,
                        x: Some(0.5),
                        y: Some(-0.0),
                    },
                ],
                action: Some(interactive_annotation::Action::Location(Location {
                    degrees_latitude: Some(52.52),
                    degrees_longitude: Some(13.405),
                    name: Some("Berlin".to_owned()),
                })),
            }],
            direct_path: Some(format!("/v/t62.7118-24/A{seed}.enc")),
            media_key_timestamp: Some(1_600_000_000),
            jpeg_thumbnail: Some(bytes(24, 4)),
            context_info: Some(Box::new(ContextInfo {
                stanza_id: Some("3EB0QUOTED".to_owned()),
                participant: Some("15550001111@s.whatsapp.net".to_owned()),
                quoted_message: Some(Box::new(text("the quoted text"))),
                remote_jid: None,
                mentioned_jid: vec!["15550002222@s.whatsapp.net".to_owned()],
                conversion_source: Some("src".to_owned()),
                conversion_data: Some(bytes(4, 5)),
                conversion_delay_seconds: Some(3),
                forwarding_score: Some(2),
                is_forwarded: Some(true),
            })),
            first_scan_sidecar: Some(bytes(10, 6)),
            first_scan_length: Some(4096),
            experiment_group_id: Some(7),
            scans_sidecar: Some(bytes(20, 7)),
            scan_lengths: vec![4096, 8192, 16384],
            mid_quality_file_sha256: Some(bytes(32, 8)),
            mid_quality_file_enc_sha256: Some(bytes(32, 9)),
            view_once: Some(false),
            thumbnail_direct_path: Some("/thumb".to_owned()),
            thumbnail_sha256: Some(bytes(32, 10)),
            thumbnail_enc_sha256: Some(bytes(32, 11)),
        })),
        ..Message::default()
    }
}

pub fn document(seed: u8, title: &str) -> Message {
    Message {
        document_message: Some(Box::new(DocumentMessage {
            url: Some(format!("https://mmg.whatsapp.net/d/f/D{seed}.enc")),
            mimetype: Some("application/pdf".to_owned()),
            title: Some(title.to_owned()),
            file_sha256: Some(vec![seed; 32]),
            file_length: Some(1_048_576),
            page_count: Some(12),
            media_key: Some(vec![seed ^ 0x5a; 32]),
            file_name: Some(format!("{title}.pdf")),
            file_enc_sha256: Some(vec![seed ^ 0xa5; 32]),
            direct_path: Some(format!("/v/t62.7119-24/D{seed}.enc")),
            media_key_timestamp: Some(1_600_000_123),
            ..DocumentMessage::default()
        })),
        ..Message::default()
    }
}

pub fn audio(seed: u8, voice_note: bool) -> Message {
    Message {
        audio_message: Some(Box::new(AudioMessage {
            url: Some(format!("https://mmg.whatsapp.net/d/f/V{seed}.enc")),
            mimetype: Some("audio/ogg; codecs=opus".to_owned()),
            file_sha256: Some(vec![seed; 32]),
            file_length: Some(20_480),
            seconds: Some(9),
            ptt: Some(voice_note),
            media_key: Some(vec![seed ^ 0x33; 32]),
            file_enc_sha256: Some(vec![seed ^ 0x44; 32]),
            direct_path: Some(format!("/v/t62.7117-24/V{seed}.enc")),
            media_key_timestamp: Some(1_600_000_456),
            context_info: None,
            streaming_sidecar: Some(vec![seed; 10]),
        })),
        ..Message::default()
    }
}

pub fn video(seed: u8, caption: &str) -> Message {
    Message {
        video_message: Some(Box::new(VideoMessage {
            url: Some(format!("https://mmg.whatsapp.net/d/f/M{seed}.enc")),
            mimetype: Some("video/mp4".to_owned()),
            caption: Some(caption.to_owned()),
            seconds: Some(31),
            gif_playback: Some(seed.is_multiple_of(2)),
            ..VideoMessage::default()
        })),
        ..Message::default()
    }
}

pub fn sticker(seed: u8) -> Message {
    Message {
        sticker_message: Some(Box::new(StickerMessage {
            url: Some(format!("https://mmg.whatsapp.net/d/f/S{seed}.enc")),
            mimetype: Some("image/webp".to_owned()),
            media_key: Some(vec![seed; 32]),
            ..StickerMessage::default()
        })),
        ..Message::default()
    }
}

pub fn location(lat: f64, lon: f64) -> Message {
    Message {
        location_message: Some(Box::new(LocationMessage {
            degrees_latitude: Some(lat),
            degrees_longitude: Some(lon),
            name: Some("Café Ümlaut".to_owned()),
            ..LocationMessage::default()
        })),
        ..Message::default()
    }
}

pub fn quote(reply: &str, quoted_id: &str, quoted: Message) -> Message {
    Message {
        extended_text_message: Some(Box::new(ExtendedTextMessage {
            text: Some(reply.to_owned()),
            context_info: Some(Box::new(ContextInfo {
                stanza_id: Some(quoted_id.to_owned()),
                quoted_message: Some(Box::new(quoted)),
                ..ContextInfo::default()
            })),
            ..ExtendedTextMessage::default()
        })),
        ..Message::default()
    }
}

pub fn revoke(id: &str) -> Message {
    Message {
        protocol_message: Some(ProtocolMessage {
            key: Some(wa_proto::MessageKey {
                remote_jid: None,
                from_me: Some(true),
                id: Some(id.to_owned()),
                participant: None,
            }),
            r#type: Some(0),
            ephemeral_expiration: None,
            ephemeral_setting_timestamp: None,
        }),
        ..Message::default()
    }
}

fn msg(
    chat: &Jid,
    id: &str,
    from_me: bool,
    sender: Option<&Jid>,
    timestamp: u64,
    status: MessageStatus,
    content: Message,
) -> HistoryMessage {
    let mut m = HistoryMessage::new(chat.clone(), id, from_me, timestamp, status, content);
    m.sender = sender.cloned();
    m
}

/// The history the golden files were exported from: small, and with one of everything (a group
/// with two participants, a named and an unnamed contact, plain, empty and non-ASCII texts, an
/// image with every field, a document, a voice note, a quote, a revocation, every status).
/// Messages are in canonical order, as an import returns them.
pub fn fixed_history() -> History {
    let owner = jid("447700900123@s.whatsapp.net");
    let alice = jid("15551234567@s.whatsapp.net");
    let bob = jid("4915112345678@s.whatsapp.net");
    let group = jid("447700900123-1589256438@g.us");

    let mut h = History::new(owner);
    let mut c = Chat::new(alice.clone(), 1_589_300_000);
    c.name = Some("Alice".to_owned());
    c.unread = 2;
    h.chats.push(c);
    let mut c = Chat::new(group.clone(), 1_589_300_500);
    c.name = Some("Café crew ☕".to_owned());
    h.chats.push(c);
    let mut c = Chat::new(bob.clone(), 1_589_200_000);
    c.archived = true;
    h.chats.push(c);

    let mut k = Contact::new(alice.clone());
    k.name = Some("Alice Liddell".to_owned());
    k.notify = Some("alice".to_owned());
    h.contacts.push(k);
    let mut k = Contact::new(bob.clone());
    k.notify = Some("Bob 🎸".to_owned());
    h.contacts.push(k);
    h.contacts
        .push(Contact::new(jid("12125550100@s.whatsapp.net")));

    use MessageStatus::*;
    h.messages = vec![
        msg(&bob, "B0", false, None, 1_589_200_000, Delivered, text("")),
        msg(
            &alice,
            "3EB0A1",
            true,
            None,
            1_589_256_438,
            Read,
            text("see you at 6"),
        ),
        msg(
            &alice,
            "A2",
            false,
            None,
            1_589_256_500,
            Pending,
            text("ok! 👍 à tout à l'heure"),
        ),
        msg(
            &group,
            "G1",
            false,
            Some(&alice),
            1_589_256_600,
            Delivered,
            image_full(1, Some("the view")),
        ),
        msg(
            &group,
            "G2",
            false,
            Some(&bob),
            1_589_256_600,
            Played,
            audio(2, true),
        ),
        msg(
            &group,
            "G3",
            true,
            None,
            1_589_256_700,
            ServerAck,
            document(3, "Minutes"),
        ),
        msg(
            &alice,
            "3EB0A3",
            true,
            None,
            1_589_257_000,
            Error,
            quote("yes", "A2", text("ok!")),
        ),
        msg(
            &group,
            "G4",
            false,
            Some(&alice),
            1_589_300_500,
            Read,
            revoke("G1"),
        ),
    ];
    h
}

/// SplitMix64: a small seeded generator for reproducible histories.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// How a generated history looks.
pub struct Shape {
    pub chats: usize,
    pub messages: usize,
    /// Percentage of media messages (image, document, audio).
    pub media_percent: u64,
    /// Text lengths in characters, inclusive.
    pub text_len: (usize, usize),
}

const WORDS: [&str; 16] = [
    "hello",
    "ok",
    "tomorrow",
    "ünïcödé",
    "日本語",
    "🎉",
    "see",
    "you",
    "at",
    "the",
    "café",
    "مرحبا",
    "ja",
    "\"quoted\"",
    "back\\slash",
    "new\nline",
];

/// A text of `min..=max` characters built from words, including non-ASCII and characters that
/// need escaping in JSON.
pub fn sentence(rng: &mut SplitMix, (min, max): (usize, usize)) -> String {
    let target = min + rng.below((max - min + 1) as u64) as usize;
    let mut out = String::new();
    while out.chars().count() < target {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(rng.pick(&WORDS[..]));
    }
    out.chars().take(target).collect()
}

/// A seeded history of `shape`: one chat in five is a group with three participants, every
/// status appears, some texts are empty, media are images (every field), documents and audio.
pub fn generated_history(seed: u64, shape: &Shape) -> History {
    let mut rng = SplitMix::new(seed);
    let mut h = History::new(jid("447700900000@s.whatsapp.net"));
    let users: Vec<Jid> = (0..(shape.chats as u64 + 3))
        .map(|i| jid(&format!("1555{:07}@s.whatsapp.net", 1_000_000 + i * 7)))
        .collect();
    for (i, user) in users.iter().enumerate().take(shape.chats) {
        let chat_jid = if i % 5 == 1 {
            jid(&format!("447700900000-{}@g.us", 1_500_000_000 + i))
        } else {
            user.clone()
        };
        let mut c = Chat::new(chat_jid, 1_600_000_000 + rng.below(10_000_000));
        if rng.below(2) == 0 {
            c.name = Some(sentence(&mut rng, (0, 20)));
        }
        c.unread = rng.below(50) as u32;
        c.archived = rng.below(7) == 0;
        h.chats.push(c);
    }
    for (i, u) in users.iter().enumerate().take(shape.chats) {
        let mut k = Contact::new(u.clone());
        if i % 3 != 0 {
            k.name = Some(sentence(&mut rng, (1, 24)));
        }
        if i % 2 == 0 {
            k.notify = Some(sentence(&mut rng, (0, 12)));
        }
        h.contacts.push(k);
    }
    for i in 0..shape.messages {
        let chat = h.chats[rng.below(h.chats.len() as u64) as usize]
            .jid
            .clone();
        let from_me = rng.below(3) == 0;
        let sender = (chat.is_group() && !from_me).then(|| users[rng.below(3) as usize].clone());
        let status = MessageStatus::ALL[i % MessageStatus::ALL.len()];
        let content = if rng.below(100) < shape.media_percent {
            let seed = rng.below(256) as u8;
            match rng.below(3) {
                0 => image_full(seed, (seed.is_multiple_of(2)).then_some("caption ✓")),
                1 => document(seed, "Quarterly report"),
                _ => audio(seed, seed % 2 == 1),
            }
        } else if i % 50 == 7 {
            text("")
        } else {
            text(&sentence(&mut rng, shape.text_len))
        };
        let id = format!("3EB0{:08X}{:06}", rng.next() as u32, i);
        let ts = 1_600_000_000 + rng.below(20_000_000);
        h.messages.push(msg(
            &chat,
            &id,
            from_me,
            sender.as_ref(),
            ts,
            status,
            content,
        ));
    }
    h.sort_messages();
    h
}

/// A small generated history with every feature, for round-trip tests.
pub fn small_generated(seed: u64) -> History {
    generated_history(
        seed,
        &Shape {
            chats: 6,
            messages: 120,
            media_percent: 20,
            text_len: (0, 60),
        },
    )
}
