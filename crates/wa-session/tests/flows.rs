//! What the real server never does, against a scripted fake server on a virtual clock, with a
//! legacy client ([`wa_test_support::legacy_config`]): server errors and the backoff, final
//! login statuses, `Cmd update` in a session, replies in any order and to unknown tags,
//! requests that never get an answer, a server that goes silent, tampered frames and garbage,
//! the legacy node shapes the legacy client sends, and legacy pushes.
//!
//! Everything the real server does (linking, rerefs, restoring, the challenge, unlinking,
//! reconnecting, keepalive, logout, presence, ...) is tested against it in `net_flows.rs`.

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
    AckLevel, CommandError, DisconnectReason, Event, GroupOp, Jid, LoginError, MediaKind,
    MessageSource, PresenceState, Reply, RequestError, SessionError, UploadedMedia,
};
use wa_test_support::{FakeServer, Harness, LoginScript, ServerFrame, legacy_config};
use wa_wire::msg::{GroupAction, PresenceSet, Receipt, ReceiptKind};
use wa_wire::web::{Request, SetItem};

const BOB: &str = "15559876543@c.us";
const GROUP: &str = "15551234567-1589356000@g.us";

fn jid(text: &str) -> Jid {
    text.parse().unwrap()
}

fn linked() -> Harness {
    let mut h = Harness::new(legacy_config()).with_server(FakeServer::new());
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
    let mut h = Harness::new(legacy_config()).with_server(server);
    h.session.restore(h.now, credentials).unwrap();
    h.drive();
    h
}

fn server(h: &mut Harness) -> &mut FakeServer {
    h.server.as_mut().unwrap()
}

/// The requests the server opened, read back through the wire vocabulary.
fn requests(h: &mut Harness) -> Vec<Request> {
    server(h)
        .nodes
        .iter()
        .map(|n| Request::from_node(n).unwrap_or_else(|e| panic!("{e}: {n:?}")))
        .collect()
}

/// A sealed `action` push carrying these messages.
fn action_frame(
    h: &mut Harness,
    tag: &str,
    add: &str,
    infos: &[wa_proto::WebMessageInfo],
) -> Vec<u8> {
    let node = Node::new("action").with_attr("add", add).with_children(
        infos
            .iter()
            .map(|info| Node::new("message").with_bytes(prost::Message::encode_to_vec(info)))
            .collect(),
    );
    server(h).seal(tag, &node)
}

fn incoming(
    chat: &str,
    id: &str,
    participant: Option<&str>,
    from_me: bool,
) -> wa_proto::WebMessageInfo {
    wa_proto::WebMessageInfo {
        key: wa_proto::MessageKey {
            remote_jid: Some(chat.into()),
            from_me: Some(from_me),
            id: Some(id.into()),
            participant: participant.map(str::to_owned),
        },
        message: Some(wa_proto::Message {
            conversation: Some("hello".into()),
            ..Default::default()
        }),
        participant: participant.map(str::to_owned),
        ..Default::default()
    }
}

/// The metric and flags bytes of every binary frame sent.
fn headers(h: &Harness) -> Vec<(u8, u8)> {
    h.sent
        .iter()
        .filter_map(|m| match m {
            OutMessage::Binary(b) => {
                let c = b.iter().position(|&x| x == b',').unwrap();
                Some((b[c + 1], b[c + 2]))
            }
            OutMessage::Text(_) => None,
        })
        .collect()
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
        events.iter().any(|e| matches!(
            e,
            Event::LoginFailed {
                error: LoginError::ServerError,
                forget_credentials: false
            }
        )),
        "{events:?}"
    );
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
    // The first login is a takeover; the automatic retries say "reconnect" with the own JID.
    let logins: Vec<&str> = h
        .sent_texts()
        .into_iter()
        .filter(|t| t.contains(r#"["admin","login""#))
        .collect();
    assert_eq!(logins.len(), 9);
    assert!(logins[0].ends_with(r#","takeover"]"#));
    assert!(
        logins[1..]
            .iter()
            .all(|t| t.ends_with(r#","reconnect","15551234567@c.us"]"#)),
        "{logins:?}"
    );
    assert!(
        h.session.credentials().is_some(),
        "a 500 does not void the credentials"
    );
    // Then the server recovers.
    server(&mut h).login = LoginScript::Accept;
    h.advance(Duration::from_secs(60));
    assert!(h.session.is_connected());
}

#[test]
fn final_login_statuses_stop_and_say_whether_to_forget() {
    for (status, error, forget) in [
        (405, LoginError::AlreadyLoggedIn, false),
        (409, LoginError::LoggedInElsewhere, false),
        (419, LoginError::Expired, true),
        (403, LoginError::AccessDenied { tos: None }, true),
    ] {
        let mut h = restored(LoginScript::Status(status));
        let events = h.take_events();
        let failures: Vec<(&LoginError, bool)> = events
            .iter()
            .filter_map(|e| match e {
                Event::LoginFailed {
                    error,
                    forget_credentials,
                } => Some((error, *forget_credentials)),
                _ => None,
            })
            .collect();
        assert_eq!(failures, [(&error, forget)], "{status}: {events:?}");
        assert!(
            matches!(
                events.last(),
                Some(Event::Disconnected {
                    reason: DisconnectReason::LoginFailed,
                    reconnect_in: None
                })
            ),
            "{status}: {events:?}"
        );
        assert_eq!(h.session.credentials().is_none(), forget, "{status}");
        h.advance(Duration::from_secs(3600));
        assert_eq!(h.connects, 1, "{status}: no retry");
    }
    // 403 with the terms of service to accept.
    let server = FakeServer::new();
    let mut h = Harness::new(legacy_config());
    h.session
        .restore(h.now, server.credentials("AAECAwQFBgcICQoLDA0ODw=="))
        .unwrap();
    h.drive();
    let init = h.tag_of(r#"["admin","init""#);
    h.server_text(&format!(
        r#"{init},{{"status":200,"ref":"1@x","ttl":20000}}"#
    ));
    let login = h.tag_of(r#"["admin","login""#);
    h.server_text(&format!(r#"{login},{{"status":403,"tos":2}}"#));
    let events = h.take_events();
    assert!(
        matches!(
            events[0],
            Event::LoginFailed {
                error: LoginError::AccessDenied { tos: Some(2) },
                forget_credentials: true
            }
        ),
        "{events:?}"
    );
}

#[test]
fn cmd_update_in_a_session_stops_it_for_good() {
    let mut h = linked();
    server(&mut h).push(ServerFrame::Text(r#"s7,["Cmd",{"type":"update"}]"#.into()));
    h.drive();
    let events = h.take_events();
    assert!(
        matches!(
            events[..],
            [
                Event::LoginFailed {
                    error: LoginError::VersionRejected,
                    forget_credentials: false
                },
                Event::Disconnected {
                    reason: DisconnectReason::VersionRejected,
                    reconnect_in: None
                }
            ]
        ),
        "{events:?}"
    );
    assert_eq!(h.closes, 1);
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.connects, 1);
}

#[test]
fn a_server_that_goes_silent_is_detected_as_stale() {
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
    let silent_for = at.since(silent_from);
    assert!(
        silent_for >= Duration::from_secs(20) && silent_for <= Duration::from_secs(90 + 30),
        "{silent_for:?}"
    );
    assert!(reconnect_in.is_some());
    assert_eq!(h.closes, 1);
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
    assert_eq!(h.session.pending_requests(), 0);
    // A late reply then has no request: it is taken as a push.
    let tag = match h
        .sent
        .iter()
        .rev()
        .find(|m| matches!(m, OutMessage::Binary(_)))
    {
        Some(OutMessage::Binary(b)) => {
            String::from_utf8_lossy(&b[..b.iter().position(|&c| c == b',').unwrap()]).into_owned()
        }
        _ => panic!("no binary request"),
    };
    let frame = server(&mut h).seal(&tag, &Node::new("response").with_attr("type", "chat"));
    h.server_binary(&frame);
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Chats(c)] if c.is_empty()),
        "{events:?}"
    );
    // A request waiting when the socket drops fails at once.
    let contacts = h.session.query_contacts(h.now).unwrap();
    h.drive();
    h.close_socket();
    let events = h.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Reply { id, result: Err(RequestError::Disconnected) } if *id == contacts)),
        "{events:?}"
    );
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
    assert_eq!(
        (&c[0].jid, c[0].name.as_deref()),
        (&jid("15550000001@c.us"), Some("Ann"))
    );
    assert_eq!((ch[0].count, ch[0].t), (Some(2), Some(1589356000)));
    // A JSON reply under a tag nobody asked for.
    h.server_text(r#"999.--9,{"status":200}"#);
    let events = h.take_events();
    assert!(
        matches!(&events[0], Event::Error(SessionError::UnknownTag(t)) if t == "999.--9"),
        "{events:?}"
    );
    // A reply of the wrong shape ends its request with an error, not a panic.
    let chats = h.session.query_chats(h.now).unwrap();
    h.drive();
    let Some(OutMessage::Binary(b)) = h.sent.last() else {
        panic!()
    };
    let tag =
        String::from_utf8_lossy(&b[..b.iter().position(|&c| c == b',').unwrap()]).into_owned();
    let bad = Node::new("response")
        .with_attr("type", "chat")
        .with_children(vec![Node::new("chat").with_attr("count", "2")]);
    let frame = server(&mut h).seal(&tag, &bad);
    h.server_binary(&frame);
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Reply { id, result: Err(RequestError::BadReply(_)) }] if *id == chats),
        "{events:?}"
    );
}

#[test]
fn send_text_seals_a_legacy_relay_node_and_reports_the_ack() {
    let mut h = linked();
    let (request, id) = h.session.send_text(h.now, &jid(BOB), "hi there").unwrap();
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
    let [Request::LegacyRelay(info)] = &requests(&mut h)[..] else {
        panic!("{:?}", server(&mut h).nodes)
    };
    assert_eq!(
        info.key.remote_jid.as_deref(),
        Some("15559876543@s.whatsapp.net")
    );
    assert_eq!(
        (info.key.from_me, info.key.id.as_deref()),
        (Some(true), Some(id.as_str()))
    );
    assert_eq!(
        info.message.as_ref().unwrap().conversation.as_deref(),
        Some("hi there")
    );
    assert_eq!(info.message_timestamp, Some(h.now.as_secs()));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Reply { id: r, result: Ok(Reply::MessageSent { id: m }) }] if *r == request && *m == id),
        "{events:?}"
    );
    // Then the ticks arrive as acks: from = the sender (this account), to = the chat.
    h.server_text(&format!(
        r#"s9,["Msg",{{"cmd":"ack","id":"{id}","ack":2,"from":"15551234567@c.us","to":"{BOB}","t":1}}]"#
    ));
    let events = h.take_events();
    let [
        Event::Ack {
            ids,
            level: AckLevel::Delivered,
            from: Some(from),
            to: Some(to),
            participant: None,
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        (ids.as_slice(), from, to),
        (&[id.clone()][..], &jid("15551234567@c.us"), &jid(BOB))
    );
    // The epoch counts binary requests.
    h.session.query_chats(h.now).unwrap();
    h.drive();
    assert_eq!(
        server(&mut h).nodes.last().unwrap().attr("epoch"),
        Some("2")
    );
    // Refused by a server: the reply says so.
    server(&mut h).ack_sends = false;
    server(&mut h).on_node = Some(Box::new(|_| None));
    let (request, _) = h.session.send_text(h.now, &jid(BOB), "again").unwrap();
    h.drive();
    let Some(OutMessage::Binary(frame)) = h.sent.last() else {
        panic!()
    };
    let tag = String::from_utf8_lossy(&frame[..frame.iter().position(|&c| c == b',').unwrap()])
        .into_owned();
    h.take_events();
    h.server_text(&format!(
        r#"{tag},{{"status":400,"reason":"readable messages are refused"}}"#
    ));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Reply { id, result: Err(RequestError::Status { status: 400, reason: Some(r) }) }] if *id == request && r.contains("refused")),
        "{events:?}"
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
    let (bob, group) = (jid(BOB), jid(GROUP));
    let members = [jid("15550000001@c.us"), jid("15550000002@c.us")];
    let now = h.now;
    h.session.send_media(now, &bob, &media).unwrap();
    h.session
        .set_presence(now, PresenceState::Composing, Some(&bob))
        .unwrap();
    h.session
        .set_presence(now, PresenceState::Available, None)
        .unwrap();
    h.session
        .mark_read(now, &bob, "3EB0AAAABBBB", None)
        .unwrap();
    h.session.group_create(now, "Team", &members).unwrap();
    h.session
        .group_participants(now, &group, GroupOp::Promote, &members[..1])
        .unwrap();
    h.session.group_leave(now, &group).unwrap();
    h.session
        .mark_read(now, &group, "3EB0CCCCDDDD", Some(&members[1]))
        .unwrap();
    h.drive();
    let requests = requests(&mut h);
    let nodes = server(&mut h).nodes.clone();
    assert_eq!(requests.len(), 8);
    let Request::LegacyRelay(info) = &requests[0] else {
        panic!("{:?}", requests[0])
    };
    let video = info.message.clone().unwrap().video_message.unwrap();
    assert_eq!(
        (video.seconds, video.width, video.height),
        (Some(4), Some(640), Some(360))
    );
    assert_eq!(video.streaming_sidecar.as_deref(), Some(&[4u8; 70][..]));
    assert_eq!(video.caption.as_deref(), Some("look"));
    assert_eq!(
        (video.media_key.as_deref(), video.file_length),
        (Some(&[1u8; 32][..]), Some(393_736))
    );
    assert_eq!(
        requests[1],
        Request::Set(vec![SetItem::Presence(PresenceSet {
            state: PresenceState::Composing,
            to: Some(bob.clone()),
        })])
    );
    assert_eq!(
        requests[2],
        Request::Set(vec![SetItem::Presence(PresenceSet {
            state: PresenceState::Available,
            to: None,
        })])
    );
    assert_eq!(
        requests[3],
        Request::Set(vec![SetItem::Receipt(Receipt {
            kind: ReceiptKind::Read,
            chat: bob.clone(),
            id: "3EB0AAAABBBB".into(),
            participant: None,
        })])
    );
    // The legacy read node: index, owner, count.
    let read = nodes[3].child("read").unwrap();
    assert_eq!(
        (read.attr("index"), read.attr("owner"), read.attr("count")),
        (Some("3EB0AAAABBBB"), Some("false"), Some("1"))
    );
    let group_action = |r: &Request| match r {
        Request::Set(items) => match &items[..] {
            [SetItem::Group { action, id }] => (action.clone(), id.clone()),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let (create, create_id) = group_action(&requests[4]);
    assert_eq!(
        create,
        GroupAction {
            op: GroupOp::Create,
            group: None,
            subject: Some("Team".into()),
            participants: members.to_vec(),
        }
    );
    // A group operation names its request: the tag of its frame is its id, and the author is
    // this account.
    let Some(OutMessage::Binary(frame)) = h
        .sent
        .iter()
        .filter(|m| matches!(m, OutMessage::Binary(_)))
        .nth(4)
    else {
        panic!()
    };
    assert!(frame.starts_with(format!("{create_id},").as_bytes()));
    assert_eq!(
        nodes[4].child("group").unwrap().attr("author"),
        Some("15551234567@s.whatsapp.net")
    );
    let (promote, _) = group_action(&requests[5]);
    assert_eq!(
        (
            promote.op,
            promote.group.as_ref(),
            &promote.participants[..]
        ),
        (GroupOp::Promote, Some(&group), &members[..1])
    );
    let (leave, _) = group_action(&requests[6]);
    assert_eq!(
        (leave.op, leave.group.as_ref()),
        (GroupOp::Leave, Some(&group))
    );
    assert_eq!(
        requests[7],
        Request::Set(vec![SetItem::Receipt(Receipt {
            kind: ReceiptKind::Read,
            chat: group.clone(),
            id: "3EB0CCCCDDDD".into(),
            participant: Some(members[1].clone()),
        })])
    );
    // Metrics and flags of the frames, as PROTOCOL.md §3.3 lists them.
    assert_eq!(
        headers(&h),
        [
            (16, 0x80),
            (8, 0x04),
            (8, 0xA0),
            (11, 0x80),
            (10, 0x88),
            (10, 0x88),
            (10, 0x88),
            (11, 0x80)
        ]
    );
    // Caller mistakes are typed errors, and nothing is sent.
    assert_eq!(
        h.session.group_create(now, "x", &[]).unwrap_err(),
        CommandError::InvalidArgument("a group needs participants")
    );
    assert!(matches!(
        h.session.mark_read(now, &bob, "", None),
        Err(CommandError::InvalidArgument(_))
    ));
    assert!(matches!(
        h.session
            .group_participants(now, &group, GroupOp::Leave, &members),
        Err(CommandError::InvalidArgument(_))
    ));
    let server_only = wa_binary::Jid::server_only(wa_binary::Server::User);
    assert!(matches!(
        h.session.send_text(now, &server_only, "x"),
        Err(CommandError::InvalidArgument(_))
    ));
    h.drive();
    assert_eq!(server(&mut h).nodes.len(), 8);
}

#[test]
fn commands_need_a_connection_and_pending_is_bounded() {
    let mut h = Harness::new(legacy_config());
    assert_eq!(
        h.session.query_chats(h.now).unwrap_err(),
        CommandError::NotConnected
    );
    assert_eq!(
        h.session.send_text(h.now, &jid(BOB), "x").unwrap_err(),
        CommandError::NotConnected
    );
    let mut config = legacy_config();
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
    assert_eq!(h.session.pending_requests(), 3);
    assert_eq!(
        h.session.link(h.now).unwrap_err(),
        CommandError::AlreadyStarted
    );
    assert!(!h.session.is_end_to_end() && h.session.identity_keys().is_none());
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
    // Sealed with the right keys, but not a node; and a node no push has the shape of.
    let mut garbage = b"s23,".to_vec();
    server(&mut h)
        .keys
        .seal_into(&[0xff, 0x00, 0x13], &[0x11; 16], &mut garbage);
    h.server_binary(&garbage);
    let odd = server(&mut h).seal("s24", &Node::new("mystery").with_attr("x", "y"));
    h.server_binary(&odd);
    let events = h.take_events();
    assert!(
        matches!(events[0], Event::Error(SessionError::Open(_))),
        "{events:?}"
    );
    assert!(
        matches!(events[1], Event::Error(SessionError::Frame(_))),
        "{events:?}"
    );
    assert!(
        matches!(events[2], Event::Error(SessionError::Frame(_))),
        "{events:?}"
    );
    assert!(
        matches!(&events[3], Event::Other(v) if v[0] == "Cmd"),
        "{events:?}"
    );
    assert!(
        matches!(events[4], Event::Error(SessionError::Node(_))),
        "{events:?}"
    );
    assert!(
        events[5..]
            .iter()
            .any(|e| matches!(e, Event::OtherNode(n) if n.tag() == "mystery")),
        "{events:?}"
    );
    assert!(h.session.is_connected());
    // A binary frame before any keys exist is dropped with an error.
    let mut fresh = Harness::new(legacy_config());
    fresh.session.link(fresh.now).unwrap();
    fresh.drive();
    fresh.server_binary(&frame);
    assert!(matches!(
        fresh.take_events()[..],
        [Event::Error(SessionError::BinaryBeforeKeys)]
    ));
}

#[test]
fn pushed_chat_and_contact_lists_arrive() {
    let mut h = linked();
    let chats = Node::new("response")
        .with_attr("type", "chat")
        .with_children(vec![
            Node::new("chat")
                .with_attr("jid", "15550000001@c.us")
                .with_attr("count", "3"),
        ]);
    let frame = server(&mut h).seal("preempt-1589472058-319", &chats);
    server(&mut h).push(ServerFrame::Binary(frame));
    let contacts = Node::new("response")
        .with_attr("type", "contacts")
        .with_children(vec![
            Node::new("user")
                .with_attr("jid", BOB)
                .with_attr("notify", "Bob"),
        ]);
    let frame = server(&mut h).seal("preempt-1589472058-320", &contacts);
    server(&mut h).push(ServerFrame::Binary(frame));
    h.drive();
    let events = h.take_events();
    let [Event::Chats(chats), Event::Contacts(contacts)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (&chats[0].jid, chats[0].count),
        (&jid("15550000001@c.us"), Some(3))
    );
    assert_eq!(
        (&contacts[0].jid, contacts[0].notify.as_deref()),
        (&jid(BOB), Some("Bob"))
    );
}

#[test]
fn live_messages_are_acknowledged_with_a_delivery_receipt() {
    let mut h = linked();
    let info = incoming(
        "15559876543@s.whatsapp.net",
        "3EB0AAAABBBBCCCCDDDD",
        None,
        false,
    );
    let frame = action_frame(&mut h, "s30", "relay", std::slice::from_ref(&info));
    h.server_binary(&frame);
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Message { info: m, source: MessageSource::Relay }] if **m == info),
        "{events:?}"
    );
    assert_eq!(
        requests(&mut h),
        [Request::Set(vec![SetItem::Receipt(Receipt {
            kind: ReceiptKind::Delivered,
            chat: jid(BOB),
            id: "3EB0AAAABBBBCCCCDDDD".into(),
            participant: None,
        })])]
    );
    let received = server(&mut h).nodes[0].child("received").cloned().unwrap();
    assert_eq!(
        (received.attr("type"), received.attr("owner")),
        (Some("message"), Some("false"))
    );
    assert_eq!(headers(&h), [(13, 0x80)], "metric RECEIVED");
    // In a group, the receipt names the sender.
    let info = incoming(GROUP, "3EB0EEEE", Some("15550000001@c.us"), false);
    let frame = action_frame(&mut h, "s31", "relay", &[info]);
    h.server_binary(&frame);
    assert!(matches!(&h.take_events()[..], [Event::Message { .. }]));
    assert_eq!(
        requests(&mut h)[1],
        Request::Set(vec![SetItem::Receipt(Receipt {
            kind: ReceiptKind::Delivered,
            chat: jid(GROUP),
            id: "3EB0EEEE".into(),
            participant: Some(jid("15550000001@c.us")),
        })])
    );
    // History, and own messages from the phone, are not acknowledged.
    let before = server(&mut h).nodes.len();
    let history = incoming(BOB, "3EB0FFFF", None, false);
    let frame = action_frame(&mut h, "s32", "last", &[history]);
    h.server_binary(&frame);
    let own = incoming(BOB, "3EB01111", None, true);
    let frame = action_frame(&mut h, "s33", "relay", &[own]);
    h.server_binary(&frame);
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [
                Event::Message {
                    source: MessageSource::Last,
                    ..
                },
                Event::Message {
                    source: MessageSource::Relay,
                    ..
                }
            ]
        ),
        "{events:?}"
    );
    assert_eq!(server(&mut h).nodes.len(), before);

    // With delivery receipts off (as legacy web clients were), nothing is sent.
    let mut config = legacy_config();
    config.delivery_receipts = false;
    let mut h = Harness::new(config).with_server(FakeServer::new());
    h.session.link(h.now).unwrap();
    h.drive();
    h.take_events();
    let info = incoming(BOB, "3EB02222", None, false);
    let frame = action_frame(&mut h, "s34", "relay", &[info]);
    h.server_binary(&frame);
    assert!(matches!(&h.take_events()[..], [Event::Message { .. }]));
    assert!(server(&mut h).nodes.is_empty());
}

#[test]
fn receipt_pushes_and_group_presence_name_who_and_where() {
    let mut h = linked();
    // A read receipt in a group, as a legacy `action` push.
    let node = Node::new("action")
        .with_attr("add", "relay")
        .with_children(vec![
            Receipt {
                kind: ReceiptKind::Read,
                chat: jid(GROUP),
                id: "3EB0AAAA".into(),
                participant: Some(jid("15550000001@c.us")),
            }
            .to_node(),
        ]);
    let frame = server(&mut h).seal("s40", &node);
    h.server_binary(&frame);
    h.server_text(&format!(
        r#"s41,["Presence",{{"id":"{GROUP}","participant":"15550000002@c.us","type":"composing","t":1589356601}}]"#
    ));
    let events = h.take_events();
    let [
        Event::Ack {
            ids,
            level: AckLevel::Read,
            from,
            to,
            participant,
        },
        Event::Presence {
            jid: who,
            group,
            kind,
            t,
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(ids, &["3EB0AAAA"]);
    assert_eq!(
        (from.as_ref(), to.as_ref(), participant.as_ref()),
        (
            Some(&jid("15550000001@c.us")),
            Some(&jid(GROUP)),
            Some(&jid("15550000001@c.us"))
        )
    );
    assert_eq!(
        (who, group.as_ref(), kind.as_str(), *t),
        (
            &jid("15550000002@c.us"),
            Some(&jid(GROUP)),
            "composing",
            Some(1589356601)
        )
    );
    // A receipt is not a message: nothing is acknowledged back.
    assert!(server(&mut h).nodes.is_empty());
}

#[test]
fn ack_levels_order_by_number_and_empty_replies_are_done() {
    assert!(AckLevel::Other(-1) < AckLevel::Pending);
    assert!(AckLevel::Read > AckLevel::Delivered && AckLevel::Played > AckLevel::Read);
    assert!(AckLevel::Other(7) > AckLevel::Played);
    for n in -1..=5 {
        assert_eq!(AckLevel::from_number(n).number(), n);
    }
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
    let info = incoming("1@s.whatsapp.net", "3EB0X", None, false);
    let frame = action_frame(&mut h, "s50", "relay", &[info]);
    h.server_binary(&frame);
    assert_eq!(
        h.session.pending_requests(),
        1,
        "the receipt waits for its answer"
    );
    // The server never answers the receipt: it times out, and nobody hears of it.
    h.advance(Duration::from_secs(25));
    let events = h.take_events();
    assert!(
        events.iter().all(|e| !matches!(e, Event::Reply { .. })),
        "{events:?}"
    );
    assert_eq!(h.session.pending_requests(), 0);
    assert!(h.session.is_connected());
}
