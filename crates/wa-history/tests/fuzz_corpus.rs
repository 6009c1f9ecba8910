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
fn history_android_corpus() {
    assert!(
        replay("history_android", |data| {
            wa_history::fuzzing::import_android(data);
        }) >= 1
    );
}

#[test]
fn history_ios_corpus() {
    assert!(
        replay("history_ios", |data| {
            wa_history::fuzzing::import_ios(data);
        }) >= 1
    );
}
