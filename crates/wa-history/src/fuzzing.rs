//! Property checks for fuzz targets and for the tests that replay mutated exports. Not a stable
//! API: each function panics when the property it checks does not hold.
//!
//! The property: importing never panics, and whatever imports is a fixed point. It exports in
//! both formats, each export imports back to the same history, and exporting that again gives
//! the same bytes.

#![allow(
    clippy::panic,
    reason = "fuzz hooks: a panic is the finding, reported with the error"
)]

use wa_proto::prost::Message as _;

use crate::{Format, History, Limits, export, import_with_limits};

/// Imports `data` as an Android export and checks the round-trip properties if it imports.
pub fn import_android(data: &[u8]) {
    check(data, Format::Android);
}

/// Imports `data` as an iOS export and checks the round-trip properties if it imports.
pub fn import_ios(data: &[u8]) {
    check(data, Format::Ios);
}

/// Limits small enough that a fuzzer spends its time in the parsers, not in allocations.
fn limits() -> Limits {
    Limits::default()
        .with_max_bytes(1 << 20)
        .with_max_messages(10_000)
        .with_max_chats(1_000)
        .with_max_contacts(1_000)
}

fn check(data: &[u8], format: Format) {
    let Ok(history) = import_with_limits(data, format, &limits()) else {
        return;
    };
    let bytes = match export(&history, format) {
        Ok(bytes) => bytes,
        Err(e) => panic!("an imported {format} history does not export: {e}"),
    };
    for target in Format::ALL {
        let exported = match export(&history, target) {
            Ok(bytes) => bytes,
            Err(e) => panic!("an imported {format} history does not export as {target}: {e}"),
        };
        let again = match import_with_limits(&exported, target, &Limits::default()) {
            Ok(again) => again,
            Err(e) => panic!("re-import as {target} of an imported {format} history fails: {e}"),
        };
        assert!(
            same(&history, &again),
            "export as {target} and import changed an imported {format} history"
        );
        if target == format {
            assert_eq!(
                export(&again, format).ok(),
                Some(bytes.clone()),
                "export is not a fixed point"
            );
        }
    }
}

/// Equality of histories that holds for NaN coordinates too: contents compare by their
/// encoding (prost's encoding is deterministic and keeps every bit of a float).
pub fn same(a: &History, b: &History) -> bool {
    a.owner == b.owner
        && a.chats == b.chats
        && a.contacts == b.contacts
        && a.messages.len() == b.messages.len()
        && a.messages.iter().zip(&b.messages).all(|(x, y)| {
            x.chat == y.chat
                && x.id == y.id
                && x.from_me == y.from_me
                && x.sender == y.sender
                && x.timestamp == y.timestamp
                && x.status == y.status
                && x.content.encode_to_vec() == y.content.encode_to_vec()
        })
}
