//! The structural wire tags (PROTOCOL.md §4.1); bytes 3..=235 are single-byte tokens.

/// An empty list, or an absent string.
pub const LIST_EMPTY: u8 = 0;
/// End of stream: never valid inside a node.
pub const STREAM_END: u8 = 2;
/// First double-byte dictionary page; `DICTIONARY_3` is 239.
pub const DICTIONARY_0: u8 = 236;
/// Agent/device JID: agent u8, device u8, user string.
pub const JID_AD: u8 = 247;
/// A list with a one-byte size.
pub const LIST_8: u8 = 248;
/// A list with a big-endian two-byte size.
pub const LIST_16: u8 = 249;
/// `user@server`: two strings.
pub const JID_PAIR: u8 = 250;
/// Packed uppercase hex digits.
pub const HEX_8: u8 = 251;
/// Raw bytes with a one-byte length.
pub const BINARY_8: u8 = 252;
/// Raw bytes with a 20-bit length in three bytes.
pub const BINARY_20: u8 = 253;
/// Raw bytes with a big-endian four-byte length.
pub const BINARY_32: u8 = 254;
/// Packed digits, `-` and `.`.
pub const NIBBLE_8: u8 = 255;
