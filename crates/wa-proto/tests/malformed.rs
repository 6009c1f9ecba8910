//! Malformed input is a `DecodeError`, never a panic: hand-made broken encodings, nesting past
//! prost's recursion limit, random bytes, and damaged corpus messages.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestRunner};
use prost::Message as _;
use wa_proto::{ContextInfo, ExtendedTextMessage, Message, MessageKey, WebMessageInfo};

/// The bytes of every `message` node in `tests/data/corpus/messages-last.bin` (a link into the
/// repository's `testdata/`). Read by each test that needs it, so a missing file fails each of
/// them with its path.
fn corpus_messages() -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/corpus/messages-last.bin");
    let data =
        std::fs::read(&path).unwrap_or_else(|err| panic!("test data {}: {err}", path.display()));
    let node = wa_binary::decode(&data).unwrap();
    node.children()
        .iter()
        .filter(|child| child.tag() == "message")
        .map(|child| child.bytes().unwrap().to_vec())
        .collect()
}

#[test]
fn broken_encodings_are_errors() {
    let cases: &[(&str, &[u8])] = &[
        ("unterminated varint", &[0x18, 0x80]),
        (
            "varint longer than 10 bytes",
            &[
                0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ),
        ("length past the end", &[0x12, 0x05, 0x0a]),
        ("huge length", &[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        ("field number 0", &[0x00, 0x00]),
        ("wire type 7", &[0x0f]),
        ("end group without start", &[0x0c]),
        ("unterminated group", &[0xfb, 0x01]),
        ("wrong wire type for a known field", &[0x1a, 0x00]),
        (
            "invalid UTF-8 in key.remoteJid",
            &[0x0a, 0x03, 0x0a, 0x01, 0xff],
        ),
        (
            "truncated fixed64 of an unknown field",
            &[0xb9, 0x02, 0x01, 0x02],
        ),
        ("key cut inside", &[0x0a, 0x04, 0x1a, 0x05, 0x33, 0x45]),
    ];
    for (what, input) in cases {
        assert!(
            WebMessageInfo::decode(*input).is_err(),
            "{what}: {input:02x?} decoded"
        );
    }
}

/// A text message quoting a text message quoting ... `depth` times. Each quote costs three
/// levels of nesting: Message → ExtendedTextMessage → ContextInfo → Message.
fn quoting(depth: usize) -> WebMessageInfo {
    let mut message = Message {
        conversation: Some("hi".into()),
        ..Default::default()
    };
    for _ in 0..depth {
        message = Message {
            extended_text_message: Some(Box::new(ExtendedTextMessage {
                context_info: Some(Box::new(ContextInfo {
                    quoted_message: Some(Box::new(message)),
                    ..Default::default()
                })),
                ..Default::default()
            })),
            ..Default::default()
        };
    }
    WebMessageInfo {
        key: MessageKey {
            id: Some("3EB0".into()),
            ..Default::default()
        },
        message: Some(message),
        ..Default::default()
    }
}

#[test]
fn nesting_past_the_recursion_limit_is_an_error() {
    let shallow = quoting(20).encode_to_vec();
    assert_eq!(WebMessageInfo::decode(&shallow[..]).unwrap(), quoting(20));
    let deep = quoting(40).encode_to_vec();
    let error = WebMessageInfo::decode(&deep[..]).unwrap_err();
    assert!(error.to_string().contains("recursion limit"), "{error}");
    // Far deeper than any stack would survive without the limit. Built as bytes: prost's encoder
    // and `Drop` recurse too, so a value this deep cannot be built as a struct.
    let very_deep = quoting_bytes(20_000);
    let error = WebMessageInfo::decode(&very_deep[..]).unwrap_err();
    assert!(error.to_string().contains("recursion limit"), "{error}");
}

fn push_varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: usize) -> usize {
    let mut out = Vec::new();
    push_varint(&mut out, value);
    out.len()
}

/// The encoding of `quoting(depth)` (with an empty key), written outside in.
fn quoting_bytes(depth: usize) -> Vec<u8> {
    let innermost = [0x0a, 0x02, b'h', b'i']; // Message { conversation: "hi" }
    // (message, extendedTextMessage, contextInfo) lengths per level, innermost first.
    let mut sizes = Vec::with_capacity(depth);
    let mut message = innermost.len();
    for _ in 0..depth {
        let context = 1 + varint_len(message) + message; // quotedMessage = 3
        let extended = 2 + varint_len(context) + context; // contextInfo = 17
        let outer = 1 + varint_len(extended) + extended; // extendedTextMessage = 6
        sizes.push((message, context, extended));
        message = outer;
    }
    let mut out = vec![0x0a, 0x00, 0x12]; // key = {}, message =
    push_varint(&mut out, message);
    for &(inner, context, extended) in sizes.iter().rev() {
        out.push(0x32);
        push_varint(&mut out, extended);
        out.extend([0x8a, 0x01]);
        push_varint(&mut out, context);
        out.push(0x1a);
        push_varint(&mut out, inner);
    }
    out.extend(innermost);
    out
}

#[test]
fn hand_built_nesting_matches_prost() {
    for depth in [0, 1, 5, 30] {
        let mut expected = quoting(depth);
        expected.key.id = None;
        assert_eq!(
            quoting_bytes(depth),
            expected.encode_to_vec(),
            "depth {depth}"
        );
    }
}

#[test]
fn every_prefix_of_a_corpus_message_decodes_or_fails_cleanly() {
    for message in corpus_messages().iter().take(20) {
        for end in 0..message.len() {
            let _ = WebMessageInfo::decode(&message[..end]);
        }
    }
}

/// 2048 seeded cases, and no regression files written into the source tree.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2048,
        rng_seed: RngSeed::Fixed(0x3eb0_9a0b),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(info) = WebMessageInfo::decode(&input[..]) {
            // Whatever decodes re-encodes to something that decodes to the same value.
            let again = WebMessageInfo::decode(&info.encode_to_vec()[..]).unwrap();
            prop_assert_eq!(again, info);
        }
    }
}

#[test]
fn damaged_corpus_messages_never_panic() {
    let messages = corpus_messages();
    assert_eq!(messages.len(), 292);
    let strategy = (
        0..messages.len(),
        proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    );
    let result = TestRunner::new(config()).run(&strategy, |(index, flips)| {
        let mut input = messages[index].clone();
        for (at, mask) in flips {
            let i = at.index(input.len());
            input[i] ^= mask;
        }
        if let Ok(info) = WebMessageInfo::decode(&input[..]) {
            let again = WebMessageInfo::decode(&info.encode_to_vec()[..]).unwrap();
            prop_assert_eq!(again, info);
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}
