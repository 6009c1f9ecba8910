//! Real-looking server messages (`tests/data/session.json`, PROTOCOL.md §2) and the sealed frame of
//! `tests/data/crypto.json`, through `Frame::parse` and the typed messages.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use serde_json::{Value, json};
use wa_frame::{
    Ack, Cmd, Direction, Flags, Frame, InitResponse, Limits, LoginStatus, Metric, MsgIds,
    OutMessage, PresenceType, RerefResponse, ResponseError, ServerMessage, WsMessage,
    binary_header,
};

/// The parsed JSON of `tests/data/<name>` (links into the repository's `testdata/`); a missing
/// file fails the test with its full path.
fn vectors(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("test data {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("test data {}: {err}", path.display()))
}

/// The session vectors write the client's request tags as `<init>`, `<reref>`, ...
fn with_real_tag(data: &str) -> String {
    let mut out = data.to_owned();
    for (placeholder, tag) in [
        ("<init>", "1589356438.--0"),
        ("<reref>", "1589356438.--1"),
        ("<login>", "1589356438.--2"),
        ("<challenge>", "1589356438.--3"),
    ] {
        out = out.replace(placeholder, tag);
    }
    out
}

/// Every text message of `session.json`, with its meaning, in file order.
fn text_messages() -> Vec<(String, String)> {
    let session = vectors("session.json");
    let mut out = Vec::new();
    for group in ["link", "restore", "server_commands"] {
        for message in session[group].as_array().unwrap() {
            assert_eq!(message["kind"], "text");
            out.push((
                with_real_tag(message["data"].as_str().unwrap()),
                message["meaning"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

fn parse_server_text(text: &str) -> Frame<'_> {
    Frame::parse(
        WsMessage::Text(text),
        Direction::ServerToClient,
        &Limits::default(),
    )
    .unwrap_or_else(|err| panic!("{text}: {err}"))
}

fn message_of(text: &str) -> ServerMessage {
    match parse_server_text(text) {
        Frame::Json { payload, .. } => ServerMessage::from_json(payload).unwrap(),
        other => panic!("{text}: not JSON: {other:?}"),
    }
}

#[test]
fn every_text_message_parses_and_round_trips() {
    let messages = text_messages();
    assert_eq!(messages.len(), 28);
    for (text, meaning) in &messages {
        let frame = parse_server_text(text);
        // The frame rebuilt parses to the same frame.
        let rebuilt = frame.to_message();
        let OutMessage::Text(rebuilt_text) = &rebuilt else {
            panic!("{text}: not text")
        };
        assert_eq!(parse_server_text(rebuilt_text), frame, "{meaning}");
        // The typed message written back is the same JSON: nothing unknown was dropped.
        if let Frame::Json { payload, .. } = &frame {
            let message = ServerMessage::from_json(payload.clone())
                .unwrap_or_else(|err| panic!("{meaning}: {err}"));
            assert_eq!(&message.to_json(), payload, "{meaning}");
        }
    }
}

#[test]
fn link_flow() {
    let messages = text_messages();
    let find = |needle: &str| {
        messages
            .iter()
            .find(|(text, _)| text.contains(needle))
            .map(|(text, _)| text.as_str())
    };

    let ServerMessage::Response(init) = message_of(find("\"curr\"").unwrap()) else {
        panic!()
    };
    let init = InitResponse::from_response(&init).unwrap();
    assert_eq!(init.r#ref, "1@Ra1b2c3d4e5f6");
    assert_eq!(init.ttl, Some(20000));
    assert_eq!(init.update, Some(false));
    assert_eq!(init.curr.as_deref(), Some("0.4.2081"));
    assert_eq!(init.time, Some(1_589_356_438_123.0));

    let rerefs: Vec<RerefResponse> = messages
        .iter()
        .filter(|(text, _)| text.starts_with("1589356438.--1,"))
        .map(|(text, _)| {
            let ServerMessage::Response(response) = message_of(text) else {
                panic!("{text}")
            };
            RerefResponse::from_response(&response).unwrap()
        })
        .collect();
    assert_eq!(
        rerefs,
        [
            RerefResponse::NewRef {
                r#ref: "1@Rf6e5d4c3b2a1".into(),
                ttl: Some(20000)
            },
            RerefResponse::Unchanged {
                r#ref: Some("1@Rf6e5d4c3b2a1".into()),
                ttl: Some(20000)
            },
            RerefResponse::Refused,
        ]
    );

    let ServerMessage::Conn(conn) = message_of(find("[\"Conn\"").unwrap()) else {
        panic!()
    };
    let crypto = vectors("crypto.json");
    assert_eq!(
        conn.secret.as_deref(),
        crypto["login"]["secret_b64"].as_str()
    );
    assert_eq!(conn.wid.as_deref(), Some("15551234567@c.us"));
    assert_eq!(conn.battery, Some(87));
    assert_eq!(
        conn.client_token.as_deref(),
        Some("Y2xpZW50LXRva2VuLWZpeHR1cmUtMDAwMQ==")
    );
    assert_eq!(
        conn.server_token.as_deref(),
        Some("1@c2VydmVyLXRva2VuLWZpeHR1cmUtMDAwMQ==")
    );
    assert_eq!(
        conn.browser_token.as_deref(),
        Some("1@YnJvd3Nlci10b2tlbi1maXh0dXJlLTAwMDE=")
    );
    assert_eq!(conn.proto_version, Some(vec![0, 17]));
    assert_eq!(conn.r#ref.as_deref(), Some("1@Ra1b2c3d4e5f6"));
    let phone = conn.phone.as_ref().unwrap();
    assert_eq!(phone.device_manufacturer.as_deref(), Some("ExamplePhone"));
    assert_eq!(phone.os_build_number.as_deref(), Some("QP1A.190711.020"));
    // Fields without a type of their own are kept.
    assert_eq!(conn.extra["locales"], "en-US");
    assert_eq!(conn.extra["isResponse"], "false");

    let ServerMessage::Stream(stream) = message_of(find("[\"Stream\",\"update\"").unwrap()) else {
        panic!()
    };
    assert_eq!(stream.update_version(), Some("0.4.2081"));
    assert!(!stream.is_asleep());

    let ServerMessage::Props(props) = message_of(find("[\"Props\"").unwrap()) else {
        panic!()
    };
    assert_eq!(props.image_max_k_bytes, Some(1024));
    assert_eq!(props.max_participants, Some(257));
    assert_eq!(props.video_max_edge, Some(960));
}

#[test]
fn login_statuses() {
    let statuses: Vec<LoginStatus> = text_messages()
        .iter()
        .filter(|(text, _)| text.starts_with("1589356438.--2,"))
        .map(|(text, _)| {
            let ServerMessage::Response(response) = message_of(text) else {
                panic!("{text}")
            };
            LoginStatus::from_response(&response).unwrap()
        })
        .collect();
    assert_eq!(
        statuses,
        [
            LoginStatus::Ok,
            LoginStatus::Unpaired,
            LoginStatus::AccessDenied { tos: Some(2) },
            LoginStatus::AlreadyLoggedIn,
            LoginStatus::LoggedInElsewhere,
            LoginStatus::Expired,
            LoginStatus::ServerError,
        ]
    );
    let codes: Vec<u16> = statuses.iter().map(|s| s.code()).collect();
    assert_eq!(codes, [200, 401, 403, 405, 409, 419, 500]);
}

#[test]
fn server_commands() {
    let messages = text_messages();
    let by_tag = |tag: &str| {
        let prefix = format!("{tag},");
        let (text, _) = messages
            .iter()
            .find(|(text, _)| text.starts_with(&prefix))
            .unwrap();
        message_of(text)
    };

    let ServerMessage::Cmd(Cmd::Challenge { challenge, extra }) = message_of(
        &messages
            .iter()
            .find(|(t, _)| t.contains("\"challenge\":"))
            .unwrap()
            .0,
    ) else {
        panic!()
    };
    assert_eq!(
        challenge,
        vectors("crypto.json")["challenge"]["challenge_b64"]
    );
    assert!(extra.is_empty());

    let ServerMessage::Cmd(replaced) = by_tag("s5") else {
        panic!()
    };
    assert!(replaced.is_replaced());
    assert!(matches!(
        by_tag("s6"),
        ServerMessage::Cmd(Cmd::Update { .. })
    ));
    assert!(matches!(by_tag("s7"), ServerMessage::Stream(s) if s.is_asleep()));
    assert_eq!(by_tag("1589356999.--9"), ServerMessage::Pong(true));

    let ServerMessage::Msg(ack) = by_tag("s8") else {
        panic!()
    };
    assert_eq!((ack.id.as_str(), ack.ack), ("3EB0AAAABBBB", Ack::SERVER));
    assert_eq!(ack.t, Some(1_589_356_500));

    let ServerMessage::MsgInfo(acks) = by_tag("s9") else {
        panic!()
    };
    assert_eq!(acks.ack, Ack::READ);
    assert_eq!(
        acks.id.iter().collect::<Vec<_>>(),
        ["3EB0AAAABBBB", "3EB0CCCCDDDD"]
    );
    assert!(matches!(acks.id, MsgIds::Many(_)));

    let ServerMessage::Presence(presence) = by_tag("s10") else {
        panic!()
    };
    assert_eq!(presence.kind, PresenceType::Composing);
    assert_eq!(presence.id, "15559876543@c.us");

    let ServerMessage::Chat(chat) = by_tag("s11") else {
        panic!()
    };
    assert_eq!(chat.cmd, "action");
    assert_eq!(
        chat.data,
        Some(json!(["add", "15551234567@c.us", ["15552222222@c.us"]]))
    );

    let ServerMessage::Blocklist(blocklist) = by_tag("s12") else {
        panic!()
    };
    assert_eq!(blocklist.blocklist, Some(Vec::new()));
    assert_eq!(blocklist.id, Some(1));

    assert_eq!(
        by_tag("s13"),
        ServerMessage::Unknown(json!(["SomethingNew", {"x": 1}]))
    );

    let (empty, _) = messages.iter().find(|(t, _)| t == "s14,").unwrap();
    assert!(matches!(parse_server_text(empty), Frame::Empty { tag } if tag == "s14"));

    let (pong, _) = messages.iter().find(|(t, _)| t.starts_with('!')).unwrap();
    assert_eq!(
        parse_server_text(pong),
        Frame::Pong {
            server_time_ms: 1_589_356_440_123
        }
    );
}

#[test]
fn init_without_ref_is_a_typed_error() {
    let ServerMessage::Response(response) = message_of("1.--0,{\"status\":200}") else {
        panic!()
    };
    assert_eq!(
        InitResponse::from_response(&response),
        Err(ResponseError::MissingField { field: "ref" })
    );
    let ServerMessage::Response(response) = message_of("1.--0,{\"status\":500}") else {
        panic!()
    };
    assert_eq!(
        InitResponse::from_response(&response),
        Err(ResponseError::Status { status: 500 })
    );
    let ServerMessage::Response(response) = message_of("1.--0,{\"ref\":\"x\"}") else {
        panic!()
    };
    assert_eq!(
        InitResponse::from_response(&response),
        Err(ResponseError::MissingStatus)
    );
}

#[test]
fn session_binary_frames_parse_without_header() {
    let session = vectors("session.json");
    let mut frames: Vec<Value> = session["binary"].as_array().unwrap().clone();
    frames.push(session["binary_tampered"].clone());
    for frame in &frames {
        let bytes = hex::decode(frame["hex"].as_str().unwrap()).unwrap();
        let parsed = Frame::parse(
            WsMessage::Binary(&bytes),
            Direction::ServerToClient,
            &Limits::default(),
        )
        .unwrap();
        let Frame::Binary {
            tag,
            header: None,
            payload,
        } = &parsed
        else {
            panic!("{parsed:?}")
        };
        let comma = bytes.iter().position(|&b| b == b',').unwrap();
        assert_eq!(tag.as_str().as_bytes(), &bytes[..comma]);
        assert_eq!(&payload[..], &bytes[comma + 1..]);
        assert!(payload.len() >= 64);
        assert_eq!(parsed.to_message(), OutMessage::Binary(bytes.clone()));
    }
}

#[test]
fn crypto_frame_vector_in_both_directions() {
    let frame = &vectors("crypto.json")["frame"];
    let client = hex::decode(frame["client_to_server_hex"].as_str().unwrap()).unwrap();
    let server = hex::decode(frame["server_to_client_hex"].as_str().unwrap()).unwrap();

    let parsed = Frame::parse(
        WsMessage::Binary(&client),
        Direction::ClientToServer,
        &Limits::default(),
    )
    .unwrap();
    let Frame::Binary {
        tag,
        header: Some(header),
        payload,
    } = &parsed
    else {
        panic!()
    };
    assert_eq!(tag, frame["tag"].as_str().unwrap());
    assert_eq!(header.metric, Metric::PRESENCE);
    assert_eq!(
        u64::from(header.metric.0),
        frame["metric"].as_u64().unwrap()
    );
    assert_eq!(header.flags, Flags::NOT_IGNORE | Flags::AVAILABLE);
    assert_eq!(u64::from(header.flags.0), frame["flags"].as_u64().unwrap());

    // The same sealed payload follows the tag in the server's form.
    let Frame::Binary {
        header: None,
        payload: server_payload,
        ..
    } = Frame::parse(
        WsMessage::Binary(&server),
        Direction::ServerToClient,
        &Limits::default(),
    )
    .unwrap()
    else {
        panic!()
    };
    assert_eq!(payload, &server_payload);

    let mut built = Vec::new();
    binary_header(tag, header.metric, header.flags, &mut built);
    built.extend_from_slice(payload);
    assert_eq!(built, client);
}
