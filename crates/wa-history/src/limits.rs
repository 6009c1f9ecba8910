//! [`Limits`] on untrusted exports, with safe defaults.

/// Limits the importers enforce before they trust an export. Each is checked before anything is
/// allocated for what it bounds (list lengths as entries arrive, never reserved up front from a
/// declared count).
///
/// The defaults fit the largest exports a phone makes (a million messages) with room to spare;
/// lower them where memory is tight. A history that exceeds them still exports: limits are the
/// importer's business.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest export accepted, in bytes (default 256 MiB). For a binary property list it
    /// also bounds the total of the strings and data decoded from it, since one stored string can
    /// be referenced from many places.
    pub max_bytes: usize,
    /// The most messages (default 1,000,000).
    pub max_messages: usize,
    /// The most chats (default 100,000).
    pub max_chats: usize,
    /// The most contacts (default 100,000).
    pub max_contacts: usize,
    /// The longest text (message text or caption, chat or contact name), in bytes of UTF-8
    /// (default 65,536: the longest text WhatsApp sends).
    pub max_text_len: usize,
    /// The longest serialized content of one message (`raw_data` after base64, `ZMEDIAITEM`),
    /// in bytes (default 1 MiB: thumbnails are a few KiB).
    pub max_raw_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            max_messages: 1_000_000,
            max_chats: 100_000,
            max_contacts: 100_000,
            max_text_len: 65_536,
            max_raw_len: 1 << 20,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_bytes`].
    pub fn with_max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    /// Sets [`Limits::max_messages`].
    pub fn with_max_messages(mut self, max: usize) -> Self {
        self.max_messages = max;
        self
    }

    /// Sets [`Limits::max_chats`].
    pub fn with_max_chats(mut self, max: usize) -> Self {
        self.max_chats = max;
        self
    }

    /// Sets [`Limits::max_contacts`].
    pub fn with_max_contacts(mut self, max: usize) -> Self {
        self.max_contacts = max;
        self
    }

    /// Sets [`Limits::max_text_len`].
    pub fn with_max_text_len(mut self, max: usize) -> Self {
        self.max_text_len = max;
        self
    }

    /// Sets [`Limits::max_raw_len`].
    pub fn with_max_raw_len(mut self, max: usize) -> Self {
        self.max_raw_len = max;
        self
    }
}
