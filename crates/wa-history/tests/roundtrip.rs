//! Round trips: a history exported in either format imports back equal (up to the documented
//! normalisations), for the fixed history, seeded generated ones and proptest's random ones.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod common;

use common::*;
use proptest::prelude::*;
use wa_binary::Jid;
use wa_history::{
    Chat, Contact, Format, History, HistoryMessage, MessageStatus, detect, export, import,
};

fn roundtrip(h: &History, format: Format) -> History {
    let bytes = export(h, format).unwrap();
    assert_eq!(detect(&bytes), Some(format));
    import(&bytes, format).unwrap()
}

#[test]
fn fixed_history_is_canonical_and_round_trips() {
    let h = fixed_history();
    let mut sorted = h.clone();
    sorted.sort_messages();
    assert_eq!(sorted, h, "the fixed history is in canonical order");
    for format in Format::ALL {
        assert_eq!(roundtrip(&h, format), h, "{format}");
    }
}

#[test]
fn generated_histories_round_trip() {
    for seed in 0..8 {
        let h = small_generated(seed);
        // Every status, a group with senders, media of each kind and empty texts are there.
        for status in MessageStatus::ALL {
            assert!(h.messages.iter().any(|m| m.status == status));
        }
        assert!(h.messages.iter().any(|m| m.sender.is_some()));
        assert!(h.messages.iter().any(|m| m.content.image_message.is_some()));
        assert!(
            h.messages
                .iter()
                .any(|m| m.content.document_message.is_some())
        );
        assert!(h.messages.iter().any(|m| m.content.audio_message.is_some()));
        assert!(
            h.messages
                .iter()
                .any(|m| m.content.conversation.as_deref() == Some(""))
        );
        assert!(
            h.messages
                .iter()
                .any(|m| m.content.text().is_some_and(|t| !t.is_ascii()))
        );
        for format in Format::ALL {
            assert_eq!(roundtrip(&h, format), h, "seed {seed}, {format}");
        }
    }
}

#[test]
fn both_formats_carry_the_same_information() {
    let h = small_generated(42);
    let via_android = roundtrip(&h, Format::Android);
    let via_both = roundtrip(&via_android, Format::Ios);
    assert_eq!(via_both, h);
    // And back: the iOS import exports as Android to the same bytes as the original.
    assert_eq!(
        export(&via_both, Format::Android).unwrap(),
        export(&h, Format::Android).unwrap()
    );
}

#[test]
fn messages_come_back_in_canonical_order_whatever_the_input_order() {
    let h = small_generated(7);
    let mut shuffled = h.clone();
    let mut rng = SplitMix::new(99);
    for i in (1..shuffled.messages.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        shuffled.messages.swap(i, j);
    }
    assert_ne!(shuffled, h);
    for format in Format::ALL {
        // The export does not depend on the order given.
        assert_eq!(
            export(&shuffled, format).unwrap(),
            export(&h, format).unwrap()
        );
        assert_eq!(roundtrip(&shuffled, format), h);
    }
}

#[test]
fn c_us_jids_are_written_in_the_s_whatsapp_net_form() {
    let mut h = History::new(jid("447700900123@c.us"));
    let alice = jid("15551234567@c.us");
    h.chats.push(Chat::new(alice.clone(), 1_600_000_000));
    h.contacts.push(Contact::new(alice.clone()));
    h.messages.push(HistoryMessage::new(
        alice,
        "X",
        false,
        1_600_000_001,
        MessageStatus::Read,
        text("hi"),
    ));
    for format in Format::ALL {
        let bytes = export(&h, format).unwrap();
        let shown = String::from_utf8_lossy(&bytes);
        assert!(!shown.contains("c.us"), "{format}");
        assert!(shown.contains("15551234567@s.whatsapp.net"), "{format}");
        // Equal as JIDs: the two domains are one.
        assert_eq!(import(&bytes, format).unwrap(), h);
    }
}

#[test]
fn broadcast_chats_round_trip_with_their_senders() {
    let mut h = fixed_history();
    let status = jid("status@broadcast");
    h.chats.push(Chat::new(status.clone(), 1_600_000_000));
    let mut m = HistoryMessage::new(
        status,
        "S1",
        false,
        1_600_000_000,
        MessageStatus::Delivered,
        image_full(9, Some("my day")),
    );
    m.sender = Some(jid("15551234567@s.whatsapp.net"));
    h.messages.push(m);
    for format in Format::ALL {
        assert_eq!(roundtrip(&h, format), h, "{format}");
    }
}

#[test]
fn an_empty_history_round_trips() {
    let h = History::new(jid("447700900123@s.whatsapp.net"));
    for format in Format::ALL {
        assert_eq!(roundtrip(&h, format), h);
    }
}

#[test]
fn detect_looks_at_the_first_bytes() {
    assert_eq!(detect(b"bplist00rest"), Some(Format::Ios));
    assert_eq!(detect(b" \r\n\t{\"version\":1}"), Some(Format::Android));
    assert_eq!(detect(b""), None);
    assert_eq!(detect(b"   "), None);
    assert_eq!(detect(b"[{}]"), None);
    assert_eq!(detect(b"bplist01"), None);
    assert_eq!(detect(b"<?xml version=\"1.0\"?><plist/>"), None);
}

#[test]
fn nan_coordinates_survive_as_bits() {
    let mut h = fixed_history();
    h.messages[0].content = location(f64::NAN, -0.0);
    for format in Format::ALL {
        let back = roundtrip(&h, format);
        // NaN != NaN, so `==` fails; the fuzzing hooks compare contents by their encoding.
        assert_ne!(back, h);
        assert!(wa_history::fuzzing::same(&back, &h));
        wa_history::fuzzing::import_android(&export(&h, Format::Android).unwrap());
        wa_history::fuzzing::import_ios(&export(&h, Format::Ios).unwrap());
    }
}

#[test]
fn format_names() {
    for format in Format::ALL {
        assert_eq!(format.to_string().parse::<Format>().unwrap(), format);
    }
    assert_eq!("iOS".parse::<Format>().unwrap(), Format::Ios);
    assert_eq!("android".parse::<Format>().unwrap(), Format::Android);
    assert!("windows-phone".parse::<Format>().is_err());
    assert_eq!(Format::Ios.to_string(), "ios");
}

// ---------------------------------------------------------------------------------------------
// Random histories.

fn arb_status() -> impl Strategy<Value = MessageStatus> {
    prop::sample::select(MessageStatus::ALL.to_vec())
}

/// Any string: proptest's `\PC*` is printable characters of every script; control characters
/// and the empty string are added explicitly.
fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        Just(String::new()),
        Just("tab\tnew\nline\u{0}nul\u{7f}".to_owned()),
    ]
}

fn arb_content() -> impl Strategy<Value = wa_proto::Message> {
    prop_oneof![
        4 => arb_text().prop_map(|t| text(&t)),
        1 => (any::<u8>(), proptest::option::of(arb_text()))
            .prop_map(|(s, c)| image_full(s, c.as_deref())),
        1 => (any::<u8>(), arb_text()).prop_map(|(s, t)| document(s, &t)),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(s, v)| audio(s, v)),
        1 => (any::<u8>(), arb_text()).prop_map(|(s, c)| video(s, &c)),
        1 => any::<u8>().prop_map(sticker),
        1 => (-90.0..90.0_f64, -180.0..180.0_f64).prop_map(|(a, b)| location(a, b)),
        1 => (arb_text(), arb_text()).prop_map(|(a, b)| quote(&a, "Q1", text(&b))),
        1 => "[!-~&&[^,]]{1,20}".prop_map(|id| revoke(&id)),
        1 => Just(wa_proto::Message::default()),
    ]
}

prop_compose! {
    fn arb_history()(
        n_users in 1_usize..6,
        n_groups in 0_usize..3,
        contacts_mask in any::<u8>(),
        chat_meta in prop::collection::vec(
            (proptest::option::of(arb_text()), any::<u32>(), wa_history::MIN_TIMESTAMP..wa_history::END_TIMESTAMP, any::<bool>()),
            8,
        ),
        contact_meta in prop::collection::vec(
            (proptest::option::of(arb_text()), proptest::option::of(arb_text())),
            8,
        ),
        messages in prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                "[!-~&&[^,]]{1,128}",
                any::<bool>(),
                any::<prop::sample::Index>(),
                wa_history::MIN_TIMESTAMP..wa_history::END_TIMESTAMP,
                arb_status(),
                arb_content(),
            ),
            0..40,
        ),
    ) -> History {
        let users: Vec<Jid> = (0..n_users).map(|i| jid(&format!("1555000{i:04}@s.whatsapp.net"))).collect();
        let groups: Vec<Jid> = (0..n_groups).map(|i| jid(&format!("1555-{i}@g.us"))).collect();
        let mut h = History::new(jid("447700900123@s.whatsapp.net"));
        for (i, chat_jid) in users.iter().chain(&groups).enumerate() {
            let (name, unread, last, archived) = chat_meta[i].clone();
            let mut c = Chat::new(chat_jid.clone(), last);
            c.name = name;
            c.unread = unread;
            c.archived = archived;
            h.chats.push(c);
        }
        for (i, u) in users.iter().enumerate() {
            if contacts_mask & (1 << i) != 0 {
                let mut k = Contact::new(u.clone());
                (k.name, k.notify) = contact_meta[i].clone();
                h.contacts.push(k);
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (chat, id, from_me, sender, ts, status, content) in messages {
            let chat = h.chats[chat.index(h.chats.len())].jid.clone();
            if !seen.insert((chat.clone(), id.clone())) {
                continue;
            }
            let mut m = HistoryMessage::new(chat.clone(), id, from_me, ts, status, content);
            if chat.is_group() && !from_me {
                m.sender = Some(users[sender.index(users.len())].clone());
            }
            h.messages.push(m);
        }
        h
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_histories_round_trip(h in arb_history()) {
        let mut canonical = h.clone();
        canonical.sort_messages();
        for format in Format::ALL {
            let bytes = export(&h, format).unwrap();
            let back = import(&bytes, format).unwrap();
            prop_assert_eq!(&back, &canonical);
            // The import is a fixed point of export.
            prop_assert_eq!(export(&back, format).unwrap(), bytes);
        }
    }
}
