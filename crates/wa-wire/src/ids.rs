//! Addresses and identifiers, checked once: users, devices, groups, chats, message ids and client
//! ids.
//!
//! Every address is a [`Jid`] (from `wa-binary`), where `c.us` and `s.whatsapp.net` are one user
//! domain: `15551234567@c.us` and `15551234567@s.whatsapp.net` are equal, display as the former
//! (the JSON form) and are written to nodes as the latter ([`Jid::to_wire_string`]). A device of
//! a user carries its number after `:`; device 0, the account's phone, is written without one, so
//! the phone's address is the user's address.

use std::fmt;

pub use wa_binary::{Jid, Server};

use crate::error::WireError;

/// The longest phone number accepted (E.164 allows 15 digits; a little slack).
pub const MAX_NUMBER_LEN: usize = 20;

/// Whether `number` is a phone number as the protocol accepts them: 5 to 20 ASCII digits.
pub fn valid_number(number: &str) -> bool {
    (5..=MAX_NUMBER_LEN).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit())
}

/// The user JID of a phone number (`<number>@c.us`).
///
/// # Errors
/// When `number` is not 5 to 20 digits.
pub fn user_jid(number: &str) -> Result<Jid, WireError> {
    if !valid_number(number) {
        return Err(WireError::new(
            "user",
            format!("{number:?} is not a phone number"),
        ));
    }
    Jid::new(number, Server::User).map_err(|e| WireError::new("user", e.to_string()))
}

/// The phone number of a user or device JID, if it is one.
pub fn number_of(jid: &Jid) -> Option<&str> {
    match jid.server() {
        Server::User => jid.user().filter(|u| valid_number(u)),
        _ => None,
    }
}

/// The device number of a device JID: 0 (the phone) when there is none.
pub fn device_of(jid: &Jid) -> u8 {
    jid.device().unwrap_or(0)
}

/// The user a device JID belongs to (agent and device dropped).
pub fn user_of(jid: &Jid) -> Jid {
    match jid.user() {
        Some(user) if jid.server() == &Server::User => {
            Jid::new(user, Server::User).unwrap_or_else(|_| jid.clone())
        }
        _ => jid.clone(),
    }
}

/// Device `device` of `user`: the user's own address for device 0 (the phone).
pub fn device_jid(user: &Jid, device: u8) -> Jid {
    let user = user_of(user);
    if device == 0 {
        return user;
    }
    user.clone().with_device(None, Some(device)).unwrap_or(user)
}

/// A device address in its one written form (`:0` dropped), checked to be a user's device.
///
/// # Errors
/// When `jid` is not in the user domain or its user is not a phone number.
pub fn device_address(jid: &Jid) -> Result<Jid, WireError> {
    if number_of(jid).is_none() {
        return Err(WireError::new(
            "device",
            format!("{jid} is not a user's device"),
        ));
    }
    Ok(device_jid(jid, device_of(jid)))
}

/// Whether `jid` is a group as this protocol makes them: `<creator number>-<unix secs>@g.us`.
pub fn is_group_jid(jid: &Jid) -> bool {
    if jid.server() != &Server::Group {
        return false;
    }
    let Some((creator, secs)) = jid.user().and_then(|u| u.split_once('-')) else {
        return false;
    };
    valid_number(creator)
        && (1..=20).contains(&secs.len())
        && secs.bytes().all(|b| b.is_ascii_digit())
}

/// A chat: one other user, or a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Chat {
    /// A user (the JID without device).
    User(Jid),
    /// A group.
    Group(Jid),
}

impl Chat {
    /// Reads a chat address: a user (any device suffix is dropped) or a group.
    ///
    /// # Errors
    /// When `jid` is neither a user with a phone number nor a group of this protocol's form.
    pub fn from_jid(jid: &Jid) -> Result<Chat, WireError> {
        if number_of(jid).is_some() {
            Ok(Chat::User(user_of(jid)))
        } else if is_group_jid(jid) {
            Ok(Chat::Group(jid.clone()))
        } else {
            Err(WireError::new(
                "chat",
                format!("{jid} is neither a user nor a group"),
            ))
        }
    }

    /// Parses `text` as a chat (`n@c.us`, `n@s.whatsapp.net`, a bare number, or a group).
    ///
    /// # Errors
    /// As [`Chat::from_jid`], or when `text` is not a JID.
    pub fn parse(text: &str) -> Result<Chat, WireError> {
        if valid_number(text) {
            return user_jid(text).map(Chat::User);
        }
        let jid: Jid = text
            .parse()
            .map_err(|e: wa_binary::JidError| WireError::new("chat", e.to_string()))?;
        Chat::from_jid(&jid)
    }

    /// The chat's JID.
    pub fn jid(&self) -> &Jid {
        match self {
            Chat::User(jid) | Chat::Group(jid) => jid,
        }
    }

    /// Whether it is a group.
    pub fn is_group(&self) -> bool {
        matches!(self, Chat::Group(_))
    }
}

impl fmt::Display for Chat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.jid().fmt(f)
    }
}

/// The longest message id accepted. Official ids are 20 characters (`3EB0` and 16 hex digits).
pub const MAX_MESSAGE_ID_LEN: usize = 64;

/// Whether `id` is acceptable as a message id. A message id is also the tag of the frame that
/// sends it, so it is 1 to 64 printable ASCII characters without `,`, not starting with `!`.
pub fn valid_message_id(id: &str) -> bool {
    (1..=MAX_MESSAGE_ID_LEN).contains(&id.len())
        && !id.starts_with('!')
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

/// Whether `id` is acceptable as a client id: 1 to 64 characters of (URL-safe or standard)
/// base64.
pub fn valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b))
}

/// Reads a JID from an attribute or JSON string, for error messages naming `shape` and `field`.
pub(crate) fn parse_jid(
    shape: &'static str,
    field: &'static str,
    text: &str,
) -> Result<Jid, WireError> {
    text.parse()
        .map_err(|e: wa_binary::JidError| WireError::bad(shape, field, e))
}

/// Reads a device address (`n[:d]@s.whatsapp.net`) from an attribute.
pub(crate) fn parse_device(
    shape: &'static str,
    field: &'static str,
    text: &str,
) -> Result<Jid, WireError> {
    let jid = parse_jid(shape, field, text)?;
    device_address(&jid).map_err(|e| WireError::bad(shape, field, e.what().to_owned()))
}

/// Reads a user address (device dropped) from an attribute.
pub(crate) fn parse_user(
    shape: &'static str,
    field: &'static str,
    text: &str,
) -> Result<Jid, WireError> {
    let jid = parse_jid(shape, field, text)?;
    if number_of(&jid).is_none() {
        return Err(WireError::bad(shape, field, format!("{jid} is not a user")));
    }
    Ok(user_of(&jid))
}

/// Reads a chat from an attribute.
pub(crate) fn parse_chat(
    shape: &'static str,
    field: &'static str,
    text: &str,
) -> Result<Chat, WireError> {
    let jid = parse_jid(shape, field, text)?;
    Chat::from_jid(&jid).map_err(|e| WireError::bad(shape, field, e.what().to_owned()))
}

/// Checks a message id from an attribute.
pub(crate) fn check_message_id(
    shape: &'static str,
    field: &'static str,
    id: &str,
) -> Result<String, WireError> {
    if valid_message_id(id) {
        Ok(id.to_owned())
    } else {
        Err(WireError::bad(
            shape,
            field,
            format!("{id:?} is not a message id"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chats_and_devices() {
        let a = Chat::parse("15551234567@s.whatsapp.net").unwrap();
        assert_eq!(a, Chat::parse("15551234567@c.us").unwrap());
        assert_eq!(a, Chat::parse("15551234567").unwrap());
        assert_eq!(a.jid().to_wire_string(), "15551234567@s.whatsapp.net");
        assert_eq!(a.to_string(), "15551234567@c.us");
        let g = Chat::parse("15551234567-1589356000@g.us").unwrap();
        assert!(g.is_group());
        for bad in [
            "",
            "abc@c.us",
            "1@c.us",
            "x-1@g.us",
            "15551234567-@g.us",
            "15551234567@example.com",
            "1555123456712345678901@c.us",
        ] {
            assert!(Chat::parse(bad).is_err(), "{bad}");
        }
        let user = user_jid("15551234567").unwrap();
        let d3 = device_jid(&user, 3);
        assert_eq!(d3.to_wire_string(), "15551234567:3@s.whatsapp.net");
        assert_eq!(device_of(&d3), 3);
        assert_eq!(user_of(&d3), user);
        assert_eq!(device_jid(&d3, 0), user);
        let zero: Jid = "15551234567:0@s.whatsapp.net".parse().unwrap();
        assert_eq!(device_address(&zero).unwrap(), user);
        assert_eq!(Chat::from_jid(&d3).unwrap(), Chat::User(user));
    }

    #[test]
    fn ids() {
        assert!(valid_client_id("AAECAwQFBgcICQoLDA0ODw=="));
        assert!(!valid_client_id("a:b"));
        assert!(!valid_client_id(""));
        assert!(valid_message_id("3EB0AAAABBBBCCCCDDDD"));
        assert!(!valid_message_id("a,b"));
        assert!(!valid_message_id("a b"));
        assert!(!valid_message_id("!123"));
        assert!(!valid_message_id(&"A".repeat(65)));
    }
}
