//! Property checks for the fuzz targets in `fuzz/` and for the test that replays their corpus.
//! Not a stable API: each function panics when the property it checks does not hold.

#![allow(
    clippy::indexing_slicing,
    reason = "fuzz hooks: indices are taken modulo the length"
)]

use std::borrow::Cow;

use crate::{Content, Decoder, Dictionary, Jid, Limits, Node, Policy, encode, encoded_len};

/// Decoding never panics; what decodes re-encodes under the server policy and decodes again
/// to the same tree (string content may come back as bytes: PROTOCOL.md §4.3), and the heap and
/// arena paths agree.
pub fn decode(data: &[u8]) {
    let decoded = crate::decode(data);
    let arena = crate::Arena::new();
    let in_arena = Decoder::new().decode_in(data, &arena);
    assert_eq!(decoded, in_arena, "heap and arena decoding disagree");
    let Ok(node) = decoded else { return };
    let bytes = match encode(&node, Policy::Server) {
        Ok(bytes) => bytes,
        Err(e) => panic!("a decoded node does not encode: {e}"),
    };
    assert_eq!(
        encoded_len(&node, Policy::Server).ok(),
        Some(bytes.len()),
        "encoded_len"
    );
    let limits = Limits {
        max_input: usize::MAX,
        ..Limits::default()
    };
    let again = match Decoder::new().with_limits(limits).decode(&bytes) {
        Ok(again) => again,
        Err(e) => panic!("re-encoded node does not decode: {e}"),
    };
    assert!(
        same_tree(&node, &again),
        "decode(encode(decode(b))) differs from decode(b)"
    );
    // Canonical bytes are a fixed point.
    assert_eq!(
        encode(&again, Policy::Server).ok(),
        Some(bytes),
        "encoding is not idempotent"
    );
}

/// An arbitrary node (built from `data`) encodes under both policies; its encoding decodes,
/// re-encodes to the same bytes, has the length `encoded_len` said, and keeps the tree's shape.
pub fn roundtrip(data: &[u8]) {
    let mut source = Source(data);
    let node = source.node(0);
    for policy in [Policy::Client, Policy::Server] {
        let Ok(bytes) = encode(&node, policy) else {
            continue;
        };
        assert_eq!(
            encoded_len(&node, policy).ok(),
            Some(bytes.len()),
            "encoded_len"
        );
        let limits = Limits {
            max_input: usize::MAX,
            ..Limits::default()
        };
        let decoded = match Decoder::new().with_limits(limits).decode(&bytes) {
            Ok(decoded) => decoded,
            Err(e) => panic!("{policy:?} output does not decode: {e}"),
        };
        assert_eq!(
            decoded.count(),
            node.count(),
            "{policy:?}: tree shape changed"
        );
        assert_eq!(
            encode(&decoded, policy).ok(),
            Some(bytes),
            "{policy:?}: not idempotent"
        );
    }
}

/// JID parsing never panics, its short way reads what the general way reads, and what parses
/// displays as something that parses back to it.
pub fn jid(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(short) = crate::jid::plain(text) {
        assert_eq!(
            Ok(short),
            crate::jid::parse(text),
            "the short way disagrees"
        );
    }
    let Ok(jid) = text.parse::<Jid>() else { return };
    assert_eq!(
        jid.to_string().parse::<Jid>().ok(),
        Some(jid.clone()),
        "display round trip"
    );
    assert_eq!(
        jid.to_wire_string().parse::<Jid>().ok(),
        Some(jid),
        "wire round trip"
    );
}

/// Equal trees, where string content equals byte content with the same bytes.
fn same_tree(a: &Node<'_>, b: &Node<'_>) -> bool {
    let content = match (a.content(), b.content()) {
        (Content::Children(x), Content::Children(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(x, y)| same_tree(x, y))
        }
        (Content::None, Content::None) => true,
        (x, y) => match (content_bytes(x), content_bytes(y)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    };
    content && a.tag() == b.tag() && a.attrs() == b.attrs()
}

fn content_bytes<'c>(content: &'c Content<'_>) -> Option<&'c [u8]> {
    match content {
        Content::Bytes(b) => Some(b),
        Content::String(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// Reads fuzzer bytes as choices; zeros once they run out.
struct Source<'d>(&'d [u8]);

impl Source<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    fn string(&mut self) -> String {
        let n = usize::from(self.byte() % 32);
        match self.byte() % 9 {
            0 => Dictionary::legacy()
                .single(self.byte())
                .unwrap_or("message")
                .to_owned(),
            1 => self
                .take(n)
                .iter()
                .map(|b| char::from(b"0123456789-."[usize::from(b % 12)]))
                .collect(),
            2 => self
                .take(n)
                .iter()
                .map(|b| char::from(b"0123456789ABCDEF"[usize::from(b % 16)]))
                .collect(),
            3 => {
                let user: String = self
                    .take(n)
                    .iter()
                    .map(|b| char::from(b'0' + b % 10))
                    .collect();
                let server = ["s.whatsapp.net", "c.us", "g.us", "broadcast", "example.org"];
                format!("{user}@{}", server[usize::from(self.byte()) % server.len()])
            }
            4 => "c.us".to_owned(),
            5 => self
                .take(n)
                .iter()
                .map(|b| char::from(b"ab@.c"[usize::from(b % 5)]))
                .collect(),
            6 => String::new(),
            7 => "9".repeat(usize::from(self.byte()) + 200),
            _ => String::from_utf8_lossy(self.take(n)).into_owned(),
        }
    }

    fn node(&mut self, depth: usize) -> Node<'static> {
        let mut tag = self.string();
        if tag.is_empty() {
            tag.push('t');
        }
        let mut node = Node::new(tag);
        for _ in 0..self.byte() % 4 {
            let (key, value) = (self.string(), self.string());
            node.attrs_mut().push(key, value);
        }
        *node.content_mut() = match self.byte() % 4 {
            0 => Content::None,
            1 => {
                let n = usize::from(self.byte());
                Content::Bytes(Cow::Owned(self.take(n).to_vec()))
            }
            2 => Content::String(Cow::Owned(self.string())),
            _ if depth >= 6 => Content::Children(Vec::new().into()),
            _ => Content::Children(
                (0..self.byte() % 5)
                    .map(|_| self.node(depth + 1))
                    .collect::<Vec<_>>()
                    .into(),
            ),
        };
        node
    }
}
