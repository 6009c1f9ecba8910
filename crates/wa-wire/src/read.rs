//! Reading attributes and contents of nodes with errors that name the shape and the field, and
//! the base64 forms binary values take in attributes and in JSON.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use wa_binary::Node;

use crate::error::WireError;

/// A required attribute.
pub(crate) fn attr<'n>(
    node: &'n Node<'_>,
    shape: &'static str,
    key: &'static str,
) -> Result<&'n str, WireError> {
    node.attr(key).ok_or_else(|| WireError::missing(shape, key))
}

/// A required attribute holding a decimal number.
pub(crate) fn num<T: std::str::FromStr>(
    node: &Node<'_>,
    shape: &'static str,
    key: &'static str,
) -> Result<T, WireError> {
    let text = attr(node, shape, key)?;
    parse_num(shape, key, text)
}

/// An optional attribute holding a decimal number.
pub(crate) fn opt_num<T: std::str::FromStr>(
    node: &Node<'_>,
    shape: &'static str,
    key: &'static str,
) -> Result<Option<T>, WireError> {
    node.attr(key)
        .map(|text| parse_num(shape, key, text))
        .transpose()
}

fn parse_num<T: std::str::FromStr>(
    shape: &'static str,
    key: &'static str,
    text: &str,
) -> Result<T, WireError> {
    // `str::parse` accepts a leading `+`; the wire never has one.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WireError::bad(
            shape,
            key,
            format!("{text:?} is not a number"),
        ));
    }
    text.parse()
        .map_err(|_| WireError::bad(shape, key, format!("{text:?} is out of range")))
}

/// An optional boolean attribute, `"true"` or `"false"`.
pub(crate) fn opt_bool(
    node: &Node<'_>,
    shape: &'static str,
    key: &'static str,
) -> Result<Option<bool>, WireError> {
    match node.attr(key) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(WireError::bad(
            shape,
            key,
            format!("{other:?} is not true or false"),
        )),
    }
}

/// A required attribute holding standard base64 of exactly `N` bytes.
pub(crate) fn b64_array<const N: usize>(
    node: &Node<'_>,
    shape: &'static str,
    key: &'static str,
) -> Result<[u8; N], WireError> {
    let text = attr(node, shape, key)?;
    decode_array(text).map_err(|why| WireError::bad(shape, key, why))
}

/// Standard base64 of exactly `N` bytes.
pub(crate) fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], String> {
    // 4 characters per 3 bytes: anything longer cannot be N bytes (checked before decoding).
    if text.len() > N.div_ceil(3) * 4 {
        return Err(format!("base64 longer than {N} bytes"));
    }
    // Padding is optional: Matrix and vodozemac write keys without it.
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| format!("not base64 ({e})"))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{} bytes, expected {N}", bytes.len()))
}

/// Standard base64.
pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The bytes content of a node.
pub(crate) fn bytes<'n>(node: &'n Node<'_>, shape: &'static str) -> Result<&'n [u8], WireError> {
    node.bytes()
        .ok_or_else(|| WireError::new(shape, format!("`{}` has no bytes content", node.tag())))
}

/// Checks that `node` has tag `tag`.
pub(crate) fn expect_tag(
    node: &Node<'_>,
    shape: &'static str,
    tag: &'static str,
) -> Result<(), WireError> {
    if node.tag() == tag {
        Ok(())
    } else {
        Err(WireError::new(
            shape,
            format!("expected `{tag}`, found `{}`", node.tag()),
        ))
    }
}

/// serde helpers for binary values as standard base64 strings in JSON.
pub(crate) mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserializer, Serializer};

    /// `Vec<u8>` as base64.
    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// `Vec<u8>` from base64.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_str(Decoded(|text: &str| STANDARD.decode(text.as_bytes())))
    }

    /// Decodes a string as the deserializer has it (borrowed from the input where it can:
    /// serde's own `Cow<str>` always copies it first).
    struct Decoded<F>(F);

    impl<T, E: std::fmt::Display, F: FnOnce(&str) -> Result<T, E>> serde::de::Visitor<'_>
        for Decoded<F>
    {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a base64 string")
        }

        fn visit_str<Er: serde::de::Error>(self, text: &str) -> Result<T, Er> {
            (self.0)(text).map_err(Er::custom)
        }
    }

    /// `[u8; N]` as base64.
    pub(crate) mod array {
        use serde::{Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer, const N: usize>(
            bytes: &[u8; N],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            super::serialize(bytes, s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
            d: D,
        ) -> Result<[u8; N], D::Error> {
            d.deserialize_str(super::Decoded(crate::read::decode_array::<N>))
        }
    }

    /// `Option<Vec<u8>>` as base64 or absent.
    pub(crate) mod option {
        use serde::{Deserialize as _, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            bytes: &Option<Vec<u8>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match bytes {
                Some(bytes) => super::serialize(bytes, s),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Vec<u8>>, D::Error> {
            #[derive(serde::Deserialize)]
            struct Wrap(#[serde(with = "super")] Vec<u8>);
            Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(v)| v))
        }
    }
}
