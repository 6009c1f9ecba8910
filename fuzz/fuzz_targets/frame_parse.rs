#![no_main]
//! `wa_frame::Frame::parse` on any bytes: as a text message (when they are UTF-8) and as a
//! binary message, in both directions. Whatever parses must rebuild into a message that parses
//! back to the same frame, and its JSON payload must survive the typed messages.
//!
//! Crashes found here are regression tests in `crates/wa-frame/tests/fuzz_regressions.rs`.

use libfuzzer_sys::fuzz_target;
use wa_frame::{Direction, Frame, Limits, Request, ServerMessage, WsMessage};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    for direction in [Direction::ClientToServer, Direction::ServerToClient] {
        if let Ok(text) = std::str::from_utf8(data) {
            check(WsMessage::Text(text), direction, &limits);
        }
        check(WsMessage::Binary(data), direction, &limits);
    }
});

fn check(message: WsMessage<'_>, direction: Direction, limits: &Limits) {
    let Ok(frame) = Frame::parse(message, direction, limits) else {
        return;
    };
    let rebuilt = frame.to_message();
    let again = Frame::parse(rebuilt.as_ws(), direction, limits)
        .unwrap_or_else(|err| panic!("{frame:?} rebuilt as {rebuilt:?} does not parse: {err}"));
    let Frame::Json { payload, .. } = &frame else {
        assert_eq!(again, frame);
        return;
    };
    // serde_json's text form of a float need not read back bit for bit (no `float_roundtrip`).
    let text = payload.to_string();
    if !has_float(&text) {
        assert_eq!(again, frame);
        if let Ok(message) = ServerMessage::from_json(payload.clone()) {
            // Written back and read again: the same message.
            let written = message.to_json();
            assert_eq!(
                ServerMessage::from_json(written.clone()).ok(),
                Some(message)
            );
            // And the same JSON, except that a `null` in a typed field comes back absent.
            if !text.contains("null") {
                assert_eq!(&written, payload);
            }
        }
    }
    let request = Request::from_json(payload.clone());
    assert_eq!(Request::from_json(request.to_json()), request);
}

/// Whether compact JSON text has a number with a fraction or an exponent (outside strings).
fn has_float(json: &str) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    let mut after_digit = false;
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'.' | b'e' | b'E' if after_digit => return true,
            _ => {}
        }
        after_digit = byte.is_ascii_digit();
    }
    false
}
