//! Every `message` node of the benchmark corpus (`tests/data/corpus/`, links into the
//! repository's `testdata/corpus/`) decodes as a
//! `WebMessageInfo` and re-encodes to the same bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::path::{Path, PathBuf};

use prost::Message as _;
use wa_binary::Node;
use wa_proto::{WebMessageInfo, web_message_info::Status};

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("test data {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "bin"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus files in {}", dir.display());
    files
}

/// The bytes of a corpus file; a missing file fails the test with its full path.
fn read_file(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|err| panic!("test data {}: {err}", path.display()))
}

/// The byte content of every `message` node in `node`, depth first.
fn message_payloads<'n>(node: &'n Node<'_>, out: &mut Vec<&'n [u8]>) {
    if node.tag() == "message" {
        out.push(node.bytes().expect("a message node carries bytes"));
    }
    for child in node.children() {
        message_payloads(child, out);
    }
}

fn name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

#[test]
fn every_corpus_message_decodes_and_reencodes_byte_for_byte() {
    let mut total = 0;
    for path in corpus_files() {
        let data = read_file(&path);
        let node = wa_binary::decode(&data).unwrap();
        let mut payloads = Vec::new();
        message_payloads(&node, &mut payloads);
        let expected = match name(&path) {
            // testdata/README.md: "messages-last.bin (292 messages, ...)".
            "messages-last.bin" => 292,
            "messages-before-0.bin" | "messages-before-1.bin" | "messages-before-2.bin" => 19,
            _ => 0,
        };
        assert_eq!(payloads.len(), expected, "{}", name(&path));
        for (i, bytes) in payloads.iter().enumerate() {
            let at = format!("{} message #{i}", name(&path));
            let info = WebMessageInfo::decode(*bytes).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(!info.key.id().is_empty(), "{at}: no key.id");
            assert!(!info.key.remote_jid().is_empty(), "{at}: no key.remoteJid");
            assert!(info.key.from_me.is_some(), "{at}: no key.fromMe");
            assert!(info.message_timestamp.is_some(), "{at}: no timestamp");
            assert!(
                info.message.is_some() || info.message_stub_type.is_some(),
                "{at}: neither content nor stub"
            );
            if let Some(status) = info.status {
                assert!(Status::try_from(status).is_ok(), "{at}: status {status}");
            }
            assert_eq!(info.encoded_len(), bytes.len(), "{at}: encoded_len");
            assert_eq!(info.encode_to_vec(), *bytes, "{at}: re-encoding differs");
        }
        total += payloads.len();
    }
    assert_eq!(total, 349);
}

#[test]
fn corpus_messages_have_readable_text() {
    // The corpus holds text messages: each has a non-empty text and no attachment or quote.
    for path in corpus_files() {
        let data = read_file(&path);
        let node = wa_binary::decode(&data).unwrap();
        let mut payloads = Vec::new();
        message_payloads(&node, &mut payloads);
        for bytes in payloads {
            let info = WebMessageInfo::decode(bytes).unwrap();
            let message = info.message.as_ref().unwrap();
            let text = message.text().unwrap();
            assert!(!text.is_empty());
            assert!(message.media().is_none());
            assert!(message.context_info().is_none());
        }
    }
}
