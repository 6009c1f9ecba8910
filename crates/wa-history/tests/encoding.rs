//! The two encodings really differ the way the platforms' exports do. Each export is parsed
//! independently (serde_json's `Value`, plist's `Value`) and compared with the history it came
//! from: epochs, order, field names, direction fields, status and type codes, content bytes.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use serde_json::Value as Json;
use wa_history::{Format, History, HistoryMessage, MessageStatus, export};
use wa_proto::prost::Message as _;

/// Android's and iOS's codes for each status, as the crate docs tabulate them.
const STATUS_CODES: [(MessageStatus, i64, i64); 6] = [
    (MessageStatus::Pending, 0, 1),
    (MessageStatus::ServerAck, 4, 2),
    (MessageStatus::Delivered, 5, 3),
    (MessageStatus::Read, 13, 6),
    (MessageStatus::Played, 8, 7),
    (MessageStatus::Error, -1, 12),
];

fn codes(status: MessageStatus) -> (i64, i64) {
    let (_, a, i) = STATUS_CODES.iter().find(|(s, _, _)| *s == status).unwrap();
    (*a, *i)
}

/// (Android, iOS) type codes of a content, from the table in the crate docs.
fn type_codes(m: &wa_proto::Message) -> (i64, i64) {
    if m.image_message.is_some() {
        (1, 1)
    } else if m.video_message.is_some() {
        (3, 2)
    } else if m.audio_message.is_some() {
        (2, 3)
    } else if m.document_message.is_some() {
        (9, 8)
    } else if m.sticker_message.is_some() {
        (20, 15)
    } else if m.location_message.is_some() {
        (5, 5)
    } else if m.protocol_message.is_some() {
        (15, 6)
    } else {
        (0, 0)
    }
}

fn is_plain(m: &wa_proto::Message) -> bool {
    m.conversation.is_some()
        && *m
            == wa_proto::Message {
                conversation: m.conversation.clone(),
                ..wa_proto::Message::default()
            }
}

fn history() -> History {
    // The fixed history has one of everything; add generated messages for volume, with
    // timestamps that tie so the tie-breaks are exercised.
    let mut h = fixed_history();
    let g = small_generated(3);
    h.chats.extend(g.chats.iter().cloned());
    h.messages.extend(g.messages.iter().cloned());
    h.sort_messages();
    h
}

#[test]
fn android_is_json_with_unix_seconds_oldest_first() {
    let h = history();
    let bytes = export(&h, Format::Android).unwrap();
    let doc: Json = serde_json::from_slice(&bytes).unwrap();

    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec!["chat_list", "jid", "messages", "version", "wa_contacts"];
    expected.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, expected);
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["jid"], "447700900123@s.whatsapp.net");

    let messages = doc["messages"].as_array().unwrap();
    assert_eq!(messages.len(), h.messages.len());
    // Ascending, in the canonical order: the same order as the (sorted) history.
    for (json, m) in messages.iter().zip(&h.messages) {
        assert_eq!(
            json["timestamp"].as_u64().unwrap(),
            m.timestamp,
            "Unix seconds"
        );
        assert_eq!(json["key_id"], m.id.as_str());
        assert_eq!(json["key_remote_jid"], m.chat.to_wire_string().as_str());
        assert_eq!(json["key_from_me"], i64::from(m.from_me));
        assert_eq!(
            json["remote_resource"].as_str(),
            m.sender.as_ref().map(|s| s.to_wire_string()).as_deref()
        );
        assert_eq!(json["status"], codes(m.status).0);
        assert_eq!(json["media_wa_type"], type_codes(&m.content).0);
        if is_plain(&m.content) {
            assert_eq!(json["data"], m.content.conversation.as_deref().unwrap());
            assert!(json["raw_data"].is_null());
        } else {
            let raw = STANDARD.decode(json["raw_data"].as_str().unwrap()).unwrap();
            assert_eq!(raw, m.content.encode_to_vec());
            assert_eq!(json["data"].as_str(), m.content.text());
        }
    }
    let ts: Vec<u64> = messages
        .iter()
        .map(|m| m["timestamp"].as_u64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "ascending");
    assert!(ts.windows(2).any(|w| w[0] < w[1]));

    let chats = doc["chat_list"].as_array().unwrap();
    for (json, c) in chats.iter().zip(&h.chats) {
        assert_eq!(json["key_remote_jid"], c.jid.to_wire_string().as_str());
        assert_eq!(json["subject"].as_str(), c.name.as_deref());
        assert_eq!(json["unseen_message_count"], c.unread);
        assert_eq!(json["sort_timestamp"], c.last_activity);
        assert_eq!(json["archived"], i64::from(c.archived));
    }
    let contacts = doc["wa_contacts"].as_array().unwrap();
    for (json, c) in contacts.iter().zip(&h.contacts) {
        assert_eq!(json["jid"], c.jid.to_wire_string().as_str());
        assert_eq!(json["display_name"].as_str(), c.name.as_deref());
        assert_eq!(json["wa_name"].as_str(), c.notify.as_deref());
    }
}

fn dict(v: &plist::Value) -> &plist::Dictionary {
    v.as_dictionary().unwrap()
}

fn int(v: &plist::Value) -> i64 {
    v.as_signed_integer().unwrap()
}

#[test]
fn ios_is_a_binary_plist_with_apple_epoch_reals_newest_first() {
    let h = history();
    let bytes = export(&h, Format::Ios).unwrap();
    assert!(bytes.starts_with(b"bplist00"));
    let root = plist::Value::from_reader(std::io::Cursor::new(&bytes)).unwrap();
    let root = dict(&root);
    let keys: Vec<&str> = root.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "ZVERSION",
            "ZOWNERJID",
            "ZWACHATSESSION",
            "ZWAADDRESSBOOKCONTACT",
            "ZWAMESSAGE"
        ]
    );
    assert_eq!(int(&root["ZVERSION"]), 1);
    assert_eq!(
        root["ZOWNERJID"].as_string(),
        Some("447700900123@s.whatsapp.net")
    );

    let messages = root["ZWAMESSAGE"].as_array().unwrap();
    assert_eq!(messages.len(), h.messages.len());
    // Newest first: the reverse of the canonical order.
    let newest_first: Vec<&HistoryMessage> = h.messages.iter().rev().collect();
    for (pm, m) in messages.iter().zip(newest_first) {
        let pm = dict(pm);
        let date = pm["ZMESSAGEDATE"]
            .as_real()
            .expect("ZMESSAGEDATE is a real");
        // Seconds since 2001-01-01, exactly.
        assert_eq!(date, (m.timestamp as f64) - 978_307_200.0);
        assert_eq!(date as i64 + 978_307_200, m.timestamp as i64);
        assert_eq!(pm["ZSTANZAID"].as_string(), Some(m.id.as_str()));
        assert_eq!(pm["ZISFROMME"].as_boolean(), Some(m.from_me));
        let chat = m.chat.to_wire_string();
        // The other party: sender of incoming messages, recipient of outgoing ones.
        if m.from_me {
            assert_eq!(pm["ZTOJID"].as_string(), Some(chat.as_str()));
            assert!(!pm.contains_key("ZFROMJID"));
        } else {
            assert_eq!(pm["ZFROMJID"].as_string(), Some(chat.as_str()));
            assert!(!pm.contains_key("ZTOJID"));
        }
        assert_eq!(
            pm.get("ZGROUPMEMBERJID").and_then(plist::Value::as_string),
            m.sender.as_ref().map(|s| s.to_wire_string()).as_deref()
        );
        assert_eq!(int(&pm["ZMESSAGESTATUS"]), codes(m.status).1);
        assert_eq!(int(&pm["ZMESSAGETYPE"]), type_codes(&m.content).1);
        if is_plain(&m.content) {
            assert_eq!(pm["ZTEXT"].as_string(), m.content.conversation.as_deref());
            assert!(!pm.contains_key("ZMEDIAITEM"));
        } else {
            assert_eq!(
                pm["ZMEDIAITEM"].as_data(),
                Some(&m.content.encode_to_vec()[..])
            );
            assert_eq!(
                pm.get("ZTEXT").and_then(plist::Value::as_string),
                m.content.text()
            );
        }
    }
    let dates: Vec<f64> = messages
        .iter()
        .map(|m| dict(m)["ZMESSAGEDATE"].as_real().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "descending");

    let chats = root["ZWACHATSESSION"].as_array().unwrap();
    for (pc, c) in chats.iter().zip(&h.chats) {
        let pc = dict(pc);
        assert_eq!(
            pc["ZCONTACTJID"].as_string(),
            Some(c.jid.to_wire_string().as_str())
        );
        assert_eq!(
            pc.get("ZPARTNERNAME").and_then(plist::Value::as_string),
            c.name.as_deref()
        );
        assert_eq!(int(&pc["ZUNREADCOUNT"]), i64::from(c.unread));
        assert_eq!(
            pc["ZLASTMESSAGEDATE"].as_real(),
            Some(c.last_activity as f64 - 978_307_200.0)
        );
        assert_eq!(pc["ZARCHIVED"].as_boolean(), Some(c.archived));
    }
    let contacts = root["ZWAADDRESSBOOKCONTACT"].as_array().unwrap();
    for (pc, c) in contacts.iter().zip(&h.contacts) {
        let pc = dict(pc);
        assert_eq!(
            pc["ZWHATSAPPID"].as_string(),
            Some(c.jid.to_wire_string().as_str())
        );
        assert_eq!(
            pc.get("ZFULLNAME").and_then(plist::Value::as_string),
            c.name.as_deref()
        );
        assert_eq!(
            pc.get("ZPUSHNAME").and_then(plist::Value::as_string),
            c.notify.as_deref()
        );
    }
}

#[test]
fn the_formats_disagree_on_every_status_code() {
    let android: Vec<i64> = STATUS_CODES.iter().map(|c| c.1).collect();
    let ios: Vec<i64> = STATUS_CODES.iter().map(|c| c.2).collect();
    assert!(android.iter().all(|a| !ios.contains(a)));
    // And the exports carry them: every status appears in the history.
    let h = history();
    for (status, _, _) in STATUS_CODES {
        assert!(h.messages.iter().any(|m| m.status == status));
    }
}

#[test]
fn apple_epoch_reals_are_exact_across_the_whole_range() {
    // Whole seconds at the edges of the accepted range and around the epochs survive the real.
    for unix in [
        wa_history::MIN_TIMESTAMP,
        wa_history::MIN_TIMESTAMP + 1,
        978_307_200 + (1 << 30),
        1_589_256_438,
        wa_history::END_TIMESTAMP - 1,
    ] {
        let mut h = fixed_history();
        h.messages[0].timestamp = unix;
        h.chats[0].last_activity = unix;
        h.sort_messages();
        let bytes = export(&h, Format::Ios).unwrap();
        assert_eq!(wa_history::import(&bytes, Format::Ios).unwrap(), h);
    }
}
