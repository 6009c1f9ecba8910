//! Replays every file of the fuzz corpus (`fuzz/corpus/<target>/`, linked as
//! `tests/data/fuzz/<target>`: the committed seeds, and whatever a local fuzzing run added)
//! through the same property checks the fuzz targets run, so a crash found once stays fixed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is a failed test"
)]

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("test data {}: {err}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path)
            .unwrap_or_else(|err| panic!("test data {}: {err}", path.display()));
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(
            result.is_ok(),
            "{target}: {} fails its property check",
            path.display()
        );
        count += 1;
    }
    count
}

#[test]
fn decode_corpus() {
    assert!(replay("decode", wa_binary::fuzzing::decode) >= 49);
}

#[test]
fn roundtrip_corpus() {
    assert!(replay("roundtrip", wa_binary::fuzzing::roundtrip) >= 19);
}

#[test]
fn jid_corpus() {
    assert!(replay("jid", wa_binary::fuzzing::jid) >= 14);
}
