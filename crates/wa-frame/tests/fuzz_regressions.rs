//! Inputs the fuzzers found, kept as ordinary tests (`fuzz/fuzz_targets/frame_parse.rs`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use wa_frame::{Direction, Frame, Limits, ServerMessage, WsMessage};

/// Parses a server text message and checks what the fuzz target checks: the frame rebuilds to
/// itself, and its typed message writes back the same JSON.
fn check(text: &str) {
    let frame = Frame::parse(
        WsMessage::Text(text),
        Direction::ServerToClient,
        &Limits::default(),
    )
    .unwrap();
    let rebuilt = frame.to_message();
    let again = Frame::parse(
        rebuilt.as_ws(),
        Direction::ServerToClient,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(again, frame);
    let Frame::Json { payload, .. } = frame else {
        return;
    };
    let message = ServerMessage::from_json(payload.clone()).unwrap();
    assert_eq!(message.to_json(), payload);
}

/// A `Blocklist` without its `blocklist` field came back with an empty one.
#[test]
fn blocklist_without_list() {
    check(r#"s12,["Blocklist",{"id":1,"blcoklist":[]}]"#);
    check(r#"s12,["Blocklist",{}]"#);
}
