//! Replays the `session` fuzz corpus (`fuzz/corpus/session/`: the committed seeds and whatever
//! a local run added) through the same property check the fuzz target runs.

#![allow(clippy::unwrap_used, reason = "tests: a panic is a failed test")]

#[test]
fn session_corpus() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/session");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
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
