//! Replays the `session` fuzz corpus (`fuzz/corpus/session/`, linked as
//! `tests/data/fuzz/session`: the committed seeds and whatever a local run added) through the
//! same property check the fuzz target runs.

#![allow(clippy::unwrap_used, reason = "tests: a panic is a failed test")]

#[test]
fn session_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz/session");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("test data {}: {err}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path)
            .unwrap_or_else(|err| panic!("test data {}: {err}", path.display()));
        let result = std::panic::catch_unwind(|| wa_test_support::fuzz_session(&data));
        assert!(
            result.is_ok(),
            "{} fails the session property",
            path.display()
        );
        count += 1;
    }
    assert!(count >= 16, "{count} corpus files");
}
