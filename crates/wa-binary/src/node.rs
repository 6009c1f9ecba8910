//! The node tree: `[tag, attributes, content]`.
//!
//! A decoded [`Node`] borrows its strings and bytes from the input where the wire holds them
//! verbatim (raw strings, byte content); tokens are `'static`. What the decoder had to build
//! (packed digits, `user@server` JIDs, the attribute and child lists) is owned by the node after
//! [`decode`](crate::decode), or borrowed from an [`Arena`](crate::Arena) after
//! [`Decoder::decode_in`](crate::Decoder::decode_in). [`Node::into_owned`] detaches a node from
//! both.

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
    Children(List<'a, Node<'a>>),
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
pub struct Attrs<'a>(List<'a, Attr<'a>>);

/// One attribute: key and value.
pub type Attr<'a> = (Cow<'a, str>, Cow<'a, str>);

impl<'a> Attrs<'a> {
    /// No attributes.
    pub const fn new() -> Self {
        Attrs(List::Owned(Vec::new()))
    }

    pub(crate) fn from_list(attrs: List<'a, Attr<'a>>) -> Self {
        Attrs(attrs)
    }

    /// The value of the first attribute named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Appends an attribute (keeping any earlier one with the same key).
    pub fn push(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        self.0.to_mut().push((key.into(), value.into()));
    }

    /// Sets the first attribute named `key`, or appends it.
    pub fn set(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        let key = key.into();
        let attrs = self.0.to_mut();
        match attrs.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value.into(),
            None => attrs.push((key, value.into())),
        }
    }

    /// Removes every attribute named `key`, returning the first value.
    pub fn remove(&mut self, key: &str) -> Option<Cow<'a, str>> {
        let first = self.0.iter().position(|(k, _)| k == key)?;
        let attrs = self.0.to_mut();
        let value = attrs.remove(first).1;
        attrs.retain(|(k, _)| k != key);
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
    pub fn as_slice(&self) -> &[Attr<'a>] {
        &self.0
    }

    /// Detaches the attributes from the input (and arena) they borrow from.
    pub fn into_owned(self) -> Attrs<'static> {
        let owned = match self.0 {
            List::Owned(attrs) => attrs
                .into_iter()
                .map(|(k, v)| (own_str(k), own_str(v)))
                .collect(),
            List::Borrowed(attrs) => attrs
                .iter()
                .map(|(k, v)| (own_str(k.clone()), own_str(v.clone())))
                .collect(),
        };
        Attrs(List::Owned(owned))
    }
}

impl<'a, K: Into<Cow<'a, str>>, V: Into<Cow<'a, str>>> FromIterator<(K, V)> for Attrs<'a> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Attrs(List::Owned(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }
}

impl<'a> From<Vec<Attr<'a>>> for Attrs<'a> {
    fn from(pairs: Vec<Attr<'a>>) -> Self {
        Attrs(List::Owned(pairs))
    }
}

impl<'a> Node<'a> {
    /// A node with a tag, no attributes and no content.
    pub fn new(tag: impl Into<Cow<'a, str>>) -> Self {
        Node {
            tag: tag.into(),
            attrs: Attrs::new(),
            content: Content::None,
        }
    }

    /// A node from its three parts.
    pub fn from_parts(
        tag: impl Into<Cow<'a, str>>,
        attrs: Attrs<'a>,
        content: Content<'a>,
    ) -> Self {
        Node {
            tag: tag.into(),
            attrs,
            content,
        }
    }

    /// Adds an attribute (builder style).
    #[must_use]
    pub fn with_attr(
        mut self,
        key: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> Self {
        self.attrs.push(key, value);
        self
    }

    /// Sets the content to child nodes (builder style).
    #[must_use]
    pub fn with_children(mut self, children: Vec<Node<'a>>) -> Self {
        self.content = Content::Children(List::Owned(children));
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

    /// Detaches the node (and its whole subtree) from the input (and arena) it borrows from.
    pub fn into_owned(self) -> Node<'static> {
        Node {
            tag: own_str(self.tag),
            attrs: self.attrs.into_owned(),
            content: self.content.into_owned(),
        }
    }

    /// How many nodes this tree has, this one included.
    pub fn count(&self) -> usize {
        1 + self.children().iter().map(Node::count).sum::<usize>()
    }
}

impl Content<'_> {
    /// Detaches the content from the input (and arena) it borrows from.
    pub fn into_owned(self) -> Content<'static> {
        match self {
            Content::None => Content::None,
            Content::Children(List::Owned(children)) => Content::Children(List::Owned(
                children.into_iter().map(Node::into_owned).collect(),
            )),
            Content::Children(List::Borrowed(children)) => Content::Children(List::Owned(
                children.iter().map(|c| c.clone().into_owned()).collect(),
            )),
            Content::Bytes(bytes) => Content::Bytes(Cow::Owned(bytes.into_owned())),
            Content::String(s) => Content::String(own_str(s)),
        }
    }
}

fn own_str(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}

/// A list that is borrowed (from an [`Arena`](crate::Arena)) or owned: like `Cow<'a, [T]>`,
/// but covariant in `'a`, so that a `Node<'static>` can stand wherever a `Node<'a>` is wanted.
#[derive(Debug)]
pub enum List<'a, T> {
    /// A slice borrowed from an arena (or anywhere else).
    Borrowed(&'a [T]),
    /// A vector of its own.
    Owned(Vec<T>),
}

impl<T> List<'_, T> {
    /// The list, for changing: a borrowed list is copied into a vector of its own first.
    pub fn to_mut(&mut self) -> &mut Vec<T>
    where
        T: Clone,
    {
        if let List::Borrowed(items) = *self {
            *self = List::Owned(items.to_vec());
        }
        match self {
            List::Owned(items) => items,
            // The list was made owned just above.
            List::Borrowed(_) => unreachable!("List::to_mut: list is owned"),
        }
    }
}

impl<T> std::ops::Deref for List<'_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            List::Borrowed(items) => items,
            List::Owned(items) => items,
        }
    }
}

impl<T> Default for List<'_, T> {
    fn default() -> Self {
        List::Borrowed(&[])
    }
}

impl<T: Clone> Clone for List<'_, T> {
    fn clone(&self) -> Self {
        match self {
            List::Borrowed(items) => List::Borrowed(items),
            List::Owned(items) => List::Owned(items.clone()),
        }
    }
}

impl<T: PartialEq> PartialEq for List<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Eq> Eq for List<'_, T> {}

impl<T: std::hash::Hash> std::hash::Hash for List<'_, T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl<T> From<Vec<T>> for List<'_, T> {
    fn from(items: Vec<T>) -> Self {
        List::Owned(items)
    }
}

impl<'a, T> From<&'a [T]> for List<'a, T> {
    fn from(items: &'a [T]) -> Self {
        List::Borrowed(items)
    }
}
