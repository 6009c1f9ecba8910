//! JIDs: the addresses of users, groups and broadcast lists, `user[.agent][:device]@server`.
//!
//! The node codec itself keeps JIDs as the strings the wire gives (`123@s.whatsapp.net`); this
//! type is where their meaning lives: the user domain `s.whatsapp.net` and the name the web
//! client used for it, `c.us`, are one [`Server::User`].

use smol_str::SmolStr;
use std::fmt;
use std::str::FromStr;

/// A JID: an optional user (absent for a bare server such as `s.whatsapp.net`), an optional
/// agent and device (user-domain JIDs only), and a server.
///
/// ```
/// use wa_binary::{Jid, Server};
///
/// let jid: Jid = "447700900123@s.whatsapp.net".parse().unwrap();
/// assert_eq!(jid.user(), Some("447700900123"));
/// assert_eq!(jid.server(), &Server::User);
/// assert_eq!(jid, "447700900123@c.us".parse().unwrap());
/// assert_eq!(jid.to_string(), "447700900123@c.us");
///
/// let device: Jid = "447700900123.1:2@c.us".parse().unwrap();
/// assert_eq!((device.agent(), device.device()), (Some(1), Some(2)));
/// assert!("447700900123:256@c.us".parse::<Jid>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    /// (Inline up to 23 bytes: a user's or device's JID never allocates; see the crate docs.)
    user: Option<SmolStr>,
    agent: Option<u8>,
    device: Option<u8>,
    server: Server,
}

/// The server part of a JID: the known domains, and any other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Server {
    /// Users: `s.whatsapp.net` on the wire, `c.us` in the web client.
    User,
    /// Groups: `g.us`.
    Group,
    /// Broadcast lists and status updates: `broadcast`.
    Broadcast,
    /// Any other server, by name. Build it with [`Server::from_name`], which maps the known
    /// names to their variants, so that a JID compares equal to its parsed display form.
    Other(String),
}

impl Server {
    /// The server called `name`.
    pub fn from_name(name: &str) -> Server {
        match name {
            "s.whatsapp.net" | "c.us" => Server::User,
            "g.us" => Server::Group,
            "broadcast" => Server::Broadcast,
            other => Server::Other(other.to_owned()),
        }
    }

    /// The name the web client shows (`c.us` for users).
    pub fn name(&self) -> &str {
        match self {
            Server::User => "c.us",
            Server::Group => "g.us",
            Server::Broadcast => "broadcast",
            Server::Other(name) => name,
        }
    }

    /// The name the server writes on the wire (`s.whatsapp.net` for users).
    pub fn wire_name(&self) -> &str {
        match self {
            Server::User => "s.whatsapp.net",
            other => other.name(),
        }
    }
}

/// A string that is not a JID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JidError {
    /// The empty string.
    #[error("empty JID")]
    Empty,
    /// More than one `@`.
    #[error("JID has more than one '@'")]
    MultipleAt,
    /// Nothing before the `@`.
    #[error("JID user is empty")]
    EmptyUser,
    /// Nothing after the `@`.
    #[error("JID server is empty")]
    EmptyServer,
    /// The agent after `.` is not a number from 0 to 255.
    #[error("JID agent {0:?} is not a number from 0 to 255")]
    BadAgent(String),
    /// The device after `:` is not a number from 0 to 255.
    #[error("JID device {0:?} is not a number from 0 to 255")]
    BadDevice(String),
    /// A user JID's user holds `.` or `:`, which would read back as an agent or device.
    #[error("JID user {0:?} holds '.' or ':' (an agent or device belongs in `with_device`)")]
    AgentInUser(String),
    /// An agent or device on a JID that is not in the user domain.
    #[error("only user JIDs have an agent or device")]
    AgentOutsideUserDomain,
}

impl Jid {
    /// `user@server`.
    ///
    /// # Errors
    /// When `user` is empty or holds `@`, or, for a user JID, holds `.` or `:` (which would
    /// read back as an agent or device: use [`Jid::with_device`]).
    pub fn new(user: &str, server: Server) -> Result<Jid, JidError> {
        if user.is_empty() {
            return Err(JidError::EmptyUser);
        }
        // (Byte searches: a `char` pattern decodes every character of the text.)
        let bytes = user.as_bytes();
        if bytes.contains(&b'@') {
            return Err(JidError::MultipleAt);
        }
        if server == Server::User && bytes.iter().any(|&b| b == b'.' || b == b':') {
            return Err(JidError::AgentInUser(user.to_owned()));
        }
        Ok(Jid {
            user: Some(SmolStr::new(user)),
            agent: None,
            device: None,
            server,
        })
    }

    /// A bare server, such as `s.whatsapp.net`.
    pub fn server_only(server: Server) -> Jid {
        Jid {
            user: None,
            agent: None,
            device: None,
            server,
        }
    }

    /// The same user JID with an agent and device (`user.agent:device@c.us`).
    ///
    /// # Errors
    /// [`JidError::AgentOutsideUserDomain`] when the JID is not a user JID.
    pub fn with_device(self, agent: Option<u8>, device: Option<u8>) -> Result<Jid, JidError> {
        if self.server != Server::User || self.user.is_none() {
            return Err(JidError::AgentOutsideUserDomain);
        }
        Ok(Jid {
            agent,
            device,
            ..self
        })
    }

    /// The user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The agent, if any.
    pub fn agent(&self) -> Option<u8> {
        self.agent
    }

    /// The device, if any.
    pub fn device(&self) -> Option<u8> {
        self.device
    }

    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Whether this is a group (`…@g.us`).
    pub fn is_group(&self) -> bool {
        self.server == Server::Group
    }

    /// The JID as the server writes it (`…@s.whatsapp.net` for users).
    pub fn to_wire_string(&self) -> String {
        self.format(self.server.wire_name())
    }

    /// Calls `f` with [`Jid::to_wire_string`]'s text, written on the stack instead of into a
    /// `String` (a user's or device's JID always fits): for a caller that only reads it, such
    /// as one building a key from it.
    ///
    /// ```
    /// let jid: wa_binary::Jid = "447700900123:2@c.us".parse().unwrap();
    /// assert_eq!(jid.with_wire_text(str::len), "447700900123:2@s.whatsapp.net".len());
    /// ```
    pub fn with_wire_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        self.with_text(self.server.wire_name(), f)
    }

    fn format(&self, server: &str) -> String {
        self.with_text(server, str::to_owned)
    }

    /// Calls `f` with the JID's text, `server` its server part, written into a buffer on the
    /// stack when it fits (a user's JID always does): serializing or displaying a JID
    /// allocates nothing.
    fn with_text<R>(&self, server: &str, f: impl FnOnce(&str) -> R) -> R {
        /// A user's number, agent and device, and the longest known server name, fit.
        const STACK: usize = 96;
        let mut buf = [0_u8; STACK];
        let mut len = 0;
        self.write_parts(server, |part| {
            let end = len + part.len();
            if let Some(slot) = buf.get_mut(len..end) {
                slot.copy_from_slice(part);
            }
            // (Past the buffer, `len` still counts: the text is written on the heap below.)
            len = end;
        });
        // Whole `str`s went in, so the bytes are UTF-8.
        if let Some(Ok(text)) = buf.get(..len).map(std::str::from_utf8) {
            return f(text);
        }
        let mut heap = Vec::with_capacity(len);
        self.write_parts(server, |part| heap.extend_from_slice(part));
        f(&String::from_utf8_lossy(&heap))
    }

    /// Hands the pieces of the JID's text to `put`, in order, `server` its server part.
    fn write_parts(&self, server: &str, mut put: impl FnMut(&[u8])) {
        let mut digits = [0_u8; 3];
        if let Some(user) = &self.user {
            put(user.as_bytes());
            if let Some(agent) = self.agent {
                put(b".");
                put(decimal(agent, &mut digits));
            }
            if let Some(device) = self.device {
                put(b":");
                put(decimal(device, &mut digits));
            }
            put(b"@");
        }
        put(server.as_bytes());
    }
}

/// `n` in decimal, written into `digits`.
fn decimal(n: u8, digits: &mut [u8; 3]) -> &[u8] {
    let [h, t, o] = digits;
    (*h, *t, *o) = (b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10);
    let skip = if n >= 100 {
        0
    } else if n >= 10 {
        1
    } else {
        2
    };
    digits.get(skip..).unwrap_or_default()
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_text(self.server.name(), |text| f.write_str(text))
    }
}

impl FromStr for Jid {
    type Err = JidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match plain(s) {
            Some(jid) => Ok(jid),
            None => parse(s),
        }
    }
}

/// The JIDs parsed most, read with fewer searches of the text than [`parse`] makes: a user's
/// (`digits[.agent][:device]@c.us` or `@s.whatsapp.net`, agent and device each 0–255) or a
/// group's (`id@g.us`). `None` for any other text, which `parse` reads (errors included);
/// where this reads a JID, `parse` reads the same one (a unit test holds it to that).
pub(crate) fn plain(s: &str) -> Option<Jid> {
    let (user, server) = s.split_once('@')?;
    match Server::from_name(server) {
        Server::User => {}
        Server::Group if !user.is_empty() => {
            return Some(Jid {
                user: Some(SmolStr::new(user)),
                agent: None,
                device: None,
                server: Server::Group,
            });
        }
        _ => return None,
    }
    let (rest, device) = match user.split_once(':') {
        Some((rest, device)) => (rest, Some(number(device)?)),
        None => (user, None),
    };
    let (digits, agent) = match rest.split_once('.') {
        Some((digits, agent)) => (digits, Some(number(agent)?)),
        None => (rest, None),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Jid {
        user: Some(SmolStr::new(digits)),
        agent,
        device,
        server: Server::User,
    })
}

/// Any JID's text, every error told.
pub(crate) fn parse(s: &str) -> Result<Jid, JidError> {
    if s.is_empty() {
        return Err(JidError::Empty);
    }
    let Some((user, server)) = s.split_once('@') else {
        return Ok(Jid::server_only(Server::from_name(s)));
    };
    if server.contains('@') {
        return Err(JidError::MultipleAt);
    }
    if user.is_empty() {
        return Err(JidError::EmptyUser);
    }
    if server.is_empty() {
        return Err(JidError::EmptyServer);
    }
    let server = Server::from_name(server);
    if server != Server::User {
        return Jid::new(user, server);
    }
    let (user, device) = match user.rsplit_once(':') {
        Some((user, device)) => (
            user,
            Some(number(device).ok_or_else(|| JidError::BadDevice(device.to_owned()))?),
        ),
        None => (user, None),
    };
    let (user, agent) = match user.rsplit_once('.') {
        Some((user, agent)) => (
            user,
            Some(number(agent).ok_or_else(|| JidError::BadAgent(agent.to_owned()))?),
        ),
        None => (user, None),
    };
    Jid::new(user, Server::User)?.with_device(agent, device)
}

impl TryFrom<&str> for Jid {
    type Error = JidError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A decimal number from 0 to 255, digits only.
fn number(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(feature = "serde")]
impl serde::Serialize for Jid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_text(self.server.name(), |text| serializer.serialize_str(text))
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Jid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The text, borrowed from the input where it can be (serde's own `Cow` always
        /// copies it).
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Jid;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JID")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Jid, E> {
                s.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Where the short way reads a JID, the general way reads the same one; and it reads
        /// every user's and group's JID in the usual shapes.
        #[test]
        fn the_short_way_reads_as_the_general_way(
            text in "[0-9.:@a-z-]{0,6}(@(c\\.us|s\\.whatsapp\\.net|g\\.us))?",
            number in "[0-9]{1,15}",
            agent in proptest::option::of(0u16..300),
            device in proptest::option::of(0u16..300),
            server in proptest::sample::select(vec!["c.us", "s.whatsapp.net", "g.us"]),
        ) {
            if let Some(jid) = plain(&text) {
                proptest::prop_assert_eq!(Ok(jid), parse(&text));
            }
            let mut usual = number;
            if let Some(agent) = agent {
                usual.push_str(&format!(".{agent}"));
            }
            if let Some(device) = device {
                usual.push_str(&format!(":{device}"));
            }
            usual.push('@');
            usual.push_str(server);
            let read = plain(&usual);
            proptest::prop_assert_eq!(read.clone().ok_or(()), parse(&usual).map_err(drop));
            let in_range = agent.max(device).is_none_or(|n| n <= 255);
            proptest::prop_assert_eq!(read.is_some(), in_range || server == "g.us");
        }
    }

    #[test]
    fn parse_and_display() {
        for (text, shown) in [
            ("447700900123@c.us", "447700900123@c.us"),
            ("447700900123@s.whatsapp.net", "447700900123@c.us"),
            (
                "447700900123-1600000000@g.us",
                "447700900123-1600000000@g.us",
            ),
            ("status@broadcast", "status@broadcast"),
            ("1.2.3@example.org", "1.2.3@example.org"),
            ("123.0:0@c.us", "123.0:0@c.us"),
            ("123:7@c.us", "123:7@c.us"),
            ("s.whatsapp.net", "c.us"),
            ("g.us", "g.us"),
        ] {
            let jid: Jid = text.parse().unwrap();
            assert_eq!(jid.to_string(), shown);
            assert_eq!(jid.to_string().parse::<Jid>().unwrap(), jid);
        }
        let jid: Jid = "447700900123@c.us".parse().unwrap();
        assert_eq!(jid.to_wire_string(), "447700900123@s.whatsapp.net");
        assert!("1-2@g.us".parse::<Jid>().unwrap().is_group());
    }

    #[test]
    fn text_on_the_stack_is_the_text_on_the_heap() {
        let long = "9".repeat(200);
        for user in ["1", "447700900123", &long[..90], &long[..95], &long] {
            for (agent, device) in [(None, None), (Some(0), Some(9)), (Some(10), Some(99))]
                .into_iter()
                .chain([(Some(100), Some(255)), (None, Some(7)), (Some(255), None)])
            {
                let jid = Jid::new(user, Server::User)
                    .unwrap()
                    .with_device(agent, device)
                    .unwrap();
                let mut user = user.to_owned();
                if let Some(agent) = agent {
                    user += &format!(".{agent}");
                }
                if let Some(device) = device {
                    user += &format!(":{device}");
                }
                let text = format!("{user}@c.us");
                assert_eq!(jid.to_string(), text);
                assert_eq!(jid.to_wire_string(), format!("{user}@s.whatsapp.net"));
                assert_eq!(text.parse::<Jid>().unwrap(), jid);
            }
        }
        let server = Jid::server_only(Server::from_name("x".repeat(120).as_str()));
        assert_eq!(server.to_string(), "x".repeat(120));
    }

    #[test]
    fn errors() {
        for (text, err) in [
            ("", JidError::Empty),
            ("@c.us", JidError::EmptyUser),
            ("123@", JidError::EmptyServer),
            ("a@b@c", JidError::MultipleAt),
            ("1.256@c.us", JidError::BadAgent("256".into())),
            ("1.x@c.us", JidError::BadAgent("x".into())),
            ("1:1000@c.us", JidError::BadDevice("1000".into())),
            ("1:-1@c.us", JidError::BadDevice("-1".into())),
            ("1:+1@c.us", JidError::BadDevice("+1".into())),
            (".1@c.us", JidError::EmptyUser),
        ] {
            assert_eq!(text.parse::<Jid>().unwrap_err(), err, "{text}");
        }
        assert_eq!(
            Jid::new("1", Server::Group)
                .unwrap()
                .with_device(Some(1), None)
                .unwrap_err(),
            JidError::AgentOutsideUserDomain
        );
    }
}
