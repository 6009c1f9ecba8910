//! [`Loc`]: where in an export a value is, built without allocating and formatted only when an
//! error needs it.

use std::fmt;

/// A place in an export: the document, a top-level field, an entry of a list, or a field of an
/// entry (`messages[17].timestamp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc<'a> {
    entry: Option<(&'a str, usize)>,
    field: Option<&'a str>,
}

impl<'a> Loc<'a> {
    /// The document as a whole.
    pub(crate) const ROOT: Loc<'static> = Loc {
        entry: None,
        field: None,
    };

    /// A top-level field.
    pub(crate) fn field(name: &'a str) -> Self {
        Self {
            entry: None,
            field: Some(name),
        }
    }

    /// Entry `index` of the list `list`.
    pub(crate) fn entry(list: &'a str, index: usize) -> Self {
        Self {
            entry: Some((list, index)),
            field: None,
        }
    }

    /// Field `name` of this entry.
    pub(crate) fn with_field(self, name: &'a str) -> Self {
        Self {
            field: Some(name),
            ..self
        }
    }
}

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.entry, self.field) {
            (None, None) => Ok(()),
            (None, Some(field)) => f.write_str(field),
            (Some((list, i)), None) => write!(f, "{list}[{i}]"),
            (Some((list, i)), Some(field)) => write!(f, "{list}[{i}].{field}"),
        }
    }
}
