//! Every rejection of the strict importers (and of the exporter's rule check), each asserting
//! what the error says and where. Malformed exports are made from the golden files, edited as
//! serde_json or plist values (or as bytes where those cannot express the fault).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use plist::Value as Plist;
use serde_json::{Value as Json, json};
use wa_history::{
    ExportError, Format, ImportError, Limits, Problem, export, import, import_with_limits,
};
use wa_proto::prost::Message as _;

const ANDROID: &[u8] = include_bytes!("data/android.json");
const IOS: &[u8] = include_bytes!("data/ios.plist");

/// Asserts that `result` failed at `at` with a problem matching `pattern`, and that the message
/// says where.
macro_rules! assert_rejected {
    ($result:expr, $at:expr, $pattern:pat) => {{
        let e: ImportError = match $result {
            Ok(_) => panic!("imported, expected an error at {:?}", $at),
            Err(e) => e,
        };
        assert_eq!(e.at(), $at, "wrong place: {e}");
        assert!(matches!(e.problem(), $pattern), "wrong problem: {e}");
        assert!(e.to_string().contains($at), "{e}");
        e
    }};
}

fn android_doc() -> Json {
    serde_json::from_slice(ANDROID).unwrap()
}

fn android_with(edit: impl FnOnce(&mut Json)) -> Vec<u8> {
    let mut doc = android_doc();
    edit(&mut doc);
    serde_json::to_vec(&doc).unwrap()
}

fn android(edit: impl FnOnce(&mut Json)) -> Result<wa_history::History, ImportError> {
    import(&android_with(edit), Format::Android)
}

fn ios_root() -> plist::Dictionary {
    Plist::from_reader(std::io::Cursor::new(IOS))
        .unwrap()
        .into_dictionary()
        .unwrap()
}

fn ios_bytes(root: plist::Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    Plist::Dictionary(root).to_writer_binary(&mut out).unwrap();
    out
}

fn ios_with(edit: impl FnOnce(&mut plist::Dictionary)) -> Vec<u8> {
    let mut root = ios_root();
    edit(&mut root);
    ios_bytes(root)
}

fn ios(edit: impl FnOnce(&mut plist::Dictionary)) -> Result<wa_history::History, ImportError> {
    import(&ios_with(edit), Format::Ios)
}

/// Entry `i` of the iOS array `list`.
fn entry<'a>(root: &'a mut plist::Dictionary, list: &str, i: usize) -> &'a mut plist::Dictionary {
    root.get_mut(list).unwrap().as_array_mut().unwrap()[i]
        .as_dictionary_mut()
        .unwrap()
}

fn b64(m: &wa_proto::Message) -> String {
    STANDARD.encode(m.encode_to_vec())
}

#[test]
fn unedited_golden_files_import() {
    // The baseline every edit below starts from.
    assert!(android(|_| {}).is_ok());
    assert!(ios(|_| {}).is_ok());
}

// ---------------------------------------------------------------------------------------------
// The container.

#[test]
fn the_other_platforms_export_is_named() {
    let e = assert_rejected!(
        import(IOS, Format::Android),
        "",
        Problem::WrongFormat {
            expected: Format::Android,
            found: Format::Ios
        }
    );
    assert_eq!(
        e.to_string(),
        "Android history export: this is an iOS export, not Android"
    );
    let e = assert_rejected!(
        import(ANDROID, Format::Ios),
        "",
        Problem::WrongFormat {
            expected: Format::Ios,
            found: Format::Android
        }
    );
    assert_eq!(
        e.to_string(),
        "iOS history export: this is an Android export, not iOS"
    );
    // Leading whitespace does not hide a JSON object.
    let mut spaced = b"  \n".to_vec();
    spaced.extend_from_slice(ANDROID);
    assert_rejected!(
        import(&spaced, Format::Ios),
        "",
        Problem::WrongFormat { .. }
    );
}

#[test]
fn not_json_and_not_a_binary_plist() {
    assert_rejected!(
        import(b"{\"version\": 1,", Format::Android),
        "",
        Problem::Malformed {
            container: "JSON",
            ..
        }
    );
    assert_rejected!(
        import(b"[1, 2]", Format::Android),
        "",
        Problem::WrongType {
            expected: "an object",
            ..
        }
    );
    let mut xml = Vec::new();
    Plist::Dictionary(ios_root())
        .to_writer_xml(&mut xml)
        .unwrap();
    let e = assert_rejected!(import(&xml, Format::Ios), "", Problem::Malformed { .. });
    assert!(e.to_string().contains("bplist00"), "{e}");
    let mut v1 = IOS.to_vec();
    v1[7] = b'1';
    assert_rejected!(import(&v1, Format::Ios), "", Problem::Malformed { .. });
    assert_rejected!(import(b"", Format::Ios), "", Problem::Malformed { .. });
    assert_rejected!(import(b"", Format::Android), "", Problem::Malformed { .. });
}

#[test]
fn trailing_data() {
    for tail in [&b"x"[..], b"{}", b"\0"] {
        let mut bytes = ANDROID.to_vec();
        bytes.extend_from_slice(tail);
        assert_rejected!(import(&bytes, Format::Android), "", Problem::TrailingData);
        let mut bytes = IOS.to_vec();
        bytes.extend_from_slice(tail);
        // The trailer is the last 32 bytes: whatever follows it breaks it.
        let e = assert_rejected!(import(&bytes, Format::Ios), "", Problem::Malformed { .. });
        assert!(e.to_string().contains("trailer"), "{e}");
    }
}

#[test]
fn unknown_versions() {
    assert_rejected!(
        android(|d| d["version"] = json!(2)),
        "version",
        Problem::UnsupportedVersion { supported: 1, .. }
    );
    assert_rejected!(
        android(|d| d["version"] = json!("1")),
        "version",
        Problem::WrongType {
            expected: "an integer",
            ..
        }
    );
    assert_rejected!(
        ios(|r| {
            r.insert("ZVERSION".into(), Plist::Integer(2.into()));
        }),
        "ZVERSION",
        Problem::UnsupportedVersion { supported: 1, .. }
    );
    assert_rejected!(
        ios(|r| {
            r.insert("ZVERSION".into(), Plist::Real(1.0));
        }),
        "ZVERSION",
        Problem::WrongType {
            expected: "an integer",
            ..
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Fields: presence, names, types.

#[test]
fn missing_fields() {
    assert_rejected!(
        android(|d| {
            d.as_object_mut().unwrap().remove("messages");
        }),
        "",
        Problem::MissingField("messages")
    );
    assert_rejected!(
        android(|d| {
            d["messages"][2]
                .as_object_mut()
                .unwrap()
                .remove("timestamp");
        }),
        "messages[2]",
        Problem::MissingField("timestamp")
    );
    // Nullable is not optional: the field must be there, with null.
    assert_rejected!(
        android(|d| {
            d["chat_list"][2].as_object_mut().unwrap().remove("subject");
        }),
        "chat_list[2]",
        Problem::MissingField("subject")
    );
    assert_rejected!(
        ios(|r| {
            r.remove("ZWAADDRESSBOOKCONTACT");
        }),
        "",
        Problem::MissingField("ZWAADDRESSBOOKCONTACT")
    );
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 2).remove("ZMESSAGEDATE");
        }),
        "ZWAMESSAGE[2]",
        Problem::MissingField("ZMESSAGEDATE")
    );
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWACHATSESSION", 1).remove("ZARCHIVED");
        }),
        "ZWACHATSESSION[1]",
        Problem::MissingField("ZARCHIVED")
    );
}

#[test]
fn unknown_fields() {
    let e = assert_rejected!(
        android(|d| d["extra"] = json!(1)),
        "",
        Problem::UnknownField(_)
    );
    assert!(e.to_string().contains("`extra`"), "{e}");
    assert_rejected!(
        android(|d| d["messages"][4]["starred"] = json!(0)),
        "messages[4]",
        Problem::UnknownField(_)
    );
    assert_rejected!(
        android(|d| d["wa_contacts"][0]["status"] = json!(null)),
        "wa_contacts[0]",
        Problem::UnknownField(_)
    );
    assert_rejected!(
        ios(|r| {
            r.insert("Z_METADATA".into(), Plist::Boolean(true));
        }),
        "",
        Problem::UnknownField(_)
    );
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 4).insert("ZSTARRED".into(), Plist::Boolean(true));
        }),
        "ZWAMESSAGE[4]",
        Problem::UnknownField(_)
    );
}

#[test]
fn duplicate_fields() {
    // JSON objects with a repeated key: serde_json's Value cannot hold them, so edit the text.
    let text = std::str::from_utf8(ANDROID).unwrap();
    let dup = text.replacen("{\"version\":1,", "{\"version\":1,\"version\":1,", 1);
    assert_rejected!(
        import(dup.as_bytes(), Format::Android),
        "",
        Problem::DuplicateField(_)
    );
    let dup = text.replacen(
        "\"key_id\":\"B0\",",
        "\"key_id\":\"B0\",\"key_id\":\"B0\",",
        1,
    );
    assert_rejected!(
        import(dup.as_bytes(), Format::Android),
        "messages[0]",
        Problem::DuplicateField(_)
    );
    // A binary plist dictionary with a repeated key, written with plist's event writer.
    use plist::stream::{BinaryWriter, Writer};
    let mut out = Vec::new();
    let mut w = BinaryWriter::new(&mut out);
    w.write_start_dictionary(None).unwrap();
    for _ in 0..2 {
        w.write_string("ZVERSION".into()).unwrap();
        w.write_integer(1.into()).unwrap();
    }
    w.write_end_collection().unwrap();
    assert_rejected!(import(&out, Format::Ios), "", Problem::DuplicateField(_));
}

#[test]
fn wrong_types() {
    let e = assert_rejected!(
        android(|d| d["messages"][3]["timestamp"] = json!("1589256600")),
        "messages[3].timestamp",
        Problem::WrongType {
            expected: "an integer",
            ..
        }
    );
    assert_eq!(
        e.to_string(),
        "Android history export, messages[3].timestamp: expected an integer, found the string \"1589256600\""
    );
    assert_rejected!(
        android(|d| d["messages"][3]["timestamp"] = json!(1_589_256_600.5)),
        "messages[3].timestamp",
        Problem::WrongType {
            expected: "an integer",
            ..
        }
    );
    assert_rejected!(
        android(|d| d["messages"][1]["key_from_me"] = json!(true)),
        "messages[1].key_from_me",
        Problem::WrongType {
            expected: "an integer",
            ..
        }
    );
    assert_rejected!(
        android(|d| d["messages"][1]["data"] = json!(["text"])),
        "messages[1].data",
        Problem::WrongType {
            expected: "a string",
            ..
        }
    );
    assert_rejected!(
        android(|d| d["messages"] = json!({})),
        "messages",
        Problem::WrongType {
            expected: "an array",
            ..
        }
    );
    assert_rejected!(
        android(|d| d["messages"][1] = json!(5)),
        "messages[1]",
        Problem::WrongType {
            expected: "an object",
            ..
        }
    );
    assert_rejected!(
        android(|d| d["jid"] = json!(null)),
        "jid",
        Problem::WrongType {
            expected: "a string",
            ..
        }
    );

    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 3)
                .insert("ZMESSAGEDATE".into(), Plist::Integer(610_949_400.into()));
        }),
        "ZWAMESSAGE[3].ZMESSAGEDATE",
        Problem::WrongType {
            expected: "a real",
            ..
        }
    );
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 3).insert("ZISFROMME".into(), Plist::Integer(0.into()));
        }),
        "ZWAMESSAGE[3].ZISFROMME",
        Problem::WrongType {
            expected: "a boolean",
            ..
        }
    );
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 4).insert("ZMEDIAITEM".into(), Plist::String("x".into()));
        }),
        "ZWAMESSAGE[4].ZMEDIAITEM",
        Problem::WrongType {
            expected: "data",
            ..
        }
    );
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 4).insert("ZTEXT".into(), Plist::Array(vec![]));
        }),
        "ZWAMESSAGE[4].ZTEXT",
        Problem::WrongType {
            expected: "a string",
            ..
        }
    );
    assert_rejected!(
        ios(|r| {
            r.get_mut("ZWAMESSAGE").unwrap().as_array_mut().unwrap()[1] = Plist::Array(vec![]);
        }),
        "ZWAMESSAGE[1]",
        Problem::WrongType {
            expected: "a dictionary",
            ..
        }
    );
    assert_rejected!(
        ios(|r| {
            r.insert(
                "ZWAMESSAGE".into(),
                Plist::Dictionary(plist::Dictionary::new()),
            );
        }),
        "ZWAMESSAGE",
        Problem::WrongType {
            expected: "an array",
            ..
        }
    );
    let mut out = Vec::new();
    Plist::Array(vec![]).to_writer_binary(&mut out).unwrap();
    assert_rejected!(
        import(&out, Format::Ios),
        "",
        Problem::WrongType {
            expected: "a dictionary",
            ..
        }
    );
}

#[test]
fn numbers_out_of_range() {
    assert_rejected!(
        android(|d| d["messages"][1]["key_from_me"] = json!(2)),
        "messages[1].key_from_me",
        Problem::NotAFlag(2)
    );
    assert_rejected!(
        android(|d| d["chat_list"][0]["archived"] = json!(-1)),
        "chat_list[0].archived",
        Problem::NotAFlag(-1)
    );
    assert_rejected!(
        android(|d| d["chat_list"][0]["unseen_message_count"] = json!(-1)),
        "chat_list[0].unseen_message_count",
        Problem::OutOfRange { .. }
    );
    assert_rejected!(
        android(|d| d["chat_list"][0]["unseen_message_count"] = json!(1_u64 << 32)),
        "chat_list[0].unseen_message_count",
        Problem::OutOfRange { .. }
    );
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWACHATSESSION", 0)
                .insert("ZUNREADCOUNT".into(), Plist::Integer((-3).into()));
        }),
        "ZWACHATSESSION[0].ZUNREADCOUNT",
        Problem::OutOfRange { .. }
    );
}

// ---------------------------------------------------------------------------------------------
// Values.

#[test]
fn timestamps_out_of_range() {
    for bad in [
        json!(0),
        json!(1_230_767_999),
        json!(4_102_444_800_u64),
        json!(-5),
        json!(u64::MAX),
    ] {
        assert_rejected!(
            android(|d| d["messages"][0]["timestamp"] = bad.clone()),
            "messages[0].timestamp",
            Problem::TimestampOutOfRange { .. }
        );
    }
    assert_rejected!(
        android(|d| d["chat_list"][1]["sort_timestamp"] = json!(1_000)),
        "chat_list[1].sort_timestamp",
        Problem::TimestampOutOfRange { unix: 1_000 }
    );
    // iOS: seconds since 2001. 0 is 2001-01-01, before 2009.
    let e = assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 0).insert("ZMESSAGEDATE".into(), Plist::Real(0.0));
        }),
        "ZWAMESSAGE[0].ZMESSAGEDATE",
        Problem::TimestampOutOfRange { unix: 978_307_200 }
    );
    assert!(e.to_string().contains("978307200"), "{e}");
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 0).insert("ZMESSAGEDATE".into(), Plist::Real(1e300));
        }),
        "ZWAMESSAGE[0].ZMESSAGEDATE",
        Problem::TimestampOutOfRange { .. }
    );
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_rejected!(
            ios(|r| {
                entry(r, "ZWAMESSAGE", 0).insert("ZMESSAGEDATE".into(), Plist::Real(bad));
            }),
            "ZWAMESSAGE[0].ZMESSAGEDATE",
            Problem::OutOfRange { .. }
        );
    }
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 0).insert("ZMESSAGEDATE".into(), Plist::Real(610_993_300.5));
        }),
        "ZWAMESSAGE[0].ZMESSAGEDATE",
        Problem::NotWholeSeconds(_)
    );
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWACHATSESSION", 2).insert("ZLASTMESSAGEDATE".into(), Plist::Real(-1e6));
        }),
        "ZWACHATSESSION[2].ZLASTMESSAGEDATE",
        Problem::TimestampOutOfRange { .. }
    );
}

#[test]
fn invalid_jids() {
    let e = assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 3)
                .insert("ZFROMJID".into(), Plist::String("15551234567@".into()));
        }),
        "ZWAMESSAGE[3].ZFROMJID",
        Problem::NotAJid { .. }
    );
    assert!(e.to_string().contains("not a JID"), "{e}");
    assert_rejected!(
        android(|d| d["messages"][3]["remote_resource"] = json!("a@b@c")),
        "messages[3].remote_resource",
        Problem::NotAJid { .. }
    );
    assert_rejected!(
        android(|d| d["chat_list"][0]["key_remote_jid"] = json!("15551234567.1:2@s.whatsapp.net")),
        "chat_list[0].key_remote_jid",
        Problem::WrongJidKind { .. }
    );
    assert_rejected!(
        android(|d| d["jid"] = json!("447700900123-1589256438@g.us")),
        "jid",
        Problem::WrongJidKind { .. }
    );
    assert_rejected!(
        android(|d| d["wa_contacts"][1]["jid"] = json!("status@broadcast")),
        "wa_contacts[1].jid",
        Problem::WrongJidKind { .. }
    );
    assert_rejected!(
        android(|d| d["chat_list"][0]["key_remote_jid"] = json!("x@example.com")),
        "chat_list[0].key_remote_jid",
        Problem::WrongJidKind { .. }
    );
    assert_rejected!(
        android(|d| d["jid"] = json!(format!("{}@s.whatsapp.net", "1".repeat(300)))),
        "jid",
        Problem::JidTooLong { .. }
    );
    // iOS: the group member of ZWAMESSAGE[4] (G1) as a device JID, the owner as a group.
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 4).insert(
                "ZGROUPMEMBERJID".into(),
                Plist::String("15551234567:3@s.whatsapp.net".into()),
            );
        }),
        "ZWAMESSAGE[4].ZGROUPMEMBERJID",
        Problem::WrongJidKind { .. }
    );
    assert_rejected!(
        ios(|r| {
            r.insert("ZOWNERJID".into(), Plist::String("s.whatsapp.net".into()));
        }),
        "ZOWNERJID",
        Problem::WrongJidKind { .. }
    );
}

#[test]
fn invalid_message_ids() {
    for bad in ["", "a,b", "with space", "é", &"x".repeat(129)] {
        assert_rejected!(
            android(|d| d["messages"][0]["key_id"] = json!(bad)),
            "messages[0].key_id",
            Problem::BadMessageId { .. }
        );
        assert_rejected!(
            ios(|r| {
                entry(r, "ZWAMESSAGE", 7).insert("ZSTANZAID".into(), Plist::String(bad.into()));
            }),
            "ZWAMESSAGE[7].ZSTANZAID",
            Problem::BadMessageId { .. }
        );
    }
    // 128 printable bytes are fine.
    let long = "~".repeat(128);
    assert!(android(|d| d["messages"][0]["key_id"] = json!(long)).is_ok());
}

#[test]
fn duplicate_message_ids_within_a_chat() {
    // messages[1] and [2] are both in Alice's chat.
    let e = assert_rejected!(
        android(|d| d["messages"][2]["key_id"] = json!("3EB0A1")),
        "messages[2].key_id",
        Problem::DuplicateMessageId { first: 1, .. }
    );
    assert!(e.to_string().contains("appears twice"), "{e}");
    // The same id in another chat is another message.
    assert!(android(|d| d["messages"][0]["key_id"] = json!("3EB0A1")).is_ok());
    // iOS: ZWAMESSAGE[5] (A2) and [6] (3EB0A1), newest first.
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 6).insert("ZSTANZAID".into(), Plist::String("A2".into()));
        }),
        "ZWAMESSAGE[6].ZSTANZAID",
        Problem::DuplicateMessageId { first: 5, .. }
    );
}

#[test]
fn duplicate_chats_and_contacts() {
    assert_rejected!(
        android(|d| {
            let first = d["chat_list"][0].clone();
            d["chat_list"].as_array_mut().unwrap().push(first);
        }),
        "chat_list[3].key_remote_jid",
        Problem::DuplicateChat { first: 0, .. }
    );
    assert_rejected!(
        ios(|r| {
            let contacts = r
                .get_mut("ZWAADDRESSBOOKCONTACT")
                .unwrap()
                .as_array_mut()
                .unwrap();
            let second = contacts[1].clone();
            contacts.push(second);
        }),
        "ZWAADDRESSBOOKCONTACT[3].ZWHATSAPPID",
        Problem::DuplicateContact { first: 1, .. }
    );
}

#[test]
fn messages_in_unlisted_chats() {
    // Bob's chat (chat_list[2]) holds messages[0].
    let e = assert_rejected!(
        android(|d| {
            d["chat_list"].as_array_mut().unwrap().remove(2);
        }),
        "messages[0].key_remote_jid",
        Problem::UnknownChat(_)
    );
    assert!(
        e.to_string().contains("4915112345678@s.whatsapp.net"),
        "{e}"
    );
    // iOS names the chat of an incoming message in ZFROMJID, of an outgoing one in ZTOJID.
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 7).insert(
                "ZFROMJID".into(),
                Plist::String("19995550000@s.whatsapp.net".into()),
            );
        }),
        "ZWAMESSAGE[7].ZFROMJID",
        Problem::UnknownChat(_)
    );
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 6).insert(
                "ZTOJID".into(),
                Plist::String("19995550000@s.whatsapp.net".into()),
            );
        }),
        "ZWAMESSAGE[6].ZTOJID",
        Problem::UnknownChat(_)
    );
}

#[test]
fn senders_where_there_can_be_none() {
    assert_rejected!(
        android(|d| d["messages"][2]["remote_resource"] = json!("15550001111@s.whatsapp.net")),
        "messages[2].remote_resource",
        Problem::UnexpectedSender(_)
    );
    // messages[5] is the owner's own message in the group.
    assert_rejected!(
        android(|d| d["messages"][5]["remote_resource"] = json!("15550001111@s.whatsapp.net")),
        "messages[5].remote_resource",
        Problem::UnexpectedSender(_)
    );
}

#[test]
fn ios_direction_fields() {
    // ZWAMESSAGE[0] (G4) is incoming: its chat is ZFROMJID.
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 0).insert(
                "ZTOJID".into(),
                Plist::String("447700900123@s.whatsapp.net".into()),
            );
        }),
        "ZWAMESSAGE[0].ZTOJID",
        Problem::Direction(_)
    );
    // ZWAMESSAGE[1] (3EB0A3) is outgoing: its chat is ZTOJID.
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 1).insert(
                "ZFROMJID".into(),
                Plist::String("447700900123@s.whatsapp.net".into()),
            );
        }),
        "ZWAMESSAGE[1].ZFROMJID",
        Problem::Direction(_)
    );
    // Flipping ZISFROMME alone leaves the chat in the wrong field.
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 1).insert("ZISFROMME".into(), Plist::Boolean(false));
        }),
        "ZWAMESSAGE[1].ZTOJID",
        Problem::Direction(_)
    );
    // Neither field: the message has no chat.
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 1).remove("ZTOJID");
        }),
        "ZWAMESSAGE[1]",
        Problem::MissingField("ZTOJID")
    );
}

#[test]
fn content_that_is_not_a_message_protobuf() {
    assert_rejected!(
        android(|d| d["messages"][3]["raw_data"] = json!("AAAA")),
        "messages[3].raw_data",
        Problem::BadProtobuf(_)
    );
    assert_rejected!(
        android(|d| d["messages"][3]["raw_data"] = json!("not base64!")),
        "messages[3].raw_data",
        Problem::BadBase64(_)
    );
    // Non-canonical padding bits.
    assert_rejected!(
        android(|d| d["messages"][3]["raw_data"] = json!("Cg9=")),
        "messages[3].raw_data",
        Problem::BadBase64(_)
    );
    // A plain text belongs in `data`.
    assert_rejected!(
        android(|d| {
            d["messages"][3]["raw_data"] = json!(b64(&text("the view")));
            d["messages"][3]["data"] = json!("the view");
        }),
        "messages[3].raw_data",
        Problem::PlainTextAsRaw
    );
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 4).insert("ZMEDIAITEM".into(), Plist::Data(vec![0xff, 0xff]));
        }),
        "ZWAMESSAGE[4].ZMEDIAITEM",
        Problem::BadProtobuf(_)
    );
    // Truncated protobuf.
    let mut image = image_full(1, Some("the view")).encode_to_vec();
    image.truncate(image.len() / 2);
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 4).insert("ZMEDIAITEM".into(), Plist::Data(image));
        }),
        "ZWAMESSAGE[4].ZMEDIAITEM",
        Problem::BadProtobuf(_)
    );
}

#[test]
fn quotes_nested_too_deep() {
    let mut m = text("bottom");
    for i in 0..=wa_history::MAX_QUOTE_DEPTH {
        m = quote(&format!("level {i}"), "Q", m);
    }
    assert_rejected!(
        android(|d| {
            d["messages"][6]["raw_data"] = json!(b64(&m));
            d["messages"][6]["data"] = json!(m.text());
        }),
        "messages[6].raw_data",
        Problem::QuotesTooDeep { .. }
    );
    // Deeper than prost's recursion limit: not even a valid protobuf.
    for i in 0..40 {
        m = quote(&format!("level {i}"), "Q", m);
    }
    assert_rejected!(
        android(|d| {
            d["messages"][6]["raw_data"] = json!(b64(&m));
            d["messages"][6]["data"] = json!(m.text());
        }),
        "messages[6].raw_data",
        Problem::BadProtobuf(_)
    );
}

#[test]
fn stored_text_and_type_must_match_the_content() {
    assert_rejected!(
        android(|d| d["messages"][3]["data"] = json!("another caption")),
        "messages[3].data",
        Problem::TextMismatch { .. }
    );
    assert_rejected!(
        android(|d| d["messages"][4]["data"] = json!("audio has no text")),
        "messages[4].data",
        Problem::TextMismatch { .. }
    );
    let e = assert_rejected!(
        android(|d| d["messages"][3]["media_wa_type"] = json!(9)),
        "messages[3].media_wa_type",
        Problem::TypeMismatch {
            found: 9,
            expected: 1,
            ..
        }
    );
    assert!(e.to_string().contains("image"), "{e}");
    // iOS's code for a video (2) is Android's code for audio: G1 is an image.
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 4).insert("ZMESSAGETYPE".into(), Plist::Integer(9.into()));
        }),
        "ZWAMESSAGE[4].ZMESSAGETYPE",
        Problem::TypeMismatch {
            found: 9,
            expected: 1,
            ..
        }
    );
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 4).remove("ZTEXT");
        }),
        "ZWAMESSAGE[4].ZTEXT",
        Problem::TextMismatch { .. }
    );
    assert_rejected!(
        android(|d| d["messages"][0]["data"] = json!(null)),
        "messages[0].data",
        Problem::NoContent
    );
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 7).remove("ZTEXT");
        }),
        "ZWAMESSAGE[7].ZTEXT",
        Problem::NoContent
    );
}

#[test]
fn status_codes_of_the_other_platform_are_rejected() {
    // 13 is Android's "read"; iOS does not have it.
    assert_rejected!(
        ios(|r| {
            entry(r, "ZWAMESSAGE", 0).insert("ZMESSAGESTATUS".into(), Plist::Integer(13.into()));
        }),
        "ZWAMESSAGE[0].ZMESSAGESTATUS",
        Problem::UnknownStatus(13)
    );
    // 6 is iOS's "read"; Android does not have it.
    assert_rejected!(
        android(|d| d["messages"][0]["status"] = json!(6)),
        "messages[0].status",
        Problem::UnknownStatus(6)
    );
}

#[test]
fn messages_out_of_the_formats_order() {
    assert_rejected!(
        android(|d| d["messages"].as_array_mut().unwrap().swap(1, 2)),
        "messages[2]",
        Problem::OutOfOrder(_)
    );
    // G1 and G2 share a timestamp: the tie is broken by id.
    assert_rejected!(
        android(|d| d["messages"].as_array_mut().unwrap().swap(3, 4)),
        "messages[4]",
        Problem::OutOfOrder(_)
    );
    // The Android order given to the iOS importer.
    let e = assert_rejected!(
        ios(|r| r
            .get_mut("ZWAMESSAGE")
            .unwrap()
            .as_array_mut()
            .unwrap()
            .reverse()),
        "ZWAMESSAGE[1]",
        Problem::OutOfOrder(_)
    );
    assert!(e.to_string().contains("newest first"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Limits.

#[test]
fn texts_over_the_limit() {
    // Names are at most 14 bytes ("Café crew ☕"); "ok! 👍 à tout à l'heure" is 27.
    let limits = Limits::default().with_max_text_len(20);
    assert_rejected!(
        import_with_limits(ANDROID, Format::Android, &limits),
        "messages[2].data",
        Problem::TextTooLong { len: 27, max: 20 }
    );
    assert_rejected!(
        import_with_limits(IOS, Format::Ios, &limits),
        "ZWAMESSAGE[5].ZTEXT",
        Problem::TextTooLong { len: 27, max: 20 }
    );
    // JIDs and ids are not texts: their own limits apply.
    let limits = Limits::default().with_max_text_len(4);
    assert_rejected!(
        import_with_limits(ANDROID, Format::Android, &limits),
        "chat_list[0].subject",
        Problem::TextTooLong { len: 5, max: 4 }
    );
    assert_rejected!(
        import_with_limits(IOS, Format::Ios, &limits),
        "ZWACHATSESSION[0].ZPARTNERNAME",
        Problem::TextTooLong { len: 5, max: 4 }
    );
}

#[test]
fn counts_over_the_limits() {
    let cases = [
        (
            Limits::default().with_max_messages(7),
            "messages",
            "ZWAMESSAGE",
            "max_messages",
        ),
        (
            Limits::default().with_max_chats(2),
            "chat_list",
            "ZWACHATSESSION",
            "max_chats",
        ),
        (
            Limits::default().with_max_contacts(2),
            "wa_contacts",
            "ZWAADDRESSBOOKCONTACT",
            "max_contacts",
        ),
    ];
    for (limits, android_at, ios_at, name) in cases {
        let e = assert_rejected!(
            import_with_limits(ANDROID, Format::Android, &limits),
            android_at,
            Problem::TooMany { .. }
        );
        assert!(e.to_string().contains(name), "{e}");
        assert_rejected!(
            import_with_limits(IOS, Format::Ios, &limits),
            ios_at,
            Problem::TooMany { .. }
        );
    }
    // Exactly at the limit is fine.
    let limits = Limits::default()
        .with_max_messages(8)
        .with_max_chats(3)
        .with_max_contacts(3);
    for (bytes, format) in [(ANDROID, Format::Android), (IOS, Format::Ios)] {
        assert!(import_with_limits(bytes, format, &limits).is_ok());
    }
}

#[test]
fn exports_and_contents_over_the_byte_limits() {
    for (bytes, format) in [(ANDROID, Format::Android), (IOS, Format::Ios)] {
        let limits = Limits::default().with_max_bytes(bytes.len() - 1);
        assert_rejected!(
            import_with_limits(bytes, format, &limits),
            "",
            Problem::TooLarge { .. }
        );
        assert!(
            import_with_limits(
                bytes,
                format,
                &Limits::default().with_max_bytes(bytes.len())
            )
            .is_ok()
        );
    }
    let limits = Limits::default().with_max_raw_len(64);
    assert_rejected!(
        import_with_limits(ANDROID, Format::Android, &limits),
        "messages[3].raw_data",
        Problem::RawTooLong { .. }
    );
    assert_rejected!(
        import_with_limits(IOS, Format::Ios, &limits),
        "ZWAMESSAGE[2].ZMEDIAITEM",
        Problem::RawTooLong { .. }
    );
}

// ---------------------------------------------------------------------------------------------
// The exporter's side of the rules.

fn export_err(edit: impl FnOnce(&mut wa_history::History)) -> ExportError {
    let mut h = fixed_history();
    edit(&mut h);
    let errors: Vec<ExportError> = Format::ALL
        .into_iter()
        .map(|f| export(&h, f).unwrap_err())
        .collect();
    assert_eq!(errors[0], errors[1], "both formats check the same rules");
    errors[0].clone()
}

#[test]
fn the_exporter_refuses_what_the_importers_would() {
    let e = export_err(|h| h.messages[2].id = "a,b".into());
    assert_eq!(e.at(), "messages[2].id");
    assert!(matches!(e.problem(), Problem::BadMessageId { .. }), "{e}");

    let e = export_err(|h| h.messages[2].id = h.messages[1].id.clone());
    assert_eq!(e.at(), "messages[2].id");
    assert!(
        matches!(e.problem(), Problem::DuplicateMessageId { first: 1, .. }),
        "{e}"
    );

    let e = export_err(|h| {
        h.chats.remove(2);
    });
    assert_eq!(e.at(), "messages[0].chat");
    assert!(matches!(e.problem(), Problem::UnknownChat(_)), "{e}");

    let e = export_err(|h| h.messages[1].sender = Some(jid("15550001111@s.whatsapp.net")));
    assert_eq!(e.at(), "messages[1].sender");

    let e = export_err(|h| h.owner = jid("447700900123.0:1@s.whatsapp.net"));
    assert_eq!(e.at(), "owner");
    assert!(matches!(e.problem(), Problem::WrongJidKind { .. }), "{e}");

    let e = export_err(|h| h.messages[3].timestamp = 0);
    assert_eq!(e.at(), "messages[3].timestamp");
    assert!(
        e.to_string()
            .starts_with("cannot export history, messages[3].timestamp")
    );

    let e = export_err(|h| h.chats[1].last_activity = wa_history::END_TIMESTAMP);
    assert_eq!(e.at(), "chats[1].last_activity");

    let e = export_err(|h| h.contacts.push(h.contacts[0].clone()));
    assert_eq!(e.at(), "contacts[3].jid");

    let e = export_err(|h| {
        let mut m = text("x");
        for _ in 0..=wa_history::MAX_QUOTE_DEPTH {
            m = quote("q", "Q", m);
        }
        h.messages[6].content = m;
    });
    assert_eq!(e.at(), "messages[6].content");
    assert!(matches!(e.problem(), Problem::QuotesTooDeep { .. }), "{e}");
}
