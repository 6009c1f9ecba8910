//! Property tests: for arbitrary nodes under both policies, decoding an encoding gives the
//! canonical node back, re-encoding canonical bytes gives the same bytes, `encoded_len` is exact
//! and encoding is deterministic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::borrow::Cow;

use proptest::prelude::*;
use wa_binary::{Attrs, Content, Dictionary, Node, Policy};

/// Strings that reach every writer branch: tokens, packable digits and hex, JIDs of every
/// shape, `c.us`, `@` in odd places, non-ASCII text, and long strings.
fn string() -> impl Strategy<Value = String> {
    let token = (3u8..=175).prop_filter_map("a token", |b| {
        Dictionary::legacy().single(b).map(str::to_owned)
    });
    prop_oneof![
        token.clone(),
        "[0-9.-]{1,30}",
        "[0-9A-F]{1,30}",
        "[0-9]{1,300}",
        "[0-9]{5,15}@(c\\.us|s\\.whatsapp\\.net|g\\.us|broadcast|example\\.org)",
        "[0-9]{5,12}-[0-9]{10}@g\\.us",
        "[a-z]{1,8}@[a-z@.]{0,8}",
        Just("c.us".to_owned()),
        Just("@".to_owned()),
        Just(String::new()),
        "\\PC{0,20}",
        ".{250,300}",
        (token, "[0-9]{1,5}").prop_map(|(t, n)| format!("{n}@{t}")),
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 250..300),
        (0usize..3).prop_map(|i| vec![0xAB; [255, 256, 70_000][i]]),
    ]
}

fn leaf_content() -> impl Strategy<Value = Content<'static>> {
    prop_oneof![
        Just(Content::None),
        bytes().prop_map(|b| Content::Bytes(Cow::Owned(b))),
        string().prop_map(|s| Content::String(Cow::Owned(s))),
        Just(Content::Children(Vec::new().into())),
    ]
}

fn attrs() -> impl Strategy<Value = Attrs<'static>> {
    proptest::collection::vec((string(), string()), 0..6)
        .prop_map(|pairs| pairs.into_iter().collect())
}

fn tag() -> impl Strategy<Value = String> {
    string().prop_filter("tags are not empty", |s| !s.is_empty())
}

fn node() -> impl Strategy<Value = Node<'static>> {
    let leaf = (tag(), attrs(), leaf_content()).prop_map(|(t, a, c)| Node::from_parts(t, a, c));
    leaf.prop_recursive(4, 48, 8, |inner| {
        (tag(), attrs(), proptest::collection::vec(inner, 0..8))
            .prop_map(|(t, a, children)| Node::from_parts(t, a, Content::Children(children.into())))
    })
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![Just(Policy::Client), Just(Policy::Server)]
}

// ---- The canonical form: what PROTOCOL.md §4.3 says a decode of an encoding gives back. ----

fn is_token(s: &str) -> bool {
    Dictionary::legacy().lookup(s).is_some()
}

fn packable(s: &str) -> bool {
    (1..=254).contains(&s.len())
        && (s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
            || s.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
}

/// How a string comes back, and whether it went out raw (which in content position reads back
/// as bytes).
fn canonical_str(s: &str, in_content: bool, policy: Policy) -> (String, bool) {
    if policy == Policy::Client && !in_content && s == "c.us" {
        return ("s.whatsapp.net".to_owned(), false);
    }
    if is_token(s) {
        return (s.to_owned(), false);
    }
    if let Some(at) = s.find('@').filter(|&at| at >= 1) {
        let (user, server) = (&s[..at], &s[at + 1..]);
        let jid = match policy {
            Policy::Client => true,
            Policy::Server => is_token(server),
        };
        if jid {
            let user = if packable(user) {
                user.to_owned()
            } else {
                canonical_str(user, false, policy).0
            };
            return (
                format!("{user}@{}", canonical_str(server, false, policy).0),
                false,
            );
        }
    }
    let raw = !(policy == Policy::Server && packable(s));
    (s.to_owned(), raw)
}

fn canonical(node: &Node<'_>, policy: Policy) -> Node<'static> {
    let tag = canonical_str(node.tag(), false, policy).0;
    let attrs: Attrs<'static> = node
        .attrs()
        .iter()
        .map(|(k, v)| {
            (
                canonical_str(k, false, policy).0,
                canonical_str(v, false, policy).0,
            )
        })
        .collect();
    let content = match node.content() {
        Content::None => Content::None,
        Content::Bytes(b) => Content::Bytes(Cow::Owned(b.to_vec())),
        Content::String(s) => match canonical_str(s, true, policy) {
            (s, true) => Content::Bytes(Cow::Owned(s.into_bytes())),
            (s, false) => Content::String(Cow::Owned(s)),
        },
        Content::Children(children) => Content::Children(
            children
                .iter()
                .map(|c| canonical(c, policy))
                .collect::<Vec<_>>()
                .into(),
        ),
    };
    Node::from_parts(tag, attrs, content)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn decode_of_encode_is_canonical(node in node(), policy in policy()) {
        let bytes = wa_binary::encode(&node, policy).unwrap();
        let decoded = wa_binary::decode(&bytes).unwrap();
        prop_assert_eq!(decoded, canonical(&node, policy));
    }

    #[test]
    fn canonical_bytes_reencode_identically(node in node(), policy in policy()) {
        let bytes = wa_binary::encode(&node, policy).unwrap();
        let decoded = wa_binary::decode(&bytes).unwrap();
        prop_assert!(wa_binary::encode(&decoded, policy).unwrap() == bytes);
        let arena = wa_binary::Arena::new();
        let in_arena = wa_binary::Decoder::new().decode_in(&bytes, &arena).unwrap();
        prop_assert_eq!(&in_arena, &decoded);
    }

    #[test]
    fn encoded_len_is_exact_and_encoding_deterministic(node in node(), policy in policy()) {
        let bytes = wa_binary::encode(&node, policy).unwrap();
        prop_assert_eq!(wa_binary::encoded_len(&node, policy).unwrap(), bytes.len());
        prop_assert!(wa_binary::encode(&node.clone(), policy).unwrap() == bytes);
        // Appending to a buffer that already holds data writes the same bytes after it.
        let mut out = vec![1, 2, 3];
        wa_binary::Encoder::new(policy).encode_into(&node, &mut out).unwrap();
        prop_assert!(out[..3] == [1, 2, 3] && out[3..] == bytes[..]);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let arena = wa_binary::Arena::new();
        let in_arena = wa_binary::Decoder::new().decode_in(&bytes, &arena);
        prop_assert_eq!(&in_arena, &wa_binary::decode(&bytes));
        if let Ok(node) = wa_binary::decode(&bytes) {
            // Whatever decodes re-encodes, and that decodes to the same tree.
            let again = wa_binary::encode(&node, Policy::Server).unwrap();
            prop_assert_eq!(wa_binary::decode(&again).unwrap(), node);
        }
    }
}

#[test]
fn encode_errors_leave_the_buffer_untouched() {
    let bad = Node::new("ok").with_children(vec![Node::new("fine"), Node::new("")]);
    let mut out = vec![9];
    let err = wa_binary::Encoder::new(Policy::Server)
        .encode_into(&bad, &mut out)
        .unwrap_err();
    assert_eq!(err, wa_binary::EncodeError::EmptyTag);
    assert_eq!(out, [9]);
    let too_many = Node::new("x").with_children(vec![Node::new("y"); 65_536]);
    assert_eq!(
        wa_binary::encode(&too_many, Policy::Client).unwrap_err(),
        wa_binary::EncodeError::ListTooLong(65_536)
    );
    let mut deep = Node::new("leaf");
    for _ in 0..600 {
        deep = Node::new("n").with_children(vec![deep]);
    }
    assert!(matches!(
        wa_binary::encode(&deep, Policy::Client),
        Err(wa_binary::EncodeError::TooDeep(_))
    ));
}
