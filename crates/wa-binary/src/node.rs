//! The node tree: `[tag, attributes, content]`.
//!
//! A decoded [`Node`] borrows its strings and bytes from the input where the wire holds them
//! verbatim (raw strings, byte content) and owns what the decoder had to build (packed digits,
//! `user@server` JIDs); tokens are `'static`. [`Node::into_owned`] detaches a node from its input.

use std::borrow::Cow;

/// One node: a tag, attributes in wire order, and content.
///
/// ```
/// use wa_binary::{Content, Node};
///
/// let node = Node::new("action")
///     .with_attr("type", "set")
///     .with_attr("epoch", "1")
///     .with_children(vec![Node::new("presence").with_attr("type", "available")]);
/// assert_eq!(node.attr("epoch"), Some("1"));
/// assert_eq!(node.children()[0].tag(), "presence");
/// assert!(matches!(node.content(), Content::Children(c) if c.len() == 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node<'a> {
    tag: Cow<'a, str>,
    attrs: Attrs<'a>,
    content: Content<'a>,
}

/// What a node holds after its attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Content<'a> {
    /// No content (the node's list size was odd).
    #[default]
    None,
    /// A list of child nodes, possibly empty (`LIST_EMPTY`).
    Children(Vec<Node<'a>>),
    /// Raw bytes (`BINARY_8/20/32`), such as a protobuf message.
    Bytes(Cow<'a, [u8]>),
    /// A string written as a token, packed digits or a JID.
    ///
    /// A raw string in content position is indistinguishable from bytes on the wire, so
    /// decoding gives [`Content::Bytes`] for it.
    String(Cow<'a, str>),
}

/// Attributes in wire order. Keys may repeat, as the wire allows; [`Attrs::get`] returns the
/// first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Attrs<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Attrs<'a> {
    /// No attributes.
    pub const fn new() -> Self {
        Attrs(Vec::new())
    }

    pub(crate) fn with_capacity(n: usize) -> Self {
        Attrs(Vec::with_capacity(n))
    }

    /// The value of the first attribute named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    /// Appends an attribute (keeping any earlier one with the same key).
    pub fn push(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        self.0.push((key.into(), value.into()));
    }

    /// Sets the first attribute named `key`, or appends it.
    pub fn set(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value.into(),
            None => self.0.push((key, value.into())),
        }
    }

    /// Removes every attribute named `key`, returning the first value.
    pub fn remove(&mut self, key: &str) -> Option<Cow<'a, str>> {
        let first = self.0.iter().position(|(k, _)| k == key)?;
        let value = self.0.remove(first).1;
        self.0.retain(|(k, _)| k != key);
        Some(value)
    }

    /// The attributes in wire order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The attribute pairs themselves.
    pub fn as_slice(&self) -> &[(Cow<'a, str>, Cow<'a, str>)] {
        &self.0
    }

    /// Detaches the attributes from the input they borrow from.
    pub fn into_owned(self) -> Attrs<'static> {
        Attrs(self.0.into_iter().map(|(k, v)| (own_str(k), own_str(v))).collect())
    }
}

impl<'a, K: Into<Cow<'a, str>>, V: Into<Cow<'a, str>>> FromIterator<(K, V)> for Attrs<'a> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Attrs(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<'a> From<Vec<(Cow<'a, str>, Cow<'a, str>)>> for Attrs<'a> {
    fn from(pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>) -> Self {
        Attrs(pairs)
    }
}

impl<'a> Node<'a> {
    /// A node with a tag, no attributes and no content.
    pub fn new(tag: impl Into<Cow<'a, str>>) -> Self {
        Node { tag: tag.into(), attrs: Attrs::new(), content: Content::None }
    }

    /// A node from its three parts.
    pub fn from_parts(tag: impl Into<Cow<'a, str>>, attrs: Attrs<'a>, content: Content<'a>) -> Self {
        Node { tag: tag.into(), attrs, content }
    }

    /// Adds an attribute (builder style).
    #[must_use]
    pub fn with_attr(mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) -> Self {
        self.attrs.push(key, value);
        self
    }

    /// Sets the content to child nodes (builder style).
    #[must_use]
    pub fn with_children(mut self, children: Vec<Node<'a>>) -> Self {
        self.content = Content::Children(children);
        self
    }

    /// Sets the content to bytes (builder style).
    #[must_use]
    pub fn with_bytes(mut self, bytes: impl Into<Cow<'a, [u8]>>) -> Self {
        self.content = Content::Bytes(bytes.into());
        self
    }

    /// Sets the content to a string (builder style).
    #[must_use]
    pub fn with_string(mut self, s: impl Into<Cow<'a, str>>) -> Self {
        self.content = Content::String(s.into());
        self
    }

    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The value of the first attribute named `key`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.get(key)
    }

    /// The attributes, in wire order.
    pub fn attrs(&self) -> &Attrs<'a> {
        &self.attrs
    }

    /// The attributes, for changing.
    pub fn attrs_mut(&mut self) -> &mut Attrs<'a> {
        &mut self.attrs
    }

    /// The content.
    pub fn content(&self) -> &Content<'a> {
        &self.content
    }

    /// The content, for changing.
    pub fn content_mut(&mut self) -> &mut Content<'a> {
        &mut self.content
    }

    /// The child nodes; empty when the content is not a list.
    pub fn children(&self) -> &[Node<'a>] {
        match &self.content {
            Content::Children(children) => children,
            _ => &[],
        }
    }

    /// The first child with the given tag.
    pub fn child(&self, tag: &str) -> Option<&Node<'a>> {
        self.children().iter().find(|c| c.tag() == tag)
    }

    /// The content as bytes: byte content, or the UTF-8 of string content.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Bytes(b) => Some(b),
            Content::String(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// Splits the node into its tag, attributes and content.
    pub fn into_parts(self) -> (Cow<'a, str>, Attrs<'a>, Content<'a>) {
        (self.tag, self.attrs, self.content)
    }

    /// Detaches the node (and its whole subtree) from the input it borrows from.
    pub fn into_owned(self) -> Node<'static> {
        Node { tag: own_str(self.tag), attrs: self.attrs.into_owned(), content: self.content.into_owned() }
    }

    /// How many nodes this tree has, this one included.
    pub fn count(&self) -> usize {
        1 + self.children().iter().map(Node::count).sum::<usize>()
    }
}

impl Content<'_> {
    /// Detaches the content from the input it borrows from.
    pub fn into_owned(self) -> Content<'static> {
        match self {
            Content::None => Content::None,
            Content::Children(children) => {
                Content::Children(children.into_iter().map(Node::into_owned).collect())
            }
            Content::Bytes(bytes) => Content::Bytes(Cow::Owned(bytes.into_owned())),
            Content::String(s) => Content::String(own_str(s)),
        }
    }
}

fn own_str(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}
