//! Replays every file of the fuzz corpus (`fuzz/corpus/<target>/`, linked as
//! `tests/data/fuzz/<target>`) through the same hooks the fuzz targets call, so a crash found
//! once stays fixed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is a failed test"
)]

use std::path::Path;

fn replay(target: &str, check: impl Fn(&[u8]) + std::panic::RefUnwindSafe) -> usize {
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
fn wire_node_corpus() {
    assert!(
        replay("wire_node", |data| {
            wa_wire::fuzzing::node(data);
        }) >= 1
    );
}

#[test]
fn phone_json_corpus() {
    assert!(
        replay("phone_json", |data| {
            wa_wire::fuzzing::phone_request(data);
        }) >= 3
    );
    // The seeds are requests, the relay and the receipt of the kind decoded in place.
    for seed in ["seed-relay", "seed-receipt", "seed-ping"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/fuzz/phone_json")
            .join(seed);
        let text = std::fs::read_to_string(&path).unwrap();
        let request = wa_wire::phone::PhoneRequest::from_text(&text);
        assert!(request.is_ok(), "{seed}: {request:?}");
    }
}
