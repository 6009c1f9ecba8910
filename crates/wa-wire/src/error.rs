//! What can be wrong with a node or a JSON value that claims to be a known shape.

use std::borrow::Cow;

/// A node or JSON value that does not have the shape its tag or kind promises: which shape,
/// and what was wrong with it. Small and cheap; the input itself is not kept.
///
/// ```
/// use wa_binary::Node;
/// let node = Node::new("action").with_attr("type", "relay");
/// let err = wa_wire::web::Request::from_node(&node).unwrap_err();
/// assert_eq!(err.to_string(), "`action relay`: no `enc` or `message` child");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{shape}`: {what}")]
pub struct WireError {
    shape: &'static str,
    what: Cow<'static, str>,
}

impl WireError {
    /// A `shape` with a problem described by `what`.
    pub fn new(shape: &'static str, what: impl Into<Cow<'static, str>>) -> WireError {
        WireError {
            shape,
            what: what.into(),
        }
    }

    /// The shape that was expected (a node tag and type, or a JSON kind).
    pub fn shape(&self) -> &'static str {
        self.shape
    }

    /// What was wrong.
    pub fn what(&self) -> &str {
        &self.what
    }

    pub(crate) fn missing(shape: &'static str, attr: &'static str) -> WireError {
        WireError::new(shape, format!("attribute `{attr}` missing"))
    }

    pub(crate) fn bad(
        shape: &'static str,
        attr: &'static str,
        why: impl std::fmt::Display,
    ) -> WireError {
        WireError::new(shape, format!("attribute `{attr}`: {why}"))
    }
}
