//! The JSON form of nodes (feature `serde`), as in `testdata/nodes.json`:
//! `[tag, {attrs in wire order} | null, null | "string" | {"hex": "..."} | [children]]`.
//!
//! Attributes are `null` when a node has none; an empty child list is `[]`, distinct from no
//! content (`null`). Attribute order is kept both ways, and duplicate keys survive.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, SerializeTuple, Serializer};

use crate::node::{Attrs, Content, Node};

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(3)?;
        tuple.serialize_element(self.tag())?;
        if self.attrs().is_empty() {
            tuple.serialize_element(&None::<()>)?;
        } else {
            tuple.serialize_element(self.attrs())?;
        }
        tuple.serialize_element(self.content())?;
        tuple.end()
    }
}

impl Serialize for Attrs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, value) in self.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl Serialize for Content<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Content::None => serializer.serialize_none(),
            Content::String(s) => serializer.serialize_str(s),
            Content::Bytes(bytes) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("hex", &hex::encode(bytes))?;
                map.end()
            }
            Content::Children(children) => {
                let mut seq = serializer.serialize_seq(Some(children.len()))?;
                for child in children.iter() {
                    seq.serialize_element(child)?;
                }
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node<'static> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'static>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a node [tag, attributes or null, content]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let tag: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let attrs: AttrsForm = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let content: ContentForm = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(4, &self));
        }
        Ok(Node::from_parts(tag, attrs.0, content.0))
    }
}

/// Attributes as JSON: an object in order, or `null`.
struct AttrsForm(Attrs<'static>);

impl<'de> Deserialize<'de> for AttrsForm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AttrsVisitor)
    }
}

struct AttrsVisitor;

impl<'de> Visitor<'de> for AttrsVisitor {
    type Value = AttrsForm;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("attributes: an object of strings, or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(AttrsForm(Attrs::new()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(AttrsForm(Attrs::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut attrs = Attrs::new();
        while let Some((key, value)) = map.next_entry::<String, String>()? {
            attrs.push(key, value);
        }
        Ok(AttrsForm(attrs))
    }
}

/// Content as JSON.
struct ContentForm(Content<'static>);

impl<'de> Deserialize<'de> for ContentForm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ContentVisitor)
    }
}

struct ContentVisitor;

impl<'de> Visitor<'de> for ContentVisitor {
    type Value = ContentForm;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("content: null, a string, {\"hex\": \"...\"} or a list of nodes")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(ContentForm(Content::None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(ContentForm(Content::None))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(ContentForm(Content::String(Cow::Owned(s.to_owned()))))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(ContentForm(Content::String(Cow::Owned(s))))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(key) = map.next_key::<Cow<'de, str>>()? else {
            return Err(de::Error::invalid_length(0, &"{\"hex\": \"...\"}"));
        };
        if key != "hex" {
            return Err(de::Error::unknown_field(&key, &["hex"]));
        }
        let text: Cow<'de, str> = map.next_value()?;
        let bytes = hex::decode(text.as_bytes())
            .map_err(|e| de::Error::custom(format!("bad hex content: {e}")))?;
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(2, &"{\"hex\": \"...\"}"));
        }
        Ok(ContentForm(Content::Bytes(Cow::Owned(bytes))))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut children = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(child) = seq.next_element::<Node<'static>>()? {
            children.push(child);
        }
        Ok(ContentForm(Content::Children(children.into())))
    }
}
