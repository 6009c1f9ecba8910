//! Round trips for every frame kind, every parse error, requests, tags, metrics and flags.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::borrow::Cow;

use serde_json::json;
use wa_frame::{
    BinaryHeader, Browser, ChallengeAnswer, Direction, Flags, Frame, FrameError, Init, KEEPALIVE,
    Limits, Login, LoginMode, Metric, OutMessage, Request, ServerMessage, Tag, TagError, TagForm,
    TagGenerator, WsMessage, logout_frame,
};

fn tag(text: &str) -> Tag<'_> {
    Tag::new(text).unwrap()
}

fn parse(message: WsMessage<'_>, direction: Direction) -> Result<Frame<'_>, FrameError> {
    Frame::parse(message, direction, &Limits::default())
}

fn round_trip(frame: &Frame<'_>, direction: Direction) {
    let message = frame.to_message();
    assert_eq!(
        &parse(message.as_ws(), direction).unwrap(),
        frame,
        "{message:?}"
    );
}

#[test]
fn every_frame_kind_round_trips() {
    let both = [Direction::ClientToServer, Direction::ServerToClient];
    for direction in both {
        round_trip(
            &Frame::Json {
                tag: tag("s1"),
                payload: json!(["Conn", {"a": 1}]),
            },
            direction,
        );
        round_trip(
            &Frame::Json {
                tag: tag("1.--2"),
                payload: json!({"status": 200}),
            },
            direction,
        );
        round_trip(
            &Frame::Json {
                tag: tag("x"),
                payload: json!("text"),
            },
            direction,
        );
        round_trip(&Frame::Empty { tag: tag("s14") }, direction);
        round_trip(
            &Frame::Pong {
                server_time_ms: 1_589_356_440_123,
            },
            direction,
        );
        round_trip(&Frame::Pong { server_time_ms: 0 }, direction);
        round_trip(&Frame::Keepalive, direction);
    }
    round_trip(
        &Frame::Binary {
            tag: tag("1589356438.--1"),
            header: Some(BinaryHeader {
                metric: Metric::PRESENCE,
                flags: Flags(0xa0),
            }),
            payload: Cow::Borrowed(&[1, 2, 3]),
        },
        Direction::ClientToServer,
    );
    round_trip(
        &Frame::Binary {
            tag: tag("preempt-1589472058-319"),
            header: None,
            payload: Cow::Borrowed(b",,[\"not\",\"json\"]"),
        },
        Direction::ServerToClient,
    );
    round_trip(
        &Frame::Binary {
            tag: tag("t"),
            header: Some(BinaryHeader {
                metric: Metric(200),
                flags: Flags(0x03),
            }),
            payload: Cow::Borrowed(&[]),
        },
        Direction::ClientToServer,
    );
    round_trip(
        &Frame::Binary {
            tag: tag("t"),
            header: None,
            payload: Cow::Borrowed(&[]),
        },
        Direction::ServerToClient,
    );
}

#[test]
fn text_forms() {
    let s = Direction::ServerToClient;
    // Both `tag,JSON` and `tag,,JSON`.
    let one = parse(WsMessage::Text("s1,[1]"), s).unwrap();
    let two = parse(WsMessage::Text("s1,,[1]"), s).unwrap();
    assert_eq!(one, two);
    assert_eq!(one.to_message(), OutMessage::Text("s1,,[1]".into()));
    assert_eq!(one.tag().unwrap(), "s1");
    // An empty payload in either form.
    assert_eq!(
        parse(WsMessage::Text("s1,"), s).unwrap(),
        Frame::Empty { tag: tag("s1") }
    );
    assert_eq!(
        parse(WsMessage::Text("s1,,"), s).unwrap(),
        Frame::Empty { tag: tag("s1") }
    );
    assert_eq!(
        parse(WsMessage::Text(KEEPALIVE), s).unwrap(),
        Frame::Keepalive
    );
    assert_eq!(Frame::Keepalive.tag(), None);
    // A keepalive-looking tag with a payload is an ordinary frame.
    assert!(matches!(
        parse(WsMessage::Text("?,,[1]"), s).unwrap(),
        Frame::Json { .. }
    ));
    // The split is at the first comma: later commas belong to the JSON.
    let Frame::Json { payload, .. } = parse(WsMessage::Text("t,[1,2,\",\"]"), s).unwrap() else {
        panic!()
    };
    assert_eq!(payload, json!([1, 2, ","]));
}

#[test]
fn binary_is_never_parsed_as_json() {
    let frame = parse(
        WsMessage::Binary(b"s1,[\"Conn\"]"),
        Direction::ServerToClient,
    )
    .unwrap();
    assert!(matches!(frame, Frame::Binary { payload, .. } if &payload[..] == b"[\"Conn\"]"));
    let frame = parse(WsMessage::Binary(b"?,,"), Direction::ServerToClient).unwrap();
    assert!(matches!(frame, Frame::Binary { tag, .. } if tag == "?"));
}

#[test]
fn parse_errors_say_what_is_wrong() {
    let s = Direction::ServerToClient;
    let c = Direction::ClientToServer;
    let small = Limits::default().with_max_frame_len(8);
    assert!(matches!(
        Frame::parse(WsMessage::Text("s1,[1,2,3]"), s, &small),
        Err(FrameError::TooLarge { len: 10, limit: 8 })
    ));
    assert!(matches!(
        Frame::parse(WsMessage::Binary(&[0; 9]), s, &small),
        Err(FrameError::TooLarge { len: 9, limit: 8 })
    ));
    assert!(matches!(
        parse(WsMessage::Text("no comma"), s),
        Err(FrameError::MissingComma)
    ));
    assert!(matches!(
        parse(WsMessage::Binary(b"nocomma"), s),
        Err(FrameError::MissingComma)
    ));
    assert!(matches!(
        parse(WsMessage::Text(",[1]"), s),
        Err(FrameError::Tag(TagError::Empty))
    ));
    assert!(matches!(
        parse(WsMessage::Text("a b,[1]"), s),
        Err(FrameError::Tag(TagError::NotPrintable {
            at: 1,
            byte: b' '
        }))
    ));
    assert!(matches!(
        parse(WsMessage::Binary(b"a\xffb,xyz"), s),
        Err(FrameError::Tag(TagError::NotPrintable {
            at: 1,
            byte: 0xff
        }))
    ));
    let long = vec![b'a'; 5000];
    assert!(matches!(
        parse(WsMessage::Binary(&long), s),
        Err(FrameError::Tag(TagError::TooLong { len: 129 }))
    ));
    let long_text = format!("{},[1]", "a".repeat(129));
    assert!(matches!(
        parse(WsMessage::Text(&long_text), s),
        Err(FrameError::Tag(TagError::TooLong { len: 129 }))
    ));
    assert!(matches!(
        parse(WsMessage::Binary(b"t,\x08"), c),
        Err(FrameError::MissingHeader { len: 1 })
    ));
    assert!(matches!(
        parse(WsMessage::Binary(b"t,"), c),
        Err(FrameError::MissingHeader { len: 0 })
    ));
    for pong in ["!", "!12a", "!-1", "!99999999999999999999999", "! 1"] {
        assert!(
            matches!(
                parse(WsMessage::Text(pong), s),
                Err(FrameError::BadPong { .. })
            ),
            "{pong}"
        );
    }
    assert!(matches!(
        parse(WsMessage::Text("t,{"), s),
        Err(FrameError::Json { offset: 2, .. })
    ));
    assert!(matches!(
        parse(WsMessage::Text("t,,nope"), s),
        Err(FrameError::Json { offset: 3, .. })
    ));
    assert!(matches!(
        parse(WsMessage::Text("t,[1] x"), s),
        Err(FrameError::Json { .. })
    ));

    let deep = format!("t,{}{}", "[".repeat(33), "]".repeat(33));
    assert!(matches!(
        parse(WsMessage::Text(&deep), s),
        Err(FrameError::JsonTooDeep {
            limit: 32,
            offset: 34
        })
    ));
    let ok = format!("t,{}{}", "[".repeat(32), "]".repeat(32));
    assert!(parse(WsMessage::Text(&ok), s).is_ok());
    let shallow = Limits::default().with_max_json_depth(1);
    assert!(matches!(
        Frame::parse(WsMessage::Text("t,[{}]"), s, &shallow),
        Err(FrameError::JsonTooDeep {
            limit: 1,
            offset: 3
        })
    ));
    // Far beyond serde_json's own limit: still a typed error, no stack overflow.
    let very_deep = format!("t,{}", "[".repeat(1_000_000));
    assert!(matches!(
        parse(WsMessage::Text(&very_deep), s),
        Err(FrameError::JsonTooDeep { .. })
    ));
    let unbounded = Limits::default().with_max_json_depth(usize::MAX);
    assert!(matches!(
        Frame::parse(WsMessage::Text(&very_deep), s, &unbounded),
        Err(FrameError::Json { .. })
    ));

    let err = parse(WsMessage::Text("t,{"), s).unwrap_err().to_string();
    assert!(err.contains("byte 2"), "{err}");
}

#[test]
fn tags() {
    assert_eq!(Tag::new(""), Err(TagError::Empty));
    assert_eq!(Tag::new("a,b"), Err(TagError::Comma { at: 1 }));
    assert_eq!(Tag::new("!1"), Err(TagError::Bang));
    assert_eq!(
        Tag::new("é"),
        Err(TagError::NotPrintable { at: 0, byte: 0xc3 })
    );
    assert_eq!(
        Tag::new("a".repeat(129)),
        Err(TagError::TooLong { len: 129 })
    );
    assert!(Tag::new("a".repeat(128)).is_ok());
    assert!(Tag::new("preempt-1589472058-319").is_ok());
    assert_eq!(
        Tag::try_from("s1".to_owned())
            .unwrap()
            .into_owned()
            .as_str(),
        "s1"
    );
    assert_eq!(format!("{:?}", tag("s1")), "Tag(\"s1\")");

    let mut long = TagGenerator::new(1_589_356_438, TagForm::Long);
    let tags: Vec<String> = long.by_ref().take(3).map(|t| t.to_string()).collect();
    assert_eq!(tags, ["1589356438.--0", "1589356438.--1", "1589356438.--2"]);
    let mut short = TagGenerator::new(1_589_356_438, TagForm::Short);
    assert_eq!(short.next_tag(), "438.--0");
    assert_eq!(short.next_tag(), "438.--1");
    let mut extreme = TagGenerator::new(u64::MAX, TagForm::Long);
    for _ in 0..3 {
        let t = extreme.next_tag();
        assert!(Tag::new(t.as_str()).is_ok() && !t.as_str().contains(','));
    }
}

#[test]
fn metrics_and_flags() {
    assert_eq!(Metric::DEBUG_LOG, Metric(1));
    assert_eq!(Metric::MESSAGE, Metric(16));
    assert_eq!(Metric::QUERY_MESSAGE_INFO, Metric(22));
    assert_eq!(Metric::QUERY_RECEIPT, Metric(3));
    assert_eq!(Metric::QUERY_RECENT_STICKERS, Metric(49));
    for n in 1..=49 {
        let name = Metric(n).name().unwrap();
        assert_eq!(Metric::from_name(name), Some(Metric(n)));
    }
    assert_eq!(Metric(0).name(), None);
    assert_eq!(Metric(50).name(), None);
    assert_eq!(format!("{:?}", Metric(8)), "PRESENCE");
    assert_eq!(format!("{:?}", Metric(77)), "Metric(77)");
    assert_eq!(Metric(77).to_string(), "77");

    let presence = Flags::NOT_IGNORE | Flags::AVAILABLE;
    assert_eq!(presence.bits(), 0xa0);
    assert!(presence.contains(Flags::AVAILABLE) && !presence.contains(Flags::EXPIRES));
    assert_eq!(format!("{presence:?}"), "Flags(NOT_IGNORE | AVAILABLE)");
    assert_eq!(
        format!("{:?}", Flags(0x0c)),
        "Flags(EXPIRES | SKIP_OFFLINE)"
    );
    assert_eq!(format!("{:?}", Flags(0x81)), "Flags(NOT_IGNORE | 0x01)");
    assert_eq!(format!("{:?}", Flags::EMPTY), "Flags(0x00)");
    assert_eq!((Flags(0x88) & Flags::EXPIRES), Flags::EXPIRES);
}

#[test]
fn requests_as_json() {
    let init = Request::Init(Init {
        version: [2, 2142, 12],
        browser: Browser {
            long: "Mac OS".into(),
            short: "Chrome".into(),
            version: None,
        },
        client_id: "AAECAwQFBgcICQoLDA0ODw==".into(),
        last: true,
        features: None,
    });
    let cases = [
        (
            init,
            json!([
                "admin",
                "init",
                [2, 2142, 12],
                ["Mac OS", "Chrome"],
                "AAECAwQFBgcICQoLDA0ODw==",
                true
            ]),
        ),
        (
            Request::Init(Init {
                version: [0, 4, 2081],
                browser: Browser {
                    long: "wa-rs".into(),
                    short: "wa-rs".into(),
                    version: Some("0.1".into()),
                },
                client_id: "id".into(),
                last: true,
                features: None,
            }),
            json!([
                "admin",
                "init",
                [0, 4, 2081],
                ["wa-rs", "wa-rs", "0.1"],
                "id",
                true
            ]),
        ),
        (Request::Reref, json!(["admin", "Conn", "reref"])),
        (
            Request::Login(Login {
                client_token: "ct".into(),
                server_token: "st".into(),
                client_id: "id".into(),
                mode: LoginMode::Takeover,
            }),
            json!(["admin", "login", "ct", "st", "id", "takeover"]),
        ),
        (
            Request::Login(Login {
                client_token: "ct".into(),
                server_token: "st".into(),
                client_id: "id".into(),
                mode: LoginMode::Reconnect {
                    own_jid: "1555@c.us".into(),
                },
            }),
            json!(["admin", "login", "ct", "st", "id", "reconnect", "1555@c.us"]),
        ),
        (
            Request::Challenge(ChallengeAnswer {
                answer: "lXZU+YDUIFQmtNLFBKJWIIuVFTM9hY0s9yEV/2I+Aq0=".into(),
                server_token: "st".into(),
                client_id: "id".into(),
            }),
            json!([
                "admin",
                "challenge",
                "lXZU+YDUIFQmtNLFBKJWIIuVFTM9hY0s9yEV/2I+Aq0=",
                "st",
                "id"
            ]),
        ),
        (Request::Disconnect, json!(["admin", "Conn", "disconnect"])),
        (Request::Test, json!(["admin", "test"])),
        (
            Request::query_exist("1555@c.us"),
            json!(["query", "exist", "1555@c.us"]),
        ),
        (
            Request::query_status("1555@c.us"),
            json!(["query", "Status", "1555@c.us"]),
        ),
        (
            Request::query_profile_pic("1555@c.us"),
            json!(["query", "ProfilePicThumb", "1555@c.us"]),
        ),
        (
            Request::query_group_metadata("1-2@g.us"),
            json!(["query", "GroupMetadata", "1-2@g.us"]),
        ),
        (Request::query_media_conn(), json!(["query", "mediaConn"])),
        (
            Request::presence_subscribe("1555@c.us"),
            json!(["action", "presence", "subscribe", "1555@c.us"]),
        ),
        (
            Request::Other(json!(["admin", "something"])),
            json!(["admin", "something"]),
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(request.to_json(), expected);
        assert_eq!(Request::from_json(expected.clone()), request, "{expected}");
    }
    // Near misses stay `Other`, whole.
    for odd in [
        json!(["admin", "login", "ct", "st", "id", "sideways"]),
        json!(["admin", "init", [1, 2], ["a", "b"], "id", true]),
        json!(["admin", "init", [1, 2, 3], ["a"], "id", true]),
        json!({"admin": 1}),
        json!([]),
    ] {
        assert_eq!(Request::from_json(odd.clone()), Request::Other(odd));
    }

    assert_eq!(
        Request::Test.to_frame(&tag("1.--0")),
        r#"1.--0,,["admin","test"]"#
    );
    assert_eq!(logout_frame(), r#"goodbye,,["admin","Conn","disconnect"]"#);
    assert_eq!(
        Request::Disconnect.to_frame(&tag("goodbye")),
        logout_frame()
    );
}

#[test]
fn malformed_known_kinds_keep_the_message() {
    for bad in [
        json!(["Conn", 5]),
        json!(["Conn", {"battery": "full"}]),
        json!(["Msg", {"cmd": "ack"}]),
        json!(["Pong", "yes"]),
        json!(["Stream"]),
        json!(["Presence", {"id": 1, "type": "available"}]),
    ] {
        let err = ServerMessage::from_json(bad.clone()).unwrap_err();
        assert_eq!(err.value(), &bad);
        assert_eq!(Some(err.kind()), bad[0].as_str());
        assert!(err.to_string().starts_with("malformed"), "{err}");
        assert_eq!(err.into_value(), bad);
    }
    // Not a command at all: unknown, not an error.
    for other in [
        json!(5),
        json!([]),
        json!([1, 2]),
        json!("Conn"),
        json!(["Contact", {}]),
    ] {
        assert_eq!(
            ServerMessage::from_json(other.clone()).unwrap(),
            ServerMessage::Unknown(other)
        );
    }
    // A command type without a type of its own stays whole.
    let odd = json!(["Cmd", {"type": "challenge", "challenge": 5}]);
    let message = ServerMessage::from_json(odd.clone()).unwrap();
    assert_eq!(message.to_json(), odd);
}
