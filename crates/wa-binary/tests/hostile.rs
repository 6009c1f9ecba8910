//! Inputs that crashed or exhausted other decoders: each must give an error, quickly, without
//! a panic, a stack overflow or a large allocation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use wa_binary::{DecodeErrorKind, Decoder, Limits};

fn decode_err(hex_text: &str) -> wa_binary::DecodeError {
    let bytes = hex::decode(hex_text).unwrap();
    wa_binary::decode(&bytes).expect_err(hex_text)
}

#[test]
fn field_inputs_fail_cleanly() {
    for input in [
        "f80100",
        "f801f800",
        "f801faf80003",
        "f801f7000000",
        "f801ff80",
        "",
        "f80219fe80000000",
        "f80119aabb",
    ] {
        let err = decode_err(input);
        assert!(err.offset() <= input.len() / 2, "{input}: {err}");
    }
    assert!(matches!(
        decode_err("f80219fe80000000").kind(),
        DecodeErrorKind::Truncated(_)
    ));
    assert!(matches!(
        decode_err("f80119aabb").kind(),
        DecodeErrorKind::TrailingBytes(2)
    ));
    assert_eq!(decode_err("f80100").kind(), DecodeErrorKind::MissingTag);
    assert_eq!(decode_err("").offset(), 0);
}

#[test]
fn nested_huge_lists_fail_without_preallocating() {
    // Each level declares 65535 children, the first of which is the next level.
    let input = "f80219f9ffff".repeat(127);
    let err = decode_err(&input);
    assert!(matches!(err.kind(), DecodeErrorKind::TooDeep(64)), "{err}");
    // With a deeper limit, the input simply runs out.
    let mut limits = Limits::default();
    limits.max_depth = 200;
    let bytes = hex::decode(&input).unwrap();
    let err = Decoder::new()
        .with_limits(limits)
        .decode(&bytes)
        .unwrap_err();
    assert!(matches!(err.kind(), DecodeErrorKind::Truncated(_)), "{err}");
    assert_eq!(err.offset(), bytes.len());
}

#[test]
fn a_hundred_thousand_nested_lists() {
    let mut bytes = Vec::new();
    for _ in 0..100_000 {
        bytes.extend_from_slice(&[0xf8, 0x02, 0x09, 0xf8, 0x01]);
    }
    let err = wa_binary::decode(&bytes).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::TooDeep(64));
    // Limits above the hard cap are clamped, so even a huge limit cannot overflow the stack.
    let mut limits = Limits::default();
    limits.max_depth = usize::MAX;
    let err = Decoder::new()
        .with_limits(limits)
        .decode(&bytes)
        .unwrap_err();
    assert_eq!(
        err.kind(),
        DecodeErrorKind::TooDeep(wa_binary::HARD_MAX_DEPTH)
    );
}

#[test]
fn jid_chains_count_as_nesting() {
    // JID_PAIR whose user is a JID_PAIR whose user is ... : bounded like node nesting.
    let mut bytes = vec![0xf8, 0x02, 0x09];
    bytes.extend(std::iter::repeat_n(0xfa, 100_000));
    let err = wa_binary::decode(&bytes).unwrap_err();
    assert!(matches!(err.kind(), DecodeErrorKind::TooDeep(_)), "{err}");
}

#[test]
fn limits_are_enforced() {
    let mut limits = Limits::default();
    limits.max_input = 4;
    let err = Decoder::new()
        .with_limits(limits)
        .decode(&[0xf8, 0x02, 0x09, 0x00, 0x00])
        .unwrap_err();
    assert!(matches!(
        err.kind(),
        DecodeErrorKind::InputTooLarge { len: 5, limit: 4 }
    ));

    let mut limits = Limits::default();
    limits.max_children = 2;
    // action with 3 children
    let bytes = hex::decode("f80209f803f80109f80109f80109").unwrap();
    assert!(wa_binary::decode(&bytes).is_ok());
    let err = Decoder::new()
        .with_limits(limits)
        .decode(&bytes)
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            DecodeErrorKind::TooManyChildren { count: 3, limit: 2 }
        ),
        "{err}"
    );
    assert_eq!(err.offset(), 3);
}

#[test]
fn errors_name_the_offset() {
    // unknown token 200 in the tag position: byte 2
    let err = decode_err("f801c8");
    assert_eq!(
        (err.kind(), err.offset()),
        (DecodeErrorKind::UnknownToken(200), 2)
    );
    assert_eq!(err.to_string(), "unknown token 200 at byte 2");
    // invalid UTF-8 at the third byte of a raw string that starts at byte 5
    let err = decode_err("f80309fc0361fc03616263");
    assert_eq!(err.kind(), DecodeErrorKind::InvalidUtf8);
    let err = decode_err("f80309fc0361ff61fc0161");
    assert_eq!(
        (err.kind(), err.offset()),
        (DecodeErrorKind::InvalidUtf8, 6)
    );
    // a list tag where a string must be
    let err = decode_err("f801f8");
    assert_eq!(err.kind(), DecodeErrorKind::InvalidStringTag(0xf8));
    // bad nibble: the second packed byte
    let err = decode_err("f80209ff0211cc");
    assert_eq!(
        (err.kind(), err.offset()),
        (DecodeErrorKind::InvalidNibble(0xc), 6)
    );
    // attribute value missing
    assert_eq!(
        decode_err("f803090900").kind(),
        DecodeErrorKind::MissingAttrValue
    );
    // JID pair without a server
    assert_eq!(
        decode_err("f80209fa0900").kind(),
        DecodeErrorKind::MissingJidServer
    );
}
