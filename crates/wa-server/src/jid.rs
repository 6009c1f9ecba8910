//! Phone numbers, chats and devices as the server names them.
//!
//! Users are written `<number>@c.us` in JSON (`wid`, acks, presence) and
//! `<number>@s.whatsapp.net` inside binary nodes and messages, as the real server did; both
//! parse to the same [`ChatJid::User`]. Groups are `<creator>-<unix secs>@g.us`.

use std::fmt;

/// The longest phone number accepted (E.164 allows 15 digits; a little slack).
const MAX_NUMBER_LEN: usize = 20;

/// Whether `number` is a phone number as the server accepts them: 5 to 20 ASCII digits.
pub(crate) fn valid_number(number: &str) -> bool {
    (5..=MAX_NUMBER_LEN).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit())
}

/// A user's JSON JID, `<number>@c.us`.
pub(crate) fn user_jid(number: &str) -> String {
    format!("{number}@c.us")
}

/// A user's wire JID, `<number>@s.whatsapp.net`.
pub(crate) fn user_wire(number: &str) -> String {
    format!("{number}@s.whatsapp.net")
}

/// A chat: a user (by number) or a group (by JID).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ChatJid {
    /// A user.
    User(String),
    /// A group, `<creator>-<secs>@g.us`.
    Group(String),
}

impl ChatJid {
    /// Reads `n@c.us`, `n@s.whatsapp.net`, a bare number, or `x-y@g.us`.
    pub(crate) fn parse(text: &str) -> Option<ChatJid> {
        if let Some(user) = text
            .strip_suffix("@c.us")
            .or_else(|| text.strip_suffix("@s.whatsapp.net"))
            .or(Some(text).filter(|t| !t.contains('@')))
        {
            return valid_number(user).then(|| ChatJid::User(user.to_owned()));
        }
        let group = text.strip_suffix("@g.us")?;
        let (creator, secs) = group.split_once('-')?;
        (valid_number(creator)
            && !secs.is_empty()
            && secs.len() <= 20
            && secs.bytes().all(|b| b.is_ascii_digit()))
        .then(|| ChatJid::Group(text.to_owned()))
    }

    /// The JSON form (`n@c.us`, or the group JID): also the storage key.
    pub(crate) fn json(&self) -> String {
        match self {
            ChatJid::User(n) => user_jid(n),
            ChatJid::Group(g) => g.clone(),
        }
    }

    /// The wire form (`n@s.whatsapp.net`, or the group JID).
    pub(crate) fn wire(&self) -> String {
        match self {
            ChatJid::User(n) => user_wire(n),
            ChatJid::Group(g) => g.clone(),
        }
    }
}

impl fmt::Display for ChatJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.json())
    }
}

/// A device of an account: its phone, or a linked web client (by client id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DeviceKey(String);

impl DeviceKey {
    /// The phone of `number`.
    pub(crate) fn phone(number: &str) -> DeviceKey {
        DeviceKey(format!("p:{number}"))
    }

    /// The web client `client_id`.
    pub(crate) fn web(client_id: &str) -> DeviceKey {
        DeviceKey(format!("w:{client_id}"))
    }

    /// The stored form.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads the stored form back.
    pub(crate) fn from_stored(s: String) -> DeviceKey {
        DeviceKey(s)
    }

    /// The client id, for a web client.
    pub(crate) fn client_id(&self) -> Option<&str> {
        self.0.strip_prefix("w:")
    }
}

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `id` is acceptable as a client id: 1 to 64 characters of base64.
pub(crate) fn valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b))
}

/// Whether `id` is acceptable as a message id (it is also a frame tag): 1 to 64 printable
/// ASCII characters without `,`.
pub(crate) fn valid_message_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chats() {
        let a = ChatJid::parse("15551234567@s.whatsapp.net").unwrap();
        assert_eq!(a, ChatJid::parse("15551234567@c.us").unwrap());
        assert_eq!(a, ChatJid::parse("15551234567").unwrap());
        assert_eq!(a.wire(), "15551234567@s.whatsapp.net");
        assert_eq!(a.json(), "15551234567@c.us");
        let g = ChatJid::parse("15551234567-1589356000@g.us").unwrap();
        assert_eq!(g.json(), "15551234567-1589356000@g.us");
        for bad in [
            "",
            "abc@c.us",
            "1@c.us",
            "x-1@g.us",
            "15551234567-@g.us",
            "15551234567@example.com",
            "1555123456712345678901@c.us",
        ] {
            assert_eq!(ChatJid::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids() {
        assert!(valid_client_id("AAECAwQFBgcICQoLDA0ODw=="));
        assert!(!valid_client_id("a:b"));
        assert!(!valid_client_id(""));
        assert!(valid_message_id("3EB0AAAABBBBCCCCDDDD"));
        assert!(!valid_message_id("a,b"));
        assert!(!valid_message_id("a b"));
        assert_eq!(DeviceKey::web("abc").client_id(), Some("abc"));
        assert_eq!(DeviceKey::phone("123").client_id(), None);
    }
}
