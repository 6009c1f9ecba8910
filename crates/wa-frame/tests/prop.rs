//! Property tests: `parse(build(f)) == f` for every frame kind, and parsing arbitrary input
//! never panics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::borrow::Cow;

use proptest::prelude::*;
use serde_json::Value;
use wa_frame::{
    BinaryHeader, Direction, Flags, Frame, Limits, Metric, ServerMessage, Tag, WsMessage,
};

/// Printable ASCII without `,`, not starting with `!`.
fn tag() -> impl Strategy<Value = Tag<'static>> {
    "[\\x22-\\x2b\\x2d-\\x7e][\\x21-\\x2b\\x2d-\\x7e]{0,40}"
        .prop_map(|text| Tag::new(text).unwrap())
}

/// JSON without floats (whose text form need not round-trip bit for bit), nesting at most 5.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn header() -> impl Strategy<Value = BinaryHeader> {
    (any::<u8>(), any::<u8>()).prop_map(|(metric, flags)| BinaryHeader {
        metric: Metric(metric),
        flags: Flags(flags),
    })
}

fn frame() -> impl Strategy<Value = Frame<'static>> {
    prop_oneof![
        (tag(), json()).prop_map(|(tag, payload)| Frame::Json { tag, payload }),
        tag().prop_map(|tag| Frame::Empty { tag }),
        any::<u64>().prop_map(|server_time_ms| Frame::Pong { server_time_ms }),
        Just(Frame::Keepalive),
        (
            tag(),
            proptest::option::of(header()),
            proptest::collection::vec(any::<u8>(), 0..600)
        )
            .prop_map(|(tag, header, payload)| Frame::Binary {
                tag,
                header,
                payload: Cow::Owned(payload),
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn parse_inverts_build(frame in frame()) {
        let direction = match &frame {
            Frame::Binary { header: None, .. } => Direction::ServerToClient,
            _ => Direction::ClientToServer,
        };
        let message = frame.to_message();
        let parsed = Frame::parse(message.as_ws(), direction, &Limits::default())?;
        prop_assert_eq!(parsed, frame);
    }

    #[test]
    fn server_messages_round_trip_through_json(payload in json()) {
        if let Ok(message) = ServerMessage::from_json(payload.clone()) {
            prop_assert_eq!(message.to_json(), payload);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}", prefix in "[a-z0-9.-]{0,5},{0,2}") {
        let text = format!("{prefix}{text}");
        for direction in [Direction::ClientToServer, Direction::ServerToClient] {
            let _ = Frame::parse(WsMessage::Text(&text), direction, &Limits::default());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for direction in [Direction::ClientToServer, Direction::ServerToClient] {
            let _ = Frame::parse(WsMessage::Binary(&bytes), direction, &Limits::default());
        }
    }
}
