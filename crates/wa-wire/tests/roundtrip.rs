//! Every value of the vocabulary round-trips: through its node, its JSON, or its text.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use wa_wire::ids::{Chat, Jid, device_jid, user_jid};
use wa_wire::keys::{
    Claimed, DeviceInfo, DeviceList, IdentityKeys, KeyUpload, OneTimeKey, PreKeyBundle, Signature,
};
use wa_wire::legacy::{
    ActionChild, ActionPush, Add, ChatEntry, ContactEntry, Direction, MessagesQuery,
};
use wa_wire::link::{ClientFeatures, QrCode};
use wa_wire::msg::{
    AckNotice, ContentKind, GroupAction, GroupNotice, GroupOp, Incoming, Notification, OlmPayload,
    OlmType, PresenceNotice, PresenceSet, PresenceState, Receipt, ReceiptKind, Relay, RelayTarget,
};
use wa_wire::phone::{PhoneEvent, PhoneRequest};
use wa_wire::web::{Query, Request, ServerNode, SetItem};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn number() -> impl Strategy<Value = String> {
    "[1-9][0-9]{4,14}"
}

fn user() -> impl Strategy<Value = Jid> {
    number().prop_map(|n| user_jid(&n).unwrap())
}

fn device() -> impl Strategy<Value = Jid> {
    (user(), 0u8..=255).prop_map(|(u, d)| device_jid(&u, d))
}

fn group() -> impl Strategy<Value = Jid> {
    (number(), 1_000_000_000u64..2_000_000_000)
        .prop_map(|(n, t)| format!("{n}-{t}@g.us").parse().unwrap())
}

fn chat() -> impl Strategy<Value = Jid> {
    prop_oneof![user(), group()]
}

fn message_id() -> impl Strategy<Value = String> {
    "[0-9A-F]{4,32}"
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 1..64)
}

fn identity() -> impl Strategy<Value = IdentityKeys> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(curve25519, ed25519)| IdentityKeys {
        curve25519,
        ed25519,
    })
}

fn signature() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Signature(s)
    })
}

fn otk() -> impl Strategy<Value = OneTimeKey> {
    ("[A-Za-z0-9+/]{1,16}", any::<[u8; 32]>()).prop_map(|(id, key)| OneTimeKey { id, key })
}

fn kind() -> impl Strategy<Value = ContentKind> {
    prop_oneof![
        Just(ContentKind::Text),
        Just(ContentKind::Media),
        Just(ContentKind::Key),
        Just(ContentKind::History),
        "[a-z_]{1,12}".prop_map(ContentKind::from),
    ]
}

fn olm() -> impl Strategy<Value = OlmPayload> {
    (
        prop_oneof![Just(OlmType::PreKey), Just(OlmType::Normal)],
        bytes(),
    )
        .prop_map(|(kind, body)| OlmPayload { kind, body })
}

fn relay() -> impl Strategy<Value = Relay> {
    (
        chat(),
        message_id(),
        kind(),
        option::of(bytes()),
        vec((device(), option::of(olm())), 0..6),
    )
        .prop_map(|(to, id, kind, group, targets)| {
            let mut seen = std::collections::HashSet::new();
            let targets = targets
                .into_iter()
                .filter(|(d, _)| seen.insert(d.clone()))
                .map(|(device, olm)| RelayTarget { device, olm })
                .collect();
            Relay {
                to,
                id,
                kind,
                group,
                targets,
            }
        })
}

fn incoming() -> impl Strategy<Value = Incoming> {
    (
        device(),
        chat(),
        message_id(),
        any::<u32>(),
        kind(),
        option::of(bytes()),
        option::of(olm()),
    )
        .prop_map(|(from, chat, id, t, kind, group, olm)| Incoming {
            from,
            chat,
            id,
            t: u64::from(t),
            kind,
            group,
            olm,
        })
}

fn receipt() -> impl Strategy<Value = Receipt> {
    (
        prop_oneof![
            Just(ReceiptKind::Delivered),
            Just(ReceiptKind::Read),
            Just(ReceiptKind::Played)
        ],
        chat(),
        message_id(),
        option::of(user()),
    )
        .prop_map(|(kind, chat, id, participant)| Receipt {
            kind,
            chat,
            id,
            participant,
        })
}

fn presence_state() -> impl Strategy<Value = PresenceState> {
    prop_oneof![
        Just(PresenceState::Available),
        Just(PresenceState::Unavailable),
        Just(PresenceState::Composing),
        Just(PresenceState::Paused),
        Just(PresenceState::Recording),
    ]
}

fn group_op() -> impl Strategy<Value = GroupOp> {
    prop_oneof![
        Just(GroupOp::Create),
        Just(GroupOp::Add),
        Just(GroupOp::Remove),
        Just(GroupOp::Promote),
        Just(GroupOp::Demote),
        Just(GroupOp::Subject),
        Just(GroupOp::Leave),
    ]
}

fn group_action() -> impl Strategy<Value = GroupAction> {
    (
        group_op(),
        option::of(group()),
        option::of("[ -~]{0,40}"),
        vec(user(), 0..5),
    )
        .prop_map(|(op, group, subject, participants)| GroupAction {
            op,
            group,
            subject,
            participants,
        })
}

fn key_upload() -> impl Strategy<Value = KeyUpload> {
    (identity(), vec(otk(), 0..5), option::of(otk())).prop_map(
        |(identity, one_time_keys, fallback)| KeyUpload {
            identity,
            one_time_keys,
            fallback,
        },
    )
}

fn set_item() -> impl Strategy<Value = SetItem> {
    prop_oneof![
        receipt().prop_map(SetItem::Receipt),
        (presence_state(), option::of(chat()))
            .prop_map(|(state, to)| SetItem::Presence(PresenceSet { state, to })),
        (group_action(), message_id()).prop_map(|(action, id)| SetItem::Group { action, id }),
        key_upload().prop_map(SetItem::Keys),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    prop_oneof![
        Just(Query::Chats),
        Just(Query::Contacts),
        Just(Query::Status),
        (
            chat(),
            any::<bool>(),
            1u32..500,
            option::of((message_id(), any::<bool>()))
        )
            .prop_map(
                |(chat, before, count, index)| Query::Messages(MessagesQuery {
                    chat: Chat::from_jid(&chat).unwrap(),
                    direction: if before {
                        Direction::Before
                    } else {
                        Direction::After
                    },
                    count,
                    index,
                })
            ),
        vec(user(), 1..5).prop_map(Query::Devices),
        vec(device(), 1..5).prop_map(Query::PreKeys),
    ]
}

fn web_message() -> impl Strategy<Value = wa_proto::WebMessageInfo> {
    (
        chat(),
        any::<bool>(),
        message_id(),
        "[ -~]{0,40}",
        any::<u32>(),
    )
        .prop_map(|(chat, from_me, id, text, t)| wa_proto::WebMessageInfo {
            key: wa_proto::MessageKey {
                remote_jid: Some(chat.to_wire_string()),
                from_me: Some(from_me),
                id: Some(id),
                participant: None,
            },
            message: Some(wa_proto::Message {
                conversation: Some(text),
                ..Default::default()
            }),
            message_timestamp: Some(u64::from(t)),
            ..Default::default()
        })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        relay().prop_map(Request::Relay),
        web_message().prop_map(|m| Request::LegacyRelay(Box::new(m))),
        vec(set_item(), 1..4).prop_map(Request::Set),
        query().prop_map(Request::Query),
    ]
}

fn device_list() -> impl Strategy<Value = DeviceList> {
    (
        user(),
        vec((0u8..=255, identity(), option::of(signature())), 0..4),
    )
        .prop_map(|(user, devices)| {
            let mut seen = std::collections::HashSet::new();
            DeviceList {
                devices: devices
                    .into_iter()
                    .filter(|(d, _, _)| seen.insert(*d))
                    .map(|(d, identity, attestation)| DeviceInfo {
                        device: device_jid(&user, d),
                        identity,
                        attestation,
                    })
                    .collect(),
                user,
            }
        })
}

fn claimed() -> impl Strategy<Value = Claimed> {
    prop_oneof![
        device().prop_map(|device| Claimed::Missing { device }),
        (device(), identity(), otk(), any::<bool>()).prop_map(
            |(device, identity, one_time_key, fallback)| {
                Claimed::Bundle(PreKeyBundle {
                    device,
                    identity,
                    one_time_key,
                    fallback,
                })
            }
        ),
    ]
}

fn notification() -> impl Strategy<Value = Notification> {
    prop_oneof![
        (user(), any::<u32>()).prop_map(|(jid, t)| Notification::Identity {
            jid,
            t: u64::from(t)
        }),
        (user(), any::<u32>()).prop_map(|(jid, t)| Notification::Devices {
            jid,
            t: u64::from(t)
        }),
        any::<u32>().prop_map(|count| Notification::PreKeys { count }),
    ]
}

fn attrs() -> impl Strategy<Value = Vec<(String, String)>> {
    vec(("x[a-z]{1,6}", "[ -~]{0,10}"), 0..3).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|(k, _)| seen.insert(k.clone()));
        v
    })
}

fn server_node() -> impl Strategy<Value = ServerNode> {
    prop_oneof![
        vec(incoming(), 1..4).prop_map(ServerNode::Incoming),
        (
            prop_oneof![Just(Add::Relay), Just(Add::Last), Just(Add::Before)],
            vec(web_message(), 0..3),
            vec(receipt(), 0..2)
        )
            .prop_map(|(add, messages, receipts)| {
                let mut push = ActionPush::messages(add, messages);
                push.children
                    .extend(receipts.into_iter().map(ActionChild::Receipt));
                ServerNode::Action(push)
            }),
        vec(
            (
                chat(),
                option::of("[ -~]{0,20}"),
                option::of(any::<u32>()),
                option::of(any::<u32>()),
                attrs()
            ),
            0..4
        )
        .prop_map(|chats| ServerNode::Chats(
            chats
                .into_iter()
                .map(|(jid, name, count, t, extra)| ChatEntry {
                    jid,
                    name,
                    count,
                    t: t.map(u64::from),
                    extra
                })
                .collect()
        )),
        vec(
            (
                user(),
                option::of("[ -~]{0,20}"),
                option::of("[ -~]{0,20}"),
                attrs()
            ),
            0..4
        )
        .prop_map(|c| {
            ServerNode::Contacts(
                c.into_iter()
                    .map(|(jid, name, notify, extra)| ContactEntry {
                        jid,
                        name,
                        notify,
                        extra,
                    })
                    .collect(),
            )
        }),
        vec(device_list(), 0..3).prop_map(ServerNode::Devices),
        vec(claimed(), 0..3).prop_map(ServerNode::PreKeys),
        vec((user(), "\\PC{0,40}", option::of(any::<u32>())), 0..4).prop_map(|s| {
            ServerNode::Statuses(
                s.into_iter()
                    .map(|(jid, text, t)| wa_wire::legacy::StatusEntry {
                        jid,
                        text,
                        t: t.map(u64::from),
                    })
                    .collect(),
            )
        }),
        notification().prop_map(ServerNode::Notification),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_result_written_directly_is_the_result_through_a_value(
        id in any::<u64>(),
        t in any::<u64>(),
        wid in user(),
        created in any::<bool>(),
        gid in option::of(group()),
    ) {
        use wa_wire::phone::{Empty, GroupCreated, Ready, Stored};
        // One field or none: the very same text.
        prop_assert_eq!(
            PhoneEvent::result_text(id, &Stored { t }),
            PhoneEvent::result(id, &Stored { t }).to_text()
        );
        prop_assert_eq!(
            PhoneEvent::result_text(id, &Empty {}),
            PhoneEvent::result(id, &Empty {}).to_text()
        );
        prop_assert_eq!(
            PhoneEvent::result_text(id, &GroupCreated { gid: gid.clone() }),
            PhoneEvent::result(id, &GroupCreated { gid }).to_text()
        );
        // More: the same event (keys in the struct's order, not sorted).
        let ready = Ready { wid, created, identity_changed: !created };
        let text = PhoneEvent::result_text(id, &ready);
        prop_assert_eq!(
            serde_json::from_str::<PhoneEvent>(&text).unwrap(),
            PhoneEvent::result(id, &ready)
        );
    }

    #[test]
    fn requests_round_trip_through_nodes(request in request(), epoch in any::<u32>(), own in user()) {
        let node = request.to_node(u64::from(epoch), &own);
        let epoch_text = epoch.to_string();
        prop_assert_eq!(node.attr("epoch"), Some(epoch_text.as_str()));
        prop_assert_eq!(Request::from_node(&node).unwrap(), request.clone());
        // And through the bytes the client policy writes (JIDs normalised by the codec).
        let bytes = wa_binary::encode(&node, wa_binary::Policy::Client).unwrap();
        let decoded = wa_binary::decode(&bytes).unwrap();
        prop_assert_eq!(Request::from_node(&decoded).unwrap(), request);
    }

    #[test]
    fn server_nodes_round_trip(node in server_node()) {
        let written = node.to_node();
        prop_assert_eq!(ServerNode::from_node(&written).unwrap(), node.clone());
        let bytes = wa_binary::encode(&written, wa_binary::Policy::Server).unwrap();
        let decoded = wa_binary::decode(&bytes).unwrap();
        prop_assert_eq!(ServerNode::from_node(&decoded).unwrap(), node);
    }

    #[test]
    fn phone_messages_round_trip_through_json(
        relay in relay(),
        receipt in receipt(),
        incoming in incoming(),
        upload in key_upload(),
        action in group_action(),
        lists in vec(device_list(), 0..2),
        id in any::<u32>(),
    ) {
        let id = u64::from(id);
        let requests = vec![
            PhoneRequest::Relay { id, relay },
            PhoneRequest::Receipts { id, receipts: vec![receipt.clone(); 1 + (id % 3) as usize] },
            PhoneRequest::Receipt { id, receipt },
            PhoneRequest::Keys { id, upload },
            PhoneRequest::Group { id, action },
        ];
        for request in requests {
            let text = request.to_text();
            prop_assert_eq!(serde_json::from_str::<PhoneRequest>(&text).unwrap(), request.clone());
            prop_assert_eq!(PhoneRequest::from_text(&text).unwrap(), request);
        }
        let events = vec![
            PhoneEvent::Message { message: incoming },
            PhoneEvent::result(id, &wa_wire::phone::DeviceLists { lists }),
        ];
        for event in events {
            let text = event.to_text();
            prop_assert_eq!(serde_json::from_str::<PhoneEvent>(&text).unwrap(), event);
        }
    }

    /// A message event, written field by field with its base64 straight into the text, is
    /// serde's text byte for byte, whatever its strings hold (quotes, backslashes, control
    /// characters, any Unicode: the id and a kind made in code are not checked here).
    #[test]
    fn a_message_event_is_serdes_text(
        incoming in incoming(),
        id in "(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}\u{2028}])*",
        kind in option::of("(\\PC|[\"\\\\\u{0}-\u{1f}])*"),
        t in any::<u64>(),
        sizes in (0usize..700, 0usize..3),
    ) {
        let mut message = incoming;
        message.id = id;
        message.t = t;
        if let Some(kind) = kind {
            message.kind = ContentKind::Other(kind);
        }
        // Every length modulo 3 (base64's padding), up to a few hundred bytes.
        if let Some(olm) = message.olm.as_mut() {
            olm.body = (0..sizes.0).map(|i| i as u8).collect();
        }
        if let Some(group) = message.group.as_mut() {
            group.truncate(sizes.1);
        }
        let event = PhoneEvent::Message { message };
        let text = event.to_text();
        prop_assert_eq!(&text, &serde_json::to_string(&event).unwrap());
        prop_assert_eq!(serde_json::from_str::<PhoneEvent>(&text).unwrap(), event);
    }

    /// An ack event, written field by field, is serde's text byte for byte, whatever its id
    /// holds, with and without a participant.
    #[test]
    fn an_ack_event_is_serdes_text(
        id in "(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}\u{2028}])*",
        level in any::<u8>(),
        sender in user(),
        chat in chat(),
        participant in option::of(user()),
        t in any::<u64>(),
    ) {
        let event = PhoneEvent::Ack { ack: AckNotice { id, level, sender, chat, participant, t } };
        let text = event.to_text();
        prop_assert_eq!(&text, &serde_json::to_string(&event).unwrap());
        prop_assert_eq!(serde_json::from_str::<PhoneEvent>(&text).unwrap(), event);
    }

    /// A relay or a receipt as `to_text` writes it is read by hand, not by serde, and as serde
    /// reads it, whatever its strings hold; a text with an escape in a string (a quote, a
    /// backslash, a control character) is left to serde, which reads it.
    #[test]
    fn canonical_requests_are_read_as_serde_reads_them(
        relay in relay(),
        receipt in receipt(),
        id in any::<u64>(),
        message_id in "(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}\u{2028}])*",
        kind in option::of("(\\PC|[\"\\\\\u{0}-\u{1f}])*"),
        body in 0usize..700,
    ) {
        let mut relay = relay;
        relay.id = message_id.clone();
        if let Some(kind) = kind {
            relay.kind = ContentKind::from(kind);
        }
        // Every length modulo 3 (base64's padding), up to a few hundred bytes.
        if let Some(olm) = relay.targets.iter_mut().find_map(|t| t.olm.as_mut()) {
            olm.body = (0..body).map(|i| i as u8).collect();
        }
        let mut receipt = receipt;
        receipt.id = message_id;
        for request in [PhoneRequest::Relay { id, relay }, PhoneRequest::Receipt { id, receipt }] {
            let text = request.to_text();
            let by_hand = wa_wire::fuzzing::canonical_phone_request(&text);
            prop_assert_eq!(by_hand.is_some(), !text.contains('\\'), "{}", text);
            if let Some(read) = by_hand {
                prop_assert_eq!(&read, &request);
            }
            prop_assert_eq!(serde_json::from_str::<PhoneRequest>(&text).unwrap(), request.clone());
            prop_assert_eq!(PhoneRequest::from_text(&text).unwrap(), request);
        }
    }

    /// `PhoneRequest::from_text` (in place for relays and receipts) accepts what serde's
    /// general way accepts, decodes it the same, and fails with the same message, on texts
    /// with one change: a byte replaced, a field added or repeated, the tag moved.
    #[test]
    fn phone_requests_decode_as_serde_does(
        relay in relay(),
        receipt in receipt(),
        id in any::<u32>(),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(&b"{}[]\",:0-9aeflnrstu\\ x\x7f"[..]),
        extra in prop::sample::select(&[
            r#""cmd":"ping","#, r#""cmd":"relay","#, r#""id":7,"#, r#""id":1.5,"#,
            r#""relay":null,"#, r#""receipt":{},"#, r#""x":[1,{"y":"z"}],"#, "",
        ][..]),
    ) {
        let id = u64::from(id);
        for request in [PhoneRequest::Relay { id, relay: relay.clone() }, PhoneRequest::Receipt { id, receipt: receipt.clone() }] {
            let text = request.to_text();
            let mut texts = Vec::new();
            // One byte replaced (where that leaves UTF-8).
            let mut bytes = text.clone().into_bytes();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            texts.extend(String::from_utf8(bytes).ok());
            // A field added after the tag, and before it.
            let tag_end = text.find(',').unwrap() + 1;
            texts.push(format!("{}{extra}{}", &text[..tag_end], &text[tag_end..]));
            texts.push(format!("{{{extra}{}", &text[1..]));
            for text in texts {
                let general = serde_json::from_str::<PhoneRequest>(&text).map_err(|e| e.to_string());
                let fast = PhoneRequest::from_text(&text).map_err(|e| e.to_string());
                prop_assert_eq!(fast, general, "{}", text);
            }
        }
    }

    #[test]
    fn json_pushes_round_trip(
        id in message_id(), level in 1u8..5, sender in user(), chat in chat(), participant in option::of(user()),
        t in any::<u32>(), state in presence_state(), op in group_op(), members in vec(user(), 0..4),
        subject in option::of("[ -~]{0,20}"),
    ) {
        let t = u64::from(t);
        let ack = AckNotice { id, level, sender: sender.clone(), chat: chat.clone(), participant, t };
        let json = wa_wire::json::ack(&ack);
        let Ok(wa_frame::ServerMessage::Msg(msg)) = wa_frame::ServerMessage::from_json(json) else {
            panic!("not a Msg")
        };
        prop_assert_eq!(wa_wire::json::read_ack(&msg), Some(ack));

        let presence = PresenceNotice { jid: sender.clone(), state, group: None, t };
        let json = wa_wire::json::presence(&presence);
        prop_assert!(matches!(wa_frame::ServerMessage::from_json(json), Ok(wa_frame::ServerMessage::Presence(_))));

        if let Ok(Chat::Group(group)) = Chat::from_jid(&chat) {
            let notice = GroupNotice { group, op, author: sender, participants: members, subject };
            let json = wa_wire::json::group_change(&notice);
            let Ok(wa_frame::ServerMessage::Chat(c)) = wa_frame::ServerMessage::from_json(json) else {
                panic!("not a Chat")
            };
            prop_assert_eq!(wa_wire::json::read_group_change(&c).unwrap(), Some(notice));
        }
    }

    #[test]
    fn qr_codes_round_trip(r in "[0-9]@[A-Za-z0-9]{1,30}", key in any::<[u8; 32]>(), client in "[A-Za-z0-9+/]{22}==", identity in option::of(identity())) {
        let qr = QrCode { r#ref: r, public_key: key, client_id: client, identity };
        prop_assert_eq!(QrCode::parse(&qr.to_string()).unwrap(), qr);
    }

    #[test]
    fn client_features_round_trip(identity in option::of(identity())) {
        let features = identity.map_or_else(ClientFeatures::default, ClientFeatures::end_to_end);
        let init = wa_frame::Init {
            version: [2, 2142, 12],
            browser: wa_frame::Browser { long: "a".into(), short: "b".into(), version: None },
            client_id: "AAECAwQFBgcICQoLDA0ODw==".into(),
            last: true,
            features: features.to_map(),
        };
        let json = wa_frame::Request::Init(init).to_json();
        let wa_frame::Request::Init(read) = wa_frame::Request::from_json(json) else { panic!("not init") };
        prop_assert_eq!(ClientFeatures::from_init(&read).unwrap(), features);
    }

    #[test]
    fn arbitrary_nodes_never_panic(node in arbitrary_node()) {
        let _ = Request::from_node(&node);
        let _ = ServerNode::from_node(&node);
    }
}

/// Nodes made of the vocabulary's own tags and attribute names with arbitrary values, so that the
/// readers meet near-misses, not only noise.
fn arbitrary_node() -> impl Strategy<Value = wa_binary::Node<'static>> {
    let tag = prop_oneof![
        Just("action"),
        Just("query"),
        Just("enc"),
        Just("olm"),
        Just("skmsg"),
        Just("received"),
        Just("read"),
        Just("presence"),
        Just("group"),
        Just("keys"),
        Just("otk"),
        Just("response"),
        Just("user"),
        Just("device"),
        Just("notification"),
        Just("message"),
        Just("chat"),
        Just("participant"),
    ];
    let key = prop_oneof![
        Just("type"),
        Just("add"),
        Just("to"),
        Just("from"),
        Just("id"),
        Just("jid"),
        Just("kind"),
        Just("t"),
        Just("index"),
        Just("curve"),
        Just("ed"),
        Just("key"),
        Just("count"),
        Just("epoch"),
        Just("chat"),
    ];
    let value = prop_oneof![
        Just("relay".to_owned()),
        Just("set".to_owned()),
        Just("devices".to_owned()),
        Just("prekeys".to_owned()),
        Just("15551234567@s.whatsapp.net".to_owned()),
        Just("15551234567:3@s.whatsapp.net".to_owned()),
        Just("pkmsg".to_owned()),
        "[ -~]{0,12}",
    ];
    let leaf = (
        tag.clone(),
        vec((key.clone(), value.clone()), 0..4),
        option::of(bytes()),
    )
        .prop_map(|(t, a, b)| {
            let mut n = wa_binary::Node::new(t);
            for (k, v) in a {
                n = n.with_attr(k, v);
            }
            match b {
                Some(b) => n.with_bytes(b),
                None => n,
            }
        });
    leaf.prop_recursive(3, 24, 6, move |inner| {
        (
            tag.clone(),
            vec((key.clone(), value.clone()), 0..4),
            vec(inner, 0..6),
        )
            .prop_map(|(t, a, c)| {
                let mut n = wa_binary::Node::new(t);
                for (k, v) in a {
                    n = n.with_attr(k, v);
                }
                n.with_children(c)
            })
    })
}
