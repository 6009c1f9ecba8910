//! The node vectors (`tests/data/`, links into the repository's `testdata/`): every valid node vector decodes to its node and re-encodes to its bytes
//! under its writer policy; every invalid one fails with the expected error; every corpus file
//! round-trips byte for byte under the server policy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use wa_binary::{Content, DecodeErrorKind, Node, Policy};

/// `tests/data/<name>` of this crate.
fn data_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The bytes of a test data file; a missing file fails the test with its full path.
fn read_file(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|err| panic!("test data {}: {err}", path.display()))
}

/// The bytes of `tests/data/<name>`.
fn read_data(name: &str) -> Vec<u8> {
    read_file(&data_path(name))
}

/// The files of the directory `tests/data/<name>`, sorted.
fn data_files(name: &str) -> Vec<PathBuf> {
    let dir = data_path(name);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("test data {}: {err}", dir.display()));
    let mut files: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
}

fn load(name: &str) -> Value {
    serde_json::from_slice(&read_data(name)).unwrap_or_else(|err| panic!("test data {name}: {err}"))
}

fn policy(v: &Value) -> Option<Policy> {
    v["writer_policy"].as_str().map(|p| p.parse().unwrap())
}

/// A vector's bytes, expanding the one whose content is given as a repeated byte.
fn vector_bytes(v: &Value) -> (Vec<u8>, Value) {
    let node = v["node"].clone();
    if let Some(repeat) = node[2].get("repeat_byte_hex") {
        let header = hex::decode(v["hex"].as_str().unwrap().trim_end_matches("...")).unwrap();
        let byte = hex::decode(repeat.as_str().unwrap()).unwrap()[0];
        let count = node[2]["count"].as_u64().unwrap() as usize;
        let mut bytes = header;
        bytes.resize(bytes.len() + count, byte);
        let mut node = node;
        node[2] = serde_json::json!({ "hex": hex::encode(vec![byte; count]) });
        return (bytes, node);
    }
    (hex::decode(v["hex"].as_str().unwrap()).unwrap(), node)
}

#[test]
fn valid_vectors_decode_and_reencode() {
    let vectors = load("nodes.json");
    let valid = vectors["valid"].as_array().unwrap();
    assert!(valid.len() >= 26);
    for v in valid {
        let name = v["name"].as_str().unwrap();
        let (bytes, expected) = vector_bytes(v);
        let node = wa_binary::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let arena = wa_binary::Arena::new();
        assert_eq!(
            wa_binary::Decoder::new().decode_in(&bytes, &arena).unwrap(),
            node,
            "{name}"
        );
        // Compared as text: attribute order matters (the vectors are read order-preserving).
        assert_eq!(
            serde_json::to_string(&node).unwrap(),
            serde_json::to_string(&expected).unwrap(),
            "{name}: decoded node"
        );
        // The JSON form parses back to the same node.
        let parsed: Node<'static> = serde_json::from_value(expected.clone()).unwrap();
        assert_eq!(parsed, node.clone().into_owned(), "{name}: JSON form");
        if let Some(policy) = policy(v) {
            let encoded = wa_binary::encode(&node, policy).unwrap();
            assert!(
                encoded == bytes,
                "{name}: re-encoded bytes differ under {policy:?}"
            );
            assert_eq!(
                wa_binary::encoded_len(&node, policy).unwrap(),
                bytes.len(),
                "{name}"
            );
            // Encoding the node built from JSON gives the same bytes (content strings that
            // decode as bytes are given as bytes in the vectors).
            assert!(
                wa_binary::encode(&parsed, policy).unwrap() == bytes,
                "{name}: from JSON"
            );
        } else {
            // Decode-only vectors still re-encode to something that decodes to the same node.
            for policy in [Policy::Client, Policy::Server] {
                let encoded = wa_binary::encode(&node, policy).unwrap();
                let again = wa_binary::decode(&encoded).unwrap();
                assert_eq!(again.tag(), node.tag(), "{name}");
            }
        }
    }
}

#[test]
fn baileys_raw_jid_user_repacks_canonically() {
    let vectors = load("nodes.json");
    let v = vectors["valid"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "baileys-raw-jid-user")
        .unwrap();
    let (bytes, _) = vector_bytes(v);
    let node = wa_binary::decode(&bytes).unwrap();
    let canonical = wa_binary::encode(&node, Policy::Server).unwrap();
    assert!(
        canonical.len() < bytes.len(),
        "the packed user is shorter than the raw one"
    );
    assert_eq!(wa_binary::decode(&canonical).unwrap(), node);
}

fn expected_kind(expect: &str, kind: DecodeErrorKind) -> bool {
    use DecodeErrorKind as K;
    let e = expect.to_ascii_lowercase();
    match kind {
        K::Truncated(_) => e.starts_with("truncated"),
        K::EmptyNode => e.starts_with("invalid node"),
        K::InvalidListTag(_) => e.starts_with("invalid list tag"),
        K::StreamEnd => e.starts_with("unexpected stream end"),
        K::UnknownDoubleByteToken { .. } => e.starts_with("double-byte token"),
        K::UnknownToken(t) => e == format!("unknown token {t}"),
        K::InvalidNibble(_) => e.starts_with("invalid nibble"),
        K::TrailingBytes(_) => e.starts_with("trailing"),
        K::TooDeep(_) => e.starts_with("too deep"),
        K::MissingAttrKey => e.starts_with("attribute key missing"),
        _ => false,
    }
}

#[test]
fn invalid_vectors_fail_with_the_expected_error() {
    let vectors = load("nodes.json");
    let invalid = vectors["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 14);
    for v in invalid {
        let name = v["name"].as_str().unwrap();
        let expect = v["expect"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let err = wa_binary::decode(&bytes).expect_err(name);
        let arena = wa_binary::Arena::new();
        let arena_err = wa_binary::Decoder::new()
            .decode_in(&bytes, &arena)
            .expect_err(name);
        assert_eq!(arena_err, err, "{name}: the arena path fails the same way");
        assert!(
            expected_kind(expect, err.kind()),
            "{name}: expected {expect:?}, got {err}"
        );
        assert!(
            err.offset() <= bytes.len(),
            "{name}: offset {} past the input",
            err.offset()
        );
        let first_word = expect
            .split([' ', ',', '('])
            .next()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            err.to_string().contains(&first_word),
            "{name}: {err} should say {first_word:?}"
        );
    }
}

#[test]
fn corpus_round_trips_under_the_server_policy() {
    let mut files = 0;
    for path in data_files("corpus") {
        let bytes = read_file(&path);
        let node = wa_binary::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let encoded = wa_binary::encode(&node, Policy::Server).unwrap();
        assert!(
            encoded == bytes,
            "{}: re-encoded bytes differ",
            path.display()
        );
        assert_eq!(
            wa_binary::encoded_len(&node, Policy::Server).unwrap(),
            bytes.len()
        );
        // The arena path decodes the same tree, and an arena is reusable.
        let mut arena = wa_binary::Arena::new();
        for _ in 0..2 {
            let in_arena = wa_binary::Decoder::new().decode_in(&bytes, &arena).unwrap();
            assert_eq!(in_arena, node);
            assert!(wa_binary::encode(&in_arena, Policy::Server).unwrap() == bytes);
            drop(in_arena);
            arena.reset();
        }
        // Owned copies are equal and encode the same.
        let owned = node.clone().into_owned();
        assert_eq!(owned, node);
        assert!(wa_binary::encode(&owned, Policy::Server).unwrap() == bytes);
        files += 1;
    }
    assert_eq!(files, 8);
}

#[test]
fn corpus_messages_are_byte_content() {
    let bytes = read_data("corpus/messages-last.bin");
    let node = wa_binary::decode(&bytes).unwrap();
    let messages: Vec<_> = node
        .children()
        .iter()
        .filter(|c| c.tag() == "message")
        .collect();
    assert_eq!(messages.len(), 292);
    assert!(
        messages
            .iter()
            .all(|m| matches!(m.content(), Content::Bytes(b) if !b.is_empty()))
    );
}
