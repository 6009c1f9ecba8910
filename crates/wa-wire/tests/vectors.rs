//! Every shape of the shared session vectors (`tests/data/session.json`: real-shaped server
//! traffic) parses into its wire type, and the types write the same shapes back.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::path::PathBuf;

use serde_json::Value;
use wa_frame::{Direction, Frame, Limits, ServerMessage, WsMessage};
use wa_wire::web::ServerNode;

fn data(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test data {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("test data {}: {e}", path.display()))
}

fn keys() -> wa_crypto::SessionKeys {
    let crypto = data("crypto.json");
    let hex32 = |field: &str| -> [u8; 32] {
        hex::decode(crypto["login"][field].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    wa_crypto::SessionKeys::new(&hex32("enc_key_hex"), &hex32("mac_key_hex"))
}

/// Every text frame in the vectors, with its meaning.
fn text_frames() -> Vec<(String, String)> {
    let session = data("session.json");
    let mut out = Vec::new();
    for section in ["link", "restore", "server_commands"] {
        for item in session[section].as_array().unwrap() {
            if item["kind"] == "text" {
                out.push((
                    item["data"].as_str().unwrap().to_owned(),
                    item["meaning"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    out
}

#[test]
fn every_server_json_message_has_a_type() {
    let mut acks = 0;
    let mut groups = 0;
    for (text, meaning) in text_frames() {
        // Replies are tagged with the request's tag in the vectors (`<init>`): any tag will do.
        let text = text.replace('<', "t").replace('>', "");
        let frame = Frame::parse(
            WsMessage::Text(&text),
            Direction::ServerToClient,
            &Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{meaning}: {e}"));
        let Frame::Json { payload, .. } = frame else {
            continue;
        };
        if payload.is_object() {
            // A reply: its status is typed by wa-frame, the relay and media replies by us.
            let map = payload.as_object().unwrap().clone();
            let response = wa_frame::Response::from_map(map);
            assert!(response.status.is_some(), "{meaning}");
            continue;
        }
        match ServerMessage::from_json(payload.clone()).unwrap_or_else(|e| panic!("{meaning}: {e}"))
        {
            ServerMessage::Msg(ack) => {
                let notice = wa_wire::json::read_ack(&ack).expect(&meaning);
                // The corrected vector: `from` is the sender, `to` the chat.
                assert_eq!(notice.sender.to_string(), "15551234567@c.us", "{meaning}");
                assert_eq!(notice.chat.to_string(), "15559876543@c.us", "{meaning}");
                assert_eq!(wa_wire::json::ack(&notice), payload, "{meaning}");
                acks += 1;
            }
            ServerMessage::MsgInfo(info) => {
                assert_eq!(info.from.as_deref(), Some("15551234567@c.us"), "{meaning}");
                assert_eq!(info.to.as_deref(), Some("15559876543@c.us"), "{meaning}");
                acks += 1;
            }
            ServerMessage::Chat(chat) => {
                let change = wa_wire::json::read_group_change(&chat)
                    .unwrap()
                    .expect(&meaning);
                assert_eq!(change.op, wa_wire::msg::GroupOp::Add);
                assert_eq!(wa_wire::json::group_change(&change), payload, "{meaning}");
                groups += 1;
            }
            ServerMessage::Stream(stream) if stream.is_asleep() => {
                assert_eq!(wa_wire::json::stream_asleep(), payload);
            }
            ServerMessage::Cmd(cmd) if cmd.is_replaced() => {
                assert_eq!(wa_wire::json::replaced(), payload)
            }
            ServerMessage::Pong(true) => assert_eq!(wa_wire::json::pong(true), payload),
            _ => {}
        }
    }
    assert_eq!((acks, groups), (2, 1));
}

#[test]
fn every_server_node_has_a_type() {
    let session = data("session.json");
    let keys = keys();
    let mut kinds = Vec::new();
    for item in session["binary"].as_array().unwrap() {
        let bytes = hex::decode(item["hex"].as_str().unwrap()).unwrap();
        let frame = Frame::parse(
            WsMessage::Binary(&bytes),
            Direction::ServerToClient,
            &Limits::default(),
        )
        .unwrap();
        let Frame::Binary { payload, .. } = frame else {
            panic!("not binary")
        };
        let plain = keys.open(&payload).unwrap();
        let node = wa_binary::decode(&plain).unwrap();
        let typed = ServerNode::from_node(&node).unwrap_or_else(|e| panic!("{e}: {node:?}"));
        // Writing it back gives the node again.
        assert_eq!(ServerNode::from_node(&typed.to_node()).unwrap(), typed);
        kinds.push(match typed {
            ServerNode::Chats(chats) => {
                assert!(!chats.is_empty());
                "chats"
            }
            ServerNode::Contacts(contacts) => {
                assert!(!contacts.is_empty());
                "contacts"
            }
            ServerNode::Action(push) => {
                assert!(
                    push.children
                        .iter()
                        .all(|c| matches!(c, wa_wire::legacy::ActionChild::Message(_)))
                );
                "messages"
            }
            other => panic!("unexpected {other:?}"),
        });
    }
    kinds.sort_unstable();
    assert_eq!(kinds, ["chats", "contacts", "messages", "messages"]);
}
