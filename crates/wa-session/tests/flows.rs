//! Every path of the session against a scripted fake server on a virtual clock: linking with
//! rerefs and expiry, restoring with every login status and the challenge, keepalive and stale
//! detection, timeouts, replaced, tampered frames, unknown kinds, out-of-order and unknown-tag
//! replies, reconnecting with backoff, and the user commands.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::time::Duration;

use wa_binary::Node;
use wa_frame::OutMessage;
use wa_session::{
    AckLevel, CommandError, Config, DisconnectReason, Event, GroupOp, LinkError, LoginError,
    MediaKind, PresenceState, Reply, RequestError, SessionError, Transmit, UploadedMedia,
};
use wa_test_support::{FakeServer, Harness, LoginScript, ServerFrame};

fn linked() -> Harness {
    let mut h = Harness::new(Config::default()).with_server(FakeServer::new());
    h.session.link(h.now).unwrap();
    h.drive();
    assert!(h.session.is_connected(), "{:?}", h.events);
    h.take_events();
    h
}

fn restored(script: LoginScript) -> Harness {
    let mut server = FakeServer::new();
    server.login = script;
    let credentials = server.credentials("AAECAwQFBgcICQoLDA0ODw==");
    let mut h = Harness::new(Config::default()).with_server(server);
    h.session.restore(h.now, credentials).unwrap();
    h.drive();
    h
}

fn server(h: &mut Harness) -> &mut FakeServer {
    h.server.as_mut().unwrap()
}

#[test]
fn linking_end_to_end() {
    let mut h = Harness::new(Config::default()).with_server(FakeServer::new());
    h.session.link(h.now).unwrap();
    h.drive();
    let events = h.take_events();
    assert!(matches!(events[0], Event::Qr { .. }));
    assert!(matches!(events[1], Event::Credentials(_)));
    assert!(
        matches!(&events[2], Event::Connected { account } if account.wid == "15551234567@c.us")
    );
    let enc_key = *server(&mut h).keys.enc_key();
    let credentials = h.session.credentials().unwrap();
    assert_eq!(credentials.enc_key, enc_key);
    // Credentials are a serde value a caller persists.
    let json = serde_json::to_string(credentials).unwrap();
    let back: wa_session::Credentials = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, credentials);
    assert!(
        !format!("{credentials:?}").contains(&credentials.client_token),
        "Debug shows no secrets"
    );
}

#[test]
fn five_rerefs_then_the_sixth_expiry_gives_up() {
    let mut server = FakeServer::new();
    server.scan = false;
    server.reref_statuses = [200, 304, 200, 304, 200].into();
    let mut h = Harness::new(Config::default()).with_server(server);
    h.session.link(h.now).unwrap();
    h.drive();
    let mut qrs = vec![];
    for _ in 0..5 {
        h.advance(Duration::from_secs(20));
        qrs.extend(h.take_events().into_iter().filter_map(|e| match e {
            Event::Qr { text, .. } => Some(text),
            _ => None,
        }));
    }
    assert_eq!(
        qrs.len(),
        1 + 5,
        "the first QR, then one for every reref answer"
    );
    let refs: Vec<&str> = qrs.iter().map(|q| q.split(',').next().unwrap()).collect();
    // 200 gives a new ref, 304 keeps the one before.
    assert_ne!(refs[1], refs[0]);
    assert_eq!(refs[2], refs[1]);
    assert_ne!(refs[3], refs[2]);
    assert_eq!(refs[4], refs[3]);
    assert_ne!(refs[5], refs[4]);
    assert_eq!(
        h.sent_texts()
            .iter()
            .filter(|t| t.contains(r#"["admin","Conn","reref"]"#))
            .count(),
        5
    );
    h.advance(Duration::from_secs(20));
    let events = h.take_events();
    assert!(
        matches!(
            events[..],
            [
                Event::LinkFailed(LinkError::Expired(6)),
                Event::Disconnected {
                    reconnect_in: None,
                    ..
                }
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn restore_with_takeover_then_tokens_rotate() {
    let mut h = restored(LoginScript::Accept);
    let events = h.take_events();
    let Some(Event::Credentials(credentials)) =
        events.iter().find(|e| matches!(e, Event::Credentials(_)))
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        credentials.client_token, "client-token-1",
        "the Conn after login rotates the tokens"
    );
    assert!(events.iter().any(|e| matches!(e, Event::Connected { .. })));
    assert!(
        h.sent_texts()
            .iter()
            .any(|t| t.ends_with(r#","takeover"]"#))
    );
}

#[test]
fn challenge_flow_logs_in() {
    let mut h = restored(LoginScript::Challenge);
    assert!(h.session.is_connected(), "{:?}", h.events);
    assert!(
        h.sent_texts()
            .iter()
            .any(|t| t.contains(r#"["admin","challenge""#))
    );
    assert_eq!(server(&mut h).conns, 1);
}

#[test]
fn unpaired_forgets_and_does_not_reconnect() {
    let mut h = restored(LoginScript::Status(401));
    let events = h.take_events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::LoginFailed {
            error: LoginError::Unpaired,
            forget_credentials: true
        }
    )));
    h.advance(Duration::from_secs(600));
    assert_eq!(h.connects, 1);
    assert!(h.session.credentials().is_none());
}

#[test]
fn server_error_retries_with_reconnect_mode_and_backoff() {
    let mut h = restored(LoginScript::Status(500));
    let events = h.take_events();
    let Some(Event::Disconnected {
        reconnect_in: Some(first),
        ..
    }) = events
        .iter()
        .find(|e| matches!(e, Event::Disconnected { .. }))
    else {
        panic!("{events:?}")
    };
    assert!(
        *first >= Duration::from_millis(500) && *first <= Duration::from_secs(1),
        "{first:?}"
    );
    // Keep failing: the delays double up to the cap, with jitter in the top half.
    let mut delays = vec![*first];
    for _ in 0..8 {
        h.advance(*delays.last().unwrap());
        let events = h.take_events();
        let Some(Event::Disconnected {
            reconnect_in: Some(d),
            ..
        }) = events
            .iter()
            .find(|e| matches!(e, Event::Disconnected { .. }))
        else {
            panic!("{events:?}")
        };
        delays.push(*d);
    }
    assert_eq!(h.connects, 9);
    for (i, d) in delays.iter().enumerate() {
        let full = Duration::from_secs(1 << i.min(6)).min(Duration::from_secs(60));
        assert!(
            *d >= full / 2 && *d <= full,
            "attempt {i}: {d:?} not in [{:?}, {full:?}]",
            full / 2
        );
    }
    // Automatic retries use "reconnect" with the own JID.
    assert!(
        h.sent_texts()
            .iter()
            .any(|t| t.ends_with(r#","reconnect","15551234567@c.us"]"#))
    );
    // Then the server recovers.
    server(&mut h).login = LoginScript::Accept;
    h.advance(Duration::from_secs(60));
    assert!(h.session.is_connected());
}

#[test]
fn keepalive_pings_and_stale_detection() {
    let mut h = linked();
    let pings = |h: &Harness| h.sent_texts().iter().filter(|t| **t == "?,,").count();
    h.advance(Duration::from_secs(30));
    assert_eq!(pings(&h), 1, "a ping within 10-30 s of the last frame");
    // The server answers: nothing is stale.
    h.server_text("!1589356440123");
    h.advance(Duration::from_secs(29));
    assert!(h.session.is_connected());
    // From now on the server is silent: stale at most 90 s after the first unanswered send.
    let silent_from = h.now;
    let mut disconnected = None;
    for _ in 0..200 {
        h.advance(Duration::from_secs(1));
        if let Some(Event::Disconnected {
            reason,
            reconnect_in,
        }) = h
            .take_events()
            .into_iter()
            .find(|e| matches!(e, Event::Disconnected { .. }))
        {
            disconnected = Some((reason, reconnect_in, h.now));
            break;
        }
    }
    let (reason, reconnect_in, at) = disconnected.expect("stale detected");
    assert_eq!(reason, DisconnectReason::Stale);
    assert!(
        at.since(silent_from) <= Duration::from_secs(90 + 30),
        "{:?}",
        at.since(silent_from)
    );
    assert!(reconnect_in.is_some());
    assert_eq!(h.closes, 1);
}

#[test]
fn reconnects_after_the_socket_drops() {
    let mut h = linked();
    h.close_socket();
    let events = h.take_events();
    assert!(
        matches!(
            events[..],
            [Event::Disconnected {
                reason: DisconnectReason::SocketClosed,
                reconnect_in: Some(_)
            }]
        ),
        "{events:?}"
    );
    h.advance(Duration::from_secs(2));
    assert_eq!(h.connects, 2);
    assert!(h.session.is_connected());
    assert!(
        h.sent_texts()
            .iter()
            .any(|t| t.ends_with(r#","reconnect","15551234567@c.us"]"#))
    );
}

#[test]
fn requests_time_out_and_fail_on_disconnect() {
    let mut h = linked();
    let chats = h.session.query_chats(h.now).unwrap();
    h.drive();
    h.advance(Duration::from_secs(19));
    assert!(
        h.take_events()
            .iter()
            .all(|e| !matches!(e, Event::Reply { .. }))
    );
    h.advance(Duration::from_secs(1));
    let events = h.take_events();
    assert!(
        events.iter().any(
            |e| matches!(e, Event::Reply { id, result: Err(RequestError::Timeout) } if *id == chats)
        ),
        "{events:?}"
    );
    // A late reply then has no request.
    let frame = server(&mut h).seal(
        "1589356438.--3",
        &Node::new("response").with_attr("type", "chat"),
    );
    h.server_binary(&frame);
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::OtherNode(_)] | [Event::Chats(_)]),
        "{events:?}"
    );
    let contacts = h.session.query_contacts(h.now).unwrap();
    h.drive();
    h.close_socket();
    let events = h.take_events();
    assert!(events.iter().any(|e| matches!(e, Event::Reply { id, result: Err(RequestError::Disconnected) } if *id == contacts)), "{events:?}");
}

#[test]
fn replies_are_matched_by_tag_in_any_order() {
    let mut h = linked();
    let chats = h.session.query_chats(h.now).unwrap();
    let contacts = h.session.query_contacts(h.now).unwrap();
    h.drive();
    let tags: Vec<String> = h
        .sent
        .iter()
        .rev()
        .take(2)
        .map(|m| match m {
            OutMessage::Binary(b) => {
                String::from_utf8_lossy(&b[..b.iter().position(|&c| c == b',').unwrap()])
                    .into_owned()
            }
            OutMessage::Text(_) => unreachable!(),
        })
        .collect();
    // tags[0] is the contacts query (sent last): answer it first.
    let contacts_reply = Node::new("response")
        .with_attr("type", "contacts")
        .with_children(vec![
            Node::new("user")
                .with_attr("jid", "15550000001@c.us")
                .with_attr("name", "Ann"),
        ]);
    let chats_reply = Node::new("response")
        .with_attr("type", "chat")
        .with_children(vec![
            Node::new("chat")
                .with_attr("jid", "15550000001@c.us")
                .with_attr("count", "2")
                .with_attr("t", "1589356000"),
        ]);
    let f1 = server(&mut h).seal(&tags[0], &contacts_reply);
    let f2 = server(&mut h).seal(&tags[1], &chats_reply);
    h.server_binary(&f1);
    h.server_binary(&f2);
    let events = h.take_events();
    let [
        Event::Reply {
            id: a,
            result: Ok(Reply::Contacts(c)),
        },
        Event::Reply {
            id: b,
            result: Ok(Reply::Chats(ch)),
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((*a, *b), (contacts, chats));
    assert_eq!(c[0].name.as_deref(), Some("Ann"));
    assert_eq!((ch[0].unread, ch[0].t), (Some(2), Some(1589356000)));
    // A JSON reply under a tag nobody asked for.
    h.server_text(r#"999.--9,{"status":200}"#);
    let events = h.take_events();
    assert!(
        matches!(&events[0], Event::Error(SessionError::UnknownTag(t)) if t == "999.--9"),
        "{events:?}"
    );
}

#[test]
fn send_text_seals_a_relay_node_and_reports_the_ack() {
    let mut h = linked();
    let (request, id) = h
        .session
        .send_text(h.now, "15559876543@c.us", "hi there")
        .unwrap();
    h.drive();
    assert!(
        id.starts_with("3EB0")
            && id.len() == 20
            && id[4..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
    let Some(OutMessage::Binary(frame)) = h.sent.last() else {
        panic!()
    };
    // tag = message id, then metric MESSAGE (16) and flags 0x80
    assert!(frame.starts_with(format!("{id},").as_bytes()));
    assert_eq!(frame[id.len() + 1..id.len() + 3], [16, 0x80]);
    let node = server(&mut h).nodes.last().cloned().unwrap();
    assert_eq!(
        (node.tag(), node.attr("type"), node.attr("epoch")),
        ("action", Some("relay"), Some("1"))
    );
    let bytes = node.child("message").unwrap().bytes().unwrap();
    let info = <wa_proto::WebMessageInfo as prost::Message>::decode(bytes).unwrap();
    assert_eq!(
        info.key.remote_jid.as_deref(),
        Some("15559876543@s.whatsapp.net")
    );
    assert_eq!(info.key.from_me, Some(true));
    assert_eq!(
        info.message.unwrap().conversation.as_deref(),
        Some("hi there")
    );
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Reply { id: r, result: Ok(Reply::MessageSent { id: m }) }] if *r == request && *m == id),
        "{events:?}"
    );
    // Then the ticks arrive as acks.
    h.server_text(&format!(r#"s9,["Msg",{{"cmd":"ack","id":"{id}","ack":2,"from":"15551234567@c.us","to":"15559876543@c.us","t":1}}]"#));
    assert!(matches!(
        &h.take_events()[..],
        [Event::Ack {
            level: AckLevel::Delivered,
            ..
        }]
    ));
    // The epoch counts binary requests.
    h.session.query_chats(h.now).unwrap();
    h.drive();
    assert_eq!(
        server(&mut h).nodes.last().unwrap().attr("epoch"),
        Some("2")
    );
}

#[test]
fn media_presence_read_and_groups_build_the_documented_nodes() {
    let mut h = linked();
    let media = UploadedMedia {
        kind: MediaKind::Video,
        url: "https://media.example/v".into(),
        direct_path: Some("/v".into()),
        mimetype: "video/mp4".into(),
        media_key: vec![1; 32],
        file_sha256: vec![2; 32],
        file_enc_sha256: vec![3; 32],
        file_length: 393_736,
        caption: Some("look".into()),
        file_name: None,
        dimensions: Some((640, 360)),
        seconds: Some(4),
        streaming_sidecar: Some(vec![4; 70]),
        jpeg_thumbnail: None,
    };
    h.session
        .send_media(h.now, "15559876543@c.us", &media)
        .unwrap();
    h.session
        .set_presence(h.now, PresenceState::Composing, Some("15559876543@c.us"))
        .unwrap();
    h.session
        .set_presence(h.now, PresenceState::Available, None)
        .unwrap();
    h.session
        .mark_read(h.now, "15559876543@c.us", "3EB0AAAABBBB", false)
        .unwrap();
    h.session
        .group_create(h.now, "Team", &["15550000001@c.us", "15550000002@c.us"])
        .unwrap();
    h.session
        .group_participants(
            h.now,
            "15551234567-1589356000@g.us",
            GroupOp::Promote,
            &["15550000001@c.us"],
        )
        .unwrap();
    h.session
        .group_leave(h.now, "15551234567-1589356000@g.us")
        .unwrap();
    h.drive();
    let nodes = server(&mut h).nodes.clone();
    let info = <wa_proto::WebMessageInfo as prost::Message>::decode(
        nodes[0].child("message").unwrap().bytes().unwrap(),
    )
    .unwrap();
    let video = info.message.unwrap().video_message.unwrap();
    assert_eq!(
        (video.seconds, video.width, video.height),
        (Some(4), Some(640), Some(360))
    );
    assert_eq!(video.streaming_sidecar.as_deref(), Some(&[4u8; 70][..]));
    assert_eq!(video.caption.as_deref(), Some("look"));
    let presence = nodes[1].child("presence").unwrap();
    assert_eq!(
        (presence.attr("type"), presence.attr("to")),
        (Some("composing"), Some("15559876543@s.whatsapp.net"))
    );
    let read = nodes[3].child("read").unwrap();
    assert_eq!(
        (read.attr("index"), read.attr("owner"), read.attr("count")),
        (Some("3EB0AAAABBBB"), Some("false"), Some("1"))
    );
    let create = nodes[4].child("group").unwrap();
    assert_eq!(
        (
            create.attr("type"),
            create.attr("subject"),
            create.children().len()
        ),
        (Some("create"), Some("Team"), 2)
    );
    assert_eq!(create.attr("author"), Some("15551234567@s.whatsapp.net"));
    assert_eq!(
        nodes[5].child("group").unwrap().attr("type"),
        Some("promote")
    );
    assert_eq!(nodes[6].child("group").unwrap().attr("type"), Some("leave"));
    // Metrics and flags of the frames, as PROTOCOL.md §3.3 lists them.
    let headers: Vec<(u8, u8)> = h
        .sent
        .iter()
        .filter_map(|m| match m {
            OutMessage::Binary(b) => {
                let c = b.iter().position(|&x| x == b',').unwrap();
                Some((b[c + 1], b[c + 2]))
            }
            OutMessage::Text(_) => None,
        })
        .collect();
    assert_eq!(
        headers,
        [
            (16, 0x80),
            (8, 0x04),
            (8, 0xA0),
            (11, 0x80),
            (10, 0x88),
            (10, 0x88),
            (10, 0x88)
        ]
    );
    // Caller mistakes are typed errors.
    assert_eq!(
        h.session.group_create(h.now, "x", &[]).unwrap_err(),
        CommandError::InvalidArgument("a group needs participants")
    );
}

#[test]
fn media_conn_reply() {
    let mut h = linked();
    let id = h.session.media_conn(h.now).unwrap();
    h.drive();
    let events = h.take_events();
    let [
        Event::Reply {
            id: r,
            result: Ok(Reply::MediaConn(conn)),
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*r, id);
    assert_eq!(
        (conn.auth.as_str(), conn.hosts.as_slice()),
        ("auth-token", &["media.example".to_owned()][..])
    );
}

#[test]
fn commands_need_a_connection_and_pending_is_bounded() {
    let mut h = Harness::new(Config::default());
    assert_eq!(
        h.session.query_chats(h.now).unwrap_err(),
        CommandError::NotConnected
    );
    let mut config = Config::default();
    config.max_pending = 3;
    let mut h = Harness::with_session(wa_session::Session::new(
        config,
        [3; 32],
        wa_test_support::T0,
    ))
    .with_server(FakeServer::new());
    h.session.link(h.now).unwrap();
    h.drive();
    for _ in 0..3 {
        h.session.query_chats(h.now).unwrap();
    }
    assert_eq!(
        h.session.query_chats(h.now).unwrap_err(),
        CommandError::TooManyPending(3)
    );
    assert_eq!(
        h.session.link(h.now).unwrap_err(),
        CommandError::AlreadyStarted
    );
}

#[test]
fn tampered_frames_and_garbage_do_not_stop_the_session() {
    let mut h = linked();
    let mut frame = server(&mut h).seal("s20", &Node::new("action").with_attr("add", "relay"));
    let last = frame.len() - 1;
    frame[last] ^= 1;
    h.server_binary(&frame);
    h.server_binary(b"no comma at all");
    h.server_text("s21,[\"Conn\",");
    h.server_text(r#"s22,["Cmd",{"type":"brand-new"}]"#);
    let events = h.take_events();
    assert!(
        matches!(events[0], Event::Error(SessionError::Open(_))),
        "{events:?}"
    );
    assert!(matches!(events[1], Event::Error(SessionError::Frame(_))));
    assert!(matches!(events[2], Event::Error(SessionError::Frame(_))));
    assert!(matches!(&events[3], Event::Other(v) if v[0] == "Cmd"));
    assert!(h.session.is_connected());
    // A binary frame before any keys exist is dropped with an error.
    let mut fresh = Harness::new(Config::default());
    fresh.session.link(fresh.now).unwrap();
    fresh.drive();
    fresh.server_binary(&frame);
    assert!(matches!(
        fresh.take_events()[..],
        [Event::Error(SessionError::BinaryBeforeKeys)]
    ));
}

#[test]
fn logout_says_goodbye_and_stays_down() {
    let mut h = linked();
    h.session.logout(h.now);
    h.drive();
    assert_eq!(
        h.sent_texts().last().copied(),
        Some(r#"goodbye,,["admin","Conn","disconnect"]"#)
    );
    let events = h.take_events();
    assert!(
        matches!(
            events[..],
            [Event::Disconnected {
                reason: DisconnectReason::LoggedOut,
                reconnect_in: None
            }]
        ),
        "{events:?}"
    );
    assert!(h.session.credentials().is_none());
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.connects, 1);
    // It can link again afterwards.
    h.session.link(h.now).unwrap();
    h.drive();
    assert_eq!(h.session.poll_transmit(), None);
    assert!(h.connects == 2 && h.session.is_connected());
}

#[test]
fn pushed_frames_from_the_server_arrive() {
    let mut h = linked();
    let chats = Node::new("response")
        .with_attr("type", "chat")
        .with_children(vec![Node::new("chat").with_attr("jid", "1@c.us")]);
    let frame = server(&mut h).seal("preempt-1589472058-319", &chats);
    server(&mut h).push(ServerFrame::Binary(frame));
    h.drive();
    assert!(matches!(&h.take_events()[..], [Event::Chats(c)] if c.len() == 1));
    let _ = Transmit::Close;
}

#[test]
fn live_messages_are_acknowledged_with_a_delivery_receipt() {
    let mut h = linked();
    let info = wa_proto::WebMessageInfo {
        key: wa_proto::MessageKey {
            remote_jid: Some("15559876543@s.whatsapp.net".into()),
            from_me: Some(false),
            id: Some("3EB0AAAABBBBCCCCDDDD".into()),
            participant: None,
        },
        message: Some(wa_proto::Message {
            conversation: Some("hello".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = Node::new("action")
        .with_attr("add", "relay")
        .with_children(vec![
            Node::new("message").with_bytes(prost::Message::encode_to_vec(&info)),
        ]);
    let frame = server(&mut h).seal("s30", &node);
    h.server_binary(&frame);
    assert!(matches!(&h.take_events()[..], [Event::Message { .. }]));
    let receipt = server(&mut h).nodes.last().cloned().unwrap();
    let received = receipt.child("received").unwrap();
    assert_eq!(received.attr("type"), Some("message"));
    assert_eq!(received.attr("index"), Some("3EB0AAAABBBBCCCCDDDD"));
    assert_eq!(received.attr("jid"), Some("15559876543@s.whatsapp.net"));
    let Some(OutMessage::Binary(sent)) = h.sent.last() else {
        panic!()
    };
    let comma = sent.iter().position(|&c| c == b',').unwrap();
    assert_eq!(sent[comma + 1], 13, "metric RECEIVED");
    // History is not acknowledged again, and with receipts off nothing is sent.
    let history = Node::new("action")
        .with_attr("add", "last")
        .with_children(vec![
            Node::new("message").with_bytes(prost::Message::encode_to_vec(&info)),
        ]);
    let frame = server(&mut h).seal("s31", &history);
    let before = server(&mut h).nodes.len();
    h.server_binary(&frame);
    assert_eq!(server(&mut h).nodes.len(), before);
}

#[test]
fn ack_levels_order_by_number_and_empty_replies_are_done() {
    assert!(AckLevel::Other(-1) < AckLevel::Pending);
    assert!(AckLevel::Read > AckLevel::Delivered && AckLevel::Played > AckLevel::Read);
    assert!(AckLevel::Other(7) > AckLevel::Played);
    let mut h = linked();
    let id = h
        .session
        .send_json(h.now, serde_json::json!(["action", "x"]))
        .unwrap();
    h.drive();
    let tag = h.tag_of(r#"["action","x"]"#);
    h.server_text(&format!("{tag},"));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Reply { id: r, result: Ok(Reply::Done) }] if *r == id),
        "{events:?}"
    );
}

#[test]
fn automatic_receipts_make_no_reply_events() {
    let mut h = linked();
    let info = wa_proto::WebMessageInfo {
        key: wa_proto::MessageKey {
            remote_jid: Some("1@s.whatsapp.net".into()),
            id: Some("3EB0X".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let node = Node::new("action")
        .with_attr("add", "relay")
        .with_children(vec![
            Node::new("message").with_bytes(prost::Message::encode_to_vec(&info)),
        ]);
    let frame = server(&mut h).seal("s40", &node);
    h.server_binary(&frame);
    assert_eq!(
        h.session.pending_requests(),
        1,
        "the receipt waits for its answer"
    );
    // The server answers the receipt, or it times out: either way, no event.
    h.advance(Duration::from_secs(25));
    let events = h.take_events();
    assert!(
        events.iter().all(|e| !matches!(e, Event::Reply { .. })),
        "{events:?}"
    );
    assert_eq!(h.session.pending_requests(), 0);
}
